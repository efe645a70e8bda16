#![allow(clippy::unwrap_used)]
//! The engine's guarantees seen from outside: fencing, dead letters, restarts of failed actors.

mod common;

use std::time::Duration;

use common::{eventually, metric, sql, Backend, TestApp};
use neuronx_actors::opportunity as opp;
use neuronx_supervision::store::{Inserted, NewInput};
use neuronx_supervision::{ShardId, TenantId};
use reqwest::StatusCode;
use serde_json::json;

async fn a_stale_epoch_write_is_rejected_counted_and_the_shard_stops(backend: Backend) {
    // The fenced command answers 202 once the wait for its reply runs out: keep it short.
    let t = TestApp::spawn_with(backend, |s| s.engine.reply_timeout_ms = 3_000).await;
    let id = t.create("lead-1", 300).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Another instance takes every shard, as after this one's lease expired; the lead's shard
    // last, just before the command: this instance's next lease renewal (every second) drops a
    // shard it finds taken, and a renewal landing between that take and the command would
    // stop the shard before any write to it could be fenced.
    let store = t.engine().store().clone();
    let tenant = TenantId(t.tenant.parse().unwrap());
    let lead_shard = opp::key(tenant, id.parse().unwrap()).shard(32);
    let others = (0..32).map(ShardId).filter(|s| *s != lead_shard);
    for shard in others.chain([lead_shard]) {
        let lease = store
            .claim_shard(shard, "intruder", Duration::from_secs(60), true)
            .await
            .unwrap();
        assert!(lease.is_some());
    }
    // Read once the shards are gone: the create's first touch may have committed a version or
    // two before (its loopback call's reports), and nothing can commit after.
    let (_, before) = t.get(&format!("/v1/opportunities/{id}")).await;
    let (status, body) = t
        .post(&format!("/v1/opportunities/{id}/pause"), json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (_, view) = t.get(&format!("/v1/opportunities/{id}")).await;
    assert_eq!(view["paused"], false, "a fenced commit writes nothing");
    assert_eq!(view["version"], before["version"], "{view}");
    // The 202 came when the wait for the reply ran out; under load the fenced commit may be
    // refused a moment later.
    eventually(
        Duration::from_secs(30),
        "the fenced commit to be counted",
        || async { (t.gauge("neuronx_fencing_rejections_total").await >= 1.0).then_some(()) },
    )
    .await;
    eventually(
        Duration::from_secs(10),
        "this instance to drop its shards",
        || async { t.engine().owned_shards().await.is_empty().then_some(()) },
    )
    .await;
    let (status, _) = t.request(reqwest::Method::GET, "/readyz", None, None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    t.stop().await;
}

async fn a_poisoned_input_goes_to_the_dead_letters_and_the_actor_moves_on(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let id = t.create("lead-1", 300).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let tenant = TenantId(t.tenant.parse().unwrap());
    let key = opp::key(tenant, id.parse().unwrap());
    let inserted = t
        .engine()
        .store()
        .insert_inbox(&[NewInput {
            key,
            shard: key.shard(32),
            dedupe_key: "poison-1".into(),
            remember: true,
            input: json!({"type": "no_such_input"}),
            reply: false,
            notify: false,
        }])
        .await
        .unwrap();
    assert!(matches!(inserted[0], Inserted::New { .. }));
    let letters = eventually(Duration::from_secs(15), "the dead letter", || async {
        let (_, body) = t.get("/v1/dead-letters").await;
        let items = body["items"].as_array().cloned().unwrap_or_default();
        (!items.is_empty()).then_some(items)
    })
    .await;
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0]["actor_id"], id.as_str());
    assert_eq!(letters[0]["attempts"], 3);
    assert!(letters[0]["error"]
        .as_str()
        .unwrap()
        .contains("undecodable input"));
    // The actor restarted from its checkpoint and keeps working.
    let before = eventually(Duration::from_secs(10), "the first call to end", || async {
        let (_, v) = t.get(&format!("/v1/opportunities/{id}")).await;
        v["active_call"].is_null().then_some(v)
    })
    .await;
    let (status, body) = t
        .post(&format!("/v1/opportunities/{id}/pause"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["paused"], true);
    assert_eq!(body["version"], before["version"].as_i64().unwrap() + 1);
    let other = neuronx::tenants::create(t.engine().store(), "other")
        .await
        .unwrap()
        .api_key;
    let (_, theirs) = t
        .request(reqwest::Method::GET, "/v1/dead-letters", Some(&other), None)
        .await;
    assert_eq!(theirs["items"], json!([]));
    t.stop().await;
}

async fn idle_actors_passivate_and_come_back_on_their_next_input(backend: Backend) {
    let t = TestApp::spawn_with(backend, |s| s.engine.passivate_after_ms = 300).await;
    let id = t.create("lead-1", 300).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let resident = || t.gauge("neuronx_resident_actors");
    assert!(resident().await >= 1.0);
    eventually(
        Duration::from_secs(10),
        "every actor to passivate",
        || async { (resident().await == 0.0).then_some(()) },
    )
    .await;
    // State stayed in the store; the timer stayed armed; the next input reactivates it.
    let (_, before) = t.get(&format!("/v1/opportunities/{id}")).await;
    assert_eq!(before["timers"].as_array().unwrap().len(), 2, "{before}");
    let (status, body) = t
        .post(
            &format!("/v1/opportunities/{id}/escalate"),
            json!({"operator": "ana", "reason": "VIP lead"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["escalated"], true);
    assert_eq!(body["assignee"], "escalations");
    assert_eq!(body["version"], before["version"].as_i64().unwrap() + 1);
    assert!(resident().await >= 1.0);
    t.stop().await;
}

/// A burst of leads on an instance at its resident cap: the least recently used idle actors
/// passivate early instead of growing memory, and come back from their checkpoints.
async fn an_instance_at_its_resident_cap_passivates_idle_actors_early(backend: Backend) {
    const CAP: f64 = 32.0;
    let t = TestApp::spawn_with(backend, |s| {
        // One actor per shard host (32 shards), and no idle sweep within the test.
        s.engine.max_resident_actors = CAP as usize;
        s.engine.passivate_after_ms = 600_000;
    })
    .await;
    let metrics = || async {
        let (_, m) = t
            .request(reqwest::Method::GET, "/metrics", None, None)
            .await;
        let m = m.as_str().unwrap().to_owned();
        (
            metric(&m, "neuronx_resident_actors"),
            metric(&m, "neuronx_early_passivations_total"),
        )
    };
    let mut ids = Vec::new();
    for i in 0..60 {
        let body = t.create(&format!("lead-{i}"), 300).await;
        ids.push(body["id"].as_str().unwrap().to_owned());
    }
    // 60 opportunities and their first calls were activated; once their calls end, no more
    // than the cap stay in memory.
    let (resident, early) = eventually(
        Duration::from_secs(20),
        "resident actors to fall to the cap",
        || async {
            let (resident, early) = metrics().await;
            (resident <= CAP).then_some((resident, early))
        },
    )
    .await;
    assert!(
        early > 0.0,
        "early passivations {early}, resident {resident}"
    );
    // Every one answers its next input from its checkpoint.
    for id in &ids {
        let (_, before) = t.get(&format!("/v1/opportunities/{id}")).await;
        let (status, body) = t
            .post(&format!("/v1/opportunities/{id}/pause"), json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["paused"], true);
        assert_eq!(body["version"], before["version"].as_i64().unwrap() + 1);
    }
    t.stop().await;
}

/// One actor whose inputs keep failing (here: one strike each, past the restart limit of 10 in
/// 60 s) is quarantined: what it still had pending goes to the dead letters with the reason,
/// and its neighbours on the same shard go on being served by the same host.
async fn an_actor_failing_past_its_restart_limit_is_quarantined_and_its_neighbours_go_on(
    backend: Backend,
) {
    let t = TestApp::spawn_with(backend, |s| s.engine.max_strikes = 1).await;
    let tenant = TenantId(t.tenant.parse().unwrap());
    let id = t.create("lead-1", 300).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let key = opp::key(tenant, id.parse().unwrap());
    let neighbour_ext = (0..10_000)
        .map(|i| format!("neighbour-{i}"))
        .find(|ext| opp::key(tenant, opp::id_for(tenant, ext)).shard(32) == key.shard(32))
        .unwrap();
    let neighbour = t.create(&neighbour_ext, 300).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let poison: Vec<NewInput> = (0..12)
        .map(|i| NewInput {
            key,
            shard: key.shard(32),
            dedupe_key: format!("poison-{i}"),
            remember: true,
            input: json!({"type": "no_such_input", "n": i}),
            reply: false,
            notify: false,
        })
        .collect();
    t.engine().store().insert_inbox(&poison).await.unwrap();
    let letters = eventually(
        Duration::from_secs(40),
        "all twelve dead letters",
        || async {
            let (_, body) = t.get("/v1/dead-letters?limit=50").await;
            let items = body["items"].as_array().cloned().unwrap_or_default();
            (items.len() == 12).then_some(items)
        },
    )
    .await;
    let quarantined: Vec<_> = letters
        .iter()
        .filter(|l| l["error"].as_str().unwrap().contains("quarantined"))
        .collect();
    assert!(
        !quarantined.is_empty(),
        "the inputs pending when the limit was passed name the quarantine: {letters:?}"
    );
    assert!(letters.iter().all(|l| l["actor_id"] == id.as_str()));
    assert_eq!(t.gauge("neuronx_quarantined_actors_total").await, 1.0);
    // The neighbour on the same shard is served as before.
    let (status, body) = t
        .post(&format!("/v1/opportunities/{neighbour}/pause"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["paused"], true);
    // While quarantined, a command to the actor is refused at once with a JSON error, and
    // lands in the dead letters rather than waiting behind it.
    let (status, body) = t
        .post(&format!("/v1/opportunities/{id}/pause"), json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "dead_lettered", "{body}");
    t.stop().await;
}

/// An effect left claimed by this very instance (say its task was lost) is recorded unknown by
/// the periodic orphan check, with no shard changing hands (before, only a gained shard was
/// checked, and such an effect stayed claimed for good).
async fn an_effect_left_claimed_is_recorded_unknown_without_a_shard_moving(backend: Backend) {
    let t = TestApp::spawn_with(backend, |s| s.engine.orphan_after_ms = 400).await;
    t.create("lead-1", 300).await;
    let store = t.engine().store().clone();
    let dial = eventually(
        Duration::from_secs(20),
        "the dial to be recorded",
        || async {
            sql(
                &store,
                "SELECT idem_key FROM outbox WHERE channel = 'voice' AND status = 'done'",
            )
            .await
            .into_iter()
            .next()
        },
    )
    .await;
    // As if its task had been lost after the claim, ten minutes ago.
    sql(
        &store,
        &format!(
            "UPDATE outbox SET status = 'inflight', updated_at = updated_at - 600000
             WHERE idem_key = '{dial}' RETURNING status"
        ),
    )
    .await;
    eventually(
        Duration::from_secs(20),
        "the orphan check to record it",
        || async {
            let status = sql(
                &store,
                &format!("SELECT status FROM outbox WHERE idem_key = '{dial}'"),
            )
            .await;
            (status == ["unknown"]).then_some(())
        },
    )
    .await;
    t.stop().await;
}

both_backends!(
    an_effect_left_claimed_is_recorded_unknown_without_a_shard_moving,
    an_actor_failing_past_its_restart_limit_is_quarantined_and_its_neighbours_go_on,
    an_instance_at_its_resident_cap_passivates_idle_actors_early,
    idle_actors_passivate_and_come_back_on_their_next_input,
    a_stale_epoch_write_is_rejected_counted_and_the_shard_stops,
    a_poisoned_input_goes_to_the_dead_letters_and_the_actor_moves_on,
);

/// Embedded SQLite: a write that holds the database past several lease lifetimes (another
/// connection's long transaction, say an admin command or a backup) slows the engine down but
/// does not make it give up its shards, nor stop sending: its file lock means no other engine
/// can take them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_engine_keeps_its_shards_while_another_writer_holds_the_database() {
    use sqlx::Connection;
    let t = TestApp::spawn_with(Backend::Sqlite, |s| {
        s.engine.lease_ttl_ms = 1_000;
        s.engine.lease_renew_ms = 200;
    })
    .await;
    let engine = t.engine();
    let all = engine.owned_shards().await.len();
    assert_eq!(all, 32);

    let mut writer = sqlx::SqliteConnection::connect(&t.database_url)
        .await
        .unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut writer)
        .await
        .unwrap();
    // Three lease lifetimes with the database locked: every renewal in them fails.
    let until = std::time::Instant::now() + Duration::from_secs(3);
    while std::time::Instant::now() < until {
        assert_eq!(
            engine.owned_shards().await.len(),
            all,
            "the engine dropped shards while the database was busy"
        );
        assert!(
            engine.may_act(),
            "the engine stopped sending while the database was busy"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    sqlx::query("ROLLBACK").execute(&mut writer).await.unwrap();

    // And it goes on working once the database is free.
    let created = t.create("after-the-lock", 300).await;
    assert!(created["id"].is_string(), "{created}");
    assert_eq!(engine.owned_shards().await.len(), all);
}
