//! `/v1/channels/twilio` (credentials, sealed at rest, never returned) and `/v1/dnc`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use neuronx_actors::domain::opportunity::normalize_phone;
use serde::Deserialize;
use serde_json::json;

use super::auth::Caller;
use super::error::ApiError;
use super::extract::Body;
use super::AppState;
use crate::control::audit::{self, AuditAction, Entry, Outcome};
use crate::control::Action;
use crate::tenant_data::{self, StoredCredentials};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TwilioRequest {
    account_sid: String,
    auth_token: String,
    from_number: String,
    base_url: Option<String>,
}

fn view(c: &StoredCredentials) -> serde_json::Value {
    json!({
        "channel": "twilio",
        "account_sid": c.account_sid,
        "from_number": c.from_number,
        "base_url": c.base_url,
        "auth_token": "set",
    })
}

/// Channel and do-not-call changes are audited like operator actions; the auth token never
/// reaches the log (the view says only that it is set).
async fn record(
    state: &AppState,
    caller: &Caller,
    action: AuditAction,
    target: String,
    after: serde_json::Value,
) -> Result<(), ApiError> {
    audit::record(
        state.engine.store(),
        &caller.0,
        Entry {
            action,
            target_kind: "channel",
            target_id: target,
            reason: None,
            outcome: Outcome::Applied,
            before: None,
            after: Some(after),
        },
    )
    .await?;
    Ok(())
}

#[utoipa::path(
    put,
    path = "/v1/channels/twilio",
    tag = "channels",
    request_body = TwilioRequest,
    responses((status = 200, description = "stored; the token is never returned", body = Object), crate::http::openapi::Errors)
)]
pub async fn put_twilio(
    State(state): State<AppState>,
    caller: Caller,
    Body(req): Body<TwilioRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let tenant = caller.require(Action::ManageChannels)?;
    let sid_ok = req.account_sid.len() == 34
        && req.account_sid.starts_with("AC")
        && req.account_sid[2..].bytes().all(|b| b.is_ascii_hexdigit());
    if !sid_ok {
        return Err(ApiError::invalid(
            "account_sid",
            "must be AC followed by 32 hex digits",
        ));
    }
    if req.auth_token.trim().is_empty() || req.auth_token.len() > 200 {
        return Err(ApiError::invalid(
            "auth_token",
            "must be 1 to 200 characters",
        ));
    }
    let from_number = normalize_phone(&req.from_number)
        .map_err(|e| ApiError::invalid("from_number", e.to_string()))?;
    if let Some(url) = &req.base_url {
        if url.chars().count() > 500 {
            return Err(ApiError::invalid(
                "base_url",
                "must be at most 500 characters",
            ));
        }
        // The tenant's token will be sent there: never to this machine or its network.
        let parsed = state
            .guard
            .check_resolved(url)
            .await
            .map_err(|e| ApiError::invalid("base_url", e.to_string()))?;
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(ApiError::invalid(
                "base_url",
                "must not carry a query or fragment",
            ));
        }
    }
    let sealed = state
        .keyring
        .seal(&req.auth_token)
        .map_err(|e| ApiError::Conflict {
            code: "no_encryption_key".into(),
            message: e.to_string(),
        })?;
    let stored = StoredCredentials {
        account_sid: req.account_sid,
        from_number,
        base_url: req.base_url.map(|u| u.trim_end_matches('/').to_owned()),
        sealed,
    };
    tenant_data::put_credentials(state.engine.store(), tenant, "twilio", &stored).await?;
    // This instance verifies webhooks with the new token at once; others within a minute.
    state.tokens.invalidate(&tenant);
    state.accounts.invalidate(&tenant).await;
    let view = view(&stored);
    record(
        &state,
        &caller,
        AuditAction::ChannelUpdate,
        "twilio".into(),
        view.clone(),
    )
    .await?;
    Ok(Json(view))
}

#[utoipa::path(
    get,
    path = "/v1/channels/twilio",
    tag = "channels",
    responses((status = 200, description = "the stored account", body = Object), crate::http::openapi::Errors)
)]
pub async fn get_twilio(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<serde_json::Value>, ApiError> {
    let tenant = caller.require(Action::ManageChannels)?;
    let stored = tenant_data::get_credentials(state.engine.store(), tenant, "twilio")
        .await?
        .ok_or(ApiError::NotFound("twilio channel"))?;
    Ok(Json(view(&stored)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DncRequest {
    phone: String,
}

#[utoipa::path(
    post,
    path = "/v1/dnc",
    tag = "channels",
    request_body = DncRequest,
    responses((status = 201, description = "added", body = Object), (status = 200, description = "already listed", body = Object), crate::http::openapi::Errors)
)]
pub async fn add_dnc(
    State(state): State<AppState>,
    caller: Caller,
    Body(req): Body<DncRequest>,
) -> Result<Response, ApiError> {
    let tenant = caller.require(Action::WriteDnc)?;
    let phone =
        normalize_phone(&req.phone).map_err(|e| ApiError::invalid("phone", e.to_string()))?;
    let added = tenant_data::add_dnc(state.engine.store(), tenant, &phone).await?;
    let after = json!({"phone": phone, "listed": true});
    record(&state, &caller, AuditAction::DncAdd, "dnc".into(), after).await?;
    let status = if added {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(json!({"phone": phone, "listed": true}))).into_response())
}

#[utoipa::path(
    delete,
    path = "/v1/dnc/{phone}",
    tag = "channels",
    params(("phone" = String, Path, description = "E.164 number")),
    responses((status = 200, description = "removed", body = Object), crate::http::openapi::Errors)
)]
pub async fn remove_dnc(
    State(state): State<AppState>,
    caller: Caller,
    Path(phone): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let tenant = caller.require(Action::WriteDnc)?;
    let phone = normalize_phone(&phone).map_err(|e| ApiError::invalid("phone", e.to_string()))?;
    if !tenant_data::remove_dnc(state.engine.store(), tenant, &phone).await? {
        return Err(ApiError::NotFound("do-not-call entry"));
    }
    let after = json!({"phone": phone, "listed": false});
    record(&state, &caller, AuditAction::DncRemove, "dnc".into(), after).await?;
    Ok(Json(json!({"phone": phone, "listed": false})))
}
