//! The console's dashboard: speed to lead today, SLA deadlines at risk, breaches, live calls,
//! reps available, texts waiting on the send limit, and leads created per hour over the last
//! 24 h. Four queries, each bound to
//! the caller's tenant (the leading column of `actors_by_created` and of the timers' key) and,
//! for a team-limited caller, to its team.

use chrono::{DateTime, Duration, DurationRound, Utc};
use neuronx_actors::effects::EffectChannel;
use neuronx_supervision::EngineHandle;

use super::board::in_team;
use super::{authorize, Error};
use crate::control::keys::Identity;
use crate::control::reps::RepStatus;
use crate::control::{on_db, Action, ControlError, Scope};

/// An SLA deadline this close is "at risk".
pub const AT_RISK: Duration = Duration::minutes(5);

/// What the dashboard shows.
pub struct Dashboard {
    pub now: DateTime<Utc>,
    /// Leads created since midnight UTC.
    pub leads_today: usize,
    /// From a lead's creation to its first call placed, over today's leads that had one (ms).
    pub speed_p50_ms: Option<i64>,
    pub speed_p90_ms: Option<i64>,
    /// Armed SLA deadlines falling due within `AT_RISK`.
    pub at_risk: i64,
    /// Open leads escalated now (an SLA was missed, or someone escalated them).
    pub breached: i64,
    /// Open leads with a call ringing or bridged.
    pub live_calls: i64,
    /// Texts (to leads and to reps) turned back by the shared send limit and not sent since:
    /// they wait in the outbox for their turn.
    pub texts_waiting: i64,
    pub reps_available: usize,
    pub reps_total: usize,
    /// Leads created in each of the last 24 hours, oldest first; the last is the current hour.
    pub per_hour: Vec<(DateTime<Utc>, u32)>,
}

const CREATED_SQL: &str = "SELECT a.created_at,
        (SELECT MIN(tl.at) FROM timeline tl WHERE tl.tenant_id = a.tenant_id AND tl.kind = a.kind
           AND tl.actor_id = a.id AND tl.entry_kind = 'call_placed')
     FROM actors a
     WHERE a.tenant_id = $1 AND a.kind = 'opportunity' AND a.created_at >= $2 AND ";

const OPEN_SQL: &str = "SELECT
        SUM(CASE WHEN CAST(a.state->'escalated' AS TEXT) = 'true' THEN 1 ELSE 0 END),
        SUM(CASE WHEN a.state->'live_call' IS NOT NULL THEN 1 ELSE 0 END)
     FROM actors a
     WHERE a.tenant_id = $1 AND a.kind = 'opportunity'
       AND a.status NOT IN ('won', 'lost', 'do_not_contact') AND ";

const AT_RISK_SQL: &str = "SELECT COUNT(*) FROM timers t
     WHERE t.tenant_id = $1 AND t.kind = 'opportunity' AND t.name LIKE '%sla'
       AND t.due_at > $2 AND t.due_at <= $3 AND ";

/// Texts waiting on the send limit, read where that wait is recorded: a text the send-limit
/// gate turned back (`send_limits::admit`, while the limit was reached or Redis could not be
/// asked) returns to the outbox `pending` with `waiting_on` set in its result, and keeps it
/// until its next try ends; a row claimed again and waiting for its turn now is `inflight` with
/// that result still on it. A text's first wait, shorter than `limits.max_wait_ms`, happens in
/// one instance's memory and is not counted. `$3`, `$4`: the text channels; `$5` the marker.
/// (Numbered out of order on purpose: sqlx binds `$N` by its number on SQLite too, where plain
/// SQLite would number named parameters by first appearance.)
const TEXTS_WAITING_SQL: &str = "SELECT COUNT(*) FROM outbox o
     WHERE o.tenant_id = $1 AND o.kind = 'opportunity' AND o.channel IN ($3, $4)
       AND o.status IN ('pending', 'inflight')
       AND o.result->>'waiting_on' = $5 AND ";

