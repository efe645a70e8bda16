#![allow(clippy::unwrap_used)]
//! Backlogs (issue #13, item 6): what a host holds in memory while work waits for room, and
//! how tenants share that room.

mod common;

use std::time::Duration;

use common::{eventually, sql, Backend, TestApp};
use neuronx_actors::opportunity as opp;
use neuronx_supervision::store::NewInput;
use neuronx_supervision::{ActorKey, ShardId, TenantId};
use serde_json::json;

/// An input for an opportunity that does not exist: refused and consumed, one transition each.
fn refused_pause(key: ActorKey, dedupe_key: String) -> NewInput {
    NewInput {
        key,
        shard: key.shard(32),
        dedupe_key,
        remember: true,
        input: json!({"type": "pause", "by": "backlog"}),
        reply: false,
        notify: false,
    }
}

/// Queues one input for each of `keys` in the inbox, as a takeover finds them.
async fn queue(t: &TestApp, keys: impl Iterator<Item = ActorKey>, prefix: &str) {
    let inputs: Vec<NewInput> = keys
        .enumerate()
        .map(|(i, key)| refused_pause(key, format!("{prefix}-{i}")))
        .collect();
    t.engine().store().insert_inbox(&inputs).await.unwrap();
}

/// New opportunity keys of `tenant`.
fn keys(tenant: TenantId) -> impl Iterator<Item = ActorKey> {
    std::iter::repeat_with(move || opp::key(tenant, uuid::Uuid::new_v4()))
}

