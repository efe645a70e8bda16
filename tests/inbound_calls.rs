#![allow(clippy::unwrap_used)]
//! Inbound calls routed by the number they reached (issue #14, ADR 0050): a lead calls one of
//! the tenant's numbers through the carrier simulator (`POST /sim/inbound-calls`), which asks
//! `voice/inbound` for TwiML, signed, and runs it: the assignee or the number's team is rung
//! with a whisper, the dial's result lands on the opportunity's timeline, and when nobody can
//! take the caller they hear the callback promise and the opportunity is escalated. Plus the
//! route under hostile input: nothing is written unless the request is Twilio's and names a
//! number of ours.

#[path = "common/access.rs"]
mod access;
mod common;
#[path = "common/flow.rs"]
mod flow;

use std::time::Duration;

use access::team;
use common::{eventually, post_signed, Backend};
use flow::{call_in, conversation_until, finished, number, quiet_lead, rep, rows, setup};
use neuronx_adapters::carrier_sim::{self, CalleeMix};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// The number of team `west` and the number of team `east` in these tests' pool.
const WEST_NUMBER: &str = "+14155550300";
const EAST_NUMBER: &str = "+12125550300";
const SID: &str = "CA0123456789abcdef0123456789abcdef";

/// `number` (a rep's phone) picks up every time it rings.
fn always_answers(sim: &carrier_sim::SimHandle, number: &str) {
    let mix = CalleeMix {
        answer: 1,
        busy: 0,
        no_answer: 0,
        failed: 0,
        ..CalleeMix::default()
    };
    sim.set_callee(number, mix);
}

async fn a_known_caller_reaches_their_assignee_and_is_engaged(backend: Backend) {
    let s = setup(backend).await;
    let (app, sim) = (&s.app, &s.sim);
    team(app, "west").await;
    rep(app, "ana", Some("west"), "+14155550201", "available").await;
    rep(app, "bo", Some("west"), "+14155550202", "available").await;
    always_answers(sim, "+14155550201");
    always_answers(sim, "+14155550202");
    number(app, WEST_NUMBER, Some("west")).await;
    let opp = quiet_lead(app, "in-1", "+14155550101", Some("west")).await;
    let id = opp["id"].as_str().unwrap();
    let assignee = opp["assignee"].as_str().unwrap().to_owned();
    assert!(["ana", "bo"].contains(&assignee.as_str()), "{opp}");

    let sid = call_in(&s, "+14155550101", WEST_NUMBER).await;
    let entries = conversation_until(app, id, "conversation").await;
    let conv = entries
        .iter()
        .find(|d| d["event"] == "conversation")
        .unwrap();
    assert_eq!(
        conv["rep"],
        json!(assignee),
        "the assignee first: {entries:?}"
    );
    assert!(conv["talk_seconds"].as_u64().is_some(), "{conv}");
    // The call's own record: the caller, the rep rung, who picked up, the conversation.
    let call = flow::call_events(app, conv["call_id"].as_str().unwrap()).await;
    let events: Vec<&str> = call.iter().filter_map(|d| d["event"].as_str()).collect();
    assert_eq!(
        events,
        ["inbound", "reps_rung", "rep_answered", "conversation"],
        "{call:?}"
    );
    assert_eq!(call[0]["to"], WEST_NUMBER);
    assert_eq!(call[1]["reps"], json!([assignee]));
    let (_, opp) = app.get(&format!("/v1/opportunities/{id}")).await;
    assert_eq!(opp["stage"], "engaged", "{opp}");
    assert_ne!(opp["escalated"], true, "{opp}");

    let detail = finished(sim, &sid).await;
    assert_eq!(detail.direction, "inbound");
    assert!(
        detail
            .said
            .iter()
            .any(|t| t.starts_with("Thanks for calling")),
        "{detail:?}"
    );
    let leg = &detail.children[0];
    assert!(
        leg.said.iter().any(|t| t.contains("Ana Lima")),
        "the whisper names the lead: {leg:?}"
    );
    let stats = sim.stats();
    assert_eq!(stats.inbound_calls, 1, "{stats:?}");
    assert_eq!(stats.bridged_calls, 1, "{stats:?}");
    assert_eq!(stats.calls, 0, "nothing dialled to the lead: {stats:?}");
    assert_eq!(stats.twiml_errors, 0, "{stats:?}");
    s.sim.shutdown().await;
    s.app.stop().await;
}

