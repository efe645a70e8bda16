//! The tenant's settings: what a second lead of one person does (`duplicate_contacts`, ADR
//! 0046) and the postal address every email to a lead carries (`postal_address`, ADR 0049).
//! Admins change them; every role may read them.

use neuronx_supervision::EngineHandle;
use serde::Serialize;
use serde_json::{json, Map, Value};

use super::{authorize, Error};
use crate::contacts::{self, DuplicateContacts};
use crate::control::audit::{self, AuditAction, Entry};
use crate::control::keys::Identity;
use crate::control::{Action, Tx};
use crate::input::{self, Lines};
use crate::lead_email::{self, MAX_POSTAL_CHARS};

/// The tenant's settings as they apply now (defaults included).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = TenantSettings)]
pub struct SettingsView {
    /// A lead whose phone already belongs to a live opportunity: `merge` (the default) joins
    /// it, `skip` records it as its own opportunity running no cadence.
    pub duplicate_contacts: DuplicateContacts,
    /// The postal address in the footer of every email to a lead (CAN-SPAM); null: none set,
    /// and no email to a lead is sent.
    #[schema(required = true)]
    pub postal_address: Option<String>,
}

/// A change of settings: a field left out keeps its value.
#[derive(Debug, Clone, Default)]
pub struct Change {
    pub duplicate_contacts: Option<DuplicateContacts>,
    /// An empty address clears it.
    pub postal_address: Option<String>,
}

pub async fn get(engine: &EngineHandle, who: &Identity) -> Result<SettingsView, Error> {
    let tenant = authorize(who, Action::Read)?;
    let store = engine.store();
    Ok(SettingsView {
        duplicate_contacts: contacts::duplicate_contacts(store, tenant).await?,
        postal_address: lead_email::postal_address(store, tenant).await?,
    })
}

/// Stores the settings given (a field left out keeps its value). Audited.
pub async fn put(
    engine: &EngineHandle,
    who: &Identity,
    change: Change,
) -> Result<SettingsView, Error> {
    let tenant = authorize(who, Action::ManageChannels)?;
    let postal = match change.postal_address.as_deref().map(str::trim) {
        Some("") => Some(None),
        Some(address) => {
            input::check("postal_address", address, Lines::Many, 1, MAX_POSTAL_CHARS)?;
            Some(Some(address.to_owned()))
        }
        None => None,
    };
    if change.duplicate_contacts.is_none() && postal.is_none() {
        return get(engine, who).await;
    }
    let mut tx = Tx::begin(engine.store()).await?;
    let mut after = Map::new();
    if let Some(mode) = change.duplicate_contacts {
        contacts::set_duplicate_contacts(&mut tx, tenant, mode).await?;
        after.insert("duplicate_contacts".into(), json!(mode));
    }
    if let Some(address) = &postal {
        lead_email::set_postal_address(&mut tx, tenant, address.as_deref()).await?;
        after.insert("postal_address".into(), json!(address));
    }
    audit::commit(
        tx,
        who,
        Entry::created(
            AuditAction::SettingsUpdate,
            "tenant",
            tenant.0.to_string(),
            Value::Object(after),
        ),
    )
    .await?;
    get(engine, who).await
}
