//! The runtime's migrations: its own tables only (`supervision/migrations`). The product runs
//! its migrations after these, on the same pool, recorded in the same `_sqlx_migrations` table
//! under versions of its own (200 and up); each migrator ignores the other's versions.
//!
//! Versions 1 to 8 were the combined schema of both, before each crate owned its tables. Their
//! rows stay in `_sqlx_migrations`, and the baselines (runtime 100, product 200) are written to
//! be no-ops on a database they completed. A database whose combined history stopped earlier
//! lacks columns the baselines would not add: it is refused with a clear message (ADR 0036).

use sqlx::migrate::Migrator;

use super::StoreError;

/// The last version of the combined schema.
pub const LEGACY_LAST: i64 = 8;

/// Versions below this are the combined schema's.
const LEGACY_BELOW: i64 = 100;

/// Refuses a database migrated part-way through the combined schema (versions 1 to 8).
pub fn check_legacy(applied: &[i64]) -> Result<(), StoreError> {
    let legacy: Vec<i64> = applied
        .iter()
        .copied()
        .filter(|v| *v < LEGACY_BELOW)
        .collect();
    match legacy.iter().max() {
        Some(&last) if last < LEGACY_LAST => Err(StoreError::LegacySchema { last }),
        _ => Ok(()),
    }
}

/// `embedded` (a `sqlx::migrate!` value) set to leave the other crate's versions alone.
pub fn shared(mut embedded: Migrator) -> Migrator {
    embedded.set_ignore_missing(true);
    embedded
}

pub(super) async fn run_pg(pool: &sqlx::PgPool) -> Result<(), StoreError> {
    let exists: Option<String> =
        sqlx::query_scalar("SELECT CAST(to_regclass('_sqlx_migrations') AS TEXT)")
            .fetch_one(pool)
            .await?;
    if exists.is_some() {
        let applied: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
                .fetch_all(pool)
                .await?;
        check_legacy(&applied)?;
    }
    // sqlx takes a PostgreSQL advisory lock around migrations, so instances may start together.
    shared(sqlx::migrate!("./migrations/postgres"))
        .run(pool)
        .await?;
    Ok(())
}

pub(super) async fn run_sqlite(pool: &sqlx::SqlitePool) -> Result<(), StoreError> {
    let exists: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
    )
    .fetch_one(pool)
    .await?;
    if exists > 0 {
        let applied: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
                .fetch_all(pool)
                .await?;
        check_legacy(&applied)?;
    }
    shared(sqlx::migrate!("./migrations/sqlite"))
        .run(pool)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_or_complete_history_passes() {
        assert!(check_legacy(&[]).is_ok());
        assert!(check_legacy(&[100, 101, 200]).is_ok());
        assert!(check_legacy(&(1..=8).chain([100, 200]).collect::<Vec<_>>()).is_ok());
    }

    #[test]
    fn a_history_stopped_early_is_refused() {
        match check_legacy(&[1, 2, 3, 4, 5]) {
            Err(StoreError::LegacySchema { last }) => assert_eq!(last, 5),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
}
