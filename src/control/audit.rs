//! The append-only audit log: who did what to which object, why, and the object before and
//! after. Written before the response of every operator and admin action; the database refuses
//! updates and deletes (triggers in migration 0005).

use std::str::FromStr;

use chrono::{DateTime, Utc};
use neuronx_supervision::{Store, TenantId};
use serde::Serialize;
use serde_json::Value;

use super::keys::Identity;
use super::tx::{on_tx, Tx};
use super::{now_ms, on_db, ControlError, Role};

macro_rules! audit_actions {
    ($($variant:ident = $name:literal),* $(,)?) => {
        /// Every action the log records.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum AuditAction { $($variant),* }

        impl AuditAction {
            pub const ALL: &'static [AuditAction] = &[$(AuditAction::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self { $(AuditAction::$variant => $name),* }
            }
        }
    };
}

audit_actions! {
    Pause = "pause",
    Resume = "resume",
    Reassign = "reassign",
    Escalate = "escalate",
    CancelTimer = "cancel_timer",
    SetStage = "set_stage",
    BulkPause = "bulk_pause",
    BulkResume = "bulk_resume",
    DeadLetterRetry = "dead_letter_retry",
    DeadLetterDiscard = "dead_letter_discard",
    TeamCreate = "team_create",
    PrincipalCreate = "principal_create",
    KeyCreate = "key_create",
    KeyRevoke = "key_revoke",
    ChannelUpdate = "channel_update",
    DncAdd = "dnc_add",
    DncRemove = "dnc_remove",
    RepUpdate = "rep_update",
    RepStatus = "rep_status",
    TeamRinging = "team_ringing",
    CallNow = "call_now",
    PrincipalDeactivate = "principal_deactivate",
    PrincipalActivate = "principal_activate",
    MagicLinkSent = "magic_link_sent",
    SessionOpen = "session_open",
    NumberPut = "number_put",
    NumberRemove = "number_remove",
    SettingsUpdate = "settings_update",
    MessageSend = "message_send",
    HandBack = "hand_back",
    Snooze = "snooze",
    Unsnooze = "unsnooze",
    EmailUnsubscribe = "email_unsubscribe",
}

impl Serialize for AuditAction {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl FromStr for AuditAction {
    type Err = ControlError;

    fn from_str(s: &str) -> Result<Self, ControlError> {
        AuditAction::ALL
            .iter()
            .copied()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| ControlError::invalid("action", format!("unknown action {s:?}")))
    }
}

/// How the action ended: the log keeps refusals too, so a probe shows up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Applied,
    /// Durable but not yet applied (another instance owns the actor).
    Accepted,
    Rejected,
    /// A repeat of a request already made (the same console form submitted again): nothing
    /// changed, and the first entry says what the request did.
    Duplicate,
    /// Logged before the action was handed to the engine and not settled since: the instance
    /// stopped before it learned the outcome (the opportunity's timeline says whether it
    /// applied). Every other entry is final.
    Pending,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::Accepted => "accepted",
            Outcome::Rejected => "rejected",
            Outcome::Duplicate => "duplicate",
            Outcome::Pending => "pending",
        }
    }
}

pub struct Entry<'a> {
    pub action: AuditAction,
    pub target_kind: &'a str,
    pub target_id: String,
    pub reason: Option<&'a str>,
    pub outcome: Outcome,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// An entry logged as pending, to be settled with its outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    tenant: TenantId,
    id: i64,
}

impl<'a> Entry<'a> {
    /// An applied change that has no "before" and no reason: something created, or a setting
    /// stored (the common case of the access and channel changes).
    pub fn created(
        action: AuditAction,
        target_kind: &'a str,
        target_id: String,
        after: Value,
    ) -> Self {
        Entry {
            action,
            target_kind,
            target_id,
            reason: None,
            outcome: Outcome::Applied,
            before: None,
            after: Some(after),
        }
    }
}

/// Appends a final entry on its own: for refusals, which change nothing else. A change the log
/// records goes in the change's own transaction (`commit`).
pub async fn record(store: &Store, who: &Identity, e: Entry<'_>) -> Result<(), ControlError> {
    commit(Tx::begin(store).await?, who, e).await
}

/// Appends a final entry inside `tx`, the transaction of the change it records, and commits
/// both: the change and its entry land together or not at all.
pub async fn commit(mut tx: Tx, who: &Identity, e: Entry<'_>) -> Result<(), ControlError> {
    insert(&mut tx, who, e).await?;
    Ok(tx.commit().await?)
}

