#![allow(clippy::unwrap_used)]
//! Hanging up what must stop (issue #14): a lead bridged to a rep by the carrier simulator,
//! then a STOP by text, a close, a pause with hang-up or a do-not-call entry; and a lead who
//! called in (ADR 0050), hung up on a STOP while bridged or while the reps still ring. The
//! simulator's call ends with our REST hang-up (`Status=completed`), its rep leg with it, and
//! the call's and the opportunity's timelines say why.

#[path = "common/access.rs"]
mod access;
mod common;
#[path = "common/flow.rs"]
mod flow;

use std::time::Duration;

use flow::Setup;

use access::team;
use common::{eventually, first_call, post_signed, Backend};
use neuronx_adapters::carrier_sim::CalleeMix;
use reqwest::StatusCode;
use serde_json::json;

const REP_PHONE: &str = "+14155550202";

/// The engine and the simulator (`flow::setup`) with one rep of team west.
async fn setup(backend: Backend) -> Setup {
    let s = flow::setup(backend).await;
    let (app, sim) = (&s.app, &s.sim);
    // One rep who always picks up and stays on the line for a minute: the bridge is live
    // until something hangs it up.
    team(app, "west").await;
    flow::rep(app, "bo", Some("west"), REP_PHONE, "available").await;
    let always = CalleeMix {
        answer: 1,
        busy: 0,
        no_answer: 0,
        failed: 0,
        talk_ms: 60_000,
        ..CalleeMix::default()
    };
    sim.set_callee(REP_PHONE, always);
    s
}

/// A lead whose call is bridged to the rep: the opportunity's id, its call's id and the
/// provider's sid of that call.
async fn bridged_lead(s: &Setup, phone: &str) -> (String, String, String) {
    let (app, sim) = (&s.app, &s.sim);
    let mut lead = common::lead(phone, 300);
    lead["contact"]["phone"] = json!(phone);
    lead["team"] = json!("west");
    let (status, body) = app.post("/v1/opportunities", lead).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    let call_id = eventually(Duration::from_secs(20), "a call placed", || async {
        first_call(&app.timeline(&id).await)
    })
    .await;
    eventually(Duration::from_secs(30), "the bridge", || async {
        (sim.stats().bridged_calls == 1).then_some(())
    })
    .await;
    let (code, call) = app.get(&format!("/v1/calls/{call_id}")).await;
    assert_eq!(code, StatusCode::OK, "{call}");
    let sid = call["provider_sid"].as_str().unwrap().to_owned();
    assert_eq!(sim.call_detail(&sid).unwrap().status, "in-progress");
    (id, call_id, sid)
}

/// The call ended at the carrier by our hang-up, its rep leg too, and both timelines say why.
async fn hung_up(s: &Setup, id: &str, call_id: &str, sid: &str, why: &str) {
    let (app, sim) = (&s.app, &s.sim);
    eventually(
        Duration::from_secs(20),
        "the carrier's call ended",
        || async {
            let detail = sim.call_detail(sid)?;
            (detail.status == "completed" && sim.stats().hangups >= 1).then_some(())
        },
    )
    .await;
    let stats = sim.stats();
    assert_eq!(stats.hangups, 1, "{stats:?}");
    assert_eq!(stats.duplicate_creates, 0, "{stats:?}");
    let detail = sim.call_detail(sid).unwrap();
    assert!(detail.talk_secs < 60, "the bridge ended early: {detail:?}");
    let call = eventually(
        Duration::from_secs(20),
        "the call's hang-up entry",
        || async {
            let (_, call) = app.get(&format!("/v1/calls/{call_id}")).await;
            let done = call["status"] == "completed";
            let said = call["timeline"].as_array()?.iter().any(|e| {
                e["kind"] == "hang_up" && e["reason"].as_str().unwrap_or("").contains(why)
            });
            (done && said).then_some(call)
        },
    )
    .await;
    assert_eq!(call["status"], "completed", "{call}");
    let timeline = app.timeline(id).await;
    let entry = timeline
        .iter()
        .find(|e| e["kind"] == "hang_up")
        .unwrap_or_else(|| panic!("no hang_up entry: {timeline:#?}"));
    assert_eq!(entry["data"]["call_id"], call_id, "{entry}");
    assert!(entry["reason"].as_str().unwrap().contains(why), "{entry}");
    // The rep is free again.
    eventually(Duration::from_secs(10), "the rep freed", || async {
        (flow::live_calls(app, "bo").await == Some(0)).then_some(())
    })
    .await;
}

