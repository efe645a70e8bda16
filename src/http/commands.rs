//! Operator actions on one opportunity: `/v1/opportunities/{id}/pause`, `/resume`, `/reassign`,
//! `/escalate`, `/hand-back` and `/timers/{name}/cancel`. Handlers parse and render; the use cases
//! (`crate::usecases::commands`) authorize, submit and audit.

use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;

use super::auth::Caller;
use super::error::ApiError;
use super::extract::Body;
use super::opportunities::applied;
use super::AppState;
use crate::usecases::commands::{self, Command, CommandFields};
use crate::usecases::views::{Accepted, OpportunityView};

/// An operator action; the body may be empty.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandRequest {
    /// Who acts, for keys that belong to no principal (automation acting for a person); a
    /// principal's key always acts as that principal.
    operator: Option<String>,
    /// Why, for the timeline and the audit log.
    reason: Option<String>,
    /// The new owner: required by reassign, ignored by the other actions.
    assignee: Option<String>,
    /// Pause only (ignored by the other actions): also hang up the opportunity's ringing or
    /// bridged call. By default a pause lets a live call finish.
    #[serde(default)]
    hang_up: bool,
}

impl From<CommandRequest> for CommandFields {
    fn from(r: CommandRequest) -> Self {
        CommandFields {
            operator: r.operator,
            reason: r.reason,
            assignee: r.assignee,
            hang_up: r.hang_up,
        }
    }
}

macro_rules! command_route {
    ($name:ident, $cmd:expr, $path:tt, $id:literal, $summary:literal, $description:literal) => {
        #[utoipa::path(
            post,
            path = $path,
            tag = "operator actions",
            operation_id = $id,
            summary = $summary,
            description = $description,
            request_body = CommandRequest,
            params(("id" = String, Path, description = "the opportunity's id")),
            responses(
                (status = 200, description = "the opportunity after", body = OpportunityView),
                (status = 202, description = "durable; the instance that owns the opportunity applies it", body = Accepted),
                crate::http::openapi::Errors
            )
        )]
        pub async fn $name(
            State(state): State<AppState>,
            caller: Caller,
            Path(id): Path<String>,
            Body(req): Body<CommandRequest>,
        ) -> Result<Response, ApiError> {
            let done = commands::command(&state.engine, &caller.0, &id, $cmd, req.into()).await?;
            Ok(applied(done))
        }
    };
}

command_route!(
    pause,
    Command::Pause,
    "/v1/opportunities/{id}/pause",
    "pauseOpportunity",
    "Pause an opportunity",
    "Holds the opportunity's timers and outbound effects until it is resumed. A call in \
     progress goes on unless `hang_up` is true, which hangs up the ringing or bridged call. \
     Pausing a paused opportunity answers 409 `already_paused`. Audited."
);
command_route!(
    resume,
    Command::Resume,
    "/v1/opportunities/{id}/resume",
    "resumeOpportunity",
    "Resume an opportunity",
    "Releases what a pause held: timers that came due fire now. Resuming a running \
     opportunity answers 409 `not_paused`. Audited."
);
command_route!(
    reassign,
    Command::Reassign,
    "/v1/opportunities/{id}/reassign",
    "reassignOpportunity",
    "Reassign an opportunity",
    "Gives the opportunity to `assignee` (required). Audited."
);
command_route!(
    escalate,
    Command::Escalate,
    "/v1/opportunities/{id}/escalate",
    "escalateOpportunity",
    "Escalate an opportunity",
    "Puts the opportunity in the escalation queue. Audited."
);

command_route!(
    hand_back,
    Command::HandBack,
    "/v1/opportunities/{id}/hand-back",
    "handBackOpportunity",
    "Hand a conversation back to the playbook",
    "Ends a human takeover: the playbook's automatic texts (and, where the playbook stopped \
     them, its calls) resume from its next step; nothing skipped meanwhile is sent. An \
     opportunity nobody took over answers 409 `not_taken_over`. Audited."
);

/// A timer's cancellation; the body may be empty.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelTimerRequest {
    /// Who acts, as for the other operator actions.
    operator: Option<String>,
    /// Why, for the timeline and the audit log.
    reason: Option<String>,
}

