//! Schemas of the answers that handlers still build as JSON values (calls, dead letters,
//! health, cluster, access, channels): each mirrors, field for field, what its handler returns,
//! so schemathesis' response check and generated clients hold the handler to it. A view that
//! moves into a use case as a typed struct can derive `ToSchema` itself and replace its mirror.

// Schema only: these types are described, never built.
#![allow(dead_code)]

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{AnsweredBy, CallStatus};

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

/// A call placed for an opportunity, with the first 200 entries of its timeline.
#[derive(ToSchema)]
pub struct Call {
    id: Uuid,
    opportunity_id: Uuid,
    /// The number called, E.164.
    to: String,
    /// 1 for the opportunity's first call, and so on.
    attempt: u32,
    status: CallStatus,
    #[schema(required = true)]
    answered_by: Option<AnsweredBy>,
    /// Twilio's call SID, once it answered the dial.
    #[schema(required = true)]
    provider_sid: Option<String>,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    timeline: Vec<CallEvent>,
}

/// One entry of a call's timeline.
#[derive(ToSchema)]
pub struct CallEvent {
    at: DateTime<Utc>,
    kind: String,
    /// Who caused it: `system`, `channel`, ...
    by: String,
    reason: String,
    /// The entry's details; their keys depend on `kind`.
    #[schema(value_type = Object)]
    data: Value,
}

/// An input its actor failed too often, set aside.
#[derive(ToSchema)]
pub struct DeadLetter {
    /// Pass to retry or discard; also the page cursor.
    id: i64,
    /// `opportunity` or `call`.
    actor_kind: String,
    actor_id: Uuid,
    /// The input as it was submitted.
    #[schema(value_type = Object)]
    input: Value,
    /// The last failure.
    error: String,
    attempts: i32,
    at: DateTime<Utc>,
}

/// A dead letter retried (its input resubmitted) or discarded.
#[derive(ToSchema)]
pub struct HandledDeadLetter {
    id: i64,
    status: Handled,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Handled {
    Retried,
    Discarded,
}

/// The instances sharing this database and the shards each holds. Ages are against the
/// database's clock.
#[derive(ToSchema)]
pub struct Cluster {
    /// The database's clock when membership was read, in Unix milliseconds.
    now_ms: i64,
    /// The id of the instance that answered.
    this_instance: String,
    shard_count: usize,
    lease_ttl_ms: u64,
    instances: Vec<ClusterInstance>,
    shards: Vec<ClusterShard>,
}

#[derive(ToSchema)]
pub struct ClusterInstance {
    id: String,
    started_at_ms: i64,
    heartbeat_age_ms: i64,
    /// Its last heartbeat is younger than the lease TTL.
    live: bool,
    /// It rate-limits sends through Redis, shared with the other instances.
    shared_limits: bool,
    /// The shards it holds a live lease on.
    shards: Vec<i32>,
}

#[derive(ToSchema)]
pub struct ClusterShard {
    id: i32,
    /// The instance holding a live lease; null when none does.
    #[schema(required = true)]
    owner: Option<String>,
    /// Bumped at every change of owner; fences the previous one's writes.
    epoch: i64,
    /// 0 when no lease is live.
    lease_remaining_ms: i64,
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

/// The tenant's Twilio account as stored; the auth token is sealed and never returned.
#[derive(ToSchema)]
pub struct TwilioChannel {
    channel: ChannelName,
    account_sid: String,
    /// E.164.
    from_number: String,
    /// Where Twilio's API is reached; null for Twilio itself.
    #[schema(required = true)]
    base_url: Option<String>,
    auth_token: TokenSet,
}

/// Always `twilio`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChannelName {
    Twilio,
}

/// Always `set`: the token itself is never returned.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenSet {
    Set,
}

/// A number on (or just taken off) the do-not-call list.
#[derive(ToSchema)]
pub struct DncEntry {
    /// E.164.
    phone: String,
    listed: bool,
}
