//! A small entity and effect handler for driving the real engine in tests: it emits effects
//! without ever having state, and arms a timer whose firing it counts.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use neuronx_supervision::engine::EngineConfig;
use neuronx_supervision::{
    ActorKey, ActorKind, Applied, Changes, EffectCall, EffectFuture, EffectHandler, EffectOutcome,
    EffectRequest, EffectStatus, Engine, Entity, Handlers, Kinds, Rejected, Store, Summary,
    TimerChange,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::mpsc;

pub const KIND: ActorKind = ActorKind("probe");

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Seen {
    pub arms: u32,
    pub fired: u32,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// One effect, and no state (an actor without state stays without): no checkpoint.
    Emit,
    /// Counts the arm and sets timer `t` to fire `in_ms` from now.
    Arm {
        in_ms: i64,
    },
    Fire,
}

pub struct Probe;

impl Entity for Probe {
    type State = Seen;
    type Input = Op;

    fn kind(&self) -> ActorKind {
        KIND
    }

    fn apply(
        &self,
        _key: &ActorKey,
        state: Option<&Seen>,
        input: Op,
        now: DateTime<Utc>,
    ) -> Result<Applied<Seen>, Rejected> {
        let mut changes = Changes::default();
        let mut next = state.cloned().unwrap_or_default();
        match input {
            Op::Emit => {
                changes.effects.push(EffectRequest {
                    channel: "probe".into(),
                    payload: json!({}),
                });
                return Ok(Applied {
                    state: None,
                    changes,
                });
            }
            Op::Arm { in_ms } => {
                next.arms += 1;
                changes.timers.push(TimerChange::Set {
                    name: "t".into(),
                    due_at: now + chrono::Duration::milliseconds(in_ms),
                    input: json!({ "op": "fire" }),
                });
            }
            Op::Fire => next.fired += 1,
        }
        Ok(Applied {
            state: Some(next),
            changes,
        })
    }

    fn summary(&self, _state: &Seen) -> Summary {
        Summary {
            status: "probing".into(),
            paused: false,
        }
    }
}

/// Reports the idempotency key of every effect it runs.
struct Recorder(mpsc::UnboundedSender<String>);

impl EffectHandler for Recorder {
    fn execute(&self, call: EffectCall) -> EffectFuture {
        let _ = self.0.send(call.idem_key);
        Box::pin(async {
            EffectOutcome {
                status: EffectStatus::Done,
                result: Value::Null,
                followup: None,
            }
        })
    }
}

/// An engine hosting `Probe` on `store` (migrated with `shards`), the only one on its
/// database; returns it with the keys of the effects it runs, once it holds every shard.
pub async fn start(
    store: Store,
    shards: u32,
    tune: impl FnOnce(&mut EngineConfig),
) -> (Engine, mpsc::UnboundedReceiver<String>) {
    let mut config = EngineConfig {
        instance_id: format!("probe-{}", uuid::Uuid::new_v4().simple()),
        shard_count: shards,
        force_claim: true,
        ..EngineConfig::default()
    };
    tune(&mut config);
    let mut kinds = Kinds::default();
    kinds.register(Probe);
    let (tx, rx) = mpsc::unbounded_channel();
    let mut handlers = Handlers::new();
    handlers.insert(
        "probe".into(),
        Arc::new(Recorder(tx)) as Arc<dyn EffectHandler>,
    );
    let engine = Engine::start(store, config, kinds, handlers)
        .await
        .expect("the engine starts");
    let handle = engine.handle();
    eventually(Duration::from_secs(10), "every shard held", || async {
        (handle.owned_shards().await.len() == shards as usize).then_some(())
    })
    .await;
    (engine, rx)
}

/// Polls `check` until it answers `Some`, failing the test with `what` after `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
