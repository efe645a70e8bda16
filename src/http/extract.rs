//! Extractors: JSON bodies and query strings whose errors name the field. The caller is
//! `auth::Caller`.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use super::AppState;

/// A JSON body. Unlike `axum::Json`, a bad body answers 400 with the path of the bad field.
pub struct Body<T>(pub T);

/// An empty body is read as `{}`, so commands whose fields are all optional need none.
impl<T: DeserializeOwned> FromRequest<AppState> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        // Only an over-long body is "too large"; one that stalls or breaks off is the caller's
        // bad request (the edge's body timeout ends it).
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::TooLarge
            } else {
                ApiError::invalid("body", format!("the body could not be read: {e}"))
            }
        })?;
        let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        // One JSON value and nothing after it: `{...} GARBAGE` is refused, not half-read.
        let value: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| ApiError::invalid("body", format!("not one JSON value: {e}")))?;
        // No field may hold NUL (PostgreSQL cannot store it), control characters or bidi
        // overrides; refused here, by path, before anything is written.
        crate::input::check_json(&value)?;
        serde_path_to_error::deserialize(value)
            .map(Body)
            .map_err(|e| {
                let path = e.path().to_string();
                let inner = e.into_inner();
                let field = match (path.as_str(), missing_field(&inner.to_string())) {
                    (".", Some(missing)) => missing,
                    (".", None) => "body".into(),
                    (_, Some(missing)) => format!("{path}.{missing}"),
                    (_, None) => path,
                };
                ApiError::invalid(field, inner.to_string())
            })
    }
}

/// serde names a missing field only in its message: "missing field `contact` at ...".
fn missing_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("missing field `")?;
    Some(rest.split('`').next()?.to_owned())
}

/// Query parameters. Unlike `axum::extract::Query`, a bad one answers 400 in JSON.
pub struct Params<T>(pub T);

impl<T: DeserializeOwned> FromRequestParts<AppState> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or("");
        // As for bodies: no NUL (PostgreSQL cannot compare against it), controls or overrides.
        let decoded: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
        crate::input::check_pairs(
            decoded.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            crate::input::Lines::One,
        )?;
        serde_urlencoded::from_str(query)
            .map(Params)
            .map_err(|e| ApiError::invalid("query", e.to_string()))
    }
}