async fn a_teams_number_rings_that_teams_reps_only(backend: Backend) {
    let s = setup(backend).await;
    let (app, sim) = (&s.app, &s.sim);
    team(app, "west").await;
    team(app, "east").await;
    rep(app, "ana", Some("west"), "+14155550201", "available").await;
    rep(app, "cy", Some("east"), "+12125550201", "available").await;
    always_answers(sim, "+12125550201");
    number(app, WEST_NUMBER, Some("west")).await;
    number(app, EAST_NUMBER, Some("east")).await;

    // Nobody has this caller's number: the east team's reps hear "an unknown caller".
    let sid = call_in(&s, "+12125550199", EAST_NUMBER).await;
    let detail = finished(sim, &sid).await;
    let rung: Vec<&str> = detail.children.iter().map(|c| c.to.as_str()).collect();
    assert_eq!(rung, ["+12125550201"], "{detail:?}");
    assert!(
        detail.children[0]
            .said
            .iter()
            .any(|t| t.contains("an unknown caller")),
        "{detail:?}"
    );
    assert_eq!(sim.stats().bridged_calls, 1);
    // Counted, not written: no opportunity holds it.
    let metrics = app.client.get(format!("{}/metrics", app.base)).send().await;
    let text = metrics.unwrap().text().await.unwrap();
    assert!(
        text.contains("route=\"voice_inbound\"") && text.contains("outcome=\"unknown_caller\""),
        "{text}"
    );
    assert_eq!(
        rows(
            app,
            "SELECT CAST(COUNT(*) AS TEXT) FROM actors WHERE kind = 'call'"
        )
        .await,
        "0"
    );

    // A known east lead calling the east number: east's reps (the assignee is one). Their
    // number is on the do-not-call list, which stops our calls, not theirs.
    let opp = quiet_lead(app, "in-2", "+12125550102", Some("east")).await;
    let id = opp["id"].as_str().unwrap();
    let (code, body) = app.post("/v1/dnc", json!({"phone": "+12125550102"})).await;
    assert!(code.is_success(), "{code} {body}");
    eventually(Duration::from_secs(20), "the do-not-call entry", || async {
        let t = app.timeline(id).await;
        t.iter()
            .any(|e| e["kind"] == "compliance_blocked" && e["data"]["source"] == "dnc_list")
            .then_some(())
    })
    .await;
    call_in(&s, "+12125550102", EAST_NUMBER).await;
    let entries = conversation_until(app, id, "conversation").await;
    let conv = entries
        .iter()
        .find(|d| d["event"] == "conversation")
        .unwrap();
    assert_eq!(conv["rep"], "cy", "{entries:?}");
    s.sim.shutdown().await;
    s.app.stop().await;
}

async fn nobody_free_promises_a_callback_and_escalates(backend: Backend) {
    let s = setup(backend).await;
    let (app, sim) = (&s.app, &s.sim);
    team(app, "west").await;
    rep(app, "ana", Some("west"), "+14155550201", "offline").await;
    number(app, WEST_NUMBER, Some("west")).await;
    let opp = quiet_lead(app, "in-3", "+14155550103", Some("west")).await;
    let id = opp["id"].as_str().unwrap();

    let sid = call_in(&s, "+14155550103", WEST_NUMBER).await;
    let detail = finished(sim, &sid).await;
    assert!(detail.dials.is_empty(), "nobody to ring: {detail:?}");
    assert!(
        detail
            .said
            .iter()
            .any(|t| t.contains("someone will call you back")),
        "{detail:?}"
    );
    let entries = conversation_until(app, id, "unattended").await;
    let un = entries.iter().find(|d| d["event"] == "unattended").unwrap();
    assert_eq!(un["reason"], "no_rep_available");
    assert_eq!(un["inbound"], true);
    let texts = flow::escalated_after_text(app, id, "thanks for calling", "escalations:west").await;
    // The playbook's first text, then the callback promise.
    eventually(Duration::from_secs(10), "the callback text", || async {
        (flow::texts_to(sim, "+14155550103") as usize == texts.len()).then_some(())
    })
    .await;
    assert_eq!(sim.stats().calls, 0, "the lead is not dialled");
    s.sim.shutdown().await;
    s.app.stop().await;
}

