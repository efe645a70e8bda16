//! The membership, free-shard and remote-answer parts of the store, checked on both backends.

#[macro_use]
mod common;

use std::time::Duration;

use neuronx_supervision::store::{CommitOutcome, CommitRecord, Consumed, Inserted, NewInput};
use neuronx_supervision::{ActorKey, ActorKind, ShardId, Store, TenantId};
use serde_json::json;
use uuid::Uuid;

use common::SHARDS;

conformance!(
    heartbeats_register_instances_and_refresh_them,
    free_shards_are_the_unowned_and_the_expired,
    an_answer_stored_with_a_transition_is_taken_once,
);

const TTL: Duration = Duration::from_secs(3);

async fn heartbeats_register_instances_and_refresh_them(store: Store) {
    let first = store.heartbeat("b", true, true).await.expect("heartbeat");
    assert_eq!(first.instances.len(), 1);
    let b = &first.instances[0];
    assert_eq!((b.id.as_str(), b.shared_limits), ("b", true));
    assert_eq!(b.started_at_ms, b.heartbeat_at_ms);

    let m = store.heartbeat("a", true, false).await.expect("heartbeat");
    let ids: Vec<&str> = m.live(TTL).iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, vec!["a", "b"], "live instances, sorted by id");

    // A later beat keeps the start time and moves the heartbeat.
    let again = store.heartbeat("b", false, true).await.expect("heartbeat");
    let b2 = again.instances.iter().find(|i| i.id == "b").expect("b");
    assert_eq!(b2.started_at_ms, b.started_at_ms);
    assert!(b2.heartbeat_at_ms >= b.heartbeat_at_ms);

    // An instance whose beat is older than the TTL is not live.
    let later = neuronx_supervision::store::Membership {
        now_ms: again.now_ms + 10_000,
        instances: again.instances.clone(),
    };
    assert!(later.live(TTL).is_empty());

    store.deregister("a").await.expect("deregister");
    let m = store.membership().await.expect("membership");
    let ids: Vec<&str> = m.instances.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, vec!["b"]);
    assert_eq!(
        store
            .prune_instances(m.now_ms + 60_000)
            .await
            .expect("prune"),
        1
    );
    assert!(store
        .membership()
        .await
        .expect("membership")
        .instances
        .is_empty());
}

async fn free_shards_are_the_unowned_and_the_expired(store: Store) {
    let all: Vec<ShardId> = (0..SHARDS as i32).map(ShardId).collect();
    assert_eq!(store.free_shards().await.expect("free"), all);
    store
        .claim_shard(ShardId(3), "a", TTL, false)
        .await
        .expect("claim")
        .expect("free shard claimed");
    store
        .claim_shard(ShardId(5), "a", Duration::from_millis(1), false)
        .await
        .expect("claim")
        .expect("free shard claimed");
    // Shard 5's lease runs out after a millisecond; poll rather than sleep a guess.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let free = store.free_shards().await.expect("free");
        assert!(!free.contains(&ShardId(3)), "a live lease is not free");
        if free.contains(&ShardId(5)) {
            assert_eq!(free.len(), SHARDS as usize - 1);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "expired lease never freed"
        );
        tokio::task::yield_now().await;
    }
}

async fn an_answer_stored_with_a_transition_is_taken_once(store: Store) {
    let key = ActorKey::root(
        TenantId(Uuid::new_v4()),
        ActorKind("opportunity"),
        Uuid::new_v4(),
    );
    let shard = key.shard(SHARDS);
    let epoch = store
        .claim_shard(shard, "a", TTL, true)
        .await
        .expect("claim")
        .expect("forced")
        .epoch;
    let inserted = store
        .insert_inbox(&[NewInput {
            key,
            shard,
            dedupe_key: Uuid::new_v4().to_string(),
            remember: false,
            input: json!({"type": "pause"}),
            reply: true,
            notify: true,
        }])
        .await
        .expect("insert");
    let Inserted::New { id, .. } = inserted[0] else {
        panic!("expected a new input, got {inserted:?}");
    };
    let rows = store
        .pending_inbox(shard, i64::MAX, 10)
        .await
        .expect("poll");
    assert!(
        rows.iter().any(|r| r.id == id && r.reply),
        "the flag is kept"
    );
    assert_eq!(
        store.take_replies(&[id]).await.expect("take"),
        vec![None],
        "not applied yet"
    );

    let outcome = store
        .commit(&[CommitRecord {
            key,
            shard,
            epoch,
            now_ms: chrono::Utc::now().timestamp_millis(),
            consumed: Consumed::Inbox { id },
            checkpoint: None,
            effects: Vec::new(),
            timers: Vec::new(),
            timeline: Vec::new(),
            sends: Vec::new(),
            outbox: None,
            lookups: Vec::new(),
            reply: Some(json!({"applied": {"paused": true}}).to_string()),
        }])
        .await
        .expect("commit");
    assert!(matches!(outcome[0], CommitOutcome::Committed { .. }));
    let taken = store.take_replies(&[id + 1, id]).await.expect("take");
    assert_eq!(
        taken,
        vec![None, Some(json!({"applied": {"paused": true}}))]
    );
    assert_eq!(
        store.take_replies(&[id]).await.expect("take"),
        vec![None],
        "taken once"
    );
    assert_eq!(store.prune_replies(i64::MAX).await.expect("prune"), 0);
}

