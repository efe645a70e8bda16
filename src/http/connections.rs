//! The open HTTP connections and which of them are idle, so that the server can close the
//! connection idle the longest when it is full instead of letting new ones wait (ADR 0032).
//! "Idle" means no request in progress: a keep-alive connection between requests, or one whose
//! request headers have not all arrived. A response counts as in progress until its body is
//! done, so a streaming response (the console's feed) is never idle.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::{Body, Bytes};
use http_body::{Frame, SizeHint};
use tokio_util::sync::CancellationToken;

/// Every open connection of one server.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Mutex<Inner>>,
    epoch: Instant,
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    open: HashMap<u64, Arc<Activity>>,
}

struct Activity {
    busy: AtomicUsize,
    /// When the last request ended (or the connection opened), in µs since `epoch`.
    idle_since_us: AtomicU64,
    /// Cancelled to ask the connection to close: at once when idle, else after its response.
    close: CancellationToken,
}

impl Registry {
    pub fn new() -> Self {
        Self {
            inner: Arc::default(),
            epoch: Instant::now(),
        }
    }

    fn now_us(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock leaves the map consistent (each step is one insert or
        // remove), so a poisoned lock is used as it is.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a new connection; `close` is cancelled to ask it to close. The registration
    /// ends when the returned handle is dropped.
    pub fn open(&self, close: CancellationToken) -> Conn {
        let activity = Arc::new(Activity {
            busy: AtomicUsize::new(0),
            idle_since_us: AtomicU64::new(self.now_us()),
            close,
        });
        let mut inner = self.lock();
        inner.next_id += 1;
        let id = inner.next_id;
        inner.open.insert(id, activity.clone());
        Conn {
            registry: self.clone(),
            id,
            activity,
        }
    }

    /// Asks the connection idle the longest (and not already asked) to close. False when every
    /// connection has a request in progress.
    pub fn close_idlest(&self) -> bool {
        let inner = self.lock();
        let idlest = inner
            .open
            .values()
            .filter(|a| a.busy.load(Ordering::Acquire) == 0 && !a.close.is_cancelled())
            .min_by_key(|a| a.idle_since_us.load(Ordering::Relaxed));
        match idlest {
            Some(a) => {
                a.close.cancel();
                true
            }
            None => false,
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().open.len()
    }
}

/// One registered connection.
pub struct Conn {
    registry: Registry,
    id: u64,
    activity: Arc<Activity>,
}

impl Conn {
    /// No request in progress.
    pub fn is_idle(&self) -> bool {
        self.activity.busy.load(Ordering::Acquire) == 0
    }

    /// Marks a request in progress until the returned guard is dropped.
    pub fn busy(&self) -> Busy {
        self.activity.busy.fetch_add(1, Ordering::AcqRel);
        Busy {
            registry: self.registry.clone(),
            activity: self.activity.clone(),
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.registry.lock().open.remove(&self.id);
    }
}

/// A request in progress on its connection.
pub struct Busy {
    registry: Registry,
    activity: Arc<Activity>,
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.activity
            .idle_since_us
            .store(self.registry.now_us(), Ordering::Relaxed);
        self.activity.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its request counted as in progress until hyper has sent it all
/// (or given up on it), whereupon hyper drops it.
pub struct TrackedBody {
    inner: Body,
    _busy: Busy,
}

impl TrackedBody {
    pub fn new(inner: Body, busy: Busy) -> Self {
        Self { inner, _busy: busy }
    }
}

impl http_body::Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_idle_longest_is_closed_first_and_busy_ones_never() {
        let registry = Registry::new();
        let (a, b) = (CancellationToken::new(), CancellationToken::new());
        let conn_a = registry.open(a.clone());
        std::thread::sleep(std::time::Duration::from_millis(2));
        let conn_b = registry.open(b.clone());
        let busy_a = conn_a.busy();
        assert!(registry.close_idlest());
        assert!(b.is_cancelled() && !a.is_cancelled(), "b was the idle one");
        assert!(!registry.close_idlest(), "a is busy, b already asked");
        drop(busy_a);
        assert!(registry.close_idlest());
        assert!(a.is_cancelled());
        drop(conn_b);
        assert_eq!(registry.len(), 1);
    }
}
