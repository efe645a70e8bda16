//! The tenant's settings: for now what a second lead of one person does
//! (`duplicate_contacts`, ADR 0046). Admins change them; every role may read them.

use neuronx_supervision::EngineHandle;
use serde::Serialize;
use serde_json::json;

use super::{authorize, Error};
use crate::contacts::{self, DuplicateContacts};
use crate::control::audit::{self, AuditAction, Entry};
use crate::control::keys::Identity;
use crate::control::{Action, Tx};

/// The tenant's settings as they apply now (defaults included).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = TenantSettings)]
pub struct SettingsView {
    /// A lead whose phone already belongs to a live opportunity: `merge` (the default) joins
    /// it, `skip` records it as its own opportunity running no cadence.
    pub duplicate_contacts: DuplicateContacts,
}

pub async fn get(engine: &EngineHandle, who: &Identity) -> Result<SettingsView, Error> {
    let tenant = authorize(who, Action::Read)?;
    Ok(SettingsView {
        duplicate_contacts: contacts::duplicate_contacts(engine.store(), tenant).await?,
    })
}

/// Stores the settings given (a field left out keeps its value). Audited.
pub async fn put(
    engine: &EngineHandle,
    who: &Identity,
    duplicate_contacts: Option<DuplicateContacts>,
) -> Result<SettingsView, Error> {
    let tenant = authorize(who, Action::ManageChannels)?;
    let Some(mode) = duplicate_contacts else {
        return get(engine, who).await;
    };
    let mut tx = Tx::begin(engine.store()).await?;
    contacts::set_duplicate_contacts(&mut tx, tenant, mode).await?;
    let after = json!({ "duplicate_contacts": mode });
    audit::commit(
        tx,
        who,
        Entry::created(
            AuditAction::SettingsUpdate,
            "tenant",
            tenant.0.to_string(),
            after,
        ),
    )
    .await?;
    Ok(SettingsView {
        duplicate_contacts: mode,
    })
}