/// The highest value of `name` seen until the inbox is empty.
async fn peak_until_drained(t: &TestApp, name: &str) -> f64 {
    let mut peak = 0.0f64;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        peak = peak.max(t.gauge(name).await);
        let backlog = t.engine().store().backlog(i64::MAX).await.unwrap();
        if backlog.inbox == 0 {
            return peak;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the backlog did not drain: {backlog:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A backlog of inputs for many actors (as a takeover finds) wakes at most the resident cap of
/// actors at once: the rest wait with their inputs until there is room, and all are applied
/// (issue #13, item 6). Before, every actor with work was spawned at once.
async fn a_backlog_never_wakes_more_actors_than_the_cap(backend: Backend) {
    let t = TestApp::spawn_with(backend, |s| s.engine.max_resident_actors = 64).await;
    let tenant = TenantId(t.tenant.parse().unwrap());
    queue(&t, keys(tenant).take(400), "backlog").await;
    let peak = peak_until_drained(&t, "neuronx_resident_actors").await;
    assert!(
        peak <= 64.0,
        "{peak} actors alive at once, over the cap of 64"
    );
    assert!(peak >= 1.0, "the drain was observed");
    assert_eq!(t.gauge("neuronx_actors_awaiting_activation").await, 0.0);
    t.stop().await;
}

/// A shard's backlog is read a page at a time, the page sized to the host's share of the
/// resident cap: what waits in memory for room stays about one page, however long the backlog
/// (issue #13, item 6). Before, a host read up to 1,000 inputs at once and held every one it
/// could not run yet (a takeover of 256 shards held 256,000 parsed inputs).
async fn a_shards_backlog_is_read_a_page_at_a_time(backend: Backend) {
    // 64 actors over 32 shards: a share of 2 actors, a page of 16 inputs.
    let t = TestApp::spawn_with(backend, |s| s.engine.max_resident_actors = 64).await;
    let tenant = TenantId(t.tenant.parse().unwrap());
    let on_shard_5 = keys(tenant).filter(|key| key.shard(32) == ShardId(5));
    queue(&t, on_shard_5.take(300), "paged").await;
    let peak = peak_until_drained(&t, "neuronx_actors_awaiting_activation").await;
    assert!(
        peak <= 16.0,
        "{peak} actors waited in memory for room at once, over a page of 16"
    );
    t.stop().await;
}

/// Room in a full host goes to tenants in turn: one tenant's flood of waiting actors does not
/// hold another tenant's input behind all of it (issue #13, item 6).
async fn a_tenants_flood_does_not_hold_another_tenants_input_behind_it(backend: Backend) {
    // One actor at a time per host: everything on one shard waits its turn.
    let t = TestApp::spawn_with(backend, |s| s.engine.max_resident_actors = 32).await;
    let a = TenantId(t.tenant.parse().unwrap());
    let b = neuronx::tenants::create(t.engine().store(), "other")
        .await
        .unwrap()
        .tenant_id;
    let on_shard_7 = |tenant| keys(tenant).filter(|key| key.shard(32) == ShardId(7));
    queue(
        &t,
        on_shard_7(a).take(200).chain(on_shard_7(b).take(1)),
        "flood",
    )
    .await;
    // Inputs of `tenant` still waiting in the inbox.
    let waiting = |tenant: TenantId| {
        let store = t.engine().store().clone();
        async move {
            let n = sql(
                &store,
                &format!(
                    "SELECT CAST(count(*) AS TEXT) FROM inbox WHERE CAST(tenant_id AS TEXT) = '{}'",
                    tenant.0
                ),
            )
            .await;
            n[0].parse::<i64>().unwrap()
        }
    };
    let a_left = eventually(
        Duration::from_secs(60),
        "tenant B's input to apply",
        || async {
            if waiting(b).await != 0 {
                return None;
            }
            Some(waiting(a).await)
        },
    )
    .await;
    assert!(
        a_left >= 100,
        "tenant B waited behind {} of tenant A's 200 inputs",
        200 - a_left
    );
    t.stop().await;
}

/// While more actors wait for room than half the resident cap, the dispatcher claims nothing:
/// an effect's follow-up would only join the queue. The effect waits in the outbox and is sent
/// once the hosts have caught up (issue #13, item 6: a takeover's effects and timers had
/// brought 90,000 waiting actors into memory).
async fn effects_wait_in_the_outbox_while_the_hosts_are_behind(backend: Backend) {
    // One actor per host; more than 4 waiting is "behind".
    let t = TestApp::spawn_with(backend, |s| s.engine.max_resident_actors = 8).await;
    let tenant = TenantId(t.tenant.parse().unwrap());
    queue(&t, keys(tenant).take(400), "behind").await;
    // The hosts are behind before the lead comes: its create is a caller, served first; its
    // dial is not.
    eventually(
        Duration::from_secs(30),
        "the hosts to fall behind",
        || async { (t.gauge("neuronx_actors_awaiting_activation").await >= 4.0).then_some(()) },
    )
    .await;
    t.create("lead-behind", 300).await;
    let store = t.engine().store().clone();
    eventually(
        Duration::from_secs(60),
        "the backlog to drain and the dial to go",
        || async {
            let backlog = store.backlog(i64::MAX).await.unwrap();
            let dialled = sql(&store, "SELECT status FROM outbox WHERE channel = 'voice'").await;
            (backlog.inbox == 0 && dialled.iter().any(|s| s == "done")).then_some(())
        },
    )
    .await;
    assert!(
        t.gauge("neuronx_outbox_claims_held_back_total").await >= 1.0,
        "the dial was claimed while the hosts were behind"
    );
    t.stop().await;
}

/// At most half the resident cap of timer firings are in flight at once; the rest wait and
/// fire as the first ones are consumed, none lost (issue #13, item 6).
async fn timers_past_the_firing_bound_all_fire(backend: Backend) {
    // Four firings in flight at most.
    let t = TestApp::spawn_with(backend, |s| s.engine.max_resident_actors = 8).await;
    for i in 0..20 {
        t.create(&format!("lead-{i}"), 1).await;
    }
    eventually(
        Duration::from_secs(60),
        "20 first-touch timers to fire",
        || async { (t.gauge("neuronx_timer_lateness_seconds_count").await >= 20.0).then_some(()) },
    )
    .await;
    t.stop().await;
}

both_backends!(
    timers_past_the_firing_bound_all_fire,
    effects_wait_in_the_outbox_while_the_hosts_are_behind,
    a_shards_backlog_is_read_a_page_at_a_time,
    a_tenants_flood_does_not_hold_another_tenants_input_behind_it,
    a_backlog_never_wakes_more_actors_than_the_cap,
);
