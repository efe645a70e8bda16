//! Dead letters handled by an operator: one row read or removed, always within its tenant.
//! Retrying resubmits the stored input to its actor through the engine's inbox.

use neuronx_supervision::{Store, TenantId};
use serde_json::Value;
use uuid::Uuid;

use super::{on_db, parse_uuid, ControlError};

pub struct DeadLetter {
    pub id: i64,
    pub kind: String,
    pub actor_id: Uuid,
    pub input: Value,
    pub error: String,
}

pub async fn get(store: &Store, tenant: TenantId, id: i64) -> Result<DeadLetter, ControlError> {
    let sql = "SELECT kind, CAST(actor_id AS TEXT), CAST(input AS TEXT), error
               FROM dead_letters WHERE tenant_id = $1 AND id = $2";
    let row: Option<(String, String, String, String)> =
        on_db!(store, |db, uid, _json| sqlx::query_as(sql)
            .bind(uid(tenant.0))
            .bind(id)
            .fetch_optional(db)
            .await?);
    let (kind, actor, input, error) = row.ok_or(ControlError::NotFound("dead letter"))?;
    Ok(DeadLetter {
        id,
        kind,
        actor_id: parse_uuid(&actor)?,
        input: serde_json::from_str(&input).map_err(|e| {
            neuronx_supervision::StoreError::Corrupt(format!("dead letter input: {e}"))
        })?,
        error,
    })
}

/// Removes one dead letter; false when it was already gone.
pub async fn remove(store: &Store, tenant: TenantId, id: i64) -> Result<bool, ControlError> {
    let sql = "DELETE FROM dead_letters WHERE tenant_id = $1 AND id = $2";
    let n = on_db!(store, |db, uid, _json| sqlx::query(sql)
        .bind(uid(tenant.0))
        .bind(id)
        .execute(db)
        .await?
        .rows_affected());
    Ok(n == 1)
}
