//! A pause or a cancel (an opt-out) that commits while one of the group's effects is in flight
//! still applies to that effect when it comes back unsent (`RetryLater`): the hold leaves the
//! in-flight row its fate (`outbox.hold`), and the completion writes that fate instead of
//! `pending`, so the effect is not claimed again and sent after a STOP, or while paused.
//!
//! Found by the fault simulation (PostgreSQL, three engines, seed 100492: a dial claimed before
//! its engine's connections were cut and the engine stalled went out about three seconds after the
//! lead's second STOP).

#[allow(dead_code, unused_macros)]
#[macro_use]
mod common;

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

mod pg {
    #[tokio::test]
    async fn a_cancel_while_in_flight_keeps_a_retry_later_from_going_out() {
        let db = crate::common::postgres().await;
        super::a_cancel_while_in_flight_keeps_a_retry_later_from_going_out(db.store.clone()).await;
        db.finish().await;
    }

    #[tokio::test]
    async fn an_effect_in_flight_stands_until_a_hold_or_a_cancel() {
        let db = crate::common::postgres().await;
        super::an_effect_in_flight_stands_until_a_hold_or_a_cancel(db.store.clone()).await;
        db.finish().await;
    }

    #[tokio::test]
    async fn a_pause_while_in_flight_holds_a_retry_later() {
        let db = crate::common::postgres().await;
        super::a_pause_while_in_flight_holds_a_retry_later(db.store.clone()).await;
        db.finish().await;
    }
}

mod sqlite {
    #[tokio::test]
    async fn a_cancel_while_in_flight_keeps_a_retry_later_from_going_out() {
        let db = crate::common::sqlite().await;
        super::a_cancel_while_in_flight_keeps_a_retry_later_from_going_out(db.store.clone()).await;
        db.finish().await;
    }

    #[tokio::test]
    async fn an_effect_in_flight_stands_until_a_hold_or_a_cancel() {
        let db = crate::common::sqlite().await;
        super::an_effect_in_flight_stands_until_a_hold_or_a_cancel(db.store.clone()).await;
        db.finish().await;
    }

    #[tokio::test]
    async fn a_pause_while_in_flight_holds_a_retry_later() {
        let db = crate::common::sqlite().await;
        super::a_pause_while_in_flight_holds_a_retry_later(db.store.clone()).await;
        db.finish().await;
    }
}

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

/// The effect comes back unsent: the dispatcher's `RetryLater`.
async fn hand_back(store: &Store, row: &OutboxRow) {
    let out = store
        .complete_outbox(&[EffectDone {
            outbox_id: row.id,
            claim: row.attempts,
            status: OutboxStatus::Pending,
            result: json!({"error": "not sent"}),
            now_ms: now(),
            followup: None,
        }])
        .await
        .expect("complete_outbox");
    assert_eq!(out, vec![Completion::Recorded(None)]);
}

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
    hand_back(&store, &claimed[0]).await;
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
    hand_back(&store, &claimed[0]).await;
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