/// Logs an action before it is handed to the engine, as `pending`, so that a crash after the
/// engine's commit cannot leave an applied action without its entry (ADR 0036). Settle it with
/// `settle` once the outcome is known; `e.outcome` is ignored.
pub async fn begin(store: &Store, who: &Identity, e: Entry<'_>) -> Result<Pending, ControlError> {
    let entry = Entry {
        outcome: Outcome::Pending,
        after: None,
        ..e
    };
    let mut tx = Tx::begin(store).await?;
    let id = insert(&mut tx, who, entry).await?;
    tx.commit().await?;
    Ok(Pending {
        tenant: who.tenant,
        id,
    })
}

/// Gives a pending entry its outcome and "after", once (the database refuses any other change).
pub async fn settle(
    store: &Store,
    entry: Pending,
    outcome: Outcome,
    after: Option<Value>,
) -> Result<(), ControlError> {
    let sql = "UPDATE audit_log SET outcome = $1, after = $2
               WHERE tenant_id = $3 AND id = $4 AND outcome = 'pending'";
    on_db!(store, |db, id, json| sqlx::query(sql)
        .bind(outcome.as_str())
        .bind(after.as_ref().map(json))
        .bind(id(entry.tenant.0))
        .bind(entry.id)
        .execute(db)
        .await?
        .rows_affected());
    Ok(())
}

async fn insert(tx: &mut Tx, who: &Identity, e: Entry<'_>) -> Result<i64, ControlError> {
    let sql = "INSERT INTO audit_log (tenant_id, at, principal, role, action, target_kind,
                                      target_id, reason, outcome, before, after, key_prefix)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id";
    let id: i64 = on_tx!(tx, |db, id, json| sqlx::query_scalar(sql)
        .bind(id(who.tenant.0))
        .bind(now_ms())
        .bind(who.actor_name())
        .bind(who.role.as_str())
        .bind(e.action.as_str())
        .bind(e.target_kind)
        .bind(&e.target_id)
        .bind(e.reason)
        .bind(e.outcome.as_str())
        .bind(e.before.as_ref().map(json))
        .bind(e.after.as_ref().map(json))
        .bind(who.key_label())
        .fetch_one(db)
        .await?);
    Ok(id)
}

#[derive(Default)]
pub struct Query {
    pub principal: Option<String>,
    pub action: Option<AuditAction>,
    pub target_id: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// The id of the last entry already seen.
    pub after: i64,
    pub limit: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Record {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub principal: String,
    /// The key the action came through (`nxk_<prefix>`, or `cli`); none on entries written
    /// before keys were recorded.
    pub key: Option<String>,
    pub role: String,
    pub action: String,
    pub target_kind: String,
    pub target_id: String,
    pub reason: Option<String>,
    pub outcome: String,
    #[schema(value_type = Option<Object>)]
    pub before: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub after: Option<Value>,
}

type Row = (
    i64,
    i64,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// The tenant's entries matching `q`, oldest first.
pub async fn list(store: &Store, tenant: TenantId, q: &Query) -> Result<Vec<Record>, ControlError> {
    let sql = "SELECT id, at, principal, role, action, target_kind, target_id, reason, outcome,
                      CAST(before AS TEXT), CAST(after AS TEXT), key_prefix
               FROM audit_log
               WHERE tenant_id = $1 AND id > $2
                 AND ($3 IS NULL OR principal = $3) AND ($4 IS NULL OR action = $4)
                 AND ($5 IS NULL OR target_id = $5) AND ($6 IS NULL OR at >= $6)
                 AND ($7 IS NULL OR at < $7)
               ORDER BY id LIMIT $8";
    let rows: Vec<Row> = on_db!(store, |db, id, _json| sqlx::query_as(sql)
        .bind(id(tenant.0))
        .bind(q.after)
        .bind(&q.principal)
        .bind(q.action.map(AuditAction::as_str))
        .bind(&q.target_id)
        .bind(q.since.map(|t| t.timestamp_millis()))
        .bind(q.until.map(|t| t.timestamp_millis()))
        .bind(q.limit)
        .fetch_all(db)
        .await?);
    let parse = |t: Option<String>| t.and_then(|t| serde_json::from_str(&t).ok());
    Ok(rows
        .into_iter()
        .map(|r| Record {
            id: r.0,
            at: DateTime::from_timestamp_millis(r.1).unwrap_or_default(),
            principal: r.2,
            key: r.11,
            role: r.3,
            action: r.4,
            target_kind: r.5,
            target_id: r.6,
            reason: r.7,
            outcome: r.8,
            before: parse(r.9),
            after: parse(r.10),
        })
        .collect())
}

/// Kept for callers that only know a role (the CLI acting as the tenant's owner).
pub fn cli_identity(tenant: TenantId) -> Identity {
    Identity {
        tenant,
        key_prefix: super::keys::CLI_KEY.into(),
        role: Role::Owner,
        team: None,
        principal: Some("cli".into()),
    }
}
