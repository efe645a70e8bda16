//! The SQLite transition writes: one record at a time inside the group's immediate transaction
//! (each in its own savepoint, see `SqliteStore::commit`).

use sqlx::SqliteConnection;

use super::types::*;
use super::StoreError;
use crate::entity::OutboxHold;
use crate::key::{ActorKey, Epoch, ShardId};

pub(super) async fn epoch_matches(
    conn: &mut SqliteConnection,
    shard: ShardId,
    epoch: Epoch,
) -> Result<bool, StoreError> {
    let current: Option<i64> = sqlx::query_scalar("SELECT epoch FROM shards WHERE id = ?")
        .bind(shard.0)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(current == Some(epoch.0))
}

/// Deletes the consumed input; false when it was already consumed or the timer has changed.
pub(super) async fn consume(
    conn: &mut SqliteConnection,
    key: &ActorKey,
    consumed: &Consumed,
) -> Result<bool, StoreError> {
    let n = match consumed {
        Consumed::Inbox { id } => sqlx::query("DELETE FROM inbox WHERE id = ?")
            .bind(id)
            .execute(&mut *conn)
            .await?
            .rows_affected(),
        Consumed::Timer { name, due_at_ms } => sqlx::query(
            "DELETE FROM timers WHERE tenant_id = ? AND kind = ? AND actor_id = ? AND name = ? AND due_at = ?",
        )
        .bind(key.tenant.0.to_string())
        .bind(key.kind.as_str())
        .bind(key.id.to_string())
        .bind(name)
        .bind(due_at_ms)
        .execute(&mut *conn)
        .await?
        .rows_affected(),
    };
    Ok(n == 1)
}

