//! Group commit: callers submit one item and wait; a task takes everything queued (up to a
//! bound) and writes it in one transaction. Under load a batch fills while the previous one is
//! in flight, so throughput follows the batch size rather than one transaction per item.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::lanes::{one_lane, LaneOf, Lanes};
use crate::store::{ErrorClass, StoreError};

#[derive(Debug, Clone, thiserror::Error)]
pub enum BatchError {
    #[error("store: {0}")]
    Store(Arc<StoreError>),
    #[error("the batcher has stopped")]
    Closed,
}

type Job<I, O> = (I, oneshot::Sender<Result<O, BatchError>>);

/// How a batch whose write failed for a reason that may pass (`ErrorClass::Transient`) is
/// written again, whole: after `first`, doubling up to `max`, while less than `give_up_after`
/// has passed since the first try. Then its callers hear of the failure and decide.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
    pub give_up_after: Duration,
}

impl Default for Backoff {
    /// A failover or a restart of PostgreSQL takes a few seconds; callers waiting longer than
    /// ten hear of it and apply their own policy (an actor restarts from its checkpoint).
    fn default() -> Self {
        Self {
            first: Duration::from_millis(50),
            max: Duration::from_secs(1),
            give_up_after: Duration::from_secs(10),
        }
    }
}

/// Writes `items` whole, trying again while the failure may pass and the backoff allows.
async fn write_whole<I, O, F>(
    write: &F,
    items: Arc<[I]>,
    backoff: Backoff,
) -> Result<Vec<O>, StoreError>
where
    F: Fn(Arc<[I]>) -> WriteFuture<O>,
{
    let started = tokio::time::Instant::now();
    let mut pause = backoff.first;
    loop {
        match write(items.clone()).await {
            Err(e)
                if e.class() == ErrorClass::Transient
                    && started.elapsed() + pause < backoff.give_up_after =>
            {
                tracing::warn!(error = %e, batch = items.len(), ?pause, "group write failed; trying the batch again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(backoff.max);
            }
            done => return done,
        }
    }
}

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

fn answer<O>(waiters: Vec<oneshot::Sender<Result<O, BatchError>>>, outputs: Vec<O>) {
    for (waiter, out) in waiters.into_iter().zip(outputs) {
        // The caller may have given up waiting; the write stands anyway.
        let _ = waiter.send(Ok(out));
    }
}

fn fail<O>(waiters: Vec<oneshot::Sender<Result<O, BatchError>>>, e: StoreError) {
    let e = BatchError::Store(Arc::new(e));
    for waiter in waiters {
        let _ = waiter.send(Err(e.clone()));
    }
}

impl<I: Clone + Send + Sync + 'static, O: Send + 'static> Batcher<I, O> {
    /// Starts the writer task with the default `Backoff`, taking items in arrival order.
    /// `write` gets a batch and must return one output per item. The returned handle is owned
    /// by whoever must stop it (the engine root).
    pub fn spawn<F>(max_batch: usize, write: F) -> (Self, JoinHandle<()>)
    where
        F: Fn(Arc<[I]>) -> WriteFuture<O> + Send + Sync + 'static,
    {
        Self::spawn_with(max_batch, Backoff::default(), one_lane, write)
    }

    /// `spawn` with a fair share per lane (`crate::lanes`): each batch takes one item from
    /// each lane waiting in turn, so one tenant's burst does not hold another's items back.
    pub fn spawn_fair<F>(max_batch: usize, lane: LaneOf<I>, write: F) -> (Self, JoinHandle<()>)
    where
        F: Fn(Arc<[I]>) -> WriteFuture<O> + Send + Sync + 'static,
    {
        Self::spawn_with(max_batch, Backoff::default(), lane, write)
    }

    /// `spawn` with its own backoff and lanes. A failed write is handled by its `ErrorClass`:
    /// a failure that may pass is tried again whole (one by one would wait as long again per
    /// item, and every caller queued behind them with it); a refused value splits the batch so
    /// that only the culprit fails; anything else fails the batch.
    pub fn spawn_with<F>(
        max_batch: usize,
        backoff: Backoff,
        lane: LaneOf<I>,
        write: F,
    ) -> (Self, JoinHandle<()>)
    where
        F: Fn(Arc<[I]>) -> WriteFuture<O> + Send + Sync + 'static,
    {
        // Items move from the channel into their lanes before each batch, so a lane's turn
        // does not depend on where its item stood in the channel. The bound (on the channel,
        // and again on the lanes) holds submitters back only when the writer falls far behind:
        // it is above what the callers' own bounds let wait (one commit per resident actor,
        // 25,000 by default; effects in flight, 256), because submitters held at a full
        // channel queue in arrival order again, whatever their lane.
        let intake = max_batch * 64;
        let (tx, mut rx) = mpsc::channel::<Job<I, O>>(intake);
        let task = tokio::spawn(async move {
            let mut lanes = Lanes::default();
            let mut arrived = Vec::with_capacity(max_batch);
            loop {
                if lanes.is_empty() && rx.recv_many(&mut arrived, max_batch).await == 0 {
                    break;
                }
                while lanes.len() + arrived.len() < intake {
                    match rx.try_recv() {
                        Ok(job) => arrived.push(job),
                        Err(_) => break,
                    }
                }
                for job in arrived.drain(..) {
                    lanes.push(lane(&job.0), job);
                }
                let (items, waiters): (Vec<I>, Vec<_>) =
                    lanes.take_batch(max_batch).into_iter().unzip();
                let items: Arc<[I]> = items.into();
                match write_whole(&write, items.clone(), backoff).await {
                    Ok(outputs) => answer(waiters, outputs),
                    Err(e) if items.len() > 1 && e.class() == ErrorClass::Item => {
                        tracing::warn!(error = %e, batch = waiters.len(), "group write refused; writing one by one");
                        for (item, waiter) in items.iter().zip(waiters) {
                            match write_whole(&write, Arc::from(vec![item.clone()]), backoff).await
                            {
                                Ok(outputs) => answer(vec![waiter], outputs),
                                Err(e) => fail(vec![waiter], e),
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, batch = waiters.len(), "group write failed");
                        fail(waiters, e);
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

    /// `submit`, tried again after `pause` (up to `attempts` tries in all) while the failure
    /// may pass (`ErrorClass::Transient`: a lost connection, a database restarting) and
    /// `keep_trying` says so. Anything else, or a stopped batcher, fails at once.
    pub async fn submit_retrying(
        &self,
        item: I,
        attempts: u32,
        pause: std::time::Duration,
        keep_trying: impl Fn() -> bool,
    ) -> Result<O, BatchError> {
        let mut tried = 1;
        loop {
            match self.submit(item.clone()).await {
                Err(BatchError::Store(e))
                    if e.class() == ErrorClass::Transient && tried < attempts && keep_trying() =>
                {
                    tracing::warn!(error = %e, tried, "write failed; trying again");
                    tried += 1;
                    tokio::time::sleep(pause).await;
                }
                done => return done,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    /// No retry inside the batcher: the tests of `submit_retrying` count its own tries.
    const NO_BACKOFF: Backoff = Backoff {
        first: Duration::from_millis(50),
        max: Duration::from_secs(1),
        give_up_after: Duration::ZERO,
    };

    /// A writer that loses its connection `failures` times, then writes.
    fn flaky(failures: u32) -> (Batcher<u32, u32>, Arc<AtomicU32>) {
        let calls = Arc::new(AtomicU32::new(0));
        let seen = calls.clone();
        let (b, _task) = Batcher::spawn_with(10, NO_BACKOFF, one_lane, move |items: Arc<[u32]>| {
            let n = seen.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                if n < failures {
                    return Err(StoreError::Db(sqlx::Error::PoolTimedOut));
                }
                Ok(items.to_vec())
            })
        });
        (b, calls)
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_that_fails_for_a_while_is_tried_again_until_it_lands() {
        let (b, calls) = flaky(2);
        let out = b
            .submit_retrying(7, 5, Duration::from_millis(500), || true)
            .await;
        assert_eq!(out.unwrap(), 7);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn retries_stop_at_the_limit_or_when_told() {
        let (b, calls) = flaky(10);
        let out = b
            .submit_retrying(7, 3, Duration::from_millis(500), || true)
            .await;
        assert!(matches!(out, Err(BatchError::Store(_))));
        assert_eq!(calls.load(Ordering::SeqCst), 3, "three tries in all");

        let (b, calls) = flaky(10);
        let out = b
            .submit_retrying(7, 3, Duration::from_millis(500), || false)
            .await;
        assert!(matches!(out, Err(BatchError::Store(_))));
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "no retry once told to stop"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_value_is_not_tried_again() {
        let calls = Arc::new(AtomicU32::new(0));
        let seen = calls.clone();
        let (b, _task) = Batcher::<u32, u32>::spawn(10, move |_items: Arc<[u32]>| {
            seen.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move { Err(StoreError::Corrupt("refused".into())) })
        });
        let out = b
            .submit_retrying(7, 5, Duration::from_millis(500), || true)
            .await;
        assert!(matches!(out, Err(BatchError::Store(_))));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    /// A writer whose first `failures` writes fail with `error`, recording each batch's size.
    fn failing(
        failures: u32,
        error: fn() -> StoreError,
    ) -> (Batcher<u32, u32>, mpsc::UnboundedReceiver<usize>) {
        let (sizes_tx, sizes) = mpsc::unbounded_channel();
        let calls = Arc::new(AtomicU32::new(0));
        let (b, _task) = Batcher::spawn(100, move |items: Arc<[u32]>| {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            let _ = sizes_tx.send(items.len());
            Box::pin(async move {
                if n < failures {
                    return Err(error());
                }
                Ok(items.to_vec())
            })
        });
        (b, sizes)
    }

    /// Submits `items` so that they queue before the writer runs (one batch), and waits.
    async fn submit_together(
        b: &Batcher<u32, u32>,
        items: Vec<u32>,
    ) -> Vec<Result<u32, BatchError>> {
        let handles: Vec<_> = items
            .into_iter()
            .map(|i| {
                let b = b.clone();
                tokio::spawn(async move { b.submit(i).await })
            })
            .collect();
        let mut out = Vec::new();
        for h in handles {
            out.push(h.await.expect("submit task"));
        }
        out
    }

    fn drain(sizes: &mut mpsc::UnboundedReceiver<usize>) -> Vec<usize> {
        std::iter::from_fn(|| sizes.try_recv().ok()).collect()
    }

    fn admin_shutdown() -> StoreError {
        StoreError::Db(sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "terminating connection due to administrator command",
        )))
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_failing_for_a_while_is_tried_again_whole_and_lands() {
        let (b, mut sizes) = failing(3, admin_shutdown);
        let out = submit_together(&b, (0..6).collect()).await;
        assert!(out.iter().all(Result::is_ok), "{out:?}");
        assert_eq!(
            drain(&mut sizes),
            vec![6, 6, 6, 6],
            "tried whole, never split"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_failing_past_the_backoff_fails_whole_without_splitting() {
        let (b, mut sizes) = failing(u32::MAX, || StoreError::Db(sqlx::Error::PoolTimedOut));
        let started = tokio::time::Instant::now();
        let out = submit_together(&b, (0..6).collect()).await;
        assert!(out.iter().all(Result::is_err), "{out:?}");
        let sizes = drain(&mut sizes);
        assert!(sizes.iter().all(|n| *n == 6), "never split: {sizes:?}");
        assert!(sizes.len() > 3, "tried again: {sizes:?}");
        assert!(started.elapsed() < Backoff::default().give_up_after + Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_fatal_error_fails_the_batch_at_once() {
        let (b, mut sizes) = failing(u32::MAX, || StoreError::Db(sqlx::Error::PoolClosed));
        let out = submit_together(&b, (0..6).collect()).await;
        assert!(out.iter().all(Result::is_err), "{out:?}");
        assert_eq!(drain(&mut sizes), vec![6]);
    }

    #[tokio::test]
    async fn one_bad_item_fails_alone() {
        let (b, _task) = Batcher::spawn(100, |items: Arc<[u32]>| {
            Box::pin(async move {
                if items.contains(&13) {
                    return Err(StoreError::Corrupt("13 refused".into()));
                }
                Ok(items.to_vec())
            })
        });
        let mut handles = Vec::new();
        for i in 10..16u32 {
            let b = b.clone();
            handles.push(tokio::spawn(async move { (i, b.submit(i).await) }));
        }
        for h in handles {
            let (i, result) = h.await.unwrap();
            match result {
                Ok(v) => assert_eq!(v, i),
                Err(BatchError::Store(_)) => assert_eq!(i, 13),
                Err(e) => panic!("{e}"),
            }
        }
    }

    /// Tenant 1 queues 300 items while the writer is busy, then tenant 2 queues one: it is
    /// written in the next batch, not after tenant 1's 300.
    #[tokio::test]
    async fn a_quiet_lane_is_written_in_the_next_batch() {
        use crate::key::TenantId;
        let (batches_tx, mut batches) = mpsc::unbounded_channel::<Vec<(u8, u32)>>();
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let started = Arc::new(tokio::sync::Notify::new());
        let (held, writing) = (gate.clone(), started.clone());
        let lane: LaneOf<(u8, u32)> = |i| Some(TenantId(uuid::Uuid::from_u128(u128::from(i.0))));
        let (b, _task) = Batcher::spawn_fair(10, lane, move |items: Arc<[(u8, u32)]>| {
            let batches_tx = batches_tx.clone();
            let (held, writing) = (held.clone(), writing.clone());
            Box::pin(async move {
                // The first write waits until everything is queued; the rest pass.
                writing.notify_one();
                let _ = held.acquire().await.map(|p| p.forget());
                held.add_permits(1);
                let _ = batches_tx.send(items.to_vec());
                Ok(items.iter().map(|i| i.1).collect())
            })
        });
        let mut handles = Vec::new();
        let first = b.clone();
        handles.push(tokio::spawn(async move { first.submit((1, 0)).await }));
        started.notified().await;
        for n in 1..300 {
            let b = b.clone();
            handles.push(tokio::spawn(async move { b.submit((1, n)).await }));
        }
        // Every submit of tenant 1 is queued before tenant 2's.
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        let quiet = b.clone();
        handles.push(tokio::spawn(async move { quiet.submit((2, 0)).await }));
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        gate.add_permits(1);
        for h in handles {
            h.await.unwrap().unwrap();
        }
        let mut order = Vec::new();
        while let Ok(batch) = batches.try_recv() {
            order.push(batch);
        }
        assert_eq!(order.iter().map(Vec::len).sum::<usize>(), 301);
        let at = order
            .iter()
            .position(|batch| batch.contains(&(2, 0)))
            .expect("tenant 2 written");
        assert!(at <= 1, "tenant 2's item waited {at} batches: {order:?}");
        // Tenant 1's items keep their order.
        let ones: Vec<u32> = order
            .iter()
            .flatten()
            .filter(|i| i.0 == 1)
            .map(|i| i.1)
            .collect();
        assert_eq!(ones, (0..300).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn items_submitted_together_share_one_write() {
        let (calls_tx, mut calls_rx) = mpsc::unbounded_channel();
        let (b, _task) = Batcher::spawn(100, move |items: Arc<[u32]>| {
            let calls_tx = calls_tx.clone();
            Box::pin(async move {
                let _ = calls_tx.send(items.len());
                Ok(items.iter().map(|i| i * 2).collect())
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
