//! Twilio webhooks: voice and SMS status callbacks and inbound SMS.
//!
//! Order matters: the signature is checked (against the URL Twilio saw: the public URL, the
//! path and the query) before anything is written; a valid request is made durable in the inbox
//! (deduplicated by CallSid+SequenceNumber or MessageSid+status), then answered 200. A bad or
//! missing signature gets 403; when the input cannot be made durable, 503 so Twilio retries.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use neuronx_actors::domain::call::{AnsweredBy, CallInput, CallStatus};
use neuronx_actors::domain::opportunity::OppInput;
use neuronx_actors::{call as call_actor, opportunity as opp};
use neuronx_adapters::twilio::signature;
use neuronx_supervision::{ActorKey, SubmitOutcome, TenantId};
use serde_json::Value;
use uuid::Uuid;

use super::AppState;
use crate::tenant_data;

#[derive(Clone, Copy)]
enum Hook {
    VoiceStatus,
    SmsStatus,
    SmsInbound,
}

impl Hook {
    fn label(self) -> &'static str {
        match self {
            Hook::VoiceStatus => "voice_status",
            Hook::SmsStatus => "sms_status",
            Hook::SmsInbound => "sms_inbound",
        }
    }
}

/// Why a webhook request was not taken, as its metric label and its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    UnknownTenant,
    MissingSignature,
    BadForm,
    NulInForm,
    NoCredentials,
    SealedTokenUnreadable,
    BadSignature,
    MissingCallSid,
    MissingCallStatus,
    BadCallStatus,
    MissingMessageSid,
    MissingMessageStatus,
    MissingFrom,
    /// Ours, not the caller's: the database could not answer. 503 makes Twilio retry.
    StoreUnavailable,
    Unencodable,
}