pub(super) async fn commit_one(
    conn: &mut SqliteConnection,
    r: &CommitRecord,
) -> Result<CommitOutcome, StoreError> {
    if !epoch_matches(conn, r.shard, r.epoch).await? {
        return Ok(CommitOutcome::Fenced);
    }
    if !consume(conn, &r.key, &r.consumed).await? {
        return Ok(CommitOutcome::Stale);
    }
    let (tenant, kind, id) = (
        r.key.tenant.0.to_string(),
        r.key.kind.as_str(),
        r.key.id.to_string(),
    );
    let grp = r.key.group.to_string();
    let mut version = 0;
    if let Some(cp) = &r.checkpoint {
        version = cp.expected_version + 1;
        let n = if cp.expected_version == 0 {
            sqlx::query(
                "INSERT INTO actors (tenant_id, kind, id, grp, shard, version, state, status, paused, created_at, updated_at)
                 VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            )
            .bind(&tenant)
            .bind(kind)
            .bind(&id)
            .bind(&grp)
            .bind(r.shard.0)
            .bind(cp.state.to_string())
            .bind(&cp.status)
            .bind(cp.paused)
            .bind(r.now_ms)
            .bind(r.now_ms)
            .execute(&mut *conn)
            .await?
            .rows_affected()
        } else {
            sqlx::query(
                "UPDATE actors SET version = version + 1, state = ?, status = ?, paused = ?, updated_at = ?
                 WHERE tenant_id = ? AND kind = ? AND id = ? AND version = ?",
            )
            .bind(cp.state.to_string())
            .bind(&cp.status)
            .bind(cp.paused)
            .bind(r.now_ms)
            .bind(&tenant)
            .bind(kind)
            .bind(&id)
            .bind(cp.expected_version)
            .execute(&mut *conn)
            .await?
            .rows_affected()
        };
        if n != 1 {
            return Ok(CommitOutcome::VersionConflict);
        }
    }
    // Holds first: they apply to effects committed before, never to this transition's own
    // (a closing transition may still send one last message, such as an opt-out confirmation).
    if let Some(hold) = r.outbox {
        let (from, to) = match hold {
            OutboxHold::Hold => ("('pending')", "held"),
            OutboxHold::Release => ("('held')", "pending"),
            OutboxHold::Cancel => ("('pending', 'held')", "canceled"),
        };
        // The whole group: pausing an opportunity also holds its calls' queued dials. The
        // literal open-status term is the partial index's own predicate, so SQLite can use it.
        sqlx::query(&format!(
            "UPDATE outbox SET status = ? WHERE tenant_id = ? AND grp = ?
               AND status IN ('pending', 'held') AND status IN {from}"
        ))
        .bind(to)
        .bind(&tenant)
        .bind(&grp)
        .execute(&mut *conn)
        .await?;
        // Effects in flight take the hold as their fate (see `pg_commit::write_holds`).
        let (fate, only) = match hold {
            OutboxHold::Hold => (Some("held"), "hold IS NULL"),
            OutboxHold::Release => (None, "hold = 'held'"),
            OutboxHold::Cancel => (Some("canceled"), "1"),
        };
        sqlx::query(&format!(
            "UPDATE outbox SET hold = ? WHERE shard = ? AND status = 'inflight'
               AND tenant_id = ? AND grp = ? AND {only}"
        ))
        .bind(fate)
        .bind(r.shard.0)
        .bind(&tenant)
        .bind(&grp)
        .execute(&mut *conn)
        .await?;
    }
    for e in &r.effects {
        sqlx::query(
            "INSERT INTO outbox (tenant_id, kind, actor_id, grp, shard, idem_key, channel, payload, status, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?) ON CONFLICT (idem_key) DO NOTHING",
        )
        .bind(&tenant)
        .bind(kind)
        .bind(&id)
        .bind(&grp)
        .bind(r.shard.0)
        .bind(&e.idem_key)
        .bind(&e.channel)
        .bind(e.payload.to_string())
        .bind(r.now_ms)
        .bind(r.now_ms)
        .execute(&mut *conn)
        .await?;
    }
    for t in &r.timers {
        match t {
            TimerWrite::Clear { name } => {
                sqlx::query("DELETE FROM timers WHERE tenant_id = ? AND kind = ? AND actor_id = ? AND name = ?")
                    .bind(&tenant)
                    .bind(kind)
                    .bind(&id)
                    .bind(name)
                    .execute(&mut *conn)
                    .await?;
            }
            TimerWrite::Set {
                name,
                due_at_ms,
                input,
            } => {
                sqlx::query(
                    "INSERT INTO timers (tenant_id, kind, actor_id, name, grp, shard, due_at, input)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                     ON CONFLICT (tenant_id, kind, actor_id, name) DO UPDATE SET due_at = excluded.due_at, input = excluded.input",
                )
                .bind(&tenant)
                .bind(kind)
                .bind(&id)
                .bind(name)
                .bind(&grp)
                .bind(r.shard.0)
                .bind(due_at_ms)
                .bind(input.to_string())
                .execute(&mut *conn)
                .await?;
            }
        }
    }
    for t in &r.timeline {
        sqlx::query(
            "INSERT INTO timeline (tenant_id, kind, actor_id, version, at, entry_kind, cause, reason, data)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&tenant)
        .bind(kind)
        .bind(&id)
        .bind(version)
        .bind(r.now_ms)
        .bind(&t.kind)
        .bind(&t.cause)
        .bind(&t.reason)
        .bind(t.data.to_string())
        .execute(&mut *conn)
        .await?;
    }
    if let (Consumed::Inbox { id }, Some(body)) = (&r.consumed, &r.reply) {
        sqlx::query(
            "INSERT INTO replies (inbox_id, body, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(body)
        .bind(r.now_ms)
        .execute(&mut *conn)
        .await?;
    }
    super::lookups::write_sqlite(conn, r).await?;
    let sent = insert_inputs(conn, &r.sends, r.now_ms).await?;
    Ok(CommitOutcome::Committed { sent })
}

pub(super) async fn insert_inputs(
    conn: &mut SqliteConnection,
    items: &[NewInput],
    now: i64,
) -> Result<Vec<Inserted>, StoreError> {
    let mut out = Vec::with_capacity(items.len());
    for i in items {
        if i.remember {
            let fresh = sqlx::query(
                "INSERT INTO inbox_dedupe (key, created_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
            )
            .bind(&i.dedupe_key)
            .bind(now)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            if fresh == 0 {
                out.push(Inserted::Duplicate);
                continue;
            }
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO inbox (tenant_id, kind, actor_id, grp, shard, dedupe_key, input, created_at, reply)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(i.key.tenant.0.to_string())
        .bind(i.key.kind.as_str())
        .bind(i.key.id.to_string())
        .bind(i.key.group.to_string())
        .bind(i.shard.0)
        .bind(&i.dedupe_key)
        .bind(i.input.to_string())
        .bind(now)
        .bind(i.reply)
        .fetch_one(&mut *conn)
        .await?;
        out.push(Inserted::New {
            id,
            key: i.key,
            shard: i.shard,
        });
    }
    Ok(out)
}