/// A number that is not the tenant's is told so, and nothing is written; unsigned or badly
/// signed requests are refused before anything is read; hostile fields are refused by name.
async fn hostile_requests_write_nothing(backend: Backend) {
    let s = setup(backend).await;
    let (app, sim) = (&s.app, &s.sim);
    team(app, "west").await;
    rep(app, "ana", Some("west"), "+14155550201", "available").await;
    number(app, WEST_NUMBER, Some("west")).await;
    let opp = quiet_lead(app, "in-4", "+14155550104", Some("west")).await;
    let id = opp["id"].as_str().unwrap();
    let before = app.timeline(id).await.len();
    let token = sim.auth_token().to_owned();
    let url = format!("{}/webhooks/twilio/{}/voice/inbound", app.base, app.tenant);
    let form = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let call = |from: &str, to: &str| flow::inbound_form(SID, from, to);

    // A number that is none of ours: a sentence and a hang-up, 200 as Twilio expects.
    let r = post_signed(
        &app.client,
        &token,
        &url,
        &call("+14155550104", "+14155550999"),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let xml = r.text().await.unwrap();
    assert!(
        xml.contains("<Say>") && xml.contains("<Hangup/>") && !xml.contains("<Dial"),
        "{xml}"
    );

    // Unsigned, and badly signed: 403 JSON.
    let r = app
        .client
        .post(&url)
        .form(&call("+14155550104", WEST_NUMBER))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "missing_signature");
    let r = post_signed(
        &app.client,
        "not-the-token",
        &url,
        &call("+14155550104", WEST_NUMBER),
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "bad_signature");

    // Signed, but missing or garbling a field: 400 naming it.
    type Case = (Vec<(String, String)>, &'static str, &'static str);
    let cases: [Case; 6] = [
        (
            form(&[("CallSid", SID), ("To", WEST_NUMBER)]),
            "missing_from",
            "From",
        ),
        (
            form(&[("CallSid", SID), ("From", "+14155550104")]),
            "missing_to",
            "To",
        ),
        (call("+14155550104", "garbage"), "bad_to", "To"),
        (call("<script>", WEST_NUMBER), "bad_from", "From"),
        (call("+1415", WEST_NUMBER), "bad_from", "From"),
        (
            form(&[
                ("CallSid", "CA1"),
                ("From", "+14155550104"),
                ("To", WEST_NUMBER),
            ]),
            "bad_call_sid",
            "CallSid",
        ),
    ];
    for (params, error, field) in cases {
        let r = post_signed(&app.client, &token, &url, &params).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{params:?}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], error, "{params:?}");
        assert_eq!(body["field"], field, "{params:?}");
    }
    let nul = call("+14155550104\0", WEST_NUMBER);
    let r = post_signed(&app.client, &token, &url, &nul).await;
    assert!(r.status().is_client_error(), "{}", r.status());
    let r = app
        .client
        .post(format!(
            "{}/webhooks/twilio/not-a-tenant/voice/inbound",
            app.base
        ))
        .form(&call("+14155550104", WEST_NUMBER))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // None of it wrote anything, rang anyone or touched the lead.
    assert_eq!(
        rows(
            app,
            "SELECT CAST(COUNT(*) AS TEXT) FROM actors WHERE kind = 'call'"
        )
        .await,
        "0"
    );
    assert_eq!(
        rows(app, "SELECT CAST(COUNT(*) AS TEXT) FROM rep_legs").await,
        "0"
    );
    assert_eq!(app.timeline(id).await.len(), before);
    assert_eq!(sim.stats().dial_legs, 0);
    s.sim.shutdown().await;
    s.app.stop().await;
}

both_backends!(a_known_caller_reaches_their_assignee_and_is_engaged);

mod sqlite_only {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn team_number() {
        a_teams_number_rings_that_teams_reps_only(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn nobody_free() {
        nobody_free_promises_a_callback_and_escalates(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hostile() {
        hostile_requests_write_nothing(Backend::Sqlite).await;
    }
}