#[utoipa::path(
    post,
    path = "/v1/opportunities/{id}/timers/{name}/cancel",
    tag = "operator actions",
    operation_id = "cancelTimer",
    summary = "Cancel a timer",
    description = "Cancels one armed (or, while paused, held) timer of the opportunity; a name \
                   that is not armed answers 404. Audited.",
    request_body = CancelTimerRequest,
    params(
        ("id" = String, Path, description = "the opportunity's id"),
        ("name" = String, Path, description = "first_touch_sla, response_sla, retry_call or send_sms")
    ),
    responses(
        (status = 200, description = "the opportunity after", body = OpportunityView),
        (status = 202, description = "durable; the instance that owns the opportunity applies it", body = Accepted),
        crate::http::openapi::Errors
    )
)]
pub async fn cancel_timer(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, name)): Path<(String, String)>,
    Body(req): Body<CancelTimerRequest>,
) -> Result<Response, ApiError> {
    let done = commands::cancel_timer(
        &state.engine,
        &caller.0,
        &id,
        &name,
        req.operator,
        req.reason,
    )
    .await?;
    Ok(applied(done))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StageRequest {
    /// The stage to move to: booked, won, lost, nurture, contacting (to reopen) …; the stage
    /// graph decides what is legal from where the opportunity is.
    #[schema(value_type = crate::http::openapi::Stage)]
    stage: String,
    /// Why; required, and shown on the timeline and in the audit log.
    reason: String,
    operator: Option<String>,
}

/// `POST /v1/opportunities/{id}/stage`: an operator sets the stage with a reason. An illegal
/// move answers 409 with the transition's code; reopening a lead still opted out too.
#[utoipa::path(
    post,
    path = "/v1/opportunities/{id}/stage",
    tag = "operator actions",
    operation_id = "setOpportunityStage",
    summary = "Set an opportunity's stage",
    description = "An operator moves the opportunity to another stage, with a reason. The stage graph decides what is legal: an illegal move answers 409 with the transition's code (`illegal_transition`, `terminal_stage`), and reopening a lead that opted out answers `opted_out`. Audited.",
    request_body = StageRequest,
    params(("id" = String, Path, description = "the opportunity's id")),
    responses(
        (status = 200, description = "the opportunity after", body = OpportunityView),
        (status = 202, description = "durable; the instance that owns the opportunity applies it", body = Accepted),
        crate::http::openapi::Errors
    )
)]
pub async fn set_stage(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(req): Body<StageRequest>,
) -> Result<Response, ApiError> {
    let done = commands::set_stage(
        &state.engine,
        &caller.0,
        &id,
        &req.stage,
        req.operator,
        Some(req.reason),
    )
    .await?;
    Ok(applied(done))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallNowRequest {
    /// The rep who calls: by default the key's own principal. A key that belongs to no
    /// principal must name one; a principal's key can only call as itself.
    rep: Option<String>,
}

/// `POST /v1/opportunities/{id}/calls`: click to call. The rep's phone rings first; when they
/// press 1 the lead is dialled and connected.
#[utoipa::path(
    post,
    path = "/v1/opportunities/{id}/calls",
    tag = "operator actions",
    operation_id = "callOpportunityNow",
    summary = "Call the lead now (click to call)",
    description = "Agent first: rings the rep's phone (the caller's own principal, or `rep`), says who the lead is and asks them to press 1; on 1 the lead is dialled from the tenant's number and the two are connected, and the conversation goes on the timeline. The opportunity's compliance gate decides as for every call: outside calling hours, without voice consent, past a cap or opted out answers 409 (`call_refused`, `opted_out`), as does a call already live (`call_live`) or a rep at their call limit (`rep_busy`). The rep must have a phone (`PUT /v1/principals/{name}/rep`) and belong to the opportunity's team. Audited as `call_now`.",
    request_body = CallNowRequest,
    params(("id" = String, Path, description = "the opportunity's id")),
    responses(
        (status = 200, description = "the opportunity after: `active_call` names the call", body = OpportunityView),
        (status = 202, description = "durable; the instance that owns the opportunity applies it", body = Accepted),
        crate::http::openapi::Errors
    )
)]
pub async fn call_now(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(req): Body<CallNowRequest>,
) -> Result<Response, ApiError> {
    let done = crate::usecases::calls::call_now(&state.engine, &caller.0, &id, req.rep).await?;
    Ok(applied(done))
}
