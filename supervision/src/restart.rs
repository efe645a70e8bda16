//! Restart policy: one-for-one, at most N restarts within a window, exponential backoff.
//!
//! ractor only reports a child's failure to its supervisor; deciding what to do is ours. This
//! module is pure so the decision is unit-tested without actors or time.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartPolicy {
    pub max_restarts: u32,
    pub within: Duration,
    pub base_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        Self {
            max_restarts: 10,
            within: Duration::from_secs(60),
            base_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartDecision {
    Restart {
        after: Duration,
    },
    /// The restart intensity was exceeded: escalate to the supervisor's own supervisor.
    GiveUp,
}

/// The recent failures of one child.
#[derive(Debug, Default, Clone)]
pub struct RestartTracker {
    failures: VecDeque<Instant>,
}

impl RestartTracker {
    pub fn on_failure(&mut self, policy: &RestartPolicy, now: Instant) -> RestartDecision {
        while let Some(first) = self.failures.front() {
            if now.duration_since(*first) > policy.within {
                self.failures.pop_front();
            } else {
                break;
            }
        }
        self.failures.push_back(now);
        let recent = self.failures.len() as u32;
        if recent > policy.max_restarts {
            return RestartDecision::GiveUp;
        }
        let exp = recent.saturating_sub(1).min(20);
        let after = policy
            .base_backoff
            .saturating_mul(1u32 << exp)
            .min(policy.max_backoff);
        RestartDecision::Restart { after }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RestartPolicy {
        RestartPolicy {
            max_restarts: 3,
            within: Duration::from_secs(10),
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(250),
        }
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let mut t = RestartTracker::default();
        let now = Instant::now();
        let p = policy();
        assert_eq!(
            t.on_failure(&p, now),
            RestartDecision::Restart {
                after: Duration::from_millis(100)
            }
        );
        assert_eq!(
            t.on_failure(&p, now),
            RestartDecision::Restart {
                after: Duration::from_millis(200)
            }
        );
        assert_eq!(
            t.on_failure(&p, now),
            RestartDecision::Restart {
                after: Duration::from_millis(250)
            }
        );
    }

    #[test]
    fn too_many_restarts_in_the_window_gives_up() {
        let mut t = RestartTracker::default();
        let now = Instant::now();
        let p = policy();
        for _ in 0..3 {
            assert!(matches!(
                t.on_failure(&p, now),
                RestartDecision::Restart { .. }
            ));
        }
        assert_eq!(t.on_failure(&p, now), RestartDecision::GiveUp);
    }

    #[test]
    fn failures_outside_the_window_are_forgotten() {
        let mut t = RestartTracker::default();
        let start = Instant::now();
        let p = policy();
        for _ in 0..3 {
            t.on_failure(&p, start);
        }
        let later = start + Duration::from_secs(11);
        assert_eq!(
            t.on_failure(&p, later),
            RestartDecision::Restart {
                after: Duration::from_millis(100)
            }
        );
    }
}
