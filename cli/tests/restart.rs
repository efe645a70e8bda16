#![allow(clippy::unwrap_used)]
//! The real binary, stopped mid-work with `kill -9` and started again: state, timers and
//! pending effects survive, a timer that came due while it was down fires once, and an effect
//! it left in flight is recorded unknown and never sent again.

#[path = "../../tests/common/mod.rs"]
mod common;

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{eventually, fresh_database, lead, Backend};
use reqwest::StatusCode;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_neuronx");

struct Server {
    child: Child,
    base: String,
}

/// A failing test must not leave a server running.
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn command(db: &str, dir: &std::path::Path) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(dir)
        .env("NEURONX_DATABASE_URL", db)
        .env("NEURONX_LOG", "warn")
        .stdin(Stdio::null());
    c
}

async fn serve(db: &str, dir: &std::path::Path, port: u16) -> Server {
    serve_with(command(db, dir), port).await
}

async fn serve_with(mut command: Command, port: u16) -> Server {
    let child = command
        .arg("serve")
        .env("NEURONX_LISTEN", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    eventually(
        Duration::from_secs(20),
        "the server to be ready",
        || async {
            let r = client.get(format!("{base}/readyz")).send().await.ok()?;
            (r.status() == StatusCode::OK).then_some(())
        },
    )
    .await;
    Server { child, base }
}

async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    key: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = client.request(method, url).bearer_auth(key);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    (r.status(), r.json().await.unwrap_or(Value::Null))
}

