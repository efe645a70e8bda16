//! PostgreSQL: batched, array-bound statements so a group commit costs a handful of round trips
//! whatever its size.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

use super::pg_commit::{insert_inputs, key_tuple, try_commit, Attempt, KeyTuple};
use super::rows::*;
use super::types::*;
use super::StoreError;
use crate::clock::Clock;
use crate::key::{ActorKey, Epoch, ShardId};

mod fair;

/// The database clock in milliseconds: leases depend on it, never on an instance's clock.
pub(super) const NOW_MS: &str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

/// Milliseconds a session may sit idle inside a transaction (our transactions never wait on
/// anything but the database between statements).
const IDLE_IN_TRANSACTION_MS: &str = "1000";

/// `rows::OUTBOX_COLS` qualified by `o`, for the claims that join the outbox to other tables.
const OUTBOX_COLS_O: &str = "o.id, CAST(o.tenant_id AS TEXT), o.kind, CAST(o.actor_id AS TEXT),
    CAST(o.grp AS TEXT), o.shard, o.idem_key, o.channel, CAST(o.payload AS TEXT), o.status,
    o.attempts, o.created_at";

/// Connections kept apart for the instance's heartbeat and lease renewals.
const LEASE_CONNECTIONS: u32 = 2;

#[derive(Clone, Debug)]
pub struct PgStore {
    pub(super) pool: PgPool,
    /// The heartbeat's and the lease renewals' own connections. On the shared pool a burst of
    /// API requests holding every connection made the renewal wait past the lease's deadline,
    /// and the instance stopped every shard host: load on the API must never stop the engine.
    pub(super) lease: PgPool,
    /// The runtime's clock: every time this store writes or compares is its `now`, bound as a
    /// parameter (ADR 0037); `now_ms` alone reads the database's own clock, to measure it.
    pub(super) clock: Clock,
}

