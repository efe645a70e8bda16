//! Which reps to ring for a call, and the end of their legs: what the call flow asks of reps.
//! An offer records a leg per rep it picks, in the transaction that picks them, so a rep's live
//! legs always count every call it has been handed and two offers cannot both take its last
//! free slot.
//!
//! An offer sits on the answer to a lead picking up (issue #14: p99 ≤ 20 ms), so it is a few
//! statements, not one per question: one read of the eligible reps with their live legs and
//! the team's ringing, then (PostgreSQL) one statement that locks, bumps and records the reps
//! it takes. How that stays safe against concurrent offers is in `take.rs`.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use neuronx_supervision::{Store, TenantId};
use uuid::Uuid;

use super::{lookup_name, RingStrategy, WorkingHours, DEFAULT_RING_TIMEOUT_SECONDS, LIVE_FOR_MS};
use crate::control::tx::{on_tx, Tx};
use crate::control::{on_db, parse_uuid, ControlError};

mod take;

/// A rep to ring: how the call flow names it back (`leg_ended`) and the number to dial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferedRep {
    pub name: String,
    pub phone: String,
}

/// Whom to ring for a call now, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    pub strategy: RingStrategy,
    pub ring_timeout_seconds: u32,
    pub reps: Vec<OfferedRep>,
}

/// An eligible rep as read by an offer: available, active, below its `max_calls`, not yet rung
/// for this call. `seen` is its `last_offered_at` as read, which every offer raises: finding
/// it unchanged under the lock proves no offer has given the rep a call since.
struct Candidate {
    id: Uuid,
    name: String,
    phone: String,
    zone: String,
    hours: Option<String>,
    seen: Option<i64>,
}

type CandidateRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<i32>,
);

/// The reps an offer may take, in one statement: available reps of active principals (the
/// principal's own flag is checked too, so no status set by hand can bring a deactivated
/// person back into rotation), of the team (`$2`, NULL: the tenant's) or by name (`$4`),
/// not yet offered this call (`$5`), with fewer live legs (not ended, offered after `$6`)
/// than their `max_calls`; each row carries the ringing of team `$3`.
const ELIGIBLE_SQL: &str = "SELECT CAST(r.principal_id AS TEXT), p.name, r.phone, r.time_zone,
           r.working_hours, r.last_offered_at, t.ring_strategy, t.ring_timeout_seconds
    FROM reps r
    JOIN principals p ON p.tenant_id = r.tenant_id AND p.id = r.principal_id
    LEFT JOIN teams t ON t.tenant_id = r.tenant_id AND t.id = $3
    WHERE r.tenant_id = $1 AND r.status = 'available' AND p.deactivated_at IS NULL
      AND ($2 IS NULL OR p.team_id = $2)
      AND ($4 IS NULL OR p.name = $4)
      AND NOT EXISTS (SELECT 1 FROM rep_legs o WHERE o.tenant_id = r.tenant_id
                      AND o.call_id = $5 AND o.principal_id = r.principal_id)
      AND (SELECT COUNT(*) FROM rep_legs l WHERE l.tenant_id = r.tenant_id
           AND l.principal_id = r.principal_id AND l.ended_at IS NULL
           AND l.offered_at > $6) < r.max_calls";

