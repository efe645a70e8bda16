//! Inbound email over HTTP (ADR 0052): `/v1/channels/inbound-email` (the relay's signing key,
//! sealed, never returned; the reply domain) and the relay's webhook,
//! `POST /webhooks/mailgun/{tenant_id}/mime`. The webhook's form (urlencoded, or multipart as
//! Mailgun posts a raw message) is read here; the use case verifies, routes and makes it
//! durable. Answers: 200 once durable (or knowingly ignored); 403 unverified; 406 verified but
//! unusable (Mailgun does not retry a 406); 413 too large; 503 not durable (Mailgun retries).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::auth::Caller;
use super::error::ApiError;
use super::extract::Body;
use super::AppState;
use crate::usecases::inbound_email::settings::{self, InboundFields, InboundView};
use crate::usecases::inbound_email::{self, MailContext, MailRefusal};

/// The largest post taken: a message with its attachments, as the relay sends it.
pub const MAX_MAIL_BYTES: usize = 10 * 1024 * 1024;
/// How many form fields a post may have (Mailgun sends about ten).
const MAX_FIELDS: usize = 64;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InboundEmailRequest {
    /// `mailgun` (the default): the relay whose route posts the mail.
    #[schema(value_type = Option<crate::http::openapi::InboundEmailProvider>)]
    provider: Option<String>,
    /// The relay's HTTP webhook signing key. Sealed at rest, never returned.
    signing_key: String,
    /// A domain whose mail the relay posts here: lead emails then carry
    /// `Reply-To: reply+…@<reply_domain>`. Omit it to route replies by sender only.
    #[schema(example = "reply.example.com")]
    reply_domain: Option<String>,
}

#[utoipa::path(
    put,
    path = "/v1/channels/inbound-email",
    tag = "channels",
    operation_id = "putInboundEmailChannel",
    summary = "Store how inbound email reaches NeuronX",
    description = "The mail relay's webhook signing key (sealed at rest, never returned) and the reply domain put on lead emails. The answer's webhook_url is where the relay's route must forward mail. Replaces the stored settings. Audited.",
    request_body = InboundEmailRequest,
    responses(
        (status = 200, description = "stored; the key is never returned", body = InboundView),
        crate::http::openapi::Errors
    )
)]
pub async fn put_inbound(
    State(state): State<AppState>,
    caller: Caller,
    Body(req): Body<InboundEmailRequest>,
) -> Result<Json<InboundView>, ApiError> {
    let fields = InboundFields {
        provider: req.provider,
        signing_key: req.signing_key,
        reply_domain: req.reply_domain,
    };
    let view = settings::put(
        &state.engine,
        &state.keyring,
        &state.public_url,
        &caller.0,
        fields,
    )
    .await?;
    Ok(Json(view))
}

#[utoipa::path(
    get,
    path = "/v1/channels/inbound-email",
    tag = "channels",
    operation_id = "getInboundEmailChannel",
    summary = "Read how inbound email reaches NeuronX",
    description = "The stored settings without the key; 404 when none are stored.",
    responses(
        (status = 200, description = "the stored settings", body = InboundView),
        crate::http::openapi::Errors
    )
)]
pub async fn get_inbound(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<InboundView>, ApiError> {
    let view = settings::get(&state.engine, &state.public_url, &caller.0).await?;
    Ok(Json(view))
}

fn status_of(why: MailRefusal) -> StatusCode {
    match why {
        MailRefusal::UnknownTenant
        | MailRefusal::NotConfigured
        | MailRefusal::MissingSignature
        | MailRefusal::BadSignature
        | MailRefusal::StaleTimestamp
        | MailRefusal::SealedKeyUnreadable => StatusCode::FORBIDDEN,
        MailRefusal::MissingMessage | MailRefusal::UnreadableMessage | MailRefusal::MissingFrom => {
            StatusCode::NOT_ACCEPTABLE
        }
        MailRefusal::StoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        MailRefusal::Unencodable => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn answer(state: &AppState, status: StatusCode, label: &str, body: serde_json::Value) -> Response {
    state
        .webhooks
        .with_label_values(&["email_inbound", label])
        .inc();
    (status, Json(body)).into_response()
}

fn refuse(state: &AppState, why: MailRefusal) -> Response {
    if why != MailRefusal::StoreUnavailable {
        tracing::warn!(why = why.as_str(), "inbound email refused");
    }
    let mut body = serde_json::json!({"error": why.as_str(),
        "message": format!("inbound email refused: {}", why.as_str())});
    if let Some(field) = why.field() {
        body["field"] = field.into();
    }
    answer(state, status_of(why), why.as_str(), body)
}

/// Why a post's form could not be read.
fn bad_form(state: &AppState, message: String) -> Response {
    let body = serde_json::json!({"error": "bad_form", "message": message});
    answer(state, StatusCode::BAD_REQUEST, "bad_form", body)
}

pub async fn mailgun_route(
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            let body = serde_json::json!({"error": "too_large",
                "message": format!("an inbound email post may be at most {MAX_MAIL_BYTES} bytes")});
            return answer(&state, StatusCode::PAYLOAD_TOO_LARGE, "too_large", body);
        }
        Err(e) => return bad_form(&state, e.body_text()),
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let fields = match read_form(content_type, body).await {
        Ok(fields) => fields,
        Err(message) => return bad_form(&state, message),
    };
    let cx = MailContext {
        engine: &state.engine,
        keyring: &state.keyring,
    };
    match inbound_email::receive(&cx, &tenant_id, &fields).await {
        Ok(outcome) => {
            let body = serde_json::json!({"outcome": outcome.as_str()});
            answer(&state, StatusCode::OK, outcome.as_str(), body)
        }
        Err(why) => refuse(&state, why),
    }
}

/// The post's text fields: urlencoded, or multipart (attachments, parts with a file name,
/// are skipped: the raw message carries them).
async fn read_form(content_type: &str, body: Bytes) -> Result<Vec<(String, String)>, String> {
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let fields: Vec<(String, String)> = match mime.as_str() {
        "application/x-www-form-urlencoded" => serde_urlencoded::from_bytes(&body)
            .map_err(|e| format!("the form cannot be read: {e}"))?,
        "multipart/form-data" => multipart(content_type, body).await?,
        _ => {
            return Err(
                "Content-Type must be multipart/form-data or application/x-www-form-urlencoded"
                    .to_owned(),
            )
        }
    };
    if fields.len() > MAX_FIELDS {
        return Err(format!("at most {MAX_FIELDS} fields"));
    }
    Ok(fields)
}

async fn multipart(content_type: &str, body: Bytes) -> Result<Vec<(String, String)>, String> {
    let boundary =
        multer::parse_boundary(content_type).map_err(|e| format!("no multipart boundary: {e}"))?;
    let stream = futures_util::stream::once(async move { Ok::<Bytes, std::io::Error>(body) });
    let mut form = multer::Multipart::new(stream, boundary);
    let mut fields = Vec::new();
    while let Some(part) = form
        .next_field()
        .await
        .map_err(|e| format!("the multipart form cannot be read: {e}"))?
    {
        if fields.len() >= MAX_FIELDS {
            return Err(format!("at most {MAX_FIELDS} fields"));
        }
        let name = part.name().unwrap_or_default().to_owned();
        if part.file_name().is_some() {
            continue;
        }
        let text = part
            .text()
            .await
            .map_err(|e| format!("field {name:?} cannot be read: {e}"))?;
        fields.push((name, text));
    }
    Ok(fields)
}
