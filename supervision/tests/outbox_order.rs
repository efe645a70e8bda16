//! An actor's effects leave in commit order per channel (issue #13, item 7): an effect is not
//! started while an earlier one of the same actor and channel is pending (a `RetryLater` put it
//! back) or in flight. Effects of other actors, and of other channels, are not held back; held
//! and canceled effects hold nothing back.
//!
//! A pause or an opt-out that commits while an effect is in flight still applies to it when it
//! comes back unsent (ADR 0038; found by the fault simulation, PostgreSQL x3 seed 100492).
//!
//! The claim's rules are checked on the store; the end-to-end guarantee on the real engine, with
//! a scripted effect handler standing in for a carrier that is slow or answers "try later".

#[allow(dead_code, unused_macros)]
#[macro_use]
mod common;
#[path = "outbox_order/script.rs"]
mod script;

use std::collections::BTreeSet;
use std::time::Duration;

use neuronx_supervision::entity::OutboxHold;
use neuronx_supervision::store::{
    CommitOutcome, CommitRecord, Completion, Consumed, EffectDone, EffectWrite, Inserted, NewInput,
    OutboxRow, OutboxStatus,
};
use neuronx_supervision::{ActorKey, ActorKind, Epoch, ShardId, Store, TenantId};
use serde_json::json;
use uuid::Uuid;

use common::SHARDS;
use script::{arrivals_within, Text};

conformance!(
    a_later_effect_waits_for_an_earlier_one_of_its_actor_and_channel,
    an_effect_left_in_flight_holds_back_later_ones_until_recorded,
    held_and_canceled_effects_hold_nothing_back,
    texts_of_two_transitions_arrive_in_commit_order_when_the_first_is_slow,
    texts_of_one_transition_arrive_in_commit_order_when_the_first_is_slow,
    a_retry_later_does_not_let_the_next_text_overtake,
    effects_of_two_actors_go_out_concurrently,
    a_cancel_while_in_flight_keeps_a_retry_later_from_going_out,
    a_pause_while_in_flight_holds_a_retry_later,
    an_effect_in_flight_stands_until_a_hold_or_a_cancel,
);

const KIND: ActorKind = ActorKind("opportunity");

fn now() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn shard(key: &ActorKey) -> ShardId {
    key.shard(SHARDS)
}

async fn take(store: &Store, shard: ShardId) -> Epoch {
    store
        .claim_shard(shard, "a", Duration::from_secs(30), true)
        .await
        .expect("claim_shard")
        .expect("a forced claim always succeeds")
        .epoch
}

/// Commits one transition of `key` writing `effects` (`(channel, idem_key)`) after `hold`.
async fn commit(
    store: &Store,
    key: &ActorKey,
    epoch: Epoch,
    effects: &[(&str, &str)],
    hold: Option<OutboxHold>,
) {
    let inserted = store
        .insert_inbox(&[NewInput {
            key: *key,
            shard: shard(key),
            dedupe_key: Uuid::new_v4().to_string(),
            remember: true,
            input: json!({"op": "emit"}),
            reply: false,
            notify: false,
        }])
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
        effects: effects
            .iter()
            .map(|(channel, idem)| EffectWrite {
                idem_key: (*idem).to_owned(),
                channel: (*channel).to_owned(),
                payload: json!({}),
            })
            .collect(),
        timers: Vec::new(),
        timeline: Vec::new(),
        sends: Vec::new(),
        outbox: hold,
        lookups: Vec::new(),
        reply: None,
    };
    let outcomes = store.commit(&[record]).await.expect("commit");
    assert_eq!(
        outcomes,
        vec![CommitOutcome::Committed { sent: Vec::new() }]
    );
}

async fn claim(store: &Store, held: &[(ShardId, Epoch)]) -> Vec<OutboxRow> {
    store.claim_outbox(held, 100).await.expect("claim_outbox")
}

fn keys(rows: &[OutboxRow]) -> BTreeSet<&str> {
    rows.iter().map(|r| r.idem_key.as_str()).collect()
}

async fn complete(store: &Store, row: &OutboxRow, status: OutboxStatus) {
    let out = store
        .complete_outbox(&[EffectDone {
            outbox_id: row.id,
            claim: row.attempts,
            status,
            result: json!({}),
            now_ms: now(),
            followup: None,
        }])
        .await
        .expect("complete_outbox");
    assert_eq!(out, vec![Completion::Recorded(None)]);
}

