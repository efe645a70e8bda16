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
    /// The restart intensity was exceeded: the shard manager and the root escalate to their own
    /// supervisor; a shard host quarantines the actor instead (`shard_host/failures.rs`).
    GiveUp,
}

/// Why an actor failed, as far as the restart policy cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The database or the network: nothing about this actor. Backs off without limit and
    /// never counts toward the restart intensity, so an outage quarantines nothing.
    Infra,
    /// The actor itself: a poison input, an undecodable checkpoint, a panic. Counts.
    Actor,
}

/// The recent failures of one child.
#[derive(Debug, Default, Clone)]
pub struct RestartTracker {
    failures: VecDeque<Instant>,
    /// Infrastructure failures since the last success: they set the backoff only.
    infra_streak: u32,
}

impl RestartTracker {
    /// One failure of an entity actor. An infrastructure failure backs off (doubling to the
    /// policy's cap) and never gives up; an actor failure is judged as `on_failure` judges it.
    pub fn on_actor_failure(
        &mut self,
        policy: &RestartPolicy,
        kind: FailureKind,
        now: Instant,
    ) -> RestartDecision {
        match kind {
            FailureKind::Infra => {
                self.infra_streak = self.infra_streak.saturating_add(1);
                RestartDecision::Restart {
                    after: backoff(policy, self.infra_streak),
                }
            }
            FailureKind::Actor => self.on_failure(policy, now),
        }
    }

    /// The actor applied an input: an outage it waited out is over.
    pub fn on_success(&mut self) {
        self.infra_streak = 0;
    }

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
        RestartDecision::Restart {
            after: backoff(policy, recent),
        }
    }
}

/// The wait before the `n`th restart in a row (`n` ≥ 1): doubling from the base, capped.
fn backoff(policy: &RestartPolicy, n: u32) -> Duration {
    let exp = n.saturating_sub(1).min(20);
    policy
        .base_backoff
        .saturating_mul(1u32 << exp)
        .min(policy.max_backoff)
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
    fn infrastructure_failures_back_off_without_limit_and_do_not_count() {
        let mut t = RestartTracker::default();
        let now = Instant::now();
        let p = policy();
        for _ in 0..100 {
            assert!(matches!(
                t.on_actor_failure(&p, FailureKind::Infra, now),
                RestartDecision::Restart { .. }
            ));
        }
        assert_eq!(
            t.on_actor_failure(&p, FailureKind::Infra, now),
            RestartDecision::Restart {
                after: Duration::from_millis(250)
            },
            "capped"
        );
        // The outage counted nothing: the actor still has its whole allowance.
        for _ in 0..3 {
            assert!(matches!(
                t.on_actor_failure(&p, FailureKind::Actor, now),
                RestartDecision::Restart { .. }
            ));
        }
        assert_eq!(
            t.on_actor_failure(&p, FailureKind::Actor, now),
            RestartDecision::GiveUp
        );
        t.on_success();
        assert_eq!(
            t.on_actor_failure(&p, FailureKind::Infra, now),
            RestartDecision::Restart {
                after: Duration::from_millis(100)
            },
            "a success ends the streak"
        );
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
