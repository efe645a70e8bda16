//! The store's contract, checked against both backends.
//!
//! Every test is written once as `async fn name(store: Store)`; `conformance!` runs it on a fresh
//! PostgreSQL database (`pg::name`) and on a fresh SQLite file (`sqlite::name`). PostgreSQL must
//! be reachable (see `common::postgres`): its tests fail rather than skip without it.

#[macro_use]
mod common;

use std::time::Duration;

use neuronx_supervision::store::{
    Backlog, CheckpointWrite, CommitOutcome, CommitRecord, Completion, Consumed, DeadLetter,
    EffectDone, EffectWrite, InboxPoll, Inserted, ListQuery, NewInput, OutboxStatus, Retried,
    StoreError, TimerWrite,
};
use neuronx_supervision::{
    ActorKey, ActorKind, Epoch, KeyType, Lookup, OutboxHold, ShardId, Store, TenantId,
    TimelineRecord,
};
use serde_json::{json, Value};
use uuid::Uuid;

use common::SHARDS;

conformance!(
    migrations_are_idempotent_and_keep_their_shard_count,
    a_live_lease_excludes_other_claimers_and_each_claim_bumps_the_epoch,
    an_expired_lease_can_be_claimed_by_another_owner,
    fencing_rejects_a_stale_epoch_and_writes_nothing,
    one_transition_commits_all_its_writes_in_one_transaction,
    a_stale_record_in_a_batch_is_left_out_and_the_rest_commit,
    a_second_writer_of_the_same_version_gets_a_version_conflict,
    a_second_creator_of_the_same_actor_gets_a_version_conflict,
    a_batch_with_two_transitions_of_one_actor_applies_them_in_order,
    a_batch_with_two_writers_of_one_version_commits_only_the_first,
    a_batch_consuming_one_input_twice_commits_it_once,
    a_timer_firing_commits_only_while_the_timer_is_unchanged,
    setting_a_timer_again_replaces_it_and_clear_removes_it,
    timers_due_before_returns_exactly_the_due_rows_in_order,
    timers_due_before_applies_its_limit_to_the_requested_shards_only,
    inbox_polls_read_together_answer_each_shard_in_order_within_its_own_limit,
    a_remembered_dedupe_key_stays_a_duplicate_after_its_input_is_consumed,
    a_key_that_is_not_remembered_is_never_deduplicated,
    the_outbox_claim_takes_pending_rows_of_held_shards_once,
    the_outbox_claim_limit_counts_only_rows_of_held_shards,
    orphaned_effects_are_reclaimed_once_fenced_and_only_when_old_enough,
    completing_an_effect_records_it_and_delivers_the_followup,
    effects_are_read_by_key_with_their_results_within_their_tenant,
    outbox_holds_move_an_actors_open_effects_between_states,
    a_shard_named_twice_in_a_claim_gives_each_effect_once,
    a_dead_letter_consumes_its_input_and_is_listed_with_its_error,
    a_dead_letter_with_a_stale_epoch_writes_nothing,
    a_retried_dead_letter_leaves_the_list_as_its_input_returns,
    reads_are_scoped_to_their_tenant,
    list_actors_filters_by_status_and_paused_and_pages_in_order,
    backlog_counts_waiting_inputs_open_effects_and_due_timers,
    pruned_dedupe_keys_are_forgotten_and_recent_ones_kept,
    lookups_are_written_with_their_commit_and_never_without_it,
);

// ----- helpers

const KIND: ActorKind = ActorKind("opportunity");
const TTL: Duration = Duration::from_secs(3);

fn now() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn tenant() -> TenantId {
    TenantId(Uuid::new_v4())
}

fn actor(tenant: TenantId) -> ActorKey {
    ActorKey::root(tenant, KIND, Uuid::new_v4())
}

/// An actor whose shard is not one of `avoid`.
fn actor_off(tenant: TenantId, avoid: &[ShardId]) -> ActorKey {
    loop {
        let key = actor(tenant);
        if !avoid.contains(&shard(&key)) {
            return key;
        }
    }
}

fn shard(key: &ActorKey) -> ShardId {
    key.shard(SHARDS)
}

/// Takes every shard (by force); returns the epochs, indexed by shard.
async fn own_all(store: &Store) -> Vec<Epoch> {
    let mut epochs = Vec::new();
    for s in all_shards() {
        epochs.push(own(store, s).await);
    }
    epochs
}

fn epoch_of(epochs: &[Epoch], key: &ActorKey) -> Epoch {
    epochs[shard(key).0 as usize]
}

/// Takes `shard` (by force) and returns its new epoch.
async fn own(store: &Store, shard: ShardId) -> Epoch {
    store
        .claim_shard(shard, "owner", TTL, true)
        .await
        .expect("claim_shard")
        .expect("a forced claim always succeeds")
        .epoch
}

fn input_to(key: &ActorKey, input: Value) -> NewInput {
    NewInput {
        key: *key,
        shard: shard(key),
        dedupe_key: Uuid::new_v4().to_string(),
        remember: true,
        input,
        reply: false,
        notify: false,
    }
}

/// Puts one input in `key`'s inbox and returns its id.
async fn deliver(store: &Store, key: &ActorKey, input: Value) -> i64 {
    deliver_keyed(store, &input_to(key, input)).await
}

/// A transition of `key` that consumes `consumed` and writes nothing else.
fn record(key: &ActorKey, epoch: Epoch, consumed: Consumed) -> CommitRecord {
    CommitRecord {
        key: *key,
        shard: shard(key),
        epoch,
        now_ms: now(),
        consumed,
        checkpoint: None,
        effects: Vec::new(),
        timers: Vec::new(),
        timeline: Vec::new(),
        sends: Vec::new(),
        outbox: None,
        lookups: Vec::new(),
        reply: None,
    }
}

fn checkpoint(expected_version: i64, state: Value) -> Option<CheckpointWrite> {
    Some(CheckpointWrite {
        expected_version,
        state,
        status: "active".to_owned(),
        paused: false,
    })
}

/// The channel `effect(idem_key)` is written on: one of its own, so these tests may claim
/// several effects of one actor at once (an actor's effects on one channel leave one at a time,
/// in commit order: see `outbox_order.rs`).
fn channel_of(idem_key: &str) -> String {
    format!("sms:{idem_key}")
}

fn effect(idem_key: &str) -> EffectWrite {
    EffectWrite {
        idem_key: idem_key.to_owned(),
        channel: channel_of(idem_key),
        payload: json!({ "text": idem_key }),
    }
}

fn entry(kind: &str) -> TimelineRecord {
    TimelineRecord {
        kind: kind.to_owned(),
        cause: "system".to_owned(),
        reason: format!("because {kind}"),
        data: json!({ "entry": kind }),
    }
}

fn set_timer(name: &str, due_at_ms: i64, input: Value) -> TimerWrite {
    TimerWrite::Set {
        name: name.to_owned(),
        due_at_ms,
        input,
    }
}

async fn commit(store: &Store, record: CommitRecord) -> CommitOutcome {
    let mut outcomes = store.commit(&[record]).await.expect("commit");
    assert_eq!(outcomes.len(), 1, "one outcome per record");
    outcomes.remove(0)
}

fn committed() -> CommitOutcome {
    CommitOutcome::Committed { sent: Vec::new() }
}

/// Creates `key` at version 1 (consuming a fresh input) under `epoch`.
async fn create_actor(store: &Store, key: &ActorKey, epoch: Epoch, state: Value) {
    let id = deliver(store, key, json!({ "op": "create" })).await;
    let mut r = record(key, epoch, Consumed::Inbox { id });
    r.checkpoint = checkpoint(0, state);
    assert_eq!(commit(store, r).await, committed());
}

async fn pending_ids(store: &Store, shard: ShardId) -> Vec<i64> {
    store
        .pending_inbox(shard, i64::MAX, 1000)
        .await
        .expect("pending_inbox")
        .into_iter()
        .map(|row| row.id)
        .collect()
}

async fn version_of(store: &Store, key: &ActorKey) -> Option<i64> {
    store
        .get_actor(key.tenant, key.kind.as_str(), key.id)
        .await
        .expect("load_actor")
        .map(|row| row.version)
}

async fn outbox_statuses(store: &Store, key: &ActorKey) -> Vec<(String, OutboxStatus)> {
    store
        .outbox_of(key.tenant, key.kind.as_str(), key.id)
        .await
        .expect("outbox_of")
        .into_iter()
        .map(|row| (row.idem_key, row.status))
        .collect()
}

async fn timers_of(store: &Store, key: &ActorKey) -> Vec<(String, i64, Value)> {
    store
        .timers_of(key.tenant, key.kind.as_str(), key.id)
        .await
        .expect("timers_of")
        .into_iter()
        .map(|row| (row.name, row.due_at_ms, row.input))
        .collect()
}

async fn timeline_kinds(store: &Store, key: &ActorKey) -> Vec<(String, i64)> {
    store
        .timeline(key.tenant, key.kind.as_str(), key.id, 0, 100)
        .await
        .expect("timeline")
        .into_iter()
        .map(|row| (row.kind, row.version))
        .collect()
}

/// Asserts that `key` has no outbox, timer or timeline rows.
async fn assert_no_side_writes(store: &Store, key: &ActorKey) {
    assert_eq!(outbox_statuses(store, key).await, vec![], "outbox of {key}");
    assert_eq!(timers_of(store, key).await, vec![], "timers of {key}");
    assert_eq!(
        timeline_kinds(store, key).await,
        vec![],
        "timeline of {key}"
    );
}

/// The inputs waiting for `key` in its shard's inbox.
async fn inputs_of(store: &Store, key: &ActorKey) -> Vec<Value> {
    store
        .pending_inbox(shard(key), i64::MAX, 1000)
        .await
        .expect("pending_inbox")
        .into_iter()
        .filter(|row| row.key.id == key.id)
        .map(|row| row.input)
        .collect()
}

fn all_shards() -> Vec<ShardId> {
    (0..SHARDS as i32).map(ShardId).collect()
}

// ----- 1. migrations

async fn migrations_are_idempotent_and_keep_their_shard_count(store: Store) {
    assert_eq!(store.shard_count().await.expect("shard_count"), SHARDS);
    store
        .migrate(SHARDS)
        .await
        .expect("a second migrate is a no-op");
    store
        .migrate(SHARDS)
        .await
        .expect("a third migrate is a no-op");
    assert_eq!(store.shard_count().await.expect("shard_count"), SHARDS);

    match store.migrate(SHARDS * 2).await {
        Err(StoreError::ShardCountMismatch { stored, configured }) => {
            assert_eq!((stored, configured), (SHARDS, SHARDS * 2));
        }
        other => panic!("expected ShardCountMismatch, got {other:?}"),
    }
    match store.migrate(4).await {
        Err(StoreError::ShardCountMismatch { stored, configured }) => {
            assert_eq!((stored, configured), (SHARDS, 4));
        }
        other => panic!("expected ShardCountMismatch, got {other:?}"),
    }
    assert_eq!(store.shard_count().await.expect("shard_count"), SHARDS);

    let shards = store.shards().await.expect("shards");
    assert_eq!(
        shards.iter().map(|s| s.shard).collect::<Vec<_>>(),
        all_shards()
    );
    for s in &shards {
        assert_eq!((s.owner.as_deref(), s.epoch), (None, Epoch(0)), "{s:?}");
    }
}

