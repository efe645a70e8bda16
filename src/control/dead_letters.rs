//! Dead letters handled by an operator: one read or removed, always within its tenant, through
//! the runtime's own methods (the table is the runtime's). Retrying resubmits the stored input
//! to its actor through the engine's inbox.

use neuronx_supervision::{Store, TenantId};
use serde_json::Value;
use uuid::Uuid;

use super::ControlError;

pub struct DeadLetter {
    pub id: i64,
    pub kind: String,
    pub actor_id: Uuid,
    pub input: Value,
    pub error: String,
}

pub async fn get(store: &Store, tenant: TenantId, id: i64) -> Result<DeadLetter, ControlError> {
    let row = store
        .find_dead_letter(tenant, id)
        .await?
        .ok_or(ControlError::NotFound("dead letter"))?;
    Ok(DeadLetter {
        id: row.id,
        kind: row.key.kind,
        actor_id: row.key.id,
        input: row.input,
        error: row.error,
    })
}

/// Removes one dead letter; false when it was already gone.
pub async fn remove(store: &Store, tenant: TenantId, id: i64) -> Result<bool, ControlError> {
    Ok(store.remove_dead_letter(tenant, id).await?)
}
