#![allow(clippy::unwrap_used)]
//! The real binary, stopped mid-work with `kill -9` and started again: state, timers and
//! pending effects survive, and a timer that came due while it was down fires once.

mod common;

use std::process::{Child, Command, Stdio};
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
    let child = command(db, dir)
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
    let port = neuronx::demo::free_port().unwrap();
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

both_backends!(kill_9_then_restart_keeps_state_and_fires_overdue_timers_once);
