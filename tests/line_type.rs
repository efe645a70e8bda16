#![allow(clippy::unwrap_used)]
//! Line types from the carrier's lookup (Twilio Lookup v2 through the carrier simulator, over
//! real HTTP): looked up once per number and tenant when the tenant turned it on, recorded on
//! the opportunity, a landline never texted while its calls go on; nothing changes when off; a
//! lookup that fails or times out is unknown and the text goes out anyway.

mod common;
#[path = "common/logs.rs"]
mod logs;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{eventually, Backend, TestApp};
use neuronx::secrets::Keyring;
use neuronx_adapters::carrier_sim::{
    self, CallOutcome, LookupConfig, OutcomeMix, SimConfig, SimHandle, Timing,
};
use neuronx_adapters::twilio::LineType;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// A landline and a mobile in the daytime place, so their calling hours are open now.
fn landline_number() -> String {
    common::day_phone("5550123")
}

fn mobile_number() -> String {
    common::day_phone("5550188")
}
const WAIT: Duration = Duration::from_secs(30);

struct Setup {
    app: TestApp,
    sim: SimHandle,
}

/// Every call rings out unanswered, so each first call is followed by the missed-call text.
async fn setup(
    backend: Backend,
    lookup: LookupConfig,
    enabled: bool,
    token: Option<&str>,
) -> Setup {
    // Call statuses come back to our webhooks: the public URL must be the one we listen on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let app = TestApp::spawn_with(backend, |s| {
        s.server.listen = format!("127.0.0.1:{port}");
        s.server.public_url = format!("http://127.0.0.1:{port}");
        s.secrets.keys = vec![Keyring::generate_entry("t")];
    })
    .await;
    let config = SimConfig {
        outcome_mix: OutcomeMix::all(CallOutcome::NoAnswer),
        timing: Timing::fast(),
        lookup,
        ..SimConfig::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim = carrier_sim::start(config, listener).await.unwrap();
    let account = json!({
        "account_sid": sim.account_sid(),
        "auth_token": token.unwrap_or(sim.auth_token()),
        "from_number": "+14155550000",
        "base_url": sim.base_url,
        "line_type_lookup": enabled,
    });
    let (status, body) = app
        .request(
            Method::PUT,
            "/v1/channels/twilio",
            Some(&app.key),
            Some(account),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["line_type_lookup"], enabled);
    let (_, got) = app.get("/v1/channels/twilio").await;
    assert_eq!(got["line_type_lookup"], enabled, "the GET answer shows it");
    Setup { app, sim }
}

fn landline() -> LookupConfig {
    LookupConfig {
        numbers: BTreeMap::from([(landline_number(), LineType::Landline)]),
        ..LookupConfig::default()
    }
}

async fn create(app: &TestApp, external_id: &str, phone: &str) -> String {
    let lead = json!({
        "external_id": external_id,
        "contact": {"name": "Ana Lima", "phone": phone, "timezone": common::daytime_zone(),
                    "consent": {"voice": true, "sms": true}},
    });
    let (status, body) = app.post("/v1/opportunities", lead).await;
    assert!(
        status == StatusCode::CREATED || status == StatusCode::ACCEPTED,
        "{status} {body}"
    );
    body["id"].as_str().unwrap().to_owned()
}

