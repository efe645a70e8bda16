#![allow(clippy::unwrap_used)]
//! Several instances on one PostgreSQL database, in process: shards split within one of the
//! fair share, any instance answers for any actor, a graceful stop hands shards over, and a
//! second instance without shared send limits refuses to start.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{eventually, redis_url, Backend, TestApp};
use neuronx::config::Settings;
use reqwest::StatusCode;
use serde_json::{json, Value};

fn shared(s: &mut Settings) {
    s.server.redis_url = redis_url();
}

/// Waits until each instance holds `want[i]` shards.
async fn balanced(apps: &[&TestApp], want: &[usize]) {
    eventually(Duration::from_secs(20), "the shards to balance", || async {
        let mut held = Vec::new();
        for a in apps {
            held.push(a.engine().owned_shards().await.len());
        }
        (held == want).then_some(())
    })
    .await;
}

#[tokio::test]
async fn two_instances_split_the_shards_and_answer_for_each_other() {
    let a = TestApp::spawn_with(Backend::Postgres, shared).await;
    let b = a.peer(shared).await;
    balanced(&[&a, &b], &[16, 16]).await;

    let (status, cluster) = b.get("/v1/cluster").await;
    assert_eq!(status, StatusCode::OK, "{cluster}");
    let instances = cluster["instances"].as_array().unwrap();
    assert_eq!(instances.len(), 2, "{cluster}");
    let mut seen = HashSet::new();
    for i in instances {
        assert_eq!(i["live"], true);
        assert_eq!(i["shared_limits"], true);
        assert_eq!(i["shards"].as_array().unwrap().len(), 16);
        for s in i["shards"].as_array().unwrap() {
            assert!(
                seen.insert(s.as_i64().unwrap()),
                "shard held twice: {cluster}"
            );
        }
    }
    let shards = cluster["shards"].as_array().unwrap();
    assert_eq!(shards.len(), 32);
    assert!(shards.iter().all(
        |s| s["epoch"].as_i64().unwrap() >= 1 && s["lease_remaining_ms"].as_i64().unwrap() > 0
    ));

    // Leads created through one instance, paused through the other: about half are owned by
    // the other instance, whose answer comes back through the database.
    let mut remote = 0;
    for n in 0..12 {
        let id = a.create(&format!("lead-{n}"), 300).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let (status, body) = b
            .post(
                &format!("/v1/opportunities/{id}/pause"),
                json!({"operator": "ops"}),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::OK,
            "pause answered with the new state: {body}"
        );
        assert_eq!(body["paused"], true);
        let (_, view) = a.get(&format!("/v1/opportunities/{id}")).await;
        assert_eq!(view["paused"], true);
        // A refusal from the owner comes back as the same 409 a local one would.
        let (status, body) = b
            .post(&format!("/v1/opportunities/{id}/pause"), json!({}))
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(body["error"], "already_paused", "{body}");
        let shard = shard_of(&b, &id).await;
        if !b
            .engine()
            .owned_shards()
            .await
            .iter()
            .any(|(s, _)| s.0 == shard)
        {
            remote += 1;
        }
    }
    assert!(remote > 0, "no lead landed on the other instance's shards");
    b.stop().await;
    a.stop().await;
}

async fn shard_of(t: &TestApp, id: &str) -> i32 {
    let tenant = neuronx_supervision::TenantId(t.tenant.parse().unwrap());
    let key = neuronx_actors::opportunity::key(tenant, id.parse().unwrap());
    t.engine().shard_of(&key).0
}

#[tokio::test]
async fn a_graceful_stop_hands_every_shard_to_the_survivor() {
    let a = TestApp::spawn_with(Backend::Postgres, shared).await;
    let b = a.peer(shared).await;
    balanced(&[&a, &b], &[16, 16]).await;
    let leaving = b.engine().config().instance_id.clone();
    b.stop().await;
    balanced(&[&a], &[32]).await;
    let (_, cluster) = a.get("/v1/cluster").await;
    let ids: Vec<&str> = cluster["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert!(
        !ids.contains(&leaving.as_str()),
        "deregistered on stop: {cluster}"
    );
    assert!(cluster["shards"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["owner"] == Value::String(a.engine().config().instance_id.clone())));
    a.stop().await;
}

#[tokio::test]
async fn a_second_instance_without_redis_refuses_to_start() {
    let fast = |s: &mut Settings| {
        s.engine.lease_ttl_ms = 1000;
        s.engine.lease_renew_ms = 300;
    };
    let a = TestApp::spawn_with(Backend::Postgres, fast).await;
    let mut s = common::settings(&a.database_url);
    fast(&mut s);
    let err = match neuronx::app::App::start(s).await {
        Ok(_) => panic!("a second instance without Redis started"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("NEURONX_REDIS_URL"), "{err}");
    assert!(
        err.contains(&a.engine().config().instance_id),
        "names the other: {err}"
    );
    // The first is untouched.
    assert_eq!(a.engine().owned_shards().await.len(), 32);

    // With Redis on the newcomer only, it still refuses: the first limits alone.
    let mut s = common::settings(&a.database_url);
    fast(&mut s);
    shared(&mut s);
    let err = match neuronx::app::App::start(s).await {
        Ok(_) => panic!("started beside an instance that limits sends alone"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("without Redis"), "{err}");
    a.stop().await;
}

/// A caller on an instance that does not own the actor is answered when the owner's commit
/// notifies (issue #13, item 10), not by polling the answers table every few milliseconds: the
/// reads that found the answers were woken by the notification.
#[tokio::test]
async fn answers_for_callers_on_another_instance_arrive_by_notification() {
    let a = TestApp::spawn_with(Backend::Postgres, shared).await;
    let b = a.peer(shared).await;
    balanced(&[&a, &b], &[16, 16]).await;
    let owned_by_a: HashSet<i32> = a
        .engine()
        .owned_shards()
        .await
        .into_iter()
        .map(|(s, _)| s.0)
        .collect();
    let mut remote = 0;
    for i in 0..12 {
        let id = a.create(&format!("lead-{i}"), 300).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        if !owned_by_a.contains(&shard_of(&a, &id).await) {
            continue;
        }
        // Asked of B, applied by A.
        let (status, body) = b
            .post(&format!("/v1/opportunities/{id}/pause"), json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["paused"], true);
        remote += 1;
    }
    assert!(remote >= 2, "leads on A's shards: {remote}");
    let (_, metrics) = b
        .request(reqwest::Method::GET, "/metrics", None, None)
        .await;
    let woken = |how: &str| {
        metrics
            .as_str()
            .unwrap()
            .lines()
            .find_map(|l| {
                l.strip_prefix(&format!("neuronx_remote_answers_total{{woken=\"{how}\"}} "))
            })
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    assert!(
        woken("notification") >= 1.0,
        "no answer was read on a notification (first {}, notification {}, poll {})",
        woken("first"),
        woken("notification"),
        woken("poll")
    );
    b.stop().await;
    a.stop().await;
}
