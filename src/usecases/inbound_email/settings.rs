//! `/v1/channels/inbound-email`: the tenant's mail relay (its webhook signing key, sealed at
//! rest and never returned) and the reply domain its lead emails answer to (ADR 0052).

use neuronx_supervision::{EngineHandle, TenantId};
use serde::Serialize;

use crate::control::audit::{self, AuditAction, Entry};
use crate::control::keys::Identity;
use crate::control::{Action, Tx};
use crate::inbound_email::{self, Provider, StoredInbound};
use crate::secrets::Keyring;
use crate::usecases::{authorize, Error};

/// The tenant's inbound email as stored; the signing key is sealed and never returned.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = InboundEmailChannel)]
pub struct InboundView {
    /// Always `inbound_email`.
    #[schema(value_type = crate::http::openapi::InboundEmailChannelName)]
    pub channel: &'static str,
    /// Always `mailgun`: the relay whose route posts the mail.
    #[schema(value_type = crate::http::openapi::InboundEmailProvider)]
    pub provider: &'static str,
    /// Always `set`: the key itself is never returned.
    #[schema(value_type = crate::http::openapi::TokenSet)]
    pub signing_key: &'static str,
    /// The domain of the reply addresses (`reply+…@<domain>`) put on every email to a lead;
    /// null: no reply address, replies reach the sender's own mailbox.
    #[schema(required = true)]
    pub reply_domain: Option<String>,
    /// Where the relay's route must forward the mail (`forward("<webhook_url>")`): the path
    /// ends in `mime`, so Mailgun posts the raw message.
    pub webhook_url: String,
}

impl InboundView {
    fn of(s: &StoredInbound, public_url: &str, tenant: TenantId) -> Self {
        Self {
            channel: "inbound_email",
            provider: s.provider.as_str(),
            signing_key: "set",
            reply_domain: s.reply_domain.clone(),
            webhook_url: webhook_url(public_url, tenant),
        }
    }
}

/// The relay's destination for a tenant.
pub fn webhook_url(public_url: &str, tenant: TenantId) -> String {
    format!(
        "{}/webhooks/mailgun/{}/mime",
        public_url.trim_end_matches('/'),
        tenant.0
    )
}

/// The settings as given.
pub struct InboundFields {
    pub provider: Option<String>,
    pub signing_key: String,
    pub reply_domain: Option<String>,
}

/// A domain name: labels of letters, digits and inner hyphens, at least two of them.
fn domain(raw: &str) -> Result<String, Error> {
    let d = raw.trim().trim_end_matches('.').to_ascii_lowercase();
    let labels_ok = d.split('.').all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    });
    if d.len() > 253 || !labels_ok || !d.contains('.') {
        return Err(Error::invalid(
            "reply_domain",
            "must be a domain name such as reply.example.com",
        ));
    }
    Ok(d)
}

/// Stores the tenant's inbound email, the signing key sealed; audited without the key.
pub async fn put(
    engine: &EngineHandle,
    keyring: &Keyring,
    public_url: &str,
    who: &Identity,
    f: InboundFields,
) -> Result<InboundView, Error> {
    let tenant = authorize(who, Action::ManageChannels)?;
    let provider = match f.provider.as_deref().map(str::trim) {
        None | Some("mailgun") => Provider::Mailgun,
        Some(_) => return Err(Error::invalid("provider", "must be mailgun")),
    };
    let key = f.signing_key.trim();
    let key_ok = (8..=200).contains(&key.len()) && key.chars().all(|c| c.is_ascii_graphic());
    if !key_ok {
        return Err(Error::invalid(
            "signing_key",
            "must be 8 to 200 printable characters without spaces (the relay's webhook signing key)",
        ));
    }
    let reply_domain = f.reply_domain.as_deref().map(domain).transpose()?;
    let sealed = keyring.seal(key).map_err(|e| Error::Conflict {
        code: "no_encryption_key".into(),
        message: e.to_string(),
    })?;
    let stored = StoredInbound {
        provider,
        reply_domain,
        sealed,
    };
    let view = InboundView::of(&stored, public_url, tenant);
    let after = serde_json::to_value(&view).map_err(|e| Error::Internal(e.into()))?;
    let mut tx = Tx::begin(engine.store()).await?;
    inbound_email::put_in(&mut tx, tenant, &stored).await?;
    let entry = Entry::created(
        AuditAction::ChannelUpdate,
        "channel",
        "inbound_email".to_owned(),
        after,
    );
    audit::commit(tx, who, entry).await?;
    Ok(view)
}

pub async fn get(
    engine: &EngineHandle,
    public_url: &str,
    who: &Identity,
) -> Result<InboundView, Error> {
    let tenant = authorize(who, Action::ManageChannels)?;
    let stored = inbound_email::get(engine.store(), tenant)
        .await?
        .ok_or(Error::NotFound("inbound email channel"))?;
    Ok(InboundView::of(&stored, public_url, tenant))
}
