#![allow(clippy::unwrap_used)]
//! Two-way conversations (issue #14) through the carrier simulator: the thread of an
//! opportunity (`GET /v1/opportunities/{id}/messages`) with both directions and the carrier's
//! delivery statuses, a text a person sends by hand through the compliance gate, the human
//! takeover that stops the playbook's automatic texts while its calls go on, the hand-back,
//! refusals by name, and two tenants whose leads share a phone never seeing each other's texts.

mod common;
#[path = "common/flow.rs"]
mod flow;

use std::time::Duration;

use common::{daytime_zone, eventually, post_signed, Backend, TestApp};
use neuronx_adapters::carrier_sim::{self, CallOutcome, MessageMix, OutcomeMix, SimConfig, Timing};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// The tenant's account number: leads are texted from it and reply to it.
const ACCOUNT_FROM: &str = "+14155550000";
/// The lead the tests text from, in the daytime place so its calling hours are open now.
fn lead_number() -> String {
    common::day_phone("5550123")
}

/// A cadence of seconds: missed calls are retried after 2 s, up to six calls.
const PLAYBOOK: &str = r#"
name = "threads"
first_touch_sla_seconds = 600
response_sla_seconds = 600
max_attempts = 6
retry_delay_seconds = 2
ring_timeout_seconds = 5
"#;

struct Setup {
    app: TestApp,
    sim: carrier_sim::SimHandle,
    public_url: String,
    auth_token: String,
    _playbooks: tempfile::TempDir,
}

/// The engine on a known port and the simulator as the tenant's Twilio account: every call
/// goes unanswered and every text meets `fate`.
async fn setup(backend: Backend, fate: MessageMix) -> Setup {
    let playbooks = tempfile::tempdir().unwrap();
    std::fs::write(playbooks.path().join("threads.toml"), PLAYBOOK).unwrap();
    let dir = playbooks.path().display().to_string();
    let config = SimConfig {
        outcome_mix: OutcomeMix::all(CallOutcome::NoAnswer),
        message_mix: fate,
        timing: Timing::fast(),
        ..SimConfig::default()
    };
    let flow::Setup {
        app,
        sim,
        public_url,
        auth_token,
    } = flow::setup_sim(
        backend,
        |s| {
            s.playbooks.dir = dir;
            s.playbooks.default = "threads".into();
            // The shipped rules: this suite's night lead must be held by calling hours.
            s.compliance.rules_file.clear();
        },
        config,
    )
    .await;
    Setup {
        app,
        sim,
        public_url,
        auth_token,
        _playbooks: playbooks,
    }
}

fn twilio(auth_token: &str, base_url: &str, from: &str) -> Value {
    json!({
        "account_sid": "ACfeedfacefeedfacefeedfacefeedface",
        "auth_token": auth_token,
        "from_number": from,
        "base_url": base_url,
    })
}

fn delivered() -> MessageMix {
    MessageMix {
        delivered: 1,
        undelivered: 0,
        failed: 0,
    }
}

/// `thread-1` and `shared` are [`lead_number`] (the tests text from it); the others have numbers of their
/// own, since leads of one number would merge (ADR 0046).
fn lead(external_id: &str, voice: bool, sms: bool, zone: &str) -> Value {
    let phone = match external_id {
        "thread-1" | "shared" => lead_number(),
        other => common::lead_phone(other),
    };
    json!({
        "external_id": external_id,
        "contact": {"name": "Ana Lima", "phone": phone, "timezone": zone,
                    "consent": {"voice": voice, "sms": sms}},
    })
}

async fn create(app: &TestApp, key: &str, lead: Value) -> String {
    let (status, body) = app
        .request(Method::POST, "/v1/opportunities", Some(key), Some(lead))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

/// The whole thread, read a page of `limit` at a time.
async fn thread(app: &TestApp, key: &str, id: &str, limit: usize) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/v1/opportunities/{id}/messages?limit={limit}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (status, page) = app.request(Method::GET, &path, Some(key), None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let got = page["items"].as_array().unwrap();
        assert!(got.len() <= limit, "{page}");
        items.extend(got.iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return items,
        }
    }
}

