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

/// Which opportunities; every given field must match. Only those the action would change are
/// counted: pausing selects running ones, resuming paused ones.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkFilter {
    /// A team's name; a team-scoped key may name only its own.
    team: Option<String>,
    /// Read as text and checked by the use case, so a bad value answers 400 naming
    /// `filter.stage`.
    #[schema(value_type = Option<crate::http::openapi::Stage>)]
    stage: Option<String>,
    /// A configured playbook's name.
    playbook: Option<String>,
    paused: Option<bool>,
}

/// A bulk pause or resume.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkRequest {
    #[serde(default)]
    filter: BulkFilter,
    /// Count what would change, change nothing. Defaults to true: a bulk action is confirmed
    /// by asking again with `"dry_run": false`.
    dry_run: Option<bool>,
    /// Who acts, as for the single operator actions.
    operator: Option<String>,
    /// Why, for each opportunity's timeline and audit entry.
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
    operation_id = "bulkPause",
    summary = "Pause opportunities by filter",
    description = "Pauses every running opportunity the filter matches (at most 5000; a larger \
                   set is refused, narrow the filter), like the single pause, one audit entry \
                   each. A dry run (the default) only counts them.",
    request_body = BulkRequest,
    responses(
        (status = 200, description = "dry run: matched; otherwise matched, applied, accepted, rejected", body = BulkOutcome),
        crate::http::openapi::Errors
    )
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
    operation_id = "bulkResume",
    summary = "Resume opportunities by filter",
    description = "Resumes every paused opportunity the filter matches (at most 5000), like \
                   the single resume, one audit entry each. A dry run (the default) only \
                   counts them.",
    request_body = BulkRequest,
    responses(
        (status = 200, description = "dry run: matched; otherwise matched, applied, accepted, rejected", body = BulkOutcome),
        crate::http::openapi::Errors
    )
)]
pub async fn bulk_resume(
    State(state): State<AppState>,
    caller: Caller,
    Body(req): Body<BulkRequest>,
) -> Result<Json<BulkOutcome>, ApiError> {
    run(state, caller, req, false).await
}
