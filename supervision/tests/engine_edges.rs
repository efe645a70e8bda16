//! The engine's smaller guarantees (issue #13, item 10), driven through the real engine with a
//! probe entity: effects of transitions without a checkpoint keep keys of their own.

#[allow(dead_code, unused_macros)]
#[macro_use]
mod common;
#[path = "engine_edges/probe.rs"]
mod probe;

use std::collections::HashSet;
use std::time::Duration;

use neuronx_supervision::{ActorKey, Store, SubmitOutcome, TenantId};
use serde_json::json;
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
