//! Durable storage behind one interface, with two real backends: PostgreSQL for production and
//! several instances, embedded SQLite as the zero-setup default for one instance.
//!
//! Both backends have the same tables and the same semantics; the conformance suite in
//! `tests/store_conformance.rs` runs against both. Every write of a shard's data checks the
//! shard's epoch inside the same transaction. Where the two agree on the SQL, one text serves
//! both (`both::on_both!`, `reads.rs`); the commit, claim and lease paths are tuned per backend.

mod both;
mod dead_letters;
mod fault;
mod lookups;
mod pg;
mod pg_cluster;
mod pg_commit;
mod reads;
mod rows;
pub mod schema;
mod sqlite;
mod sqlite_cluster;
mod sqlite_commit;
mod types;

use std::time::Duration;

pub use dead_letters::Retried;
pub use fault::{classify, ErrorClass, Failure};
pub use pg::PgStore;
pub use pg_cluster::{INBOX_CHANNEL, REPLY_CHANNEL};
pub use sqlite::SqliteStore;
pub use types::*;

use crate::clock::Clock;
use crate::key::{ActorKey, Epoch, ShardId};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database url {0:?}: expected postgres://... or sqlite://...")]
    UnsupportedUrl(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("the database has {stored} shards but the configuration asks for {configured}")]
    ShardCountMismatch { stored: u32, configured: u32 },
    #[error(
        "the database's migrations stop at version {last} of the combined schema, which ends at \
         {}: run `neuronx migrate` of an earlier release (up to commit ae2ac2f) on it first",
        schema::LEGACY_LAST
    )]
    LegacySchema { last: i64 },
}

impl StoreError {
    /// The database refused the data itself (PostgreSQL class 22, e.g. a NUL character in
    /// JSON): retrying cannot help, unlike a lost connection.
    pub fn is_data_error(&self) -> bool {
        match self {
            StoreError::Db(sqlx::Error::Database(e)) => {
                e.code().is_some_and(|c| c.starts_with("22"))
            }
            StoreError::Corrupt(_) => true,
            _ => false,
        }
    }
}

/// A connection inside a transaction a caller opened on the store's own pool, so that what the
/// engine writes there commits (or not) with the caller's own rows.
pub enum InTx<'a> {
    Pg(&'a mut sqlx::PgConnection),
    Sqlite(&'a mut sqlx::SqliteConnection),
}

/// The engine's storage. An enum rather than a trait object: there are exactly two backends and
/// the compiler checks that both implement every operation.
#[derive(Clone, Debug)]
pub enum Store {
    Postgres(PgStore),
    Sqlite(SqliteStore),
}

macro_rules! each {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            Store::Postgres($s) => $e,
            Store::Sqlite($s) => $e,
        }
    };
}