impl Refusal {
    fn as_str(self) -> &'static str {
        match self {
            Refusal::UnknownTenant => "unknown_tenant",
            Refusal::MissingSignature => "missing_signature",
            Refusal::BadForm => "bad_form",
            Refusal::NulInForm => "nul_in_form",
            Refusal::NoCredentials => "no_credentials",
            Refusal::SealedTokenUnreadable => "sealed_token_unreadable",
            Refusal::BadSignature => "bad_signature",
            Refusal::MissingCallSid => "missing_call_sid",
            Refusal::MissingCallStatus => "missing_call_status",
            Refusal::BadCallStatus => "bad_call_status",
            Refusal::MissingMessageSid => "missing_message_sid",
            Refusal::MissingMessageStatus => "missing_message_status",
            Refusal::MissingFrom => "missing_from",
            Refusal::StoreUnavailable => "unavailable",
            Refusal::Unencodable => "unencodable",
        }
    }

    /// Unverified requests are forbidden; verified ones missing a field are bad requests.
    fn status(self) -> StatusCode {
        match self {
            Refusal::UnknownTenant
            | Refusal::MissingSignature
            | Refusal::BadForm
            | Refusal::NulInForm
            | Refusal::NoCredentials
            | Refusal::SealedTokenUnreadable
            | Refusal::BadSignature => StatusCode::FORBIDDEN,
            Refusal::MissingCallSid
            | Refusal::MissingCallStatus
            | Refusal::BadCallStatus
            | Refusal::MissingMessageSid
            | Refusal::MissingMessageStatus
            | Refusal::MissingFrom => StatusCode::BAD_REQUEST,
            Refusal::StoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Refusal::Unencodable => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// A refusal answers JSON naming the problem (a carrier ignores the body; a person reading a
/// log or replaying by hand gets the reason).
fn refuse(hook: Hook, why: Refusal, state: &AppState) -> Response {
    state
        .webhooks
        .with_label_values(&[hook.label(), why.as_str()])
        .inc();
    if why != Refusal::StoreUnavailable {
        tracing::warn!(hook = hook.label(), why = why.as_str(), "webhook refused");
    }
    let body = serde_json::json!({"error": why.as_str(), "message": format!("webhook refused: {}", why.as_str())});
    (why.status(), axum::Json(body)).into_response()
}

fn reply(status: StatusCode, hook: Hook, outcome: &str, state: &AppState) -> Response {
    state
        .webhooks
        .with_label_values(&[hook.label(), outcome])
        .inc();
    let twiml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response></Response>";
    (status, [(header::CONTENT_TYPE, "text/xml")], twiml).into_response()
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query?).ok()?;
    pairs.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// Checks the signature; `None` when the request must be refused.
async fn verified(
    state: &AppState,
    tenant_id: &str,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(TenantId, Vec<(String, String)>), Refusal> {
    let tenant = Uuid::parse_str(tenant_id)
        .map(TenantId)
        .map_err(|_| Refusal::UnknownTenant)?;
    let header = headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
        .ok_or(Refusal::MissingSignature)?;
    let params: Vec<(String, String)> =
        serde_urlencoded::from_bytes(body).map_err(|_| Refusal::BadForm)?;
    // NUL cannot be stored (PostgreSQL text and JSON refuse it); a signed request carrying one
    // is still refused by name rather than failing its write on every retry.
    if params
        .iter()
        .any(|(k, v)| k.contains('\0') || v.contains('\0'))
    {
        return Err(Refusal::NulInForm);
    }
    let path_and_query = uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or(uri.path());
    let url = format!("{}{}", state.public_url, path_and_query);
    if let Some(token) = state.tokens.get(&tenant) {
        if signature::validate(&token, &url, &params, header) {
            return Ok((tenant, params));
        }
        // The token may have changed on another instance: check against the stored one.
        state.tokens.invalidate(&tenant);
    }
    let creds = tenant_data::get_credentials(state.engine.store(), tenant, "twilio")
        .await
        .map_err(|_| Refusal::StoreUnavailable)?
        .ok_or(Refusal::NoCredentials)?;
    let token: Arc<str> = state
        .keyring
        .open(&creds.sealed)
        .map_err(|_| Refusal::SealedTokenUnreadable)?
        .into();
    state.tokens.insert(tenant, token.clone());
    if !signature::validate(&token, &url, &params, header) {
        return Err(Refusal::BadSignature);
    }
    Ok((tenant, params))
}

async fn handle(
    state: AppState,
    hook: Hook,
    tenant_id: String,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (tenant, params) = match verified(&state, &tenant_id, &uri, &headers, &body).await {
        Ok(v) => v,
        Err(why) => return refuse(hook, why, &state),
    };
    let routed = match hook {
        Hook::VoiceStatus => voice_status(&state, tenant, uri.query(), &params).await,
        Hook::SmsStatus => sms_status(tenant, uri.query(), &params),
        Hook::SmsInbound => sms_inbound(&state, tenant, &params).await,
    };
    let (key, input, dedupe) = match routed {
        Ok(Some(r)) => r,
        Ok(None) => {
            tracing::info!(hook = hook.label(), "webhook for an unknown call or sender");
            return reply(StatusCode::OK, hook, "unknown", &state);
        }
        // A failed lookup is ours, not the caller's: 503 makes Twilio retry.
        Err(why) => return refuse(hook, why, &state),
    };
    match state.engine.enqueue(key, input, Some(dedupe)).await {
        Ok(SubmitOutcome::Duplicate) => reply(StatusCode::OK, hook, "duplicate", &state),
        Ok(_) => reply(StatusCode::OK, hook, "accepted", &state),
        Err(e) => {
            tracing::warn!(error = %e, "webhook not made durable");
            reply(StatusCode::SERVICE_UNAVAILABLE, hook, "unavailable", &state)
        }
    }
}

type Routed = Result<Option<(ActorKey, Value, String)>, Refusal>;

async fn voice_status(
    state: &AppState,
    tenant: TenantId,
    query: Option<&str>,
    params: &[(String, String)],
) -> Routed {
    let call_sid = param(params, "CallSid").ok_or(Refusal::MissingCallSid)?;
    let status: CallStatus = param(params, "CallStatus")
        .ok_or(Refusal::MissingCallStatus)?
        .parse()
        .map_err(|_| Refusal::BadCallStatus)?;
    let sequence = param(params, "SequenceNumber").and_then(|s| s.parse::<u64>().ok());
    let answered_by = param(params, "AnsweredBy").and_then(|s| s.parse::<AnsweredBy>().ok());
    let (Some(call_id), Some(opp_id)) = (
        query_param(query, "call").and_then(|s| Uuid::parse_str(&s).ok()),
        query_param(query, "opp").and_then(|s| Uuid::parse_str(&s).ok()),
    ) else {
        return Ok(None);
    };
    let known = state
        .engine
        .store()
        .actor_exists(tenant, call_actor::KIND.as_str(), call_id)
        .await
        .map_err(|_| Refusal::StoreUnavailable)?;
    if !known {
        return Ok(None);
    }
    let key = call_actor::key(&opp::key(tenant, opp_id), call_id);
    let dedupe = match sequence {
        Some(seq) => format!("voice:{call_sid}:{seq}"),
        None => format!("voice:{call_sid}:{}", status.as_str()),
    };
    let input = CallInput::Status {
        status,
        sequence,
        answered_by,
        provider_sid: Some(call_sid.to_owned()),
    };
    Ok(Some((key, to_value(&input)?, dedupe)))
}

fn sms_status(tenant: TenantId, query: Option<&str>, params: &[(String, String)]) -> Routed {
    let sid = param(params, "MessageSid")
        .or_else(|| param(params, "SmsSid"))
        .ok_or(Refusal::MissingMessageSid)?;
    let status = param(params, "MessageStatus")
        .or_else(|| param(params, "SmsStatus"))
        .ok_or(Refusal::MissingMessageStatus)?;
    let Some(opp_id) = query_param(query, "opp").and_then(|s| Uuid::parse_str(&s).ok()) else {
        return Ok(None);
    };
    let input = OppInput::MessageStatus {
        message_sid: sid.to_owned(),
        status: status.to_owned(),
    };
    Ok(Some((
        opp::key(tenant, opp_id),
        to_value(&input)?,
        format!("sms:{sid}:{status}"),
    )))
}

async fn sms_inbound(state: &AppState, tenant: TenantId, params: &[(String, String)]) -> Routed {
    let sid = param(params, "MessageSid")
        .or_else(|| param(params, "SmsSid"))
        .ok_or(Refusal::MissingMessageSid)?;
    let from = param(params, "From").ok_or(Refusal::MissingFrom)?;
    let body = param(params, "Body").unwrap_or("");
    let Some(opp_id) = tenant_data::opportunity_of_phone(state.engine.store(), tenant, from)
        .await
        .map_err(|_| Refusal::StoreUnavailable)?
    else {
        return Ok(None);
    };
    let input = OppInput::Replied {
        body: body.to_owned(),
    };
    Ok(Some((
        opp::key(tenant, opp_id),
        to_value(&input)?,
        format!("inbound:{sid}"),
    )))
}

fn to_value<T: serde::Serialize>(v: &T) -> Result<Value, Refusal> {
    serde_json::to_value(v).map_err(|_| Refusal::Unencodable)
}

macro_rules! webhook_route {
    ($name:ident, $hook:expr) => {
        pub async fn $name(
            State(state): State<AppState>,
            Path(tenant_id): Path<String>,
            OriginalUri(uri): OriginalUri,
            headers: HeaderMap,
            body: Bytes,
        ) -> Response {
            handle(state, $hook, tenant_id, uri, headers, body).await
        }
    };
}

webhook_route!(voice_status_route, Hook::VoiceStatus);
webhook_route!(sms_status_route, Hook::SmsStatus);
webhook_route!(sms_inbound_route, Hook::SmsInbound);
