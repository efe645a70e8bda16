//! The engine and the carrier simulator wired as Twilio and a tenant would be, for the call
//! flow's tests (`call_flow`, `hang_ups`, `notifications`): the engine on a known port whose
//! public URL the simulator calls back, every lead answering in person, TwiML seconds of
//! 100 ms (the shortest ring timeout, 5 s, is half a second), and the simulator stored as the
//! tenant's Twilio account through the API. The compliance rules open every hour
//! ([`crate::common::all_day_rules`]): these suites are about call flows, and their leads live in
//! fixed area codes whose own zone the gate would hold calls to; a suite about calling hours
//! clears `compliance.rules_file` in its tweak to get the shipped rules back.
#![allow(dead_code, clippy::unwrap_used)]

use neuronx::config::Settings;
use neuronx::secrets::Keyring;
use neuronx_adapters::carrier_sim::{self, CallOutcome, FlowConfig, OutcomeMix, SimConfig};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::{free_port, Backend, TestApp};

pub struct Setup {
    pub app: TestApp,
    pub sim: carrier_sim::SimHandle,
    pub public_url: String,
    /// The simulator's auth token: what signs its callbacks (and a test's own).
    pub auth_token: String,
}

pub async fn setup(backend: Backend) -> Setup {
    setup_with(backend, |_| {}).await
}

/// [`setup`] with the engine's settings changed by `tweak` first.
pub async fn setup_with(backend: Backend, tweak: impl FnOnce(&mut Settings)) -> Setup {
    let config = SimConfig {
        outcome_mix: OutcomeMix::all(CallOutcome::Human),
        flow: FlowConfig {
            second_ms: 100,
            ..FlowConfig::fast()
        },
        ..SimConfig::default()
    };
    setup_sim(backend, tweak, config).await
}

