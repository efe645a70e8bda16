#![allow(clippy::unwrap_used)]
//! Shard hosts stop outside the manager's tick (issue #13, item 3): a host whose actor is stuck
//! in a commit, given up in a rebalance, does not delay the renewal of the shards kept.
//!
//! Before the fix the manager stopped given-up hosts one by one inside its only handler, each
//! for up to 5 s (10 s when the database stalls), and renewed nothing meanwhile.

mod common;

use std::time::{Duration, Instant};

use common::{Backend, TestApp};
use serde_json::json;
use sqlx::{Connection, PgConnection};

const NOW_MS: &str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";
const SHARDS: i32 = 32;
const TTL_MS: i64 = 3000;

async fn shard_of(db: &mut PgConnection, id: &str) -> i32 {
    sqlx::query_scalar("SELECT shard FROM actors WHERE id = $1::uuid")
        .bind(id)
        .fetch_one(db)
        .await
        .unwrap()
}

/// Registers (or refreshes) a peer that holds nothing: this instance's fair share halves.
async fn heartbeat_peer(db: &mut PgConnection) -> i64 {
    sqlx::query_scalar(&format!(
        "INSERT INTO instances (id, started_at, heartbeat_at, shared_limits)
         VALUES ('peer-that-holds-nothing', {NOW_MS}, {NOW_MS}, true)
         ON CONFLICT (id) DO UPDATE SET heartbeat_at = EXCLUDED.heartbeat_at
         RETURNING heartbeat_at"
    ))
    .fetch_one(db)
    .await
    .unwrap()
}

async fn waiting_locks(db: &mut PgConnection) -> i64 {
    // pg_stat_activity, not pg_locks: other tests' databases share the server.
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity
         WHERE datname = current_database() AND wait_event_type = 'Lock'",
    )
    .fetch_one(db)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_actor_stuck_in_a_commit_does_not_delay_the_next_renewal() {
    let app = TestApp::spawn_with(Backend::Postgres, |s| {
        s.engine.lease_ttl_ms = TTL_MS as u64;
        s.engine.lease_renew_ms = 200;
    })
    .await;
    let mut db = PgConnection::connect(&app.database_url).await.unwrap();

    // A rebalance to half keeps the lower shards (held leases sorted) and gives the upper ones
    // back: the stuck actor must live in the upper half.
    let mut stuck = None;
    for n in 0..40 {
        let id = app.create(&format!("lead-{n}"), 300).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        if shard_of(&mut db, &id).await >= SHARDS / 2 {
            stuck = Some(id);
            break;
        }
    }
    let stuck = stuck.expect("a lead in the upper half of the shards");
    let stuck_shard = shard_of(&mut db, &stuck).await;

    // Hold its row from outside: the next transition's commit waits on the lock.
    let mut locker = PgConnection::connect(&app.database_url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut locker).await.unwrap();
    sqlx::query("SELECT 1 FROM actors WHERE id = $1::uuid FOR UPDATE")
        .bind(&stuck)
        .execute(&mut locker)
        .await
        .unwrap();
    let pause = {
        let (client, base, key) = (app.client.clone(), app.base.clone(), app.key.clone());
        let id = stuck.clone();
        tokio::spawn(async move {
            client
                .post(format!("{base}/v1/opportunities/{id}/pause"))
                .bearer_auth(key)
                .json(&json!({"operator": "ops"}))
                .send()
                .await
        })
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while waiting_locks(&mut db).await == 0 {
        assert!(
            Instant::now() < deadline,
            "the pause's commit never waited on the held row"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    // A peer joins: the next tick gives the upper half back, the stuck host among them.
    let registered_at = heartbeat_peer(&mut db).await;
    let joined = Instant::now();
    // A renewal of a kept shard that began at least a second after the peer joined: the tick
    // that started the release is long over. Before the fix it came after 5 s or more.
    let wanted = registered_at + TTL_MS + 1000;
    loop {
        heartbeat_peer(&mut db).await;
        let until: i64 = sqlx::query_scalar("SELECT lease_until FROM shards WHERE id = 0")
            .fetch_one(&mut db)
            .await
            .unwrap();
        if until >= wanted {
            break;
        }
        assert!(
            joined.elapsed() < Duration::from_secs(3),
            "no renewal within 3 s of the rebalance: the manager waited behind a stopping host"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        waiting_locks(&mut db).await > 0,
        "the commit was still stuck while the kept shards were renewed"
    );

    // The stuck host is killed after its grace and only then is its lease given back.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        heartbeat_peer(&mut db).await;
        let owner: Option<String> = sqlx::query_scalar("SELECT owner FROM shards WHERE id = $1")
            .bind(stuck_shard)
            .fetch_one(&mut db)
            .await
            .unwrap();
        if owner.is_none() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the stuck host's shard {stuck_shard} was never released"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let owned = app.engine().owned_shards().await;
    assert_eq!(owned.len(), (SHARDS / 2) as usize, "{owned:?}");

    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();
    pause.abort();
    // Every host's counts leave the gauges with it, the killed one's included (a kill skips
    // `post_stop`, which used to give them back).
    // A host killed while its post_stop waits for a stuck child gives them back when that
    // wait ends (up to 10 s), so this polls.
    let metrics = app.engine().metrics().clone();
    app.stop().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let gauges = (
            metrics.resident_actors.get(),
            metrics.inbox_depth.get(),
            metrics.awaiting_activation.get(),
        );
        if gauges == (0, 0, 0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "gauges left by stopped or killed hosts: {gauges:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
