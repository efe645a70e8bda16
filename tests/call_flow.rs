#![allow(clippy::unwrap_used)]
//! The call flow end to end (issue #14): a lead answers, the carrier simulator fetches our
//! TwiML, rings the team's reps by the team's strategy, runs the rep's whisper, bridges, and
//! posts the dial's result back; the conversation lands on the timeline. When nobody can take
//! the lead, the lead hears the callback promise, gets the callback text and the opportunity
//! is escalated. Plus the flow's webhooks under hostile input.

#[path = "common/access.rs"]
mod access;
mod common;
#[path = "common/flow.rs"]
mod flow;

use std::time::Duration;

use flow::{conversation_until, rep, setup, Setup};

use access::team;
use common::{eventually, post_signed, Backend, TestApp};
use neuronx_adapters::carrier_sim::CalleeMix;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn ringing(app: &TestApp, team: &str, strategy: &str) {
    let (code, body) = app
        .request(
            Method::PUT,
            &format!("/v1/teams/{team}/ringing"),
            Some(&app.key),
            Some(json!({"strategy": strategy, "ring_timeout_seconds": 5})),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
}

async fn lead_in(app: &TestApp, external_id: &str, phone: &str, team: Option<&str>) -> String {
    let mut lead = common::lead(external_id, 300);
    lead["contact"]["phone"] = json!(phone);
    if let Some(team) = team {
        lead["team"] = json!(team);
    }
    let (status, body) = app.post("/v1/opportunities", lead).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

/// The `conversation` entries of the call an opportunity's entry names, in order.
async fn call_flow_entries(app: &TestApp, entry: &Value) -> Vec<Value> {
    flow::call_events(app, entry["call_id"].as_str().unwrap()).await
}

async fn an_answered_lead_is_bridged_to_the_available_rep(backend: Backend) {
    let Setup { app, sim, .. } = setup(backend).await;
    team(&app, "west").await;
    rep(&app, "ana", Some("west"), "+14155550201", "away").await;
    rep(&app, "bo", Some("west"), "+14155550202", "available").await;
    let id = lead_in(&app, "flow-1", "+14155550101", Some("west")).await;

    let entries = conversation_until(&app, &id, "conversation").await;
    let conv = entries
        .iter()
        .find(|d| d["event"] == "conversation")
        .unwrap();
    assert_eq!(conv["rep"], "bo", "{entries:?}");
    assert!(conv["talk_seconds"].as_u64().is_some(), "{conv}");
    // The call's own record: who was rung, who picked up, the conversation.
    let flow = call_flow_entries(&app, conv).await;
    let events: Vec<&str> = flow.iter().filter_map(|d| d["event"].as_str()).collect();
    assert_eq!(
        events,
        ["reps_rung", "rep_answered", "conversation"],
        "{flow:?}"
    );
    assert_eq!(flow[0]["reps"], json!(["bo"]), "away reps are not rung");
    assert_eq!(flow[1]["rep"], "bo");

    let stats = sim.stats();
    assert_eq!(stats.bridged_calls, 1, "{stats:?}");
    assert_eq!(stats.dial_legs, 1);
    assert_eq!(stats.whispers, 1);
    assert_eq!(stats.duplicate_creates, 0);
    let (_, opp) = app.get(&format!("/v1/opportunities/{id}")).await;
    assert_eq!(opp["stage"], "engaged", "{opp}");
    assert_ne!(opp["escalated"], true, "{opp}");
    // The rep is free again once the conversation ended.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, reps) = app.get("/v1/reps").await;
        let bo = reps
            .as_array()
            .or_else(|| reps["items"].as_array())
            .and_then(|r| r.iter().find(|r| r["name"] == "bo").cloned());
        if bo.as_ref().is_some_and(|bo| bo["live_calls"] == 0) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "bo not free: {reps}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sim.shutdown().await;
    app.stop().await;
}

async fn nobody_free_promises_a_callback_and_escalates(backend: Backend) {
    let Setup { app, sim, .. } = setup(backend).await;
    team(&app, "west").await;
    rep(&app, "ana", Some("west"), "+14155550201", "offline").await;
    let id = lead_in(&app, "flow-2", "+14155550102", Some("west")).await;

    let entries = conversation_until(&app, &id, "unattended").await;
    let un = entries.iter().find(|d| d["event"] == "unattended").unwrap();
    assert_eq!(un["reason"], "no_rep_available");
    let flow = call_flow_entries(&app, un).await;
    let events: Vec<&str> = flow.iter().filter_map(|d| d["event"].as_str()).collect();
    assert_eq!(events, ["unattended"], "{flow:?}");
    flow::escalated_after_text(&app, &id, "call you back shortly", "escalations:west").await;
    let stats = sim.stats();
    assert_eq!((stats.dial_legs, stats.bridged_calls), (0, 0), "{stats:?}");
    eventually(Duration::from_secs(10), "the callback text", || async {
        (sim.stats().messages_per_number.get("+14155550102") == Some(&1)).then_some(())
    })
    .await;
    sim.shutdown().await;
    app.stop().await;
}

async fn sequential_ringing_moves_on_after_a_missed_rep(backend: Backend) {
    let Setup { app, sim, .. } = setup(backend).await;
    team(&app, "west").await;
    ringing(&app, "west", "sequential").await;
    rep(&app, "ana", Some("west"), "+14155550201", "available").await;
    rep(&app, "bo", Some("west"), "+14155550202", "available").await;
    let never = flow::never_answers();
    sim.set_callee("+14155550201", never);
    let id = lead_in(&app, "flow-3", "+14155550103", Some("west")).await;

    let opp_entries = conversation_until(&app, &id, "conversation").await;
    let entries = call_flow_entries(&app, &opp_entries[0]).await;
    let events: Vec<&str> = entries.iter().filter_map(|d| d["event"].as_str()).collect();
    assert_eq!(
        events,
        [
            "reps_rung",
            "reps_missed",
            "reps_rung",
            "rep_answered",
            "conversation"
        ],
        "{entries:?}"
    );
    assert_eq!(entries[0]["reps"], json!(["ana"]));
    assert_eq!(entries[1]["dial_status"], "no-answer");
    assert_eq!(entries[2]["reps"], json!(["bo"]));
    assert_eq!(entries[4]["rep"], "bo");
    assert_eq!(sim.stats().dial_legs, 2);
    sim.shutdown().await;
    app.stop().await;
}

async fn simultaneous_ringing_connects_the_first_to_answer(backend: Backend) {
    let Setup { app, sim, .. } = setup(backend).await;
    team(&app, "west").await;
    ringing(&app, "west", "simultaneous").await;
    rep(&app, "ana", Some("west"), "+14155550201", "available").await;
    rep(&app, "bo", Some("west"), "+14155550202", "available").await;
    let slow = CalleeMix {
        answer: 1,
        busy: 0,
        no_answer: 0,
        failed: 0,
        ring_ms: 2_000,
        talk_ms: 50,
    };
    let fast = CalleeMix {
        ring_ms: 20,
        ..slow.clone()
    };
    sim.set_callee("+14155550201", slow);
    sim.set_callee("+14155550202", fast);
    let id = lead_in(&app, "flow-4", "+14155550104", Some("west")).await;

    let opp_entries = conversation_until(&app, &id, "conversation").await;
    let entries = call_flow_entries(&app, &opp_entries[0]).await;
    let rung = entries.iter().find(|d| d["event"] == "reps_rung").unwrap();
    assert_eq!(rung["reps"], json!(["ana", "bo"]), "{entries:?}");
    let conv = entries
        .iter()
        .find(|d| d["event"] == "conversation")
        .unwrap();
    assert_eq!(conv["rep"], "bo", "{entries:?}");
    let stats = sim.stats();
    assert_eq!((stats.dial_legs, stats.bridged_calls), (2, 1), "{stats:?}");
    sim.shutdown().await;
    app.stop().await;
}

/// The flow's webhooks refuse what Twilio did not sign, name what a signed request lacks, and
/// never connect anyone on a call they do not know.
async fn the_flow_webhooks_refuse_hostile_requests(backend: Backend) {
    let Setup { app, sim, .. } = setup(backend).await;
    let token = sim.auth_token().to_owned();
    let base = format!("{}/webhooks/twilio/{}/voice", app.base, app.tenant);
    let form = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };

    // Unsigned: 403 with a JSON reason, nothing read.
    let r = app
        .client
        .post(format!("{base}/answer?call=x&opp=y"))
        .form(&[("CallSid", "CA1")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "missing_signature");

    // Badly signed.
    let r = app
        .client
        .post(format!("{base}/whisper"))
        .header("X-Twilio-Signature", "bm90IGEgc2lnbmF0dXJl")
        .form(&[("CallSid", "CA1")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // Signed, for a call nobody knows: hang up, connect no one.
    let url = format!(
        "{base}/answer?call={}&opp={}",
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4()
    );
    let r = post_signed(&app.client, &token, &url, &form(&[("CallSid", "CA9")])).await;
    assert_eq!(r.status(), StatusCode::OK);
    let xml = r.text().await.unwrap();
    assert!(xml.contains("<Hangup/>") && !xml.contains("<Dial"), "{xml}");
    let url = format!("{base}/answer?call=%00&opp=%3Cscript%3E");
    let r = post_signed(&app.client, &token, &url, &form(&[("CallSid", "CA9")])).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("<Hangup/>"));

    // Signed, for a real call, missing or garbling the dial's status: 400 naming it.
    let id = lead_in(&app, "flow-5", "+14155550105", None).await;
    let call_id = eventually(Duration::from_secs(20), "a call", || async {
        common::first_call(&app.timeline(&id).await)
    })
    .await;
    // Signed, naming a real opportunity with a call it never had: the call is checked in the
    // same read as the opportunity, and nobody is connected.
    let url = format!("{base}/answer?call={}&opp={id}", uuid::Uuid::new_v4());
    let r = post_signed(&app.client, &token, &url, &form(&[("CallSid", "CA9")])).await;
    assert_eq!(r.status(), StatusCode::OK);
    let xml = r.text().await.unwrap();
    assert!(xml.contains("<Hangup/>") && !xml.contains("<Dial"), "{xml}");
    // A leg callback reads nothing but its own leg: one naming no call of ours is answered
    // and changes nothing; one naming no call at all is hung up on.
    let ended = form(&[("CallSid", "CA8"), ("CallStatus", "completed")]);
    let url = format!(
        "{base}/leg?call={}&opp={id}&rep=nobody",
        uuid::Uuid::new_v4()
    );
    let r = post_signed(&app.client, &token, &url, &ended).await;
    assert_eq!(r.status(), StatusCode::OK);
    let url = format!("{base}/leg?call=%3Cscript%3E&rep=nobody");
    let r = post_signed(&app.client, &token, &url, &ended).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("<Hangup/>"));
    let url = format!("{base}/leg?call={call_id}&opp={id}&rep=nobody");
    let r = post_signed(&app.client, &token, &url, &form(&[("CallSid", "CA8")])).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "missing_call_status");

    let url = format!("{base}/dial?call={call_id}&opp={id}&round=1");
    let r = post_signed(&app.client, &token, &url, &form(&[("CallSid", "CA9")])).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "missing_dial_call_status");
    let bad = form(&[("CallSid", "CA9"), ("DialCallStatus", "exploded")]);
    let r = post_signed(&app.client, &token, &url, &bad).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "bad_dial_call_status");
    // A NUL in a signed form is refused by name, not stored.
    let nul = form(&[("CallSid", "CA\0"), ("DialCallStatus", "completed")]);
    let r = post_signed(&app.client, &token, &url, &nul).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    sim.shutdown().await;
    app.stop().await;
}

both_backends!(
    an_answered_lead_is_bridged_to_the_available_rep,
    nobody_free_promises_a_callback_and_escalates,
);

mod sqlite_only {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sequential() {
        sequential_ringing_moves_on_after_a_missed_rep(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn simultaneous() {
        simultaneous_ringing_connects_the_first_to_answer(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hostile() {
        the_flow_webhooks_refuse_hostile_requests(Backend::Sqlite).await;
    }
}