/// One actor's two texts and one dial, another actor's text: the claim takes the first text,
/// the dial and the other actor's text, not the second text. "Try later" puts the first text
/// back, and the next claim takes it again, still not the second; once it is done the second
/// goes.
async fn a_later_effect_waits_for_an_earlier_one_of_its_actor_and_channel(store: Store) {
    let tenant = TenantId(Uuid::new_v4());
    let a = ActorKey::root(tenant, KIND, Uuid::new_v4());
    // A call of the same opportunity: another actor on the same shard, in the same group.
    let b = ActorKey::child(&a, ActorKind("call"), Uuid::new_v4());
    let held = [(shard(&a), take(&store, shard(&a)).await)];
    let epoch = held[0].1;
    commit(&store, &a, epoch, &[("sms", "a/1"), ("sms", "a/2")], None).await;
    commit(&store, &a, epoch, &[("voice", "a/dial")], None).await;
    commit(&store, &b, epoch, &[("sms", "b/1")], None).await;

    let first = claim(&store, &held).await;
    assert_eq!(keys(&first), BTreeSet::from(["a/1", "a/dial", "b/1"]));
    assert!(claim(&store, &held).await.is_empty(), "a/2 waits for a/1");

    let a1 = first.iter().find(|r| r.idem_key == "a/1").expect("a/1");
    complete(&store, a1, OutboxStatus::Pending).await;
    let again = claim(&store, &held).await;
    assert_eq!(keys(&again), BTreeSet::from(["a/1"]), "a/1 again, not a/2");

    complete(&store, &again[0], OutboxStatus::Done).await;
    assert_eq!(keys(&claim(&store, &held).await), BTreeSet::from(["a/2"]));
}

/// A text left in flight (its claimer stopped) holds the next one back until the shard's holder
/// records it unknown; then the next goes.
async fn an_effect_left_in_flight_holds_back_later_ones_until_recorded(store: Store) {
    let a = ActorKey::root(TenantId(Uuid::new_v4()), KIND, Uuid::new_v4());
    let held = [(shard(&a), take(&store, shard(&a)).await)];
    commit(&store, &a, held[0].1, &[("sms", "a/1")], None).await;
    let claimed = claim(&store, &held).await;
    assert_eq!(keys(&claimed), BTreeSet::from(["a/1"]));
    commit(&store, &a, held[0].1, &[("sms", "a/2")], None).await;
    assert!(
        claim(&store, &held).await.is_empty(),
        "a/1 is still in flight"
    );

    let orphans = store
        .orphaned_effects(&held, -60_000)
        .await
        .expect("orphaned_effects");
    assert_eq!(keys(&orphans), BTreeSet::from(["a/1"]));
    complete(&store, &orphans[0], OutboxStatus::Unknown).await;
    assert_eq!(keys(&claim(&store, &held).await), BTreeSet::from(["a/2"]));
}

/// Pause holds a text; a text the pausing transition itself writes (after the hold) goes out.
/// Resume releases the held one, which goes too. A canceled text holds nothing back either.
async fn held_and_canceled_effects_hold_nothing_back(store: Store) {
    let a = ActorKey::root(TenantId(Uuid::new_v4()), KIND, Uuid::new_v4());
    let held = [(shard(&a), take(&store, shard(&a)).await)];
    let epoch = held[0].1;
    commit(&store, &a, epoch, &[("sms", "a/1")], None).await;
    commit(&store, &a, epoch, &[("sms", "a/2")], Some(OutboxHold::Hold)).await;
    let claimed = claim(&store, &held).await;
    assert_eq!(
        keys(&claimed),
        BTreeSet::from(["a/2"]),
        "held a/1 holds nothing"
    );
    complete(&store, &claimed[0], OutboxStatus::Done).await;

    commit(&store, &a, epoch, &[], Some(OutboxHold::Release)).await;
    let claimed = claim(&store, &held).await;
    assert_eq!(keys(&claimed), BTreeSet::from(["a/1"]), "released, it goes");
    complete(&store, &claimed[0], OutboxStatus::Done).await;

    commit(&store, &a, epoch, &[("sms", "a/3")], None).await;
    commit(
        &store,
        &a,
        epoch,
        &[("sms", "a/4")],
        Some(OutboxHold::Cancel),
    )
    .await;
    assert_eq!(keys(&claim(&store, &held).await), BTreeSet::from(["a/4"]));
    let statuses: Vec<(String, OutboxStatus)> = store
        .outbox_of(a.tenant, KIND.as_str(), a.id)
        .await
        .expect("outbox_of")
        .into_iter()
        .map(|r| (r.idem_key, r.status))
        .collect();
    assert!(statuses.contains(&("a/3".to_owned(), OutboxStatus::Canceled)));
}

/// Two transitions each write one text; the first text's carrier answers slowly. Before the
/// fix the second text was claimed as soon as it was committed and arrived first.
async fn texts_of_two_transitions_arrive_in_commit_order_when_the_first_is_slow(store: Store) {
    let (engine, arrivals) = script::start(store).await;
    let h = engine.handle();
    let key = script::key();
    script::emit(&h, key, vec![Text::slow("1", 500)]).await;
    script::emit(&h, key, vec![Text::now("2")]).await;
    assert_eq!(arrivals_within(&arrivals, 2).await, ["1", "2"]);
    engine.shutdown().await;
}

/// One transition writes both texts: before the fix one claim took both and ran them at once.
async fn texts_of_one_transition_arrive_in_commit_order_when_the_first_is_slow(store: Store) {
    let (engine, arrivals) = script::start(store).await;
    let h = engine.handle();
    let key = script::key();
    script::emit(&h, key, vec![Text::slow("1", 500), Text::now("2")]).await;
    assert_eq!(arrivals_within(&arrivals, 2).await, ["1", "2"]);
    engine.shutdown().await;
}

