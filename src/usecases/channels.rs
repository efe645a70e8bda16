//! The tenant's channels: its Twilio-compatible account and its SMTP server (the token and the
//! password sealed at rest, never returned) and its do-not-call list. Each change is audited; the token never reaches the log.

use neuronx_actors::domain::opportunity::{normalize_phone, OppInput};
use neuronx_actors::opportunity as opp;
use neuronx_adapters::outbound::OutboundGuard;
use neuronx_adapters::smtp::{parse_address, SmtpTls};
use neuronx_supervision::EngineHandle;
use serde::Serialize;
use serde_json::json;

use super::{authorize, Error};
use crate::control::audit::{self, AuditAction, Entry};
use crate::control::keys::Identity;
use crate::control::{Action, Tx};
use crate::secrets::Keyring;
use crate::tenant_data::{self, StoredCredentials, StoredSmtp};

/// The tenant's Twilio account as stored; the auth token is sealed and never returned.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = TwilioChannel)]
pub struct TwilioView {
    /// Always `twilio`.
    #[schema(value_type = crate::http::openapi::ChannelName)]
    pub channel: &'static str,
    pub account_sid: String,
    /// E.164.
    pub from_number: String,
    /// Where Twilio's API is reached; null for Twilio itself.
    #[schema(required = true)]
    pub base_url: Option<String>,
    /// Always `set`: the token itself is never returned.
    #[schema(value_type = crate::http::openapi::TokenSet)]
    pub auth_token: &'static str,
    /// The line type of each number is looked up (Twilio Lookup, billed per number, once per
    /// number) before its first marketing text; landlines are then not texted.
    pub line_type_lookup: bool,
}

impl TwilioView {
    fn of(c: &StoredCredentials) -> Self {
        Self {
            channel: "twilio",
            account_sid: c.account_sid.clone(),
            from_number: c.from_number.clone(),
            base_url: c.base_url.clone(),
            auth_token: "set",
            line_type_lookup: c.line_type_lookup,
        }
    }
}

/// An account as given.
pub struct TwilioFields {
    pub account_sid: String,
    pub auth_token: String,
    pub from_number: String,
    pub base_url: Option<String>,
    pub line_type_lookup: bool,
}

/// Stores the tenant's account, the token sealed. Its `base_url` must lead where the outbound
/// guard allows: the token is sent there.
pub async fn put_twilio(
    engine: &EngineHandle,
    keyring: &Keyring,
    guard: &OutboundGuard,
    who: &Identity,
    f: TwilioFields,
) -> Result<TwilioView, Error> {
    let tenant = authorize(who, Action::ManageChannels)?;
    let sid_ok = f.account_sid.len() == 34
        && f.account_sid.starts_with("AC")
        && f.account_sid[2..].bytes().all(|b| b.is_ascii_hexdigit());
    if !sid_ok {
        return Err(Error::invalid(
            "account_sid",
            "must be AC followed by 32 hex digits",
        ));
    }
    if f.auth_token.trim().is_empty() || f.auth_token.chars().count() > 200 {
        return Err(Error::invalid("auth_token", "must be 1 to 200 characters"));
    }
    let from_number = normalize_phone(&f.from_number)
        .map_err(|e| Error::invalid("from_number", e.to_string()))?;
    if let Some(url) = &f.base_url {
        if url.chars().count() > 500 {
            return Err(Error::invalid("base_url", "must be at most 500 characters"));
        }
        // The tenant's token will be sent there: never to this machine or its network.
        let parsed = guard
            .check_resolved(url)
            .await
            .map_err(|e| Error::invalid("base_url", e.to_string()))?;
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(Error::invalid(
                "base_url",
                "must not carry a query or fragment",
            ));
        }
    }
    let sealed = keyring.seal(&f.auth_token).map_err(|e| Error::Conflict {
        code: "no_encryption_key".into(),
        message: e.to_string(),
    })?;
    let stored = StoredCredentials {
        account_sid: f.account_sid,
        from_number,
        base_url: f.base_url.map(|u| u.trim_end_matches('/').to_owned()),
        sealed,
        line_type_lookup: f.line_type_lookup,
    };
    let view = TwilioView::of(&stored);
    let after = serde_json::to_value(&view).map_err(|e| Error::Internal(e.into()))?;
    let mut tx = Tx::begin(engine.store()).await?;
    tenant_data::put_credentials_in(&mut tx, tenant, "twilio", &stored).await?;
    audit::commit(
        tx,
        who,
        Entry::created(
            AuditAction::ChannelUpdate,
            "channel",
            "twilio".to_owned(),
            after,
        ),
    )
    .await?;
    Ok(view)
}