// ----- 2. leases

async fn a_live_lease_excludes_other_claimers_and_each_claim_bumps_the_epoch(store: Store) {
    let s = ShardId(3);
    let before = store.now_ms().await.expect("now_ms");
    let lease = store
        .claim_shard(s, "a", TTL, false)
        .await
        .expect("claim")
        .expect("a free shard can be claimed");
    assert_eq!((lease.shard, lease.epoch), (s, Epoch(1)));
    // Leases are timed by the engine's clock (ADR 0037), which reads the database's time within
    // a few milliseconds (here unsynced: the same machine's clock, floored, where PostgreSQL's
    // reading rounds); 10 ms of slack.
    assert!(
        lease.lease_until_ms >= before + 3000 - 10
            && lease.lease_until_ms <= before + 3000 + 60_000,
        "lease until {} for a 3 s lease taken at {before}",
        lease.lease_until_ms
    );
    let row = store.shards().await.expect("shards")[3].clone();
    assert_eq!(
        (
            row.shard,
            row.owner.as_deref(),
            row.epoch,
            row.lease_until_ms
        ),
        (s, Some("a"), Epoch(1), lease.lease_until_ms)
    );
    // The other shards are untouched.
    let others = store.shards().await.expect("shards");
    assert!(others
        .iter()
        .filter(|r| r.shard != s)
        .all(|r| r.owner.is_none() && r.epoch == Epoch(0)));

    assert_eq!(
        store.claim_shard(s, "b", TTL, false).await.expect("claim"),
        None,
        "a live lease cannot be claimed"
    );

    let renewed = store
        .renew_shards("a", &[(s, Epoch(1))], TTL)
        .await
        .expect("renew");
    assert_eq!(renewed.len(), 1);
    assert_eq!((renewed[0].shard, renewed[0].epoch), (s, Epoch(1)));
    assert!(renewed[0].lease_until_ms >= lease.lease_until_ms);
    assert_eq!(
        store
            .renew_shards("b", &[(s, Epoch(1))], TTL)
            .await
            .expect("renew"),
        vec![],
        "only the owner renews"
    );

    // Releasing at a wrong epoch or by another owner does nothing.
    store
        .release_shards("a", &[(s, Epoch(7))])
        .await
        .expect("release");
    store
        .release_shards("b", &[(s, Epoch(1))])
        .await
        .expect("release");
    assert_eq!(
        store.shards().await.expect("shards")[3].owner.as_deref(),
        Some("a")
    );

    store
        .release_shards("a", &[(s, Epoch(1))])
        .await
        .expect("release");
    let row = store.shards().await.expect("shards")[3].clone();
    assert_eq!((row.owner, row.epoch), (None, Epoch(1)));

    let lease = store
        .claim_shard(s, "b", TTL, false)
        .await
        .expect("claim")
        .expect("a released shard can be claimed");
    assert_eq!(lease.epoch, Epoch(2));
    assert_eq!(
        store
            .renew_shards("a", &[(s, Epoch(1))], TTL)
            .await
            .expect("renew"),
        vec![],
        "the old owner's epoch moved on"
    );
    store
        .release_shards("a", &[(s, Epoch(1))])
        .await
        .expect("release");
    let row = store.shards().await.expect("shards")[3].clone();
    assert_eq!((row.owner.as_deref(), row.epoch), (Some("b"), Epoch(2)));

    let lease = store
        .claim_shard(s, "c", TTL, true)
        .await
        .expect("claim")
        .expect("a forced claim takes even a live lease");
    assert_eq!(lease.epoch, Epoch(3));
    let row = store.shards().await.expect("shards")[3].clone();
    assert_eq!((row.owner.as_deref(), row.epoch), (Some("c"), Epoch(3)));
    assert_eq!(
        store
            .renew_shards("b", &[(s, Epoch(2))], TTL)
            .await
            .expect("renew"),
        vec![]
    );
}

async fn an_expired_lease_can_be_claimed_by_another_owner(store: Store) {
    let s = ShardId(5);
    let lease = store
        .claim_shard(s, "a", Duration::from_millis(1), false)
        .await
        .expect("claim")
        .expect("free");
    assert_eq!(lease.epoch, Epoch(1));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let lease = store
        .claim_shard(s, "b", TTL, false)
        .await
        .expect("claim")
        .expect("an expired lease can be claimed");
    assert_eq!(lease.epoch, Epoch(2));
    assert_eq!(
        store
            .renew_shards("a", &[(s, Epoch(1))], TTL)
            .await
            .expect("renew"),
        vec![]
    );
    let row = store.shards().await.expect("shards")[5].clone();
    assert_eq!((row.owner.as_deref(), row.epoch), (Some("b"), Epoch(2)));
}

// ----- 3. fencing

/// A lookup is part of its transition: found once the commit is, never after a fenced or stale
/// one; one name leads to several actors, newest first, and to none in another tenant.
async fn lookups_are_written_with_their_commit_and_never_without_it(store: Store) {
    const PHONE: KeyType = KeyType("phone");
    let epochs = own_all(&store).await;
    let t = tenant();
    let (first, second) = (actor(t), actor(t));
    let named = |key: &str| Lookup {
        key_type: PHONE,
        key: key.to_owned(),
    };
    let found = |key: &'static str| {
        let store = store.clone();
        async move { store.find(t, KIND, PHONE, key, 10).await.expect("find") }
    };

    let id = deliver(&store, &first, json!({ "op": "create" })).await;
    let mut r = record(&first, epoch_of(&epochs, &first), Consumed::Inbox { id });
    r.checkpoint = checkpoint(0, json!({ "n": 1 }));
    r.lookups = vec![named("+14155550101")];
    assert_eq!(commit(&store, r.clone()).await, committed());
    assert_eq!(found("+14155550101").await, vec![first.id]);

    // The same input again is stale: its other name is not written.
    r.lookups = vec![named("+14155550102")];
    assert_eq!(commit(&store, r).await, CommitOutcome::Stale);
    assert_eq!(found("+14155550102").await, Vec::<Uuid>::new());

    // A commit under an old epoch is fenced: nothing found under its name.
    let id = deliver(&store, &second, json!({ "op": "create" })).await;
    let mut r = record(
        &second,
        Epoch(epoch_of(&epochs, &second).0 - 1),
        Consumed::Inbox { id },
    );
    r.checkpoint = checkpoint(0, json!({ "n": 1 }));
    r.lookups = vec![named("+14155550101")];
    assert_eq!(commit(&store, r.clone()).await, CommitOutcome::Fenced);
    assert_eq!(found("+14155550101").await, vec![first.id]);

    // Under the right epoch, later: the newest comes first; a name given twice is kept once.
    r.epoch = epoch_of(&epochs, &second);
    r.now_ms = now() + 1_000;
    r.lookups = vec![named("+14155550101"), named("+14155550101")];
    assert_eq!(commit(&store, r).await, committed());
    assert_eq!(found("+14155550101").await, vec![second.id, first.id]);
    assert_eq!(
        store
            .find(tenant(), KIND, PHONE, "+14155550101", 10)
            .await
            .expect("find"),
        Vec::<Uuid>::new(),
        "another tenant finds nothing"
    );
}

async fn fencing_rejects_a_stale_epoch_and_writes_nothing(store: Store) {
    let t = tenant();
    let key = actor(t);
    let target = actor(t);
    let s = shard(&key);
    let epoch = store
        .claim_shard(s, "first", TTL, false)
        .await
        .expect("claim")
        .expect("free")
        .epoch;

    let id = deliver(&store, &key, json!({ "op": "create" })).await;
    let mut r = record(&key, epoch, Consumed::Inbox { id });
    r.checkpoint = checkpoint(0, json!({ "n": 1 }));
    assert_eq!(commit(&store, r).await, committed());
    assert_eq!(version_of(&store, &key).await, Some(1));

    let taken = store
        .claim_shard(s, "second", TTL, true)
        .await
        .expect("claim")
        .expect("forced");
    assert_eq!(taken.epoch, Epoch(epoch.0 + 1));

    let id = deliver(&store, &key, json!({ "op": "update" })).await;
    let mut r = record(&key, epoch, Consumed::Inbox { id });
    r.checkpoint = checkpoint(1, json!({ "n": 2 }));
    r.effects = vec![effect("fenced/1")];
    r.timers = vec![set_timer("t", now() + 60_000, json!({}))];
    r.timeline = vec![entry("fenced")];
    r.sends = vec![input_to(&target, json!({ "from": "fenced" }))];
    r.outbox = Some(OutboxHold::Hold);
    assert_eq!(commit(&store, r).await, CommitOutcome::Fenced);

    let row = store
        .get_actor(key.tenant, key.kind.as_str(), key.id)
        .await
        .expect("load_actor")
        .expect("exists");
    assert_eq!((row.version, row.state), (1, json!({ "n": 1 })));
    assert_no_side_writes(&store, &key).await;
    assert!(
        pending_ids(&store, s).await.contains(&id),
        "a fenced commit does not consume its input"
    );
    assert_eq!(inputs_of(&store, &target).await, Vec::<Value>::new());

    // The new owner's epoch commits.
    let mut r = record(&key, taken.epoch, Consumed::Inbox { id });
    r.checkpoint = checkpoint(1, json!({ "n": 2 }));
    assert_eq!(commit(&store, r).await, committed());
    assert_eq!(version_of(&store, &key).await, Some(2));
}

// ----- 4. one transition, one transaction

