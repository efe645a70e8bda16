//! Group commit: callers submit one item and wait; a task takes everything queued (up to a
//! bound) and writes it in one transaction. Under load a batch fills while the previous one is
//! in flight, so throughput follows the batch size rather than one transaction per item.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::store::StoreError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum BatchError {
    #[error("store: {0}")]
    Store(Arc<StoreError>),
    #[error("the batcher has stopped")]
    Closed,
}

type Job<I, O> = (I, oneshot::Sender<Result<O, BatchError>>);

/// A boxed batch write. Boxed because sqlx futures passed through a generic `Fut` parameter
/// trip the compiler's higher-ranked `Send` check; a concrete `dyn Future + Send` does not.
pub type WriteFuture<O> = Pin<Box<dyn Future<Output = Result<Vec<O>, StoreError>> + Send>>;

pub struct Batcher<I, O> {
    tx: mpsc::Sender<Job<I, O>>,
}

impl<I, O> Clone for Batcher<I, O> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
        }
    }
}

impl<I: Send + 'static, O: Send + 'static> Batcher<I, O> {
    /// Starts the writer task. `write` gets a batch and must return one output per item.
    /// The returned handle is owned by whoever must stop it (the engine root).
    pub fn spawn<F>(max_batch: usize, write: F) -> (Self, JoinHandle<()>)
    where
        F: Fn(Vec<I>) -> WriteFuture<O> + Send + 'static,
    {
        let (tx, mut rx) = mpsc::channel::<Job<I, O>>(max_batch * 4);
        let task = tokio::spawn(async move {
            let mut jobs = Vec::with_capacity(max_batch);
            while rx.recv_many(&mut jobs, max_batch).await > 0 {
                let (items, waiters): (Vec<I>, Vec<_>) = jobs.drain(..).unzip();
                match write(items).await {
                    Ok(outputs) => {
                        for (waiter, out) in waiters.into_iter().zip(outputs) {
                            // The caller may have given up waiting; the write stands anyway.
                            let _ = waiter.send(Ok(out));
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "group write failed");
                        let e = BatchError::Store(Arc::new(e));
                        for waiter in waiters {
                            let _ = waiter.send(Err(e.clone()));
                        }
                    }
                }
            }
        });
        (Self { tx }, task)
    }

    pub async fn submit(&self, item: I) -> Result<O, BatchError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send((item, tx))
            .await
            .map_err(|_| BatchError::Closed)?;
        rx.await.map_err(|_| BatchError::Closed)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn items_submitted_together_share_one_write() {
        let (calls_tx, mut calls_rx) = mpsc::unbounded_channel();
        let (b, _task) = Batcher::spawn(100, move |items: Vec<u32>| {
            let calls_tx = calls_tx.clone();
            Box::pin(async move {
                let _ = calls_tx.send(items.len());
                Ok(items.into_iter().map(|i| i * 2).collect())
            })
        });
        let mut handles = Vec::new();
        for i in 0..50u32 {
            let b = b.clone();
            handles.push(tokio::spawn(async move { b.submit(i).await }));
        }
        for (i, h) in handles.into_iter().enumerate() {
            assert_eq!(h.await.unwrap().unwrap(), i as u32 * 2);
        }
        let mut writes = 0;
        let mut items = 0;
        while let Ok(n) = calls_rx.try_recv() {
            writes += 1;
            items += n;
        }
        assert_eq!(items, 50);
        assert!(writes < 50, "expected batching, got {writes} writes");
    }
}