impl PgStore {
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        // A process frozen mid-transaction (SIGSTOP, a VM stall) would keep its row locks,
        // the `FOR KEY SHARE` on its shards included, and stall the takeover that fencing makes
        // safe: the server ends such a session after a second of silence.
        //
        // Custom plans for every execution: sqlx keeps each statement prepared per connection,
        // and PostgreSQL's cached generic plan is chosen from the statistics of its first
        // executions, when the tables were small. A plan fit for an empty `actors` table scanned
        // it whole for every key once it held 100,000 rows (1-2 s a batch); planning again costs
        // well under a millisecond per batched statement.
        //
        // No JIT compilation: the planner's costs for the batched and per-shard statements
        // (a straggler poll over 256 shards, a claim sweep) pass `jit_above_cost` although they
        // read a few index pages, and compiling them cost 20-40 ms a time, once a second, in
        // a burst that every request behind it waited out (ADR 0051).
        let options = PgConnectOptions::from_str(url)?.options([
            (
                "idle_in_transaction_session_timeout",
                IDLE_IN_TRANSACTION_MS,
            ),
            ("plan_cache_mode", "force_custom_plan"),
            ("jit", "off"),
        ]);
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options.clone())
            .await?;
        let lease = PgPoolOptions::new()
            .max_connections(LEASE_CONNECTIONS)
            .acquire_timeout(Duration::from_secs(5))
            .connect_lazy_with(options);
        Ok(Self {
            pool,
            lease,
            clock: Clock::system(),
        })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub async fn close(&self) {
        self.lease.close().await;
        self.pool.close().await
    }

    pub async fn migrate(&self, shard_count: u32) -> Result<(), StoreError> {
        super::schema::run_pg(&self.pool).await?;
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(7268331)")
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO engine_meta (key, value) VALUES ('shard_count', $1) ON CONFLICT DO NOTHING",
        )
        .bind(shard_count.to_string())
        .execute(&mut *tx)
        .await?;
        let stored: String =
            sqlx::query_scalar("SELECT value FROM engine_meta WHERE key = 'shard_count'")
                .fetch_one(&mut *tx)
                .await?;
        let stored: u32 = stored
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("shard_count {stored:?}")))?;
        if stored != shard_count {
            return Err(StoreError::ShardCountMismatch {
                stored,
                configured: shard_count,
            });
        }
        sqlx::query(
            "INSERT INTO shards (id) SELECT g FROM generate_series(0, $1 - 1) g ON CONFLICT DO NOTHING",
        )
        .bind(shard_count as i32)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn now_ms(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(&format!("SELECT {NOW_MS}"))
            .fetch_one(&self.pool)
            .await?)
    }

    pub async fn load_actors(
        &self,
        keys: &[ActorKey],
    ) -> Result<Vec<Option<ActorRow>>, StoreError> {
        let rows: Vec<ActorTuple> = sqlx::query_as(&format!(
            // LATERAL: one primary-key lookup per key, whatever plan the statistics suggest
            // (a hash join over a large, bloated table took over a second for a handful of keys).
            // The keys are named t, k, i so that the selected columns can only be the actor's.
            "SELECT {ACTOR_COLS}
             FROM UNNEST($1::uuid[], $2::text[], $3::uuid[]) u(t, k, i)
             CROSS JOIN LATERAL (
                 SELECT * FROM actors x WHERE x.tenant_id = u.t AND x.kind = u.k AND x.id = u.i
             ) a"
        ))
        .bind(keys.iter().map(|k| k.tenant.0).collect::<Vec<_>>())
        .bind(keys.iter().map(|k| k.kind.as_str()).collect::<Vec<_>>())
        .bind(keys.iter().map(|k| k.id).collect::<Vec<_>>())
        .fetch_all(&self.pool)
        .await?;
        let mut found: HashMap<KeyTuple, ActorRow> = HashMap::new();
        for row in rows {
            let row = actor_row(row)?;
            found.insert((row.key.tenant.0, row.key.kind.clone(), row.key.id), row);
        }
        Ok(keys.iter().map(|k| found.remove(&key_tuple(k))).collect())
    }

    pub async fn timers_due(
        &self,
        shards: &[ShardId],
        kinds: &[crate::key::ActorKind],
        due: std::ops::Range<i64>,
        after: Option<&TimerCursor>,
        limit: i64,
    ) -> Result<Vec<TimerRow>, StoreError> {
        // Per backend: the shard set and the kinds are bound as arrays here (one prepared
        // statement whatever the sets); SQLite has no arrays. Rows of a kind nobody here
        // registered are skipped by the query, not after it: they would fill the limit and
        // leave no room for timers that can fire (issue #13, item 5). Without a cursor the row
        // comparison is against the smallest place (NULLs make it unknown, hence the OR).
        let ids: Vec<i32> = shards.iter().map(|s| s.0).collect();
        let kinds: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
        let rows: Vec<TimerTuple> = sqlx::query_as(&format!(
            "SELECT {TIMER_COLS} FROM timers
             WHERE shard = ANY($1) AND kind = ANY($2) AND due_at >= $3 AND due_at < $4
               AND ($6::BIGINT IS NULL
                    OR (due_at, tenant_id, kind, actor_id, name) > ($6, $7, $8, $9, $10))
             ORDER BY due_at, tenant_id, kind, actor_id, name LIMIT $5"
        ))
        .bind(ids)
        .bind(kinds)
        .bind(due.start)
        .bind(due.end)
        .bind(limit)
        .bind(after.map(|a| a.due_at_ms))
        .bind(after.map(|a| a.tenant.0))
        .bind(after.map(|a| a.kind.as_str()))
        .bind(after.map(|a| a.id))
        .bind(after.map(|a| a.name.as_str()))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(timer_row).collect()
    }

    pub async fn insert_inbox(&self, items: &[NewInput]) -> Result<Vec<Inserted>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        insert_inputs(&mut conn, items, self.clock.now_ms()).await
    }

    pub async fn commit(&self, batch: &[CommitRecord]) -> Result<Vec<CommitOutcome>, StoreError> {
        let mut outcomes: Vec<Option<CommitOutcome>> = vec![None; batch.len()];
        loop {
            // A round takes each actor and each input once, in batch order; a later record of
            // the same actor waits for the next round, so it sees the earlier one committed
            // (the committer never sends two of one actor today, but the contract is in order).
            let mut actors = HashSet::new();
            let mut inputs = HashSet::new();
            let round: Vec<usize> = (0..batch.len())
                .filter(|&i| outcomes[i].is_none())
                .filter(|&i| {
                    let r = &batch[i];
                    let fresh_input = match r.consumed {
                        Consumed::Inbox { id } => inputs.insert(id),
                        Consumed::Timer { .. } => true,
                    };
                    // Both checks run, so a deferred record does not claim its input.
                    actors.insert(key_tuple(&r.key)) & fresh_input
                })
                .collect();
            if round.is_empty() {
                break;
            }
            let live: Vec<&CommitRecord> = round.iter().map(|&i| &batch[i]).collect();
            let attempt = match self.pool.acquire().await {
                Ok(mut conn) => try_commit(&mut conn, &live).await,
                Err(e) => Err(e.into()),
            };
            let attempt = match attempt {
                Ok(a) => a,
                // Nothing committed yet: the caller may retry the whole batch.
                Err(e) if outcomes.iter().all(Option::is_none) => return Err(e),
                // Earlier rounds committed: keep their outcomes, and let the rest be retried.
                Err(e) => {
                    tracing::warn!(error = %e, "a later commit round failed");
                    for slot in outcomes.iter_mut().filter(|o| o.is_none()) {
                        *slot = Some(CommitOutcome::Unavailable);
                    }
                    break;
                }
            };
            match attempt {
                Attempt::Committed(sent) => {
                    for (i, sent) in round.iter().zip(sent) {
                        outcomes[*i] = Some(CommitOutcome::Committed { sent });
                    }
                }
                Attempt::Excluded(excluded) => {
                    for (pos, outcome) in excluded {
                        outcomes[round[pos]] = Some(outcome);
                    }
                }
            }
        }
        Ok(outcomes
            .into_iter()
            .map(|o| o.unwrap_or(CommitOutcome::Stale))
            .collect())
    }

    /// A fair share among tenants (see `fair::CLAIM`): every tenant with claimable effects in
    /// the held shards gets its turn in each claim, its oldest effects first, and room the
    /// shares leave goes to the oldest others, shards in the order given (the dispatcher
    /// rotates it). A claim comes back short only when the held shards have nothing more to
    /// claim. The cost follows the claim and the tenants with work, not the backlog: one short
    /// index read per tenant and shard, one per effect considered.
    ///
    /// The held shards' rows are locked `FOR KEY SHARE` in id order, as commits lock them: a
    /// takeover (`FOR UPDATE`) waits for the claim to finish, and a claim that waited on a
    /// takeover sees the new epoch and claims nothing of that shard.
    ///
    /// An effect waits while an earlier one of its actor and channel is pending or in flight, so
    /// an actor's effects leave in commit order (ids grow in commit order: an actor commits one
    /// transition at a time). Held and canceled effects hold nothing back.
    pub async fn claim_outbox(
        &self,
        held: &[(ShardId, Epoch)],
        limit: i64,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let (ids, epochs) = split_held(held);
        let rows: Vec<OutboxTuple> = sqlx::query_as(&format!("{}{OUTBOX_COLS_O}", fair::CLAIM))
            .bind(ids)
            .bind(epochs)
            .bind(limit)
            // The claim's time, which the orphan check compares with its own now (ADR 0037).
            .bind(self.clock.now_ms())
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(outbox_row).collect()
    }

    /// Reads only (see `Store::orphaned_effects`), under the same shard lock as claims.
    pub async fn orphaned_effects(
        &self,
        held: &[(ShardId, Epoch)],
        older_than_ms: i64,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let (ids, epochs) = split_held(held);
        let rows: Vec<OutboxTuple> = sqlx::query_as(&format!(
            "WITH live AS MATERIALIZED (
                 SELECT s.id FROM shards s
                 JOIN UNNEST($1::int[], $2::bigint[]) f(shard, epoch)
                   ON s.id = f.shard AND s.epoch = f.epoch
                 ORDER BY s.id FOR KEY SHARE OF s
             )
             SELECT {OUTBOX_COLS_O} FROM live l JOIN outbox o ON o.shard = l.id
             WHERE o.status = 'inflight' AND o.updated_at < $3
             ORDER BY o.id"
        ))
        .bind(ids)
        .bind(epochs)
        .bind(self.clock.now_ms() - older_than_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(outbox_row).collect()
    }

    /// Compare-and-set on `status = 'inflight'` and the claim (`attempts`): a completion that
    /// comes after the shard's next holder recorded the effect `unknown` (its claimer froze
    /// past the lease), or after the row was claimed again, changes nothing and writes no
    /// follow-up. The claim is the fence here rather than the shard's epoch: an effect still
    /// running when its shard was handed over (rebalancing) is recorded by the instance that
    /// ran it, as long as nobody declared it unknown first.
    pub async fn complete_outbox(
        &self,
        done: &[EffectDone],
    ) -> Result<Vec<Completion>, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET LOCAL enable_hashjoin = off")
            .execute(&mut *tx)
            .await?;
        let ids: Vec<i64> = done.iter().map(|d| d.outbox_id).collect();
        let claims: Vec<i32> = done.iter().map(|d| d.claim).collect();
        let statuses: Vec<&str> = done.iter().map(|d| d.status.as_str()).collect();
        let results: Vec<String> = done.iter().map(|d| d.result.to_string()).collect();
        let now = done.first().map(|d| d.now_ms).unwrap_or_default();
        let written: Vec<i64> = sqlx::query_scalar(
            // An effect handed back unsent (pending) takes the fate a pause or an opt-out left
            // it while it was in flight (`write_holds`).
            "UPDATE outbox o SET result = u.result::jsonb, updated_at = $5, hold = NULL,
                 status = CASE WHEN u.status = 'pending' AND o.hold IS NOT NULL
                               THEN o.hold ELSE u.status END
             FROM UNNEST($1::bigint[], $2::int[], $3::text[], $4::text[]) u(id, claim, status, result)
             WHERE o.id = u.id AND o.status = 'inflight' AND o.attempts = u.claim
             RETURNING o.id",
        )
        .bind(ids)
        .bind(claims)
        .bind(statuses)
        .bind(results)
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        let (recorded, followups) = recorded_followups(done, written);
        let inserted = insert_inputs(&mut tx, &followups, now).await?;
        tx.commit().await?;
        Ok(completions(done, &recorded, inserted))
    }

    pub async fn dead_letter(&self, l: &DeadLetter) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let epoch: Option<i64> =
            sqlx::query_scalar("SELECT epoch FROM shards WHERE id = $1 FOR KEY SHARE")
                .bind(l.shard.0)
                .fetch_optional(&mut *tx)
                .await?;
        if epoch != Some(l.epoch.0) {
            return Ok(false);
        }
        let consumed = match &l.consumed {
            Consumed::Inbox { id } => sqlx::query("DELETE FROM inbox WHERE shard = $1 AND id = $2")
                .bind(l.shard.0)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected(),
            Consumed::Timer { name, due_at_ms } => sqlx::query(
                "DELETE FROM timers WHERE tenant_id = $1 AND kind = $2 AND actor_id = $3 AND name = $4 AND due_at = $5",
            )
            .bind(l.key.tenant.0)
            .bind(l.key.kind.as_str())
            .bind(l.key.id)
            .bind(name)
            .bind(due_at_ms)
            .execute(&mut *tx)
            .await?
            .rows_affected(),
        };
        if consumed == 0 {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO dead_letters (tenant_id, kind, actor_id, input, error, attempts, created_at)
             VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7)",
        )
        .bind(l.key.tenant.0)
        .bind(l.key.kind.as_str())
        .bind(l.key.id)
        .bind(l.input.to_string())
        .bind(&l.error)
        .bind(l.attempts)
        .bind(l.now_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }
}