async fn one_transition_commits_all_its_writes_in_one_transaction(store: Store) {
    let t = tenant();
    let key = actor(t);
    let target = actor(t);
    let s = shard(&key);
    let epoch = own(&store, s).await;
    let id = deliver(&store, &key, json!({ "op": "create" })).await;
    assert!(pending_ids(&store, s).await.contains(&id));

    let due = now() + 60_000;
    let send = input_to(&target, json!({ "hello": "target" }));
    let mut r = record(&key, epoch, Consumed::Inbox { id });
    r.checkpoint = Some(CheckpointWrite {
        expected_version: 0,
        state: json!({ "stage": "new", "n": [1, 2] }),
        status: "open".to_owned(),
        paused: true,
    });
    r.effects = vec![effect("e/1"), effect("e/2")];
    r.timers = vec![set_timer("follow_up", due, json!({ "timer": "follow_up" }))];
    r.timeline = vec![entry("created"), entry("scheduled")];
    r.sends = vec![send.clone()];
    let at = r.now_ms;

    let outcome = commit(&store, r).await;
    let sent_id = match &outcome {
        CommitOutcome::Committed { sent } => match sent.as_slice() {
            [Inserted::New {
                id,
                key: sent_key,
                shard: sent_shard,
            }] => {
                assert_eq!((*sent_key, *sent_shard), (target, shard(&target)));
                *id
            }
            other => panic!("expected one sent input, got {other:?}"),
        },
        other => panic!("expected Committed, got {other:?}"),
    };

    assert!(
        !pending_ids(&store, s).await.contains(&id),
        "the consumed input is gone"
    );

    let row = store
        .get_actor(key.tenant, key.kind.as_str(), key.id)
        .await
        .expect("load_actor")
        .expect("created");
    assert_eq!(row.version, 1);
    assert_eq!(row.state, json!({ "stage": "new", "n": [1, 2] }));
    assert_eq!((row.status.as_str(), row.paused), ("open", true));
    assert_eq!((row.created_at_ms, row.updated_at_ms), (at, at));
    assert_eq!(row.shard, s);
    assert_eq!(
        (
            row.key.tenant,
            row.key.kind.as_str(),
            row.key.id,
            row.key.group
        ),
        (t, KIND.as_str(), key.id, key.group)
    );

    let outbox = store
        .outbox_of(t, KIND.as_str(), key.id)
        .await
        .expect("outbox_of");
    assert_eq!(outbox.len(), 2);
    for (row, idem) in outbox.iter().zip(["e/1", "e/2"]) {
        assert_eq!(row.idem_key, idem);
        assert_eq!(row.status, OutboxStatus::Pending);
        assert_eq!(row.channel, channel_of(&row.idem_key));
        assert_eq!(row.payload, json!({ "text": idem }));
        assert_eq!(row.attempts, 0);
        assert_eq!(row.shard, s);
        assert_eq!(row.key.id, key.id);
        assert_eq!(row.created_at_ms, at);
    }
    assert!(outbox[0].id < outbox[1].id);

    assert_eq!(
        timers_of(&store, &key).await,
        vec![("follow_up".to_owned(), due, json!({ "timer": "follow_up" }))]
    );

    let timeline = store
        .timeline(t, KIND.as_str(), key.id, 0, 100)
        .await
        .expect("timeline");
    assert_eq!(
        timeline
            .iter()
            .map(|e| (e.kind.as_str(), e.version, e.at_ms))
            .collect::<Vec<_>>(),
        vec![("created", 1, at), ("scheduled", 1, at)]
    );
    assert_eq!(
        (
            timeline[0].cause.as_str(),
            timeline[0].reason.as_str(),
            &timeline[0].data
        ),
        ("system", "because created", &json!({ "entry": "created" }))
    );
    assert!(timeline[0].id < timeline[1].id);
    // Paging after the first entry returns the second.
    let rest = store
        .timeline(t, KIND.as_str(), key.id, timeline[0].id, 100)
        .await
        .expect("timeline");
    assert_eq!(
        rest.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![timeline[1].id]
    );

    let sent = store
        .pending_inbox(shard(&target), i64::MAX, 1000)
        .await
        .expect("pending_inbox");
    let sent: Vec<_> = sent.iter().filter(|row| row.id == sent_id).collect();
    assert_eq!(sent.len(), 1, "the sent input is in the inbox");
    assert_eq!(sent[0].key.id, target.id);
    assert_eq!(sent[0].shard, shard(&target));
    assert_eq!(sent[0].input, json!({ "hello": "target" }));
}

// ----- 5. a stale record in a batch

async fn a_stale_record_in_a_batch_is_left_out_and_the_rest_commit(store: Store) {
    let t = tenant();
    let stale = actor(t);
    let valid = actor(t);
    let also_valid = actor(t);
    let target = actor(t);
    let epochs = own_all(&store).await;
    let stale_epoch = epoch_of(&epochs, &stale);
    let valid_epoch = epoch_of(&epochs, &valid);
    let also_epoch = epoch_of(&epochs, &also_valid);
    create_actor(&store, &stale, stale_epoch, json!({ "v": 1 })).await;

    // The stale actor's input has already been consumed.
    let consumed = deliver(&store, &stale, json!({ "op": "once" })).await;
    let mut first = record(&stale, stale_epoch, Consumed::Inbox { id: consumed });
    first.checkpoint = checkpoint(1, json!({ "v": 2 }));
    assert_eq!(commit(&store, first).await, committed());

    let a = deliver(&store, &valid, json!({ "op": "a" })).await;
    let b = deliver(&store, &also_valid, json!({ "op": "b" })).await;

    let mut ok = record(&valid, valid_epoch, Consumed::Inbox { id: a });
    ok.checkpoint = checkpoint(0, json!({ "ok": true }));
    ok.effects = vec![effect("valid/1")];
    ok.timeline = vec![entry("valid")];
    let mut bad = record(&stale, stale_epoch, Consumed::Inbox { id: consumed });
    bad.checkpoint = checkpoint(2, json!({ "v": 3 }));
    bad.effects = vec![effect("stale/1")];
    bad.timers = vec![set_timer("stale", now() + 1000, json!({}))];
    bad.timeline = vec![entry("stale")];
    bad.sends = vec![input_to(&target, json!({ "from": "stale" }))];
    bad.outbox = Some(OutboxHold::Cancel);
    let mut ok2 = record(&also_valid, also_epoch, Consumed::Inbox { id: b });
    ok2.checkpoint = checkpoint(0, json!({ "ok": 2 }));
    ok2.sends = vec![input_to(&target, json!({ "from": "valid" }))];

    let outcomes = store.commit(&[ok, bad, ok2]).await.expect("commit");
    assert_eq!(outcomes.len(), 3);
    assert_eq!(outcomes[0], committed());
    assert_eq!(outcomes[1], CommitOutcome::Stale);
    match &outcomes[2] {
        CommitOutcome::Committed { sent } => {
            assert!(matches!(sent.as_slice(), [Inserted::New { key, .. }] if *key == target));
        }
        other => panic!("expected Committed, got {other:?}"),
    }

    assert_eq!(version_of(&store, &valid).await, Some(1));
    assert_eq!(version_of(&store, &also_valid).await, Some(1));
    assert_eq!(
        outbox_statuses(&store, &valid).await,
        vec![("valid/1".to_owned(), OutboxStatus::Pending)]
    );
    assert_eq!(
        timeline_kinds(&store, &valid).await,
        vec![("valid".to_owned(), 1)]
    );

    let row = store
        .get_actor(stale.tenant, stale.kind.as_str(), stale.id)
        .await
        .expect("load_actor")
        .expect("exists");
    assert_eq!((row.version, row.state), (2, json!({ "v": 2 })));
    assert_no_side_writes(&store, &stale).await;
    assert_eq!(
        inputs_of(&store, &target).await,
        vec![json!({ "from": "valid" })],
        "only the valid record's send was written"
    );
    let waiting = pending_ids(&store, shard(&valid)).await;
    assert!(!waiting.contains(&a));
    assert!(!pending_ids(&store, shard(&also_valid)).await.contains(&b));
}

// ----- 6. version conflicts

async fn a_second_writer_of_the_same_version_gets_a_version_conflict(store: Store) {
    let key = actor(tenant());
    let epoch = own(&store, shard(&key)).await;
    create_actor(&store, &key, epoch, json!({ "v": 1 })).await;
    let first = deliver(&store, &key, json!({ "op": "first" })).await;
    let second = deliver(&store, &key, json!({ "op": "second" })).await;

    let mut r = record(&key, epoch, Consumed::Inbox { id: first });
    r.checkpoint = checkpoint(1, json!({ "v": "first" }));
    assert_eq!(commit(&store, r).await, committed());

    let mut r = record(&key, epoch, Consumed::Inbox { id: second });
    r.checkpoint = checkpoint(1, json!({ "v": "second" }));
    r.effects = vec![effect("conflict/1")];
    r.timers = vec![set_timer("conflict", now() + 1000, json!({}))];
    r.timeline = vec![entry("conflict")];
    r.sends = vec![input_to(&actor(key.tenant), json!({}))];
    assert_eq!(commit(&store, r).await, CommitOutcome::VersionConflict);

    let row = store
        .get_actor(key.tenant, key.kind.as_str(), key.id)
        .await
        .expect("load_actor")
        .expect("exists");
    assert_eq!((row.version, row.state), (2, json!({ "v": "first" })));
    assert_no_side_writes(&store, &key).await;
    assert!(
        pending_ids(&store, shard(&key)).await.contains(&second),
        "a conflicting commit does not consume its input"
    );
    assert!(!pending_ids(&store, shard(&key)).await.contains(&first));
}

async fn a_second_creator_of_the_same_actor_gets_a_version_conflict(store: Store) {
    let key = actor(tenant());
    let epoch = own(&store, shard(&key)).await;
    create_actor(&store, &key, epoch, json!({ "v": "first" })).await;
    let id = deliver(&store, &key, json!({ "op": "create again" })).await;
    let mut r = record(&key, epoch, Consumed::Inbox { id });
    r.checkpoint = checkpoint(0, json!({ "v": "second" }));
    r.effects = vec![effect("create/again")];
    assert_eq!(commit(&store, r).await, CommitOutcome::VersionConflict);
    let row = store
        .get_actor(key.tenant, key.kind.as_str(), key.id)
        .await
        .expect("load_actor")
        .expect("exists");
    assert_eq!((row.version, row.state), (1, json!({ "v": "first" })));
    assert_no_side_writes(&store, &key).await;
    assert!(pending_ids(&store, shard(&key)).await.contains(&id));
}

async fn a_batch_with_two_transitions_of_one_actor_applies_them_in_order(store: Store) {
    let key = actor(tenant());
    let epoch = own(&store, shard(&key)).await;
    create_actor(&store, &key, epoch, json!({ "v": 1 })).await;
    let a = deliver(&store, &key, json!({ "op": "a" })).await;
    let b = deliver(&store, &key, json!({ "op": "b" })).await;
    let mut first = record(&key, epoch, Consumed::Inbox { id: a });
    first.checkpoint = checkpoint(1, json!({ "v": 2 }));
    first.timeline = vec![entry("second")];
    let mut second = record(&key, epoch, Consumed::Inbox { id: b });
    second.checkpoint = checkpoint(2, json!({ "v": 3 }));
    second.timeline = vec![entry("third")];

    let outcomes = store.commit(&[first, second]).await.expect("commit");
    let row = store
        .get_actor(key.tenant, key.kind.as_str(), key.id)
        .await
        .expect("load_actor")
        .expect("exists");
    // One assertion over everything observable, so a failure shows what was written.
    assert_eq!(
        (
            outcomes,
            row.version,
            row.state,
            timeline_kinds(&store, &key).await
        ),
        (
            vec![committed(), committed()],
            3,
            json!({ "v": 3 }),
            vec![("second".to_owned(), 2), ("third".to_owned(), 3)]
        ),
        "(outcomes, version, state, timeline)"
    );
}

