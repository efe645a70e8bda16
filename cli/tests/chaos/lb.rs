//! The cluster's front door: an HTTP load balancer on loopback, as a deployment puts in front
//! of the instances. Every instance gives the carrier this address as its public URL, so
//! callbacks reach whichever instance is up. Requests go round-robin; a backend that refuses
//! the connection is skipped (the request never left), one that does not answer in time gets
//! 504 (the sender retries, as Twilio does).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::task::JoinHandle;

#[derive(Clone)]
struct Lb {
    backends: Arc<Vec<String>>,
    next: Arc<AtomicUsize>,
    client: reqwest::Client,
}

pub struct Balancer {
    pub url: String,
    task: JoinHandle<()>,
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Listens on `port` and spreads requests over `backends` (base URLs).
pub async fn start(port: u16, backends: Vec<String>, timeout: Duration) -> Balancer {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let lb = Lb {
        backends: Arc::new(backends),
        next: Arc::new(AtomicUsize::new(0)),
        client: reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(500))
            .timeout(timeout)
            .pool_max_idle_per_host(16)
            .build()
            .unwrap(),
    };
    let app = axum::Router::new().fallback(forward).with_state(lb);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Balancer {
        url: format!("http://127.0.0.1:{port}"),
        task,
    }
}

const HOP: [&str; 5] = [
    "host",
    "content-length",
    "connection",
    "transfer-encoding",
    "keep-alive",
];

async fn forward(State(lb): State<Lb>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(body) = to_bytes(body, 1 << 20).await else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".into());
    let n = lb.backends.len();
    let start = lb.next.fetch_add(1, Ordering::Relaxed);
    for i in 0..n {
        let backend = &lb.backends[(start + i) % n];
        let mut out = lb
            .client
            .request(parts.method.clone(), format!("{backend}{path}"))
            .body(body.clone());
        for (name, value) in &parts.headers {
            if !HOP.contains(&name.as_str()) {
                out = out.header(name, value);
            }
        }
        match out.send().await {
            Ok(resp) => return relay(resp).await,
            Err(e) if e.is_connect() => continue,
            Err(e) if e.is_timeout() => return StatusCode::GATEWAY_TIMEOUT.into_response(),
            Err(_) => return StatusCode::BAD_GATEWAY.into_response(),
        }
    }
    StatusCode::BAD_GATEWAY.into_response()
}

async fn relay(resp: reqwest::Response) -> Response {
    let status = resp.status();
    let headers = resp.headers().clone();
    let Ok(bytes) = resp.bytes().await else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let mut out = Response::builder().status(status.as_u16());
    for (name, value) in &headers {
        if !HOP.contains(&name.as_str()) {
            out = out.header(
                HeaderName::from_bytes(name.as_ref()).unwrap(),
                value.as_bytes(),
            );
        }
    }
    out.body(Body::from(bytes)).unwrap()
}
