//! The offer on PostgreSQL, where offers of one team run at once on several connections.
//!
//! The eligible reps are read without a lock; then one statement locks, in ringing order, the
//! first of them no other offer holds (`SKIP LOCKED`) and whose `last_offered_at` is still the
//! value read, raises it and records their legs. Every offer and every click-to-call leg raises
//! that value in the transaction that adds the leg (`BUMP_SQL`), so an unchanged value under
//! the lock means no leg was added since the read: its live-leg count still holds. A rep held
//! by another offer is skipped, not waited for, so concurrent offers spread over the team
//! instead of queueing behind one row.
//!
//! When every rep it read was taken or changed meanwhile, it reads again (a fresh snapshot). If
//! a few reads in a row leave it nothing, it waits for the locks of every eligible rep, in
//! principal order and holding none before (so two waiting offers cannot wait on each other),
//! reads again under them and takes from those.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use neuronx_supervision::TenantId;
use uuid::Uuid;

use super::{eligible, record, Candidate, RingStrategy, Who, DEFAULT_RING_TIMEOUT_SECONDS};
use crate::control::tx::Tx;
use crate::control::ControlError;

/// Reads before an offer that found nothing free stops skipping and waits for the locks.
const SKIP_ROUNDS: usize = 3;

/// The team's ringing and the reps taken, in ringing order, within `tx` (PostgreSQL).
pub(super) async fn on_postgres(
    tx: &mut Tx,
    tenant: TenantId,
    who: Who<'_>,
    call_id: Uuid,
    now: DateTime<Utc>,
) -> Result<((RingStrategy, u32), Vec<Candidate>), ControlError> {
    let at = now.timestamp_millis();
    let mut taken: Vec<Candidate> = Vec::new();
    let mut wanted = None;
    let mut ringing = (RingStrategy::default(), DEFAULT_RING_TIMEOUT_SECONDS);
    for _ in 0..SKIP_ROUNDS {
        // Reps taken in an earlier round are offered this call already: not read again.
        let found = eligible(tx, tenant, who, call_id, now).await?;
        ringing = (found.strategy, found.ring_timeout_seconds);
        let want = wanted
            .get_or_insert_with(|| found.wanted(who))
            .saturating_sub(taken.len());
        if found.reps.is_empty() || want == 0 {
            return Ok((ringing, taken));
        }
        let got = take_unlocked(tx, tenant, call_id, &found.reps, want, at).await?;
        let short = got.len() < want.min(found.reps.len());
        taken.extend(found.reps.into_iter().filter(|c| got.contains(&c.id)));
        if !short {
            return Ok((ringing, taken));
        }
    }
    // Holding some reps, it never waits for others' locks (two could wait on each other).
    if !taken.is_empty() {
        return Ok((ringing, taken));
    }
    let found = eligible(tx, tenant, who, call_id, now).await?;
    if found.reps.is_empty() {
        return Ok(((found.strategy, found.ring_timeout_seconds), taken));
    }
    let ids: Vec<Uuid> = found.reps.iter().map(|c| c.id).collect();
    let locked = lock_waiting(tx, tenant, &ids).await?;
    // Read again under the locks: legs committed while this offer waited are counted.
    let found = eligible(tx, tenant, who, call_id, now).await?;
    let want = found.wanted(who);
    let ringing = (found.strategy, found.ring_timeout_seconds);
    let picked: Vec<Candidate> = found
        .reps
        .into_iter()
        .filter(|c| locked.contains(&c.id))
        .take(want)
        .collect();
    for c in &picked {
        record(tx, tenant, call_id, c.id, at).await?;
    }
    Ok((ringing, picked))
}

/// Of `reps` (in ringing order), takes up to `want` that no other transaction holds and whose
/// `last_offered_at` is still as read: locks them, raises their turn and records their legs of
/// `call_id`, in one statement. Returns the reps taken.
async fn take_unlocked(
    tx: &mut Tx,
    tenant: TenantId,
    call_id: Uuid,
    reps: &[Candidate],
    want: usize,
    at: i64,
) -> Result<HashSet<Uuid>, ControlError> {
    let Tx::Pg(t) = tx else {
        return Ok(HashSet::new());
    };
    let sql = "WITH wanted AS (
            SELECT w.id, w.seen, w.n
            FROM unnest($2::uuid[], $3::bigint[]) WITH ORDINALITY AS w(id, seen, n)
        ), locked AS (
            SELECT r.principal_id FROM reps r JOIN wanted w ON r.principal_id = w.id
            WHERE r.tenant_id = $1 AND r.status = 'available'
              AND r.last_offered_at IS NOT DISTINCT FROM w.seen
            ORDER BY w.n
            LIMIT $4
            FOR UPDATE OF r SKIP LOCKED
        ), bumped AS (
            UPDATE reps r SET last_offered_at = CASE
                WHEN r.last_offered_at IS NOT NULL AND r.last_offered_at >= $5::bigint
                THEN r.last_offered_at + 1 ELSE $5::bigint END
            FROM locked l
            WHERE r.tenant_id = $1 AND r.principal_id = l.principal_id
            RETURNING r.principal_id
        ), legs AS (
            INSERT INTO rep_legs (tenant_id, call_id, principal_id, offered_at)
            SELECT $1, $6, principal_id, $5::bigint FROM bumped
            ON CONFLICT DO NOTHING
        )
        SELECT principal_id FROM bumped";
    let ids: Vec<Uuid> = reps.iter().map(|c| c.id).collect();
    let seen: Vec<Option<i64>> = reps.iter().map(|c| c.seen).collect();
    let rows: Vec<Uuid> = sqlx::query_scalar(sql)
        .bind(tenant.0)
        .bind(&ids)
        .bind(&seen)
        .bind(i64::try_from(want).unwrap_or(i64::MAX))
        .bind(at)
        .bind(call_id)
        .fetch_all(&mut **t)
        .await?;
    Ok(rows.into_iter().collect())
}

/// Locks the reps of `ids` still available, waiting for each in principal order; held until
/// the commit.
async fn lock_waiting(
    tx: &mut Tx,
    tenant: TenantId,
    ids: &[Uuid],
) -> Result<HashSet<Uuid>, ControlError> {
    let Tx::Pg(t) = tx else {
        return Ok(ids.iter().copied().collect());
    };
    let sql = "SELECT principal_id FROM reps
               WHERE tenant_id = $1 AND principal_id = ANY($2) AND status = 'available'
               ORDER BY principal_id FOR UPDATE";
    let rows: Vec<Uuid> = sqlx::query_scalar(sql)
        .bind(tenant.0)
        .bind(ids)
        .fetch_all(&mut **t)
        .await?;
    Ok(rows.into_iter().collect())
}