async fn a_batch_with_two_writers_of_one_version_commits_only_the_first(store: Store) {
    let key = actor(tenant());
    let epoch = own(&store, shard(&key)).await;
    create_actor(&store, &key, epoch, json!({ "v": 1 })).await;
    let a = deliver(&store, &key, json!({ "op": "a" })).await;
    let b = deliver(&store, &key, json!({ "op": "b" })).await;
    let mut first = record(&key, epoch, Consumed::Inbox { id: a });
    first.checkpoint = checkpoint(1, json!({ "v": "a" }));
    first.effects = vec![effect("batch/a")];
    let mut second = record(&key, epoch, Consumed::Inbox { id: b });
    second.checkpoint = checkpoint(1, json!({ "v": "b" }));
    second.effects = vec![effect("batch/b")];

    let outcomes = store.commit(&[first, second]).await.expect("commit");
    let row = store
        .get_actor(key.tenant, key.kind.as_str(), key.id)
        .await
        .expect("load_actor")
        .expect("exists");
    let waiting = pending_ids(&store, shard(&key)).await;
    // One assertion over everything observable, so a failure shows what was written.
    assert_eq!(
        (
            outcomes,
            row.version,
            row.state,
            outbox_statuses(&store, &key).await,
            waiting.contains(&a),
            waiting.contains(&b),
        ),
        (
            vec![committed(), CommitOutcome::VersionConflict],
            2,
            json!({ "v": "a" }),
            vec![("batch/a".to_owned(), OutboxStatus::Pending)],
            false,
            true,
        ),
        "(outcomes, version, state, outbox, first input waiting, second input waiting)"
    );
}

async fn a_batch_consuming_one_input_twice_commits_it_once(store: Store) {
    let key = actor(tenant());
    let epoch = own(&store, shard(&key)).await;
    let id = deliver(&store, &key, json!({ "op": "once" })).await;
    let mut first = record(&key, epoch, Consumed::Inbox { id });
    first.effects = vec![effect("twice/1")];
    let mut second = record(&key, epoch, Consumed::Inbox { id });
    second.effects = vec![effect("twice/2")];

    let outcomes = store.commit(&[first, second]).await.expect("commit");
    assert_eq!(
        (outcomes, outbox_statuses(&store, &key).await),
        (
            vec![committed(), CommitOutcome::Stale],
            vec![("twice/1".to_owned(), OutboxStatus::Pending)]
        ),
        "(outcomes, outbox)"
    );
}

// ----- 7. timers

async fn a_timer_firing_commits_only_while_the_timer_is_unchanged(store: Store) {
    let key = actor(tenant());
    let epoch = own(&store, shard(&key)).await;
    let t1 = now() + 10_000;
    let t2 = t1 + 5_000;

    let id = deliver(&store, &key, json!({ "op": "arm" })).await;
    let mut r = record(&key, epoch, Consumed::Inbox { id });
    r.checkpoint = checkpoint(0, json!({ "v": 1 }));
    r.timers = vec![set_timer("remind", t1, json!({ "n": 1 }))];
    assert_eq!(commit(&store, r).await, committed());
    assert_eq!(
        timers_of(&store, &key).await,
        vec![("remind".to_owned(), t1, json!({ "n": 1 }))]
    );

    // Re-arm: the firing read at t1 is now stale.
    let id = deliver(&store, &key, json!({ "op": "re-arm" })).await;
    let mut r = record(&key, epoch, Consumed::Inbox { id });
    r.checkpoint = checkpoint(1, json!({ "v": 2 }));
    r.timers = vec![set_timer("remind", t2, json!({ "n": 2 }))];
    assert_eq!(commit(&store, r).await, committed());
    assert_eq!(
        timers_of(&store, &key).await,
        vec![("remind".to_owned(), t2, json!({ "n": 2 }))],
        "setting a name again replaces the timer"
    );

    let mut old = record(
        &key,
        epoch,
        Consumed::Timer {
            name: "remind".to_owned(),
            due_at_ms: t1,
        },
    );
    old.checkpoint = checkpoint(2, json!({ "v": "old firing" }));
    old.effects = vec![effect("old-firing")];
    old.timeline = vec![entry("old_firing")];
    assert_eq!(commit(&store, old).await, CommitOutcome::Stale);
    assert_eq!(version_of(&store, &key).await, Some(2));
    assert_eq!(outbox_statuses(&store, &key).await, vec![]);
    assert_eq!(timeline_kinds(&store, &key).await, vec![]);
    assert_eq!(
        timers_of(&store, &key).await,
        vec![("remind".to_owned(), t2, json!({ "n": 2 }))]
    );

    let mut fire = record(
        &key,
        epoch,
        Consumed::Timer {
            name: "remind".to_owned(),
            due_at_ms: t2,
        },
    );
    fire.checkpoint = checkpoint(2, json!({ "v": "fired" }));
    fire.timeline = vec![entry("fired")];
    assert_eq!(commit(&store, fire.clone()).await, committed());
    assert_eq!(version_of(&store, &key).await, Some(3));
    assert_eq!(
        timers_of(&store, &key).await,
        vec![],
        "firing consumes the timer"
    );
    assert_eq!(
        timeline_kinds(&store, &key).await,
        vec![("fired".to_owned(), 3)]
    );

    // The same firing again is stale: the timer is gone.
    fire.checkpoint = checkpoint(3, json!({ "v": "twice" }));
    assert_eq!(commit(&store, fire).await, CommitOutcome::Stale);
    assert_eq!(version_of(&store, &key).await, Some(3));

    // A recurring timer: the firing re-arms the same name in the same transition.
    let t3 = t2 + 5_000;
    let id = deliver(&store, &key, json!({ "op": "arm" })).await;
    let mut r = record(&key, epoch, Consumed::Inbox { id });
    r.timers = vec![set_timer("tick", t2, json!({ "tick": 1 }))];
    assert_eq!(commit(&store, r).await, committed());
    let mut r = record(
        &key,
        epoch,
        Consumed::Timer {
            name: "tick".to_owned(),
            due_at_ms: t2,
        },
    );
    r.timers = vec![set_timer("tick", t3, json!({ "tick": 2 }))];
    assert_eq!(commit(&store, r).await, committed());
    assert_eq!(
        timers_of(&store, &key).await,
        vec![("tick".to_owned(), t3, json!({ "tick": 2 }))]
    );
}

async fn setting_a_timer_again_replaces_it_and_clear_removes_it(store: Store) {
    let key = actor(tenant());
    let epoch = own(&store, shard(&key)).await;
    let base = now() + 60_000;

    let id = deliver(&store, &key, json!({})).await;
    let mut r = record(&key, epoch, Consumed::Inbox { id });
    r.timers = vec![
        set_timer("a", base + 100, json!({ "a": 1 })),
        set_timer("b", base + 50, json!({ "b": 1 })),
        // Set twice in one transition: the last one wins.
        set_timer("a", base + 200, json!({ "a": 2 })),
    ];
    assert_eq!(commit(&store, r).await, committed());
    assert_eq!(
        timers_of(&store, &key).await,
        vec![
            ("b".to_owned(), base + 50, json!({ "b": 1 })),
            ("a".to_owned(), base + 200, json!({ "a": 2 })),
        ]
    );

    let id = deliver(&store, &key, json!({})).await;
    let mut r = record(&key, epoch, Consumed::Inbox { id });
    r.timers = vec![set_timer("b", base + 300, json!({ "b": 2 }))];
    assert_eq!(commit(&store, r).await, committed());
    assert_eq!(
        timers_of(&store, &key).await,
        vec![
            ("a".to_owned(), base + 200, json!({ "a": 2 })),
            ("b".to_owned(), base + 300, json!({ "b": 2 })),
        ],
        "one row per name"
    );

    let id = deliver(&store, &key, json!({})).await;
    let mut r = record(&key, epoch, Consumed::Inbox { id });
    r.timers = vec![TimerWrite::Clear {
        name: "a".to_owned(),
    }];
    assert_eq!(commit(&store, r).await, committed());
    assert_eq!(
        timers_of(&store, &key).await,
        vec![("b".to_owned(), base + 300, json!({ "b": 2 }))]
    );

    // A firing of a cleared timer is stale.
    let r = record(
        &key,
        epoch,
        Consumed::Timer {
            name: "a".to_owned(),
            due_at_ms: base + 200,
        },
    );
    assert_eq!(commit(&store, r).await, CommitOutcome::Stale);

    // Set then clear in one transition leaves nothing; clear then set leaves the set.
    let id = deliver(&store, &key, json!({})).await;
    let mut r = record(&key, epoch, Consumed::Inbox { id });
    r.timers = vec![
        set_timer("c", base, json!({})),
        TimerWrite::Clear {
            name: "c".to_owned(),
        },
        TimerWrite::Clear {
            name: "b".to_owned(),
        },
        set_timer("b", base + 400, json!({ "b": 3 })),
    ];
    assert_eq!(commit(&store, r).await, committed());
    assert_eq!(
        timers_of(&store, &key).await,
        vec![("b".to_owned(), base + 400, json!({ "b": 3 }))]
    );
}

/// Arms `timers` (name, due) on `key` in one transition under `epoch`.
async fn arm(store: &Store, key: &ActorKey, epoch: Epoch, timers: &[(&str, i64)]) {
    let id = deliver(store, key, json!({})).await;
    let mut r = record(key, epoch, Consumed::Inbox { id });
    r.timers = timers
        .iter()
        .map(|(name, due)| set_timer(name, *due, json!({ "name": name })))
        .collect();
    assert_eq!(commit(store, r).await, committed());
}

async fn timers_due_before_returns_exactly_the_due_rows_in_order(store: Store) {
    let t = tenant();
    let a = actor(t);
    let d = actor_off(t, &[shard(&a)]);
    let base = now();
    let epochs = own_all(&store).await;
    arm(
        &store,
        &a,
        epoch_of(&epochs, &a),
        &[("a3", base + 300), ("a1", base + 100), ("a5", base + 500)],
    )
    .await;
    arm(
        &store,
        &d,
        epoch_of(&epochs, &d),
        &[("d2", base + 200), ("d4", base + 400)],
    )
    .await;

    let names = |rows: Vec<neuronx_supervision::store::TimerRow>| {
        rows.into_iter()
            .map(|r| (r.name, r.due_at_ms))
            .collect::<Vec<_>>()
    };
    let due = store
        .timers_due_before(&all_shards(), &[KIND], i64::MIN..base + 400, 100)
        .await
        .expect("timers_due_before");
    assert_eq!(
        due.iter()
            .map(|r| (r.key.id, r.shard, r.input.clone()))
            .collect::<Vec<_>>(),
        vec![
            (a.id, shard(&a), json!({ "name": "a1" })),
            (d.id, shard(&d), json!({ "name": "d2" })),
            (a.id, shard(&a), json!({ "name": "a3" })),
        ]
    );
    assert_eq!(
        names(due),
        vec![
            ("a1".to_owned(), base + 100),
            ("d2".to_owned(), base + 200),
            ("a3".to_owned(), base + 300),
        ],
        "strictly before, ordered by due time"
    );
    assert_eq!(
        names(
            store
                .timers_due_before(&all_shards(), &[KIND], i64::MIN..base + 400, 2)
                .await
                .expect("timers_due_before")
        ),
        vec![("a1".to_owned(), base + 100), ("d2".to_owned(), base + 200)],
        "the limit keeps the earliest"
    );
    assert_eq!(
        names(
            store
                .timers_due_before(&[shard(&a)], &[KIND], i64::MIN..base + 1000, 100)
                .await
                .expect("timers_due_before")
        ),
        vec![
            ("a1".to_owned(), base + 100),
            ("a3".to_owned(), base + 300),
            ("a5".to_owned(), base + 500),
        ],
        "only the requested shards"
    );
    assert_eq!(
        names(
            store
                .timers_due_before(&[shard(&d)], &[KIND], i64::MIN..base + 1000, 100)
                .await
                .expect("timers_due_before")
        ),
        vec![("d2".to_owned(), base + 200), ("d4".to_owned(), base + 400)]
    );
    assert_eq!(
        store
            .timers_due_before(&all_shards(), &[KIND], i64::MIN..base + 100, 100)
            .await
            .expect("timers_due_before")
            .len(),
        0,
        "a timer due exactly at `before` is not yet due"
    );
    assert_eq!(
        store
            .timers_due_before(&[], &[KIND], i64::MIN..base + 1000, 100)
            .await
            .expect("timers_due_before")
            .len(),
        0
    );
}

