#![allow(clippy::unwrap_used)]
//! A text whose create had an unknown outcome (issue #14, "Unknown outcomes, finished"), through
//! the carrier simulator over HTTP on both backends: the carrier made it and its answer was cut
//! short, so the lookup finds it and it is recorded sent with its sid; or the carrier failed
//! with a 500 before making anything, so the lookup finds nothing and it stays unknown, never
//! sent a second time.

mod common;
#[path = "common/flow.rs"]
mod flow;

use std::time::Duration;

use common::{daytime_zone, eventually, sql, Backend, TestApp};
use neuronx_adapters::carrier_sim::{RestFaults, SimConfig, SimHandle};
use reqwest::StatusCode;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);
/// The lead's number, in the daytime place so its calling hours are open now.
fn lead_number() -> String {
    common::day_phone("5550177")
}

async fn setup(backend: Backend, faults: RestFaults) -> (TestApp, SimHandle) {
    let config = SimConfig {
        rest_faults: faults,
        ..SimConfig::default()
    };
    let s = flow::setup_sim(backend, |_| {}, config).await;
    (s.app, s.sim)
}

/// A lead who consented to texts only: the first touch is a text.
async fn texted_lead(app: &TestApp) -> String {
    let (status, body) = app
        .post(
            "/v1/opportunities",
            json!({
                "external_id": "texts-only",
                "contact": {"name": "Ana Lima", "phone": lead_number(), "timezone": daytime_zone(),
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
    assert_eq!(
        stats.messages_per_number.get(&lead_number()).copied(),
        Some(1)
    );
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
    assert_eq!(sim.stats().messages_per_number.get(&lead_number()), None);
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
