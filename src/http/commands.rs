//! Operator commands on opportunities: pause, resume, reassign, escalate and cancel a timer on
//! one, and pause or resume in bulk by filter. Each is submitted to the engine like any other
//! input and recorded in the audit log, with the opportunity before and after, before the
//! response.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use neuronx_actors::domain::opportunity::{OppInput, OppTimer, Opportunity};
use neuronx_actors::opportunity as opp;
use neuronx_supervision::SubmitOutcome;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::auth::Caller;
use super::error::ApiError;
use super::extract::Body;
use super::opportunities::{load, submit, visible};
use super::AppState;
use crate::control::access;
use crate::control::audit::{self, AuditAction, Entry, Outcome};
use crate::control::Action;
use crate::input::{self, Lines};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandRequest {
    /// Who acts, for keys that belong to no principal (automation acting for a person); a
    /// principal's key always acts as that principal.
    operator: Option<String>,
    reason: Option<String>,
    assignee: Option<String>,
}

impl CommandRequest {
    /// A command from the console's forms: the session's principal acts.
    pub(super) fn from_form(reason: Option<String>, assignee: Option<String>) -> Self {
        let blank = |s: Option<String>| s.filter(|s| !s.trim().is_empty());
        Self {
            operator: None,
            reason: blank(reason),
            assignee: blank(assignee),
        }
    }
}

#[derive(Clone, Copy)]
pub enum Command {
    Pause,
    Resume,
    Reassign,
    Escalate,
}

impl Command {
    fn audit(self) -> AuditAction {
        match self {
            Command::Pause => AuditAction::Pause,
            Command::Resume => AuditAction::Resume,
            Command::Reassign => AuditAction::Reassign,
            Command::Escalate => AuditAction::Escalate,
        }
    }
}

/// The name the timeline shows as `operator:<name>`.
pub(super) fn acting_as(caller: &Caller, named: Option<String>) -> Result<String, ApiError> {
    if let Some(principal) = &caller.0.principal {
        return match named {
            Some(n) if n.trim() != principal => Err(ApiError::invalid(
                "operator",
                format!("this key acts as {principal:?} and cannot name another operator"),
            )),
            _ => Ok(principal.clone()),
        };
    }
    let by = named.unwrap_or_else(|| caller.0.actor_name());
    input::check("operator", &by, Lines::One, 1, 200)?;
    Ok(by.trim().to_owned())
}

/// A reason may span lines (the console's text area), up to 2,000 characters.
pub(super) fn check_reason(reason: &Option<String>) -> Result<(), ApiError> {
    if let Some(r) = reason {
        input::check("reason", r, Lines::Many, 0, 2000)?;
    }
    Ok(())
}

fn command_input(cmd: Command, by: String, req: CommandRequest) -> Result<OppInput, ApiError> {
    check_reason(&req.reason)?;
    Ok(match cmd {
        Command::Pause => OppInput::Pause {
            by,
            reason: req.reason,
        },
        Command::Resume => OppInput::Resume { by },
        Command::Escalate => OppInput::Escalate {
            by,
            reason: req.reason,
        },
        Command::Reassign => {
            let assignee = req
                .assignee
                .ok_or_else(|| ApiError::invalid("assignee", "required, 1 to 200 characters"))?;
            input::check("assignee", &assignee, Lines::One, 1, 200)?;
            let reason = req
                .reason
                .filter(|r| !r.trim().is_empty())
                .ok_or_else(|| ApiError::invalid("reason", "required for a reassignment"))?;
            OppInput::Reassign {
                assignee: assignee.trim().to_owned(),
                by,
                reason,
            }
        }
    })
}

fn reason_of(input: &OppInput) -> Option<String> {
    match input {
        OppInput::Pause { reason, .. }
        | OppInput::Escalate { reason, .. }
        | OppInput::CancelTimer { reason, .. } => reason.clone(),
        OppInput::Reassign { reason, .. } => Some(reason.clone()),
        _ => None,
    }
}

/// Submits `input` to one opportunity, audits it and answers with the opportunity after.
pub(super) async fn run(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    action: AuditAction,
    input: OppInput,
) -> Result<Response, ApiError> {
    let tenant = caller.0.tenant;
    let before = load(state, tenant, id).await?;
    let reason = reason_of(&input);
    let outcome = submit(state, tenant, id, &input).await?;
    let (result, audited) = match outcome {
        SubmitOutcome::Applied(_) | SubmitOutcome::Duplicate => {
            let after = load(state, tenant, id).await?;
            (
                Ok(Json(after.clone()).into_response()),
                (Outcome::Applied, Some(after)),
            )
        }
        SubmitOutcome::Accepted => (
            Ok((
                StatusCode::ACCEPTED,
                Json(json!({"id": id, "status": "accepted"})),
            )
                .into_response()),
            (Outcome::Accepted, None),
        ),
        SubmitOutcome::Rejected(r) => (
            Err(ApiError::Conflict {
                code: r.code,
                message: r.message,
            }),
            (Outcome::Rejected, None),
        ),
    };
    audit::record(
        state.engine.store(),
        &caller.0,
        Entry {
            action,
            target_kind: "opportunity",
            target_id: id.to_string(),
            reason: reason.as_deref(),
            outcome: audited.0,
            before: Some(before),
            after: audited.1,
        },
    )
    .await?;
    result
}