async fn timers_due_before_applies_its_limit_to_the_requested_shards_only(store: Store) {
    let t = tenant();
    let a = actor(t);
    let other = actor_off(t, &[shard(&a)]);
    let base = now();
    // The other shard's timers are due first.
    let epochs = own_all(&store).await;
    arm(
        &store,
        &other,
        epoch_of(&epochs, &other),
        &[("o1", base + 10), ("o2", base + 20)],
    )
    .await;
    arm(
        &store,
        &a,
        epoch_of(&epochs, &a),
        &[("a1", base + 100), ("a2", base + 200)],
    )
    .await;

    let due = store
        .timers_due_before(&[shard(&a)], &[KIND], i64::MIN..base + 1000, 2)
        .await
        .expect("timers_due_before");
    assert_eq!(
        due.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
        vec!["a1", "a2"],
        "the limit counts the requested shards' timers, not every shard's"
    );
}

async fn inbox_polls_read_together_answer_each_shard_in_order_within_its_own_limit(store: Store) {
    let t = tenant();
    let a = actor(t);
    let b = actor_off(t, &[shard(&a)]);
    let (sa, sb) = (shard(&a), shard(&b));
    let empty = (0..SHARDS as i32)
        .map(ShardId)
        .find(|s| *s != sa && *s != sb)
        .expect("a third shard");
    let mut of_a = Vec::new();
    for n in 0..3 {
        of_a.push(deliver(&store, &a, json!({ "n": n })).await);
    }
    let of_b = deliver(&store, &b, json!({ "n": 9 })).await;

    let poll = |shard, created_before_ms| InboxPoll {
        shard,
        created_before_ms,
    };
    let answers = store
        .pending_inboxes(
            &[
                poll(sb, i64::MAX),
                poll(empty, i64::MAX),
                poll(sa, i64::MAX),
                poll(sa, 0),
            ],
            2,
        )
        .await
        .expect("pending_inboxes");
    let ids: Vec<Vec<i64>> = answers
        .iter()
        .map(|rows| rows.iter().map(|r| r.id).collect())
        .collect();
    assert_eq!(
        ids,
        vec![vec![of_b], vec![], of_a[..2].to_vec(), vec![]],
        "one answer per poll, in the order asked, oldest first, each within its own limit"
    );
    assert!(answers[2].iter().all(|r| r.key.id == a.id && r.shard == sa));
    assert_eq!(answers[0][0].input, json!({ "n": 9 }));
}

// ----- 8. inbox dedupe

fn keyed(key: &ActorKey, dedupe_key: &str, remember: bool, input: Value) -> NewInput {
    NewInput {
        key: *key,
        shard: shard(key),
        dedupe_key: dedupe_key.to_owned(),
        remember,
        input,
        reply: false,
        notify: false,
    }
}

async fn a_remembered_dedupe_key_stays_a_duplicate_after_its_input_is_consumed(store: Store) {
    let key = actor(tenant());
    let s = shard(&key);
    let first = store
        .insert_inbox(&[keyed(&key, "k1", true, json!({ "n": 1 }))])
        .await
        .expect("insert_inbox");
    let id = match first.as_slice() {
        [Inserted::New {
            id,
            key: k,
            shard: sh,
        }] => {
            assert_eq!((*k, *sh), (key, s));
            *id
        }
        other => panic!("expected New, got {other:?}"),
    };
    assert_eq!(
        store
            .insert_inbox(&[keyed(&key, "k1", true, json!({ "n": 2 }))])
            .await
            .expect("insert_inbox"),
        vec![Inserted::Duplicate]
    );
    assert_eq!(inputs_of(&store, &key).await, vec![json!({ "n": 1 })]);

    let epoch = own(&store, s).await;
    assert_eq!(
        commit(&store, record(&key, epoch, Consumed::Inbox { id })).await,
        committed()
    );
    assert_eq!(inputs_of(&store, &key).await, Vec::<Value>::new());
    assert_eq!(
        store
            .insert_inbox(&[keyed(&key, "k1", true, json!({ "n": 3 }))])
            .await
            .expect("insert_inbox"),
        vec![Inserted::Duplicate],
        "the dedupe key outlives the consumed row"
    );
    assert_eq!(inputs_of(&store, &key).await, Vec::<Value>::new());

    // Duplicates within one call: the first is new, the rest are duplicates, in order.
    let out = store
        .insert_inbox(&[
            keyed(&key, "k2", true, json!({ "k2": 1 })),
            keyed(&key, "k3", true, json!({ "k3": 1 })),
            keyed(&key, "k2", true, json!({ "k2": 2 })),
            keyed(&key, "k1", true, json!({ "k1": 4 })),
        ])
        .await
        .expect("insert_inbox");
    assert_eq!(out.len(), 4);
    assert!(matches!(out[0], Inserted::New { .. }), "{out:?}");
    assert!(matches!(out[1], Inserted::New { .. }), "{out:?}");
    assert_eq!(out[2], Inserted::Duplicate);
    assert_eq!(out[3], Inserted::Duplicate);
    let (Inserted::New { id: k2, .. }, Inserted::New { id: k3, .. }) = (&out[0], &out[1]) else {
        unreachable!()
    };
    assert!(k2 < k3, "ids follow the order of the call");
    assert_eq!(
        inputs_of(&store, &key).await,
        vec![json!({ "k2": 1 }), json!({ "k3": 1 })]
    );

    // Sends from a commit share the same memory.
    let id = deliver(&store, &key, json!({ "op": "send" })).await;
    let target = actor(key.tenant);
    let mut r = record(&key, epoch, Consumed::Inbox { id });
    r.sends = vec![
        keyed(&target, "k3", true, json!({ "dup": true })),
        keyed(&target, "k4", true, json!({ "fresh": true })),
    ];
    match commit(&store, r).await {
        CommitOutcome::Committed { sent } => {
            assert_eq!(sent.len(), 2);
            assert_eq!(sent[0], Inserted::Duplicate);
            assert!(matches!(sent[1], Inserted::New { key: k, .. } if k == target));
        }
        other => panic!("expected Committed, got {other:?}"),
    }
    assert_eq!(
        inputs_of(&store, &target).await,
        vec![json!({ "fresh": true })]
    );
}

async fn a_key_that_is_not_remembered_is_never_deduplicated(store: Store) {
    let key = actor(tenant());
    let once = store
        .insert_inbox(&[keyed(&key, "id-1", false, json!({ "n": 1 }))])
        .await
        .expect("insert_inbox");
    let again = store
        .insert_inbox(&[keyed(&key, "id-1", false, json!({ "n": 2 }))])
        .await
        .expect("insert_inbox");
    assert!(
        matches!(once.as_slice(), [Inserted::New { .. }]),
        "{once:?}"
    );
    assert!(
        matches!(again.as_slice(), [Inserted::New { .. }]),
        "{again:?}"
    );
    assert_eq!(
        inputs_of(&store, &key).await,
        vec![json!({ "n": 1 }), json!({ "n": 2 })]
    );
    // A key not remembered does not block a later remembered one.
    let remembered = store
        .insert_inbox(&[keyed(&key, "id-1", true, json!({ "n": 3 }))])
        .await
        .expect("insert_inbox");
    assert!(
        matches!(remembered.as_slice(), [Inserted::New { .. }]),
        "{remembered:?}"
    );

    // Within one call as well.
    let out = store
        .insert_inbox(&[
            keyed(&key, "id-2", false, json!({ "n": 4 })),
            keyed(&key, "id-2", false, json!({ "n": 5 })),
        ])
        .await
        .expect("insert_inbox");
    assert!(
        matches!(out.as_slice(), [Inserted::New { id: a, .. }, Inserted::New { id: b, .. }] if a < b),
        "two inputs with a key that is not remembered are both inserted, got {out:?}"
    );
    assert_eq!(
        inputs_of(&store, &key).await,
        vec![
            json!({ "n": 1 }),
            json!({ "n": 2 }),
            json!({ "n": 3 }),
            json!({ "n": 4 }),
            json!({ "n": 5 }),
        ]
    );
}

// ----- 9. outbox

/// Commits `effects` for `key` (consuming a fresh input) under `epoch`.
async fn emit(store: &Store, key: &ActorKey, epoch: Epoch, effects: &[&str]) {
    let id = deliver(store, key, json!({ "op": "emit" })).await;
    let mut r = record(key, epoch, Consumed::Inbox { id });
    r.effects = effects.iter().map(|e| effect(e)).collect();
    assert_eq!(commit(store, r).await, committed());
}

/// Commits an outbox hold change for `key`.
async fn hold(store: &Store, key: &ActorKey, epoch: Epoch, change: OutboxHold) {
    let id = deliver(store, key, json!({ "op": "hold" })).await;
    let mut r = record(key, epoch, Consumed::Inbox { id });
    r.outbox = Some(change);
    assert_eq!(commit(store, r).await, committed());
}

fn idem_keys(rows: &[neuronx_supervision::store::OutboxRow]) -> Vec<String> {
    let mut keys: Vec<String> = rows.iter().map(|r| r.idem_key.clone()).collect();
    keys.sort();
    keys
}

