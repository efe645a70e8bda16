//! A tenant that emails its leads, for the email tests: a playbook with a first-touch and an
//! after-missed-call email, the carrier simulator leaving every call unanswered, the tenant's
//! SMTP server a real one on loopback (`smtp::SmtpSink`), and reading what came of it.
#![allow(dead_code, clippy::unwrap_used)]

use std::time::Duration;

use neuronx_adapters::carrier_sim::{CallOutcome, FlowConfig, OutcomeMix, SimConfig};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::{self, eventually, Backend, TestApp};
use crate::flow::{setup_sim, Setup};
use crate::smtp::SmtpSink;

pub const POSTAL: &str = "Acme Inc., 1 Main St, Springfield, IL 62701";

/// Two calls, each unanswered, 20 s apart: time for a test to act between them, even on a
/// loaded machine.
const PLAYBOOK: &str = r#"
name = "mail"
first_touch_sla_seconds = 600
response_sla_seconds = 600
max_attempts = 2
retry_delay_seconds = 20
ring_timeout_seconds = 5

[email.first_touch]
subject = "Hi {{ first_name }}, thanks for your request"
body = "Hello {{ name }},\n\nWe received your request {{ external_id }} and will call you shortly."

[email.after_missed_call]
subject = "We just tried to call you, {{ first_name }}"
body = "Hello {{ name }}, we tried to reach you at {{ phone }}."
"#;

pub async fn mail_setup(backend: Backend, sink: &SmtpSink) -> (Setup, tempfile::TempDir) {
    let playbooks = tempfile::tempdir().unwrap();
    std::fs::write(playbooks.path().join("mail.toml"), PLAYBOOK).unwrap();
    let dir = playbooks.path().display().to_string();
    let config = SimConfig {
        outcome_mix: OutcomeMix::all(CallOutcome::NoAnswer),
        flow: FlowConfig {
            second_ms: 100,
            ..FlowConfig::fast()
        },
        ..SimConfig::default()
    };
    let s = setup_sim(
        backend,
        |s| {
            s.playbooks.dir = dir;
            s.playbooks.default = "mail".into();
        },
        config,
    )
    .await;
    let (status, body) = s
        .app
        .request(
            Method::PUT,
            "/v1/channels/smtp",
            Some(&s.app.key),
            Some(
                json!({"host": "127.0.0.1", "port": sink.port, "tls": "none",
                        "from": "sales@acme.test", "from_name": "Acme Sales"}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (s, playbooks)
}

pub async fn set_postal(app: &TestApp, address: &str) {
    let (status, body) = app
        .request(
            Method::PUT,
            "/v1/settings",
            Some(&app.key),
            Some(json!({ "postal_address": address })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["postal_address"], json!(address), "{body}");
}

pub async fn lead_in(app: &TestApp, external_id: &str, email: &str) -> String {
    let mut lead = common::lead(external_id, 600);
    lead["contact"]["email"] = json!(email);
    lead["contact"]["consent"] = json!({"voice": true, "sms": true, "email": true});
    let (status, body) = app.post("/v1/opportunities", lead).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

pub async fn mail(sink: &SmtpSink, n: usize) -> Vec<String> {
    eventually(Duration::from_secs(30), "the emails", || async {
        let got = sink.messages();
        (got.len() >= n).then_some(got)
    })
    .await
}

pub async fn entry(app: &TestApp, id: &str, what: &str, pick: impl Fn(&Value) -> bool) -> Value {
    eventually(Duration::from_secs(40), what, || async {
        app.timeline(id).await.into_iter().find(|e| pick(e))
    })
    .await
}

/// The thread's email items.
pub async fn thread_emails(app: &TestApp, id: &str) -> Vec<Value> {
    let (status, page) = app.get(&format!("/v1/opportunities/{id}/messages")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["channel"] == "email")
        .cloned()
        .collect()
}
