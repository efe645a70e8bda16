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
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|_| ApiError::TooLarge)?;
        // PostgreSQL cannot store NUL in text or JSON; refuse it here, by name, before anything
        // is written (JSON can only carry it escaped).
        if bytes.windows(6).any(|w| w.eq_ignore_ascii_case(b"\\u0000")) {
            return Err(ApiError::invalid(
                "body",
                "strings must not contain NUL (\\u0000)",
            ));
        }
        let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        let de = &mut serde_json::Deserializer::from_slice(bytes);
        serde_path_to_error::deserialize(de).map(Body).map_err(|e| {
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
        // As for bodies: PostgreSQL cannot compare against text holding NUL.
        let decoded: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
        if decoded
            .iter()
            .any(|(k, v)| k.contains('\0') || v.contains('\0'))
        {
            return Err(ApiError::invalid("query", "must not contain NUL (%00)"));
        }
        serde_urlencoded::from_str(query)
            .map(Params)
            .map_err(|e| ApiError::invalid("query", e.to_string()))
    }
}
