//! Operator actions on one opportunity: `/v1/opportunities/{id}/pause`, `/resume`, `/reassign`,
//! `/escalate` and `/timers/{name}/cancel`. Handlers parse and render; the use cases
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

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandRequest {
    /// Who acts, for keys that belong to no principal (automation acting for a person); a
    /// principal's key always acts as that principal.
    operator: Option<String>,
    reason: Option<String>,
    assignee: Option<String>,
}

impl From<CommandRequest> for CommandFields {
    fn from(r: CommandRequest) -> Self {
        CommandFields {
            operator: r.operator,
            reason: r.reason,
            assignee: r.assignee,
        }
    }
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
            let done = commands::command(&state.engine, &caller.0, &id, $cmd, req.into()).await?;
            Ok(applied(done))
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
