#![allow(clippy::unwrap_used)]
//! Click to call, agent first (issue #14): `POST /v1/opportunities/{id}/calls` rings the rep's
//! phone through the carrier simulator, the rep hears who the lead is and presses 1, the lead
//! is dialled from the rep's call and the two are connected; the conversation lands on the
//! timeline. A rep who passes leaves the lead undialled. The compliance gate, the rep's team
//! and call limit, and hostile bodies are refused by name.

#[path = "common/access.rs"]
mod access;
mod common;
#[path = "common/flow.rs"]
mod flow;

use std::time::Duration;

use access::team;
use common::{eventually, Backend, TestApp};
use flow::{call_events, rep, setup, Setup};
use neuronx_adapters::carrier_sim;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const ANA: &str = "+14155550201";
const LEAD: &str = "+14155550101";

/// A lead of `west` whose first (lead-first) call is over: every rep was away, so the lead
/// heard the callback promise and the call ended. Answers its id.
async fn lead_after_its_first_call(app: &TestApp, external_id: &str) -> String {
    let mut lead = common::lead(external_id, 300);
    lead["contact"]["phone"] = json!(LEAD);
    lead["team"] = json!("west");
    let (status, body) = app.post("/v1/opportunities", lead).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    idle(app, &id).await;
    id
}

/// Waits until the opportunity has no call in progress.
async fn idle(app: &TestApp, id: &str) -> Value {
    eventually(Duration::from_secs(30), "the call to end", || async {
        let (_, opp) = app.get(&format!("/v1/opportunities/{id}")).await;
        let ended = app
            .timeline(id)
            .await
            .iter()
            .any(|e| e["kind"] == "call_outcome");
        (opp["active_call"].is_null() && opp["live_call"].is_null() && ended).then_some(opp)
    })
    .await
}

async fn call_now(app: &TestApp, id: &str, body: Value) -> (StatusCode, Value) {
    app.post(&format!("/v1/opportunities/{id}/calls"), body)
        .await
}

async fn the_rep_presses_1_and_talks_to_the_lead(backend: Backend) {
    let Setup { app, sim, .. } = setup(backend).await;
    team(&app, "west").await;
    // Away: the automatic flow does not ring ana, but ana can still call a lead herself.
    rep(&app, "ana", Some("west"), ANA, "away").await;
    let id = lead_after_its_first_call(&app, "ctc-1").await;
    let before = sim.stats();
    assert_eq!(before.bridged_calls, 0, "{before:?}");
    sim.set_digits(ANA, &["1"]);

    let (code, opp) = call_now(&app, &id, json!({"rep": "ana"})).await;
    assert_eq!(code, StatusCode::OK, "{opp}");
    let call_id = opp["active_call"].as_str().unwrap().to_owned();

    let entries = eventually(Duration::from_secs(30), "the conversation", || async {
        let events = call_events(&app, &call_id).await;
        events
            .iter()
            .any(|d| d["event"] == "conversation")
            .then_some(events)
    })
    .await;
    let names: Vec<&str> = entries.iter().filter_map(|d| d["event"].as_str()).collect();
    assert_eq!(names, ["rep_answered", "conversation"], "{entries:?}");
    assert_eq!(entries[1]["rep"], "ana");
    // The rep's phone was the call's own leg; the lead was one dialled leg from it.
    let stats = sim.stats();
    assert_eq!(stats.bridged_calls, before.bridged_calls + 1, "{stats:?}");
    assert_eq!(stats.dial_legs, before.dial_legs + 1, "{stats:?}");
    let (_, detail) = app.get(&format!("/v1/calls/{call_id}")).await;
    assert_eq!(detail["agent_first"], "ana", "{detail}");
    assert_eq!(detail["to"], LEAD, "{detail}");
    // The opportunity: the conversation on its timeline, and the lead reached.
    let opp = idle(&app, &id).await;
    assert_eq!(opp["stage"], "engaged", "{opp}");
    let timeline = app.timeline(&id).await;
    let placed = timeline
        .iter()
        .rfind(|e| e["kind"] == "call_placed")
        .unwrap();
    assert_eq!(placed["data"]["agent_first"], "ana", "{placed}");
    assert!(
        placed["by"].as_str().unwrap().starts_with("operator:"),
        "{placed}"
    );
    assert!(
        timeline
            .iter()
            .any(|e| e["kind"] == "conversation" && e["data"]["rep"] == "ana"),
        "{timeline:#?}"
    );
    // Audited, and ana is free again once the call ended.
    let (_, audit) = app.get("/v1/audit?action=call_now").await;
    let items = audit["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{audit}");
    assert_eq!(items[0]["outcome"], "applied", "{audit}");
    eventually(Duration::from_secs(10), "ana to be free", || async {
        let (_, reps) = app.get("/v1/reps").await;
        let ana = reps["items"]
            .as_array()
            .and_then(|r| r.iter().find(|r| r["name"] == "ana").cloned());
        ana.filter(|a| a["live_calls"] == 0)
    })
    .await;
    sim.shutdown().await;
    app.stop().await;
}