async fn kill_9_then_restart_keeps_state_and_fires_overdue_timers_once(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_database(backend, &dir).await;
    let port = common::free_port();
    let mut server = serve(&db, dir.path(), port).await;

    // Admin commands work while the engine runs (SQLite: beside its lock).
    let out = command(&db, dir.path())
        .args(["tenant", "create", "acme"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    let key = created["api_key"].as_str().unwrap().to_owned();

    let client = reqwest::Client::new();
    let base = server.base.clone();
    let url = |p: &str| format!("{base}{p}");
    let (status, a) = call(
        &client,
        reqwest::Method::POST,
        url("/v1/opportunities"),
        &key,
        Some(lead("due-soon", 2)),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{a}");
    let (_, b) = call(
        &client,
        reqwest::Method::POST,
        url("/v1/opportunities"),
        &key,
        Some(lead("paused", 300)),
    )
    .await;
    let (a_id, b_id) = (
        a["id"].as_str().unwrap().to_owned(),
        b["id"].as_str().unwrap().to_owned(),
    );
    let (status, paused) = call(
        &client,
        reqwest::Method::POST,
        url(&format!("/v1/opportunities/{b_id}/pause")),
        &key,
        Some(json!({"operator": "ana"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // Stop mid-work: nothing gets to shut down cleanly.
    server.child.kill().unwrap();
    server.child.wait().unwrap();

    // Let a's first-touch timer come due while nobody runs.
    let due =
        chrono::DateTime::parse_from_rfc3339(a["timers"][0]["due_at"].as_str().unwrap()).unwrap();
    let wait = (due.timestamp_millis() - chrono::Utc::now().timestamp_millis() + 200).max(0);
    tokio::time::sleep(Duration::from_millis(wait as u64)).await;

    let mut server = serve(&db, dir.path(), port).await;
    let escalated = eventually(
        Duration::from_secs(15),
        "the overdue timer to fire",
        || async {
            let (_, v) = call(
                &client,
                reqwest::Method::GET,
                url(&format!("/v1/opportunities/{a_id}")),
                &key,
                None,
            )
            .await;
            (v["escalated"] == true).then_some(v)
        },
    )
    .await;
    assert_eq!(escalated["assignee"], "escalations");
    let (_, timeline) = call(
        &client,
        reqwest::Method::GET,
        url(&format!("/v1/opportunities/{a_id}/timeline")),
        &key,
        None,
    )
    .await;
    let fired = timeline["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "sla_escalated")
        .count();
    assert_eq!(fired, 1, "the overdue timer fires exactly once");

    // The paused opportunity is still paused with its SLA timer armed as before. Its first call
    // may have been refused meanwhile because it is paused (the outcome is recorded and the
    // retry held), but nothing left: no text, no new call.
    let (_, b_now) = call(
        &client,
        reqwest::Method::GET,
        url(&format!("/v1/opportunities/{b_id}")),
        &key,
        None,
    )
    .await;
    assert_eq!(b_now["paused"], true);
    let sla = |v: &Value| {
        v["timers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == "first_touch_sla")
            .cloned()
    };
    assert_eq!(sla(&b_now), sla(&paused));
    assert!(sla(&paused).is_some());
    let (_, b_timeline) = call(
        &client,
        reqwest::Method::GET,
        url(&format!("/v1/opportunities/{b_id}/timeline")),
        &key,
        None,
    )
    .await;
    let after_pause: Vec<&str> = b_timeline["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["version"].as_i64().unwrap() > paused["version"].as_i64().unwrap())
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(
        after_pause
            .iter()
            .all(|k| matches!(*k, "call_outcome" | "timer_held")),
        "only the refused call's outcome may follow the pause: {after_pause:?}"
    );

    // Pending effects were not lost and none ran twice: a's first call was dialled exactly once,
    // before the kill or by the restarted engine.
    let store = neuronx_supervision::Store::connect(&db, 2).await.unwrap();
    let tenant =
        neuronx_supervision::TenantId(created["tenant_id"].as_str().unwrap().parse().unwrap());
    let (_, a_timeline) = call(
        &client,
        reqwest::Method::GET,
        url(&format!("/v1/opportunities/{a_id}/timeline")),
        &key,
        None,
    )
    .await;
    let call_id: uuid::Uuid = common::first_call(a_timeline["items"].as_array().unwrap())
        .unwrap()
        .parse()
        .unwrap();
    let dials = eventually(
        Duration::from_secs(15),
        "the dial to leave the outbox",
        || async {
            let rows = store.outbox_of(tenant, "call", call_id).await.unwrap();
            let dials: Vec<_> = rows
                .into_iter()
                .filter(|r| r.payload["op"] == "dial")
                .collect();
            dials
                .iter()
                .all(|r| r.status != neuronx_supervision::store::OutboxStatus::Pending)
                .then_some(dials)
        },
    )
    .await;
    assert_eq!(dials.len(), 1, "one dial per call");
    store.close().await;

    // SIGTERM: a clean stop that releases the leases.
    let pid = server.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no clean exit within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "exit status {status:?}");
}

/// A carrier that takes every create request and never answers it.
async fn silent_carrier() -> (String, Arc<AtomicUsize>) {
    let creates = Arc::new(AtomicUsize::new(0));
    let seen = creates.clone();
    let router = axum::Router::new().route(
        "/{*path}",
        axum::routing::post(move || {
            let seen = seen.clone();
            async move {
                seen.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_secs(600)).await;
                StatusCode::CREATED
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (base, creates)
}

async fn a_dial_left_in_flight_by_a_killed_instance_is_recorded_unknown_and_never_sent_again(
    backend: Backend,
) {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_database(backend, &dir).await;
    let port = common::free_port();
    let (carrier, creates) = silent_carrier().await;
    let config = dir.path().join("orphans.toml");
    std::fs::write(&config, "[engine]\norphan_after_ms = 300\n").unwrap();
    let keys = neuronx::secrets::Keyring::generate_entry("k1");
    let engine = || {
        let mut c = command(&db, dir.path());
        c.arg("--config")
            .arg(&config)
            .env("NEURONX_SECRET_KEYS", &keys)
            .env("NEURONX_OUTBOUND_ALLOW", "127.0.0.0/8");
        c
    };
    let mut server = serve_with(engine(), port).await;
    let out = command(&db, dir.path())
        .args(["tenant", "create", "acme"])
        .output()
        .unwrap();
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    let key = created["api_key"].as_str().unwrap().to_owned();
    let client = reqwest::Client::new();
    let base = server.base.clone();
    let url = |p: &str| format!("{base}{p}");
    let (status, body) = call(
        &client,
        reqwest::Method::PUT,
        url("/v1/channels/twilio"),
        &key,
        Some(
            json!({"account_sid": "AC0123456789abcdef0123456789abcdef", "auth_token": "token",
                    "from_number": "+14155550000", "base_url": carrier}),
        ),
    )
    .await;
    assert!(status.is_success(), "{status} {body}");
    let (status, opp) = call(
        &client,
        reqwest::Method::POST,
        url("/v1/opportunities"),
        &key,
        Some(lead("lead-1", 300)),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{opp}");
    let timeline = format!("/v1/opportunities/{}/timeline", opp["id"].as_str().unwrap());
    let call_id = eventually(Duration::from_secs(10), "the first call", || async {
        let (_, t) = call(&client, reqwest::Method::GET, url(&timeline), &key, None).await;
        common::first_call(t["items"].as_array()?)
    })
    .await;
    eventually(
        Duration::from_secs(10),
        "the dial to reach the carrier",
        || async { (creates.load(Ordering::SeqCst) == 1).then_some(()) },
    )
    .await;

    // Killed while the carrier holds the dial: the effect stays claimed, its outcome unknown.
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let server = serve_with(engine(), port).await;
    let url = |p: &str| format!("{}{p}", server.base);
    let told = eventually(
        Duration::from_secs(15),
        "the call to hear that its dial's outcome is unknown",
        || async {
            let (_, c) = call(
                &client,
                reqwest::Method::GET,
                url(&format!("/v1/calls/{call_id}")),
                &key,
                None,
            )
            .await;
            c["timeline"].as_array()?.iter().find_map(|e| {
                let reason = e["reason"].as_str()?;
                reason
                    .contains("outcome is unknown")
                    .then(|| reason.to_owned())
            })
        },
    )
    .await;
    assert!(
        told.contains("stopped before recording the result"),
        "{told}"
    );
    let store = neuronx_supervision::Store::connect(&db, 2).await.unwrap();
    let tenant =
        neuronx_supervision::TenantId(created["tenant_id"].as_str().unwrap().parse().unwrap());
    let rows = store
        .outbox_of(tenant, "call", call_id.parse().unwrap())
        .await
        .unwrap();
    let statuses: Vec<_> = rows
        .iter()
        .map(|r| (r.payload["op"].clone(), r.status))
        .collect();
    assert_eq!(
        statuses,
        vec![(
            json!("dial"),
            neuronx_supervision::store::OutboxStatus::Unknown
        )],
        "one dial, recorded unknown"
    );
    store.close().await;
    assert_eq!(creates.load(Ordering::SeqCst), 1, "the dial was sent again");
}

both_backends!(
    kill_9_then_restart_keeps_state_and_fires_overdue_timers_once,
    a_dial_left_in_flight_by_a_killed_instance_is_recorded_unknown_and_never_sent_again,
);