pub async fn get_twilio(engine: &EngineHandle, who: &Identity) -> Result<TwilioView, Error> {
    let tenant = authorize(who, Action::ManageChannels)?;
    let stored = tenant_data::get_credentials(engine.store(), tenant, "twilio")
        .await?
        .ok_or(Error::NotFound("twilio channel"))?;
    Ok(TwilioView::of(&stored))
}

/// A number on (or just taken off) the do-not-call list.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = DncEntry)]
pub struct DncView {
    /// E.164.
    pub phone: String,
    pub listed: bool,
}

/// Adds a number (normalised to E.164); true when it was not listed before.
pub async fn add_dnc(
    engine: &EngineHandle,
    who: &Identity,
    phone: &str,
) -> Result<(DncView, bool), Error> {
    let tenant = authorize(who, Action::WriteDnc)?;
    let phone = normalize_phone(phone).map_err(|e| Error::invalid("phone", e.to_string()))?;
    let mut tx = Tx::begin(engine.store()).await?;
    let added = tenant_data::add_dnc(&mut tx, tenant, &phone).await?;
    let after = json!({"phone": phone, "listed": true});
    audit::commit(
        tx,
        who,
        Entry::created(AuditAction::DncAdd, "channel", "dnc".to_owned(), after),
    )
    .await?;
    hang_up_on_dnc(engine, who, &phone).await?;
    Ok((
        DncView {
            phone,
            listed: true,
        },
        added,
    ))
}

/// Tells the opportunity of a number just listed (the newest with it, as inbound texts find
/// it): its live call is hung up and its cadence stops. Sent on every add, a repeat included,
/// since the opportunity ignores what it already knows; the entry itself is committed first,
/// so a failure here answers an error that the caller's retry (an idempotent add) repairs.
async fn hang_up_on_dnc(engine: &EngineHandle, who: &Identity, phone: &str) -> Result<(), Error> {
    let tenant = who.tenant;
    let Some(id) = tenant_data::opportunity_of_phone(engine.store(), tenant, phone).await? else {
        return Ok(());
    };
    let input = OppInput::NumberOnDnc {
        by: who.actor_name(),
    };
    let input = serde_json::to_value(&input).map_err(|e| Error::Internal(e.into()))?;
    engine
        .enqueue(opp::key(tenant, id), input, None)
        .await
        .map_err(|e| Error::Unavailable(e.to_string()))?;
    Ok(())
}

/// Removes a number; not found when it was not listed.
pub async fn remove_dnc(
    engine: &EngineHandle,
    who: &Identity,
    phone: &str,
) -> Result<DncView, Error> {
    let tenant = authorize(who, Action::WriteDnc)?;
    let phone = normalize_phone(phone).map_err(|e| Error::invalid("phone", e.to_string()))?;
    let mut tx = Tx::begin(engine.store()).await?;
    if !tenant_data::remove_dnc(&mut tx, tenant, &phone).await? {
        return Err(Error::NotFound("do-not-call entry"));
    }
    let after = json!({"phone": phone, "listed": false});
    audit::commit(
        tx,
        who,
        Entry::created(AuditAction::DncRemove, "channel", "dnc".to_owned(), after),
    )
    .await?;
    Ok(DncView {
        phone,
        listed: false,
    })
}

/// The tenant's SMTP server as stored; the password is sealed and never returned.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = SmtpChannel)]
pub struct SmtpView {
    /// Always `smtp`.
    #[schema(value_type = crate::http::openapi::SmtpChannelName)]
    pub channel: &'static str,
    pub host: String,
    pub port: u16,
    /// `none`, `starttls` or `tls`.
    #[schema(value_type = crate::http::openapi::SmtpTlsMode)]
    pub tls: &'static str,
    #[schema(required = true)]
    pub username: Option<String>,
    /// `set` when a password is stored (it is never returned); null without one.
    #[schema(value_type = Option<crate::http::openapi::TokenSet>, required = true)]
    pub password: Option<&'static str>,
    /// The sender's address.
    pub from: String,
    #[schema(required = true)]
    pub from_name: Option<String>,
}