/// The team's number a lead calls in on.
const WEST_NUMBER: &str = "+14155550300";

/// A signed STOP from `phone` to `to`.
async fn stop_by_text(s: &Setup, phone: &str, to: &str, sid: &str) {
    let url = format!(
        "{}/webhooks/twilio/{}/sms/inbound",
        s.app.base, s.app.tenant
    );
    let params: Vec<(String, String)> = vec![
        ("MessageSid".into(), sid.into()),
        ("From".into(), phone.into()),
        ("To".into(), to.into()),
        ("Body".into(), "STOP".into()),
    ];
    let resp = post_signed(&s.app.client, &s.auth_token, &url, &params).await;
    assert_eq!(resp.status(), StatusCode::OK);
}

/// A lead on an inbound call (ADR 0050), bridged to the rep, texts STOP: the call is hung up at
/// the carrier, the opportunity's timeline says why, and the dial's action that follows closes
/// the call on our side too.
async fn a_stop_by_text_hangs_up_a_lead_on_an_inbound_call(backend: Backend) {
    let s = setup(backend).await;
    let (app, sim) = (&s.app, &s.sim);
    flow::number(app, WEST_NUMBER, Some("west")).await;
    let lead = "+14155550104";
    let opp = flow::quiet_lead(app, "in-stop", lead, Some("west")).await;
    let id = opp["id"].as_str().unwrap();
    let sid = flow::call_in(&s, lead, WEST_NUMBER).await;
    eventually(Duration::from_secs(30), "the bridge", || async {
        (sim.stats().bridged_calls == 1).then_some(())
    })
    .await;
    stop_by_text(&s, lead, WEST_NUMBER, "SM0000000000000000000000000000a104").await;
    let call = eventually(Duration::from_secs(20), "the call ended", || async {
        sim.call_detail(&sid).filter(|c| c.status == "completed")
    })
    .await;
    assert_eq!(sim.stats().hangups, 1, "{:?}", sim.stats());
    let timeline = app.timeline(id).await;
    let entry = timeline
        .iter()
        .find(|e| e["kind"] == "hang_up")
        .unwrap_or_else(|| panic!("no hang_up entry: {timeline:#?}"));
    assert!(
        entry["reason"].as_str().unwrap().contains("opted out"),
        "{entry}"
    );
    let call_id = entry["data"]["call_id"].as_str().unwrap().to_owned();
    eventually(Duration::from_secs(20), "the call closed here", || async {
        let (_, ours) = app.get(&format!("/v1/calls/{call_id}")).await;
        (ours["status"] == "completed").then_some(())
    })
    .await;
    let leg = eventually(Duration::from_secs(20), "the rep's leg ended", || async {
        sim.call_detail(&sid)?
            .children
            .into_iter()
            .find(|c| c.status == "completed")
    })
    .await;
    assert!(
        leg.talk_secs < 60,
        "the bridge ended early: {leg:?} of {call:?}"
    );
    let (_, opp) = app.get(&format!("/v1/opportunities/{id}")).await;
    assert_eq!(opp["stage"], "do_not_contact", "{opp}");
    s.sim.shutdown().await;
    s.app.stop().await;
}

/// A lead on an inbound call texts STOP while the first rep still rings: the call is hung up,
/// and the dial's action that the carrier still sends rings nobody else (no rep is held for a
/// call that no longer exists).
async fn a_lead_gone_while_reps_ring_is_not_offered_to_more_reps(backend: Backend) {
    let s = setup(backend).await;
    let (app, sim) = (&s.app, &s.sim);
    let never = flow::never_answers();
    sim.set_callee(REP_PHONE, never.clone());
    flow::rep(app, "cy", Some("west"), "+14155550203", "available").await;
    sim.set_callee("+14155550203", never);
    flow::number(app, WEST_NUMBER, Some("west")).await;
    let lead = "+14155550105";
    flow::quiet_lead(app, "in-ring", lead, Some("west")).await;
    let sid = flow::call_in(&s, lead, WEST_NUMBER).await;
    eventually(Duration::from_secs(30), "a rep ringing", || async {
        (sim.stats().dial_legs == 1).then_some(())
    })
    .await;
    stop_by_text(&s, lead, WEST_NUMBER, "SM0000000000000000000000000000a105").await;
    let detail = eventually(Duration::from_secs(30), "the call's end", || async {
        sim.call_detail(&sid).filter(|c| c.flow_end.is_some())
    })
    .await;
    assert_eq!(
        detail.dials.len(),
        1,
        "one dial, no second round: {detail:?}"
    );
    assert_eq!(sim.stats().dial_legs, 1, "{:?}", sim.stats());
    eventually(Duration::from_secs(10), "every rep free", || async {
        let (_, reps) = app.get("/v1/reps").await;
        let list = reps
            .as_array()
            .or_else(|| reps["items"].as_array())?
            .clone();
        list.iter().all(|r| r["live_calls"] == 0).then_some(())
    })
    .await;
    s.sim.shutdown().await;
    s.app.stop().await;
}

