//! Twilio webhooks: voice and SMS status callbacks and inbound SMS. The use case
//! (`crate::usecases::webhooks`) verifies, routes and makes each durable; here the outcome
//! becomes a status: 200 (TwiML) once durable, 403 for a bad or missing signature, 400 for a
//! verified request missing a field, 503 when it cannot be made durable (Twilio retries).

use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::usecases::webhooks::{self, Delivery, Hook, Refusal, Verifier};

/// Unverified requests are forbidden; verified ones missing a field are bad requests.
fn status_of(why: Refusal) -> StatusCode {
    match why {
        Refusal::UnknownTenant
        | Refusal::MissingSignature
        | Refusal::BadForm
        | Refusal::NulInForm
        | Refusal::NoCredentials
        | Refusal::SealedTokenUnreadable
        | Refusal::BadSignature => StatusCode::FORBIDDEN,
        Refusal::MissingCallSid
        | Refusal::BadCallSid
        | Refusal::BadFrom
        | Refusal::BadTo
        | Refusal::MissingCallStatus
        | Refusal::BadCallStatus
        | Refusal::MissingMessageSid
        | Refusal::MissingMessageStatus
        | Refusal::MissingFrom
        | Refusal::MissingTo
        | Refusal::UnknownTo
        | Refusal::MissingDialCallStatus
        | Refusal::BadDialCallStatus
        | Refusal::MissingRecordingSid
        | Refusal::BadRecordingSid => StatusCode::BAD_REQUEST,
        Refusal::StoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        Refusal::Unencodable => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A refusal answers JSON naming the problem (a carrier ignores the body; a person reading a
/// log or replaying by hand gets the reason).
pub(super) fn refuse(hook: &'static str, why: Refusal, state: &AppState) -> Response {
    state
        .webhooks
        .with_label_values(&[hook, why.as_str()])
        .inc();
    if why != Refusal::StoreUnavailable {
        tracing::warn!(hook, why = why.as_str(), "webhook refused");
    }
    let mut body = serde_json::json!({"error": why.as_str(), "message": format!("webhook refused: {}", why.as_str())});
    if let Some(field) = why.field() {
        body["field"] = field.into();
        if why == Refusal::UnknownTo {
            body["message"] = "webhook refused: To is not one of this tenant's numbers".into();
        }
    }
    (status_of(why), axum::Json(body)).into_response()
}

/// The webhook's own request, as the use cases take it.
pub(super) fn delivery<'a>(
    tenant_id: &'a str,
    uri: &'a axum::http::Uri,
    headers: &'a HeaderMap,
    body: &'a [u8],
) -> Delivery<'a> {
    Delivery {
        tenant_id,
        path_and_query: uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or(uri.path()),
        query: uri.query(),
        signature: headers
            .get("x-twilio-signature")
            .and_then(|v| v.to_str().ok()),
        body,
    }
}

pub(super) fn verifier(state: &AppState) -> Verifier<'_> {
    Verifier {
        engine: &state.engine,
        keyring: &state.keyring,
        tokens: &state.tokens,
        public_url: &state.public_url,
    }
}

async fn handle(
    state: AppState,
    hook: Hook,
    tenant_id: String,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let delivery = delivery(&tenant_id, &uri, &headers, &body);
    match webhooks::receive(&verifier(&state), hook, delivery).await {
        Ok(received) => {
            if received == webhooks::Received::Unknown {
                tracing::info!(hook = hook.label(), "webhook for an unknown call or sender");
            }
            state
                .webhooks
                .with_label_values(&[hook.label(), received.as_str()])
                .inc();
            let twiml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response></Response>";
            (StatusCode::OK, [(header::CONTENT_TYPE, "text/xml")], twiml).into_response()
        }
        Err(why) => refuse(hook.label(), why, &state),
    }
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
