//! Retrying a dead letter: its input goes back into the inbox and the letter leaves the list in
//! one transaction. Done as two writes (resubmit, then remove), a crash between them left a letter
//! listed whose input had already been resubmitted (ADR 0036, "writes that follow a commit").

use super::pg_commit;
use super::sqlite_commit;
use super::types::{Inserted, NewInput};
use super::{Store, StoreError};
use crate::key::TenantId;

/// What a retry found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retried {
    /// The letter was there: it is gone and its input is durable in the inbox (`Inserted::New`),
    /// or was already (`Inserted::Duplicate`: an earlier retry's input, same dedupe key).
    Resubmitted(Inserted),
    /// No such letter of the tenant (handled by someone else meanwhile); nothing was written.
    Gone,
}

impl Store {
    /// Removes dead letter `id` of `tenant` and makes `input` durable, atomically.
    pub async fn retry_dead_letter(
        &self,
        tenant: TenantId,
        id: i64,
        input: NewInput,
    ) -> Result<Retried, StoreError> {
        match self {
            Store::Postgres(pg) => {
                let mut tx = pg.pool.begin().await?;
                let removed =
                    sqlx::query("DELETE FROM dead_letters WHERE tenant_id = $1 AND id = $2")
                        .bind(tenant.0)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                if removed == 0 {
                    return Ok(Retried::Gone);
                }
                let inserted =
                    pg_commit::insert_inputs(&mut tx, &[input], pg.clock.now_ms()).await?;
                tx.commit().await?;
                Ok(first(inserted))
            }
            Store::Sqlite(lite) => {
                let mut tx = lite.pool.begin_with("BEGIN IMMEDIATE").await?;
                let removed =
                    sqlx::query("DELETE FROM dead_letters WHERE tenant_id = ? AND id = ?")
                        .bind(tenant.0.to_string())
                        .bind(id)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                if removed == 0 {
                    return Ok(Retried::Gone);
                }
                let inserted =
                    sqlite_commit::insert_inputs(&mut tx, &[input], lite.clock.now_ms()).await?;
                tx.commit().await?;
                Ok(first(inserted))
            }
        }
    }
}

fn first(inserted: Vec<Inserted>) -> Retried {
    // One input in, one answer out; an empty answer would mean it was not inserted.
    Retried::Resubmitted(inserted.into_iter().next().unwrap_or(Inserted::Duplicate))
}