async fn orphaned_effects_are_reclaimed_once_fenced_and_only_when_old_enough(store: Store) {
    let t = tenant();
    let a = actor(t);
    let sa = shard(&a);
    let other = actor_off(t, &[sa]);
    let so = shard(&other);
    let ea = own(&store, sa).await;
    let eo = own(&store, so).await;
    emit(&store, &a, ea, &["a/1", "a/2"]).await;
    emit(&store, &other, eo, &["o/1"]).await;
    // a/1 and o/1 are claimed and never completed; a/2 stays pending.
    let claimed = store.claim_outbox(&[(sa, ea)], 1).await.expect("claim");
    assert_eq!(idem_keys(&claimed), vec!["a/1"]);
    store.claim_outbox(&[(so, eo)], 1).await.expect("claim");

    let reclaim = |held: Vec<(ShardId, Epoch)>, age: i64| {
        let store = store.clone();
        async move {
            store
                .orphaned_effects(&held, age)
                .await
                .expect("orphaned_effects")
        }
    };
    assert!(
        reclaim(vec![(sa, ea)], 3_600_000).await.is_empty(),
        "a claim younger than the age is left alone"
    );
    // A negative age counts every claim, however recent.
    assert!(
        reclaim(vec![(sa, Epoch(ea.0 - 1))], -60_000)
            .await
            .is_empty(),
        "a stale epoch reclaims nothing"
    );
    let orphans = reclaim(vec![(sa, ea)], -60_000).await;
    assert_eq!(
        idem_keys(&orphans),
        vec!["a/1"],
        "only the held shard's claimed rows"
    );
    assert_eq!(orphans[0].status, OutboxStatus::Inflight);
    assert_eq!(orphans[0].payload, json!({ "text": "a/1" }));
    // Recorded unknown under its claim, it is no longer an orphan.
    let recorded = store
        .complete_outbox(&[EffectDone {
            outbox_id: orphans[0].id,
            claim: orphans[0].attempts,
            status: OutboxStatus::Unknown,
            result: json!({}),
            now_ms: now(),
            followup: None,
        }])
        .await
        .expect("complete_outbox");
    assert_eq!(recorded, vec![Completion::Recorded(None)]);
    assert!(
        reclaim(vec![(sa, ea)], -60_000).await.is_empty(),
        "each orphan is reclaimed once"
    );
    assert_eq!(
        outbox_statuses(&store, &a).await,
        vec![
            ("a/1".to_owned(), OutboxStatus::Unknown),
            ("a/2".to_owned(), OutboxStatus::Pending),
        ]
    );
    assert_eq!(
        outbox_statuses(&store, &other).await,
        vec![("o/1".to_owned(), OutboxStatus::Inflight)],
        "a shard not named is not touched"
    );
}

async fn the_outbox_claim_takes_pending_rows_of_held_shards_once(store: Store) {
    let t = tenant();
    let a = actor(t);
    let sa = shard(&a);
    let other = actor_off(t, &[sa]);
    let so = shard(&other);
    let ea = own(&store, sa).await;
    let eo = own(&store, so).await;
    emit(&store, &a, ea, &["a/1", "a/2", "a/3"]).await;
    emit(&store, &other, eo, &["o/1"]).await;

    assert_eq!(
        store
            .claim_outbox(&[(sa, Epoch(ea.0 - 1))], 10)
            .await
            .expect("claim_outbox")
            .len(),
        0,
        "a stale epoch claims nothing"
    );
    assert_eq!(
        store
            .claim_outbox(&[(sa, Epoch(ea.0 + 1))], 10)
            .await
            .expect("claim_outbox")
            .len(),
        0,
        "a future epoch claims nothing"
    );
    assert_eq!(store.claim_outbox(&[], 10).await.expect("claim").len(), 0);

    let first = store
        .claim_outbox(&[(sa, ea)], 2)
        .await
        .expect("claim_outbox");
    assert_eq!(
        idem_keys(&first),
        vec!["a/1", "a/2"],
        "oldest first, limited"
    );
    for row in &first {
        assert_eq!(row.status, OutboxStatus::Inflight);
        assert_eq!(row.attempts, 1);
        assert_eq!(row.key.id, a.id);
        assert_eq!(row.shard, sa);
        assert_eq!(row.channel, channel_of(&row.idem_key));
        assert_eq!(row.payload, json!({ "text": row.idem_key }));
    }
    let rest = store
        .claim_outbox(&[(sa, ea)], 10)
        .await
        .expect("claim_outbox");
    assert_eq!(idem_keys(&rest), vec!["a/3"]);
    assert_eq!(
        store
            .claim_outbox(&[(sa, ea)], 10)
            .await
            .expect("claim_outbox")
            .len(),
        0,
        "claimed rows are not claimed again"
    );
    assert_eq!(
        outbox_statuses(&store, &a).await,
        vec![
            ("a/1".to_owned(), OutboxStatus::Inflight),
            ("a/2".to_owned(), OutboxStatus::Inflight),
            ("a/3".to_owned(), OutboxStatus::Inflight),
        ]
    );
    assert_eq!(
        outbox_statuses(&store, &other).await,
        vec![("o/1".to_owned(), OutboxStatus::Pending)],
        "a shard not held is not claimed"
    );

    // After a takeover the old epoch claims nothing, the new one does.
    emit(&store, &a, ea, &["a/4"]).await;
    let taken = own(&store, sa).await;
    assert_eq!(
        store
            .claim_outbox(&[(sa, ea)], 10)
            .await
            .expect("claim_outbox")
            .len(),
        0
    );
    let both = store
        .claim_outbox(&[(sa, taken), (so, eo)], 10)
        .await
        .expect("claim_outbox");
    assert_eq!(idem_keys(&both), vec!["a/4", "o/1"]);
}

async fn the_outbox_claim_limit_counts_only_rows_of_held_shards(store: Store) {
    let t = tenant();
    let a = actor(t);
    let sa = shard(&a);
    let other = actor_off(t, &[sa]);
    let ea = own(&store, sa).await;
    let eo = own(&store, shard(&other)).await;
    // The shard not held has the older rows.
    emit(&store, &other, eo, &["o/1", "o/2"]).await;
    emit(&store, &a, ea, &["a/1", "a/2"]).await;

    let claimed = store
        .claim_outbox(&[(sa, ea)], 2)
        .await
        .expect("claim_outbox");
    assert_eq!(
        idem_keys(&claimed),
        vec!["a/1", "a/2"],
        "the limit counts the held shards' rows, not every shard's"
    );
}

async fn completing_an_effect_records_it_and_delivers_the_followup(store: Store) {
    let a = actor(tenant());
    let sa = shard(&a);
    let ea = own(&store, sa).await;
    emit(&store, &a, ea, &["c/1", "c/2", "c/3"]).await;
    let claimed = store
        .claim_outbox(&[(sa, ea)], 10)
        .await
        .expect("claim_outbox");
    assert_eq!(claimed.len(), 3);
    let id_of = |idem: &str| {
        claimed
            .iter()
            .find(|r| r.idem_key == idem)
            .map(|r| r.id)
            .expect("claimed")
    };
    // Each was claimed once.
    let claim = 1;

    let followup = NewInput {
        key: a,
        shard: sa,
        dedupe_key: "effect/c/1".to_owned(),
        remember: true,
        input: json!({ "effect": "c/1", "ok": true }),
        reply: false,
        notify: false,
    };
    let inserted = store
        .complete_outbox(&[
            EffectDone {
                outbox_id: id_of("c/1"),
                claim,
                status: OutboxStatus::Done,
                result: json!({ "sid": "SM1" }),
                now_ms: now(),
                followup: Some(followup.clone()),
            },
            EffectDone {
                outbox_id: id_of("c/2"),
                claim,
                status: OutboxStatus::Unknown,
                result: json!({ "error": "timeout" }),
                now_ms: now(),
                followup: None,
            },
        ])
        .await
        .expect("complete_outbox");
    let new_id = match inserted.as_slice() {
        [Completion::Recorded(Some(Inserted::New { id, key, shard })), Completion::Recorded(None)] =>
        {
            assert_eq!((*key, *shard), (a, sa));
            *id
        }
        other => panic!("expected c/1 with its followup input and c/2 recorded, got {other:?}"),
    };
    assert_eq!(
        outbox_statuses(&store, &a).await,
        vec![
            ("c/1".to_owned(), OutboxStatus::Done),
            ("c/2".to_owned(), OutboxStatus::Unknown),
            ("c/3".to_owned(), OutboxStatus::Inflight),
        ]
    );
    let inbox = store
        .pending_inbox(sa, i64::MAX, 100)
        .await
        .expect("pending_inbox");
    let row = inbox
        .iter()
        .find(|r| r.id == new_id)
        .expect("the followup is in the inbox");
    assert_eq!(row.key.id, a.id);
    assert_eq!(row.input, json!({ "effect": "c/1", "ok": true }));

    // Completing again (a retry) is refused and does not deliver the followup twice.
    let again = store
        .complete_outbox(&[EffectDone {
            outbox_id: id_of("c/1"),
            claim,
            status: OutboxStatus::Done,
            result: json!({ "sid": "SM1" }),
            now_ms: now(),
            followup: Some(followup),
        }])
        .await
        .expect("complete_outbox");
    assert_eq!(again, vec![Completion::Refused]);
    assert_eq!(
        inputs_of(&store, &a).await,
        vec![json!({ "effect": "c/1", "ok": true })]
    );
    assert_eq!(
        store
            .claim_outbox(&[(sa, ea)], 10)
            .await
            .expect("claim_outbox")
            .len(),
        0,
        "finished effects are never claimed"
    );
}

/// `effects_named` reads exactly the named effects of its tenant, each with where it stands
/// and the result its handler recorded (none until one is).
async fn effects_are_read_by_key_with_their_results_within_their_tenant(store: Store) {
    let t = tenant();
    let a = actor(t);
    let sa = shard(&a);
    let ea = own(&store, sa).await;
    emit(&store, &a, ea, &["n/1", "n/2", "n/3"]).await;
    let claimed = store
        .claim_outbox(&[(sa, ea)], 10)
        .await
        .expect("claim_outbox");
    let first = claimed.iter().find(|r| r.idem_key == "n/1").expect("n/1");
    let done = EffectDone {
        outbox_id: first.id,
        claim: 1,
        status: OutboxStatus::Done,
        result: json!({ "message_sid": "SM1" }),
        now_ms: now(),
        followup: None,
    };
    store
        .complete_outbox(&[done])
        .await
        .expect("complete_outbox");
    let names = |keys: &[&str]| keys.iter().map(|k| (*k).to_owned()).collect::<Vec<_>>();
    let mut read = store
        .effects_named(t, &names(&["n/1", "n/3", "n/9"]))
        .await
        .expect("effects_named");
    read.sort_by(|x, y| x.idem_key.cmp(&y.idem_key));
    let seen: Vec<_> = read
        .iter()
        .map(|e| (e.idem_key.as_str(), e.status, e.result.clone()))
        .collect();
    assert_eq!(
        seen,
        vec![
            (
                "n/1",
                OutboxStatus::Done,
                Some(json!({ "message_sid": "SM1" }))
            ),
            ("n/3", OutboxStatus::Inflight, None),
        ]
    );
    assert_eq!(read[0].channel, channel_of("n/1"));
    let theirs = store
        .effects_named(tenant(), &names(&["n/1"]))
        .await
        .expect("effects_named");
    assert!(theirs.is_empty(), "another tenant's key names nothing");
    assert!(store
        .effects_named(t, &[])
        .await
        .expect("effects_named")
        .is_empty());
}

/// A claim that names a shard twice takes each of its effects once (SQLite took them once per
/// mention, so an effect would have run twice; found when two random actors of a test shared a
/// shard).
async fn a_shard_named_twice_in_a_claim_gives_each_effect_once(store: Store) {
    let t = tenant();
    let a = actor(t);
    let sa = shard(&a);
    let epochs = own_all(&store).await;
    let ea = epoch_of(&epochs, &a);
    emit(&store, &a, ea, &["t/1", "t/2"]).await;
    let claimed = store
        .claim_outbox(&[(sa, ea), (sa, ea)], 10)
        .await
        .expect("claim_outbox");
    assert_eq!(idem_keys(&claimed), vec!["t/1", "t/2"]);
}

