//! Effect completions are compare-and-set on the claim (issue #13, item 1): a completion that
//! comes after the shard's next holder recorded the effect `unknown`, or after the effect was
//! claimed again, is refused and writes nothing, its follow-up input included.
//!
//! The scenario: instance A claims a dial and freezes past its lease and `orphan_after`; B takes
//! the shard, records the dial `unknown` and tells the call "not dialling again"; A wakes and
//! writes its result (`pending`: "not sent, try again"). Before the fix that write put the row
//! back to pending and the lead was dialled late.

#[macro_use]
mod common;

use std::time::Duration;

use neuronx_supervision::store::{
    CommitOutcome, CommitRecord, Completion, Consumed, EffectDone, EffectWrite, Inserted, NewInput,
    OutboxRow, OutboxStatus,
};
use neuronx_supervision::{ActorKey, ActorKind, Epoch, ShardId, Store, TenantId};
use serde_json::{json, Value};
use uuid::Uuid;

use common::SHARDS;

conformance!(
    a_late_completion_after_the_orphan_record_is_refused_and_writes_nothing,
    a_completion_of_an_earlier_claim_is_refused_and_the_current_one_lands,
    a_claimer_that_finishes_before_the_orphan_record_wins,
    claims_and_orphan_checks_of_a_shard_taken_over_find_nothing,
);

const KIND: ActorKind = ActorKind("opportunity");

fn now() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn actor() -> ActorKey {
    ActorKey::root(TenantId(Uuid::new_v4()), KIND, Uuid::new_v4())
}

fn shard(key: &ActorKey) -> ShardId {
    key.shard(SHARDS)
}

/// Takes `shard` (by force, as a takeover does) and returns its new epoch.
async fn take(store: &Store, shard: ShardId, owner: &str) -> Epoch {
    store
        .claim_shard(shard, owner, Duration::from_secs(3), true)
        .await
        .expect("claim_shard")
        .expect("a forced claim always succeeds")
        .epoch
}

fn input(key: &ActorKey, dedupe_key: &str, input: Value) -> NewInput {
    NewInput {
        key: *key,
        shard: shard(key),
        dedupe_key: dedupe_key.to_owned(),
        remember: true,
        input,
        reply: false,
        notify: false,
    }
}

/// Commits a transition of `key` that asks for one dial, `idem`.
async fn emit(store: &Store, key: &ActorKey, epoch: Epoch, idem: &str) {
    let inserted = store
        .insert_inbox(&[input(
            key,
            &Uuid::new_v4().to_string(),
            json!({"op": "emit"}),
        )])
        .await
        .expect("insert_inbox");
    let Some(Inserted::New { id, .. }) = inserted.first() else {
        panic!("expected a new input, got {inserted:?}");
    };
    let record = CommitRecord {
        key: *key,
        shard: shard(key),
        epoch,
        now_ms: now(),
        consumed: Consumed::Inbox { id: *id },
        checkpoint: None,
        effects: vec![EffectWrite {
            idem_key: idem.to_owned(),
            channel: "voice".to_owned(),
            payload: json!({ "dial": idem }),
        }],
        timers: Vec::new(),
        timeline: Vec::new(),
        sends: Vec::new(),
        outbox: None,
        lookups: Vec::new(),
        reply: None,
    };
    let outcomes = store.commit(&[record]).await.expect("commit");
    assert_eq!(
        outcomes,
        vec![CommitOutcome::Committed { sent: Vec::new() }]
    );
}

async fn claim_one(store: &Store, held: (ShardId, Epoch)) -> OutboxRow {
    let mut rows = store.claim_outbox(&[held], 10).await.expect("claim_outbox");
    assert_eq!(rows.len(), 1, "one effect claimed: {rows:?}");
    rows.remove(0)
}

/// A completion of `row`'s claim with `status` and a follow-up input named `followup`.
fn done(row: &OutboxRow, key: &ActorKey, status: OutboxStatus, followup: &str) -> EffectDone {
    EffectDone {
        outbox_id: row.id,
        claim: row.attempts,
        status,
        result: json!({ "by": followup }),
        now_ms: now(),
        followup: Some(input(key, followup, json!({ "followup": followup }))),
    }
}

async fn complete(store: &Store, d: EffectDone) -> Completion {
    let mut out = store.complete_outbox(&[d]).await.expect("complete_outbox");
    assert_eq!(out.len(), 1, "one answer per completion");
    out.remove(0)
}

async fn status_of(store: &Store, key: &ActorKey) -> Vec<OutboxStatus> {
    store
        .outbox_of(key.tenant, key.kind.as_str(), key.id)
        .await
        .expect("outbox_of")
        .into_iter()
        .map(|r| r.status)
        .collect()
}

async fn followups_of(store: &Store, key: &ActorKey) -> Vec<Value> {
    store
        .pending_inbox(shard(key), i64::MAX, 1000)
        .await
        .expect("pending_inbox")
        .into_iter()
        .filter(|r| r.key.id == key.id)
        .map(|r| r.input)
        .collect()
}

fn recorded_new(c: &Completion) -> bool {
    matches!(c, Completion::Recorded(Some(Inserted::New { .. })))
}

