#![allow(clippy::unwrap_used)]
//! End to end on PostgreSQL: the engine and the carrier simulator talking over HTTP — calls
//! placed through the Twilio-compatible API, signed callbacks (some out of order, some twice)
//! coming back, SMS sent, replies handled — with zero duplicate sends.

mod common;

use std::time::Duration;

use common::{eventually, Backend, TestApp};
use neuronx::secrets::Keyring;
use neuronx_adapters::carrier_sim::{self, SimConfig};
use reqwest::{Method, StatusCode};
use serde_json::json;

struct Setup {
    app: TestApp,
    sim: carrier_sim::SimHandle,
}

async fn setup(backend: Backend, sim_config: SimConfig) -> Setup {
    let port = common::free_port();
    let app = TestApp::spawn_with(backend, |s| {
        s.server.listen = format!("127.0.0.1:{port}");
        s.server.public_url = format!("http://127.0.0.1:{port}");
        s.secrets.keys = vec![Keyring::generate_entry("t")];
    })
    .await;
    let sim_config = SimConfig {
        inbound_sms_url: Some(format!(
            "http://127.0.0.1:{port}/webhooks/twilio/{}/sms/inbound",
            app.tenant
        )),
        ..sim_config
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim = carrier_sim::start(sim_config.clone(), listener)
        .await
        .unwrap();
    let (status, body) = app
        .request(
            Method::PUT,
            "/v1/channels/twilio",
            Some(&app.key),
            Some(json!({
                "account_sid": sim_config.account_sid,
                "auth_token": sim_config.auth_token,
                "from_number": "+14155550000",
                "base_url": sim.base_url,
            })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    Setup { app, sim }
}

fn lead(i: usize, zone: &str) -> serde_json::Value {
    json!({
        "external_id": format!("lead-{i}"),
        "playbook": "demo",
        "contact": {
            "name": format!("Lead {i}"),
            "phone": common::day_phone(&format!("555{:04}", i)),
            "timezone": zone,
            "consent": {"voice": true, "sms": true}
        }
    })
}

async fn leads_are_called_texted_and_nobody_is_dialled_twice(backend: Backend) {
    let mut config = SimConfig::default();
    config.disorder.swap_probability = 0.2;
    config.disorder.duplicate_probability = 0.2;
    config.reply_mix.probability = 0.0;
    let Setup { app, sim } = setup(backend, config).await;
    let zone = common::daytime_zone();
    let mut ids = Vec::new();
    for i in 0..12 {
        let (status, body) = app.post("/v1/opportunities", lead(i, zone)).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        ids.push(body["id"].as_str().unwrap().to_owned());
    }
    // Every lead gets its first call through the carrier.
    eventually(Duration::from_secs(20), "a first call per lead", || async {
        (sim.stats().calls_per_number.len() >= 12).then_some(())
    })
    .await;
    // And each first call reaches an outcome on its opportunity.
    for id in &ids {
        eventually(
            Duration::from_secs(30),
            "the first call's outcome",
            || async {
                let timeline = app.timeline(id).await;
                timeline
                    .iter()
                    .any(|e| e["kind"] == "call_outcome")
                    .then_some(())
            },
        )
        .await;
    }
    let stats = sim.stats();
    assert_eq!(
        stats.duplicate_creates, 0,
        "no effect sent twice: {stats:?}"
    );
    assert!(stats.callbacks_delivered > 0);
    assert_eq!(
        stats.callback_failures, 0,
        "every signed callback was accepted"
    );
    // Duplicated callbacks changed nothing: each call's statuses appear once.
    for id in &ids {
        let (_, view) = app.get(&format!("/v1/opportunities/{id}")).await;
        for e in app
            .timeline(id)
            .await
            .iter()
            .filter(|e| e["kind"] == "call_placed")
        {
            let call_id = e["data"]["call_id"].as_str().unwrap();
            let (_, call) = app.get(&format!("/v1/calls/{call_id}")).await;
            let mut seen = std::collections::HashSet::new();
            for s in call["timeline"].as_array().unwrap() {
                if let Some(to) = s["data"]["to"].as_str() {
                    assert!(
                        seen.insert(to.to_owned()),
                        "status {to} applied twice: {call}"
                    );
                }
            }
        }
        assert!(view["attempts"].as_u64().unwrap() >= 1);
    }
    sim.shutdown().await;
    app.stop().await;
}

async fn a_stop_reply_ends_the_conversation_with_one_confirmation(backend: Backend) {
    let mut config = SimConfig {
        outcome_mix: carrier_sim::OutcomeMix::all(carrier_sim::CallOutcome::NoAnswer),
        ..SimConfig::default()
    };
    config.reply_mix.probability = 1.0;
    config.reply_mix.yes = 0;
    config.reply_mix.help = 0;
    config.reply_mix.free_text = 0;
    config.reply_mix.stop = 1;
    let Setup { app, sim } = setup(backend, config).await;
    let zone = common::daytime_zone();
    let lead_one = common::day_phone("5550001");
    let (status, body) = app.post("/v1/opportunities", lead(1, zone)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    let view = eventually(Duration::from_secs(30), "the opt-out", || async {
        let (_, v) = app.get(&format!("/v1/opportunities/{id}")).await;
        (v["stage"] == "do_not_contact").then_some(v)
    })
    .await;
    assert_eq!(view["timers"], json!([]), "every timer cancelled");
    let timeline = app.timeline(&id).await;
    assert_eq!(
        timeline.iter().filter(|e| e["kind"] == "opted_out").count(),
        1
    );
    // Exactly one confirmation was sent, and nothing else after the opt-out. Like Twilio, the
    // simulator refuses texts to a number that replied STOP (error 21610), so the carrier
    // counts one delivered follow-up and one refused confirmation.
    let tenant = neuronx_supervision::TenantId(app.tenant.parse().unwrap());
    let outbox = eventually(
        Duration::from_secs(10),
        "the confirmation to be sent",
        || async {
            let rows = app
                .engine()
                .store()
                .outbox_of(tenant, "opportunity", id.parse().unwrap())
                .await
                .unwrap();
            rows.iter()
                .any(|r| {
                    r.payload["purpose"] == "opt_out_confirmation"
                        && r.status == neuronx_supervision::store::OutboxStatus::Done
                })
                .then_some(rows)
        },
    )
    .await;
    let confirmations = outbox
        .iter()
        .filter(|r| r.payload["purpose"] == "opt_out_confirmation")
        .count();
    assert_eq!(confirmations, 1);
    assert_eq!(sim.stats().blocked_opted_out, 1);
    // The refusal reaches the opportunity and its timeline (issue #14).
    let refused = eventually(
        Duration::from_secs(10),
        "the refusal on the timeline",
        || async {
            app.timeline(&id)
                .await
                .into_iter()
                .find(|e| e["kind"] == "message_status" && e["data"]["status"] == "refused")
        },
    )
    .await;
    assert_eq!(refused["data"]["code"], 21610, "{refused}");
    assert_eq!(
        refused["data"]["purpose"], "opt_out_confirmation",
        "{refused}"
    );
    assert_eq!(
        sim.stats().messages_per_number.get(lead_one.as_str()),
        Some(&1)
    );
    let calls = sim
        .stats()
        .calls_per_number
        .get(lead_one.as_str())
        .copied()
        .unwrap_or(0);
    assert_eq!(calls, 1);
    assert_eq!(sim.stats().duplicate_creates, 0);
    sim.shutdown().await;
    app.stop().await;
}

async fn webhooks_without_a_valid_signature_are_refused_and_write_nothing(backend: Backend) {
    let Setup { app, sim } = setup(backend, SimConfig::default()).await;
    let path = format!("/webhooks/twilio/{}/sms/inbound", app.tenant);
    let lead_one = common::day_phone("5550001");
    let form = [
        ("MessageSid", "SM1"),
        ("From", lead_one.as_str()),
        ("Body", "STOP"),
    ];
    for (signature, why) in [
        (None, "missing_signature"),
        (Some("bm90IGEgc2lnbmF0dXJl"), "bad_signature"),
    ] {
        let mut req = app.client.post(format!("{}{path}", app.base)).form(&form);
        if let Some(s) = signature {
            req = req.header("X-Twilio-Signature", s);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error"], why, "a refusal names its reason: {body}");
    }
    let backlog = app.engine().store().backlog(i64::MAX).await.unwrap();
    assert_eq!(backlog.inbox, 0, "nothing written for a refused webhook");
    // A correctly signed callback for a call nobody knows: 200, counted, no state.
    let url = format!(
        "{}/webhooks/twilio/{}/voice/status?call={}&opp={}",
        app.base,
        app.tenant,
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4()
    );
    let params: Vec<(String, String)> = vec![
        (
            "CallSid".into(),
            "CA00000000000000000000000000000001".into(),
        ),
        ("CallStatus".into(), "ringing".into()),
        ("SequenceNumber".into(), "1".into()),
    ];
    let resp = common::post_signed(&app.client, "sim-auth-token", &url, &params).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let (_, metrics) = app.request(Method::GET, "/metrics", None, None).await;
    assert!(metrics
        .as_str()
        .unwrap()
        .contains("neuronx_webhooks_total{outcome=\"unknown\",route=\"voice_status\"} 1"));
    sim.shutdown().await;
    app.stop().await;
}

both_backends!(
    leads_are_called_texted_and_nobody_is_dialled_twice,
    a_stop_reply_ends_the_conversation_with_one_confirmation,
    webhooks_without_a_valid_signature_are_refused_and_write_nothing,
);
