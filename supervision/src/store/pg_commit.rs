//! The PostgreSQL group commit: one transaction for a batch of transitions, checks first
//! (fencing, consumed input, version), then array-bound writes.

use std::collections::{HashMap, HashSet};

use sqlx::postgres::PgConnection;
use sqlx::Connection;
use uuid::Uuid;

use super::types::*;
use super::StoreError;
use crate::entity::OutboxHold;
use crate::key::ActorKey;

pub(super) type KeyTuple = (Uuid, String, Uuid);

pub(super) fn key_tuple(key: &ActorKey) -> KeyTuple {
    (key.tenant.0, key.kind.as_str().to_owned(), key.id)
}

pub(super) enum Attempt {
    /// Per live record, the inputs it sent.
    Committed(Vec<Vec<Inserted>>),
    /// Positions among the live records that must be left out, and why.
    Excluded(Vec<(usize, CommitOutcome)>),
}

/// One try at committing `live` together. Checks come first (fencing, consumed input, version);
/// any failure rolls everything back and names the records to leave out of the next try.
pub(super) async fn try_commit(
    conn: &mut PgConnection,
    live: &[&CommitRecord],
) -> Result<Attempt, StoreError> {
    let mut tx = conn.begin().await?;
    // Every statement below joins a small array of keys to a large table by its key: nested
    // loops over index lookups are always right, and the planner's estimates on a bloated table
    // sometimes are not.
    sqlx::query(
        "SELECT set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true)",
    )
    .execute(&mut *tx)
    .await?;

    // Fencing: the epoch each record was computed under must still be the shard's epoch.
    // FOR KEY SHARE keeps it so until this commits: only a takeover (FOR UPDATE) waits for it;
    // renewals and releases, which leave the epoch alone, do not.
    let mut shard_ids: Vec<i32> = live.iter().map(|r| r.shard.0).collect();
    shard_ids.sort_unstable();
    shard_ids.dedup();
    let epochs: HashMap<i32, i64> = sqlx::query_as::<_, (i32, i64)>(
        "SELECT id, epoch FROM shards WHERE id = ANY($1) ORDER BY id FOR KEY SHARE",
    )
    .bind(&shard_ids)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .collect();
    let fenced: Vec<(usize, CommitOutcome)> = live
        .iter()
        .enumerate()
        .filter(|(_, r)| epochs.get(&r.shard.0) != Some(&r.epoch.0))
        .map(|(i, _)| (i, CommitOutcome::Fenced))
        .collect();
    if !fenced.is_empty() {
        return Ok(Attempt::Excluded(fenced));
    }

    let mut excluded = Vec::new();

    // Consume inbox inputs; one already gone was applied by an earlier commit. An input lives
    // in its actor's shard, which is the inbox's key.
    let (inbox_shards, inbox_ids): (Vec<i32>, Vec<i64>) = live
        .iter()
        .filter_map(|r| match r.consumed {
            Consumed::Inbox { id } => Some((r.shard.0, id)),
            Consumed::Timer { .. } => None,
        })
        .unzip();
    if !inbox_ids.is_empty() {
        let deleted: HashSet<i64> = sqlx::query_scalar::<_, i64>(
            "DELETE FROM inbox i USING UNNEST($1::int[], $2::bigint[]) u(shard, id)
             WHERE i.shard = u.shard AND i.id = u.id RETURNING i.id",
        )
        .bind(&inbox_shards)
        .bind(&inbox_ids)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect();
        for (i, r) in live.iter().enumerate() {
            if let Consumed::Inbox { id } = r.consumed {
                if !deleted.contains(&id) {
                    excluded.push((i, CommitOutcome::Stale));
                }
            }
        }
    }

    // Consume timer firings; a timer re-set or cleared since it was read is stale.
    let fired: Vec<(usize, KeyTuple, &str, i64)> = live
        .iter()
        .enumerate()
        .filter_map(|(i, r)| match &r.consumed {
            Consumed::Timer { name, due_at_ms } => {
                Some((i, key_tuple(&r.key), name.as_str(), *due_at_ms))
            }
            Consumed::Inbox { .. } => None,
        })
        .collect();
    if !fired.is_empty() {
        let deleted: HashSet<(Uuid, String, Uuid, String)> = sqlx::query_as(
            "DELETE FROM timers t USING UNNEST($1::uuid[], $2::text[], $3::uuid[], $4::text[], $5::bigint[])
                 u(tenant_id, kind, actor_id, name, due_at)
             WHERE t.tenant_id = u.tenant_id AND t.kind = u.kind AND t.actor_id = u.actor_id
               AND t.name = u.name AND t.due_at = u.due_at
             RETURNING t.tenant_id, t.kind, t.actor_id, t.name",
        )
        .bind(fired.iter().map(|f| f.1 .0).collect::<Vec<_>>())
        .bind(fired.iter().map(|f| f.1 .1.clone()).collect::<Vec<_>>())
        .bind(fired.iter().map(|f| f.1 .2).collect::<Vec<_>>())
        .bind(fired.iter().map(|f| f.2).collect::<Vec<_>>())
        .bind(fired.iter().map(|f| f.3).collect::<Vec<_>>())
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect();
        for (i, k, name, _) in &fired {
            if !deleted.contains(&(k.0, k.1.clone(), k.2, (*name).to_owned())) {
                excluded.push((*i, CommitOutcome::Stale));
            }
        }
    }
    if !excluded.is_empty() {
        return Ok(Attempt::Excluded(excluded));
    }

    // Checkpoints: create new actors, advance existing ones only from the version they read.
    type Indexed<'a> = Vec<(usize, &'a CommitRecord)>;
    let (new, existing): (Indexed, Indexed) = live
        .iter()
        .enumerate()
        .filter(|(_, r)| r.checkpoint.is_some())
        .map(|(i, r)| (i, *r))
        .partition(|(_, r)| {
            r.checkpoint
                .as_ref()
                .is_some_and(|c| c.expected_version == 0)
        });
    let written = write_checkpoints(&mut tx, &new, true).await?;
    let updated = write_checkpoints(&mut tx, &existing, false).await?;
    for (i, r) in new.iter().chain(&existing) {
        if !written.contains(&key_tuple(&r.key)) && !updated.contains(&key_tuple(&r.key)) {
            excluded.push((*i, CommitOutcome::VersionConflict));
        }
    }
    if !excluded.is_empty() {
        return Ok(Attempt::Excluded(excluded));
    }

    // Holds first: they apply to effects committed before, never to this transition's own
    // (a closing transition may still send one last message, such as an opt-out confirmation).
    write_holds(&mut tx, live).await?;
    write_effects(&mut tx, live).await?;
    write_timers(&mut tx, live).await?;
    write_timeline(&mut tx, live).await?;
    write_replies(&mut tx, live).await?;
    super::lookups::write_pg(&mut tx, live).await?;

    let now = live.first().map(|r| r.now_ms).unwrap_or_default();
    let sends: Vec<NewInput> = live.iter().flat_map(|r| r.sends.iter().cloned()).collect();
    let mut inserted = insert_inputs(&mut tx, &sends, now).await?.into_iter();
    let sent = live
        .iter()
        .map(|r| inserted.by_ref().take(r.sends.len()).collect())
        .collect();
    tx.commit().await?;
    Ok(Attempt::Committed(sent))
}