async fn a_rep_who_passes_leaves_the_lead_undialled(backend: Backend) {
    let Setup { app, sim, .. } = setup(backend).await;
    team(&app, "west").await;
    rep(&app, "ana", Some("west"), ANA, "away").await;
    let id = lead_after_its_first_call(&app, "ctc-2").await;
    // The first call's callback promise has reached the lead before counting.
    let texts = |s: &carrier_sim::SimStats| s.messages_per_number.get(LEAD).copied();
    eventually(Duration::from_secs(10), "the callback text", || async {
        (texts(&sim.stats()) == Some(1)).then_some(())
    })
    .await;
    let before = sim.stats();
    sim.set_digits(ANA, &["2"]);

    let (code, opp) = call_now(&app, &id, json!({"rep": "ana"})).await;
    assert_eq!(code, StatusCode::OK, "{opp}");
    let call_id = opp["active_call"].as_str().unwrap().to_owned();
    let opp = idle(&app, &id).await;
    let events = call_events(&app, &call_id).await;
    let names: Vec<&str> = events.iter().filter_map(|d| d["event"].as_str()).collect();
    assert_eq!(names, ["rep_missed"], "{events:?}");
    let stats = sim.stats();
    assert_eq!(
        stats.dial_legs, before.dial_legs,
        "the lead was dialled: {stats:?}"
    );
    assert_eq!(stats.calls, before.calls + 1, "{stats:?}");
    let outcome = app
        .timeline(&id)
        .await
        .into_iter()
        .rfind(|e| e["kind"] == "call_outcome")
        .unwrap();
    assert_eq!(outcome["data"]["result"], "rep_missed", "{outcome}");
    // Not an attempt the lead missed: no follow-up text went out for it.
    assert_eq!(texts(&stats), texts(&before), "{stats:?}");
    assert!(opp["active_call"].is_null());
    sim.shutdown().await;
    app.stop().await;
}

async fn refusals_name_their_reason(backend: Backend) {
    let Setup { app, sim, .. } = setup(backend).await;
    team(&app, "west").await;
    team(&app, "east").await;
    rep(&app, "ana", Some("west"), ANA, "away").await;
    rep(&app, "eve", Some("east"), "+14155550209", "away").await;
    let id = lead_after_its_first_call(&app, "ctc-3").await;

    // A key of no principal must name the rep; the rep must exist, be a rep, be of the team.
    let (code, body) = call_now(&app, &id, json!({})).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["field"], "rep", "{body}");
    let (code, body) = call_now(&app, &id, json!({"rep": "nobody"})).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["field"], "rep", "{body}");
    let (code, body) = call_now(&app, &id, json!({"rep": "eve"})).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["message"].as_str().unwrap().contains("team"), "{body}");
    // Hostile bodies.
    for bad in [json!({"rep": 5}), json!({"rep": "ana", "x": 1}), json!([])] {
        let (code, body) = call_now(&app, &id, bad.clone()).await;
        assert!(code.is_client_error(), "{bad}: {code} {body}");
        assert!(body["error"].is_string(), "{bad}: {body}");
    }
    let (code, body) = call_now(&app, &id, json!({"rep": "a\u{0}b"})).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    let (code, _) = call_now(&app, "not-a-uuid", json!({"rep": "ana"})).await;
    assert_eq!(code, StatusCode::NOT_FOUND);

    // One call at a time: a second click while the first rings is refused.
    let (code, body) = call_now(&app, &id, json!({"rep": "ana"})).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let (code, body) = call_now(&app, &id, json!({"rep": "ana"})).await;
    assert_eq!(code, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "call_live", "{body}");
    idle(&app, &id).await;

    // A lead who opted out cannot be called, by a rep or anyone.
    let (code, body) = app
        .request(
            Method::POST,
            &format!("/v1/opportunities/{id}/stage"),
            Some(&app.key),
            Some(json!({"stage": "lost", "reason": "test"})),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let (code, body) = call_now(&app, &id, json!({"rep": "ana"})).await;
    assert_eq!(code, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "terminal_stage", "{body}");

    // The gate decides as for a cadence call: no voice consent, no call.
    let mut lead = common::lead("ctc-4", 300);
    lead["contact"]["phone"] = json!("+14155550102");
    lead["contact"]["consent"]["voice"] = json!(false);
    lead["team"] = json!("west");
    let (status, body) = app.post("/v1/opportunities", lead).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let quiet = body["id"].as_str().unwrap();
    let (code, body) = call_now(&app, quiet, json!({"rep": "ana"})).await;
    assert_eq!(code, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "call_refused", "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("consent"),
        "{body}"
    );
    sim.shutdown().await;
    app.stop().await;
}

both_backends!(the_rep_presses_1_and_talks_to_the_lead,);

mod sqlite_only {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn passes() {
        a_rep_who_passes_leaves_the_lead_undialled(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn refusals() {
        refusals_name_their_reason(Backend::Sqlite).await;
    }
}