/// The first text's first try answers "try later" (slowly, so the second is committed by
/// then): the second text waits for the first's next try instead of overtaking it.
async fn a_retry_later_does_not_let_the_next_text_overtake(store: Store) {
    let (engine, arrivals) = script::start(store.clone()).await;
    let h = engine.handle();
    let key = script::key();
    script::emit(&h, key, vec![Text::slow("1", 300).retry_first()]).await;
    script::emit(&h, key, vec![Text::now("2")]).await;
    assert_eq!(arrivals_within(&arrivals, 2).await, ["1", "2"]);
    let attempts: Vec<i32> = store
        .outbox_of(key.tenant, script::KIND.as_str(), key.id)
        .await
        .expect("outbox_of")
        .into_iter()
        .map(|r| r.attempts)
        .collect();
    assert_eq!(attempts, [2, 1], "the first text was tried twice");
    engine.shutdown().await;
}

/// Actor A's text waits, at the carrier, for actor B's text, committed after it: it arrives
/// only if both run at once (a claim that serialised actors would leave A waiting alone).
async fn effects_of_two_actors_go_out_concurrently(store: Store) {
    let (engine, arrivals) = script::start(store).await;
    let h = engine.handle();
    script::emit(&h, script::key(), vec![Text::now("a").waits_for("b")]).await;
    script::emit(&h, script::key(), vec![Text::now("b")]).await;
    assert_eq!(arrivals_within(&arrivals, 2).await, ["b", "a after b"]);
    engine.shutdown().await;
}

// ----- holds that reach effects in flight (ADR 0038)

/// A call's dial is in flight when its opportunity opts out (cancel); the dial comes back unsent
/// and must not be claimed again.
async fn a_cancel_while_in_flight_keeps_a_retry_later_from_going_out(store: Store) {
    let opp = ActorKey::root(TenantId(Uuid::new_v4()), KIND, Uuid::new_v4());
    let call = ActorKey::child(&opp, ActorKind("call"), Uuid::new_v4());
    let held = [(shard(&opp), take(&store, shard(&opp)).await)];
    commit(&store, &call, held[0].1, &[("voice", "call/dial")], None).await;
    let claimed = claim(&store, &held).await;
    assert_eq!(claimed.len(), 1, "the dial is in flight");
    commit(&store, &opp, held[0].1, &[], Some(OutboxHold::Cancel)).await;
    complete(&store, &claimed[0], OutboxStatus::Pending).await;
    let again = claim(&store, &held).await;
    assert!(
        again.is_empty(),
        "a dial canceled while in flight went out again: {:?}",
        again.iter().map(|r| &r.idem_key).collect::<Vec<_>>()
    );
}

/// A text is in flight when its opportunity is paused; it comes back unsent and must wait for
/// the resume.
async fn a_pause_while_in_flight_holds_a_retry_later(store: Store) {
    let opp = ActorKey::root(TenantId(Uuid::new_v4()), KIND, Uuid::new_v4());
    let held = [(shard(&opp), take(&store, shard(&opp)).await)];
    commit(&store, &opp, held[0].1, &[("sms", "opp/text")], None).await;
    let claimed = claim(&store, &held).await;
    assert_eq!(claimed.len(), 1, "the text is in flight");
    commit(&store, &opp, held[0].1, &[], Some(OutboxHold::Hold)).await;
    complete(&store, &claimed[0], OutboxStatus::Pending).await;
    assert!(
        claim(&store, &held).await.is_empty(),
        "a text paused while in flight went out while paused"
    );
    commit(&store, &opp, held[0].1, &[], Some(OutboxHold::Release)).await;
    assert_eq!(claim(&store, &held).await.len(), 1, "released on resume");
}

/// What a handler whose send waited asks (`Standing::holds`): the effect in flight stands until
/// a pause holds its group (and again once resumed), and no longer once an opt-out cancels it or
/// another claim took it.
async fn an_effect_in_flight_stands_until_a_hold_or_a_cancel(store: Store) {
    let opp = ActorKey::root(TenantId(Uuid::new_v4()), KIND, Uuid::new_v4());
    let held = [(shard(&opp), take(&store, shard(&opp)).await)];
    commit(&store, &opp, held[0].1, &[("sms", "opp/text")], None).await;
    let row = claim(&store, &held).await.remove(0);
    let stands = |claim| store.effect_stands(row.id, claim);
    assert!(stands(row.attempts).await.expect("effect_stands"));
    assert!(
        !stands(row.attempts + 1).await.expect("effect_stands"),
        "another claim's"
    );
    commit(&store, &opp, held[0].1, &[], Some(OutboxHold::Hold)).await;
    assert!(
        !stands(row.attempts).await.expect("effect_stands"),
        "paused"
    );
    commit(&store, &opp, held[0].1, &[], Some(OutboxHold::Release)).await;
    assert!(
        stands(row.attempts).await.expect("effect_stands"),
        "resumed"
    );
    commit(&store, &opp, held[0].1, &[], Some(OutboxHold::Cancel)).await;
    assert!(
        !stands(row.attempts).await.expect("effect_stands"),
        "opted out"
    );
}
