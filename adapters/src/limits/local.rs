//! The in-process limiter, for a single instance without Redis.
//!
//! Not the `governor` crate, although it is GCRA: governor consumes a cell as it checks and
//! has no way to check several keys and then consume all or none, which is the contract here.
//! The arithmetic is the same as on Redis (`gcra.rs`), so both limiters answer alike.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::time::Instant;

use super::gcra::{self, Cell};
use super::{Admission, LimitKey, Quota};

/// Below this many keys the table is never swept.
const MIN_SWEEP_LEN: usize = 1024;

/// GCRA state for this process only. Cloning is cheap and shares the state.
#[derive(Debug, Clone)]
pub struct LocalLimiter {
    // A std `Mutex`, not tokio's: it is only taken in `check`, which is synchronous, so it is
    // never held across an `.await`, and the critical section is a few map look-ups.
    table: Arc<Mutex<Table>>,
}

#[derive(Debug)]
struct Table {
    /// The table's clock starts here; TATs are microseconds since it. `tokio::time::Instant`
    /// so tests on paused time can drive it.
    epoch: Instant,
    /// Theoretical arrival time per key. An entry whose TAT is in the past means the same as
    /// no entry, so such entries are swept away.
    tats: HashMap<String, u64>,
    /// Sweep when the table reaches this size; doubles with what survives, so sweeping costs
    /// amortised O(1) per check.
    sweep_at_len: usize,
}

impl Default for LocalLimiter {
    fn default() -> Self {
        Self::new()
    }
}

impl LocalLimiter {
    pub fn new() -> Self {
        Self {
            table: Arc::new(Mutex::new(Table {
                epoch: Instant::now(),
                tats: HashMap::new(),
                sweep_at_len: MIN_SWEEP_LEN,
            })),
        }
    }

    /// Admits only if every key admits, and then consumes all of them; see [`super::Limiter::check`].
    pub fn check(&self, keys: &[(LimitKey, Quota)]) -> Admission {
        let cells: Vec<(&str, Cell)> = keys.iter().map(|(k, q)| (k.as_str(), q.cell())).collect();
        // A panic while the lock is held cannot leave a half-written decision (the table is
        // only written after the decision, entry by entry, each entry valid on its own), so a
        // poisoned lock is still safe to use.
        let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        let now_us = u64::try_from(table.epoch.elapsed().as_micros()).unwrap_or(u64::MAX);
        let outcome = gcra::admit_all(now_us, &cells, |key| table.tats.get(key).copied());
        match outcome {
            Ok(admitted) => {
                for (key, tat) in admitted {
                    table.tats.insert(key.to_owned(), tat);
                }
                table.sweep(now_us);
                Admission::Admitted
            }
            Err(wait_us) => Admission::Wait(std::time::Duration::from_micros(wait_us)),
        }
    }

    /// Number of keys held; for tests of the sweep.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.table
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .tats
            .len()
    }
}

impl Table {
    fn sweep(&mut self, now_us: u64) {
        if self.tats.len() < self.sweep_at_len {
            return;
        }
        self.tats.retain(|_, tat| *tat > now_us);
        self.sweep_at_len = (self.tats.len() * 2).max(MIN_SWEEP_LEN);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn idle_keys_are_swept_once_the_table_grows() {
        let limiter = LocalLimiter::new();
        let quota = Quota::new(10.0, 1).unwrap();
        for i in 0..MIN_SWEEP_LEN - 1 {
            let key = LimitKey::account_calls(&format!("AC{i}"));
            assert_eq!(limiter.check(&[(key, quota)]), Admission::Admitted);
        }
        assert_eq!(limiter.len(), MIN_SWEEP_LEN - 1);
        // Every key is back to full burst after one interval: all of them are dead weight.
        tokio::time::advance(Duration::from_millis(200)).await;
        let key = LimitKey::account_calls("ACfresh");
        assert_eq!(limiter.check(&[(key, quota)]), Admission::Admitted);
        assert_eq!(limiter.len(), 1);
    }
}
