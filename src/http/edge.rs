//! The HTTP edge's request layers, tower-http but for three small `axum::middleware` functions:
//! an `x-request-id` taken from the client when it is short and printable, else generated, and
//! echoed; one access log line per request; gzip; whole-request and body timeouts; `/readyz`
//! answering 503 once the instance drains. The connection-level half (header timeout,
//! connection limit, draining) is `server`'s (ADR 0032).

use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tower::ServiceBuilder;
use tower_http::compression::CompressionLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::RequestBodyTimeoutLayer;
use tower_http::trace::TraceLayer;
use tracing::Span;

use super::forwarded::TrustedProxies;
use crate::config::Settings;

const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// A client's request id is kept when it is at most this long and printable ASCII: it goes
/// into every log line of the request.
const MAX_REQUEST_ID: usize = 128;

/// The edge's settings (`[server]`) and the instance's shutdown signals. Cheap to clone.
#[derive(Clone)]
pub struct Edge {
    pub trusted: TrustedProxies,
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub request_timeout: Duration,
    pub drain_timeout: Duration,
    pub lifecycle: Lifecycle,
}

impl Edge {
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Edge> {
        let s = &settings.server;
        let ms = Duration::from_millis;
        Ok(Edge {
            trusted: TrustedProxies::new(settings.trusted_proxies()?),
            max_connections: usize::try_from(s.max_http_connections)?,
            header_timeout: ms(s.header_timeout_ms),
            body_timeout: ms(s.body_timeout_ms),
            request_timeout: ms(s.request_timeout_ms),
            drain_timeout: ms(s.drain_timeout_ms),
            lifecycle: Lifecycle::default(),
        })
    }
}

/// Where the instance is in its stop: draining (`/readyz` answers 503, everything else is still
/// served), then stopping (the listener closes, idle connections close, long-lived streams end,
/// in-flight requests finish).
#[derive(Clone, Default)]
pub struct Lifecycle {
    draining: CancellationToken,
    stopping: CancellationToken,
}

impl Lifecycle {
    pub fn drain(&self) {
        self.draining.cancel();
    }

    pub fn is_draining(&self) -> bool {
        self.draining.is_cancelled()
    }

    pub fn stop(&self) {
        self.draining.cancel();
        self.stopping.cancel();
    }

    /// Cancelled when the server stops: what holds a response open (the console's feed) ends.
    pub fn stopping(&self) -> CancellationToken {
        self.stopping.clone()
    }
}

/// Wraps every route (and the fallbacks) of `router` in the edge's layers. `Router::layer`
/// applies them per route, after routing, so the access log sees the matched route template.
pub fn wrap(router: Router, edge: &Edge) -> Router {
    let trace = TraceLayer::new_for_http()
        .make_span_with(access_span)
        .on_request(())
        // The body type is the compression layer's, hence a closure rather than `Response`.
        .on_response(
            |res: &axum::http::Response<_>, latency: Duration, span: &Span| {
                access_line(res.status(), latency, span)
            },
        )
        .on_body_chunk(())
        .on_eos(())
        // Errors are logged where they happen (`ApiError`); the access line has the status.
        .on_failure(());
    router.layer(
        // Outermost first.
        ServiceBuilder::new()
            .layer(middleware::map_request(drop_unusable_request_id))
            .layer(SetRequestIdLayer::new(X_REQUEST_ID, MakeRequestUuid))
            .layer(trace)
            .layer(PropagateRequestIdLayer::new(X_REQUEST_ID))
            .layer(middleware::from_fn_with_state(
                edge.lifecycle.clone(),
                readyz_while_draining,
            ))
            // Text is compressed when the client asks; server-sent events (the console's feed),
            // images and tiny bodies are not (tower-http's default predicate).
            .layer(CompressionLayer::new())
            .layer(middleware::from_fn_with_state(
                edge.request_timeout,
                request_deadline,
            ))
            .layer(RequestBodyTimeoutLayer::new(edge.body_timeout)),
    )
}

fn usable_request_id(value: &[u8]) -> bool {
    !value.is_empty() && value.len() <= MAX_REQUEST_ID && value.iter().all(u8::is_ascii_graphic)
}

/// A client's `x-request-id` that is too long, not printable, or given twice is dropped, so
/// that `SetRequestIdLayer` generates one instead.
async fn drop_unusable_request_id(mut req: Request) -> Request {
    let mut given = req.headers().get_all(X_REQUEST_ID).iter();
    let usable = match (given.next(), given.next()) {
        (None, _) => true,
        (Some(v), None) => usable_request_id(v.as_bytes()),
        (Some(_), Some(_)) => false,
    };
    if !usable {
        req.headers_mut().remove(X_REQUEST_ID);
    }
    req
}

/// The span of one request; every line the request logs carries its fields. `tenant` is
/// recorded once known: by the API's key check, or here from a webhook's path.
fn access_span(req: &Request) -> Span {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("(no route)", MatchedPath::as_str);
    let request_id = req
        .headers()
        .get(X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %req.method(),
        route = %route,
        tenant = tracing::field::Empty,
    );
    if route.starts_with("/webhooks/twilio/{tenant_id}/") {
        // A path segment is the caller's text: only a well-formed id is logged.
        if let Some(id) = req
            .uri()
            .path()
            .split('/')
            .nth(3)
            .and_then(|s| uuid::Uuid::parse_str(s).ok())
        {
            span.record("tenant", tracing::field::display(id));
        }
    }
    span
}

fn access_line(status: StatusCode, latency: Duration, span: &Span) {
    let latency_ms = latency.as_micros() as f64 / 1000.0;
    tracing::info!(parent: span, status = status.as_u16(), latency_ms, "request answered");
}

/// The whole-request timeout: 408 when the answer's head is not ready within `limit`. Not
/// tower-http's `TimeoutLayer` only because of its exemptions: `/v1/bulk/*` commands up to
/// 5,000 opportunities one at a time, and a principal's deactivation reassigns each of its open
/// opportunities one at a time (ADR 0042); either may take longer, and cutting it off would
/// stop it half way with the command in progress missing its audit entry. A client cannot hold
/// such a request open by trickling: its key is checked before its body is read, and the body
/// timeout still applies.
async fn request_deadline(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let long = path.starts_with("/v1/bulk/")
        || (path.starts_with("/v1/principals/") && path.ends_with("/deactivate"));
    if long {
        return next.run(req).await;
    }
    tokio::time::timeout(limit, next.run(req))
        .await
        .unwrap_or_else(|_| StatusCode::REQUEST_TIMEOUT.into_response())
}

async fn readyz_while_draining(
    State(lifecycle): State<Lifecycle>,
    req: Request,
    next: Next,
) -> Response {
    // `/readyz` itself (ops.rs) knows nothing of the stop; the answer is decided here.
    if lifecycle.is_draining() && req.uri().path() == "/readyz" {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"ready": false, "draining": true})),
        )
            .into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_must_be_short_and_printable() {
        assert!(usable_request_id(b"3f1c-edge_test.42"));
        assert!(!usable_request_id(b""));
        assert!(!usable_request_id(b"two words"));
        assert!(!usable_request_id("caf\u{e9}".as_bytes()));
        assert!(!usable_request_id(b"line\nbreak"));
        assert!(!usable_request_id(&[b'a'; MAX_REQUEST_ID + 1]));
        assert!(usable_request_id(&[b'a'; MAX_REQUEST_ID]));
    }
}
