//! Embedded SQLite: one engine process owns every shard (a file lock keeps a second one out),
//! so statements run one by one inside a single immediate transaction, and each record of a
//! group commit sits in its own savepoint so a stale one is rolled back alone.

use std::collections::HashSet;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

use super::pg::{completions, recorded_followups};
use super::rows::*;
use super::sqlite_commit::{commit_one, consume, epoch_matches, insert_inputs};
use super::types::*;
use super::StoreError;
use crate::clock::Clock;
use crate::key::{Epoch, ShardId};

mod fair;

#[derive(Clone, Debug)]
pub struct SqliteStore {
    pub(super) pool: SqlitePool,
    /// The runtime's clock (see `PgStore::clock`); SQLite's own clock is the process's.
    pub(super) clock: Clock,
}

impl SqliteStore {
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections.max(2))
            .after_release(|conn, _| Box::pin(release_outside_transaction(conn)))
            .connect_with(options)
            .await?;
        Ok(Self {
            pool,
            clock: Clock::system(),
        })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    pub async fn close(&self) {
        self.pool.close().await
    }

    pub async fn migrate(&self, shard_count: u32) -> Result<(), StoreError> {
        super::schema::run_sqlite(&self.pool).await?;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query(
            "INSERT INTO engine_meta (key, value) VALUES ('shard_count', ?) ON CONFLICT DO NOTHING",
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
        for id in 0..shard_count {
            sqlx::query("INSERT INTO shards (id) VALUES (?) ON CONFLICT DO NOTHING")
                .bind(id as i32)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The process clock (one engine, one machine), after a round trip that proves the
    /// database answers, as readiness checks expect.
    pub async fn now_ms(&self) -> Result<i64, StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(now_ms())
    }

    pub async fn timers_due(
        &self,
        shards: &[ShardId],
        kinds: &[crate::key::ActorKind],
        due: std::ops::Range<i64>,
        after: Option<&TimerCursor>,
        limit: i64,
    ) -> Result<Vec<TimerRow>, StoreError> {
        // Per backend: no arrays in SQLite, so the shard numbers are formatted into the text
        // and each kind gets a placeholder of its own. Rows of a kind nobody here registered
        // are skipped by the query, not after it: they would fill the limit and leave no room
        // for timers that can fire (issue #13, item 5).
        if kinds.is_empty() {
            return Ok(Vec::new());
        }
        let kind_params = vec!["?"; kinds.len()].join(",");
        let from = if after.is_some() {
            "AND (due_at, tenant_id, kind, actor_id, name) > (?, ?, ?, ?, ?)"
        } else {
            ""
        };
        let sql = format!(
            "SELECT {TIMER_COLS} FROM timers
             WHERE due_at >= ? AND due_at < ? AND shard IN ({}) AND kind IN ({kind_params})
               {from}
             ORDER BY due_at, tenant_id, kind, actor_id, name LIMIT ?",
            shard_list(shards.iter().map(|s| s.0))
        );
        let mut query = sqlx::query_as::<_, TimerTuple>(&sql)
            .bind(due.start)
            .bind(due.end);
        for kind in kinds {
            query = query.bind(kind.as_str());
        }
        if let Some(a) = after {
            query = query
                .bind(a.due_at_ms)
                .bind(a.tenant.0.to_string())
                .bind(a.kind.as_str())
                .bind(a.id.to_string())
                .bind(a.name.as_str());
        }
        let rows = query.bind(limit).fetch_all(&self.pool).await?;
        rows.into_iter().map(timer_row).collect()
    }

    pub async fn insert_inbox(&self, items: &[NewInput]) -> Result<Vec<Inserted>, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let inserted = insert_inputs(&mut tx, items, self.clock.now_ms()).await?;
        tx.commit().await?;
        Ok(inserted)
    }

    pub async fn commit(&self, batch: &[CommitRecord]) -> Result<Vec<CommitOutcome>, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let mut outcomes = Vec::with_capacity(batch.len());
        for record in batch {
            sqlx::query("SAVEPOINT record").execute(&mut *tx).await?;
            let outcome = commit_one(&mut tx, record).await?;
            if !matches!(outcome, CommitOutcome::Committed { .. }) {
                sqlx::query("ROLLBACK TO record").execute(&mut *tx).await?;
            }
            sqlx::query("RELEASE record").execute(&mut *tx).await?;
            outcomes.push(outcome);
        }
        tx.commit().await?;
        Ok(outcomes)
    }

    /// Reads only (see `Store::orphaned_effects`). The immediate transaction is the shard
    /// lock here, as for commits and claims: it excludes every other writer of the file.
    pub async fn orphaned_effects(
        &self,
        held: &[(ShardId, Epoch)],
        older_than_ms: i64,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let current: Vec<(i32, i64)> = sqlx::query_as("SELECT id, epoch FROM shards")
            .fetch_all(&mut *tx)
            .await?;
        let live: HashSet<(i32, i64)> = current.into_iter().collect();
        let held = held
            .iter()
            .filter(|(s, e)| live.contains(&(s.0, e.0)))
            .map(|(s, _)| s.0);
        let rows: Vec<OutboxTuple> = sqlx::query_as(&format!(
            "SELECT {OUTBOX_COLS} FROM outbox
             WHERE status = 'inflight' AND updated_at < ? AND shard IN ({}) ORDER BY id",
            shard_list(held)
        ))
        .bind(self.clock.now_ms() - older_than_ms)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.into_iter().map(outbox_row).collect()
    }

    /// Compare-and-set on `status = 'inflight'` and the claim, as on PostgreSQL (see there).
    pub async fn complete_outbox(
        &self,
        done: &[EffectDone],
    ) -> Result<Vec<Completion>, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let mut written = Vec::new();
        for d in done {
            let changed = sqlx::query(
                // Handed back unsent: the fate a hold left it in flight, if any.
                "UPDATE outbox SET status = CASE WHEN ?1 = 'pending' AND hold IS NOT NULL
                                                 THEN hold ELSE ?1 END,
                                   result = ?2, updated_at = ?3, hold = NULL
                 WHERE id = ?4 AND status = 'inflight' AND attempts = ?5",
            )
            .bind(d.status.as_str())
            .bind(d.result.to_string())
            .bind(d.now_ms)
            .bind(d.outbox_id)
            .bind(d.claim)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if changed > 0 {
                written.push(d.outbox_id);
            }
        }
        let (recorded, followups) = recorded_followups(done, written);
        let inserted = insert_inputs(&mut tx, &followups, self.clock.now_ms()).await?;
        tx.commit().await?;
        Ok(completions(done, &recorded, inserted))
    }

    pub async fn dead_letter(&self, l: &DeadLetter) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        if !epoch_matches(&mut tx, l.shard, l.epoch).await?
            || !consume(&mut tx, &l.key, &l.consumed).await?
        {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO dead_letters (tenant_id, kind, actor_id, input, error, attempts, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(l.key.tenant.0.to_string())
        .bind(l.key.kind.as_str())
        .bind(l.key.id.to_string())
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

/// Whether a connection going back to the pool may stay open: not while it is still inside a
/// transaction. A future dropped at the wrong moment (a lease renewal past its deadline, the
/// caller of a write giving up) can leave a transaction begun with nothing left to end it, and
/// on SQLite that connection holds the only write lock: every other write waits out its busy
/// timeout and fails, until the connection is recycled minutes later. Found by the fault
/// simulation (seeds 102798, 103364, 103455, 104441: no write for 30 s after a stall). The
/// common case costs an atomic read. Otherwise a ping first runs what a dropped `Transaction`
/// queued (its rollback); a connection still in a transaction after that is closed, which
/// rolls it back and frees the lock. (A ping on every release cost about 6 % of
/// `bench engine`'s throughput on SQLite.)
async fn release_outside_transaction(
    conn: &mut sqlx::SqliteConnection,
) -> Result<bool, sqlx::Error> {
    use sqlx::Connection;
    if !conn.is_in_transaction() {
        return Ok(true);
    }
    conn.ping().await?;
    let clean = !conn.is_in_transaction();
    if !clean {
        tracing::warn!("a connection came back inside a transaction: closing it");
    }
    Ok(clean)
}

/// A SQL list of shard numbers. They are integers, so formatting them in is safe; an empty set
/// becomes a list that matches nothing.
fn shard_list(shards: impl Iterator<Item = i32>) -> String {
    let list: Vec<String> = shards.map(|s| s.to_string()).collect();
    if list.is_empty() {
        "NULL".into()
    } else {
        list.join(",")
    }
}
