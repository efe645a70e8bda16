#![allow(clippy::unwrap_used)]
//! Agent first by the playbook (issue #14, `call_flow.connect = "agent_first"`), through the
//! carrier simulator: a cadence call picks one free rep of the team, rings the rep first, and
//! on 1 dials the lead and connects them; a rep who passes hands the lead to the next attempt,
//! which rings the next rep; with nobody free the call dials the lead first.

#[path = "common/access.rs"]
mod access;
mod common;
#[path = "common/flow.rs"]
mod flow;

use std::time::Duration;

use access::team;
use common::{eventually, Backend, TestApp};
use flow::{call_events, rep, setup_with, Setup};
use reqwest::StatusCode;
use serde_json::{json, Value};

const ANA: &str = "+14155550201";
const BO: &str = "+14155550202";
const LEAD: &str = "+14155550109";

const PLAYBOOK: &str = r#"
name = "agent"
first_touch_sla_seconds = 600
response_sla_seconds = 600
max_attempts = 3
retry_delay_seconds = 600
ring_timeout_seconds = 10

[call_flow]
connect = "agent_first"
"#;

async fn agent_setup(backend: Backend) -> (Setup, tempfile::TempDir) {
    let playbooks = tempfile::tempdir().unwrap();
    std::fs::write(playbooks.path().join("agent.toml"), PLAYBOOK).unwrap();
    let dir = playbooks.path().display().to_string();
    let s = setup_with(backend, |s| {
        s.playbooks.dir = dir;
        s.playbooks.default = "agent".into();
    })
    .await;
    team(&s.app, "west").await;
    (s, playbooks)
}

