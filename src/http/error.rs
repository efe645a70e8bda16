//! The API's error type: every failure becomes a status and a JSON body that names the
//! problem; internals are logged, never sent.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing or invalid API key")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("too many failed authentication attempts; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{method} is not allowed on {route}; the Allow header lists the methods it takes")]
    MethodNotAllowed { method: String, route: String },
    #[error("invalid {field}: {message}")]
    Invalid { field: String, message: String },
    #[error("{message}")]
    Conflict { code: String, message: String },
    #[error("request body too large")]
    TooLarge,
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl From<neuronx_supervision::StoreError> for ApiError {
    fn from(e: neuronx_supervision::StoreError) -> Self {
        crate::usecases::Error::from(e).into()
    }
}

impl From<crate::usecases::Error> for ApiError {
    fn from(e: crate::usecases::Error) -> Self {
        use crate::usecases::Error as E;
        match e {
            E::Invalid { field, message } => ApiError::Invalid { field, message },
            E::NotFound(what) => ApiError::NotFound(what),
            E::Forbidden(message) => ApiError::Forbidden(message),
            E::Conflict { code, message } => ApiError::Conflict { code, message },
            E::Unavailable(reason) => ApiError::Unavailable(reason),
            E::Internal(e) => ApiError::Internal(e),
        }
    }
}

impl From<crate::input::BadText> for ApiError {
    fn from(e: crate::input::BadText) -> Self {
        ApiError::Invalid {
            field: e.field,
            message: e.message,
        }
    }
}

impl From<crate::control::ControlError> for ApiError {
    fn from(e: crate::control::ControlError) -> Self {
        use crate::control::ControlError as C;
        match e {
            C::Invalid { field, message } => ApiError::invalid(field, message),
            C::NotFound(what) => ApiError::NotFound(what),
            e @ C::Exists { .. } => ApiError::Conflict {
                code: "already_exists".into(),
                message: e.to_string(),
            },
            e @ C::Forbidden { .. } => ApiError::Forbidden(e.to_string()),
            C::Store(e) => e.into(),
        }
    }
}

/// A route that exists answered for a method it does not take. axum adds the `Allow` header.
pub async fn method_not_allowed(
    method: axum::http::Method,
    route: Option<axum::extract::MatchedPath>,
) -> ApiError {
    ApiError::MethodNotAllowed {
        method: method.to_string(),
        route: route.map_or_else(|| "this route".to_owned(), |r| r.as_str().to_owned()),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = match &self {
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                json!({"error": "unauthorized", "message": self.to_string()}),
            ),
            ApiError::Forbidden(message) => (
                StatusCode::FORBIDDEN,
                json!({"error": "forbidden", "message": message}),
            ),
            ApiError::RateLimited { retry_after_secs } => {
                let body = json!({"error": "rate_limited", "message": self.to_string()});
                return (
                    StatusCode::TOO_MANY_REQUESTS,
                    [(header::RETRY_AFTER, retry_after_secs.to_string())],
                    Json(body),
                )
                    .into_response();
            }
            ApiError::NotFound(what) => (
                StatusCode::NOT_FOUND,
                json!({"error": "not_found", "message": format!("{what} not found")}),
            ),
            ApiError::MethodNotAllowed { .. } => (
                StatusCode::METHOD_NOT_ALLOWED,
                json!({"error": "method_not_allowed", "message": self.to_string()}),
            ),
            ApiError::Invalid { field, message } => (
                StatusCode::BAD_REQUEST,
                json!({"error": "invalid_request", "field": field, "message": message}),
            ),
            ApiError::Conflict { code, message } => (
                StatusCode::CONFLICT,
                json!({"error": code, "message": message}),
            ),
            ApiError::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({"error": "too_large", "message": self.to_string()}),
            ),
            ApiError::Unavailable(reason) => {
                tracing::warn!(%reason, "request refused: unavailable");
                // Passing by definition: the client may try again in a second.
                let body = json!({"error": "unavailable", "message": "the engine cannot accept this right now; retry"});
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [(header::RETRY_AFTER, "1")],
                    Json(body),
                )
                    .into_response();
            }
            ApiError::Internal(e) => {
                tracing::error!(error = %e, error.cause_chain = ?e, "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({"error": "internal", "message": "internal error"}),
                )
            }
        };
        (status, Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use neuronx_supervision::StoreError;

    async fn rendered(e: ApiError) -> (StatusCode, Option<String>, serde_json::Value) {
        let response = e.into_response();
        let status = response.status();
        let retry = response
            .headers()
            .get(header::RETRY_AFTER)
            .map(|v| v.to_str().unwrap().to_owned());
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, retry, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn a_passing_database_failure_is_503_with_retry_after_and_no_database_text() {
        let (status, retry, body) =
            rendered(StoreError::Db(sqlx::Error::PoolTimedOut).into()).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(retry.as_deref(), Some("1"));
        assert_eq!(body["error"], "unavailable");
        assert!(!body.to_string().contains("pool"), "{body}");
    }

    #[tokio::test]
    async fn corrupt_data_stays_an_internal_error() {
        let (status, retry, body) = rendered(StoreError::Corrupt("bad row".into()).into()).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(retry, None);
        assert_eq!(body["error"], "internal");
        assert!(!body.to_string().contains("bad row"), "{body}");
    }
}