impl Store {
    /// Connects to `url` (`postgres://...` or `sqlite://...`; a missing SQLite file is created).
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Store::Postgres(
                PgStore::connect(url, max_connections).await?,
            ))
        } else if url.starts_with("sqlite:") {
            Ok(Store::Sqlite(
                SqliteStore::connect(url, max_connections).await?,
            ))
        } else {
            Err(StoreError::UnsupportedUrl(url.to_owned()))
        }
    }

    /// This store with every time it writes or compares taken from `clock` (the engine's), on
    /// the same pool.
    pub fn with_clock(&self, clock: Clock) -> Store {
        match self {
            Store::Postgres(pg) => Store::Postgres(PgStore {
                pool: pg.pool.clone(),
                lease: pg.lease.clone(),
                clock,
            }),
            Store::Sqlite(lite) => Store::Sqlite(SqliteStore {
                pool: lite.pool.clone(),
                clock,
            }),
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Store::Postgres(_) => Backend::Postgres,
            Store::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// Applies the runtime's migrations (its own tables only) and creates the shard rows on first
    /// use. The product applies its own afterwards (`schema::shared`).
    pub async fn migrate(&self, shard_count: u32) -> Result<(), StoreError> {
        each!(self, s => s.migrate(shard_count).await)
    }

    pub async fn close(&self) {
        each!(self, s => s.close().await)
    }

    /// The database's own clock, in milliseconds since the epoch (what the engine's `Clock`
    /// measures itself against; everything else uses the clock).
    pub async fn now_ms(&self) -> Result<i64, StoreError> {
        each!(self, s => s.now_ms().await)
    }

    // ----- ownership

    /// Claims `shard` for `owner` if it is free or its lease has expired (or unconditionally with
    /// `force`, which only the embedded engine uses: its file lock already excludes others).
    /// Returns the new lease, whose epoch is one more than the last owner's.
    pub async fn claim_shard(
        &self,
        shard: ShardId,
        owner: &str,
        ttl: Duration,
        force: bool,
    ) -> Result<Option<Lease>, StoreError> {
        each!(self, s => s.claim_shard(shard, owner, ttl, force).await)
    }

    /// Extends the leases `owner` still holds at the given epochs; returns those renewed.
    pub async fn renew_shards(
        &self,
        owner: &str,
        held: &[(ShardId, Epoch)],
        ttl: Duration,
    ) -> Result<Vec<Lease>, StoreError> {
        each!(self, s => s.renew_shards(owner, held, ttl).await)
    }

    pub async fn release_shards(
        &self,
        owner: &str,
        held: &[(ShardId, Epoch)],
    ) -> Result<(), StoreError> {
        each!(self, s => s.release_shards(owner, held).await)
    }

    /// Shards nobody holds, or whose lease has run out (database clock).
    pub async fn free_shards(&self) -> Result<Vec<ShardId>, StoreError> {
        each!(self, s => s.free_shards().await)
    }

    /// PostgreSQL: a listener for inbox wake-ups from other instances. SQLite has one engine
    /// per file and no notifications.
    pub async fn inbox_listener(&self) -> Result<Option<sqlx::postgres::PgListener>, StoreError> {
        match self {
            Store::Postgres(s) => s.inbox_listener().await.map(Some),
            Store::Sqlite(_) => Ok(None),
        }
    }

    // ----- membership

    /// Registers or refreshes instance `id` (`fresh`: it has just started) and returns every
    /// registered instance, read at the same instant of the database clock.
    pub async fn heartbeat(
        &self,
        id: &str,
        fresh: bool,
        shared_limits: bool,
    ) -> Result<Membership, StoreError> {
        each!(self, s => s.heartbeat(id, fresh, shared_limits).await)
    }

    pub async fn membership(&self) -> Result<Membership, StoreError> {
        each!(self, s => s.membership().await)
    }

    pub async fn deregister(&self, id: &str) -> Result<(), StoreError> {
        each!(self, s => s.deregister(id).await)
    }

    pub async fn prune_instances(&self, before_ms: i64) -> Result<u64, StoreError> {
        each!(self, s => s.prune_instances(before_ms).await)
    }

    // ----- answers for callers on other instances

    /// Takes (reads and deletes) the answers to inbox inputs `ids` whose owner applied them:
    /// one slot per id, `None` while not applied yet.
    pub async fn take_replies(
        &self,
        ids: &[i64],
    ) -> Result<Vec<Option<serde_json::Value>>, StoreError> {
        each!(self, s => s.take_replies(ids).await)
    }

    pub async fn prune_replies(&self, before_ms: i64) -> Result<u64, StoreError> {
        each!(self, s => s.prune_replies(before_ms).await)
    }

    // ----- the actor's own data

    /// Commits a batch of transitions in one transaction. Items that cannot commit (fenced,
    /// stale input, version conflict) are reported and left out; the rest commit together.
    pub async fn commit(&self, batch: &[CommitRecord]) -> Result<Vec<CommitOutcome>, StoreError> {
        each!(self, s => s.commit(batch).await)
    }

    /// Makes inputs durable. A duplicate of an earlier dedupe key is reported, not inserted.
    pub async fn insert_inbox(&self, items: &[NewInput]) -> Result<Vec<Inserted>, StoreError> {
        each!(self, s => s.insert_inbox(items).await)
    }

    /// Makes inputs durable inside a transaction the caller opened on this store's pool: they
    /// exist if, and only if, it commits. A duplicate of an earlier dedupe key is reported.
    pub async fn insert_inbox_in(
        &self,
        conn: InTx<'_>,
        items: &[NewInput],
    ) -> Result<Vec<Inserted>, StoreError> {
        match (self, conn) {
            (Store::Postgres(pg), InTx::Pg(c)) => {
                pg_commit::insert_inputs(c, items, pg.clock.now_ms()).await
            }
            (Store::Sqlite(lite), InTx::Sqlite(c)) => {
                sqlite_commit::insert_inputs(c, items, lite.clock.now_ms()).await
            }
            _ => Err(StoreError::Corrupt(
                "a transaction of one backend was handed to the other's store".into(),
            )),
        }
    }

    /// Inputs of `shard` waiting to be applied that were written before `created_before_ms`
    /// (the safety-net poll leaves fresh rows to their in-process delivery), oldest first.
    pub async fn pending_inbox(
        &self,
        shard: ShardId,
        created_before_ms: i64,
        limit: i64,
    ) -> Result<Vec<InboxRow>, StoreError> {
        let poll = InboxPoll {
            shard,
            created_before_ms,
        };
        let mut rows = self.pending_inboxes(&[poll], limit).await?;
        Ok(rows.pop().unwrap_or_default())
    }

    /// Several shards' inbox reads in one round trip: one list per poll, in the order asked,
    /// each oldest first and at most `limit` long.
    pub async fn pending_inboxes(
        &self,
        polls: &[InboxPoll],
        limit: i64,
    ) -> Result<Vec<Vec<InboxRow>>, StoreError> {
        each!(self, s => s.pending_inboxes(polls, limit).await)
    }

    /// Loads the checkpoints of several actors in one round trip, in the order asked.
    pub async fn load_actors(
        &self,
        keys: &[ActorKey],
    ) -> Result<Vec<Option<ActorRow>>, StoreError> {
        match self {
            Store::Postgres(s) => s.load_actors(keys).await,
            // One statement per key: SQLite runs in process, so there is no round trip to save.
            Store::Sqlite(_) => {
                let mut out = Vec::with_capacity(keys.len());
                for key in keys {
                    out.push(
                        self.get_actor(key.tenant, key.kind.as_str(), key.id)
                            .await?,
                    );
                }
                Ok(out)
            }
        }
    }

    /// The timers of `shards` and of `kinds` due in `due` (milliseconds, start included), the
    /// earliest `limit` of them, earliest first (timers due at one instant in key order).
    pub async fn timers_due_before(
        &self,
        shards: &[ShardId],
        kinds: &[crate::key::ActorKind],
        due: std::ops::Range<i64>,
        limit: i64,
    ) -> Result<Vec<TimerRow>, StoreError> {
        each!(self, s => s.timers_due(shards, kinds, due, None, limit).await)
    }

    /// As [`Store::timers_due_before`], starting just after `after` (the last row of a read
    /// cut at its limit): the next slice of a backlog, without reading the earlier ones again.
    pub async fn timers_due_after(
        &self,
        shards: &[ShardId],
        kinds: &[crate::key::ActorKind],
        after: &TimerCursor,
        until: i64,
        limit: i64,
    ) -> Result<Vec<TimerRow>, StoreError> {
        let due = after.due_at_ms..until;
        each!(self, s => s.timers_due(shards, kinds, due, Some(after), limit).await)
    }

    /// Claims up to `limit` pending effects of shards held at the given epochs, fenced.
    pub async fn claim_outbox(
        &self,
        held: &[(ShardId, Epoch)],
        limit: i64,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        each!(self, s => s.claim_outbox(held, limit).await)
    }

    /// Effects of shards held at the given epochs that were claimed more than `older_than_ms`
    /// ago and are still `inflight` (their claimer stopped), fenced. Only reads: the caller
    /// records each `unknown` through `complete_outbox` under the row's claim, so the status
    /// and the input telling the actor land together, and a claimer that finished meanwhile
    /// wins.
    pub async fn orphaned_effects(
        &self,
        held: &[(ShardId, Epoch)],
        older_than_ms: i64,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        each!(self, s => s.orphaned_effects(held, older_than_ms).await)
    }

    /// Records effect results and turns each into an input for its actor, atomically: one
    /// answer per item. Compare-and-set: an item whose row is no longer `inflight` under its
    /// claim is refused and writes nothing.
    pub async fn complete_outbox(
        &self,
        done: &[EffectDone],
    ) -> Result<Vec<Completion>, StoreError> {
        each!(self, s => s.complete_outbox(done).await)
    }

    /// Moves a poisoned input to the dead letters and consumes it, fenced.
    pub async fn dead_letter(&self, letter: &DeadLetter) -> Result<bool, StoreError> {
        each!(self, s => s.dead_letter(letter).await)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Postgres => "postgres",
            Backend::Sqlite => "sqlite",
        }
    }
}