pub(super) fn split_held(held: &[(ShardId, Epoch)]) -> (Vec<i32>, Vec<i64>) {
    held.iter().map(|(s, e)| (s.0, e.0)).unzip()
}

/// Which completions were written (`written`: their outbox ids, each once), and the follow-ups
/// of those, in order.
pub(super) fn recorded_followups(
    done: &[EffectDone],
    written: Vec<i64>,
) -> (Vec<bool>, Vec<NewInput>) {
    let mut written: HashSet<i64> = written.into_iter().collect();
    // A row completed twice in one batch is written once: the first item takes it.
    let recorded: Vec<bool> = done.iter().map(|d| written.remove(&d.outbox_id)).collect();
    let followups = done
        .iter()
        .zip(&recorded)
        .filter(|(_, r)| **r)
        .filter_map(|(d, _)| d.followup.clone())
        .collect();
    (recorded, followups)
}

/// One answer per completion, given which were recorded and the follow-ups' insertions.
pub(super) fn completions(
    done: &[EffectDone],
    recorded: &[bool],
    inserted: Vec<Inserted>,
) -> Vec<Completion> {
    let mut inserted = inserted.into_iter();
    done.iter()
        .zip(recorded)
        .map(|(d, r)| match (r, &d.followup) {
            (false, _) => Completion::Refused,
            (true, None) => Completion::Recorded(None),
            (true, Some(_)) => {
                Completion::Recorded(Some(inserted.next().unwrap_or(Inserted::Duplicate)))
            }
        })
        .collect()
}
