//! Send limits shared by every NeuronX instance: per tenant and channel, and a carrier
//! account's calls per second (ADR 0015).
//!
//! One [`Limiter::check`] takes several keys, say `tenant:<id>:voice` and `account:<sid>:calls`,
//! and admits only if every key admits; then all are consumed, otherwise none is and the answer
//! says how long to wait. The algorithm is GCRA. With Redis configured it runs in a Lua script
//! on Redis's clock and the budget is shared; without, an in-process table serves one instance.
//!
//! The shared limiter fails closed: when Redis cannot be asked, `check` is an error, never an
//! admission. Exceeding a carrier's or the law's rate is worse than sending a little later.

mod gcra;
mod local;
mod redis;

use std::fmt;
use std::time::Duration;

pub use self::local::LocalLimiter;
pub use self::redis::{RedisLimiter, CALL_TIMEOUT, KEY_PREFIX};

/// A key's TAT and the `now` it is compared with are microseconds since the Unix epoch on
/// Redis (about 2^51 today), and Lua counts in doubles, exact up to 2^53. Capping the tolerance
/// at 2^44 µs (about 200 days of burst) keeps every sum exact.
const MAX_TOLERANCE_US: u64 = 1 << 44;

/// A sustained rate with a burst: `burst` requests may pass at once, then `per_second`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quota {
    per_second: f64,
    burst: u32,
    cell: gcra::Cell,
}

impl Quota {
    /// `per_second` must be finite, above zero and at most 1,000,000 (the limiter counts in
    /// microseconds); `burst` at least 1.
    pub fn new(per_second: f64, burst: u32) -> Result<Self, LimitError> {
        if !per_second.is_finite() || per_second <= 0.0 {
            return Err(LimitError::InvalidQuota(format!(
                "per_second must be a positive number, got {per_second}"
            )));
        }
        if burst == 0 {
            return Err(LimitError::InvalidQuota("burst must be at least 1".into()));
        }
        if per_second > 1_000_000.0 {
            return Err(LimitError::InvalidQuota(format!(
                "per_second {per_second} is above the supported 1000000"
            )));
        }
        // At least 1 µs given the check above. `as` saturates a huge interval (a tiny rate),
        // which then fails the tolerance check just below.
        let interval_us = (1_000_000.0 / per_second).round() as u64;
        let tolerance_us = interval_us.saturating_mul(u64::from(burst));
        if tolerance_us > MAX_TOLERANCE_US {
            return Err(LimitError::InvalidQuota(format!(
                "burst {burst} at {per_second}/s spans more than 200 days"
            )));
        }
        Ok(Self {
            per_second,
            burst,
            cell: gcra::Cell {
                interval_us,
                tolerance_us,
            },
        })
    }

    pub fn per_second(&self) -> f64 {
        self.per_second
    }

    pub fn burst(&self) -> u32 {
        self.burst
    }

    pub(crate) fn cell(&self) -> gcra::Cell {
        self.cell
    }
}

/// What a limit applies to. Constructors keep the key shapes in one place, so two instances
/// always name the same budget the same way.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LimitKey(String);

impl LimitKey {
    /// A tenant's sends on one channel (`"voice"`, `"sms"`): `tenant:<uuid>:<channel>`.
    pub fn tenant_channel(tenant: uuid::Uuid, channel: &str) -> Self {
        Self(format!("tenant:{tenant}:{channel}"))
    }

    /// A carrier account's call creations: `account:<sid>:calls`.
    pub fn account_calls(account_sid: &str) -> Self {
        Self(format!("account:{account_sid}:calls"))
    }

    /// The key as stored, without [`KEY_PREFIX`].
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LimitKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The answer to a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Every key admitted and each was consumed once.
    Admitted,
    /// At least one key refused; nothing was consumed. Every key would admit after this wait
    /// (if nobody else spends the budget first).
    Wait(Duration),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// Redis could not be asked (down, erroring, or slower than [`CALL_TIMEOUT`]). Hold the
    /// send and check again later; never treat this as an admission.
    #[error("send limits unavailable: {0}")]
    Unavailable(String),
    #[error("invalid quota: {0}")]
    InvalidQuota(String),
    /// The Redis URL is malformed. The message never contains its password.
    #[error("invalid send-limit configuration: {0}")]
    Config(String),
}

/// The limiter the engine holds: shared through Redis, or local to this process.
/// Cloning is cheap and shares the state (or the connection).
#[derive(Debug, Clone)]
pub enum Limiter {
    Local(LocalLimiter),
    Redis(RedisLimiter),
}

impl Limiter {
    /// `redis_url` is `NEURONX_REDIS_URL`; `None` (or blank) gives the in-process limiter. A
    /// malformed URL is [`LimitError::Config`]. An unreachable Redis is not an error here: the
    /// limiter starts, its checks fail closed, and it recovers by itself once Redis answers.
    pub async fn connect(redis_url: Option<&str>) -> Result<Limiter, LimitError> {
        let Some(url) = redis_url.map(str::trim).filter(|u| !u.is_empty()) else {
            return Ok(Limiter::Local(LocalLimiter::new()));
        };
        let limiter = RedisLimiter::new(url)?;
        if let Err(e) = limiter.ping().await {
            tracing::warn!(
                url = limiter.redacted_url(),
                error = %e,
                "redis for send limits is not answering yet; sends wait until it does"
            );
        }
        Ok(Limiter::Redis(limiter))
    }

    /// True when the budget is shared with other instances (Redis).
    pub fn is_shared(&self) -> bool {
        matches!(self, Limiter::Redis(_))
    }

    /// Admits only if every key admits, and then consumes one from each; if any key refuses,
    /// consumes nothing and answers the longest wait. An empty list is admitted.
    pub async fn check(&self, keys: &[(LimitKey, Quota)]) -> Result<Admission, LimitError> {
        match self {
            Limiter::Local(local) => Ok(local.check(keys)),
            Limiter::Redis(redis) => redis.check(keys).await,
        }
    }

    /// For readiness: Ok when checks can be answered.
    pub async fn ping(&self) -> Result<(), LimitError> {
        match self {
            Limiter::Local(_) => Ok(()),
            Limiter::Redis(redis) => redis.ping().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_derives_interval_and_tolerance_in_microseconds() {
        let quota = Quota::new(10.0, 5).unwrap();
        assert_eq!(
            quota.cell(),
            gcra::Cell {
                interval_us: 100_000,
                tolerance_us: 500_000
            }
        );
    }

    #[test]
    fn quota_rejects_rates_and_bursts_it_cannot_count() {
        for (rate, burst) in [
            (0.0, 1),
            (-1.0, 1),
            (f64::NAN, 1),
            (f64::INFINITY, 1),
            (1.0, 0),
            (2_000_000.0, 1),
            (1e-9, 1),
        ] {
            assert!(
                matches!(Quota::new(rate, burst), Err(LimitError::InvalidQuota(_))),
                "{rate}/s burst {burst} was accepted"
            );
        }
    }
}
