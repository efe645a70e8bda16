#![allow(clippy::unwrap_used)]
//! The engine's smaller guarantees (issue #13, item 10), driven through the real engine with a
//! probe entity: effects of transitions without a checkpoint keep keys of their own, inbox
//! polls do not pile up behind a slow database, and a commit whose answer is lost still has its
//! timers armed.

#[allow(dead_code, unused_macros)]
#[macro_use]
mod common;
#[path = "engine_edges/cut_proxy.rs"]
mod cut_proxy;
#[path = "engine_edges/probe.rs"]
mod probe;

use std::collections::HashSet;
use std::time::Duration;

use neuronx_supervision::{ActorKey, Store, SubmitOutcome, TenantId};
use serde_json::json;
use sqlx::Executor;
use uuid::Uuid;

use common::SHARDS;
use probe::{eventually, KIND};

fn probe_key() -> ActorKey {
    ActorKey::root(TenantId(Uuid::new_v4()), KIND, Uuid::new_v4())
}

/// Two transitions of an actor without state each emit one effect and write no checkpoint, so
/// the version does not move between them: both effects must still be written and run, under
/// two different idempotency keys (the second used to reuse the first's key and be dropped).
async fn effects_without_a_checkpoint_get_keys_of_their_own(store: Store) {
    let (engine, mut ran) = probe::start(store.clone(), SHARDS, |_| {}).await;
    let h = engine.handle();
    let key = probe_key();
    for _ in 0..2 {
        let out = h.submit(key, json!({ "op": "emit" }), None).await.unwrap();
        assert_eq!(out, SubmitOutcome::Applied(serde_json::Value::Null));
    }
    let mut keys = HashSet::new();
    eventually(Duration::from_secs(10), "both effects to run", || {
        while let Ok(k) = ran.try_recv() {
            keys.insert(k);
        }
        let n = keys.len();
        async move { (n >= 2).then_some(()) }
    })
    .await;
    let rows = store
        .outbox_of(key.tenant, KIND.as_str(), key.id)
        .await
        .unwrap();
    let stored: HashSet<String> = rows.into_iter().map(|r| r.idem_key).collect();
    assert_eq!(stored, keys, "two outbox rows, the ones that ran");
    assert!(
        store
            .get_actor(key.tenant, KIND.as_str(), key.id)
            .await
            .unwrap()
            .is_none(),
        "still no state"
    );
    engine.shutdown().await;
}

conformance!(effects_without_a_checkpoint_get_keys_of_their_own);

/// A shard host starts no inbox read while its last one is still running. The inbox is locked
/// (as a slow or stuck database would hold the reads) while the safety-net poll asks every
/// 20 ms: each host's first read waits, and no second one joins it. Before the guard every
/// interval added one read per shard, and all of them ran once the database answered.
#[tokio::test]
async fn inbox_polls_do_not_pile_up_behind_a_slow_database() {
    let db = common::postgres().await;
    let interval = Duration::from_millis(20);
    let (engine, _ran) =
        probe::start(db.store.clone(), SHARDS, |c| c.poll_interval = interval).await;
    let polls = engine.handle().metrics().inbox_polls_in_flight.clone();
    let Store::Postgres(pg) = &db.store else {
        panic!("a PostgreSQL store");
    };
    let mut lock = pg.pool().begin().await.unwrap();
    lock.execute("LOCK TABLE inbox IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    eventually(Duration::from_secs(5), "every host's read to wait", || {
        let n = polls.get();
        async move { (n >= i64::from(SHARDS)).then_some(()) }
    })
    .await;
    // Absence takes a while to show: watch thirty poll intervals pass.
    let mut most = 0;
    for _ in 0..60 {
        most = most.max(polls.get());
        tokio::time::sleep(interval / 2).await;
    }
    assert_eq!(most, i64::from(SHARDS), "one read per shard at most");
    lock.rollback().await.unwrap();
    eventually(Duration::from_secs(5), "the reads to end", || {
        let n = polls.get();
        async move { (n < i64::from(SHARDS)).then_some(()) }
    })
    .await;
    // Inputs still arrive through the polls once the database answers.
    let key = probe_key();
    let out = engine
        .handle()
        .submit(key, json!({ "op": "arm", "in_ms": 600_000 }), None)
        .await
        .unwrap();
    assert!(matches!(out, SubmitOutcome::Applied(_)), "{out:?}");
    engine.shutdown().await;
    db.finish().await;
}

/// A commit lands but its answer is lost (the connection closes between the server's COMMIT
/// and its reply): the group writer tries the batch again, finds the input consumed and
/// reports it stale. The timer that commit armed in the store must still fire on time: the
/// actor reloads and re-arms from the store. Before, the timer window heard nothing of it and
/// it fired only at the next refill, half the timer horizon (here 5 minutes) later.
#[tokio::test]
async fn a_commit_whose_answer_is_lost_still_fires_its_timer() {
    let db = common::postgres().await;
    let Store::Postgres(pg) = &db.store else {
        panic!("a PostgreSQL store");
    };
    let name: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(pg.pool())
        .await
        .unwrap();
    let url =
        std::env::var("NEURONX_TEST_PG_URL").unwrap_or_else(|_| common::DEFAULT_PG_URL.to_owned());
    let (port, faults) = cut_proxy::start(cut_proxy::upstream(&url)).await;
    let proxied = Store::connect(&cut_proxy::through(&url, port, &name), 10)
        .await
        .unwrap();
    let (engine, _ran) = probe::start(proxied.clone(), SHARDS, |c| {
        c.timer_horizon = Duration::from_secs(600);
    })
    .await;
    let key = probe_key();
    faults.cut_next_commit_after("INSERT INTO timers");
    let out = engine
        .handle()
        .submit(key, json!({ "op": "arm", "in_ms": 1_000 }), None)
        .await
        .unwrap();
    assert_eq!(
        faults.cuts(),
        1,
        "the answer to the commit was lost ({out:?})"
    );
    let store = db.store.clone();
    let seen = eventually(Duration::from_secs(10), "the timer to fire", || {
        let store = store.clone();
        async move {
            let row = store
                .get_actor(key.tenant, KIND.as_str(), key.id)
                .await
                .unwrap()?;
            let seen: probe::Seen = serde_json::from_value(row.state).unwrap();
            (seen.fired > 0).then_some(seen)
        }
    })
    .await;
    assert_eq!(seen, probe::Seen { arms: 1, fired: 1 }, "applied once each");
    engine.shutdown().await;
    proxied.close().await;
    db.finish().await;
}
