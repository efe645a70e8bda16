//! The servers the benchmark runs beside the engine: the bare baseline and a stub carrier.

use super::*;

/// A server on a loopback port, stopped by dropping or sending on `stop`.
pub(super) struct Served {
    pub(super) base: String,
    pub(super) stop: oneshot::Sender<()>,
    pub(super) task: JoinHandle<std::io::Result<()>>,
}

impl Served {
    pub(super) async fn start(router: Router) -> anyhow::Result<Served> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding a loopback port")?;
        let base = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await
        });
        Ok(Served { base, stop, task })
    }

    pub(super) async fn stop(self) {
        let _ = self.stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }
}

/// The baseline: the same path shape, the body read, an empty 200.
pub(super) fn baseline_router() -> Router {
    pub(super) async fn ok(Path(_tenant): Path<String>, _body: Bytes) -> StatusCode {
        StatusCode::OK
    }
    Router::new().route("/webhooks/twilio/{tenant_id}/voice/status", post(ok))
}

/// A stub carrier: `POST .../Calls.json` accepts the call as `CA<call id>` (the call id is read
/// from the StatusCallback URL), so each call actor gets a known provider sid and stays alive.
pub(super) fn carrier_router() -> Router {
    pub(super) async fn create_call(
        Path(_account): Path<String>,
        body: Bytes,
    ) -> axum::response::Response {
        let params: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
        let call_id = params
            .iter()
            .find(|(k, _)| k == "StatusCallback")
            .and_then(|(_, v)| url::Url::parse(v).ok())
            .and_then(|u| {
                u.query_pairs()
                    .find(|(k, _)| k == "call")
                    .and_then(|(_, v)| Uuid::parse_str(&v).ok())
            });
        match call_id {
            Some(id) => (
                StatusCode::CREATED,
                axum::Json(serde_json::json!({"sid": call_sid(id), "status": "queued"})),
            )
                .into_response(),
            None => (
                StatusCode::BAD_REQUEST,
                axum::Json(serde_json::json!({"code": 21205, "message": "no StatusCallback"})),
            )
                .into_response(),
        }
    }
    Router::new().route(
        "/2010-04-01/Accounts/{account}/Calls.json",
        post(create_call),
    )
}
