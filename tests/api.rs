#![allow(clippy::unwrap_used)]
//! The HTTP contract, end to end: a real engine on a fresh database, a real server, a real
//! client. Every test runs on PostgreSQL and on SQLite.

mod common;

use std::time::Duration;

use common::{eventually, kinds, lead, Backend, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::json;

async fn creating_is_idempotent_on_external_id(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let first = t.create("lead-1", 300).await;
    assert_eq!(first["stage"], "contacting");
    assert_eq!(first["paused"], false);
    assert_eq!(first["attempts"], 1);
    assert_eq!(first["version"], 1);
    let timers: Vec<&str> = first["timers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(timers, vec!["first_touch_sla"]);

    let (status, again) = t.post("/v1/opportunities", lead("lead-1", 300)).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["id"], first["id"]);
    let (_, list) = t.get("/v1/opportunities").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    t.stop().await;
}

async fn bad_input_is_refused_by_field_and_writes_nothing(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let cases = [
        (json!({"contact": lead("x", 5)["contact"]}), "external_id"),
        (
            json!({"external_id": "x", "contact": {"name": "A", "phone": "555", "consent": {"voice": true, "sms": true}}}),
            "contact.phone",
        ),
        (
            json!({"external_id": "x", "contact": {"name": "A", "phone": "+14155550100", "timezone": "Mars/Base", "consent": {"voice": true, "sms": true}}}),
            "contact.timezone",
        ),
        (
            json!({"external_id": "x", "contact": {"name": "A", "phone": "+14155550100", "consent": {"voice": "yes", "sms": true}}}),
            "contact.consent.voice",
        ),
        (
            json!({"external_id": "x", "playbook": "nope", "contact": lead("x", 5)["contact"]}),
            "playbook",
        ),
        (
            json!({"external_id": "x", "sla": {"first_touch_seconds": 0}, "contact": lead("x", 5)["contact"]}),
            "sla.first_touch_seconds",
        ),
        (
            json!({"external_id": "x", "surprise": 1, "contact": lead("x", 5)["contact"]}),
            "body",
        ),
        (
            json!({"external_id": "nul\u{0}", "contact": lead("x", 5)["contact"]}),
            "body",
        ),
    ];
    for (body, field) in cases {
        let (status, err) = t.post("/v1/opportunities", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
        assert_eq!(err["error"], "invalid_request");
        if field != "body" {
            assert_eq!(err["field"], field, "{err}");
        }
    }
    let raw = t
        .client
        .post(format!("{}/v1/opportunities", t.base))
        .bearer_auth(&t.key)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), StatusCode::BAD_REQUEST);
    let (_, list) = t.get("/v1/opportunities").await;
    assert_eq!(list["items"], json!([]), "nothing may be half-written");
    let (status, err) = t.get("/v1/opportunities?limit=0").await;
    assert_eq!(
        (status, err["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("limit"))
    );
    let (status, err) = t.get("/v1/opportunities?paused=maybe").await;
    assert_eq!(
        (status, err["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("paused"))
    );
    t.stop().await;
}

/// Hostile text on every API path: control characters, bidi overrides and NULs are refused by
/// field (line breaks only where a field may span lines), lengths count characters, phone
/// numbers must exist in their numbering plan and are stored in E.164, and a body with
/// anything after its JSON value is refused. Nothing is half-written.
async fn hostile_text_is_refused_and_numbers_are_normalised(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let with = |path: &str, value: serde_json::Value| {
        let mut body = lead("hostile", 300);
        let mut at = &mut body;
        let parts: Vec<&str> = path.split('.').collect();
        for p in &parts[..parts.len() - 1] {
            at = &mut at[*p];
        }
        at[parts[parts.len() - 1]] = value;
        body
    };
    for (path, value) in [
        ("external_id", json!("lead\u{202E}1")),
        ("external_id", json!("two\nlines")),
        ("contact.name", json!("Ana\u{1b}[31m")),
        ("contact.name", json!("Ana\tLima")),
        ("contact.name", json!("é".repeat(201))),
        ("contact.phone", json!("+12345678")),
        ("contact.phone", json!("+10005550100")),
        ("contact.phone", json!("4155550100")),
        ("contact.email", json!("ana\u{0}@example.com")),
        ("assignee", json!("bo\u{2066}")),
    ] {
        let (status, err) = t.post("/v1/opportunities", with(path, value.clone())).await;
        assert_eq!(
            (status, err["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some(path)),
            "{path} = {value}: {err}"
        );
    }
    let (_, list) = t.get("/v1/opportunities").await;
    assert_eq!(list["items"], json!([]), "nothing may be half-written");

    let garbage = format!("{} GARBAGE", lead("garbage", 300));
    let raw = t
        .client
        .post(format!("{}/v1/opportunities", t.base))
        .bearer_auth(&t.key)
        .header("content-type", "application/json")
        .body(garbage)
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), StatusCode::BAD_REQUEST);
    let err: serde_json::Value = raw.json().await.unwrap();
    assert_eq!(err["field"], "body", "{err}");
    let (_, list) = t.get("/v1/opportunities").await;
    assert_eq!(list["items"], json!([]), "trailing garbage wrote nothing");

    let mut named = with("contact.name", json!("é".repeat(200)));
    named["contact"]["phone"] = json!("+1 (415) 555-2671");
    let (status, created) = t.post("/v1/opportunities", named).await;
    assert_eq!(status, StatusCode::CREATED, "200 characters fit: {created}");
    assert_eq!(
        created["contact"]["phone"], "+14155552671",
        "stored in e.164"
    );
    let id = created["id"].as_str().unwrap();

    let pause = format!("/v1/opportunities/{id}/pause");
    let (status, err) = t.post(&pause, json!({"reason": "bell\u{7}"})).await;
    assert_eq!(
        (status, err["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("reason"))
    );
    let (status, body) = t
        .post(&pause, json!({"reason": "called back:\nno answer"}))
        .await;
    assert_eq!(status, StatusCode::OK, "a reason may span lines: {body}");
    let (status, err) = t.get("/v1/opportunities?stage=%1b").await;
    assert_eq!(
        (status, err["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("stage"))
    );

    let (status, listed) = t.post("/v1/dnc", json!({"phone": "+1 415-555-0199"})).await;
    assert_eq!(
        (status, listed["phone"].as_str()),
        (StatusCode::CREATED, Some("+14155550199"))
    );
    let (status, err) = t.post("/v1/dnc", json!({"phone": "+10005550100"})).await;
    assert_eq!(
        (status, err["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("phone"))
    );
    t.stop().await;
}

async fn keys_and_tenants_are_enforced(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let created = t.create("lead-1", 300).await;
    let id = created["id"].as_str().unwrap();
    for key in [None, Some("nope"), Some("nxk_000000000000_00")] {
        let (status, body) = t.request(Method::GET, "/v1/opportunities", key, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["error"], "unauthorized");
    }
    let other = neuronx::tenants::create(t.engine().store(), "other")
        .await
        .unwrap()
        .api_key;
    for (method, path) in [
        (Method::GET, format!("/v1/opportunities/{id}")),
        (Method::GET, format!("/v1/opportunities/{id}/timeline")),
        (Method::POST, format!("/v1/opportunities/{id}/pause")),
        (Method::POST, format!("/v1/opportunities/{id}/resume")),
        (Method::POST, format!("/v1/opportunities/{id}/escalate")),
    ] {
        let (status, body) = t
            .request(method, &path, Some(&other), Some(json!({})))
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
    }
    let (_, list) = t
        .request(Method::GET, "/v1/opportunities", Some(&other), None)
        .await;
    assert_eq!(list["items"], json!([]));
    let (_, mine) = t.get(&format!("/v1/opportunities/{id}")).await;
    assert_eq!(
        mine["paused"], false,
        "the other tenant's pause must not apply"
    );
    t.stop().await;
}

async fn pause_resume_and_reassign_are_on_the_timeline(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let id = t.create("lead-1", 300).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = |cmd: &str| format!("/v1/opportunities/{id}/{cmd}");

    let (status, body) = t
        .post(
            &path("pause"),
            json!({"operator": "ana", "reason": "customer asked"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["paused"], true);
    let (status, body) = t.post(&path("pause"), json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"], "already_paused");
    let (_, body) = t.post(&path("resume"), json!({"operator": "ana"})).await;
    assert_eq!(body["paused"], false);

    let (status, body) = t.post(&path("reassign"), json!({"assignee": "bo"})).await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("reason"))
    );
    let (status, body) = t
        .post(
            &path("reassign"),
            json!({"assignee": "bo", "reason": "speaks Portuguese", "operator": "ana"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["assignee"], "bo");

    let timeline = t.timeline(&id).await;
    let k = kinds(&timeline);
    for expected in [
        "created",
        "stage_changed",
        "paused",
        "resumed",
        "reassigned",
    ] {
        assert!(
            k.contains(&expected.to_string()),
            "{expected} missing from {k:?}"
        );
    }
    let reassigned = timeline.iter().find(|e| e["kind"] == "reassigned").unwrap();
    assert_eq!(reassigned["by"], "operator:ana");
    assert!(reassigned["reason"]
        .as_str()
        .unwrap()
        .contains("speaks Portuguese"));
    let paused = timeline.iter().find(|e| e["kind"] == "paused").unwrap();
    assert_eq!(paused["by"], "operator:ana");
    // Oldest first, each with a time (compared as times: RFC 3339 text drops `.000` on a whole
    // second, so "…:19Z" sorts after "…:19.018Z" as text).
    let times: Vec<chrono::DateTime<chrono::Utc>> = timeline
        .iter()
        .map(|e| e["at"].as_str().unwrap().parse().unwrap())
        .collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted);
    t.stop().await;
}

async fn an_unreached_lead_escalates_once_when_its_sla_runs_out(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let id = t.create("lead-1", 1).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = eventually(Duration::from_secs(10), "escalation", || async {
        let (_, body) = t.get(&format!("/v1/opportunities/{id}")).await;
        (body["escalated"] == true).then_some(body)
    })
    .await;
    assert_eq!(body["assignee"], "escalations");
    assert_eq!(body["stage"], "contacting", "escalation keeps the stage");
    let timeline = t.timeline(&id).await;
    let escalations = timeline
        .iter()
        .filter(|e| e["kind"] == "sla_escalated")
        .count();
    assert_eq!(escalations, 1);
    // The loopback carrier reported no-answer: the call ended and the SMS follow-up went out.
    let k = kinds(&timeline);
    assert!(k.contains(&"call_outcome".to_string()), "{k:?}");
    assert!(k.contains(&"effect_sent".to_string()), "{k:?}");
    t.stop().await;
}

async fn a_paused_lead_holds_its_timer_until_resumed(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let id = t.create("lead-1", 1).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = t
        .post(&format!("/v1/opportunities/{id}/pause"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    eventually(Duration::from_secs(10), "the held SLA timer", || async {
        t.timeline(&id)
            .await
            .iter()
            .any(|e| e["kind"] == "timer_held" && e["data"]["timer"] == "first_touch_sla")
            .then_some(())
    })
    .await;
    let (_, body) = t.get(&format!("/v1/opportunities/{id}")).await;
    assert_eq!(body["escalated"], false, "no escalation while paused");
    let (_, body) = t
        .post(&format!("/v1/opportunities/{id}/resume"), json!({}))
        .await;
    assert_eq!(body["escalated"], true, "the held timer fires on resume");
    t.stop().await;
}

async fn the_call_is_visible_with_its_status(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let created = t.create("lead-1", 300).await;
    let call_id = common::first_call(&t.timeline(created["id"].as_str().unwrap()).await).unwrap();
    let call = eventually(Duration::from_secs(10), "the call to end", || async {
        let (status, body) = t.get(&format!("/v1/calls/{call_id}")).await;
        (status == StatusCode::OK && body["status"] == "no-answer").then_some(body)
    })
    .await;
    assert_eq!(call["opportunity_id"], created["id"]);
    assert!(call["provider_sid"].as_str().unwrap().starts_with("CA"));
    let statuses: Vec<&str> = call["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "call_status")
        .filter_map(|e| e["data"]["to"].as_str())
        .collect();
    assert!(statuses.ends_with(&["no-answer"]), "{statuses:?}");
    let (status, _) = t.get(&format!("/v1/calls/{}", uuid::Uuid::new_v4())).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    t.stop().await;
}

async fn lists_filter_and_page(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(t.create(&format!("lead-{i}"), 300).await["id"].clone());
    }
    let paused_id = ids[2].as_str().unwrap();
    t.post(&format!("/v1/opportunities/{paused_id}/pause"), json!({}))
        .await;
    let (_, page1) = t.get("/v1/opportunities?limit=3").await;
    assert_eq!(page1["items"].as_array().unwrap().len(), 3);
    let cursor = page1["next_cursor"].as_str().unwrap();
    let (_, page2) = t
        .get(&format!("/v1/opportunities?limit=3&cursor={cursor}"))
        .await;
    let mut seen: Vec<_> = page1["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(page2["items"].as_array().unwrap())
        .map(|o| o["id"].clone())
        .collect();
    seen.sort_by_key(|v| v.to_string());
    let mut all = ids.clone();
    all.sort_by_key(|v| v.to_string());
    assert_eq!(seen, all);
    let (_, paused) = t.get("/v1/opportunities?paused=true").await;
    let paused: Vec<_> = paused["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].clone())
        .collect();
    assert_eq!(paused, vec![ids[2].clone()]);
    let (_, contacting) = t
        .get("/v1/opportunities?stage=contacting&paused=false")
        .await;
    assert_eq!(contacting["items"].as_array().unwrap().len(), 4);
    let (_, won) = t.get("/v1/opportunities?stage=won").await;
    assert_eq!(won["items"], json!([]));
    t.stop().await;
}

async fn health_readiness_and_metrics_answer(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let (status, _) = t.request(Method::GET, "/healthz", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let ready = eventually(Duration::from_secs(5), "readiness", || async {
        let (status, body) = t.request(Method::GET, "/readyz", None, None).await;
        (status == StatusCode::OK).then_some(body)
    })
    .await;
    assert_eq!(ready["owned_shards"], 32);
    t.create("lead-1", 300).await;
    let (status, metrics) = t.request(Method::GET, "/metrics", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let text = metrics.as_str().unwrap();
    for name in [
        "neuronx_transitions_total",
        "neuronx_commit_latency_seconds_bucket",
        "neuronx_timer_lateness_seconds_bucket",
        "neuronx_resident_actors",
        "neuronx_inbox_depth",
        "neuronx_fencing_rejections_total",
    ] {
        assert!(text.contains(name), "{name} missing");
    }
    let transitions: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("neuronx_transitions_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(transitions >= 1.0);
    t.stop().await;
}

both_backends!(
    hostile_text_is_refused_and_numbers_are_normalised,
    creating_is_idempotent_on_external_id,
    bad_input_is_refused_by_field_and_writes_nothing,
    keys_and_tenants_are_enforced,
    pause_resume_and_reassign_are_on_the_timeline,
    an_unreached_lead_escalates_once_when_its_sla_runs_out,
    a_paused_lead_holds_its_timer_until_resumed,
    the_call_is_visible_with_its_status,
    lists_filter_and_page,
    health_readiness_and_metrics_answer,
);

/// The tests' daytime places give numbers the API accepts, each in its place's zone alone (else
/// a suite's lead would be held to a second zone's calling hours at some hour of the day).
#[test]
fn the_test_places_are_valid_numbers_in_their_zone_alone() {
    use neuronx_actors::domain::compliance::resolve_zones;
    use neuronx_actors::domain::opportunity::normalize_phone;
    for local in ["5550100", "6200000", "6299999", "5550177", "5560000"] {
        for (zone, phone) in common::places::every_place(local) {
            assert_eq!(normalize_phone(&phone).as_deref(), Ok(phone.as_str()));
            let zones = resolve_zones(Some(zone), &phone);
            let names: Vec<&str> = zones.iter().map(|z| z.name()).collect();
            assert_eq!(names, [zone], "{phone}");
        }
    }
}
