//! `Idempotency-Key` on API commands (POST, PUT, DELETE): a client that retries a command after
//! a lost answer gets the first answer again, from any instance, for a day; the same key with a
//! different request answers 422. The key is claimed before the command runs (see
//! `control::idempotency`), so racing retries run it once.

use std::sync::atomic::{AtomicI64, Ordering};

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::auth::{bearer, check_key, client_address, Authenticated};
use super::error::ApiError;
use super::AppState;
use crate::control::idempotency::{self, Claim};

pub const HEADER: &str = "idempotency-key";
/// The largest body a command takes (the router's limit) and the largest answer kept.
const MAX_BODY: usize = 64 * 1024;
const MAX_ANSWER: usize = 1024 * 1024;

/// When this instance last pruned expired keys; about once a minute is plenty.
static LAST_PRUNE_MS: AtomicI64 = AtomicI64::new(0);

fn refuse(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({"error": code, "message": message}))).into_response()
}

/// A key is 1 to 255 printable ASCII characters (a UUID, typically).
fn valid_key(key: &str) -> bool {
    (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic())
}

pub async fn idempotent(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let Some(raw) = req.headers().get(HEADER).cloned() else {
        return next.run(req).await;
    };
    // Keys are per tenant: the caller must be known before its key is looked up.
    let (mut parts, body) = req.into_parts();
    let identity = match bearer(&parts) {
        Some(presented) => match check_key(&state, client_address(&parts), presented).await {
            Ok(identity) => identity,
            Err(e) => return e.into_response(),
        },
        None => return ApiError::Unauthorized.into_response(),
    };
    // The handler's `Caller` takes it from here rather than looking the key up again.
    parts.extensions.insert(Authenticated(identity.clone()));
    let Some(key) = raw
        .to_str()
        .ok()
        .filter(|k| valid_key(k))
        .map(str::to_owned)
    else {
        return ApiError::invalid(
            "Idempotency-Key",
            "must be 1 to 255 printable ASCII characters",
        )
        .into_response();
    };
    let Ok(bytes) = to_bytes(body, MAX_BODY).await else {
        return ApiError::TooLarge.into_response();
    };
    let mut hasher = Sha256::new();
    hasher.update(parts.method.as_str());
    hasher.update(b" ");
    hasher.update(parts.uri.path().as_bytes());
    hasher.update(b"?");
    hasher.update(parts.uri.query().unwrap_or("").as_bytes());
    hasher.update(b"\n");
    hasher.update(canonical(&bytes));
    let hash = hex::encode(hasher.finalize());
    let store = state.engine.store();
    prune_now_and_then(&state).await;
    match idempotency::claim(store, identity.tenant, &key, &hash).await {
        Ok(Claim::Run) => {}
        Ok(Claim::Replay { status, body }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            return (
                status,
                [
                    (
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    ),
                    (
                        header::HeaderName::from_static("idempotent-replayed"),
                        HeaderValue::from_static("true"),
                    ),
                ],
                body,
            )
                .into_response();
        }
        Ok(Claim::Mismatch) => {
            return refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "this Idempotency-Key was used for a different request",
            )
        }
        Ok(Claim::InProgress) => {
            let mut r = refuse(
                StatusCode::CONFLICT,
                "idempotency_key_in_progress",
                "a request with this Idempotency-Key is still running; retry shortly",
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return r;
        }
        Err(e) => return ApiError::from(e).into_response(),
    }
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let status = response.status();
    let (resp_parts, resp_body) = response.into_parts();
    let answer = match to_bytes(resp_body, MAX_ANSWER).await {
        Ok(b) => b,
        Err(_) => {
            let _ = idempotency::release(store, identity.tenant, &key).await;
            return ApiError::Internal(anyhow::anyhow!("answer too large to keep")).into_response();
        }
    };
    // Answers worth retrying (the server's trouble, or a limit) are not kept: the client's
    // retry runs the command again. Everything else is the request's answer for good.
    let keep = !(status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS);
    let recorded = if keep {
        let text = String::from_utf8_lossy(&answer);
        idempotency::finish(store, identity.tenant, &key, status.as_u16(), &text).await
    } else {
        idempotency::release(store, identity.tenant, &key).await
    };
    if let Err(e) = recorded {
        tracing::warn!(error = %e, "idempotency key not recorded; a retry may run the command again");
    }
    Response::from_parts(resp_parts, Body::from(answer))
}

/// The body as compared between a request and its retry: a JSON body by its content (keys
/// sorted, no white space), so a retry that formats the same request differently is the same
/// request; anything else byte for byte.
fn canonical(body: &[u8]) -> Vec<u8> {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| serde_json::to_vec(&v).ok())
        .unwrap_or_else(|| body.to_vec())
}

async fn prune_now_and_then(state: &AppState) {
    let now = chrono::Utc::now().timestamp_millis();
    let last = LAST_PRUNE_MS.load(Ordering::Relaxed);
    if now - last < 60_000
        || LAST_PRUNE_MS
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
    {
        return;
    }
    if let Err(e) = idempotency::prune(state.engine.store()).await {
        tracing::warn!(error = %e, "expired idempotency keys not pruned");
    }
}

#[cfg(test)]
mod tests {
    use super::{canonical, valid_key};

    #[test]
    fn the_same_json_formatted_differently_is_the_same_request() {
        let pretty = b"{\n  \"b\": 1,\n  \"a\": [1, 2]\n}";
        let compact = b"{\"a\":[1,2],\"b\":1}";
        assert_eq!(canonical(pretty), canonical(compact));
        assert_ne!(canonical(compact), canonical(b"{\"a\":[2,1],\"b\":1}"));
        assert_eq!(canonical(b"not json"), b"not json".to_vec());
    }

    #[test]
    fn keys_are_short_printable_ascii() {
        assert!(valid_key("0b0c6b6e-3f38-4f0a-9d3f-1b3c5b1d2a7e"));
        for bad in ["", "has space", "tab\t", "é", &"k".repeat(256)] {
            assert!(!valid_key(bad), "{bad:?}");
        }
    }
}