/// [`setup_with`] and a simulator of `config` (its own outcomes, texts' fates, faults).
pub async fn setup_sim(
    backend: Backend,
    tweak: impl FnOnce(&mut Settings),
    config: SimConfig,
) -> Setup {
    let port = free_port();
    let public_url = format!("http://127.0.0.1:{port}");
    let app = TestApp::spawn_with(backend, |s| {
        s.server.listen = format!("127.0.0.1:{port}");
        s.server.public_url = public_url.clone();
        s.secrets.keys = vec![Keyring::generate_entry("t")];
        crate::common::all_day_rules(s);
        tweak(s);
    })
    .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim = carrier_sim::start(config.clone(), listener).await.unwrap();
    let (status, body) = app
        .request(
            Method::PUT,
            "/v1/channels/twilio",
            Some(&app.key),
            Some(json!({
                "account_sid": config.account_sid,
                "auth_token": config.auth_token,
                "from_number": "+14155550000",
                "base_url": sim.base_url,
            })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    Setup {
        app,
        sim,
        public_url,
        auth_token: config.auth_token,
    }
}

/// How many texts the carrier took for `phone`.
pub fn texts_to(sim: &carrier_sim::SimHandle, phone: &str) -> u64 {
    sim.stats()
        .messages_per_number
        .get(phone)
        .copied()
        .unwrap_or(0)
}

/// An operator of `team` made a rep (one call at a time, no working hours) with `status`.
pub async fn rep(app: &TestApp, name: &str, team: Option<&str>, phone: &str, status: &str) {
    let (code, body) = app
        .post(
            "/v1/principals",
            json!({"name": name, "role": "operator", "team": team}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    let (code, body) = app
        .request(
            Method::PUT,
            &format!("/v1/principals/{name}/rep"),
            Some(&app.key),
            Some(json!({"phone": phone, "time_zone": "America/New_York", "max_calls": 1})),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let (code, body) = app
        .post(
            &format!("/v1/principals/{name}/status"),
            json!({"status": status}),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
}

/// The `conversation` entries of one call, by its id (none while the call actor is not yet
/// created: the opportunity starts it after answering).
pub async fn call_events(app: &TestApp, call_id: &str) -> Vec<Value> {
    let (code, call) = app.get(&format!("/v1/calls/{call_id}")).await;
    if code == StatusCode::NOT_FOUND {
        return Vec::new();
    }
    assert_eq!(code, StatusCode::OK, "{call}");
    call["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "conversation")
        .map(|e| e["data"].clone())
        .collect()
}

/// Waits for the opportunity's escalation, then checks that one of the texts it was sent
/// contains `text` and that it now sits escalated with `queue`; answers the texts sent.
#[allow(dead_code)] // the call-flow suites use it
pub async fn escalated_after_text(app: &TestApp, id: &str, text: &str, queue: &str) -> Vec<String> {
    let timeline = crate::common::eventually(
        std::time::Duration::from_secs(20),
        "the escalation",
        || async {
            let t = app.timeline(id).await;
            t.iter().any(|e| e["kind"] == "sla_escalated").then_some(t)
        },
    )
    .await;
    let texts: Vec<String> = timeline
        .iter()
        .filter(|e| e["kind"] == "effect_sent")
        .filter_map(|e| e["data"]["body"].as_str().map(str::to_owned))
        .collect();
    assert!(texts.iter().any(|b| b.contains(text)), "{texts:?}");
    let (_, opp) = app.get(&format!("/v1/opportunities/{id}")).await;
    assert_eq!(opp["escalated"], true, "{opp}");
    assert_eq!(opp["assignee"], queue, "{opp}");
    texts
}

/// The opportunity's `conversation` entries' `data`, once one with `event` shows up.
#[allow(dead_code)] // the call-flow suites use it
pub async fn conversation_until(app: &TestApp, id: &str, event: &str) -> Vec<Value> {
    crate::common::eventually(std::time::Duration::from_secs(30), event, || async {
        let entries: Vec<Value> = app
            .timeline(id)
            .await
            .iter()
            .filter(|e| e["kind"] == "conversation")
            .map(|e| e["data"].clone())
            .collect();
        entries
            .iter()
            .any(|d| d["event"] == event)
            .then_some(entries)
    })
    .await
}

/// Puts `number` in the pool of `team` (`None`: tenant-wide).
pub async fn number(app: &TestApp, number: &str, team: Option<&str>) {
    let (code, body) = app
        .request(
            Method::PUT,
            &format!("/v1/numbers/{}", number.replace('+', "%2B")),
            Some(&app.key),
            Some(json!({ "team": team })),
        )
        .await;
    assert!(code.is_success(), "{code} {body}");
}

/// A lead the cadence never calls (no voice consent): whatever reaches a rep is the inbound
/// call. Texts are allowed, so the callback promise can be texted.
pub async fn quiet_lead(
    app: &TestApp,
    external_id: &str,
    phone: &str,
    team: Option<&str>,
) -> Value {
    let mut lead = crate::common::lead(external_id, 3_600);
    lead["contact"]["phone"] = json!(phone);
    lead["contact"]["consent"]["voice"] = json!(false);
    if let Some(team) = team {
        lead["team"] = json!(team);
    }
    let (status, body) = app.post("/v1/opportunities", lead).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

/// The lead `from` calls `to`: the simulator fetches our inbound TwiML and runs it. Answers the
/// call's sid.
pub async fn call_in(s: &Setup, from: &str, to: &str) -> String {
    let url = format!(
        "{}/webhooks/twilio/{}/voice/inbound",
        s.public_url, s.app.tenant
    );
    let r = s
        .app
        .client
        .post(format!("{}/sim/inbound-calls", s.sim.base_url))
        .json(&json!({ "from": from, "to": to, "url": url }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let call: Value = r.json().await.unwrap();
    call["sid"].as_str().unwrap().to_owned()
}

/// A phone that rings out every time (for `sim.set_callee`): a rep who never picks up.
#[allow(dead_code)] // the call-flow suites use it
pub fn never_answers() -> carrier_sim::CalleeMix {
    carrier_sim::CalleeMix {
        answer: 0,
        busy: 0,
        no_answer: 1,
        failed: 0,
        ..carrier_sim::CalleeMix::default()
    }
}

/// The simulator's record of call `sid` once its flow ended (polled with a deadline).
#[allow(dead_code)] // the inbound-call suites use it
pub async fn finished(sim: &carrier_sim::SimHandle, sid: &str) -> carrier_sim::CallDetail {
    crate::common::eventually(
        std::time::Duration::from_secs(30),
        "the inbound call's end",
        || async { sim.call_detail(sid).filter(|c| c.flow_end.is_some()) },
    )
    .await
}

/// How many rows a runtime or product table holds (every tenant: each test has its own
/// database).
#[allow(dead_code)] // the inbound-call suites use it
pub async fn rows(app: &TestApp, sql: &str) -> String {
    crate::common::sql(app.engine().store(), sql)
        .await
        .pop()
        .unwrap_or_default()
}

/// The form Twilio posts to `voice/inbound` when `from` calls `to` (unsigned).
pub fn inbound_form(sid: &str, from: &str, to: &str) -> Vec<(String, String)> {
    [
        ("CallSid", sid),
        ("AccountSid", "AC00000000000000000000000000000000"),
        ("From", from),
        ("To", to),
        ("CallStatus", "ringing"),
        ("Direction", "inbound"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Rep `name`'s live calls as `GET /v1/reps` shows them; `None` when it lists no such rep.
pub async fn live_calls(app: &TestApp, name: &str) -> Option<u64> {
    let (_, reps) = app.get("/v1/reps").await;
    let list = reps.as_array().or_else(|| reps["items"].as_array())?;
    list.iter().find(|r| r["name"] == name)?["live_calls"].as_u64()
}
