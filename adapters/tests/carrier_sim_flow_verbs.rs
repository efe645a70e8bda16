#![allow(clippy::unwrap_used)]
//! The carrier simulator executing the TwiML verbs around `<Dial>` on the call itself: Gather and
//! Record actions, a voicemail drop on a machine answer, application errors, inline TwiML. The
//! TwiML app (`flows_support`) checks every request's signature.

mod flows_support;

use neuronx_adapters::carrier_sim::{CallOutcome, DocPurpose, FlowEnd, VerbKind};
use neuronx_adapters::twilio::{CreateCall, HangupStatus};

use flows_support::{
    client, config, count, eventually, finished, start, stats_when, url_call, App, LEAD,
};

#[tokio::test]
async fn the_leads_digits_and_a_recording_reach_their_actions() {
    let app = App::start().await;
    let sim = start(config(CallOutcome::Human)).await;
    sim.set_digits(LEAD, &["", "2#"]);
    app.twiml(
        "/answer",
        r#"<Response>
             <Gather numDigits="1" timeout="1" action="/never"><Play>https://x/intro.mp3</Play></Gather>
             <Gather timeout="1" action="/menu"><Say loop="2">Press 2 then pound</Say></Gather>
           </Response>"#,
    );
    app.twiml(
        "/menu",
        r#"<Response><Record action="/recorded" maxLength="2"/></Response>"#,
    );
    app.twiml("/recorded", "<Response><Reject/></Response>");
    let sid = client(&sim).create_call(&url_call(&app)).await.unwrap().sid;
    let detail = finished(&sim, &sid).await;
    // The first Gather got nothing and fell through without a request.
    assert!(app.requests("/never").is_empty());
    let menu = &app.wait_for("/menu", "CallSid", &sid, 1).await[0];
    assert_eq!(menu.get("Digits"), Some("2"));
    let recorded = &app.wait_for("/recorded", "CallSid", &sid, 1).await[0];
    assert_eq!(recorded.get("RecordingDuration"), Some("2"));
    assert!(recorded.get("RecordingSid").unwrap().starts_with("RE"));
    assert!(recorded
        .get("RecordingUrl")
        .unwrap()
        .starts_with("https://"));
    assert_eq!(detail.digits, ["2"]);
    assert_eq!(detail.flow_end, Some(FlowEnd::Reject));
    assert_eq!(
        detail.verbs,
        [
            VerbKind::Gather,
            VerbKind::Play,
            VerbKind::Gather,
            VerbKind::Say,
            VerbKind::Record,
            VerbKind::Reject
        ]
    );
    let stats = sim.stats();
    assert_eq!(stats.gathers_with_digits, 1);
    assert_eq!(stats.voicemail_plays, 0, "a person answered");
    assert_eq!(stats.twiml_fetches, 3);
    sim.shutdown().await;
}

#[tokio::test]
async fn machine_answer_gets_a_voicemail_drop_then_hangup() {
    let app = App::start().await;
    let sim = start(config(CallOutcome::Voicemail)).await;
    app.twiml(
        "/answer",
        r#"<Response><Pause length="1"/><Say>Hi, this is Ana from Acme, call me back.</Say><Hangup/></Response>"#,
    );
    let mut req = url_call(&app);
    req.machine_detection = Some("DetectMessageEnd".into());
    let sid = client(&sim).create_call(&req).await.unwrap().sid;
    let detail = finished(&sim, &sid).await;
    let fetch = &app.requests("/answer")[0];
    assert_eq!(fetch.get("AnsweredBy"), Some("machine_end_beep"));
    assert_eq!(detail.flow_end, Some(FlowEnd::Hangup));
    assert_eq!(
        detail.verbs,
        [VerbKind::Pause, VerbKind::Say, VerbKind::Hangup]
    );
    let done = app.wait_for("/status", "CallStatus", "completed", 1).await;
    assert_eq!(done[0].get("AnsweredBy"), Some("machine_end_beep"));
    let stats = sim.stats();
    assert_eq!(stats.voicemail_plays, 1);
    assert_eq!(count(&stats.verbs_executed, "hangup"), 1);
    assert_eq!(count(&stats.call_outcomes, "completed"), 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_broken_twiml_url_ends_the_call_as_an_application_error() {
    let app = App::start().await;
    let sim = start(config(CallOutcome::Human)).await;
    let twilio = client(&sim);
    app.answer("/answer", 500, "oops");
    app.twiml("/garbage", "this is not <xml");
    app.twiml(
        "/unknown",
        "<Response><Say>Hi</Say><Enqueue>support</Enqueue><Say>never</Say></Response>",
    );

    let sid = twilio.create_call(&url_call(&app)).await.unwrap().sid;
    let detail = finished(&sim, &sid).await;
    assert_eq!(detail.flow_end, Some(FlowEnd::Error));
    assert_eq!(detail.documents[0].http_status, Some(500));
    assert!(!detail.documents[0].ok);
    app.wait_for("/status", "CallSid", &sid, 4).await;
    let stats = stats_when(&sim, "an error", |s| s.twiml_errors == 1).await;
    assert_eq!(stats.twiml_fetches, 1);
    assert_eq!(count(&stats.call_outcomes, "completed"), 1);

    for path in ["/garbage", "/unknown"] {
        let mut req = url_call(&app);
        req.url = Some(app.url(path));
        let sid = twilio.create_call(&req).await.unwrap().sid;
        let detail = finished(&sim, &sid).await;
        assert_eq!(detail.flow_end, Some(FlowEnd::Error), "{path}");
    }
    // Nothing listens on port 9 of loopback: a connection error.
    let mut req = url_call(&app);
    req.url = Some("http://127.0.0.1:9/answer".into());
    let sid = twilio.create_call(&req).await.unwrap().sid;
    let detail = finished(&sim, &sid).await;
    assert_eq!(detail.documents[0].http_status, None);

    let stats = sim.stats();
    assert_eq!(stats.twiml_errors, 4);
    assert_eq!(stats.twiml_fetches, 4);
    // The unknown verb stopped the document: the Say after it never ran.
    assert_eq!(count(&stats.verbs_executed, "say"), 1);
    assert_eq!(count(&stats.call_outcomes, "completed"), 4);
    sim.shutdown().await;
}

#[tokio::test]
async fn inline_twiml_runs_and_keeps_the_answer_mix_timeline() {
    let app = App::start().await;
    let mut cfg = config(CallOutcome::Human);
    cfg.timing.talk_ms = 600_000;
    let sim = start(cfg).await;
    let twilio = client(&sim);
    let req = CreateCall {
        url: None,
        twiml: Some("<Response><Pause length=\"1\"/></Response>".into()),
        ..url_call(&app)
    };
    let sid = twilio.create_call(&req).await.unwrap().sid;
    // The document ran out of verbs, and the lead is still on the line (as before flows).
    let detail = eventually("the inline flow", || {
        sim.call_detail(&sid).filter(|d| d.flow_end.is_some())
    })
    .await;
    assert_eq!(detail.flow_end, Some(FlowEnd::Exhausted));
    assert_eq!(detail.status, "in-progress");
    assert_eq!(detail.documents[0].purpose, DocPurpose::Inline);
    twilio
        .hangup_call(&sid, HangupStatus::Completed)
        .await
        .unwrap();
    app.wait_for("/status", "CallStatus", "completed", 1).await;
    let stats = sim.stats();
    assert_eq!(count(&stats.verbs_executed, "pause"), 1);
    assert_eq!(stats.twiml_fetches, 0);
    assert_eq!(stats.callbacks_sent, 4);
    sim.shutdown().await;
}