/// [`offer`] of exactly one rep whatever the team's strategy: agent first by the playbook,
/// where the rep rung first is the one who dials the lead.
pub async fn offer_one(
    store: &Store,
    tenant: TenantId,
    team: Option<Uuid>,
    call_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Offer, ControlError> {
    let who = Who {
        team,
        named: None,
        most: Some(1),
    };
    offer_to(store, tenant, who, call_id, now).await
}

/// Picks the reps to ring for `call_id` now and records the offer, in one transaction.
/// `team`: the opportunity's team (None: every rep of the tenant). Eligible: an active
/// principal (never a deactivated one), status available, in working hours at `now`, live
/// legs (rep_legs with ended_at NULL offered within the last 4 h) below max_calls, and not
/// offered for this call before. Order: last_offered_at oldest first (never offered first),
/// then name. Sequential takes 1, simultaneous up to 5. Records a rep_legs row per rep offered
/// and raises last_offered_at. An empty `reps` means nobody is free.
pub async fn offer(
    store: &Store,
    tenant: TenantId,
    team: Option<Uuid>,
    call_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Offer, ControlError> {
    let who = Who {
        team,
        named: None,
        most: None,
    };
    offer_to(store, tenant, who, call_id, now).await
}

/// [`offer_in`] of one named rep (an inbound call rings the lead's assignee first), whatever
/// their team, under the same checks (available, in hours, below `max_calls`, not yet rung
/// for this call); `team` only sets the ring timeout. Empty when that rep cannot take it.
pub async fn offer_named_in(
    tx: &mut Tx,
    tenant: TenantId,
    team: Option<Uuid>,
    rep_name: &str,
    call_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Offer, ControlError> {
    let Some(name) = lookup_name(rep_name) else {
        return Ok(Offer {
            strategy: RingStrategy::default(),
            ring_timeout_seconds: DEFAULT_RING_TIMEOUT_SECONDS,
            reps: Vec::new(),
        });
    };
    let who = Who {
        team,
        named: Some(name),
        most: Some(1),
    };
    offer_within(tx, tenant, who, call_id, now).await
}

/// [`offer`] within the caller's transaction, so that what the call flow records about the
/// offer (its `RepsRung` input) commits with it.
pub async fn offer_in(
    tx: &mut Tx,
    tenant: TenantId,
    team: Option<Uuid>,
    call_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Offer, ControlError> {
    let who = Who {
        team,
        named: None,
        most: None,
    };
    offer_within(tx, tenant, who, call_id, now).await
}

/// Whom an offer may pick: the team's reps (`None`: the tenant's), or one rep by name; and at
/// most how many (`None`: the strategy's count).
#[derive(Clone, Copy)]
struct Who<'a> {
    team: Option<Uuid>,
    named: Option<&'a str>,
    most: Option<usize>,
}

/// What one read of the eligible reps found: the team's ringing and the reps to ring, in the
/// order they are rung (in working hours, oldest offer first).
struct Eligible {
    strategy: RingStrategy,
    ring_timeout_seconds: u32,
    reps: Vec<Candidate>,
}

impl Eligible {
    /// How many reps this offer rings.
    fn wanted(&self, who: Who<'_>) -> usize {
        let take = self.strategy.reps_per_offer();
        who.most.map_or(take, |m| m.min(take))
    }
}

async fn offer_to(
    store: &Store,
    tenant: TenantId,
    who: Who<'_>,
    call_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Offer, ControlError> {
    // Keyed reads and writes of a few rows, on a call's path: planned once (ADR 0051).
    let mut tx = Tx::begin_generic(store).await?;
    let offer = offer_within(&mut tx, tenant, who, call_id, now).await?;
    tx.commit().await?;
    Ok(offer)
}

async fn offer_within(
    tx: &mut Tx,
    tenant: TenantId,
    who: Who<'_>,
    call_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Offer, ControlError> {
    let (ringing, taken) = if matches!(tx, Tx::Pg(_)) {
        take::on_postgres(tx, tenant, who, call_id, now).await?
    } else {
        // `BEGIN IMMEDIATE` serialises writers: what was read is still true at the commit.
        let mut found = eligible(tx, tenant, who, call_id, now).await?;
        found.reps.truncate(found.wanted(who));
        for c in &found.reps {
            record(tx, tenant, call_id, c.id, now.timestamp_millis()).await?;
        }
        ((found.strategy, found.ring_timeout_seconds), found.reps)
    };
    Ok(Offer {
        strategy: ringing.0,
        ring_timeout_seconds: ringing.1,
        reps: taken
            .into_iter()
            .map(|c| OfferedRep {
                name: c.name,
                phone: c.phone,
            })
            .collect(),
    })
}

/// The reps `who` may take for `call_id` at `now`, read in one statement, in ringing order.
/// Without any, the ringing is the default (nobody is rung, so it is never used).
async fn eligible(
    tx: &mut Tx,
    tenant: TenantId,
    who: Who<'_>,
    call_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Eligible, ControlError> {
    // A rep by name is looked for among the whole tenant's (their team is not the number's).
    let from_team = if who.named.is_some() { None } else { who.team };
    let since = now.timestamp_millis() - LIVE_FOR_MS;
    let rows: Vec<CandidateRow> = on_tx!(tx, |db, id, _json| sqlx::query_as(ELIGIBLE_SQL)
        .bind(id(tenant.0))
        .bind(from_team.map(id))
        .bind(who.team.map(id))
        .bind(who.named)
        .bind(id(call_id))
        .bind(since)
        .fetch_all(db)
        .await?);
    let corrupt = |e: String| neuronx_supervision::StoreError::Corrupt(e);
    let mut ringing = (RingStrategy::default(), DEFAULT_RING_TIMEOUT_SECONDS);
    let mut reps = Vec::with_capacity(rows.len());
    for (id, name, phone, zone, hours, seen, strategy, timeout) in rows {
        if let (Some(s), Some(t)) = (strategy, timeout) {
            let strategy = s
                .parse()
                .map_err(|e: ControlError| corrupt(e.to_string()))?;
            ringing = (
                strategy,
                u32::try_from(t).map_err(|e| corrupt(e.to_string()))?,
            );
        }
        let c = Candidate {
            id: parse_uuid(&id)?,
            name,
            phone,
            zone,
            hours,
            seen,
        };
        if in_hours(&c, now) {
            reps.push(c);
        }
    }
    // `None` sorts first: a rep never offered a call is rung before any other.
    reps.sort_by(|a, b| (a.seen, &a.name).cmp(&(b.seen, &b.name)));
    Ok(Eligible {
        strategy: ringing.0,
        ring_timeout_seconds: ringing.1,
        reps,
    })
}

/// A rep row the checks of `set_profile` would refuse was not written by it: it is skipped and
/// logged rather than failing every call of the tenant.
fn in_hours(c: &Candidate, now: DateTime<Utc>) -> bool {
    let Ok(tz) = c.zone.parse::<Tz>() else {
        tracing::warn!(rep = %c.name, zone = %c.zone, "rep skipped: unknown time zone");
        return false;
    };
    match c.hours.as_deref().map(WorkingHours::from_stored) {
        None => true,
        Some(Ok(hours)) => hours.contains(now, tz),
        Some(Err(e)) => {
            tracing::warn!(rep = %c.name, error = %e, "rep skipped: unreadable working hours");
            false
        }
    }
}

/// Raises a rep's `last_offered_at` to `at`, or one past what it was when that is not lower:
/// it changes on every offer even when two share a millisecond (or a test's frozen clock), so
/// an offer that finds it as it read it knows nobody offered the rep a call in between.
const BUMP_SQL: &str = "UPDATE reps SET last_offered_at = CASE
        WHEN last_offered_at IS NOT NULL AND last_offered_at >= $3 THEN last_offered_at + 1
        ELSE $3 END
    WHERE tenant_id = $1 AND principal_id = $2";

/// Records the offer of `call_id` to one rep: its leg, and its turn in the round robin (not
/// raised again for a leg already recorded).
async fn record(
    tx: &mut Tx,
    tenant: TenantId,
    call_id: Uuid,
    rep: Uuid,
    at: i64,
) -> Result<(), ControlError> {
    let leg = "INSERT INTO rep_legs (tenant_id, call_id, principal_id, offered_at)
               VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING";
    let new = on_tx!(tx, |db, id, _json| sqlx::query(leg)
        .bind(id(tenant.0))
        .bind(id(call_id))
        .bind(id(rep))
        .bind(at)
        .execute(db)
        .await?
        .rows_affected());
    if new == 0 {
        return Ok(());
    }
    on_tx!(tx, |db, id, _json| sqlx::query(BUMP_SQL)
        .bind(id(tenant.0))
        .bind(id(rep))
        .bind(at)
        .execute(db)
        .await?
        .rows_affected());
    Ok(())
}

/// Agent first: `rep_name` picked up `call_id`, a call placed to them directly (click to
/// call), so it counts among their live calls until it ends. Repeated, it changes nothing.
/// Their turn is raised with the leg, as an offer's is, so an offer that read them before
/// this leg does not take them on a stale count.
pub async fn engage(
    store: &Store,
    tenant: TenantId,
    call_id: Uuid,
    rep_name: &str,
    now: DateTime<Utc>,
) -> Result<(), ControlError> {
    let Some(name) = lookup_name(rep_name) else {
        return Ok(());
    };
    let sql = "SELECT CAST(id AS TEXT) FROM principals WHERE tenant_id = $1 AND name = $2";
    let mut tx = Tx::begin(store).await?;
    let rep: Option<String> = on_tx!(&mut tx, |db, id, _json| sqlx::query_scalar(sql)
        .bind(id(tenant.0))
        .bind(name)
        .fetch_optional(db)
        .await?);
    let Some(rep) = rep else {
        return Ok(());
    };
    record(
        &mut tx,
        tenant,
        call_id,
        parse_uuid(&rep)?,
        now.timestamp_millis(),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The rep's leg of `call_id` ended (its leg's completed callback or the Dial's end). Repeated
/// or for a leg never offered, it changes nothing.
pub async fn leg_ended(
    store: &Store,
    tenant: TenantId,
    call_id: Uuid,
    rep_name: &str,
    now: DateTime<Utc>,
) -> Result<(), ControlError> {
    let Some(name) = lookup_name(rep_name) else {
        return Ok(());
    };
    let sql = "UPDATE rep_legs SET ended_at = $4
               WHERE tenant_id = $1 AND call_id = $2 AND ended_at IS NULL
                 AND principal_id = (SELECT id FROM principals WHERE tenant_id = $1 AND name = $3)";
    on_db!(store, |db, id, _json| sqlx::query(sql)
        .bind(id(tenant.0))
        .bind(id(call_id))
        .bind(name)
        .bind(now.timestamp_millis())
        .execute(db)
        .await?
        .rows_affected());
    Ok(())
}

/// Every leg of `call_id` ended (the Dial finished).
pub async fn call_ended(
    store: &Store,
    tenant: TenantId,
    call_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), ControlError> {
    let sql = "UPDATE rep_legs SET ended_at = $3
               WHERE tenant_id = $1 AND call_id = $2 AND ended_at IS NULL";
    on_db!(store, |db, id, _json| sqlx::query(sql)
        .bind(id(tenant.0))
        .bind(id(call_id))
        .bind(now.timestamp_millis())
        .execute(db)
        .await?
        .rows_affected());
    Ok(())
}