async fn lead(app: &TestApp, external_id: &str) -> String {
    let mut lead = common::lead(external_id, 600);
    lead["contact"]["phone"] = json!(LEAD);
    lead["team"] = json!("west");
    let (status, body) = app.post("/v1/opportunities", lead).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

/// The `call_placed` entries' call ids, oldest first.
async fn calls(app: &TestApp, id: &str) -> Vec<String> {
    app.timeline(id)
        .await
        .iter()
        .filter(|e| e["kind"] == "call_placed")
        .filter_map(|e| e["data"]["call_id"].as_str().map(str::to_owned))
        .collect()
}

async fn conversation_of(app: &TestApp, call_id: &str) -> Vec<Value> {
    eventually(Duration::from_secs(30), "the conversation", || async {
        let events = call_events(app, call_id).await;
        events
            .iter()
            .any(|d| d["event"] == "conversation")
            .then_some(events)
    })
    .await
}

async fn a_cadence_call_rings_a_free_rep_first(backend: Backend) {
    let (Setup { app, sim, .. }, _playbooks) = agent_setup(backend).await;
    rep(&app, "ana", Some("west"), ANA, "available").await;
    sim.set_digits(ANA, &["1"]);
    let id = lead(&app, "af-1").await;
    let call_id = eventually(Duration::from_secs(10), "the first call", || async {
        calls(&app, &id).await.into_iter().next()
    })
    .await;
    let events = conversation_of(&app, &call_id).await;
    let names: Vec<&str> = events.iter().filter_map(|d| d["event"].as_str()).collect();
    assert_eq!(
        names,
        ["rep_picked", "rep_answered", "conversation"],
        "{events:?}"
    );
    assert_eq!(events[0]["rep"], "ana");
    assert_eq!(events[2]["rep"], "ana");
    let (_, detail) = app.get(&format!("/v1/calls/{call_id}")).await;
    assert_eq!(detail["agent_first"], "ana", "{detail}");
    // The provider's call rang ana; the lead was one leg dialled from it.
    let stats = sim.stats();
    assert_eq!(
        stats.calls_per_number.get(ANA).copied(),
        Some(1),
        "{stats:?}"
    );
    assert_eq!(stats.bridged_calls, 1, "{stats:?}");
    assert_eq!(stats.dial_legs, 1, "{stats:?}");
    eventually(Duration::from_secs(30), "the lead engaged", || async {
        let (_, opp) = app.get(&format!("/v1/opportunities/{id}")).await;
        (opp["stage"] == "engaged").then_some(())
    })
    .await;
    sim.shutdown().await;
    app.stop().await;
}

async fn a_rep_who_passes_hands_the_lead_to_the_next(backend: Backend) {
    let (Setup { app, sim, .. }, _playbooks) = agent_setup(backend).await;
    rep(&app, "ana", Some("west"), ANA, "available").await;
    rep(&app, "bo", Some("west"), BO, "available").await;
    // Whoever is rung first passes; the other takes it.
    sim.set_digits(ANA, &["2"]);
    sim.set_digits(BO, &["2"]);
    let id = lead(&app, "af-2").await;
    let first = eventually(Duration::from_secs(10), "the first call", || async {
        calls(&app, &id).await.into_iter().next()
    })
    .await;
    let picked = eventually(Duration::from_secs(10), "the first rep", || async {
        call_events(&app, &first)
            .await
            .into_iter()
            .find(|d| d["event"] == "rep_picked")
    })
    .await;
    let (first_rep, next_phone, next_rep) = if picked["rep"] == "ana" {
        ("ana", BO, "bo")
    } else {
        ("bo", ANA, "ana")
    };
    sim.set_digits(next_phone, &["1"]);
    // The next attempt, a few seconds after the pass, rings the other rep.
    let second = eventually(Duration::from_secs(30), "the second call", || async {
        calls(&app, &id).await.into_iter().nth(1)
    })
    .await;
    let events = conversation_of(&app, &second).await;
    assert_eq!(events[0]["event"], "rep_picked", "{events:?}");
    assert_eq!(events[0]["rep"], next_rep, "{events:?}");
    let outcome = app
        .timeline(&id)
        .await
        .into_iter()
        .find(|e| e["kind"] == "call_outcome")
        .unwrap();
    assert_eq!(outcome["data"]["result"], "rep_missed", "{outcome}");
    assert_ne!(first_rep, next_rep);
    let stats = sim.stats();
    assert_eq!(
        stats.calls_per_number.get(ANA).copied(),
        Some(1),
        "{stats:?}"
    );
    assert_eq!(
        stats.calls_per_number.get(BO).copied(),
        Some(1),
        "{stats:?}"
    );
    assert_eq!(stats.bridged_calls, 1, "{stats:?}");
    sim.shutdown().await;
    app.stop().await;
}

async fn with_nobody_free_the_lead_is_dialled_first(backend: Backend) {
    let (Setup { app, sim, .. }, _playbooks) = agent_setup(backend).await;
    rep(&app, "ana", Some("west"), ANA, "away").await;
    let id = lead(&app, "af-3").await;
    let call_id = eventually(Duration::from_secs(10), "the first call", || async {
        calls(&app, &id).await.into_iter().next()
    })
    .await;
    let picked = eventually(Duration::from_secs(10), "the pick", || async {
        call_events(&app, &call_id)
            .await
            .into_iter()
            .find(|d| d["event"] == "rep_picked")
    })
    .await;
    assert_eq!(picked["rep"], Value::Null, "{picked}");
    eventually(Duration::from_secs(30), "the lead dialled", || async {
        sim.stats()
            .calls_per_number
            .get(LEAD)
            .copied()
            .filter(|n| *n == 1)
    })
    .await;
    assert_eq!(sim.stats().calls_per_number.get(ANA), None);
    let (_, detail) = app.get(&format!("/v1/calls/{call_id}")).await;
    assert_eq!(detail["agent_first"], Value::Null, "{detail}");
    sim.shutdown().await;
    app.stop().await;
}

both_backends!(
    a_cadence_call_rings_a_free_rep_first,
    a_rep_who_passes_hands_the_lead_to_the_next,
    with_nobody_free_the_lead_is_dialled_first,
);
