//! Which reps to ring for a call, and the end of their legs: what the call flow asks of reps.
//! An offer records a leg per rep it picks, in the transaction that picks them, so a rep's live
//! legs always count every call it has been handed and two offers cannot both take its last
//! free slot.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use neuronx_supervision::{Store, TenantId};
use uuid::Uuid;

use super::{lookup_name, RingStrategy, WorkingHours, DEFAULT_RING_TIMEOUT_SECONDS, LIVE_FOR_MS};
use crate::control::tx::{on_tx, Tx};
use crate::control::{on_db, parse_uuid, ControlError};

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

/// An available rep, read (and on PostgreSQL locked) by an offer.
struct Candidate {
    id: Uuid,
    name: String,
    phone: String,
    zone: String,
    hours: Option<String>,
    max_calls: i64,
    last_offered_at: Option<i64>,
}

type CandidateRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    i32,
    Option<i64>,
);

/// Available reps of active principals (read without a lock: `lock_free` takes the locks on
/// PostgreSQL). Deactivating sets the rep offline too; the principal's own flag is checked as
/// well, so no status set by hand afterwards can bring a deactivated person back into rotation.
const CANDIDATES_SQL: &str = "SELECT CAST(r.principal_id AS TEXT), p.name, r.phone, r.time_zone,
           r.working_hours, r.max_calls, r.last_offered_at
    FROM reps r JOIN principals p ON p.tenant_id = r.tenant_id AND p.id = r.principal_id
    WHERE r.tenant_id = $1 AND r.status = 'available' AND p.deactivated_at IS NULL
      AND ($2 IS NULL OR p.team_id = $2)
    ORDER BY r.principal_id";

