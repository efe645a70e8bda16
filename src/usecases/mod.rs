//! Use cases: what a caller may ask of NeuronX, as plain functions that validate, authorize,
//! scope to the tenant and team, submit to the engine, audit and answer typed views. The HTTP
//! API and the console both call these; handlers only parse requests and render answers.
//!
//! Each function takes what it needs explicitly (the engine, the caller's identity, the
//! playbooks), so a use case can be called and tested without an HTTP server.

pub mod access;
pub mod audit;
pub mod board;
pub mod bulk;
pub mod call_flow;
pub mod calls;
pub mod channels;
pub mod commands;
pub mod dashboard;
pub mod inbound_email;
pub mod messages;
pub mod numbers;
pub mod opportunities;
pub mod ops;
pub mod principals;
pub mod recordings;
pub mod reps;
pub mod settings;
pub mod snooze;
pub mod unsubscribe;
pub mod views;
pub mod webhooks;
pub mod why;

use neuronx_actors::domain::opportunity::OppInput;
use neuronx_actors::opportunity as opp;
use neuronx_supervision::{EngineHandle, StoreError, SubmitOutcome, TenantId};
use uuid::Uuid;

use crate::control::keys::Identity;
use crate::control::{allows, Action, ControlError, Scope};
use crate::input::BadText;

/// Why a use case did not do what was asked, by who must act on it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The caller's request: this field is wrong.
    #[error("invalid {field}: {message}")]
    Invalid { field: String, message: String },
    /// Nothing of that kind exists for this caller (another tenant's or team's looks the same).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The caller's role or scope does not allow it.
    #[error("{0}")]
    Forbidden(String),
    /// The object's state refuses it (the transition's rejection, an existing name).
    #[error("{message}")]
    Conflict { code: String, message: String },
    /// Ours, and passing: the engine could not take the input now.
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl Error {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl From<StoreError> for Error {
    /// A database that is busy, locked, failing over or out of connections is passing: the
    /// caller hears 503 and retries, rather than 500 for what is not a fault of ours. Found by
    /// the simulation under CPU starvation, where SQLite's write lock outlasted its busy timeout.
    fn from(e: StoreError) -> Self {
        match e.class() {
            neuronx_supervision::store::ErrorClass::Transient => Error::Unavailable(e.to_string()),
            _ => Error::Internal(e.into()),
        }
    }
}

impl From<BadText> for Error {
    fn from(e: BadText) -> Self {
        Error::Invalid {
            field: e.field,
            message: e.message,
        }
    }
}

impl From<ControlError> for Error {
    fn from(e: ControlError) -> Self {
        match e {
            ControlError::Invalid { field, message } => Error::invalid(field, message),
            ControlError::NotFound(what) => Error::NotFound(what),
            e @ ControlError::Exists { .. } => Error::Conflict {
                code: "already_exists".into(),
                message: e.to_string(),
            },
            e @ ControlError::Forbidden { .. } => Error::Forbidden(e.to_string()),
            ControlError::Store(e) => e.into(),
        }
    }
}

/// The caller's tenant, if its role and scope allow `action`; else why not. Checked before any
/// object is looked up, so a refusal says nothing about whether the object exists.
pub fn authorize(who: &Identity, action: Action) -> Result<TenantId, Error> {
    if !allows(who.role, action) {
        return Err(Error::Forbidden(format!(
            "role {} may not {}",
            who.role,
            action.describe()
        )));
    }
    if !Scope::of(who).permits(action) {
        return Err(Error::Forbidden(format!(
            "a key limited to a team may not {}",
            action.describe()
        )));
    }
    Ok(who.tenant)
}

/// Whether `who` may see this opportunity (it must exist in the caller's tenant): a
/// team-scoped key sees only its team's.
pub async fn sees(engine: &EngineHandle, who: &Identity, opportunity: Uuid) -> Result<bool, Error> {
    let scope = Scope::of(who);
    if scope == Scope::Tenant {
        return Ok(true);
    }
    let bound = crate::control::access::team_of(engine.store(), who.tenant, opportunity).await?;
    Ok(scope.reaches(bound))
}

/// The opportunity `id` names, if it exists for this caller: in its tenant and, for a
/// team-scoped key, in its team. Anything else is not found (never forbidden), so ids cannot
/// be probed. An id that is no UUID names nothing.
pub async fn visible(engine: &EngineHandle, who: &Identity, id: &str) -> Result<Uuid, Error> {
    let id = Uuid::parse_str(id).map_err(|_| Error::NotFound("opportunity"))?;
    let exists = engine
        .store()
        .actor_exists(who.tenant, opp::KIND.as_str(), id)
        .await?;
    if !exists || !sees(engine, who, id).await? {
        return Err(Error::NotFound("opportunity"));
    }
    Ok(id)
}

/// Makes `input` durable for opportunity `id` and waits (up to the reply timeout) for it.
/// A command set aside in the dead letters instead of applied (its actor failed on it, or is
/// quarantined): a conflict with the actor's state, named so, with the runtime's reason.
pub(crate) fn dead_lettered(reason: &str) -> Error {
    Error::Conflict {
        code: "dead_lettered".into(),
        message: format!("not applied, moved to the dead letters: {reason}"),
    }
}

pub(crate) async fn submit(
    engine: &EngineHandle,
    tenant: TenantId,
    id: Uuid,
    input: &OppInput,
    dedupe: Option<String>,
) -> Result<SubmitOutcome, Error> {
    let input = serde_json::to_value(input).map_err(|e| Error::Internal(e.into()))?;
    engine
        .submit(opp::key(tenant, id), input, dedupe)
        .await
        .map_err(|e| Error::Unavailable(e.to_string()))
}