fn version_after(r: &CommitRecord) -> i64 {
    r.checkpoint
        .as_ref()
        .map(|c| c.expected_version + 1)
        .unwrap_or(0)
}

async fn write_checkpoints(
    tx: &mut PgConnection,
    items: &[(usize, &CommitRecord)],
    create: bool,
) -> Result<HashSet<KeyTuple>, StoreError> {
    if items.is_empty() {
        return Ok(HashSet::new());
    }
    let cps: Vec<(&CommitRecord, &CheckpointWrite)> = items
        .iter()
        .filter_map(|(_, r)| r.checkpoint.as_ref().map(|c| (*r, c)))
        .collect();
    let sql = if create {
        "INSERT INTO actors (tenant_id, kind, id, grp, shard, version, state, status, paused, created_at, updated_at)
         SELECT tenant_id, kind, id, grp, shard, 1, state::jsonb, status, paused, now_ms, now_ms
         FROM UNNEST($1::uuid[], $2::text[], $3::uuid[], $4::uuid[], $5::int[], $6::bigint[], $7::text[], $8::text[], $9::bool[], $10::bigint[])
             u(tenant_id, kind, id, grp, shard, expected, state, status, paused, now_ms)
         ON CONFLICT DO NOTHING
         RETURNING tenant_id, kind, id"
    } else {
        "UPDATE actors a SET version = u.expected + 1, state = u.state::jsonb, status = u.status,
                paused = u.paused, updated_at = u.now_ms
         FROM UNNEST($1::uuid[], $2::text[], $3::uuid[], $4::uuid[], $5::int[], $6::bigint[], $7::text[], $8::text[], $9::bool[], $10::bigint[])
             u(tenant_id, kind, id, grp, shard, expected, state, status, paused, now_ms)
         WHERE a.tenant_id = u.tenant_id AND a.kind = u.kind AND a.id = u.id AND a.version = u.expected
         RETURNING a.tenant_id, a.kind, a.id"
    };
    let rows: Vec<KeyTuple> = sqlx::query_as(sql)
        .bind(cps.iter().map(|(r, _)| r.key.tenant.0).collect::<Vec<_>>())
        .bind(
            cps.iter()
                .map(|(r, _)| r.key.kind.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(cps.iter().map(|(r, _)| r.key.id).collect::<Vec<_>>())
        .bind(cps.iter().map(|(r, _)| r.key.group).collect::<Vec<_>>())
        .bind(cps.iter().map(|(r, _)| r.shard.0).collect::<Vec<_>>())
        .bind(
            cps.iter()
                .map(|(_, c)| c.expected_version)
                .collect::<Vec<_>>(),
        )
        .bind(
            cps.iter()
                .map(|(_, c)| c.state.to_string())
                .collect::<Vec<_>>(),
        )
        .bind(
            cps.iter()
                .map(|(_, c)| c.status.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(cps.iter().map(|(_, c)| c.paused).collect::<Vec<_>>())
        .bind(cps.iter().map(|(r, _)| r.now_ms).collect::<Vec<_>>())
        .fetch_all(&mut *tx)
        .await?;
    Ok(rows.into_iter().collect())
}

async fn write_effects(tx: &mut PgConnection, live: &[&CommitRecord]) -> Result<(), StoreError> {
    let rows: Vec<(&CommitRecord, &EffectWrite)> = live
        .iter()
        .flat_map(|r| r.effects.iter().map(move |e| (*r, e)))
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    // Ids are drawn as rows reach the insert, and the claim sends an actor's effects in id
    // order: ORDER BY ord makes that the commit order (UNNEST alone promises no order).
    sqlx::query(
        "INSERT INTO outbox (tenant_id, kind, actor_id, grp, shard, idem_key, channel, payload, status, created_at, updated_at)
         SELECT tenant_id, kind, actor_id, grp, shard, idem_key, channel, payload::jsonb, 'pending', now_ms, now_ms
         FROM UNNEST($1::uuid[], $2::text[], $3::uuid[], $4::uuid[], $5::int[], $6::text[], $7::text[], $8::text[], $9::bigint[])
             WITH ORDINALITY u(tenant_id, kind, actor_id, grp, shard, idem_key, channel, payload, now_ms, ord)
         ORDER BY ord
         ON CONFLICT (idem_key) DO NOTHING",
    )
    .bind(rows.iter().map(|(r, _)| r.key.tenant.0).collect::<Vec<_>>())
    .bind(rows.iter().map(|(r, _)| r.key.kind.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|(r, _)| r.key.id).collect::<Vec<_>>())
    .bind(rows.iter().map(|(r, _)| r.key.group).collect::<Vec<_>>())
    .bind(rows.iter().map(|(r, _)| r.shard.0).collect::<Vec<_>>())
    .bind(rows.iter().map(|(_, e)| e.idem_key.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|(_, e)| e.channel.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|(_, e)| e.payload.to_string()).collect::<Vec<_>>())
    .bind(rows.iter().map(|(r, _)| r.now_ms).collect::<Vec<_>>())
    .execute(&mut *tx)
    .await?;
    Ok(())
}

async fn write_timers(tx: &mut PgConnection, live: &[&CommitRecord]) -> Result<(), StoreError> {
    let mut clears: Vec<(&CommitRecord, &str)> = Vec::new();
    // Keyed so that a transition setting one name twice writes the last one only.
    let mut sets: HashMap<(KeyTuple, &str), (&CommitRecord, i64, &serde_json::Value)> =
        HashMap::new();
    for r in live {
        for t in &r.timers {
            match t {
                TimerWrite::Clear { name } => {
                    sets.remove(&(key_tuple(&r.key), name.as_str()));
                    clears.push((*r, name));
                }
                TimerWrite::Set {
                    name,
                    due_at_ms,
                    input,
                } => {
                    sets.insert((key_tuple(&r.key), name.as_str()), (*r, *due_at_ms, input));
                }
            }
        }
    }
    if !clears.is_empty() {
        sqlx::query(
            "DELETE FROM timers t USING UNNEST($1::uuid[], $2::text[], $3::uuid[], $4::text[]) u(tenant_id, kind, actor_id, name)
             WHERE t.tenant_id = u.tenant_id AND t.kind = u.kind AND t.actor_id = u.actor_id AND t.name = u.name",
        )
        .bind(clears.iter().map(|(r, _)| r.key.tenant.0).collect::<Vec<_>>())
        .bind(clears.iter().map(|(r, _)| r.key.kind.as_str()).collect::<Vec<_>>())
        .bind(clears.iter().map(|(r, _)| r.key.id).collect::<Vec<_>>())
        .bind(clears.iter().map(|(_, n)| *n).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await?;
    }
    if !sets.is_empty() {
        let sets: Vec<(&str, &CommitRecord, i64, &serde_json::Value)> = sets
            .into_iter()
            .map(|((_, name), (r, due, input))| (name, r, due, input))
            .collect();
        sqlx::query(
            "INSERT INTO timers (tenant_id, kind, actor_id, name, grp, shard, due_at, input)
             SELECT tenant_id, kind, actor_id, name, grp, shard, due_at, input::jsonb
             FROM UNNEST($1::uuid[], $2::text[], $3::uuid[], $4::text[], $5::uuid[], $6::int[], $7::bigint[], $8::text[])
                 u(tenant_id, kind, actor_id, name, grp, shard, due_at, input)
             ON CONFLICT (tenant_id, kind, actor_id, name)
             DO UPDATE SET due_at = excluded.due_at, input = excluded.input",
        )
        .bind(sets.iter().map(|s| s.1.key.tenant.0).collect::<Vec<_>>())
        .bind(sets.iter().map(|s| s.1.key.kind.as_str()).collect::<Vec<_>>())
        .bind(sets.iter().map(|s| s.1.key.id).collect::<Vec<_>>())
        .bind(sets.iter().map(|s| s.0).collect::<Vec<_>>())
        .bind(sets.iter().map(|s| s.1.key.group).collect::<Vec<_>>())
        .bind(sets.iter().map(|s| s.1.shard.0).collect::<Vec<_>>())
        .bind(sets.iter().map(|s| s.2).collect::<Vec<_>>())
        .bind(sets.iter().map(|s| s.3.to_string()).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

async fn write_timeline(tx: &mut PgConnection, live: &[&CommitRecord]) -> Result<(), StoreError> {
    let rows: Vec<(&CommitRecord, &crate::entity::TimelineRecord)> = live
        .iter()
        .flat_map(|r| r.timeline.iter().map(move |t| (*r, t)))
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    // Timelines are read in id order: ORDER BY ord draws the ids in the order of the entries.
    sqlx::query(
        "INSERT INTO timeline (tenant_id, kind, actor_id, version, at, entry_kind, cause, reason, data)
         SELECT tenant_id, kind, actor_id, version, at, entry_kind, cause, reason, data::jsonb
         FROM UNNEST($1::uuid[], $2::text[], $3::uuid[], $4::bigint[], $5::bigint[], $6::text[], $7::text[], $8::text[], $9::text[])
             WITH ORDINALITY u(tenant_id, kind, actor_id, version, at, entry_kind, cause, reason, data, ord)
         ORDER BY ord",
    )
    .bind(rows.iter().map(|(r, _)| r.key.tenant.0).collect::<Vec<_>>())
    .bind(rows.iter().map(|(r, _)| r.key.kind.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|(r, _)| r.key.id).collect::<Vec<_>>())
    .bind(rows.iter().map(|(r, _)| version_after(r)).collect::<Vec<_>>())
    .bind(rows.iter().map(|(r, _)| r.now_ms).collect::<Vec<_>>())
    .bind(rows.iter().map(|(_, t)| t.kind.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|(_, t)| t.cause.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|(_, t)| t.reason.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|(_, t)| t.data.to_string()).collect::<Vec<_>>())
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Answers for callers waiting on another instance, keyed by the input they wait for.
async fn write_replies(tx: &mut PgConnection, live: &[&CommitRecord]) -> Result<(), StoreError> {
    let rows: Vec<(i64, &str, i64)> = live
        .iter()
        .filter_map(|r| match (&r.consumed, &r.reply) {
            (Consumed::Inbox { id }, Some(body)) => Some((*id, body.as_str(), r.now_ms)),
            _ => None,
        })
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO replies (inbox_id, body, created_at)
         SELECT id, body::jsonb, at FROM UNNEST($1::bigint[], $2::text[], $3::bigint[]) u(id, body, at)
         ON CONFLICT (inbox_id) DO NOTHING",
    )
    .bind(rows.iter().map(|r| r.0).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.1).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.2).collect::<Vec<_>>())
    .execute(&mut *tx)
    .await?;
    // Delivered when (and only if) this commits: the callers waiting elsewhere read at once.
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(super::pg_cluster::REPLY_CHANNEL)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

async fn write_holds(tx: &mut PgConnection, live: &[&CommitRecord]) -> Result<(), StoreError> {
    // (hold, statuses it moves, status they take, fate it leaves an effect in flight, which
    // in-flight rows take it).
    for (hold, from, to, fate, only) in [
        (
            OutboxHold::Hold,
            vec!["pending"],
            "held",
            Some("held"),
            "o.hold IS NULL",
        ),
        (
            OutboxHold::Release,
            vec!["held"],
            "pending",
            None,
            "o.hold = 'held'",
        ),
        (
            OutboxHold::Cancel,
            vec!["pending", "held"],
            "canceled",
            Some("canceled"),
            "TRUE",
        ),
    ] {
        // The whole group: pausing an opportunity also holds its calls' queued dials.
        let groups: Vec<(Uuid, Uuid, i32)> = live
            .iter()
            .filter(|r| r.outbox == Some(hold))
            .map(|r| (r.key.tenant.0, r.key.group, r.shard.0))
            .collect();
        if groups.is_empty() {
            continue;
        }
        // Waiting rows take the new status. Effects in flight keep theirs (their completion
        // compares-and-sets on it) and take the hold as their fate instead: one that comes back
        // unsent becomes held or canceled, not pending again (the fault simulation found a dial
        // in flight at an opt-out handed back and sent after the STOP).
        //
        // One statement, not one per kind of row: a row that changes while it runs (a
        // completion handing an effect back, a claim taking one) is re-checked against the
        // final condition in its new state, so it takes the hold one way or the other; with two
        // statements a completion committing between them was seen by neither. The targets are
        // found through the partial indexes (`outbox_open_by_group`; `outbox_inflight` by the
        // group's shard, where all of a group's rows are); an OR over both kept in one WHERE
        // was planned as a hash join over every open row.
        sqlx::query(&format!(
            "WITH u AS (SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $6::int[]) u(tenant_id, grp, shard)),
             targets AS (
                 SELECT o.id FROM u JOIN outbox o ON o.tenant_id = u.tenant_id AND o.grp = u.grp
                    AND o.status IN ('pending', 'held') AND o.status = ANY($3)
                 UNION ALL
                 SELECT o.id FROM u JOIN outbox o ON o.shard = u.shard AND o.status = 'inflight'
                    AND o.tenant_id = u.tenant_id AND o.grp = u.grp AND {only}
             )
             UPDATE outbox o
             SET status = CASE WHEN o.status = 'inflight' THEN o.status ELSE $4 END,
                 hold = CASE WHEN o.status = 'inflight' THEN $5 ELSE o.hold END
             WHERE o.id IN (SELECT id FROM targets)
               AND ((o.status IN ('pending', 'held') AND o.status = ANY($3))
                    OR (o.status = 'inflight' AND {only}))"
        ))
        .bind(groups.iter().map(|g| g.0).collect::<Vec<_>>())
        .bind(groups.iter().map(|g| g.1).collect::<Vec<_>>())
        .bind(from)
        .bind(to)
        .bind(fate)
        .bind(groups.iter().map(|g| g.2).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// Inserts inputs, dropping any whose remembered dedupe key was seen before (here or earlier in
/// the same call). Returns one result per item, in order.
pub(super) async fn insert_inputs(
    conn: &mut PgConnection,
    items: &[NewInput],
    now: i64,
) -> Result<Vec<Inserted>, StoreError> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    // A remembered key repeated within the call is a duplicate; keys not remembered are ids.
    let mut seen = HashSet::new();
    let unique: Vec<&NewInput> = items
        .iter()
        .filter(|i| !i.remember || seen.insert(i.dedupe_key.as_str()))
        .collect();
    let rows: Vec<(i64, String)> = sqlx::query_as(
        "WITH input AS (
             SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::uuid[], $4::uuid[], $5::int[], $6::text[], $7::text[], $8::bool[], $10::bool[])
                 WITH ORDINALITY u(tenant_id, kind, actor_id, grp, shard, dedupe_key, input, remember, reply, ord)
         ), fresh AS (
             INSERT INTO inbox_dedupe (key, created_at)
             SELECT dedupe_key, $9 FROM input WHERE remember
             ON CONFLICT DO NOTHING RETURNING key
         )
         INSERT INTO inbox (tenant_id, kind, actor_id, grp, shard, dedupe_key, input, created_at, reply)
         SELECT tenant_id, kind, actor_id, grp, shard, dedupe_key, input::jsonb, $9, reply FROM input
         WHERE NOT remember OR dedupe_key IN (SELECT key FROM fresh)
         ORDER BY ord
         RETURNING id, dedupe_key",
    )
    .bind(unique.iter().map(|i| i.key.tenant.0).collect::<Vec<_>>())
    .bind(unique.iter().map(|i| i.key.kind.as_str()).collect::<Vec<_>>())
    .bind(unique.iter().map(|i| i.key.id).collect::<Vec<_>>())
    .bind(unique.iter().map(|i| i.key.group).collect::<Vec<_>>())
    .bind(unique.iter().map(|i| i.shard.0).collect::<Vec<_>>())
    .bind(unique.iter().map(|i| i.dedupe_key.as_str()).collect::<Vec<_>>())
    .bind(unique.iter().map(|i| i.input.to_string()).collect::<Vec<_>>())
    .bind(unique.iter().map(|i| i.remember).collect::<Vec<_>>())
    .bind(now)
    .bind(unique.iter().map(|i| i.reply).collect::<Vec<_>>())
    .fetch_all(&mut *conn)
    .await?;
    // Ids per key in insertion order, handed out in item order.
    let mut ids: HashMap<String, std::collections::VecDeque<i64>> = HashMap::new();
    let mut rows = rows;
    rows.sort_unstable();
    for (id, k) in rows {
        ids.entry(k).or_default().push_back(id);
    }
    let inserted: Vec<Inserted> = items
        .iter()
        .map(
            |i| match ids.get_mut(&i.dedupe_key).and_then(|q| q.pop_front()) {
                Some(id) => Inserted::New {
                    id,
                    key: i.key,
                    shard: i.shard,
                },
                None => Inserted::Duplicate,
            },
        )
        .collect();
    notify_owners(conn, items, &inserted).await?;
    Ok(inserted)
}

/// Wakes the owners on other instances of the shards that got new inputs. Inside a commit's
/// transaction PostgreSQL delivers the notification when it commits, so the rows are there.
async fn notify_owners(
    conn: &mut PgConnection,
    items: &[NewInput],
    inserted: &[Inserted],
) -> Result<(), StoreError> {
    let mut shards: Vec<i32> = items
        .iter()
        .zip(inserted)
        .filter(|(i, done)| i.notify && matches!(done, Inserted::New { .. }))
        .map(|(i, _)| i.shard.0)
        .collect();
    shards.sort_unstable();
    shards.dedup();
    if !shards.is_empty() {
        sqlx::query("SELECT pg_notify($1, s::text) FROM UNNEST($2::int[]) s")
            .bind(super::pg_cluster::INBOX_CHANNEL)
            .bind(&shards)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}