/// PostgreSQL only: the lock a group commit takes while it checks epochs holds a takeover back
/// until the commit ends (so the epoch cannot move under it), and does not hold back the owner's
/// lease renewals (which leave the epoch alone and once stalled every commit behind them).
#[tokio::test]
async fn pg_a_takeover_waits_for_a_commit_in_flight_and_a_renewal_does_not() {
    let db = common::postgres().await;
    let store = db.store.clone();
    let Store::Postgres(pg) = &store else {
        panic!("common::postgres gives a PostgreSQL store")
    };
    let shard = ShardId(3);
    let lease = store
        .claim_shard(shard, "a", TTL, false)
        .await
        .expect("claim")
        .expect("a free shard");

    // The fencing read of pg_commit::try_commit, left open as if the batch were being written.
    let mut commit = pg.pool().begin().await.expect("begin");
    // The engine's sessions end a transaction idle for a second; this one must outlive the
    // checks below however slow the machine.
    sqlx::query("SET LOCAL idle_in_transaction_session_timeout = 0")
        .execute(&mut *commit)
        .await
        .expect("no idle timeout for the held commit");
    let epoch: i64 =
        sqlx::query_scalar("SELECT epoch FROM shards WHERE id = ANY($1) ORDER BY id FOR KEY SHARE")
            .bind(vec![shard.0])
            .fetch_one(&mut *commit)
            .await
            .expect("the commit's lock");
    assert_eq!(epoch, lease.epoch.0);

    let renewed = tokio::time::timeout(
        Duration::from_secs(5),
        store.renew_shards("a", &[(shard, lease.epoch)], TTL),
    )
    .await
    .expect("a renewal does not wait for a commit in flight")
    .expect("renew");
    assert_eq!(renewed.len(), 1);
    assert_eq!(renewed[0].epoch, lease.epoch);

    let taker = store.clone();
    let takeover = tokio::spawn(async move { taker.claim_shard(shard, "b", TTL, true).await });
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock'
               AND query LIKE '%epoch = s.epoch + 1%'",
        )
        .fetch_one(pg.pool())
        .await
        .expect("pg_stat_activity");
        if waiting == 1 {
            break;
        }
        assert!(
            !takeover.is_finished(),
            "the takeover went through while a commit held the old epoch"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "the takeover never waited for the commit's lock"
        );
        tokio::task::yield_now().await;
    }
    assert!(!takeover.is_finished());
    commit.commit().await.expect("commit");
    let taken = takeover
        .await
        .expect("join")
        .expect("claim")
        .expect("a forced claim takes the shard");
    assert_eq!(taken.epoch.0, lease.epoch.0 + 1);
    db.finish().await;
}

/// PostgreSQL only: with every connection of the store's pool held (a burst of API requests in
/// their transactions), the heartbeat and the lease renewal still go through on connections of
/// their own, so load on the API cannot make an instance miss its lease and stop its shards.
#[tokio::test]
async fn pg_a_full_pool_does_not_hold_back_the_heartbeat_or_the_renewal() {
    let db = common::postgres().await;
    let store = db.store.clone();
    let Store::Postgres(pg) = &store else {
        panic!("common::postgres gives a PostgreSQL store")
    };
    let shard = ShardId(5);
    let lease = store
        .claim_shard(shard, "a", TTL, false)
        .await
        .expect("claim")
        .expect("a free shard");
    let mut held = Vec::new();
    while let Ok(Ok(conn)) =
        tokio::time::timeout(Duration::from_millis(200), pg.pool().acquire()).await
    {
        held.push(conn);
    }
    assert!(!held.is_empty(), "the pool lent its connections");
    let beat = tokio::time::timeout(Duration::from_secs(3), store.heartbeat("a", true, false))
        .await
        .expect("the heartbeat does not wait for the API's connections")
        .expect("heartbeat");
    assert!(beat.instances.iter().any(|i| i.id == "a"));
    let renewed = tokio::time::timeout(
        Duration::from_secs(3),
        store.renew_shards("a", &[(shard, lease.epoch)], TTL),
    )
    .await
    .expect("the renewal does not wait for the API's connections")
    .expect("renew");
    assert_eq!(renewed.len(), 1);
    drop(held);
    db.finish().await;
}