async fn send(
    app: &TestApp,
    id: &str,
    body: Value,
    idem: Option<&str>,
) -> (StatusCode, Value, bool) {
    let mut req = app
        .client
        .post(format!("{}/v1/opportunities/{id}/messages", app.base))
        .bearer_auth(&app.key)
        .json(&body);
    if let Some(k) = idem {
        req = req.header("Idempotency-Key", k);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let replayed = resp.headers().get("idempotent-replayed").is_some();
    let text = resp.text().await.unwrap();
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value, replayed)
}

/// Posts a signed inbound text from the lead to `tenant`'s webhook, as the carrier would.
async fn inbound(s: &Setup, tenant: &str, sid: &str, to: &str, body: &str) {
    let url = format!("{}/webhooks/twilio/{tenant}/sms/inbound", s.public_url);
    let params: Vec<(String, String)> = [
        ("MessageSid", sid),
        ("From", lead_number().as_str()),
        ("To", to),
        ("Body", body),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let resp = post_signed(&s.app.client, &s.auth_token, &url, &params).await;
    assert_eq!(resp.status(), StatusCode::OK);
}

fn position(timeline: &[Value], kind: &str) -> Option<usize> {
    timeline.iter().position(|e| e["kind"] == kind)
}

async fn a_person_takes_the_conversation_over_and_hands_it_back(backend: Backend) {
    let s = setup(backend, delivered()).await;
    let app = &s.app;
    let id = create(app, &app.key, lead("thread-1", true, true, daytime_zone())).await;
    // The first call goes unanswered and the playbook texts the lead.
    let first = eventually(Duration::from_secs(30), "the playbook's text", || async {
        let items = thread(app, &app.key, &id, 100).await;
        items
            .first()
            .filter(|m| m["status"] == "delivered")
            .cloned()
    })
    .await;
    assert_eq!(
        (
            &first["direction"],
            &first["channel"],
            &first["by"],
            &first["human"],
            &first["purpose"],
            &first["carrier_status"],
            &first["from"],
        ),
        (
            &json!("outbound"),
            &json!("sms"),
            &json!("playbook"),
            &json!(false),
            &json!("marketing"),
            &json!("delivered"),
            &json!(ACCOUNT_FROM),
        ),
        "{first}"
    );
    assert!(first["message_sid"].as_str().unwrap().starts_with("SM"));
    assert!(first["body"].as_str().unwrap().starts_with("Hi Ana Lima"));

    // A person writes; the same Idempotency-Key answers once.
    let text = json!({"body": "Hi Ana, Bo from Acme here. When suits you?", "by": "bo"});
    let (status, opp, replayed) = send(app, &id, text.clone(), Some("bo-1")).await;
    assert_eq!(status, StatusCode::OK, "{opp}");
    assert!(!replayed);
    assert_eq!(opp["takeover"]["by"], "bo", "{opp}");
    let (status, _, replayed) = send(app, &id, text, Some("bo-1")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(replayed, "the key's first answer, replayed");

    // The cadence calls on; the texts that came due after the takeover were skipped.
    let timeline = eventually(
        Duration::from_secs(60),
        "a call after the takeover",
        || async {
            let timeline = app.timeline(&id).await;
            let taken = position(&timeline, "taken_over")?;
            timeline[taken..]
                .iter()
                .any(|e| e["kind"] == "call_outcome")
                .then_some(timeline)
        },
    )
    .await;
    let taken = position(&timeline, "taken_over").unwrap();
    let after = &timeline[taken..];
    assert!(
        after
            .iter()
            .any(|e| e["kind"] == "sms_skipped" && e["data"]["takeover"] == "bo"),
        "{after:#?}"
    );
    assert!(
        !after
            .iter()
            .any(|e| e["kind"] == "effect_sent" && e["by"] == "playbook"),
        "{after:#?}"
    );

    // The lead answers; the thread has both directions in order.
    inbound(
        &s,
        &app.tenant,
        "SMlead1",
        ACCOUNT_FROM,
        "Tomorrow at 10 works",
    )
    .await;
    let items = eventually(Duration::from_secs(30), "the thread", || async {
        let items = thread(app, &app.key, &id, 1).await;
        let human = items.iter().find(|m| m["human"] == true)?;
        (human["status"] == "delivered" && items.last()?["direction"] == "inbound").then_some(items)
    })
    .await;
    let human: Vec<&Value> = items.iter().filter(|m| m["human"] == true).collect();
    assert_eq!(human.len(), 1, "{items:#?}");
    assert_eq!(human[0]["by"], "operator:bo");
    assert_eq!(
        human[0]["body"],
        "Hi Ana, Bo from Acme here. When suits you?"
    );
    let reply = items.last().unwrap();
    assert_eq!(
        (&reply["body"], &reply["by"], &reply["status"]),
        (
            &json!("Tomorrow at 10 works"),
            &json!("contact"),
            &json!("received")
        )
    );
    let ids: Vec<i64> = items.iter().map(|m| m["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "oldest first: {ids:?}");
    // Only what left: one text from the playbook per missed call before the takeover, one by
    // hand — and the simulator saw exactly those.
    let outbound = items
        .iter()
        .filter(|m| m["direction"] == "outbound")
        .count();
    let stats = s.sim.stats();
    assert_eq!(stats.messages as usize, outbound, "{stats:?}");

    // Handed back: on the timeline and the view; twice is refused.
    let path = format!("/v1/opportunities/{id}/hand-back");
    let (status, opp) = app.post(&path, json!({"reason": "booked a call"})).await;
    assert_eq!(status, StatusCode::OK, "{opp}");
    assert!(opp["takeover"].is_null(), "{opp}");
    let (status, body) = app.post(&path, json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "not_taken_over");
    let timeline = app.timeline(&id).await;
    let back = timeline
        .iter()
        .find(|e| e["kind"] == "handed_back")
        .unwrap();
    assert_eq!(back["data"]["taken_over_by"], "bo", "{back}");
    let (_, audit) = app.get("/v1/audit?action=message_send").await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 1, "{audit}");
    let (_, audit) = app.get("/v1/audit?action=hand_back").await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 2, "{audit}");
    s.sim.shutdown().await;
    s.app.stop().await;
}

/// A zone where it is the middle of the night now, so the gate would only defer a text.
/// A zone where it is between 01:00 and 05:00 now, so the lead's calling hours are closed
/// whenever the test runs. Named zones one hour apart from UTC-11 to UTC+13 (the gate treats
/// `Etc/` zones as placeholders), so one of them is always in that window, summer or winter.
fn night_zone() -> &'static str {
    use chrono::Timelike;
    let now = chrono::Utc::now();
    [
        "Pacific/Pago_Pago",
        "Pacific/Honolulu",
        "America/Anchorage",
        "America/Los_Angeles",
        "America/Denver",
        "America/Chicago",
        "America/New_York",
        "America/Halifax",
        "America/Sao_Paulo",
        "America/Noronha",
        "Atlantic/Cape_Verde",
        "Europe/London",
        "Europe/Paris",
        "Africa/Cairo",
        "Europe/Moscow",
        "Asia/Dubai",
        "Asia/Karachi",
        "Asia/Dhaka",
        "Asia/Bangkok",
        "Asia/Shanghai",
        "Asia/Tokyo",
        "Australia/Brisbane",
        "Pacific/Noumea",
        "Pacific/Fiji",
        "Pacific/Tongatapu",
    ]
    .into_iter()
    .find(|z| {
        z.parse::<chrono_tz::Tz>()
            .is_ok_and(|tz| (1..5).contains(&now.with_timezone(&tz).hour()))
    })
    .unwrap()
}

async fn the_gate_refuses_by_name_and_failures_carry_the_carriers_code(backend: Backend) {
    let failed = MessageMix {
        delivered: 0,
        undelivered: 0,
        failed: 1,
    };
    let s = setup(backend, failed).await;
    let app = &s.app;
    // SMS only: the first touch is the playbook's text, which the carrier fails.
    let id = create(app, &app.key, lead("thread-2", false, true, daytime_zone())).await;
    let text = eventually(Duration::from_secs(30), "the failed text", || async {
        let items = thread(app, &app.key, &id, 10).await;
        items.first().filter(|m| m["status"] == "failed").cloned()
    })
    .await;
    assert_eq!(text["error_code"], 30008, "{text}");
    assert_eq!(text["carrier_status"], "failed", "{text}");

    // No SMS consent: refused naming the gate's reason, nothing sent or taken over.
    let no_sms = create(app, &app.key, lead("thread-3", true, false, daytime_zone())).await;
    let (status, body, _) = send(app, &no_sms, json!({"body": "hi"}), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "sms_refused", "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("consent"),
        "{body}"
    );
    // Night at the lead's: refused, not queued.
    let night = create(app, &app.key, lead("thread-4", false, true, night_zone())).await;
    let (status, body, _) = send(app, &night, json!({"body": "hi"}), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "sms_refused", "{body}");
    let (_, opp) = app.get(&format!("/v1/opportunities/{night}")).await;
    assert!(opp["takeover"].is_null(), "{opp}");
    // Paused.
    let (status, _) = app
        .post(&format!("/v1/opportunities/{id}/pause"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body, _) = send(app, &id, json!({"body": "hi"}), None).await;
    assert_eq!(
        (status, body["error"].clone()),
        (StatusCode::CONFLICT, json!("paused"))
    );

    // Hostile input: a 400 naming the field, before anything is submitted.
    let long = "x".repeat(1601);
    for (body, field) in [
        (json!({"body": ""}), "body"),
        (json!({"body": "   "}), "body"),
        (json!({"body": long}), "body"),
        (json!({"body": "a\u{0000}b"}), "body"),
        (json!({"body": "hi\u{202E}"}), "body"),
        (json!({"body": "hi", "by": "b\u{0007}o"}), "by"),
    ] {
        let (status, answer, _) = send(app, &no_sms, body.clone(), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {answer}");
        assert_eq!(answer["field"], field, "{body} → {answer}");
    }
    let (status, answer, _) = send(app, &no_sms, json!({"body": "hi", "to": "+1"}), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    let (status, _, _) = send(app, "not-a-uuid", json!({"body": "hi"}), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for bad in [
        "limit=0",
        "limit=1001",
        "limit=x",
        "cursor=-1",
        "cursor=abc",
    ] {
        let (status, answer) = app
            .get(&format!("/v1/opportunities/{id}/messages?{bad}"))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {answer}");
    }
    s.sim.shutdown().await;
    s.app.stop().await;
}

async fn two_tenants_sharing_a_lead_never_see_each_others_texts(backend: Backend) {
    let s = setup(backend, delivered()).await;
    let app = &s.app;
    let other = neuronx::tenants::create(app.engine().store(), "other agency")
        .await
        .unwrap();
    let theirs = "+14155550999";
    let (status, body) = app
        .request(
            Method::PUT,
            "/v1/channels/twilio",
            Some(&other.api_key),
            Some(twilio(&s.auth_token, &s.sim.base_url, theirs)),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The same person is a lead of both tenants.
    let ours = create(app, &app.key, lead("shared", false, true, daytime_zone())).await;
    let their = create(
        app,
        &other.api_key,
        lead("shared", false, true, daytime_zone()),
    )
    .await;
    inbound(&s, &app.tenant, "SMa1", ACCOUNT_FROM, "for a").await;
    inbound(&s, &other.tenant_id.to_string(), "SMb1", theirs, "for b").await;
    let inbound_bodies = |key: String, id: String| async move {
        thread(app, &key, &id, 100)
            .await
            .iter()
            .filter(|m| m["direction"] == "inbound")
            .filter_map(|m| m["body"].as_str().map(str::to_owned))
            .collect::<Vec<_>>()
    };
    eventually(Duration::from_secs(30), "both replies", || async {
        let a = inbound_bodies(app.key.clone(), ours.clone()).await;
        let b = inbound_bodies(other.api_key.clone(), their.clone()).await;
        (!a.is_empty() && !b.is_empty()).then_some(())
    })
    .await;
    assert_eq!(
        inbound_bodies(app.key.clone(), ours.clone()).await,
        ["for a"]
    );
    assert_eq!(
        inbound_bodies(other.api_key.clone(), their.clone()).await,
        ["for b"]
    );
    // And neither key reads the other's thread.
    let (status, _) = app
        .request(
            Method::GET,
            &format!("/v1/opportunities/{ours}/messages"),
            Some(&other.api_key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    s.sim.shutdown().await;
    s.app.stop().await;
}

both_backends!(
    a_person_takes_the_conversation_over_and_hands_it_back,
    the_gate_refuses_by_name_and_failures_carry_the_carriers_code,
    two_tenants_sharing_a_lead_never_see_each_others_texts,
);
