#![allow(clippy::unwrap_used)]
//! One clock: two instances on one PostgreSQL database whose wall clocks are 5 s fast and 5 s
//! slow still fire every timer on time by the database's clock, never early and at most a
//! second late (issue #13, item 2). Without the offset the fast one fired its first-touch SLAs
//! five seconds early and the slow one armed them two seconds in the past.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{eventually, redis_url, Backend, TestApp};
use neuronx_supervision::{Clock, Store};
use serde_json::json;

/// The database's own time, in milliseconds.
async fn db_now(store: &Store) -> i64 {
    let Store::Postgres(pg) = store else {
        panic!("PostgreSQL only")
    };
    sqlx::query_scalar("SELECT (extract(epoch from clock_timestamp()) * 1000)::bigint")
        .fetch_one(pg.pool())
        .await
        .unwrap()
}

/// The first-touch SLA timers armed now: opportunity id → due time.
async fn armed(store: &Store) -> HashMap<String, i64> {
    let Store::Postgres(pg) = store else {
        panic!("PostgreSQL only")
    };
    sqlx::query_as::<_, (String, i64)>(
        "SELECT CAST(actor_id AS TEXT), due_at FROM timers WHERE name = 'first_touch_sla'",
    )
    .fetch_all(pg.pool())
    .await
    .unwrap()
    .into_iter()
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_whose_clocks_are_5_s_apart_fire_timers_on_the_databases_time() {
    let fast = TestApp::spawn_with(Backend::Postgres, |s| {
        s.server.redis_url = redis_url();
        s.engine.clock_skew_ms = 5_000;
    })
    .await;
    let slow = fast
        .peer(|s| {
            s.server.redis_url = redis_url();
            s.engine.clock_skew_ms = -5_000;
        })
        .await;
    eventually(Duration::from_secs(20), "both to hold shards", || async {
        let (a, b) = (
            fast.engine().owned_shards().await.len(),
            slow.engine().owned_shards().await.len(),
        );
        (a > 0 && b > 0 && a + b == 32).then_some(())
    })
    .await;
    let store = fast.engine().store().clone();
    // Leads nobody can reach (no consent): only their first-touch SLA runs, 3 s after creation.
    // Created through both instances, they live on the shards of both.
    let mut ids = Vec::new();
    for i in 0..12 {
        let app = if i % 2 == 0 { &fast } else { &slow };
        let (status, body) = app
            .post(
                "/v1/opportunities",
                json!({
                    "external_id": format!("lead-{i}"),
                    "playbook": "demo",
                    "sla": {"first_touch_seconds": 3},
                    "contact": {
                        "name": format!("Lead {i}"),
                        "phone": common::day_phone(&format!("555{:04}", 100 + i)),
                        "timezone": common::daytime_zone(),
                        "consent": {"voice": false, "sms": false}
                    }
                }),
            )
            .await;
        assert!(status.is_success(), "{body}");
        ids.push(body["id"].as_str().unwrap().to_owned());
    }
    // Watch each timer until it is consumed, by the database's clock.
    let mut due: HashMap<String, i64> = HashMap::new();
    let mut fired: HashMap<String, i64> = HashMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while fired.len() < ids.len() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timers still armed: {:?}",
            due.keys()
                .filter(|k| !fired.contains_key(*k))
                .collect::<Vec<_>>()
        );
        let now = armed(&store).await;
        let at = db_now(&store).await;
        for (id, due_at) in &now {
            due.insert(id.clone(), *due_at);
        }
        for id in &ids {
            if due.contains_key(id) && !now.contains_key(id) && !fired.contains_key(id) {
                fired.insert(id.clone(), at);
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let created_sla_ok = |id: &String| due[id];
    for id in &ids {
        let (due_at, seen_gone) = (created_sla_ok(id), fired[id]);
        // Consumed only once the database's clock reached it (20 ms for the offset's error)...
        assert!(
            seen_gone >= due_at - 20,
            "{id} fired {} ms early by the database's clock",
            due_at - seen_gone
        );
        // ...and within a second of it (plus this poll's own step).
        assert!(
            seen_gone <= due_at + 1_000 + 100,
            "{id} fired {} ms late",
            seen_gone - due_at
        );
    }
    slow.stop().await;
    fast.stop().await;
}

/// The engine on a simulated clock: a first-touch SLA due in five minutes fires as soon as the
/// test moves the clock five minutes on, with no real wait, and not a moment before; the
/// escalation is stamped with the simulated time (issue #13, item 2: a simulated clock lets
/// tests advance time without sleeping).
async fn a_simulated_clock_fires_a_five_minute_sla_when_moved_there(backend: Backend) {
    let start = chrono::Utc::now().timestamp_millis();
    let clock = Clock::simulated(start);
    let t = TestApp::spawn_with_clock(backend, clock.clone()).await;
    let (status, body) = t
        .post(
            "/v1/opportunities",
            json!({
                "external_id": "lead-sim",
                "playbook": "demo",
                "sla": {"first_touch_seconds": 300},
                "contact": {
                    "name": "Lead",
                    "phone": common::day_phone("5550100"),
                    "timezone": common::daytime_zone(),
                    "consent": {"voice": false, "sms": false}
                }
            }),
        )
        .await;
    assert!(status.is_success(), "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    // A create may answer 202 (durable, applied a moment later): wait until it reads back. The
    // clock creeps meanwhile, as time does: the inbox's safety-net poll takes only rows older
    // than a moment, so on a clock that stood still an input whose delivery was lost would wait
    // for ever.
    eventually(Duration::from_secs(20), "the opportunity", || async {
        clock.advance(25);
        let (status, _) = t.get(&format!("/v1/opportunities/{id}")).await;
        status.is_success().then_some(())
    })
    .await;
    assert!(clock.now_ms() < start + 60_000, "the clock crept a minute");
    let escalated = |timeline: &[serde_json::Value]| {
        timeline
            .iter()
            .find(|e| e["kind"] == "sla_escalated")
            .cloned()
    };
    // A minute short: nothing fires, however long the engine is given (a refill included).
    clock.set(start + 240_000);
    let real = std::time::Instant::now();
    tokio::task::yield_now().await;
    let settled = t.timeline(&id).await;
    assert!(escalated(&settled).is_none(), "fired early: {settled:?}");
    clock.set(start + 300_000);
    let entry = eventually(Duration::from_secs(10), "the SLA escalation", || async {
        clock.advance(25);
        escalated(&t.timeline(&id).await)
    })
    .await;
    assert!(
        real.elapsed() < Duration::from_secs(10),
        "five simulated minutes took real ones"
    );
    let at = chrono::DateTime::parse_from_rfc3339(entry["at"].as_str().unwrap())
        .unwrap()
        .timestamp_millis();
    assert!(at >= start + 300_000, "stamped before it was due: {entry}");
    t.stop().await;
}

both_backends!(a_simulated_clock_fires_a_five_minute_sla_when_moved_there);
