//! The product's migrations (`migrations/`): its own tables only, applied after the runtime's
//! (`Store::migrate`) on the same pool. Both record themselves in `_sqlx_migrations`, the
//! runtime under versions 100 and up, the product under 200 and up; each ignores the other's
//! (ADR 0036).

use neuronx_supervision::store::schema::shared;
use neuronx_supervision::{Store, StoreError};

/// Applies the product's migrations. Run after `Store::migrate`: the product's first data
/// migration reads the runtime's tables.
pub async fn migrate(store: &Store) -> Result<(), StoreError> {
    match store {
        Store::Postgres(pg) => {
            shared(sqlx::migrate!("./migrations/postgres"))
                .run(pg.pool())
                .await?
        }
        Store::Sqlite(lite) => {
            shared(sqlx::migrate!("./migrations/sqlite"))
                .run(lite.pool())
                .await?
        }
    }
    Ok(())
}
