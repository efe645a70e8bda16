//! `/v1/channels/twilio` and `/v1/channels/smtp` (credentials, sealed at rest, never returned)
//! and `/v1/dnc`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::auth::Caller;
use super::error::ApiError;
use super::extract::Body;
use super::AppState;
use crate::usecases::channels::{self, DncView, SmtpFields, SmtpView, TwilioFields, TwilioView};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TwilioRequest {
    account_sid: String,
    auth_token: String,
    from_number: String,
    base_url: Option<String>,
    /// Look up each number's line type (Twilio Lookup, billed per number, once per number)
    /// before its first marketing text, and text no landline. Default false.
    #[serde(default)]
    line_type_lookup: bool,
}

#[utoipa::path(
    put,
    path = "/v1/channels/twilio",
    tag = "channels",
    operation_id = "putTwilioChannel",
    summary = "Store the Twilio account",
    description = "Stores the tenant's Twilio account; the auth token is sealed at rest and never returned. A `base_url` may not lead to this machine or its network. `line_type_lookup` (default false) looks up each number's line type before its first marketing text, once per number, and texts no landline. Replaces the stored account and switch. Audited.",
    request_body = TwilioRequest,
    responses(
        (status = 200, description = "stored; the token is never returned", body = crate::usecases::channels::TwilioView),
        crate::http::openapi::Errors
    )
)]
pub async fn put_twilio(
    State(state): State<AppState>,
    caller: Caller,
    Body(req): Body<TwilioRequest>,
) -> Result<Json<TwilioView>, ApiError> {
    let fields = TwilioFields {
        account_sid: req.account_sid,
        auth_token: req.auth_token,
        from_number: req.from_number,
        base_url: req.base_url,
        line_type_lookup: req.line_type_lookup,
    };
    let view = channels::put_twilio(
        &state.engine,
        &state.keyring,
        &state.guard,
        &caller.0,
        fields,
    )
    .await?;
    // This instance verifies webhooks with the new token at once; others within a minute.
    state.tokens.invalidate(&caller.0.tenant);
    state.accounts.invalidate(&caller.0.tenant).await;
    Ok(Json(view))
}

#[utoipa::path(
    get,
    path = "/v1/channels/twilio",
    tag = "channels",
    operation_id = "getTwilioChannel",
    summary = "Read the Twilio account",
    description = "The stored account without its token; 404 when none is stored.",
    responses(
        (status = 200, description = "the stored account", body = crate::usecases::channels::TwilioView),
        crate::http::openapi::Errors
    )
)]
pub async fn get_twilio(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<TwilioView>, ApiError> {
    Ok(Json(channels::get_twilio(&state.engine, &caller.0).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SmtpRequest {
    /// The server's name or address.
    #[schema(example = "smtp.example.com")]
    host: String,
    #[schema(example = 587)]
    port: u16,
    /// `none`, `starttls` (the server must offer it) or `tls` (from the first byte).
    #[schema(value_type = crate::http::openapi::SmtpTlsMode)]
    tls: String,
    /// With `password`, for AUTH; both or neither.
    username: Option<String>,
    /// Sealed at rest, never returned.
    password: Option<String>,
    /// The sender's address.
    #[schema(example = "alerts@example.com")]
    from: String,
    /// The sender's display name.
    from_name: Option<String>,
}

#[utoipa::path(
    put,
    path = "/v1/channels/smtp",
    tag = "channels",
    operation_id = "putSmtpChannel",
    summary = "Store the SMTP server",
    description = "The server escalation notices are emailed through. The password is sealed at rest and never returned. The host may not lead to this machine or its network. Replaces the stored server. Audited.",
    request_body = SmtpRequest,
    responses(
        (status = 200, description = "stored; the password is never returned", body = crate::usecases::channels::SmtpView),
        crate::http::openapi::Errors
    )
)]
pub async fn put_smtp(
    State(state): State<AppState>,
    caller: Caller,
    Body(req): Body<SmtpRequest>,
) -> Result<Json<SmtpView>, ApiError> {
    let fields = SmtpFields {
        host: req.host,
        port: req.port,
        tls: req.tls,
        username: req.username,
        password: req.password,
        from: req.from,
        from_name: req.from_name,
    };
    let view = channels::put_smtp(
        &state.engine,
        &state.keyring,
        &state.guard,
        &caller.0,
        fields,
    )
    .await?;
    Ok(Json(view))
}

#[utoipa::path(
    get,
    path = "/v1/channels/smtp",
    tag = "channels",
    operation_id = "getSmtpChannel",
    summary = "Read the SMTP server",
    description = "The stored server without its password; 404 when none is stored.",
    responses(
        (status = 200, description = "the stored server", body = crate::usecases::channels::SmtpView),
        crate::http::openapi::Errors
    )
)]
pub async fn get_smtp(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<SmtpView>, ApiError> {
    Ok(Json(channels::get_smtp(&state.engine, &caller.0).await?))
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
    operation_id = "addDoNotCall",
    summary = "Add a number to the do-not-call list",
    description = "Nothing is sent to a listed number on any channel, and a call to it in progress (ringing or bridged to a rep) is hung up. The number is stored in E.164. Audited.",
    request_body = DncRequest,
    responses(
        (status = 201, description = "added", body = crate::usecases::channels::DncView),
        (status = 200, description = "already listed", body = crate::usecases::channels::DncView),
        crate::http::openapi::Errors
    )
)]
pub async fn add_dnc(
    State(state): State<AppState>,
    caller: Caller,
    Body(req): Body<DncRequest>,
) -> Result<Response, ApiError> {
    let (view, added) = channels::add_dnc(&state.engine, &caller.0, &req.phone).await?;
    let status = if added {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view)).into_response())
}

#[utoipa::path(
    delete,
    path = "/v1/dnc/{phone}",
    tag = "channels",
    operation_id = "removeDoNotCall",
    summary = "Remove a number from the do-not-call list",
    description = "404 when the number is not listed. Audited.",
    params(("phone" = String, Path, description = "E.164 number")),
    responses(
        (status = 200, description = "removed", body = crate::usecases::channels::DncView),
        crate::http::openapi::Errors
    )
)]
pub async fn remove_dnc(
    State(state): State<AppState>,
    caller: Caller,
    Path(phone): Path<String>,
) -> Result<Json<DncView>, ApiError> {
    Ok(Json(
        channels::remove_dnc(&state.engine, &caller.0, &phone).await?,
    ))
}
