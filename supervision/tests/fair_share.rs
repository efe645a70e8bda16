#![allow(clippy::unwrap_used)]
//! Fair shares among tenants (issue #13, item 6): one tenant's backlog of effects or inputs,
//! all older than another tenant's one, does not hold that one behind it. A claim of effects,
//! and a read of a shard's waiting inputs, takes every tenant's oldest rows first and fills the
//! rest oldest first, so it still comes back full while work remains.

#[allow(dead_code, unused_macros)]
#[macro_use]
mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use neuronx_supervision::store::{
    CommitOutcome, CommitRecord, Consumed, EffectWrite, Inserted, NewInput, OutboxRow,
};
use neuronx_supervision::{ActorKey, ActorKind, Epoch, ShardId, Store, TenantId};
use serde_json::json;
use uuid::Uuid;

use common::SHARDS;

conformance!(
    a_claim_includes_the_other_tenants_effect_behind_a_backlog,
    a_claim_includes_a_tenant_whose_shard_comes_last,
    a_claim_is_full_while_one_tenant_has_more,
    an_inbox_page_includes_the_other_tenants_input_behind_a_backlog,
);

const KIND: ActorKind = ActorKind("opportunity");

/// A new actor of `tenant` whose key falls on `shard`.
fn key_on(tenant: TenantId, shard: ShardId) -> ActorKey {
    loop {
        let key = ActorKey::root(tenant, KIND, Uuid::new_v4());
        if key.shard(SHARDS) == shard {
            return key;
        }
    }
}

async fn take(store: &Store, shard: ShardId) -> Epoch {
    store
        .claim_shard(shard, "a", Duration::from_secs(30), true)
        .await
        .unwrap()
        .unwrap()
        .epoch
}

fn input(key: &ActorKey) -> NewInput {
    NewInput {
        key: *key,
        shard: key.shard(SHARDS),
        dedupe_key: Uuid::new_v4().to_string(),
        remember: true,
        input: json!({"op": "emit"}),
        reply: false,
        notify: false,
    }
}

/// One transition of `key` writing `n` effects, each on a channel of its own so that none
/// waits for another (an actor's effects of one channel leave one at a time).
async fn emit(store: &Store, key: &ActorKey, epoch: Epoch, n: usize, tag: &str) {
    let inserted = store.insert_inbox(&[input(key)]).await.unwrap();
    let Some(Inserted::New { id, .. }) = inserted.first() else {
        panic!("expected a new input, got {inserted:?}");
    };
    let record = CommitRecord {
        key: *key,
        shard: key.shard(SHARDS),
        epoch,
        now_ms: chrono::Utc::now().timestamp_millis(),
        consumed: Consumed::Inbox { id: *id },
        checkpoint: None,
        effects: (0..n)
            .map(|i| EffectWrite {
                idem_key: format!("{tag}/{i}"),
                channel: format!("c{i}"),
                payload: json!({}),
            })
            .collect(),
        timers: Vec::new(),
        timeline: Vec::new(),
        sends: Vec::new(),
        outbox: None,
        lookups: Vec::new(),
        reply: None,
    };
    let outcomes = store.commit(&[record]).await.unwrap();
    assert_eq!(
        outcomes,
        vec![CommitOutcome::Committed { sent: Vec::new() }]
    );
}

fn tags(rows: &[OutboxRow]) -> BTreeSet<String> {
    rows.iter()
        .map(|r| r.idem_key.split('/').next().unwrap_or("").to_owned())
        .collect()
}

