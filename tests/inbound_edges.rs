#![allow(clippy::unwrap_used)]
//! Inbound calls at their edges (issue #14, ADR 0050): nothing is offered before the caller has
//! heard the greeting, and a call whose flow goes silent is closed by its watchdog, its rep
//! freed and its lead owed a callback.

#[path = "common/access.rs"]
mod access;
mod common;
#[path = "common/flow.rs"]
mod flow;

use std::time::Duration;

use access::team;
use common::{eventually, post_signed, Backend};
use flow::{conversation_until, finished, number, quiet_lead, rep, rows, setup};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// The number of team `west` in these tests' pool.
const WEST_NUMBER: &str = "+14155550300";
const SID: &str = "CA0123456789abcdef0123456789abcdef";

/// The shipped playbooks with a 2 s call watchdog, so an inbound call's watchdog fires within
/// a test.
fn short_watchdog_playbooks() -> String {
    let dir = tempfile::tempdir().unwrap().keep();
    for name in ["speed-to-lead", "demo"] {
        let path = format!(
            "{}/config/playbooks/{name}.toml",
            env!("CARGO_MANIFEST_DIR")
        );
        let shipped = std::fs::read_to_string(path).unwrap();
        let short = shipped
            .replace("call_watchdog_seconds = 300", "call_watchdog_seconds = 2")
            .replace("ring_timeout_seconds = 30", "ring_timeout_seconds = 1");
        assert!(
            name != "speed-to-lead" || short != shipped,
            "no watchdog to shorten"
        );
        std::fs::write(dir.join(format!("{name}.toml")), short).unwrap();
    }
    dir.to_string_lossy().into_owned()
}

/// A call whose flow goes silent after the reps were offered (its dial's action lost; no
/// status callback is asked for an inbound call): the call's watchdog asks the carrier, closes
/// the call, frees the rep it was offered to and owes the lead a callback.
async fn a_silent_call_is_closed_by_the_watchdog(backend: Backend) {
    let dir = short_watchdog_playbooks();
    let s = flow::setup_with(backend, move |st| st.playbooks.dir = dir).await;
    let (app, sim) = (&s.app, &s.sim);
    team(app, "west").await;
    rep(app, "ana", Some("west"), "+14155550201", "available").await;
    number(app, WEST_NUMBER, Some("west")).await;
    let opp = quiet_lead(app, "in-5", "+14155550105", Some("west")).await;
    let id = opp["id"].as_str().unwrap();

    // A call the carrier has and has ended: its voice URL answered nothing it could run.
    let r = app
        .client
        .post(format!("{}/sim/inbound-calls", sim.base_url))
        .json(&json!({ "from": "+14155550105", "to": WEST_NUMBER,
            "url": format!("{}/nowhere", s.public_url) }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let sid = r.json::<Value>().await.unwrap()["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    finished(sim, &sid).await;
    // Our webhook is asked for that call, as after the greeting (`ring=1`): the rep is offered
    // it, and no request of its flow will ever come (as if the dial's action were lost).
    let url = format!(
        "{}/webhooks/twilio/{}/voice/inbound?ring=1",
        app.base, app.tenant
    );
    let form = flow::inbound_form(&sid, "+14155550105", WEST_NUMBER);
    let r = post_signed(&app.client, sim.auth_token(), &url, &form).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("<Dial"));
    let live = || flow::live_calls(app, "ana");
    assert_eq!(live().await, Some(1), "the offer holds the rep");

    let entries = conversation_until(app, id, "unattended").await;
    let un = entries.iter().find(|d| d["event"] == "unattended").unwrap();
    assert_eq!(un["reason"], "caller_hung_up", "{un}");
    assert_eq!(un["inbound"], true);
    let call_id = un["call_id"].as_str().unwrap();
    let (code, call) = app.get(&format!("/v1/calls/{call_id}")).await;
    assert_eq!(code, StatusCode::OK, "{call}");
    let status = call["status"].as_str().unwrap_or_default();
    assert!(["completed", "failed"].contains(&status), "{call}");
    let asked = call["timeline"].as_array().unwrap().iter().any(|e| {
        e["reason"]
            .as_str()
            .is_some_and(|r| r.contains("asking the provider"))
    });
    assert!(asked, "the watchdog asked the carrier: {call}");
    eventually(Duration::from_secs(10), "the rep freed", || async {
        (live().await == Some(0)).then_some(())
    })
    .await;
    flow::escalated_after_text(app, id, "thanks for calling", "escalations:west").await;
    s.sim.shutdown().await;
    s.app.stop().await;
}

/// A call's first request is answered with the greeting and a redirect back for the ringing:
/// until the caller has heard it, no rep is offered the call and no call is recorded, so one
/// who hangs up during the greeting holds nobody.
async fn nothing_is_offered_before_the_greeting_is_heard(backend: Backend) {
    let s = setup(backend).await;
    let (app, sim) = (&s.app, &s.sim);
    team(app, "west").await;
    rep(app, "ana", Some("west"), "+14155550201", "available").await;
    number(app, WEST_NUMBER, Some("west")).await;
    quiet_lead(app, "in-6", "+14155550106", Some("west")).await;
    let url = format!("{}/webhooks/twilio/{}/voice/inbound", app.base, app.tenant);
    for from in ["+14155550106", "+14155550999"] {
        let form = flow::inbound_form(SID, from, WEST_NUMBER);
        let r = post_signed(&app.client, sim.auth_token(), &url, &form).await;
        assert_eq!(r.status(), StatusCode::OK);
        let xml = r.text().await.unwrap();
        assert!(xml.contains("<Say>Thanks for calling"), "{from}: {xml}");
        assert!(
            xml.contains("<Redirect method=\"POST\">") && xml.contains("/voice/inbound?ring=1"),
            "{from}: {xml}"
        );
        assert!(!xml.contains("<Dial"), "{from}: {xml}");
    }
    let calls = rows(
        app,
        "SELECT CAST(COUNT(*) AS TEXT) FROM actors WHERE kind = 'call'",
    )
    .await;
    assert_eq!(calls, "0", "no call recorded");
    let legs = rows(app, "SELECT CAST(COUNT(*) AS TEXT) FROM rep_legs").await;
    assert_eq!(legs, "0", "nobody offered");
    s.sim.shutdown().await;
    s.app.stop().await;
}

both_backends!(a_silent_call_is_closed_by_the_watchdog);

mod sqlite_only {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn greeting_first() {
        nothing_is_offered_before_the_greeting_is_heard(Backend::Sqlite).await;
    }
}