async fn a_stop_by_text_hangs_up_the_bridged_call(backend: Backend) {
    let s = setup(backend).await;
    let phone = "+14155550111";
    let (id, call_id, sid) = bridged_lead(&s, phone).await;
    let url = format!(
        "{}/webhooks/twilio/{}/sms/inbound",
        s.app.base, s.app.tenant
    );
    let params: Vec<(String, String)> = vec![
        (
            "MessageSid".into(),
            "SM00000000000000000000000000000111".into(),
        ),
        ("From".into(), phone.into()),
        ("To".into(), "+14155550000".into()),
        ("Body".into(), "STOP".into()),
    ];
    let resp = post_signed(&s.app.client, &s.auth_token, &url, &params).await;
    assert_eq!(resp.status(), StatusCode::OK);
    hung_up(&s, &id, &call_id, &sid, "opted out").await;
    let (_, opp) = s.app.get(&format!("/v1/opportunities/{id}")).await;
    assert_eq!(opp["stage"], "do_not_contact", "{opp}");
    s.sim.shutdown().await;
    s.app.stop().await;
}

async fn a_close_hangs_up_the_bridged_call(backend: Backend) {
    let s = setup(backend).await;
    let (id, call_id, sid) = bridged_lead(&s, "+14155550112").await;
    let (code, body) = s
        .app
        .post(
            &format!("/v1/opportunities/{id}/stage"),
            json!({"stage": "lost", "reason": "went with a competitor"}),
        )
        .await;
    assert!(code.is_success(), "{code} {body}");
    hung_up(&s, &id, &call_id, &sid, "closed as lost").await;
    s.sim.shutdown().await;
    s.app.stop().await;
}

async fn a_pause_with_hang_up_hangs_up_the_bridged_call(backend: Backend) {
    let s = setup(backend).await;
    let (id, call_id, sid) = bridged_lead(&s, "+14155550113").await;
    let (code, body) = s
        .app
        .post(
            &format!("/v1/opportunities/{id}/pause"),
            json!({"reason": "wrong lead", "hang_up": true}),
        )
        .await;
    assert!(code.is_success(), "{code} {body}");
    hung_up(&s, &id, &call_id, &sid, "asked to hang up").await;
    let (_, opp) = s.app.get(&format!("/v1/opportunities/{id}")).await;
    assert_eq!(opp["paused"], true, "{opp}");
    // A wrong type is refused as bad input, never a server error.
    let (code, body) = s
        .app
        .post(
            &format!("/v1/opportunities/{id}/pause"),
            json!({"hang_up": "yes"}),
        )
        .await;
    assert!(code.is_client_error(), "{code} {body}");
    s.sim.shutdown().await;
    s.app.stop().await;
}

async fn a_do_not_call_entry_hangs_up_the_bridged_call(backend: Backend) {
    let s = setup(backend).await;
    let phone = "+14155550114";
    let (id, call_id, sid) = bridged_lead(&s, phone).await;
    let (code, body) = s.app.post("/v1/dnc", json!({"phone": phone})).await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    hung_up(&s, &id, &call_id, &sid, "do-not-call").await;
    s.sim.shutdown().await;
    s.app.stop().await;
}

both_backends!(
    a_stop_by_text_hangs_up_the_bridged_call,
    a_close_hangs_up_the_bridged_call,
    a_pause_with_hang_up_hangs_up_the_bridged_call,
    a_do_not_call_entry_hangs_up_the_bridged_call,
    a_stop_by_text_hangs_up_a_lead_on_an_inbound_call,
    a_lead_gone_while_reps_ring_is_not_offered_to_more_reps,
);
