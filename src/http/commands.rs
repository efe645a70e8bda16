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
use neuronx_supervision::store::ListQuery;
use neuronx_supervision::{SubmitOutcome, TenantId};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::auth::Caller;
use super::error::ApiError;
use super::extract::Body;
use super::opportunities::{load, submit, visible};
use super::AppState;
use crate::control::access::{self, Team};
use crate::control::audit::{self, AuditAction, Entry, Outcome};
use crate::control::Action;

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
fn acting_as(caller: &Caller, named: Option<String>) -> Result<String, ApiError> {
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
    if by.trim().is_empty() || by.len() > 200 {
        return Err(ApiError::invalid("operator", "must be 1 to 200 characters"));
    }
    Ok(by.trim().to_owned())
}

fn check_reason(reason: &Option<String>) -> Result<(), ApiError> {
    if reason.as_ref().is_some_and(|r| r.len() > 2000) {
        return Err(ApiError::invalid(
            "reason",
            "must be at most 2000 characters",
        ));
    }
    Ok(())
}

/// A team-bound opportunity is only ever assigned to a member of its team (or its escalation
/// queue, which only the engine assigns).
pub(super) async fn check_member(
    state: &AppState,
    tenant: TenantId,
    team: &Team,
    field: &'static str,
    name: &str,
) -> Result<(), ApiError> {
    let members = access::list_principals(state.engine.store(), tenant, Some(team.id)).await?;
    if members.iter().any(|p| p.name == name.trim()) {
        Ok(())
    } else {
        Err(ApiError::invalid(
            field,
            format!("{:?} is not a member of team {:?}", name.trim(), team.name),
        ))
    }
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
                .filter(|a| !a.trim().is_empty() && a.len() <= 200)
                .ok_or_else(|| ApiError::invalid("assignee", "required, 1 to 200 characters"))?;
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
async fn run(
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
                check_member(&state, tenant, team, "assignee", assignee).await?;
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

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkFilter {
    team: Option<String>,
    stage: Option<String>,
    playbook: Option<String>,
    paused: Option<bool>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkRequest {
    #[serde(default)]
    filter: BulkFilter,
    /// Count what would change, change nothing. Defaults to true: a bulk action is confirmed
    /// by asking again with `"dry_run": false`.
    dry_run: Option<bool>,
    operator: Option<String>,
    reason: Option<String>,
}

/// At most this many opportunities per bulk request: a larger set is narrowed by filter.
const BULK_LIMIT: usize = 5_000;

async fn matching(
    state: &AppState,
    caller: &Caller,
    filter: &BulkFilter,
    want_paused: bool,
) -> Result<Vec<Uuid>, ApiError> {
    let tenant = caller.0.tenant;
    let store = state.engine.store();
    let stage = filter
        .stage
        .as_deref()
        .map(|s| {
            s.parse::<neuronx_actors::domain::opportunity::Stage>()
                .map(|st| st.to_string())
                .map_err(|e| ApiError::invalid("filter.stage", e.to_string()))
        })
        .transpose()?;
    if let Some(p) = &filter.playbook {
        if !state.playbooks.contains_key(p) {
            return Err(ApiError::invalid(
                "filter.playbook",
                format!("unknown playbook {p:?}"),
            ));
        }
    }
    let team = match (&filter.team, &caller.0.team) {
        (Some(name), Some(own)) if name.trim() != own.name => {
            return Err(ApiError::invalid(
                "filter.team",
                format!("this key acts on team {:?} only", own.name),
            ))
        }
        (_, Some(own)) => Some(own.id),
        (Some(name), None) => Some(
            access::require_team(store, tenant, "filter.team", name)
                .await?
                .id,
        ),
        (None, None) => None,
    };
    let members = match team {
        Some(t) => Some(access::opportunities_of(store, tenant, t).await?),
        None => None,
    };
    // Only those the action would change: pausing skips the paused, resuming the running.
    let paused = Some(want_paused);
    if filter.paused.is_some_and(|p| p != want_paused) {
        return Ok(Vec::new());
    }
    let mut found = Vec::new();
    let mut after = None;
    loop {
        let rows = store
            .list_actors(&ListQuery {
                tenant,
                kind: opp::KIND.as_str().into(),
                status: stage.clone(),
                paused,
                after,
                limit: 500,
            })
            .await?;
        let last = rows.last().map(|r| (r.created_at_ms, r.key.id));
        for r in &rows {
            if members.as_ref().is_some_and(|m| !m.contains(&r.key.id)) {
                continue;
            }
            if let Some(p) = &filter.playbook {
                if r.state.get("playbook").and_then(Value::as_str) != Some(p) {
                    continue;
                }
            }
            found.push(r.key.id);
        }
        if found.len() > BULK_LIMIT {
            return Err(ApiError::invalid(
                "filter",
                format!("matches more than {BULK_LIMIT} opportunities; narrow it"),
            ));
        }
        match last {
            Some(l) if rows.len() == 500 => after = Some(l),
            _ => return Ok(found),
        }
    }
}

async fn bulk(
    state: AppState,
    caller: Caller,
    req: BulkRequest,
    pause: bool,
) -> Result<Json<Value>, ApiError> {
    caller.require(Action::Operate)?;
    check_reason(&req.reason)?;
    let by = acting_as(&caller, req.operator.clone())?;
    // Pausing selects running opportunities, resuming paused ones.
    let ids = matching(&state, &caller, &req.filter, !pause).await?;
    let dry_run = req.dry_run.unwrap_or(true);
    if dry_run {
        return Ok(Json(json!({"dry_run": true, "matched": ids.len()})));
    }
    let action = if pause {
        AuditAction::BulkPause
    } else {
        AuditAction::BulkResume
    };
    let (mut applied, mut accepted, mut rejected) = (0, 0, 0);
    for id in &ids {
        let input = if pause {
            OppInput::Pause {
                by: by.clone(),
                reason: req.reason.clone(),
            }
        } else {
            OppInput::Resume { by: by.clone() }
        };
        match run(&state, &caller, *id, action, input).await {
            Ok(r) if r.status() == StatusCode::ACCEPTED => accepted += 1,
            Ok(_) => applied += 1,
            Err(ApiError::Conflict { .. }) => rejected += 1,
            Err(e) => return Err(e),
        }
    }
    Ok(Json(json!({
        "dry_run": false,
        "matched": ids.len(),
        "applied": applied,
        "accepted": accepted,
        "rejected": rejected,
    })))
}

#[utoipa::path(
    post,
    path = "/v1/bulk/pause",
    tag = "operator actions",
    request_body = BulkRequest,
    responses((status = 200, description = "dry run: matched; otherwise matched, applied, accepted, rejected", body = Object), crate::http::openapi::Errors)
)]
pub async fn bulk_pause(
    State(state): State<AppState>,
    caller: Caller,
    Body(req): Body<BulkRequest>,
) -> Result<Json<Value>, ApiError> {
    bulk(state, caller, req, true).await
}

#[utoipa::path(
    post,
    path = "/v1/bulk/resume",
    tag = "operator actions",
    request_body = BulkRequest,
    responses((status = 200, description = "dry run: matched; otherwise matched, applied, accepted, rejected", body = Object), crate::http::openapi::Errors)
)]
pub async fn bulk_resume(
    State(state): State<AppState>,
    caller: Caller,
    Body(req): Body<BulkRequest>,
) -> Result<Json<Value>, ApiError> {
    bulk(state, caller, req, false).await
}
