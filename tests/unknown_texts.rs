#![allow(clippy::unwrap_used)]
//! A text whose create had an unknown outcome (issue #14, "Unknown outcomes, finished"), through
//! the carrier simulator over HTTP on both backends: the carrier made it and its answer was cut
//! short, so the lookup finds it and it is recorded sent with its sid; or the carrier failed
//! with a 500 before making anything, so the lookup finds nothing and it stays unknown, never
//! sent a second time.

mod common;

use std::time::Duration;

use common::{daytime_zone, eventually, sql, Backend, TestApp};
use neuronx::secrets::Keyring;
use neuronx_adapters::carrier_sim::{self, RestFaults, SimConfig, SimHandle};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);
const LEAD: &str = "+14155550177";

async fn setup(backend: Backend, faults: RestFaults) -> (TestApp, SimHandle) {
    let port = common::free_port();
    let app = TestApp::spawn_with(backend, |s| {
        s.server.listen = format!("127.0.0.1:{port}");
        s.server.public_url = format!("http://127.0.0.1:{port}");
        s.secrets.keys = vec![Keyring::generate_entry("t")];
    })
    .await;
    let config = SimConfig {
        rest_faults: faults,
        ..SimConfig::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim = carrier_sim::start(config.clone(), listener).await.unwrap();
    let (status, body) = app
        .request(
            Method::PUT,
            "/v1/channels/twilio",
            Some(&app.key),
            Some(json!({
                "account_sid": config.account_sid,
                "auth_token": config.auth_token,
                "from_number": "+14155550000",
                "base_url": sim.base_url,
            })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (app, sim)
}

/// A lead who consented to texts only: the first touch is a text.
async fn texted_lead(app: &TestApp) -> String {
    let (status, body) = app
        .post(
            "/v1/opportunities",
            json!({
                "external_id": "texts-only",
                "contact": {"name": "Ana Lima", "phone": LEAD, "timezone": daytime_zone(),
                            "consent": {"voice": false, "sms": true}},
                "sla": {"first_touch_seconds": 300}
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

/// The lead's text effect once it left the outbox: its status and result.
async fn settled_text(app: &TestApp, id: &str) -> (String, Value) {
    let statement = format!(
        "SELECT status || ' ' || CAST(result AS TEXT) FROM outbox \
         WHERE kind = 'opportunity' AND CAST(actor_id AS TEXT) = '{id}' \
         AND status IN ('done', 'unknown')"
    );
    eventually(WAIT, "the text's outcome", || async {
        let rows = sql(app.engine().store(), &statement).await;
        rows.first().map(|row| {
            let (status, result) = row.split_once(' ').unwrap();
            (status.to_owned(), serde_json::from_str(result).unwrap())
        })
    })
    .await
}

async fn a_text_made_but_unanswered_is_found_and_recorded_sent(backend: Backend) {
    let faults = RestFaults {
        cut_after_create: 1.0,
        ..RestFaults::default()
    };
    let (app, sim) = setup(backend, faults).await;
    let id = texted_lead(&app).await;
    let (status, result) = settled_text(&app, &id).await;
    assert_eq!(status, "done", "{result}");
    let sid = result["message_sid"].as_str().unwrap();
    assert!(sid.starts_with("SM"), "{result}");
    assert!(result["found_after"].is_string(), "{result}");
    // The one the carrier made, and only it.
    let stats = sim.stats();
    assert_eq!(stats.messages_per_number.get(LEAD).copied(), Some(1));
    sim.shutdown().await;
    app.stop().await;
}

async fn a_text_never_made_stays_unknown_and_is_not_sent_again(backend: Backend) {
    let faults = RestFaults {
        server_error: 1.0,
        ..RestFaults::default()
    };
    let (app, sim) = setup(backend, faults).await;
    let id = texted_lead(&app).await;
    let (status, result) = settled_text(&app, &id).await;
    assert_eq!(status, "unknown", "{result}");
    assert_eq!(result["lookup"], "not_found", "{result}");
    assert_eq!(sim.stats().messages_per_number.get(LEAD), None);
    assert_eq!(
        sim.stats().rest_faults.get("server_error").copied(),
        Some(1),
        "one create tried: never sent again"
    );
    sim.shutdown().await;
    app.stop().await;
}

both_backends!(
    a_text_made_but_unanswered_is_found_and_recorded_sent,
    a_text_never_made_stays_unknown_and_is_not_sent_again,
);