/// The opportunity once its timeline has an entry of `kind`.
async fn after(app: &TestApp, id: &str, kind: &str) -> (Value, Vec<Value>) {
    let timeline = eventually(WAIT, kind, || async {
        let timeline = app.timeline(id).await;
        timeline
            .iter()
            .any(|e| e["kind"] == kind)
            .then_some(timeline)
    })
    .await;
    let (status, view) = app.get(&format!("/v1/opportunities/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    (view, timeline)
}

async fn texted(sim: &SimHandle, phone: &str) {
    eventually(WAIT, "the text", || async {
        sim.stats()
            .messages_per_number
            .contains_key(phone)
            .then_some(())
    })
    .await;
}

async fn a_landline_is_looked_up_once_and_never_texted(backend: Backend) {
    let Setup { app, sim } = setup(backend, landline(), true, None).await;
    let id = create(&app, "land-1", &landline_number()).await;
    let (view, timeline) = after(&app, &id, "sms_skipped").await;
    assert_eq!(view["line_type"], "landline", "{view}");
    let skipped = timeline
        .iter()
        .find(|e| e["kind"] == "sms_skipped")
        .unwrap();
    assert!(
        skipped["reason"].as_str().unwrap().contains("landline"),
        "{skipped}"
    );
    assert!(timeline.iter().any(|e| e["kind"] == "line_type"));
    // Voice goes on: the call was dialled and the retry is armed.
    let stats = sim.stats();
    assert_eq!(
        stats.calls_per_number.get(&landline_number()),
        Some(&1),
        "{stats:?}"
    );
    let timers: Vec<&str> = view["timers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(timers.contains(&"retry_call"), "{view}");

    // A second lead with the same number, once the first is closed (while it is live the lead
    // would merge into it, ADR 0046): the tenant's cache answers, nothing paid again.
    let (status, body) = app
        .post(
            &format!("/v1/opportunities/{id}/stage"),
            json!({"stage": "lost", "reason": "closed before the next lead"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let again = create(&app, "land-2", &landline_number()).await;
    let (view, _) = after(&app, &again, "sms_skipped").await;
    assert_eq!(view["line_type"], "landline");
    let stats = sim.stats();
    assert_eq!(stats.lookups, 1, "{stats:?}");
    assert_eq!(stats.lookups_per_number.get(&landline_number()), Some(&1));
    assert_eq!(stats.messages, 0, "no text to a landline: {stats:?}");
    app.stop().await;
}

async fn a_mobile_is_texted_as_before(backend: Backend) {
    let Setup { app, sim } = setup(backend, landline(), true, None).await;
    let id = create(&app, "mob-1", &mobile_number()).await;
    texted(&sim, &mobile_number()).await;
    let (view, _) = after(&app, &id, "line_type").await;
    assert_eq!(view["line_type"], "mobile", "{view}");
    let stats = sim.stats();
    assert_eq!((stats.lookups, stats.messages), (1, 1), "{stats:?}");
    app.stop().await;
}

async fn without_the_switch_nothing_is_looked_up(backend: Backend) {
    let Setup { app, sim } = setup(backend, landline(), false, None).await;
    let bad = json!({"account_sid": sim.account_sid(), "auth_token": sim.auth_token(),
        "from_number": "+14155550000", "base_url": sim.base_url, "line_type_lookup": "yes"});
    let (status, err) = app
        .request(
            Method::PUT,
            "/v1/channels/twilio",
            Some(&app.key),
            Some(bad),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert!(err.to_string().contains("line_type_lookup"), "{err}");
    let id = create(&app, "off-1", &landline_number()).await;
    texted(&sim, &landline_number()).await;
    let (view, timeline) = after(&app, &id, "effect_sent").await;
    assert_eq!(view["line_type"], Value::Null);
    assert!(!timeline.iter().any(|e| e["kind"] == "line_type"));
    assert_eq!(sim.stats().lookups, 0);
    app.stop().await;
}

async fn a_failing_lookup_is_unknown_and_the_text_goes_out(backend: Backend) {
    let failing = LookupConfig {
        fail_status: Some(500),
        ..landline()
    };
    let Setup { app, sim } = setup(backend, failing, true, None).await;
    let id = create(&app, "fail-1", &landline_number()).await;
    texted(&sim, &landline_number()).await;
    let (view, timeline) = after(&app, &id, "line_type").await;
    assert_eq!(view["line_type"], "unknown", "{view}");
    let entry = timeline.iter().find(|e| e["kind"] == "line_type").unwrap();
    assert!(
        entry["reason"].as_str().unwrap().contains("lookup failed"),
        "{entry}"
    );
    assert_eq!(sim.stats().lookups, 1, "tried once");
    app.stop().await;
}

async fn a_slow_lookup_times_out_and_the_text_goes_out(backend: Backend) {
    let slow = LookupConfig {
        delay_ms: 20_000,
        ..landline()
    };
    let Setup { app, sim } = setup(backend, slow, true, None).await;
    let id = create(&app, "slow-1", &landline_number()).await;
    texted(&sim, &landline_number()).await;
    let (view, _) = after(&app, &id, "line_type").await;
    assert_eq!(view["line_type"], "unknown", "{view}");
    app.stop().await;
}

async fn bad_credentials_are_unknown_and_the_warning_hides_the_token(backend: Backend) {
    let logs = logs::capture("info");
    let token = "wrong-secret-token-8d1f";
    let Setup { app, sim } = setup(backend, landline(), true, Some(token)).await;
    let id = create(&app, "bad-1", &landline_number()).await;
    let (view, _) = after(&app, &id, "line_type").await;
    assert_eq!(view["line_type"], "unknown", "{view}");
    let text = logs.text();
    let warning = text
        .lines()
        .find(|l| l.contains("line type lookup failed"))
        .unwrap_or_else(|| panic!("no warning in:\n{text}"));
    assert!(
        warning.contains("WARN") && warning.contains("401"),
        "{warning}"
    );
    assert!(!text.contains(token), "the token reached the log");
    assert_eq!(sim.stats().lookups, 0, "refused before it counts");
    app.stop().await;
}

both_backends!(
    a_landline_is_looked_up_once_and_never_texted,
    a_mobile_is_texted_as_before,
    without_the_switch_nothing_is_looked_up,
    a_failing_lookup_is_unknown_and_the_text_goes_out,
    a_slow_lookup_times_out_and_the_text_goes_out,
    bad_credentials_are_unknown_and_the_warning_hides_the_token,
);
