#![allow(clippy::unwrap_used)]
//! Call recording (issue #14): a playbook with `call_flow.record = true` records the bridged
//! conversation; a lead whose state requires every party's consent (California, 415) hears the
//! notice before anyone is connected, a New York lead (212) does not. The carrier simulator keeps
//! the recording and posts its signed callback; the call keeps the sid and length; the API reads
//! the metadata and the audio by sid from the tenant's own account. Forged or foreign sids are
//! refused.

#[path = "common/access.rs"]
mod access;
mod common;
#[path = "common/flow.rs"]
mod flow;

use std::time::Duration;

use access::team;
use common::{eventually, post_signed, Backend, TestApp};
use flow::{rep, setup_with, Setup};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// The shipped playbooks, with the default one recording.
fn recording_playbooks() -> String {
    let dir = tempfile::tempdir().unwrap().keep();
    for name in ["speed-to-lead", "demo"] {
        let shipped = std::fs::read_to_string(format!(
            "{}/config/playbooks/{name}.toml",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let text = if name == "speed-to-lead" {
            let on = shipped.replace("record = false", "record = true");
            assert_ne!(on, shipped, "the shipped playbook names record = false");
            let notice = "recording_notice = \"This call is recorded for quality and training.\"";
            on.replace(notice, "recording_notice = \"This call is recorded.\"")
        } else {
            shipped
        };
        std::fs::write(dir.join(format!("{name}.toml")), text).unwrap();
    }
    dir.to_string_lossy().into_owned()
}

async fn recorded_setup(backend: Backend) -> Setup {
    let dir = recording_playbooks();
    setup_with(backend, move |s| s.playbooks.dir = dir).await
}

async fn lead(app: &TestApp, external_id: &str, phone: &str) -> String {
    let mut lead = common::lead(external_id, 300);
    lead["contact"]["phone"] = json!(phone);
    lead["team"] = json!("west");
    let (status, body) = app.post("/v1/opportunities", lead).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

/// The opportunity's first call, once its recording is on its record.
async fn recorded_call(app: &TestApp, id: &str) -> Value {
    eventually(Duration::from_secs(30), "a recording", || async {
        let timeline = app.timeline(id).await;
        let call_id = timeline
            .iter()
            .find(|e| e["kind"] == "call_placed")
            .and_then(|e| e["data"]["call_id"].as_str().map(str::to_owned))?;
        let (code, call) = app.get(&format!("/v1/calls/{call_id}")).await;
        (code == StatusCode::OK && !call["recordings"].as_array()?.is_empty()).then_some(call)
    })
    .await
}

/// What the simulator's leg of the lead said, in order.
fn said(sim: &neuronx_adapters::carrier_sim::SimHandle, call_sid: &str) -> Vec<String> {
    sim.call_detail(call_sid).unwrap().said
}

async fn a_recorded_call_announces_where_the_state_requires_it(backend: Backend) {
    let Setup { app, sim, .. } = recorded_setup(backend).await;
    team(&app, "west").await;
    rep(&app, "bo", Some("west"), "+14155550202", "available").await;
    let ca = lead(&app, "rec-ca", "+14155550101").await;
    let call = recorded_call(&app, &ca).await;
    let rec = &call["recordings"][0];
    let sid = rec["sid"].as_str().unwrap();
    assert!(sid.starts_with("RE") && sid.len() == 34, "{rec}");
    assert_eq!(rec["consent"], "all_party", "{rec}");
    let stats = sim.stats();
    assert_eq!(stats.recordings, 1, "{stats:?}");
    let provider_sid = call["provider_sid"].as_str().unwrap();
    let heard = said(&sim, provider_sid);
    assert_eq!(
        heard.first().map(String::as_str),
        Some("This call is recorded."),
        "the notice comes first: {heard:?}"
    );

    // The metadata and the audio, by sid, from the tenant's own account.
    let call_id = call["id"].as_str().unwrap();
    let (code, detail) = app
        .get(&format!("/v1/calls/{call_id}/recordings/{sid}"))
        .await;
    assert_eq!(code, StatusCode::OK, "{detail}");
    assert_eq!(detail["sid"], sid);
    assert_eq!(detail["status"], "completed");
    assert_eq!(detail["consent"], "all_party");
    let media = app
        .client
        .get(format!(
            "{}/v1/calls/{call_id}/recordings/{sid}/media",
            app.base
        ))
        .bearer_auth(&app.key)
        .send()
        .await
        .unwrap();
    assert_eq!(media.status(), StatusCode::OK);
    assert_eq!(media.headers()["content-type"], "audio/mpeg");
    let audio = media.bytes().await.unwrap();
    assert_eq!(&audio[..], neuronx_adapters::carrier_sim::RECORDING_MEDIA);
    assert_eq!(sim.stats().recording_fetches, 1);

    // A New York lead is recorded without the notice (one-party state).
    let ny = lead(&app, "rec-ny", "+12125550101").await;
    let call = recorded_call(&app, &ny).await;
    assert_eq!(call["recordings"][0]["consent"], "one_party", "{call}");
    let heard = said(&sim, call["provider_sid"].as_str().unwrap());
    assert!(
        !heard.iter().any(|s| s == "This call is recorded."),
        "{heard:?}"
    );
    sim.shutdown().await;
    app.stop().await;
}

async fn forged_and_foreign_recordings_are_refused(backend: Backend) {
    let Setup {
        app,
        sim,
        public_url,
        auth_token,
    } = recorded_setup(backend).await;
    team(&app, "west").await;
    rep(&app, "bo", Some("west"), "+14155550202", "available").await;
    let id = lead(&app, "rec-x", "+14155550101").await;
    let call = recorded_call(&app, &id).await;
    let call_id = call["id"].as_str().unwrap();
    let sid = call["recordings"][0]["sid"].as_str().unwrap();

    // A sid the call does not hold is not found, whatever the carrier keeps.
    let other = "RE00000000000000000000000000000000";
    let (code, body) = app
        .get(&format!("/v1/calls/{call_id}/recordings/{other}"))
        .await;
    assert_eq!(code, StatusCode::NOT_FOUND, "{body}");
    let (code, _) = app
        .get(&format!("/v1/calls/{call_id}/recordings/..%2F..%2FCalls"))
        .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    // A viewer may read the call, not listen to it.
    let viewer = access::key(&app, "viewer", None, None).await;
    let path = format!("/v1/calls/{call_id}/recordings/{sid}");
    let (code, body) = access::as_key(&app, &viewer, reqwest::Method::GET, &path, None).await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{body}");

    // The recording callback, signed, with a sid that is not one: refused by name, and the
    // call's record is unchanged.
    let url = format!(
        "{public_url}/webhooks/twilio/{}/voice/recording?call={call_id}&opp={id}&consent=one_party",
        app.tenant
    );
    let form = |sid: &str| -> Vec<(String, String)> {
        vec![
            ("CallSid".into(), "CA1".into()),
            ("RecordingSid".into(), sid.into()),
            ("RecordingStatus".into(), "completed".into()),
            ("RecordingDuration".into(), "9".into()),
        ]
    };
    for bad in ["", "RE1", "https://evil.example/x.mp3"] {
        let r = post_signed(&app.client, &auth_token, &url, &form(bad)).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
        let body: Value = r.json().await.unwrap();
        assert!(
            body["error"] == "missing_recording_sid" || body["error"] == "bad_recording_sid",
            "{body}"
        );
    }
    // Unsigned: forbidden before anything is read.
    let r = app
        .client
        .post(&url)
        .form(&form(other))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let (_, after) = app.get(&format!("/v1/calls/{call_id}")).await;
    assert_eq!(after["recordings"], call["recordings"]);
    sim.shutdown().await;
    app.stop().await;
}

both_backends!(a_recorded_call_announces_where_the_state_requires_it,);

mod sqlite_only {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn refusals() {
        forged_and_foreign_recordings_are_refused(Backend::Sqlite).await;
    }
}
