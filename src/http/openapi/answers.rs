//! Schemas of the answers that handlers still build as JSON values (health, readiness, the
//! access lists, a created key, the audit page) and of two constant strings: each mirrors what
//! its handler returns, so schemathesis' response check and generated clients hold the handler
//! to it. The typed views of the use cases (calls, dead letters, cluster, channels) derive
//! `ToSchema` themselves.

// Schema only: these types are described, never built.
#![allow(dead_code)]

use serde::Serialize;
use utoipa::ToSchema;

/// `GET /healthz`: the process answers.
#[derive(ToSchema)]
pub struct Health {
    status: HealthStatus,
}

/// Always `ok`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    Ok,
}

/// `GET /readyz`: ready when the database answers and this instance holds a shard. An
/// instance that is stopping answers `{"ready": false, "draining": true}` alone.
#[derive(ToSchema)]
pub struct Readiness {
    ready: bool,
    /// The database answered.
    #[schema(nullable = false)]
    database: Option<bool>,
    #[schema(nullable = false)]
    owned_shards: Option<usize>,
    /// Present (true) while the instance stops.
    #[schema(nullable = false)]
    draining: Option<bool>,
}

/// `{"items": [...]}` answers, typed so schemathesis checks them field by field.
#[derive(ToSchema)]
pub struct TeamList {
    items: Vec<crate::control::access::Team>,
}

#[derive(ToSchema)]
pub struct PrincipalList {
    items: Vec<crate::control::access::Principal>,
}

#[derive(ToSchema)]
pub struct RepList {
    items: Vec<crate::control::reps::Rep>,
}

#[derive(ToSchema)]
pub struct NumberList {
    items: Vec<crate::control::numbers::Number>,
}

#[derive(ToSchema)]
pub struct KeyList {
    items: Vec<crate::control::keys::KeyView>,
}

/// A key as created: its listed view plus the secret, shown this once.
#[derive(Serialize, ToSchema)]
pub struct CreatedKey {
    #[serde(flatten)]
    view: crate::control::keys::KeyView,
    /// The secret: send as `Authorization: Bearer <key>`. Never shown again.
    key: String,
}

/// A page of the audit log, oldest first.
#[derive(ToSchema)]
pub struct AuditPage {
    items: Vec<crate::control::audit::Record>,
    /// Pass as `cursor` for the next page; null on the last.
    #[schema(required = true)]
    next_cursor: Option<String>,
}

/// Always `twilio`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChannelName {
    Twilio,
}

/// Always `smtp`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SmtpChannelName {
    Smtp,
}

/// Always `inbound_email`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InboundEmailChannelName {
    InboundEmail,
}

/// The mail relay that posts inbound email: Mailgun (its route `forward()`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InboundEmailProvider {
    Mailgun,
}

/// How the SMTP connection is protected: plain text, upgraded by STARTTLS, or TLS throughout.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTlsMode {
    None,
    Starttls,
    Tls,
}

/// Always `set`: the token itself is never returned.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenSet {
    Set,
}