/// Tenant a's 60 effects, all older than tenant b's one, in the same shard: a claim of 10
/// takes b's (before: a's ten oldest), and the claims after it take the rest, each once.
async fn a_claim_includes_the_other_tenants_effect_behind_a_backlog(store: Store) {
    let shard = ShardId(3);
    let epoch = take(&store, shard).await;
    let (a, b) = (TenantId(Uuid::new_v4()), TenantId(Uuid::new_v4()));
    for i in 0..3 {
        emit(&store, &key_on(a, shard), epoch, 20, &format!("a{i}")).await;
    }
    emit(&store, &key_on(b, shard), epoch, 1, "b").await;
    let held = [(shard, epoch)];

    let first = store.claim_outbox(&held, 10).await.unwrap();
    assert_eq!(first.len(), 10);
    assert!(
        first.iter().any(|r| r.idem_key == "b/0"),
        "b's effect is in the first claim: {:?}",
        tags(&first)
    );
    let rest = store.claim_outbox(&held, 100).await.unwrap();
    assert_eq!(rest.len(), 51, "every effect claimed, none twice");
    let all: BTreeSet<i64> = first.iter().chain(&rest).map(|r| r.id).collect();
    assert_eq!(all.len(), 61);
    assert!(store.claim_outbox(&held, 100).await.unwrap().is_empty());
}

/// Tenant a has effects in two shards, visited first; tenant b one effect in a third, visited
/// last. A claim of 5 takes b's (before: a's first shard filled it).
async fn a_claim_includes_a_tenant_whose_shard_comes_last(store: Store) {
    let (s1, s2, s3) = (ShardId(1), ShardId(2), ShardId(5));
    let (e1, e2, e3) = (
        take(&store, s1).await,
        take(&store, s2).await,
        take(&store, s3).await,
    );
    let (a, b) = (TenantId(Uuid::new_v4()), TenantId(Uuid::new_v4()));
    emit(&store, &key_on(a, s1), e1, 20, "a1").await;
    emit(&store, &key_on(a, s2), e2, 20, "a2").await;
    emit(&store, &key_on(b, s3), e3, 1, "b").await;

    let claimed = store
        .claim_outbox(&[(s1, e1), (s2, e2), (s3, e3)], 5)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 5);
    assert!(
        claimed.iter().any(|r| r.idem_key == "b/0"),
        "b's effect is in the claim: {:?}",
        tags(&claimed)
    );
}

/// The shares leave room when a tenant has fewer effects than its share: the claim still
/// fills up with the other's, so a short claim still means the shards have nothing more.
async fn a_claim_is_full_while_one_tenant_has_more(store: Store) {
    let shard = ShardId(7);
    let epoch = take(&store, shard).await;
    let (a, b) = (TenantId(Uuid::new_v4()), TenantId(Uuid::new_v4()));
    emit(&store, &key_on(a, shard), epoch, 30, "a").await;
    emit(&store, &key_on(b, shard), epoch, 1, "b").await;
    let claimed = store.claim_outbox(&[(shard, epoch)], 20).await.unwrap();
    assert_eq!(claimed.len(), 20);
    assert_eq!(tags(&claimed), BTreeSet::from(["a".into(), "b".into()]));
    let rest = store.claim_outbox(&[(shard, epoch)], 20).await.unwrap();
    assert_eq!(rest.len(), 11, "the claim came back short: nothing more");
}

/// Tenant a's 50 inputs, all older than tenant b's one, in one shard: a page of 10 holds b's
/// (before: a's ten oldest), oldest first; a page of 100 holds all 51.
async fn an_inbox_page_includes_the_other_tenants_input_behind_a_backlog(store: Store) {
    let shard = ShardId(4);
    let (a, b) = (TenantId(Uuid::new_v4()), TenantId(Uuid::new_v4()));
    let flood: Vec<NewInput> = (0..50).map(|_| input(&key_on(a, shard))).collect();
    store.insert_inbox(&flood).await.unwrap();
    let late = key_on(b, shard);
    store.insert_inbox(&[input(&late)]).await.unwrap();

    let page = store.pending_inbox(shard, i64::MAX, 10).await.unwrap();
    assert_eq!(page.len(), 10);
    assert!(
        page.iter().any(|r| r.key.id == late.id),
        "b's input is on the first page"
    );
    let ids: Vec<i64> = page.iter().map(|r| r.id).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(ids, sorted, "oldest first");

    let all = store.pending_inbox(shard, i64::MAX, 100).await.unwrap();
    assert_eq!(all.len(), 51);
}