pub async fn command(
    state: AppState,
    caller: Caller,
    id: String,
    cmd: Command,
    req: CommandRequest,
) -> Result<Response, ApiError> {
    let tenant = caller.require(Action::Operate)?;
    let id = visible(&state, &caller, &id).await?;
    let by = acting_as(&caller, req.operator.clone())?;
    if let (Command::Reassign, Some(assignee)) = (cmd, &req.assignee) {
        // Reassignment keeps the team binding: only to a member of the opportunity's team.
        if let Some(team_id) = access::team_of(state.engine.store(), tenant, id).await? {
            let teams = access::list_teams(state.engine.store(), tenant).await?;
            if let Some(team) = teams.iter().find(|t| t.id == team_id) {
                access::require_member(state.engine.store(), tenant, team, "assignee", assignee)
                    .await?;
            }
        }
    }
    let input = command_input(cmd, by, req)?;
    run(&state, &caller, id, cmd.audit(), input).await
}

macro_rules! command_route {
    ($name:ident, $cmd:expr, $path:tt) => {
        #[utoipa::path(
                    post,
                    path = $path,
                    tag = "operator actions",
                    request_body = CommandRequest,
                    params(("id" = String, Path, description = "the opportunity's id")),
                    responses(
                        (status = 200, description = "the opportunity after", body = Object),
                        (status = 202, description = "durable, not yet applied", body = Object),
                        crate::http::openapi::Errors
                    )
                )]
        pub async fn $name(
            State(state): State<AppState>,
            caller: Caller,
            Path(id): Path<String>,
            Body(req): Body<CommandRequest>,
        ) -> Result<Response, ApiError> {
            command(state, caller, id, $cmd, req).await
        }
    };
}

command_route!(pause, Command::Pause, "/v1/opportunities/{id}/pause");
command_route!(resume, Command::Resume, "/v1/opportunities/{id}/resume");
command_route!(
    reassign,
    Command::Reassign,
    "/v1/opportunities/{id}/reassign"
);
command_route!(
    escalate,
    Command::Escalate,
    "/v1/opportunities/{id}/escalate"
);

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelTimerRequest {
    operator: Option<String>,
    reason: Option<String>,
}

/// `POST /v1/opportunities/{id}/timers/{name}/cancel`: only an armed or held timer can be
/// cancelled; any other name answers 404.
#[utoipa::path(
    post,
    path = "/v1/opportunities/{id}/timers/{name}/cancel",
    tag = "operator actions",
    request_body = CancelTimerRequest,
    params(("id" = String, Path, description = "the opportunity's id"), ("name" = String, Path, description = "first_touch_sla, response_sla, retry_call or send_sms")),
    responses((status = 200, description = "the opportunity after", body = Object), (status = 202, description = "durable, not yet applied", body = Object), crate::http::openapi::Errors)
)]
pub async fn cancel_timer(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, name)): Path<(String, String)>,
    Body(req): Body<CancelTimerRequest>,
) -> Result<Response, ApiError> {
    let tenant = caller.require(Action::Operate)?;
    let id = visible(&state, &caller, &id).await?;
    let timer: OppTimer = name.parse().map_err(|_| ApiError::NotFound("timer"))?;
    let store = state.engine.store();
    let armed = store
        .timers_of(tenant, opp::KIND.as_str(), id)
        .await?
        .iter()
        .any(|t| t.name == timer.to_string());
    let held = match store.get_actor(tenant, opp::KIND.as_str(), id).await? {
        Some(row) => serde_json::from_value::<Opportunity>(row.state)
            .map(|o| o.held_timers.contains(&timer))
            .unwrap_or(false),
        None => false,
    };
    if !armed && !held {
        return Err(ApiError::NotFound("timer"));
    }
    check_reason(&req.reason)?;
    let by = acting_as(&caller, req.operator)?;
    let input = OppInput::CancelTimer {
        timer,
        by,
        reason: req.reason,
    };
    run(&state, &caller, id, AuditAction::CancelTimer, input).await
}