async fn outbox_holds_move_an_actors_open_effects_between_states(store: Store) {
    let t = tenant();
    let a = actor(t);
    let sa = shard(&a);
    let bystander = actor(t);
    let epochs = own_all(&store).await;
    let ea = epoch_of(&epochs, &a);
    let eb = epoch_of(&epochs, &bystander);
    let held = [(sa, ea), (shard(&bystander), eb)];
    emit(&store, &a, ea, &["h/1", "h/2"]).await;
    emit(&store, &bystander, eb, &["b/1"]).await;

    hold(&store, &a, ea, OutboxHold::Hold).await;
    assert_eq!(
        outbox_statuses(&store, &a).await,
        vec![
            ("h/1".to_owned(), OutboxStatus::Held),
            ("h/2".to_owned(), OutboxStatus::Held),
        ]
    );
    assert_eq!(
        outbox_statuses(&store, &bystander).await,
        vec![("b/1".to_owned(), OutboxStatus::Pending)],
        "another actor's effects are not held"
    );
    let claimed = store.claim_outbox(&held, 10).await.expect("claim_outbox");
    assert_eq!(
        idem_keys(&claimed),
        vec!["b/1"],
        "held effects are not claimed"
    );

    hold(&store, &a, ea, OutboxHold::Release).await;
    assert_eq!(
        outbox_statuses(&store, &a).await,
        vec![
            ("h/1".to_owned(), OutboxStatus::Pending),
            ("h/2".to_owned(), OutboxStatus::Pending),
        ]
    );

    hold(&store, &a, ea, OutboxHold::Cancel).await;
    assert_eq!(
        outbox_statuses(&store, &a).await,
        vec![
            ("h/1".to_owned(), OutboxStatus::Canceled),
            ("h/2".to_owned(), OutboxStatus::Canceled),
        ]
    );
    assert_eq!(
        store
            .claim_outbox(&held, 10)
            .await
            .expect("claim_outbox")
            .len(),
        0
    );
    // Release does not revive canceled effects.
    hold(&store, &a, ea, OutboxHold::Release).await;
    assert_eq!(
        outbox_statuses(&store, &a).await,
        vec![
            ("h/1".to_owned(), OutboxStatus::Canceled),
            ("h/2".to_owned(), OutboxStatus::Canceled),
        ]
    );

    // Cancel also drops held effects; holds leave inflight effects alone.
    emit(&store, &a, ea, &["h/3", "h/4"]).await;
    let inflight = store.claim_outbox(&held, 1).await.expect("claim_outbox");
    assert_eq!(idem_keys(&inflight), vec!["h/3"]);
    hold(&store, &a, ea, OutboxHold::Hold).await;
    assert_eq!(
        outbox_statuses(&store, &a).await[2..],
        [
            ("h/3".to_owned(), OutboxStatus::Inflight),
            ("h/4".to_owned(), OutboxStatus::Held),
        ]
    );
    hold(&store, &a, ea, OutboxHold::Cancel).await;
    assert_eq!(
        outbox_statuses(&store, &a).await[2..],
        [
            ("h/3".to_owned(), OutboxStatus::Inflight),
            ("h/4".to_owned(), OutboxStatus::Canceled),
        ]
    );

    // Released effects are claimable again.
    emit(&store, &a, ea, &["h/5"]).await;
    hold(&store, &a, ea, OutboxHold::Hold).await;
    assert_eq!(
        store
            .claim_outbox(&held, 10)
            .await
            .expect("claim_outbox")
            .len(),
        0
    );
    hold(&store, &a, ea, OutboxHold::Release).await;
    let claimed = store.claim_outbox(&held, 10).await.expect("claim_outbox");
    assert_eq!(idem_keys(&claimed), vec!["h/5"]);

    // A hold in a fenced commit changes nothing.
    emit(&store, &a, ea, &["h/6"]).await;
    let id = deliver(&store, &a, json!({})).await;
    let mut r = record(&a, Epoch(ea.0 - 1), Consumed::Inbox { id });
    r.outbox = Some(OutboxHold::Cancel);
    assert_eq!(commit(&store, r).await, CommitOutcome::Fenced);
    assert_eq!(
        outbox_statuses(&store, &a).await.last(),
        Some(&("h/6".to_owned(), OutboxStatus::Pending))
    );
}

// ----- 10. dead letters

fn letter(key: &ActorKey, epoch: Epoch, consumed: Consumed, error: &str) -> DeadLetter {
    DeadLetter {
        key: *key,
        shard: shard(key),
        epoch,
        consumed,
        input: json!({ "poison": true }),
        error: error.to_owned(),
        attempts: 3,
        now_ms: now(),
    }
}

async fn a_dead_letter_consumes_its_input_and_is_listed_with_its_error(store: Store) {
    let t = tenant();
    let key = actor(t);
    let s = shard(&key);
    let epoch = own(&store, s).await;
    let id = deliver(&store, &key, json!({ "poison": true })).await;

    let l = letter(&key, epoch, Consumed::Inbox { id }, "boom: bad input");
    let at = l.now_ms;
    assert!(store.dead_letter(&l).await.expect("dead_letter"));
    assert!(!pending_ids(&store, s).await.contains(&id));

    let letters = store.dead_letters(t, 0, 10).await.expect("dead_letters");
    assert_eq!(letters.len(), 1);
    let d = &letters[0];
    assert_eq!(
        (d.key.tenant, d.key.kind.as_str(), d.key.id),
        (t, KIND.as_str(), key.id)
    );
    assert_eq!(d.error, "boom: bad input");
    assert_eq!(d.input, json!({ "poison": true }));
    assert_eq!((d.attempts, d.created_at_ms), (3, at));

    // The input is gone: dead-lettering it again does nothing.
    assert!(!store.dead_letter(&l).await.expect("dead_letter"));
    assert_eq!(
        store
            .dead_letters(t, 0, 10)
            .await
            .expect("dead_letters")
            .len(),
        1
    );

    // A poisoned timer firing.
    let due = now() + 60_000;
    arm(&store, &key, epoch, &[("poison", due)]).await;
    let l = letter(
        &key,
        epoch,
        Consumed::Timer {
            name: "poison".to_owned(),
            due_at_ms: due,
        },
        "timer boom",
    );
    assert!(store.dead_letter(&l).await.expect("dead_letter"));
    assert_eq!(timers_of(&store, &key).await, vec![]);
    let letters = store.dead_letters(t, 0, 10).await.expect("dead_letters");
    assert_eq!(
        letters.iter().map(|d| d.error.as_str()).collect::<Vec<_>>(),
        vec!["boom: bad input", "timer boom"]
    );
    assert!(letters[0].id < letters[1].id);
    let after = store
        .dead_letters(t, letters[0].id, 10)
        .await
        .expect("dead_letters");
    assert_eq!(
        after.iter().map(|d| d.id).collect::<Vec<_>>(),
        vec![letters[1].id]
    );
    assert_eq!(
        store
            .dead_letters(t, 0, 1)
            .await
            .expect("dead_letters")
            .len(),
        1
    );
}

/// A retry removes the letter and makes its input durable in one transaction: after it, the
/// letter is gone and the input is pending; a second retry finds nothing and writes nothing; a
/// retry whose input is already in (an earlier retry's dedupe key) still takes the letter off.
async fn a_retried_dead_letter_leaves_the_list_as_its_input_returns(store: Store) {
    let t = tenant();
    let key = actor(t);
    let s = shard(&key);
    let epoch = own(&store, s).await;
    let first = deliver(&store, &key, json!({ "poison": 1 })).await;
    let second = deliver(&store, &key, json!({ "poison": 2 })).await;
    for id in [first, second] {
        let l = letter(&key, epoch, Consumed::Inbox { id }, "boom");
        assert!(store.dead_letter(&l).await.expect("dead_letter"));
    }
    let letters = store.dead_letters(t, 0, 10).await.expect("dead_letters");
    let (a, b) = (letters[0].id, letters[1].id);

    let mut retry = input_to(&key, json!({ "poison": 1 }));
    retry.dedupe_key = format!("retry/{a}");
    let retried = store
        .retry_dead_letter(t, a, retry.clone())
        .await
        .expect("retry");
    let Retried::Resubmitted(Inserted::New { id, .. }) = retried else {
        panic!("expected a new input, got {retried:?}");
    };
    assert!(pending_ids(&store, s).await.contains(&id));
    let left: Vec<i64> = store
        .dead_letters(t, 0, 10)
        .await
        .expect("dead_letters")
        .iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(left, vec![b]);

    // Again: the letter is gone, so nothing is written (not even a duplicate input).
    let before = pending_ids(&store, s).await;
    assert_eq!(
        store.retry_dead_letter(t, a, retry).await.expect("retry"),
        Retried::Gone
    );
    assert_eq!(pending_ids(&store, s).await, before);

    // Another tenant cannot retry (or remove) this tenant's letter.
    let mut stray = input_to(&key, json!({ "poison": 2 }));
    stray.dedupe_key = format!("retry/{b}");
    assert_eq!(
        store
            .retry_dead_letter(tenant(), b, stray.clone())
            .await
            .expect("retry"),
        Retried::Gone
    );
    // Its input already in under the same key: the letter still leaves, no second input.
    deliver_keyed(&store, &stray).await;
    let before = pending_ids(&store, s).await;
    assert_eq!(
        store.retry_dead_letter(t, b, stray).await.expect("retry"),
        Retried::Resubmitted(Inserted::Duplicate)
    );
    assert_eq!(pending_ids(&store, s).await, before);
    assert!(store
        .dead_letters(t, 0, 10)
        .await
        .expect("dead_letters")
        .is_empty());
}

/// Puts `input` in its actor's inbox and returns its id.
async fn deliver_keyed(store: &Store, input: &NewInput) -> i64 {
    let inserted = store
        .insert_inbox(std::slice::from_ref(input))
        .await
        .expect("insert_inbox");
    match inserted.as_slice() {
        [Inserted::New { id, .. }] => *id,
        other => panic!("expected one new input, got {other:?}"),
    }
}

async fn a_dead_letter_with_a_stale_epoch_writes_nothing(store: Store) {
    let t = tenant();
    let key = actor(t);
    let s = shard(&key);
    let old = own(&store, s).await;
    let id = deliver(&store, &key, json!({ "poison": true })).await;
    let due = now() + 60_000;
    arm(&store, &key, old, &[("poison", due)]).await;
    let _new = own(&store, s).await;

    assert!(!store
        .dead_letter(&letter(&key, old, Consumed::Inbox { id }, "stale"))
        .await
        .expect("dead_letter"));
    assert!(!store
        .dead_letter(&letter(
            &key,
            old,
            Consumed::Timer {
                name: "poison".to_owned(),
                due_at_ms: due,
            },
            "stale",
        ))
        .await
        .expect("dead_letter"));
    assert!(
        pending_ids(&store, s).await.contains(&id),
        "the input is not consumed"
    );
    assert_eq!(
        timers_of(&store, &key).await,
        vec![("poison".to_owned(), due, json!({ "name": "poison" }))]
    );
    assert_eq!(
        store
            .dead_letters(t, 0, 10)
            .await
            .expect("dead_letters")
            .len(),
        0
    );
}

