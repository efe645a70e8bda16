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
use crate::control::access::{self, NewPrincipal, PrincipalKind};
use crate::control::audit::{self, AuditAction, Entry, Outcome};
use crate::control::keys::{self, NewKey};
use crate::control::{Action, Role};

async fn audit_created(
    state: &AppState,
    caller: &Caller,
    action: AuditAction,
    kind: &str,
    id: String,
    after: Value,
) -> Result<(), ApiError> {
    audit::record(
        state.engine.store(),
        &caller.0,
        Entry {
            action,
            target_kind: kind,
            target_id: id,
            reason: None,
            outcome: Outcome::Applied,
            before: None,
            after: Some(after),
        },
    )
    .await?;
    Ok(())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamRequest {
    name: String,
}

#[utoipa::path(
    post,
    path = "/v1/teams",
    tag = "access",
    request_body = TeamRequest,
    responses((status = 201, description = "created", body = crate::control::access::Team), crate::http::openapi::Errors)
)]
pub async fn create_team(
    State(state): State<AppState>,
    caller: Caller,
    Body(req): Body<TeamRequest>,
) -> Result<Response, ApiError> {
    let tenant = caller.require(Action::ManageAccess)?;
    let team = access::create_team(state.engine.store(), tenant, &req.name).await?;
    let view = json!(team);
    audit_created(
        &state,
        &caller,
        AuditAction::TeamCreate,
        "team",
        team.id.to_string(),
        view.clone(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

#[utoipa::path(
    get,
    path = "/v1/teams",
    tag = "access",
    responses((status = 200, description = "the tenant's teams", body = crate::http::openapi::TeamList), crate::http::openapi::Errors)
)]
pub async fn list_teams(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let tenant = caller.require(Action::Read)?;
    let teams = access::list_teams(state.engine.store(), tenant).await?;
    Ok(Json(json!({"items": teams})))
}

fn parse_role(field: &'static str, raw: &str) -> Result<Role, ApiError> {
    raw.parse()
        .map_err(|e: crate::control::roles::UnknownRole| ApiError::invalid(field, e.to_string()))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PrincipalRequest {
    name: String,
    role: String,
    kind: Option<String>,
    team: Option<String>,
}

#[utoipa::path(
    post,
    path = "/v1/principals",
    tag = "access",
    request_body = PrincipalRequest,
    responses((status = 201, description = "created", body = crate::control::access::Principal), crate::http::openapi::Errors)
)]
pub async fn create_principal(
    State(state): State<AppState>,
    caller: Caller,
    Body(req): Body<PrincipalRequest>,
) -> Result<Response, ApiError> {
    let tenant = caller.require(Action::ManageAccess)?;
    let role = parse_role("role", &req.role)?;
    if !caller.0.role.can_grant(role) {
        return Err(ApiError::Forbidden(format!(
            "role {} may not create a principal with role {role}",
            caller.0.role
        )));
    }
    let kind: PrincipalKind = req.kind.as_deref().unwrap_or("user").parse()?;
    let team = keys::within_own_team(&caller.0, req.team.as_deref())?;
    let p = access::create_principal(
        state.engine.store(),
        tenant,
        &NewPrincipal {
            name: &req.name,
            kind,
            role,
            team,
        },
    )
    .await?;
    let view = json!(p);
    audit_created(
        &state,
        &caller,
        AuditAction::PrincipalCreate,
        "principal",
        p.id.to_string(),
        view.clone(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
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
    params(PrincipalParams),
    responses((status = 200, description = "the tenant's principals", body = crate::http::openapi::PrincipalList), crate::http::openapi::Errors)
)]
pub async fn list_principals(
    State(state): State<AppState>,
    caller: Caller,
    Params(p): Params<PrincipalParams>,
) -> Result<Json<Value>, ApiError> {
    let tenant = caller.require(Action::Read)?;
    let store = state.engine.store();
    let team = match &p.team {
        Some(name) => Some(access::require_team(store, tenant, "team", name).await?.id),
        None => None,
    };
    let principals = access::list_principals(store, tenant, team).await?;
    Ok(Json(json!({"items": principals})))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyRequest {
    name: String,
    role: String,
    team: Option<String>,
    principal: Option<String>,
    /// RFC 3339; the key stops working then.
    expires_at: Option<String>,
}

#[utoipa::path(
    post,
    path = "/v1/keys",
    tag = "access",
    request_body = KeyRequest,
    responses((status = 201, description = "created; `key` is the secret, shown this once", body = crate::http::openapi::CreatedKey), crate::http::openapi::Errors)
)]
pub async fn create_key(
    State(state): State<AppState>,
    caller: Caller,
    Body(req): Body<KeyRequest>,
) -> Result<Response, ApiError> {
    caller.require(Action::ManageAccess)?;
    let role = parse_role("role", &req.role)?;
    let expires_at = super::audit::rfc3339("expires_at", req.expires_at.as_deref())?;
    let (view, secret) = keys::create(
        state.engine.store(),
        &caller.0,
        &NewKey {
            name: &req.name,
            role,
            team: req.team.as_deref(),
            principal: req.principal.as_deref(),
            expires_at,
        },
    )
    .await?;
    let listed = json!(view);
    audit_created(
        &state,
        &caller,
        AuditAction::KeyCreate,
        "key",
        view.id.clone(),
        listed.clone(),
    )
    .await?;
    let mut body = listed;
    body["key"] = json!(secret);
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

#[utoipa::path(
    get,
    path = "/v1/keys",
    tag = "access",
    responses((status = 200, description = "the tenant's keys, never their secrets", body = crate::http::openapi::KeyList), crate::http::openapi::Errors)
)]
pub async fn list_keys(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let tenant = caller.require(Action::ManageAccess)?;
    let keys = keys::list(state.engine.store(), tenant, caller.scope()).await?;
    Ok(Json(json!({"items": keys})))
}

/// `DELETE /v1/keys/{id}` revokes: the key stays listed, with `revoked_at`.
#[utoipa::path(
    delete,
    path = "/v1/keys/{id}",
    tag = "access",
    params(("id" = String, Path, description = "the key's id")),
    responses((status = 200, description = "revoked", body = crate::control::keys::KeyView), crate::http::openapi::Errors)
)]
pub async fn revoke_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let tenant = caller.require(Action::ManageAccess)?;
    let store = state.engine.store();
    let before = keys::get(store, tenant, &id, caller.scope()).await?;
    if !caller.0.role.can_grant(before.role) {
        return Err(ApiError::Forbidden(format!(
            "role {} may not revoke a key with role {}",
            caller.0.role, before.role
        )));
    }
    let after = keys::revoke(store, tenant, &id, caller.scope()).await?;
    audit::record(
        store,
        &caller.0,
        Entry {
            action: AuditAction::KeyRevoke,
            target_kind: "key",
            target_id: after.id.clone(),
            reason: None,
            outcome: Outcome::Applied,
            before: Some(json!(before)),
            after: Some(json!(after)),
        },
    )
    .await?;
    Ok(Json(json!(after)))
}
