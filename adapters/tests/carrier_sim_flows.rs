#![allow(clippy::unwrap_used)]
//! The carrier simulator playing TwiML call flows over real HTTP both ways: our Twilio client
//! creates calls with a `Url`, and a small axum app of the test's own (`flows_support`) serves the
//! TwiML, receives every status callback and checks each request's `X-Twilio-Signature` with the
//! crate's own validator.

mod flows_support;

use axum::http::Method;
use neuronx_adapters::carrier_sim::{
    CallDetail, CallOutcome, CalleeMix, DialCallStatus, DocPurpose, FlowEnd, HangupSide, VerbKind,
};
use neuronx_adapters::twilio::HangupStatus;

use flows_support::{
    client, config, count, eventually, finished, ringing, start, stats_when, url_call, App, Req,
    LEAD, OURS, SID,
};

const AGENT_A: &str = "+15557000001";
const AGENT_B: &str = "+15557000002";

// ---------------------------------------------------------------------------------------------
// Flows

#[tokio::test]
async fn simultaneous_dial_bridges_the_first_leg_that_passes_its_whisper() {
    let app = App::start().await;
    let sim = start(config(CallOutcome::Human)).await;
    sim.set_callee(AGENT_A, ringing(20, 50));
    sim.set_callee(AGENT_B, CalleeMix::never_answer());
    app.twiml(
        "/answer",
        &format!(
            r#"<Response>
                 <Say voice="Polly.Joanna">Connecting you now</Say>
                 <Dial action="/dial-done" timeout="100" callerId="{OURS}">
                   <Number url="/whisper" statusCallback="/leg-status"
                           statusCallbackEvent="initiated ringing answered completed">{AGENT_A}</Number>
                   <Number url="/whisper" statusCallback="/leg-status">{AGENT_B}</Number>
                 </Dial>
               </Response>"#
        ),
    );
    app.twiml("/whisper", "<Response><Say>New lead</Say></Response>");
    app.twiml("/dial-done", "<Response><Hangup/></Response>");

    let sid = client(&sim).create_call(&url_call(&app)).await.unwrap().sid;
    let detail = finished(&sim, &sid).await;
    let action = app.wait_for("/dial-done", "CallSid", &sid, 1).await;

    // The TwiML fetch at answer: Twilio's request parameters, signed.
    let fetch = &app.requests("/answer")[0];
    assert_eq!(fetch.method, Method::POST);
    for (k, v) in [
        ("AccountSid", SID),
        ("CallSid", sid.as_str()),
        ("From", OURS),
        ("To", LEAD),
        ("CallStatus", "in-progress"),
        ("Direction", "outbound-api"),
        ("ApiVersion", "2010-04-01"),
    ] {
        assert_eq!(fetch.get(k), Some(v), "{k} in {fetch:?}");
    }
    assert_eq!(fetch.get("AnsweredBy"), None);

    // Agent A answered first; its whisper ran on its own leg and ended normally.
    assert_eq!(detail.children.len(), 2);
    let a = detail.children.iter().find(|c| c.to == AGENT_A).unwrap();
    let b = detail.children.iter().find(|c| c.to == AGENT_B).unwrap();
    let whisper = &app.requests("/whisper");
    assert_eq!(whisper.len(), 1, "only the answering leg is whispered to");
    for (k, v) in [
        ("CallSid", a.sid.as_str()),
        ("ParentCallSid", sid.as_str()),
        ("From", OURS),
        ("To", AGENT_A),
        ("CallStatus", "in-progress"),
        ("Direction", "outbound-dial"),
    ] {
        assert_eq!(whisper[0].get(k), Some(v), "{k} in {:?}", whisper[0]);
    }
    assert_eq!(a.parent_call_sid.as_deref(), Some(sid.as_str()));
    assert_eq!(a.direction, "outbound-dial");
    assert_eq!(a.status, "completed");
    assert_eq!(a.verbs, [VerbKind::Say]);
    assert_eq!(a.flow_end, Some(FlowEnd::Exhausted));
    assert_eq!(a.bridged_to.as_deref(), Some(LEAD));
    assert_eq!(b.status, "canceled", "the losing leg was ringing");

    // The Dial action: completed, bridged, with the winner and its duration.
    let action = &action[0];
    assert_eq!(action.get("DialCallStatus"), Some("completed"));
    assert_eq!(action.get("DialBridged"), Some("true"));
    assert_eq!(action.get("DialCallSid"), Some(a.sid.as_str()));
    let dial_secs: u64 = action.get("DialCallDuration").unwrap().parse().unwrap();
    assert!(dial_secs >= 1);
    // The lead hung up after talking (the default), so the action saw a completed parent.
    assert_eq!(action.get("CallStatus"), Some("completed"));

    assert_eq!(detail.bridged_to.as_deref(), Some(AGENT_A));
    assert!(detail.talk_secs >= 1);
    assert_eq!(detail.verbs, [VerbKind::Say, VerbKind::Dial]);
    let purposes: Vec<DocPurpose> = detail.documents.iter().map(|d| d.purpose).collect();
    assert_eq!(purposes, [DocPurpose::Url, DocPurpose::DialAction]);
    assert_eq!(detail.dials.len(), 1);
    assert_eq!(detail.dials[0].dial_call_status, DialCallStatus::Completed);
    assert!(detail.dials[0].bridged);

    // The parent's own callbacks still run to `completed`, whose duration covers the flow.
    let status = app.wait_for("/status", "CallStatus", "completed", 1).await;
    let secs: u64 = status[0].get("CallDuration").unwrap().parse().unwrap();
    assert!(secs >= detail.talk_secs, "{secs} < {}", detail.talk_secs);

    let stats = stats_when(&sim, "the flow's counters", |s| {
        count(&s.dial_leg_outcomes, "canceled") == 1
    })
    .await;
    assert_eq!(stats.twiml_fetches, 3);
    assert_eq!(stats.twiml_errors, 0);
    assert_eq!(count(&stats.verbs_executed, "say"), 2);
    assert_eq!(count(&stats.verbs_executed, "dial"), 1);
    assert_eq!(stats.dial_legs, 2);
    assert_eq!(stats.whispers, 1);
    assert_eq!(stats.bridged_calls, 1);
    assert!(stats.talk_seconds >= 1);
    assert_eq!(count(&stats.dial_outcomes, "completed"), 1);
    assert_eq!(count(&stats.dial_leg_outcomes, "completed"), 1);
    assert_eq!(stats.calls, 1, "legs are not counted as created calls");
    assert_eq!(count(&stats.call_outcomes, "completed"), 1);
    assert_eq!(stats.voicemail_plays, 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn child_status_callbacks_arrive_signed_with_the_parent_sid() {
    let app = App::start().await;
    let sim = start(config(CallOutcome::Human)).await;
    sim.set_callee(AGENT_A, ringing(20, 50));
    sim.set_callee(AGENT_B, CalleeMix::always_busy());
    app.twiml(
        "/answer",
        &format!(
            r#"<Response><Dial action="/dial-done" sequential="true">
                 <Number statusCallback="/leg-status"
                         statusCallbackEvent="initiated ringing answered completed">{AGENT_B}</Number>
                 <Number statusCallback="/leg-status"
                         statusCallbackEvent="initiated ringing answered completed"
                         statusCallbackMethod="GET">{AGENT_A}</Number>
               </Dial></Response>"#
        ),
    );
    let sid = client(&sim).create_call(&url_call(&app)).await.unwrap().sid;
    let detail = finished(&sim, &sid).await;
    let busy = &detail.children[0];
    let answered = &detail.children[1];
    assert_eq!((busy.to.as_str(), busy.status.as_str()), (AGENT_B, "busy"));
    assert_eq!(answered.to, AGENT_A);

    // The busy leg: initiated then busy, no ringing.
    let hooks = app.wait_for("/leg-status", "CallSid", &busy.sid, 2).await;
    let mut hooks = hooks;
    hooks.sort_by_key(Req::seq);
    let statuses: Vec<&str> = hooks.iter().map(|h| h.get("CallStatus").unwrap()).collect();
    assert_eq!(statuses, ["initiated", "busy"]);

    // The answered leg, reported by GET (signed over its URL): every event, in sequence.
    let mut hooks = app
        .wait_for("/leg-status", "CallSid", &answered.sid, 4)
        .await;
    hooks.sort_by_key(Req::seq);
    let seqs: Vec<u64> = hooks.iter().map(Req::seq).collect();
    assert_eq!(seqs, [0, 1, 2, 3]);
    let statuses: Vec<&str> = hooks.iter().map(|h| h.get("CallStatus").unwrap()).collect();
    assert_eq!(
        statuses,
        ["initiated", "ringing", "in-progress", "completed"]
    );
    for h in &hooks {
        assert_eq!(h.method, Method::GET);
        assert_eq!(h.get("ParentCallSid"), Some(sid.as_str()));
        assert_eq!(h.get("Direction"), Some("outbound-dial"));
        assert_eq!(h.get("CallbackSource"), Some("call-progress-events"));
        assert_eq!(h.get("To"), Some(AGENT_A));
        assert_eq!(h.get("From"), Some(OURS));
        assert!(h.get("Timestamp").unwrap().ends_with("+0000"));
        let terminal = h.get("CallStatus") == Some("completed");
        assert_eq!(h.get("CallDuration").is_some(), terminal, "{h:?}");
    }
    let action = app.wait_for("/dial-done", "CallSid", &sid, 1).await;
    assert_eq!(action[0].get("DialCallStatus"), Some("completed"));
    assert_eq!(action[0].get("DialCallSid"), Some(answered.sid.as_str()));
    sim.shutdown().await;
}

#[tokio::test]
async fn no_answer_goes_to_the_action_which_dials_the_next_number() {
    let app = App::start().await;
    let sim = start(config(CallOutcome::Human)).await;
    // Through the admin endpoint this time (partial JSON: the rest keeps its defaults).
    let http = reqwest::Client::new();
    for (number, mix) in [
        (
            AGENT_A,
            r#"{"answer": 0, "busy": 0, "failed": 0, "no_answer": 1}"#,
        ),
        (
            AGENT_B,
            r#"{"answer": 1, "busy": 0, "failed": 0, "no_answer": 0, "ring_ms": 20, "talk_ms": 50}"#,
        ),
    ] {
        let put = http
            .put(format!("{}/sim/callees/{number}", sim.base_url))
            .header("content-type", "application/json")
            .body(mix)
            .send()
            .await
            .unwrap();
        assert_eq!(put.status(), 204);
    }
    app.twiml(
        "/answer",
        &format!(r#"<Response><Dial action="/rep-1" timeout="5"><Number>{AGENT_A}</Number></Dial></Response>"#),
    );
    app.twiml(
        "/rep-1",
        &format!(r#"<Response><Dial action="/rep-2"><Number>{AGENT_B}</Number></Dial></Response>"#),
    );
    app.twiml("/rep-2", "<Response><Hangup/></Response>");
    let sid = client(&sim).create_call(&url_call(&app)).await.unwrap().sid;
    let detail = finished(&sim, &sid).await;

    let first = &app.wait_for("/rep-1", "CallSid", &sid, 1).await[0];
    assert_eq!(first.get("DialCallStatus"), Some("no-answer"));
    assert_eq!(first.get("DialBridged"), Some("false"));
    assert_eq!(first.get("DialCallDuration"), None);
    assert_eq!(first.get("CallStatus"), Some("in-progress"));
    assert_eq!(
        first.get("DialCallSid"),
        Some(detail.children[0].sid.as_str())
    );
    let second = &app.wait_for("/rep-2", "CallSid", &sid, 1).await[0];
    assert_eq!(second.get("DialCallStatus"), Some("completed"));
    assert_eq!(second.get("DialBridged"), Some("true"));
    assert_eq!(
        second.get("DialCallSid"),
        Some(detail.children[1].sid.as_str())
    );

    assert_eq!(detail.children[0].status, "no-answer");
    assert_eq!(detail.children[1].status, "completed");
    assert_eq!(detail.bridged_to.as_deref(), Some(AGENT_B));
    let outcomes: Vec<DialCallStatus> = detail.dials.iter().map(|d| d.dial_call_status).collect();
    assert_eq!(
        outcomes,
        [DialCallStatus::NoAnswer, DialCallStatus::Completed]
    );
    let served: CallDetail = http
        .get(format!("{}/sim/calls/{sid}", sim.base_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(served, detail);
    let stats = sim.stats();
    assert_eq!(count(&stats.dial_outcomes, "no-answer"), 1);
    assert_eq!(count(&stats.dial_outcomes, "completed"), 1);
    assert_eq!(stats.bridged_calls, 1);
    assert_eq!(stats.twiml_fetches, 3);
    sim.shutdown().await;
}

#[tokio::test]
async fn when_the_callee_hangs_up_the_lead_goes_on_with_the_action() {
    let app = App::start().await;
    let mut cfg = config(CallOutcome::Human);
    cfg.flow.bridge_hangup = HangupSide::Callee;
    let sim = start(cfg).await;
    sim.set_callee(AGENT_A, ringing(20, 50));
    app.twiml(
        "/answer",
        &format!(
            r#"<Response><Dial action="/dial-done" record="record-from-answer">{AGENT_A}</Dial><Say>unreachable</Say></Response>"#
        ),
    );
    app.twiml(
        "/dial-done",
        r#"<Response><Say>Thanks for your time</Say><Redirect method="GET">/bye</Redirect></Response>"#,
    );
    app.twiml("/bye", "<Response><Hangup/></Response>");
    let sid = client(&sim).create_call(&url_call(&app)).await.unwrap().sid;
    let detail = finished(&sim, &sid).await;
    let action = &app.wait_for("/dial-done", "CallSid", &sid, 1).await[0];
    assert_eq!(action.get("CallStatus"), Some("in-progress"));
    assert_eq!(action.get("DialBridged"), Some("true"));
    assert!(action
        .get("RecordingUrl")
        .unwrap()
        .contains("/Recordings/RE"));
    let bye = &app.wait_for("/bye", "CallSid", &sid, 1).await[0];
    assert_eq!(bye.method, Method::GET);
    assert_eq!(
        detail.verbs,
        [
            VerbKind::Dial,
            VerbKind::Say,
            VerbKind::Redirect,
            VerbKind::Hangup
        ]
    );
    assert_eq!(detail.flow_end, Some(FlowEnd::Hangup));
    assert_eq!(detail.children[0].status, "completed");
    sim.shutdown().await;
}

#[tokio::test]
async fn whisper_hangup_declines_and_a_pressed_one_bridges() {
    let app = App::start().await;
    let sim = start(config(CallOutcome::Human)).await;
    sim.set_callee(AGENT_A, ringing(20, 50));
    app.twiml(
        "/answer",
        &format!(
            r#"<Response><Dial action="/dial-done"><Number url="/screen">{AGENT_A}</Number></Dial></Response>"#
        ),
    );
    // The press-1 screen: without input the Gather falls through to <Hangup/>.
    app.twiml(
        "/screen",
        r#"<Response>
             <Gather numDigits="1" timeout="3" action="/accept"><Say>New lead, press 1</Say></Gather>
             <Hangup/>
           </Response>"#,
    );
    app.twiml("/accept", "<Response/>");
    app.twiml(
        "/dial-done",
        "<Response><Say>Sorry, nobody is free</Say><Hangup/></Response>",
    );

    // Nobody presses anything: declined, not bridged; the parent goes on with the action.
    let twilio = client(&sim);
    let sid = twilio.create_call(&url_call(&app)).await.unwrap().sid;
    let detail = finished(&sim, &sid).await;
    let action = &app.wait_for("/dial-done", "CallSid", &sid, 1).await[0];
    assert_eq!(action.get("DialBridged"), Some("false"));
    assert_eq!(action.get("DialCallStatus"), Some("completed"));
    assert_eq!(action.get("CallStatus"), Some("in-progress"));
    assert!(app.requests("/accept").is_empty());
    let leg = &detail.children[0];
    assert_eq!(leg.flow_end, Some(FlowEnd::Hangup));
    assert_eq!(
        leg.verbs,
        [VerbKind::Gather, VerbKind::Say, VerbKind::Hangup]
    );
    assert_eq!(leg.bridged_to, None);
    assert_eq!(detail.bridged_to, None);
    assert_eq!(detail.flow_end, Some(FlowEnd::Hangup));
    assert_eq!(
        detail.verbs,
        [VerbKind::Dial, VerbKind::Say, VerbKind::Hangup]
    );
    let stats = sim.stats();
    assert_eq!((stats.whisper_declines, stats.bridged_calls), (1, 0));
    assert_eq!(stats.gathers_with_digits, 0);

    // The agent presses 1: the Gather posts it, the (empty) answer ends normally and bridges.
    sim.set_digits(AGENT_A, &["1"]);
    let sid = twilio.create_call(&url_call(&app)).await.unwrap().sid;
    let detail = finished(&sim, &sid).await;
    let leg = &detail.children[0];
    let accept = &app.wait_for("/accept", "CallSid", &leg.sid, 1).await[0];
    assert_eq!(accept.get("Digits"), Some("1"));
    assert_eq!(accept.get("ParentCallSid"), Some(sid.as_str()));
    assert_eq!(leg.digits, ["1"]);
    assert_eq!(leg.bridged_to.as_deref(), Some(LEAD));
    let action = &app.wait_for("/dial-done", "CallSid", &sid, 1).await[0];
    assert_eq!(action.get("DialBridged"), Some("true"));
    let stats = sim.stats();
    assert_eq!(stats.gathers_with_digits, 1);
    assert_eq!(stats.bridged_calls, 1);
    assert_eq!(stats.whispers, 2);
    sim.shutdown().await;
}

#[tokio::test]
async fn rest_hangup_ends_the_parent_and_its_legs() {
    let app = App::start().await;
    let sim = start(config(CallOutcome::Human)).await;
    sim.set_callee(AGENT_A, ringing(20, 600_000));
    sim.set_callee(AGENT_B, ringing(600_000, 50));
    app.twiml(
        "/answer",
        &format!(
            r#"<Response><Dial action="/dial-done" timeout="600000">{AGENT_A}</Dial></Response>"#
        ),
    );
    let twilio = client(&sim);

    // During the bridge: both legs complete; the action still hears about it.
    let sid = twilio.create_call(&url_call(&app)).await.unwrap().sid;
    eventually("the bridge", || {
        sim.call_detail(&sid).filter(|d| d.bridged_to.is_some())
    })
    .await;
    twilio
        .hangup_call(&sid, HangupStatus::Completed)
        .await
        .unwrap();
    let detail = finished(&sim, &sid).await;
    assert_eq!(detail.children[0].status, "completed");
    assert_eq!(detail.flow_end, Some(FlowEnd::Ended));
    let action = &app.wait_for("/dial-done", "CallSid", &sid, 1).await[0];
    assert_eq!(action.get("CallStatus"), Some("completed"));
    assert_eq!(action.get("DialCallStatus"), Some("completed"));
    assert_eq!(action.get("DialBridged"), Some("true"));

    // While the leg rings: it is canceled and so is the Dial.
    app.twiml(
        "/ringing",
        &format!(
            r#"<Response><Dial action="/dial-done" timeout="600000">{AGENT_B}</Dial></Response>"#
        ),
    );
    let mut req = url_call(&app);
    req.url = Some(app.url("/ringing"));
    let sid = twilio.create_call(&req).await.unwrap().sid;
    let leg = eventually("the leg to ring", || {
        let d = sim.call_detail(&sid)?;
        d.children
            .first()
            .filter(|c| c.status == "ringing")
            .cloned()
    })
    .await;
    twilio
        .hangup_call(&sid, HangupStatus::Completed)
        .await
        .unwrap();
    let detail = finished(&sim, &sid).await;
    assert_eq!(detail.children[0].sid, leg.sid);
    assert_eq!(detail.children[0].status, "canceled");
    let action = &app.wait_for("/dial-done", "CallSid", &sid, 1).await[0];
    assert_eq!(action.get("DialCallStatus"), Some("canceled"));
    assert_eq!(action.get("DialBridged"), Some("false"));

    let stats = sim.stats();
    assert_eq!(stats.hangups, 2);
    assert_eq!(count(&stats.dial_outcomes, "completed"), 1);
    assert_eq!(count(&stats.dial_outcomes, "canceled"), 1);
    sim.shutdown().await;
}