/// The `p`-th percentile (0 to 1) of `sorted`, nearest rank.
fn percentile(sorted: &[i64], p: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// Counts `created` (ms) into the 24 hourly buckets ending with the hour of `now`.
fn per_hour(now: DateTime<Utc>, created: &[i64]) -> Vec<(DateTime<Utc>, u32)> {
    let hour = now.duration_trunc(Duration::hours(1)).unwrap_or(now);
    let first = hour - Duration::hours(23);
    let mut buckets: Vec<(DateTime<Utc>, u32)> =
        (0..24).map(|h| (first + Duration::hours(h), 0)).collect();
    for ms in created {
        let offset = (ms - first.timestamp_millis()).div_euclid(3_600_000);
        if let Some(b) = usize::try_from(offset)
            .ok()
            .and_then(|i| buckets.get_mut(i))
        {
            b.1 += 1;
        }
    }
    buckets
}

pub async fn dashboard(engine: &EngineHandle, who: &Identity) -> Result<Dashboard, Error> {
    let tenant = authorize(who, Action::Read)?;
    let team = Scope::of(who)
        .team()
        .map(|t| t.to_string())
        .unwrap_or_default();
    let now = engine.config().clock.now();
    let midnight = now.duration_trunc(Duration::days(1)).unwrap_or(now);
    let day_ago = now.duration_trunc(Duration::hours(1)).unwrap_or(now) - Duration::hours(23);
    let since = midnight.min(day_ago).timestamp_millis();
    let store = engine.store();

    let sql = format!("{CREATED_SQL}{}", in_team("a.id", "$3"));
    let created: Vec<(i64, Option<i64>)> = on_db!(store, |db, id, _json| sqlx::query_as(&sql)
        .bind(id(tenant.0))
        .bind(since)
        .bind(&team)
        .fetch_all(db)
        .await
        .map_err(ControlError::from)?);
    let today: Vec<&(i64, Option<i64>)> = created
        .iter()
        .filter(|(at, _)| *at >= midnight.timestamp_millis())
        .collect();
    let mut speeds: Vec<i64> = today
        .iter()
        .filter_map(|(at, first)| first.map(|f| (f - at).max(0)))
        .collect();
    speeds.sort_unstable();
    let hours: Vec<i64> = created
        .iter()
        .map(|(at, _)| *at)
        .filter(|at| *at >= day_ago.timestamp_millis())
        .collect();

    let sql = format!("{OPEN_SQL}{}", in_team("a.id", "$2"));
    let (breached, live): (Option<i64>, Option<i64>) =
        on_db!(store, |db, id, _json| sqlx::query_as(&sql)
            .bind(id(tenant.0))
            .bind(&team)
            .fetch_one(db)
            .await
            .map_err(ControlError::from)?);

    let sql = format!("{AT_RISK_SQL}{}", in_team("t.actor_id", "$4"));
    let (at_risk,): (i64,) = on_db!(store, |db, id, _json| sqlx::query_as(&sql)
        .bind(id(tenant.0))
        .bind(now.timestamp_millis())
        .bind((now + AT_RISK).timestamp_millis())
        .bind(&team)
        .fetch_one(db)
        .await
        .map_err(ControlError::from)?);

    let sql = format!("{TEXTS_WAITING_SQL}{}", in_team("o.actor_id", "$2"));
    let (texts_waiting,): (i64,) = on_db!(store, |db, id, _json| sqlx::query_as(&sql)
        .bind(id(tenant.0))
        .bind(&team)
        .bind(EffectChannel::Sms.as_str())
        .bind(EffectChannel::NotifySms.as_str())
        .bind(crate::send_limits::WaitingOn::SendLimit.as_str())
        .fetch_one(db)
        .await
        .map_err(ControlError::from)?);

    let reps = super::reps::list_reps(engine, who, None).await?;
    Ok(Dashboard {
        now,
        leads_today: today.len(),
        speed_p50_ms: percentile(&speeds, 0.5),
        speed_p90_ms: percentile(&speeds, 0.9),
        at_risk,
        breached: breached.unwrap_or(0),
        live_calls: live.unwrap_or(0),
        texts_waiting,
        reps_available: reps
            .iter()
            .filter(|r| r.effective_status == RepStatus::Available)
            .count(),
        reps_total: reps.len(),
        per_hour: per_hour(now, &hours),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<i64> = (1..=10).collect();
        assert_eq!(percentile(&v, 0.5), Some(5));
        assert_eq!(percentile(&v, 0.9), Some(9));
        assert_eq!(percentile(&[], 0.5), None);
        assert_eq!(percentile(&[7], 0.9), Some(7));
    }

    #[test]
    fn hours_bucket_the_last_day() {
        let now = DateTime::parse_from_rfc3339("2026-01-02T10:30:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis();
        let b = per_hour(
            now,
            &[
                at("2026-01-02T10:01:00Z"),
                at("2026-01-02T10:29:00Z"),
                at("2026-01-01T11:00:00Z"),
                at("2026-01-01T10:59:00Z"),
            ],
        );
        assert_eq!(b.len(), 24);
        assert_eq!(b[23].1, 2);
        assert_eq!(b[0], (now - Duration::minutes(30) - Duration::hours(23), 1));
    }
}
