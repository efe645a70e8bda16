//! `/v1/principals/{name}/deactivate` and `/activate`: taking a person out, and back (ADR 0042).

use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;

use super::auth::Caller;
use super::error::ApiError;
use super::extract::Body;
use super::AppState;
use crate::control::access::Principal;
use crate::usecases::principals::{self, Deactivation};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeactivateRequest {
    /// Why, for the audit log and the reassignments' timeline entries (up to 2,000 characters).
    reason: Option<String>,
}

#[utoipa::path(
    post,
    path = "/v1/principals/{name}/deactivate",
    tag = "access",
    operation_id = "deactivatePrincipal",
    summary = "Deactivate a principal",
    description = "Admins only, for a principal no higher than they may grant (another team's is not found for a team-limited admin), never themselves. In one transaction with its `principal_deactivate` audit entry: the principal becomes inactive, its API keys are revoked (they answer 401), its console sessions and unused sign-in links end, and its rep goes offline (no call is offered to it again). Then each of its open opportunities is reassigned through the reassign path (timeline entry and `reassign` audit entry each) to the next active operator of the opportunity's team, or to `unassigned` when the team has none. Deactivating again keeps the first time and finishes any reassignment left.",
    params(("name" = String, Path, description = "the principal's name")),
    request_body = DeactivateRequest,
    responses(
        (status = 200, description = "what the deactivation did", body = Deactivation),
        crate::http::openapi::Errors
    )
)]
pub async fn deactivate(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(req): Body<DeactivateRequest>,
) -> Result<Json<Deactivation>, ApiError> {
    Ok(Json(
        principals::deactivate(&state.engine, &caller.0, &name, req.reason.as_deref()).await?,
    ))
}

#[utoipa::path(
    post,
    path = "/v1/principals/{name}/activate",
    tag = "access",
    operation_id = "activatePrincipal",
    summary = "Activate a principal again",
    description = "Admins only. The principal is active again (audited `principal_activate`); its revoked keys stay revoked and its rep stays offline until set available. Activating an active principal changes nothing.",
    params(("name" = String, Path, description = "the principal's name")),
    responses(
        (status = 200, description = "the principal", body = Principal),
        crate::http::openapi::Errors
    )
)]
pub async fn activate(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Principal>, ApiError> {
    Ok(Json(
        principals::activate(&state.engine, &caller.0, &name).await?,
    ))
}