async fn a_late_completion_after_the_orphan_record_is_refused_and_writes_nothing(store: Store) {
    let key = actor();
    let s = shard(&key);
    let a_epoch = take(&store, s, "a").await;
    emit(&store, &key, a_epoch, "dial/1").await;
    let a_claim = claim_one(&store, (s, a_epoch)).await;

    // A freezes; B takes the shard over and, past `orphan_after`, records the dial unknown.
    let b_epoch = take(&store, s, "b").await;
    let orphans = store
        .orphaned_effects(&[(s, b_epoch)], -60_000)
        .await
        .expect("orphaned_effects");
    assert_eq!(orphans.len(), 1);
    let b_record = complete(
        &store,
        done(&orphans[0], &key, OutboxStatus::Unknown, "not-dialling"),
    )
    .await;
    assert!(
        recorded_new(&b_record),
        "the orphan record lands: {b_record:?}"
    );

    // A wakes and reports "not sent, try again".
    let late = complete(
        &store,
        done(&a_claim, &key, OutboxStatus::Pending, "retry-later"),
    )
    .await;
    assert_eq!(late, Completion::Refused);
    assert_eq!(
        status_of(&store, &key).await,
        vec![OutboxStatus::Unknown],
        "the dial stays unknown, never pending again"
    );
    assert_eq!(
        followups_of(&store, &key).await,
        vec![json!({ "followup": "not-dialling" })],
        "the refused completion wrote no input for the actor"
    );
    assert!(
        store
            .claim_outbox(&[(s, b_epoch)], 10)
            .await
            .expect("claim_outbox")
            .is_empty(),
        "nothing to dial again"
    );
    // Nor can a late `done` overwrite the unknown.
    let late = complete(&store, done(&a_claim, &key, OutboxStatus::Done, "dialled")).await;
    assert_eq!(late, Completion::Refused);
    assert_eq!(status_of(&store, &key).await, vec![OutboxStatus::Unknown]);
}

async fn a_completion_of_an_earlier_claim_is_refused_and_the_current_one_lands(store: Store) {
    let key = actor();
    let s = shard(&key);
    let epoch = take(&store, s, "a").await;
    emit(&store, &key, epoch, "dial/1").await;
    let first = claim_one(&store, (s, epoch)).await;
    let back = complete(&store, done(&first, &key, OutboxStatus::Pending, "first")).await;
    assert!(recorded_new(&back), "{back:?}");
    let second = claim_one(&store, (s, epoch)).await;
    assert_eq!(
        second.attempts,
        first.attempts + 1,
        "each claim counts one more"
    );

    // The first claim's completion again (a retry whose acknowledgement was lost) must not
    // hand the row, now running under the second claim, back to pending.
    let stale = complete(
        &store,
        done(&first, &key, OutboxStatus::Pending, "first-again"),
    )
    .await;
    assert_eq!(stale, Completion::Refused);
    assert_eq!(status_of(&store, &key).await, vec![OutboxStatus::Inflight]);

    let current = complete(&store, done(&second, &key, OutboxStatus::Done, "second")).await;
    assert!(recorded_new(&current), "{current:?}");
    assert_eq!(status_of(&store, &key).await, vec![OutboxStatus::Done]);
    assert_eq!(
        followups_of(&store, &key).await,
        vec![
            json!({ "followup": "first" }),
            json!({ "followup": "second" })
        ]
    );
}

async fn a_claimer_that_finishes_before_the_orphan_record_wins(store: Store) {
    let key = actor();
    let s = shard(&key);
    let a_epoch = take(&store, s, "a").await;
    emit(&store, &key, a_epoch, "dial/1").await;
    let a_claim = claim_one(&store, (s, a_epoch)).await;
    // The shard moves on (rebalancing) while the dial runs; B reads it as an orphan...
    let b_epoch = take(&store, s, "b").await;
    let orphans = store
        .orphaned_effects(&[(s, b_epoch)], -60_000)
        .await
        .expect("orphaned_effects");
    assert_eq!(orphans.len(), 1);
    // ...but A's result lands first: the effect ran once and its result is known.
    let a_done = complete(&store, done(&a_claim, &key, OutboxStatus::Done, "dialled")).await;
    assert!(recorded_new(&a_done), "{a_done:?}");
    let b_record = complete(
        &store,
        done(&orphans[0], &key, OutboxStatus::Unknown, "not-dialling"),
    )
    .await;
    assert_eq!(b_record, Completion::Refused);
    assert_eq!(status_of(&store, &key).await, vec![OutboxStatus::Done]);
    assert_eq!(
        followups_of(&store, &key).await,
        vec![json!({ "followup": "dialled" })]
    );
    assert!(store
        .orphaned_effects(&[(s, b_epoch)], -60_000)
        .await
        .expect("orphaned_effects")
        .is_empty());
}

async fn claims_and_orphan_checks_of_a_shard_taken_over_find_nothing(store: Store) {
    let key = actor();
    let s = shard(&key);
    let a_epoch = take(&store, s, "a").await;
    emit(&store, &key, a_epoch, "dial/1").await;
    // Another actor's dial on the shard: one actor's second dial would wait for its first,
    // still in flight (effects of an actor and channel leave in commit order).
    let other = ActorKey::child(&key, ActorKind("call"), Uuid::new_v4());
    emit(&store, &other, a_epoch, "dial/2").await;
    let first = store
        .claim_outbox(&[(s, a_epoch)], 1)
        .await
        .expect("claim_outbox");
    assert_eq!(first.len(), 1);
    let b_epoch = take(&store, s, "b").await;
    assert!(store
        .claim_outbox(&[(s, a_epoch)], 10)
        .await
        .expect("claim_outbox")
        .is_empty());
    assert!(store
        .orphaned_effects(&[(s, a_epoch)], -60_000)
        .await
        .expect("orphaned_effects")
        .is_empty());
    assert_eq!(claim_one(&store, (s, b_epoch)).await.idem_key, "dial/2");
}