// ----- 11. tenant scoping

async fn reads_are_scoped_to_their_tenant(store: Store) {
    let mine = tenant();
    let theirs = tenant();
    let key = actor(mine);
    let epoch = own(&store, shard(&key)).await;
    let id = deliver(&store, &key, json!({})).await;
    let mut r = record(&key, epoch, Consumed::Inbox { id });
    r.checkpoint = checkpoint(0, json!({ "secret": true }));
    r.effects = vec![effect("scoped/1")];
    r.timers = vec![set_timer("t", now() + 60_000, json!({}))];
    r.timeline = vec![entry("created")];
    assert_eq!(commit(&store, r).await, committed());
    let poison = deliver(&store, &key, json!({ "poison": true })).await;
    assert!(store
        .dead_letter(&letter(&key, epoch, Consumed::Inbox { id: poison }, "boom"))
        .await
        .expect("dead_letter"));

    let list = |tenant: TenantId| ListQuery {
        tenant,
        kind: KIND.as_str().to_owned(),
        status: None,
        paused: None,
        after: None,
        limit: 100,
    };

    // The owner sees everything.
    assert!(store
        .get_actor(mine, KIND.as_str(), key.id)
        .await
        .expect("get_actor")
        .is_some());
    assert_eq!(store.list_actors(&list(mine)).await.expect("list").len(), 1);
    assert_eq!(timeline_kinds(&store, &key).await.len(), 1);
    assert_eq!(timers_of(&store, &key).await.len(), 1);
    assert_eq!(outbox_statuses(&store, &key).await.len(), 1);
    assert_eq!(store.dead_letters(mine, 0, 10).await.expect("dl").len(), 1);

    // Another tenant sees nothing, even with the actor's kind and id.
    assert!(store
        .get_actor(theirs, KIND.as_str(), key.id)
        .await
        .expect("get_actor")
        .is_none());
    assert!(store
        .list_actors(&list(theirs))
        .await
        .expect("list")
        .is_empty());
    assert!(store
        .timeline(theirs, KIND.as_str(), key.id, 0, 100)
        .await
        .expect("timeline")
        .is_empty());
    assert!(store
        .timers_of(theirs, KIND.as_str(), key.id)
        .await
        .expect("timers_of")
        .is_empty());
    assert!(store
        .outbox_of(theirs, KIND.as_str(), key.id)
        .await
        .expect("outbox_of")
        .is_empty());
    assert!(store
        .dead_letters(theirs, 0, 10)
        .await
        .expect("dead_letters")
        .is_empty());

    // Nor does another kind of the same tenant.
    assert!(store
        .get_actor(mine, "call", key.id)
        .await
        .expect("get_actor")
        .is_none());
    assert!(store
        .timers_of(mine, "call", key.id)
        .await
        .expect("timers_of")
        .is_empty());
    assert!(store
        .timeline(mine, "call", key.id, 0, 100)
        .await
        .expect("timeline")
        .is_empty());
}

// ----- 12. listing

async fn list_actors_filters_by_status_and_paused_and_pages_in_order(store: Store) {
    let t = tenant();
    let base = now() - 100_000;
    // (created_at offset, status, paused); two actors share a created_at to exercise the id
    // tie-break.
    let specs = [
        (5, "open", false),
        (1, "open", true),
        (3, "won", false),
        (3, "open", false),
        (2, "lost", true),
        (4, "open", false),
    ];
    let mut actors = Vec::new();
    for (offset, status, paused) in specs {
        let key = actor(t);
        let epoch = own(&store, shard(&key)).await;
        let id = deliver(&store, &key, json!({})).await;
        let mut r = record(&key, epoch, Consumed::Inbox { id });
        r.now_ms = base + offset;
        r.checkpoint = Some(CheckpointWrite {
            expected_version: 0,
            state: json!({ "status": status }),
            status: status.to_owned(),
            paused,
        });
        assert_eq!(commit(&store, r).await, committed());
        actors.push((base + offset, key.id, status, paused));
    }
    // Another kind and another tenant are never listed.
    for key in [
        ActorKey::root(t, ActorKind("call"), Uuid::new_v4()),
        actor(tenant()),
    ] {
        let epoch = own(&store, shard(&key)).await;
        let id = deliver(&store, &key, json!({})).await;
        let mut r = record(&key, epoch, Consumed::Inbox { id });
        r.checkpoint = checkpoint(0, json!({}));
        assert_eq!(commit(&store, r).await, committed());
    }
    actors.sort_by_key(|(at, id, _, _)| (*at, *id));

    let query = |status: Option<&str>, paused: Option<bool>, after, limit| ListQuery {
        tenant: t,
        kind: KIND.as_str().to_owned(),
        status: status.map(str::to_owned),
        paused,
        after,
        limit,
    };
    let ids = |rows: Vec<neuronx_supervision::store::ActorRow>| {
        rows.into_iter()
            .map(|r| (r.created_at_ms, r.key.id))
            .collect::<Vec<_>>()
    };
    let expect = |f: &dyn Fn(&str, bool) -> bool| {
        actors
            .iter()
            .filter(|(_, _, s, p)| f(s, *p))
            .map(|(at, id, _, _)| (*at, *id))
            .collect::<Vec<_>>()
    };

    let all = store
        .list_actors(&query(None, None, None, 100))
        .await
        .expect("list");
    assert_eq!(all.len(), 6);
    assert!(all.iter().all(|r| r.version == 1 && r.key.tenant == t));
    assert_eq!(ids(all), expect(&|_, _| true), "oldest first, then by id");
    assert_eq!(
        ids(store
            .list_actors(&query(Some("open"), None, None, 100))
            .await
            .expect("list")),
        expect(&|s, _| s == "open")
    );
    assert_eq!(
        ids(store
            .list_actors(&query(None, Some(true), None, 100))
            .await
            .expect("list")),
        expect(&|_, p| p)
    );
    assert_eq!(
        ids(store
            .list_actors(&query(None, Some(false), None, 100))
            .await
            .expect("list")),
        expect(&|_, p| !p)
    );
    assert_eq!(
        ids(store
            .list_actors(&query(Some("open"), Some(false), None, 100))
            .await
            .expect("list")),
        expect(&|s, p| s == "open" && !p)
    );
    assert!(store
        .list_actors(&query(Some("nope"), None, None, 100))
        .await
        .expect("list")
        .is_empty());

    // Pages of two, each resuming after the last row of the previous one.
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = ids(store
            .list_actors(&query(None, None, after, 2))
            .await
            .expect("list"));
        assert!(page.len() <= 2);
        let Some(last) = page.last().copied() else {
            break;
        };
        paged.extend(page);
        after = Some(last);
    }
    assert_eq!(paged, expect(&|_, _| true));

    // Paging composes with a filter; the cursor between the two actors sharing a created_at
    // splits them by id.
    let open = expect(&|s, _| s == "open");
    let page = ids(store
        .list_actors(&query(Some("open"), None, Some(open[1]), 100))
        .await
        .expect("list"));
    assert_eq!(page, open[2..].to_vec());
    let tied: Vec<_> = actors
        .iter()
        .filter(|(at, _, _, _)| *at == base + 3)
        .map(|(at, id, _, _)| (*at, *id))
        .collect();
    assert_eq!(tied.len(), 2);
    let page = ids(store
        .list_actors(&query(None, None, Some(tied[0]), 1))
        .await
        .expect("list"));
    assert_eq!(page, vec![tied[1]]);
}

// ----- 13. backlog

async fn backlog_counts_waiting_inputs_open_effects_and_due_timers(store: Store) {
    let base = now();
    assert_eq!(
        store.backlog(base).await.expect("backlog"),
        Backlog::default()
    );

    let t = tenant();
    let a = actor(t);
    let b = actor(t);
    let ea = own(&store, shard(&a)).await;
    let consumed = deliver(&store, &a, json!({})).await;
    deliver(&store, &a, json!({})).await;
    deliver(&store, &b, json!({})).await;

    let mut r = record(&a, ea, Consumed::Inbox { id: consumed });
    r.effects = vec![
        effect("bl/1"),
        effect("bl/2"),
        effect("bl/3"),
        effect("bl/4"),
    ];
    r.timers = vec![
        set_timer("soon", base + 100, json!({})),
        set_timer("later", base + 5_000, json!({})),
    ];
    assert_eq!(commit(&store, r).await, committed());

    let claimed = store
        .claim_outbox(&[(shard(&a), ea)], 2)
        .await
        .expect("claim_outbox");
    assert_eq!(claimed.len(), 2);
    let done = claimed.iter().min_by_key(|r| r.id).expect("two claimed");
    store
        .complete_outbox(&[EffectDone {
            outbox_id: done.id,
            claim: done.attempts,
            status: OutboxStatus::Done,
            result: json!({}),
            now_ms: now(),
            followup: None,
        }])
        .await
        .expect("complete_outbox");

    // 2 inputs left; 1 inflight + 2 pending effects; timers by due time.
    assert_eq!(
        store.backlog(base + 1_000).await.expect("backlog"),
        Backlog {
            inbox: 2,
            outbox_open: 3,
            timers_due: 1,
        }
    );
    assert_eq!(
        store.backlog(base + 10_000).await.expect("backlog"),
        Backlog {
            inbox: 2,
            outbox_open: 3,
            timers_due: 2,
        }
    );
    assert_eq!(
        store.backlog(base + 100).await.expect("backlog").timers_due,
        0,
        "due exactly at `before` is not counted"
    );

    // Held and canceled effects are not open work.
    hold(&store, &a, ea, OutboxHold::Hold).await;
    assert_eq!(
        store.backlog(base).await.expect("backlog"),
        Backlog {
            inbox: 2,
            outbox_open: 1,
            timers_due: 0,
        }
    );
}

async fn pruned_dedupe_keys_are_forgotten_and_recent_ones_kept(store: Store) {
    let key = actor(tenant());
    let inserted = store
        .insert_inbox(&[keyed(&key, "old", true, json!({ "n": 1 }))])
        .await
        .expect("insert_inbox");
    assert!(matches!(inserted[0], Inserted::New { .. }));
    // Nothing is older than an hour ago: nothing is forgotten.
    let hour_ago = chrono::Utc::now().timestamp_millis() - 3_600_000;
    assert_eq!(store.prune_dedupe(hour_ago).await.expect("prune"), 0);
    let again = store
        .insert_inbox(&[keyed(&key, "old", true, json!({ "n": 2 }))])
        .await
        .expect("insert_inbox");
    assert_eq!(again, vec![Inserted::Duplicate]);
    // Past the retention the key is forgotten and the same key is new input again.
    let later = chrono::Utc::now().timestamp_millis() + 1;
    assert_eq!(store.prune_dedupe(later).await.expect("prune"), 1);
    let after = store
        .insert_inbox(&[keyed(&key, "old", true, json!({ "n": 3 }))])
        .await
        .expect("insert_inbox");
    assert!(matches!(after[0], Inserted::New { .. }));
}
