#![allow(clippy::unwrap_used)]
//! One person, one cadence (issue #14, ADR 0046), through the API on both backends: a second
//! lead of the same phone merges into the live opportunity (the default) or is recorded as a
//! skipped duplicate with no cadence (the tenant's `skip`); a closed opportunity's contact gets
//! a new cadence; leads of one person arriving together start exactly one; the setting itself
//! refuses what it does not know.

mod common;
#[path = "common/flow.rs"]
mod flow;

use std::time::Duration;

use common::{day_phone, daytime_zone, eventually, post_signed, sql, Backend, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(20);

fn lead_of(external_id: &str, phone: &str) -> Value {
    json!({
        "external_id": external_id,
        "contact": {
            "name": "Ana Lima",
            "phone": phone,
            "timezone": daytime_zone(),
            "consent": {"voice": true, "sms": true}
        },
        "sla": {"first_touch_seconds": 300}
    })
}

fn count(timeline: &[Value], kind: &str) -> usize {
    timeline.iter().filter(|e| e["kind"] == kind).count()
}

async fn opportunities_of(t: &TestApp, phone: &str) -> usize {
    let found = sql(
        t.engine().store(),
        &format!(
            "SELECT CAST(actor_id AS TEXT) FROM lookups \
             WHERE kind = 'opportunity' AND key_type = 'phone' AND key = '{phone}'"
        ),
    )
    .await;
    found.len()
}

async fn merges_by_default(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let phone = &day_phone("5550111");
    let (status, first) = t.post("/v1/opportunities", lead_of("form-1", phone)).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let id = first["id"].as_str().unwrap().to_owned();
    let placed = count(&t.timeline(&id).await, "call_placed");
    assert_eq!(placed, 1, "the first lead's cadence called");

    // The same person fills in another form: no second opportunity, no second call.
    let (status, second) = t.post("/v1/opportunities", lead_of("form-2", phone)).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(second["id"], id.as_str(), "answered the live opportunity");
    assert_eq!(second["external_id"], "form-1");
    assert_eq!(second["returned"], json!(["form-2"]));
    let timeline = t.timeline(&id).await;
    assert_eq!(count(&timeline, "contact_returned"), 1);
    let entry = timeline
        .iter()
        .find(|e| e["kind"] == "contact_returned")
        .unwrap();
    assert_eq!(entry["data"]["external_id"], "form-2");
    assert_eq!(entry["data"]["mode"], "merge");
    assert_eq!(count(&timeline, "call_placed"), 1, "no second cadence");

    // A retried create of the merged lead changes nothing more.
    let (status, again) = t.post("/v1/opportunities", lead_of("form-2", phone)).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["id"], id.as_str());
    assert_eq!(count(&t.timeline(&id).await, "contact_returned"), 1);
    assert_eq!(opportunities_of(&t, phone).await, 1);
    // So does the first lead's own retry.
    let (status, own) = t.post("/v1/opportunities", lead_of("form-1", phone)).await;
    assert_eq!(status, StatusCode::OK, "{own}");
    assert_eq!(own["id"], id.as_str());

    // Closed, the contact may start over: a new lead gets its own cadence.
    let (status, body) = t
        .post(
            &format!("/v1/opportunities/{id}/stage"),
            json!({"stage": "lost", "reason": "went with a competitor"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, fresh) = t.post("/v1/opportunities", lead_of("form-3", phone)).await;
    assert_eq!(status, StatusCode::CREATED, "{fresh}");
    assert_ne!(fresh["id"], id.as_str());
    assert_eq!(fresh["duplicate_of"], Value::Null);
    let fresh_id = fresh["id"].as_str().unwrap();
    assert_eq!(count(&t.timeline(fresh_id).await, "call_placed"), 1);
    assert_eq!(opportunities_of(&t, phone).await, 2);
    t.stop().await;
}

async fn skips_when_the_tenant_says_so(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let (status, settings) = t.get("/v1/settings").await;
    assert_eq!(status, StatusCode::OK, "{settings}");
    assert_eq!(settings["duplicate_contacts"], "merge", "the default");
    t.duplicate_contacts("skip").await;
    assert_eq!(t.get("/v1/settings").await.1["duplicate_contacts"], "skip");

    let phone = &day_phone("5550122");
    let (_, live) = t.post("/v1/opportunities", lead_of("web-1", phone)).await;
    let live_id = live["id"].as_str().unwrap().to_owned();
    let (status, dup) = t.post("/v1/opportunities", lead_of("web-2", phone)).await;
    assert_eq!(status, StatusCode::CREATED, "{dup}");
    let dup_id = dup["id"].as_str().unwrap().to_owned();
    assert_eq!(dup["duplicate_of"], live_id.as_str());
    assert_eq!(dup["attempts"], 0, "{dup}");
    assert_eq!(dup["stage"], "new");
    assert_eq!(dup["timers"], json!([]), "nothing armed");
    let dup_timeline = t.timeline(&dup_id).await;
    assert_eq!(count(&dup_timeline, "call_placed"), 0);
    assert_eq!(count(&dup_timeline, "contact_returned"), 1);

    // The live one is told in the duplicate's own commit (an input to it).
    let note = eventually(WAIT, "the live opportunity's note", || async {
        t.timeline(&live_id)
            .await
            .into_iter()
            .find(|e| e["kind"] == "contact_returned")
    })
    .await;
    assert_eq!(note["data"]["mode"], "skip");
    assert_eq!(note["data"]["opportunity_id"], dup_id.as_str());
    assert_eq!(count(&t.timeline(&live_id).await, "call_placed"), 1);

    // A retried create of the duplicate answers it as it is.
    let (status, again) = t.post("/v1/opportunities", lead_of("web-2", phone)).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["id"], dup_id.as_str());
    t.stop().await;
}

async fn leads_arriving_together_start_one_cadence(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let phone = &day_phone("5550133");
    let creates = (0..8).map(|n| {
        let t = &t;
        async move {
            t.post("/v1/opportunities", lead_of(&format!("rush-{n}"), phone))
                .await
        }
    });
    let answers = futures_util::future::join_all(creates).await;
    let id = common::the_one_created(&answers);
    let id = id.as_str();
    assert_eq!(opportunities_of(&t, phone).await, 1);
    assert_eq!(count(&t.timeline(id).await, "call_placed"), 1);
    t.stop().await;
}

async fn the_setting_refuses_what_it_does_not_know(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    for (body, field) in [
        (
            json!({"duplicate_contacts": "sometimes"}),
            "duplicate_contacts",
        ),
        (json!({"duplicate_contacts": 3}), "duplicate_contacts"),
        (json!({"surprise": true}), "surprise"),
    ] {
        let (status, answer) = t
            .request(Method::PUT, "/v1/settings", Some(&t.key), Some(body))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert!(answer.to_string().contains(field), "{answer}");
    }
    assert_eq!(t.get("/v1/settings").await.1["duplicate_contacts"], "merge");
    // An empty change keeps what is there and answers it.
    let (status, same) = t
        .request(Method::PUT, "/v1/settings", Some(&t.key), Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::OK, "{same}");
    assert_eq!(same["duplicate_contacts"], "merge");
    t.stop().await;
}

/// Skip mode: the duplicate is the newest opportunity of the number, but a STOP from the lead
/// must reach the live one, which holds the cadence.
async fn a_stop_reaches_the_live_opportunity_not_the_skipped_one(backend: Backend) {
    let s = flow::setup(backend).await;
    let t = &s.app;
    t.duplicate_contacts("skip").await;
    let phone = &day_phone("5550144");
    let (_, live) = t.post("/v1/opportunities", lead_of("ad-1", phone)).await;
    let (status, dup) = t.post("/v1/opportunities", lead_of("ad-2", phone)).await;
    assert_eq!(status, StatusCode::CREATED, "{dup}");
    let live_id = live["id"].as_str().unwrap().to_owned();
    let url = format!("{}/webhooks/twilio/{}/sms/inbound", s.public_url, t.tenant);
    let params: Vec<(String, String)> = vec![
        ("MessageSid".into(), "SMstop0001".into()),
        ("From".into(), phone.into()),
        ("Body".into(), "STOP".into()),
    ];
    let resp = post_signed(&t.client, &s.auth_token, &url, &params).await;
    assert!(resp.status().is_success(), "{}", resp.status());
    eventually(WAIT, "the live opportunity opted out", || async {
        let kinds = t.timeline(&live_id).await;
        (count(&kinds, "opted_out") == 1).then_some(())
    })
    .await;
    let dup_id = dup["id"].as_str().unwrap();
    assert_eq!(count(&t.timeline(dup_id).await, "opted_out"), 0);
    s.sim.shutdown().await;
    s.app.stop().await;
}

/// A create refused before it existed (an unknown team) gives the number back at once: the
/// person's next lead is created, not held as `contact_busy`.
async fn a_refused_create_frees_the_number(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let phone = &day_phone("5550155");
    let mut bad = lead_of("typo-1", phone);
    bad["team"] = json!("no-such-team");
    let (status, body) = t.post("/v1/opportunities", bad).await;
    assert!(status.is_client_error(), "{status} {body}");
    // A claim still held would answer 409 `contact_busy` after its wait.
    let (status, body) = t.post("/v1/opportunities", lead_of("typo-2", phone)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    t.stop().await;
}

both_backends!(
    a_refused_create_frees_the_number,
    a_stop_reaches_the_live_opportunity_not_the_skipped_one,
    merges_by_default,
    skips_when_the_tenant_says_so,
    leads_arriving_together_start_one_cadence,
    the_setting_refuses_what_it_does_not_know,
);