impl SmtpView {
    fn of(c: &StoredSmtp) -> Self {
        Self {
            channel: "smtp",
            host: c.host.clone(),
            port: c.port,
            tls: c.tls.as_str(),
            username: c.username.clone(),
            password: c.sealed.as_ref().map(|_| "set"),
            from: c.from_email.clone(),
            from_name: c.from_name.clone(),
        }
    }
}

/// An SMTP server as given.
pub struct SmtpFields {
    pub host: String,
    pub port: u16,
    pub tls: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub from: String,
    pub from_name: Option<String>,
}

/// A short free text (a user name, a display name): trimmed, 1 to `max` characters, none blank.
fn short_text(field: &str, raw: Option<String>, max: usize) -> Result<Option<String>, Error> {
    let Some(raw) = raw else { return Ok(None) };
    let text = raw.trim();
    if text.is_empty() || text.chars().count() > max {
        return Err(Error::invalid(
            field,
            format!("must be 1 to {max} characters"),
        ));
    }
    Ok(Some(text.to_owned()))
}

/// Stores the tenant's SMTP server, the password sealed. The host must lead where the outbound
/// guard allows (checked now, and again at every send): the password is sent there.
pub async fn put_smtp(
    engine: &EngineHandle,
    keyring: &Keyring,
    guard: &OutboundGuard,
    who: &Identity,
    f: SmtpFields,
) -> Result<SmtpView, Error> {
    let tenant = authorize(who, Action::ManageChannels)?;
    let host = f.host.trim().trim_end_matches('.').to_ascii_lowercase();
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'));
    if !host_ok {
        return Err(Error::invalid(
            "host",
            "must be a host name or an address, at most 253 characters",
        ));
    }
    if f.port == 0 {
        return Err(Error::invalid("port", "must be 1 to 65535"));
    }
    let tls = SmtpTls::parse(f.tls.trim())
        .ok_or_else(|| Error::invalid("tls", "must be none, starttls or tls"))?;
    let username = short_text("username", f.username, 200)?;
    let password = match f.password {
        Some(p) if p.is_empty() || p.chars().count() > 200 => {
            return Err(Error::invalid("password", "must be 1 to 200 characters"))
        }
        other => other,
    };
    if password.is_some() != username.is_some() {
        let field = if password.is_some() {
            "username"
        } else {
            "password"
        };
        return Err(Error::invalid(
            field,
            "username and password go together: give both or neither",
        ));
    }
    let from_email = parse_address(&f.from).map_err(|e| Error::invalid("from", e))?;
    let from_name = short_text("from_name", f.from_name, 100)?;
    // The password will be sent there: never to this machine or its network.
    guard
        .resolve_host(&host, f.port)
        .await
        .map_err(|e| Error::invalid("host", e.to_string()))?;
    let sealed = password
        .map(|p| keyring.seal(&p))
        .transpose()
        .map_err(|e| Error::Conflict {
            code: "no_encryption_key".into(),
            message: e.to_string(),
        })?;
    let stored = StoredSmtp {
        host,
        port: f.port,
        tls,
        username,
        sealed,
        from_email,
        from_name,
    };
    let view = SmtpView::of(&stored);
    let after = serde_json::to_value(&view).map_err(|e| Error::Internal(e.into()))?;
    let mut tx = Tx::begin(engine.store()).await?;
    tenant_data::put_smtp_in(&mut tx, tenant, &stored).await?;
    audit::commit(
        tx,
        who,
        Entry::created(
            AuditAction::ChannelUpdate,
            "channel",
            "smtp".to_owned(),
            after,
        ),
    )
    .await?;
    Ok(view)
}

pub async fn get_smtp(engine: &EngineHandle, who: &Identity) -> Result<SmtpView, Error> {
    let tenant = authorize(who, Action::ManageChannels)?;
    let stored = tenant_data::get_smtp(engine.store(), tenant)
        .await?
        .ok_or(Error::NotFound("smtp channel"))?;
    Ok(SmtpView::of(&stored))
}
