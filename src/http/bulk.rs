//! Bulk pause and resume by filter (team, stage, playbook, paused): a dry run counts what would
//! change; `"dry_run": false` acts on each opportunity like the single commands do, with one
//! audit entry per opportunity.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;

use super::auth::Caller;
use super::error::ApiError;
use super::extract::Body;
use super::AppState;
use crate::usecases::bulk::{self, BulkOutcome};

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

impl BulkRequest {
    fn into_request(self) -> bulk::BulkRequest {
        bulk::BulkRequest {
            filter: bulk::BulkFilter {
                team: self.filter.team,
                stage: self.filter.stage,
                playbook: self.filter.playbook,
                paused: self.filter.paused,
            },
            dry_run: self.dry_run,
            operator: self.operator,
            reason: self.reason,
        }
    }
}

async fn run(
    state: AppState,
    caller: Caller,
    req: BulkRequest,
    pause: bool,
) -> Result<Json<BulkOutcome>, ApiError> {
    let outcome = bulk::bulk(
        &state.engine,
        &state.playbooks,
        &caller.0,
        req.into_request(),
        pause,
    )
    .await?;
    Ok(Json(outcome))
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
) -> Result<Json<BulkOutcome>, ApiError> {
    run(state, caller, req, true).await
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
) -> Result<Json<BulkOutcome>, ApiError> {
    run(state, caller, req, false).await
}
