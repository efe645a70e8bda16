//! `/v1/teams`, `/v1/principals` and `/v1/keys`: who may use this tenant, and how. A key's
//! secret is in the create answer only; lists never carry it.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::Caller;
use super::error::ApiError;
use super::extract::{Body, Params};
use super::AppState;
use crate::control::keys::KeyView;
use crate::usecases::access::{self, KeyFields, PrincipalFields};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamRequest {
    name: String,
}

#[utoipa::path(
    post,
    path = "/v1/teams",
    tag = "access",
    operation_id = "createTeam",
    summary = "Create a team",
    description = "A team of the tenant; its name is unique in the tenant (409 `already_exists`). Audited.",
    request_body = TeamRequest,
    responses(
        (status = 201, description = "created", body = crate::control::access::Team),
        crate::http::openapi::Errors
    )
)]
pub async fn create_team(
    State(state): State<AppState>,
    caller: Caller,
    Body(req): Body<TeamRequest>,
) -> Result<Response, ApiError> {
    let team = access::create_team(&state.engine, &caller.0, &req.name).await?;
    Ok((StatusCode::CREATED, Json(team)).into_response())
}

#[utoipa::path(
    get,
    path = "/v1/teams",
    tag = "access",
    operation_id = "listTeams",
    summary = "List teams",
    description = "The tenant's teams.",
    responses(
        (status = 200, description = "the tenant's teams", body = crate::http::openapi::TeamList),
        crate::http::openapi::Errors
    )
)]
pub async fn list_teams(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let teams = access::list_teams(&state.engine, &caller.0).await?;
    Ok(Json(json!({"items": teams})))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PrincipalRequest {
    name: String,
    #[schema(value_type = crate::control::Role)]
    role: String,
    #[schema(value_type = Option<crate::control::access::PrincipalKind>)]
    kind: Option<String>,
    team: Option<String>,
}

#[utoipa::path(
    post,
    path = "/v1/principals",
    tag = "access",
    operation_id = "createPrincipal",
    summary = "Create a principal",
    description = "A named user or service account with a role no higher than the caller may grant, and optionally a team (a team-scoped key: its own). Audited.",
    request_body = PrincipalRequest,
    responses(
        (status = 201, description = "created", body = crate::control::access::Principal),
        crate::http::openapi::Errors
    )
)]
pub async fn create_principal(
    State(state): State<AppState>,
    caller: Caller,
    Body(req): Body<PrincipalRequest>,
) -> Result<Response, ApiError> {
    let fields = PrincipalFields {
        name: &req.name,
        role: &req.role,
        kind: req.kind.as_deref(),
        team: req.team.as_deref(),
    };
    let p = access::create_principal(&state.engine, &caller.0, fields).await?;
    Ok((StatusCode::CREATED, Json(p)).into_response())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PrincipalParams {
    team: Option<String>,
}

#[utoipa::path(
    get,
    path = "/v1/principals",
    tag = "access",
    operation_id = "listPrincipals",
    summary = "List principals",
    description = "The tenant's principals, or one team's.",
    params(PrincipalParams),
    responses(
        (status = 200, description = "the tenant's principals", body = crate::http::openapi::PrincipalList),
        crate::http::openapi::Errors
    )
)]
pub async fn list_principals(
    State(state): State<AppState>,
    caller: Caller,
    Params(p): Params<PrincipalParams>,
) -> Result<Json<Value>, ApiError> {
    let principals = access::list_principals(&state.engine, &caller.0, p.team.as_deref()).await?;
    Ok(Json(json!({"items": principals})))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyRequest {
    name: String,
    #[schema(value_type = crate::control::Role)]
    role: String,
    team: Option<String>,
    principal: Option<String>,
    /// RFC 3339; the key stops working then.
    #[schema(format = DateTime)]
    expires_at: Option<String>,
}

#[utoipa::path(
    post,
    path = "/v1/keys",
    tag = "access",
    operation_id = "createKey",
    summary = "Create an API key",
    description = "A key with a role no higher than the caller may grant, optionally bound to a team and a principal and expiring. The secret is in this answer only. Audited.",
    request_body = KeyRequest,
    responses(
        (status = 201, description = "created; `key` is the secret, shown this once", body = crate::http::openapi::CreatedKey),
        crate::http::openapi::Errors
    )
)]
pub async fn create_key(
    State(state): State<AppState>,
    caller: Caller,
    Body(req): Body<KeyRequest>,
) -> Result<Response, ApiError> {
    let fields = KeyFields {
        name: &req.name,
        role: &req.role,
        team: req.team.as_deref(),
        principal: req.principal.as_deref(),
        expires_at: req.expires_at.as_deref(),
    };
    let (view, secret) = access::create_key(&state.engine, &caller.0, fields).await?;
    let mut body = json!(view);
    body["key"] = json!(secret);
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

#[utoipa::path(
    get,
    path = "/v1/keys",
    tag = "access",
    operation_id = "listKeys",
    summary = "List API keys",
    description = "The tenant's keys (a team-scoped key: its team's), never their secrets.",
    responses(
        (status = 200, description = "the tenant's keys, never their secrets", body = crate::http::openapi::KeyList),
        crate::http::openapi::Errors
    )
)]
pub async fn list_keys(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let keys = access::list_keys(&state.engine, &caller.0).await?;
    Ok(Json(json!({"items": keys})))
}

/// `DELETE /v1/keys/{id}` revokes: the key stays listed, with `revoked_at`.
#[utoipa::path(
    delete,
    path = "/v1/keys/{id}",
    tag = "access",
    operation_id = "revokeKey",
    summary = "Revoke an API key",
    description = "The key stops working at once and stays listed, with `revoked_at`. Audited.",
    params(("id" = String, Path, description = "the key's id")),
    responses(
        (status = 200, description = "revoked", body = crate::control::keys::KeyView),
        crate::http::openapi::Errors
    )
)]
pub async fn revoke_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<KeyView>, ApiError> {
    Ok(Json(
        access::revoke_key(&state.engine, &caller.0, &id).await?,
    ))
}
