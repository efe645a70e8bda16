//! One transaction on whichever backend the engine's store is, for a product change and its
//! audit entry together: written as two statements on the pool, a crash between them left a
//! change the log never recorded (ADR 0036, "writes that follow a commit").

use neuronx_supervision::{InTx, Store, StoreError};
use sqlx::{Postgres, Sqlite, Transaction};

pub enum Tx {
    Pg(Transaction<'static, Postgres>),
    Sqlite(Transaction<'static, Sqlite>),
}

impl Tx {
    /// Begins on the engine's pool. On SQLite it takes the write lock at once (`IMMEDIATE`), as
    /// the engine's own writes do, so two writers never deadlock upgrading a read lock.
    pub async fn begin(store: &Store) -> Result<Tx, StoreError> {
        Ok(match store {
            Store::Postgres(pg) => Tx::Pg(pg.pool().begin().await?),
            Store::Sqlite(lite) => Tx::Sqlite(lite.pool().begin_with("BEGIN IMMEDIATE").await?),
        })
    }

    /// [`Tx::begin`] for a request-path transaction run hundreds of times a second whose
    /// statements read and write a few rows each by their keys (a call's offer to reps, on the
    /// answer to a lead picking up: issue #14, p99 ≤ 20 ms at 500 a second). On PostgreSQL its
    /// statements keep one generic plan per connection instead of being planned on every
    /// execution (ADR 0026's default), which was half of their cost. The hazard ADR 0026 names,
    /// a plan chosen on small tables that scans them whole once they grow, is shut out by
    /// planning without sequential scans: every table is reached through an index, whatever
    /// its size when the plan was made. Both settings end with the transaction (ADR 0051).
    pub async fn begin_generic(store: &Store) -> Result<Tx, StoreError> {
        Ok(match store {
            Store::Postgres(pg) => Tx::Pg(
                pg.pool()
                    .begin_with(
                        "BEGIN; SET LOCAL plan_cache_mode = force_generic_plan; \
                         SET LOCAL enable_seqscan = off",
                    )
                    .await?,
            ),
            Store::Sqlite(_) => Tx::begin(store).await?,
        })
    }

    /// The transaction's connection, for the engine to write its own rows in it (an input
    /// that must commit with a product change, `EngineHandle::enqueue_in`).
    pub fn conn(&mut self) -> InTx<'_> {
        match self {
            Tx::Pg(t) => InTx::Pg(t),
            Tx::Sqlite(t) => InTx::Sqlite(t),
        }
    }

    pub async fn commit(self) -> Result<(), StoreError> {
        match self {
            Tx::Pg(t) => t.commit().await?,
            Tx::Sqlite(t) => t.commit().await?,
        }
        Ok(())
    }
}

/// `on_db!` for a transaction: `$db` is the transaction's connection.
macro_rules! on_tx {
    ($tx:expr, |$db:ident, $id:ident, $json:ident| $body:expr) => {
        match $tx {
            $crate::control::tx::Tx::Pg(t) => {
                let $db = &mut **t;
                #[allow(unused_variables)]
                let $id = |u: uuid::Uuid| u;
                #[allow(unused_variables)]
                let $json = |v: &serde_json::Value| v.clone();
                $body
            }
            $crate::control::tx::Tx::Sqlite(t) => {
                let $db = &mut **t;
                #[allow(unused_variables)]
                let $id = |u: uuid::Uuid| u.to_string();
                #[allow(unused_variables)]
                let $json = |v: &serde_json::Value| v.to_string();
                $body
            }
        }
    };
}
pub(crate) use on_tx;
