//! Which failed attempts may be repeated, and how long to wait before repeating them.
//!
//! Kept free of I/O so the rules can be tested exhaustively. The central rule: a create (call or
//! message) is repeated only when the failed attempt provably did nothing at the provider,
//! because a duplicate create dials or texts a lead twice.

use std::time::{Duration, SystemTime};

use rand::Rng;

/// Whether repeating a request can cause a second side effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// `POST Calls.json` / `POST Messages.json`: each success creates a new resource.
    Create,
    /// Fetches and hangups: repeating them leaves the provider in the same state.
    Idempotent,
}

/// What went wrong with one attempt, reduced to what matters for retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The connection was never established, so the request was never sent.
    Connect,
    /// The request was (or may have been) sent, then no complete answer arrived in time.
    TimedOut,
    /// The request was (or may have been) sent, then the exchange broke (reset, truncated body).
    Interrupted,
    /// A complete answer with a non-success HTTP status.
    Status(u16),
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Safe to try again (if attempts remain).
    Retry,
    /// Definitive failure; trying again would not help.
    GiveUp,
    /// A create that may have taken effect: stop and let the caller reconcile.
    Unknown,
}

/// Decides whether a failed attempt may be repeated.
pub fn classify(kind: OpKind, failure: Failure) -> Verdict {
    match (kind, failure) {
        (_, Failure::Connect) => Verdict::Retry,
        // 429 and 503 mean "not accepted, come back later": nothing was done, even for a create.
        (_, Failure::Status(429 | 503)) => Verdict::Retry,
        (OpKind::Idempotent, Failure::Status(s)) if s >= 500 => Verdict::Retry,
        (OpKind::Idempotent, Failure::TimedOut | Failure::Interrupted) => Verdict::Retry,
        // Any other 5xx (500, 502, 504…) may come after the provider already acted on a create.
        (OpKind::Create, Failure::Status(s)) if s >= 500 => Verdict::Unknown,
        (OpKind::Create, Failure::TimedOut | Failure::Interrupted) => Verdict::Unknown,
        (_, Failure::Status(_)) => Verdict::GiveUp,
    }
}

/// Upper bound of the wait before retry number `attempt` (0-based): `base * 2^attempt`, capped
/// at `max`.
pub fn backoff_ceiling(attempt: u32, base: Duration, max: Duration) -> Duration {
    let factor = 2u32.saturating_pow(attempt);
    base.saturating_mul(factor).min(max)
}

/// The wait before retry number `attempt` (0-based).
///
/// A server-provided `Retry-After` wins, capped at `max` so a hostile or buggy value cannot stall
/// a caller indefinitely. Otherwise "equal jitter": uniform in `[ceiling / 2, ceiling]`, which
/// spreads concurrent clients apart while guaranteeing some pause (full jitter may pick ~0 and
/// hammer a server that just said 429).
pub fn delay<R: Rng + ?Sized>(
    attempt: u32,
    base: Duration,
    max: Duration,
    retry_after: Option<Duration>,
    rng: &mut R,
) -> Duration {
    if let Some(wait) = retry_after {
        return wait.min(max);
    }
    let ceiling = backoff_ceiling(attempt, base, max);
    let hi = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
    let lo = hi / 2;
    if hi == 0 {
        return Duration::ZERO;
    }
    Duration::from_nanos(rng.gen_range(lo..=hi))
}

/// Parses a `Retry-After` header: either delta-seconds or an HTTP date (relative to `now`).
/// A date in the past means "now". Unparseable values are ignored.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let at = SystemTime::from(at.with_timezone(&chrono::Utc));
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn creates_retry_only_when_nothing_happened() {
        use Failure::*;
        let c = OpKind::Create;
        assert_eq!(classify(c, Connect), Verdict::Retry);
        assert_eq!(classify(c, Status(429)), Verdict::Retry);
        assert_eq!(classify(c, Status(503)), Verdict::Retry);
        for s in [500, 502, 504, 599] {
            assert_eq!(classify(c, Status(s)), Verdict::Unknown, "status {s}");
        }
        assert_eq!(classify(c, TimedOut), Verdict::Unknown);
        assert_eq!(classify(c, Interrupted), Verdict::Unknown);
        for s in [400, 401, 403, 404, 409, 422] {
            assert_eq!(classify(c, Status(s)), Verdict::GiveUp, "status {s}");
        }
    }

    #[test]
    fn idempotent_ops_retry_transient_failures() {
        use Failure::*;
        let i = OpKind::Idempotent;
        for f in [
            Connect,
            TimedOut,
            Interrupted,
            Status(429),
            Status(500),
            Status(503),
        ] {
            assert_eq!(classify(i, f), Verdict::Retry, "{f:?}");
        }
        for s in [400, 401, 404] {
            assert_eq!(classify(i, Status(s)), Verdict::GiveUp);
        }
    }

    #[test]
    fn ceiling_grows_exponentially_and_caps() {
        let base = Duration::from_millis(200);
        let max = Duration::from_secs(5);
        assert_eq!(backoff_ceiling(0, base, max), Duration::from_millis(200));
        assert_eq!(backoff_ceiling(1, base, max), Duration::from_millis(400));
        assert_eq!(backoff_ceiling(3, base, max), Duration::from_millis(1600));
        assert_eq!(backoff_ceiling(5, base, max), max);
        assert_eq!(backoff_ceiling(u32::MAX, base, max), max);
    }

    #[test]
    fn jitter_stays_within_half_to_full_ceiling() {
        let mut rng = StdRng::seed_from_u64(7);
        let base = Duration::from_millis(200);
        let max = Duration::from_secs(5);
        for attempt in 0..8 {
            let ceiling = backoff_ceiling(attempt, base, max);
            for _ in 0..200 {
                let d = delay(attempt, base, max, None, &mut rng);
                assert!(d >= ceiling / 2 && d <= ceiling, "{d:?} vs {ceiling:?}");
            }
        }
        assert_eq!(
            delay(0, Duration::ZERO, max, None, &mut rng),
            Duration::ZERO
        );
    }

    #[test]
    fn retry_after_wins_but_is_capped() {
        let mut rng = StdRng::seed_from_u64(1);
        let base = Duration::from_millis(200);
        let max = Duration::from_secs(5);
        let two = Some(Duration::from_secs(2));
        assert_eq!(delay(0, base, max, two, &mut rng), Duration::from_secs(2));
        let long = Some(Duration::from_secs(120));
        assert_eq!(delay(0, base, max, long, &mut rng), max);
    }

    #[test]
    fn parses_retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777); // 1994-11-06 08:49:37Z
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }
}
