//! Tenants, and the shape of API keys: a key is shown once; only its SHA-256 is stored, looked
//! up by a visible prefix and compared in constant time (`control::keys`). A new tenant's first
//! key is its owner's.

use neuronx_supervision::{Store, StoreError, TenantId};
use rand::RngCore;

use crate::control::on_db;
use sha2::{Digest, Sha256};
use uuid::Uuid;

pub(crate) const KEY_TAG: &str = "nxk";

pub struct CreatedTenant {
    pub tenant_id: TenantId,
    pub api_key: String,
}

pub(crate) fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// A new key `nxk_<prefix>_<secret>`: 48 bits of prefix to find it, 256 bits of secret.
/// SHA-256 without a salt is enough for keys of this entropy; a slow hash is for passwords.
pub(crate) fn new_key() -> (String, String) {
    let mut rng = rand::thread_rng();
    let mut prefix = [0u8; 6];
    let mut secret = [0u8; 32];
    rng.fill_bytes(&mut prefix);
    rng.fill_bytes(&mut secret);
    let prefix = hex::encode(prefix);
    let key = format!("{KEY_TAG}_{prefix}_{}", hex::encode(secret));
    (prefix, key)
}

#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    #[error("tenant name must be 1 to 200 characters")]
    InvalidName,
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub async fn create(store: &Store, name: &str) -> Result<CreatedTenant, TenantError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(TenantError::InvalidName);
    }
    let (prefix, key) = new_key();
    let tenant_id = TenantId(Uuid::new_v4());
    let now = chrono::Utc::now().timestamp_millis();
    let tenant_sql = "INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)";
    let key_sql =
        "INSERT INTO api_keys (prefix, tenant_id, hash, created_at) VALUES ($1, $2, $3, $4)";
    // The tenant and its owner key together, or neither: a tenant without a key is unreachable.
    on_db!(store, |db, id, _json| {
        let mut tx = db.begin().await.map_err(StoreError::from)?;
        sqlx::query(tenant_sql)
            .bind(id(tenant_id.0))
            .bind(name)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from)?;
        sqlx::query(key_sql)
            .bind(&prefix)
            .bind(id(tenant_id.0))
            .bind(hash_key(&key))
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from)?;
        tx.commit().await.map_err(StoreError::from)?;
    });
    Ok(CreatedTenant {
        tenant_id,
        api_key: key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_and_well_formed() {
        let (p1, k1) = new_key();
        let (_, k2) = new_key();
        assert_ne!(k1, k2);
        assert!(k1.starts_with(&format!("nxk_{p1}_")));
        assert_eq!(k1.len(), 4 + 12 + 1 + 64);
    }

    #[test]
    fn the_stored_hash_is_not_the_key() {
        let (_, k) = new_key();
        assert_ne!(hash_key(&k), k);
        assert_eq!(hash_key(&k).len(), 64);
    }
}
