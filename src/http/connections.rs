//! The open HTTP connections and which of them are idle, so that the server can close the
//! connection idle the longest when it is full instead of letting new ones wait (ADR 0032).
//! "Idle" means no request in progress: a keep-alive connection between requests, or one whose
//! request headers have not all arrived. A response counts as in progress until its body is
//! done, so a streaming response (the console's feed) is never idle.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::{Body, Bytes};
use http_body::{Frame, SizeHint};
use tokio_util::sync::CancellationToken;

/// Every open connection of one server. Owned by the accept loop, the only task that opens
/// connections or looks for the idlest one; the connections share only their own counters
/// (atomics), so there is no lock: a closed connection marks itself gone and the loop forgets
/// it on its next pass.
pub struct Registry {
    open: HashMap<u64, Arc<Activity>>,
    next_id: u64,
    /// The most connections open at once; gone entries are swept once the map reaches it.
    capacity: usize,
    epoch: Instant,
}

struct Activity {
    busy: AtomicUsize,
    /// When the last request ended (or the connection opened), in µs since `epoch`.
    idle_since_us: AtomicU64,
    epoch: Instant,
    /// Set when the connection has closed: the registry forgets it.
    gone: AtomicBool,
    /// Cancelled to ask the connection to close: at once when idle, else after its response.
    close: CancellationToken,
}

impl Activity {
    fn now_us(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
    }
}

impl Registry {
    pub fn new(capacity: usize) -> Self {
        Self {
            open: HashMap::new(),
            next_id: 0,
            capacity: capacity.max(1),
            epoch: Instant::now(),
        }
    }

    fn sweep(&mut self) {
        self.open.retain(|_, a| !a.gone.load(Ordering::Acquire));
    }

    /// Registers a new connection; `close` is cancelled to ask it to close. The registration
    /// ends when the returned handle is dropped.
    pub fn open(&mut self, close: CancellationToken) -> Conn {
        if self.open.len() >= self.capacity {
            self.sweep();
        }
        let activity = Arc::new(Activity {
            busy: AtomicUsize::new(0),
            idle_since_us: AtomicU64::new(0),
            epoch: self.epoch,
            gone: AtomicBool::new(false),
            close,
        });
        activity
            .idle_since_us
            .store(activity.now_us(), Ordering::Relaxed);
        self.next_id += 1;
        self.open.insert(self.next_id, activity.clone());
        Conn { activity }
    }

    /// Asks the connection idle the longest (and not already asked) to close. False when every
    /// connection has a request in progress.
    pub fn close_idlest(&mut self) -> bool {
        self.sweep();
        let idlest = self
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
}

/// One registered connection.
pub struct Conn {
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
            activity: self.activity.clone(),
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.activity.gone.store(true, Ordering::Release);
    }
}

/// A request in progress on its connection.
pub struct Busy {
    activity: Arc<Activity>,
}

impl Drop for Busy {
    fn drop(&mut self) {
        let now = self.activity.now_us();
        self.activity.idle_since_us.store(now, Ordering::Relaxed);
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
        let mut registry = Registry::new(8);
        let (a, b) = (CancellationToken::new(), CancellationToken::new());
        let conn_a = registry.open(a.clone());
        let conn_b = registry.open(b.clone());
        let busy_a = conn_a.busy();
        assert!(registry.close_idlest());
        assert!(b.is_cancelled() && !a.is_cancelled(), "b was the idle one");
        assert!(!registry.close_idlest(), "a is busy, b already asked");
        drop(busy_a);
        assert!(registry.close_idlest());
        assert!(a.is_cancelled());
        drop(conn_b);
        registry.sweep();
        assert_eq!(registry.open.len(), 1, "a closed connection is forgotten");
    }

    #[test]
    fn closed_connections_do_not_pile_up() {
        let mut registry = Registry::new(4);
        for _ in 0..100 {
            drop(registry.open(CancellationToken::new()));
        }
        assert!(registry.open.len() <= 4, "{}", registry.open.len());
    }
}