/// [`offer`] of exactly one rep whatever the team's strategy: agent first by the playbook,
/// where the rep rung first is the one who dials the lead.
pub async fn offer_one(
    store: &Store,
    tenant: TenantId,
    team: Option<Uuid>,
    call_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Offer, ControlError> {
    offer_at_most(store, tenant, team, call_id, now, Some(1)).await
}

/// Picks the reps to ring for `call_id` now and records the offer, in one transaction.
/// `team`: the opportunity's team (None: every rep of the tenant). Eligible: an active
/// principal (never a deactivated one), status available,
/// in working hours at `now`, live legs (rep_legs with ended_at NULL offered within the last 4 h)
/// below max_calls, and not offered for this call before. Order: last_offered_at oldest first
/// (never offered first), then name. Sequential takes 1, simultaneous up to 5. Records a
/// rep_legs row per rep offered and bumps last_offered_at. An empty `reps` means nobody is free.
pub async fn offer(
    store: &Store,
    tenant: TenantId,
    team: Option<Uuid>,
    call_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Offer, ControlError> {
    // On PostgreSQL, first without waiting (`SKIP LOCKED`): two offers at once take different
    // reps instead of queueing behind one lock over the whole team. If every rep it could
    // take was being taken by another offer, it starts again and waits for their locks, in
    // principal order and holding none before: a transaction of the first pass never waits,
    // and those of the second take their locks in one order, so no two can wait on each
    // other. SQLite's `BEGIN IMMEDIATE` serialises writers: one pass, no locks.
    offer_at_most(store, tenant, team, call_id, now, None).await
}

/// [`offer`] of one named rep (an inbound call rings the lead's assignee first), whatever
/// their team, under the same checks (available, in hours, below `max_calls`, not yet rung
/// for this call); `team` only sets the ring timeout. Empty when that rep cannot take it.
pub async fn offer_named(
    store: &Store,
    tenant: TenantId,
    team: Option<Uuid>,
    rep_name: &str,
    call_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Offer, ControlError> {
    let who = Who {
        team,
        named: Some(rep_name),
        most: Some(1),
    };
    offer_to(store, tenant, who, call_id, now).await
}

/// Whom an offer may pick: the team's reps (`None`: the tenant's), or one rep by name; and at
/// most how many (`None`: the strategy's count).
#[derive(Clone, Copy)]
struct Who<'a> {
    team: Option<Uuid>,
    named: Option<&'a str>,
    most: Option<usize>,
}

/// `most`: fewer reps than the strategy takes (`None`: the strategy's count).
async fn offer_at_most(
    store: &Store,
    tenant: TenantId,
    team: Option<Uuid>,
    call_id: Uuid,
    now: DateTime<Utc>,
    most: Option<usize>,
) -> Result<Offer, ControlError> {
    let who = Who {
        team,
        named: None,
        most,
    };
    offer_to(store, tenant, who, call_id, now).await
}

async fn offer_to(
    store: &Store,
    tenant: TenantId,
    who: Who<'_>,
    call_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Offer, ControlError> {
    let first = pick(store, tenant, who, call_id, now, Lock::SkipLocked).await?;
    match first {
        Picked::Done(offer) => Ok(offer),
        Picked::AllBusy => match pick(store, tenant, who, call_id, now, Lock::Wait).await? {
            Picked::Done(offer) => Ok(offer),
            Picked::AllBusy => Err(ControlError::Store(
                neuronx_supervision::StoreError::Corrupt(
                    "a waiting offer found its reps locked".into(),
                ),
            )),
        },
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lock {
    SkipLocked,
    Wait,
}

enum Picked {
    Done(Offer),
    /// Nothing was taken because every eligible rep was locked by another offer.
    AllBusy,
}

async fn pick(
    store: &Store,
    tenant: TenantId,
    who: Who<'_>,
    call_id: Uuid,
    now: DateTime<Utc>,
    lock: Lock,
) -> Result<Picked, ControlError> {
    let (team, most) = (who.team, who.most);
    let mut tx = Tx::begin(store).await?;
    let (strategy, ring_timeout_seconds) = match team {
        Some(team) => ringing_in(&mut tx, tenant, team).await?,
        None => (RingStrategy::default(), DEFAULT_RING_TIMEOUT_SECONDS),
    };
    // A rep by name is looked for among the whole tenant's (their team is not the number's).
    let from_team = if who.named.is_some() { None } else { team };
    let mut candidates = candidates(&mut tx, tenant, from_team).await?;
    if let Some(name) = who.named {
        candidates.retain(|c| c.name == name);
    }
    let live = live_legs(&mut tx, tenant, now).await?;
    let offered = offered_for(&mut tx, tenant, call_id).await?;
    let mut eligible: Vec<Candidate> = candidates
        .into_iter()
        .filter(|c| !offered.contains(&c.id))
        .filter(|c| live.get(&c.id).copied().unwrap_or(0) < c.max_calls)
        .filter(|c| in_hours(c, now))
        .collect();
    // `None` sorts first: a rep never offered a call is rung before any other.
    eligible.sort_by(|a, b| (a.last_offered_at, &a.name).cmp(&(b.last_offered_at, &b.name)));
    if let Tx::Pg(_) = tx {
        // Under the lock, count their live legs again: an offer that committed a leg before
        // the lock was taken is counted.
        let ids: Vec<Uuid> = eligible.iter().map(|c| c.id).collect();
        let locked = lock_reps(&mut tx, tenant, &ids, lock).await?;
        if lock == Lock::SkipLocked && !ids.is_empty() && locked.is_empty() {
            return Ok(Picked::AllBusy); // dropped: rolled back, nothing written
        }
        let live = live_legs(&mut tx, tenant, now).await?;
        eligible.retain(|c| {
            locked.contains(&c.id) && live.get(&c.id).copied().unwrap_or(0) < c.max_calls
        });
    }
    let take = strategy.reps_per_offer();
    eligible.truncate(most.map_or(take, |m| m.min(take)));
    let at = now.timestamp_millis();
    for c in &eligible {
        record(&mut tx, tenant, call_id, c.id, at).await?;
    }
    tx.commit().await?;
    Ok(Picked::Done(Offer {
        strategy,
        ring_timeout_seconds,
        reps: eligible
            .into_iter()
            .map(|c| OfferedRep {
                name: c.name,
                phone: c.phone,
            })
            .collect(),
    }))
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

async fn ringing_in(
    tx: &mut Tx,
    tenant: TenantId,
    team: Uuid,
) -> Result<(RingStrategy, u32), ControlError> {
    let sql = "SELECT ring_strategy, ring_timeout_seconds FROM teams
               WHERE tenant_id = $1 AND id = $2";
    let row: Option<(String, i32)> = on_tx!(tx, |db, id, _json| sqlx::query_as(sql)
        .bind(id(tenant.0))
        .bind(id(team))
        .fetch_optional(db)
        .await?);
    let (strategy, timeout) = row.ok_or(ControlError::NotFound("team"))?;
    let corrupt = |e: String| neuronx_supervision::StoreError::Corrupt(e);
    Ok((
        strategy
            .parse()
            .map_err(|e: ControlError| corrupt(e.to_string()))?,
        u32::try_from(timeout).map_err(|e| corrupt(e.to_string()))?,
    ))
}

async fn candidates(
    tx: &mut Tx,
    tenant: TenantId,
    team: Option<Uuid>,
) -> Result<Vec<Candidate>, ControlError> {
    let rows: Vec<CandidateRow> = on_tx!(tx, |db, id, _json| sqlx::query_as(CANDIDATES_SQL)
        .bind(id(tenant.0))
        .bind(team.map(id))
        .fetch_all(db)
        .await?);
    rows.into_iter()
        .map(|(id, name, phone, zone, hours, max, offered)| {
            Ok(Candidate {
                id: parse_uuid(&id)?,
                name,
                phone,
                zone,
                hours,
                max_calls: i64::from(max),
                last_offered_at: offered,
            })
        })
        .collect()
}

/// Of `ids`, the reps still available whose rows this transaction locked (PostgreSQL only;
/// held until the commit): without waiting (`SkipLocked`: the rows another offer holds are
/// left out), or waiting for every one in principal order (`Wait`).
async fn lock_reps(
    tx: &mut Tx,
    tenant: TenantId,
    ids: &[Uuid],
    lock: Lock,
) -> Result<HashSet<Uuid>, ControlError> {
    let Tx::Pg(t) = tx else {
        return Ok(ids.iter().copied().collect());
    };
    if ids.is_empty() {
        return Ok(HashSet::new());
    }
    let sql = match lock {
        Lock::SkipLocked => {
            "SELECT principal_id FROM reps
             WHERE tenant_id = $1 AND principal_id = ANY($2) AND status = 'available'
             ORDER BY principal_id FOR UPDATE SKIP LOCKED"
        }
        Lock::Wait => {
            "SELECT principal_id FROM reps
             WHERE tenant_id = $1 AND principal_id = ANY($2) AND status = 'available'
             ORDER BY principal_id FOR UPDATE"
        }
    };
    let rows: Vec<Uuid> = sqlx::query_scalar(sql)
        .bind(tenant.0)
        .bind(ids)
        .fetch_all(&mut **t)
        .await?;
    Ok(rows.into_iter().collect())
}

/// Live legs per rep at `now`: not ended, offered within `LIVE_FOR_MS`.
async fn live_legs(
    tx: &mut Tx,
    tenant: TenantId,
    now: DateTime<Utc>,
) -> Result<HashMap<Uuid, i64>, ControlError> {
    let sql = "SELECT CAST(principal_id AS TEXT), COUNT(*) FROM rep_legs
               WHERE tenant_id = $1 AND ended_at IS NULL AND offered_at > $2
               GROUP BY principal_id";
    let rows: Vec<(String, i64)> = on_tx!(tx, |db, id, _json| sqlx::query_as(sql)
        .bind(id(tenant.0))
        .bind(now.timestamp_millis() - LIVE_FOR_MS)
        .fetch_all(db)
        .await?);
    rows.into_iter()
        .map(|(id, n)| Ok((parse_uuid(&id)?, n)))
        .collect()
}

async fn offered_for(
    tx: &mut Tx,
    tenant: TenantId,
    call_id: Uuid,
) -> Result<HashSet<Uuid>, ControlError> {
    let sql = "SELECT CAST(principal_id AS TEXT) FROM rep_legs
               WHERE tenant_id = $1 AND call_id = $2";
    let rows: Vec<String> = on_tx!(tx, |db, id, _json| sqlx::query_scalar(sql)
        .bind(id(tenant.0))
        .bind(id(call_id))
        .fetch_all(db)
        .await?);
    rows.iter().map(|id| Ok(parse_uuid(id)?)).collect()
}

async fn record(
    tx: &mut Tx,
    tenant: TenantId,
    call_id: Uuid,
    rep: Uuid,
    at: i64,
) -> Result<(), ControlError> {
    let leg = "INSERT INTO rep_legs (tenant_id, call_id, principal_id, offered_at)
               VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING";
    on_tx!(tx, |db, id, _json| sqlx::query(leg)
        .bind(id(tenant.0))
        .bind(id(call_id))
        .bind(id(rep))
        .bind(at)
        .execute(db)
        .await?
        .rows_affected());
    let turn = "UPDATE reps SET last_offered_at = $3 WHERE tenant_id = $1 AND principal_id = $2";
    on_tx!(tx, |db, id, _json| sqlx::query(turn)
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
    let sql = "INSERT INTO rep_legs (tenant_id, call_id, principal_id, offered_at)
               SELECT $1, $2, id, $4 FROM principals WHERE tenant_id = $1 AND name = $3
               ON CONFLICT DO NOTHING";
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
