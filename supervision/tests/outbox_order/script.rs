//! An entity whose every input writes the texts it names, and a carrier stand-in that runs each
//! text as its payload scripts it (slow, "try later" once, waiting for another text) and reports
//! the order in which texts arrive.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use neuronx_supervision::engine::EngineConfig;
use neuronx_supervision::{
    ActorKey, ActorKind, Applied, Changes, EffectCall, EffectFuture, EffectHandler, EffectOutcome,
    EffectRequest, EffectStatus, Engine, EngineHandle, Entity, Handlers, Kinds, Rejected, Store,
    SubmitOutcome, Summary, TenantId,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::watch;
use uuid::Uuid;

use crate::common::SHARDS;

pub const KIND: ActorKind = ActorKind("texter");
const CHANNEL: &str = "sms";

/// How the carrier treats one text.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Text {
    label: String,
    /// The carrier's answer takes this long (a slow provider, not a wait of the test's).
    slow_ms: u64,
    /// The first try answers "not sent, try later".
    retry_first: bool,
    /// The carrier holds this text until the text so labelled has arrived (at most 10 s).
    waits_for: Option<String>,
}

impl Text {
    pub fn now(label: &str) -> Self {
        Self::slow(label, 0)
    }

    pub fn slow(label: &str, ms: u64) -> Self {
        Self {
            label: label.to_owned(),
            slow_ms: ms,
            retry_first: false,
            waits_for: None,
        }
    }

    pub fn retry_first(mut self) -> Self {
        self.retry_first = true;
        self
    }

    pub fn waits_for(mut self, label: &str) -> Self {
        self.waits_for = Some(label.to_owned());
        self
    }
}

#[derive(Debug, Deserialize)]
pub struct Emit {
    texts: Vec<Text>,
}

struct Texter;

impl Entity for Texter {
    /// Transitions so far: the checkpoint moves with every input.
    type State = u64;
    type Input = Emit;

    fn kind(&self) -> ActorKind {
        KIND
    }

    fn apply(
        &self,
        _key: &ActorKey,
        state: Option<&u64>,
        input: Emit,
        _now: DateTime<Utc>,
    ) -> Result<Applied<u64>, Rejected> {
        let mut changes = Changes::default();
        for text in input.texts {
            changes.effects.push(EffectRequest {
                channel: CHANNEL.into(),
                payload: serde_json::to_value(text).unwrap_or(Value::Null),
            });
        }
        Ok(Applied {
            state: Some(state.copied().unwrap_or(0) + 1),
            changes,
        })
    }

    fn summary(&self, _state: &u64) -> Summary {
        Summary {
            status: "texting".into(),
            paused: false,
        }
    }
}

/// The labels of the texts that arrived, in arrival order.
pub type Arrivals = watch::Receiver<Vec<String>>;

struct Carrier(Arc<watch::Sender<Vec<String>>>);

impl EffectHandler for Carrier {
    fn execute(&self, call: EffectCall) -> EffectFuture {
        let arrived = self.0.clone();
        Box::pin(async move {
            let text: Text = serde_json::from_value(call.payload).expect("a scripted text");
            if text.slow_ms > 0 {
                tokio::time::sleep(Duration::from_millis(text.slow_ms)).await;
            }
            if text.retry_first && call.attempt == 1 {
                return EffectOutcome {
                    status: EffectStatus::RetryLater,
                    result: json!({"not_sent": "try later"}),
                    followup: None,
                };
            }
            let mut label = text.label;
            if let Some(other) = text.waits_for {
                let mut seen = arrived.subscribe();
                let waited = tokio::time::timeout(
                    Duration::from_secs(10),
                    seen.wait_for(|v| v.contains(&other)),
                )
                .await;
                if matches!(waited, Ok(Ok(_))) {
                    label = format!("{label} after {other}");
                }
            }
            arrived.send_modify(|v| v.push(label));
            EffectOutcome {
                status: EffectStatus::Done,
                result: Value::Null,
                followup: None,
            }
        })
    }
}

pub fn key() -> ActorKey {
    ActorKey::root(TenantId(Uuid::new_v4()), KIND, Uuid::new_v4())
}

/// An engine hosting `Texter` on `store`, the only one on its database, once it holds every
/// shard; with the carrier's arrivals.
pub async fn start(store: Store) -> (Engine, Arrivals) {
    let config = EngineConfig {
        instance_id: format!("order-{}", Uuid::new_v4().simple()),
        shard_count: SHARDS,
        force_claim: true,
        ..EngineConfig::default()
    };
    let mut kinds = Kinds::default();
    kinds.register(Texter);
    let (tx, rx) = watch::channel(Vec::new());
    let mut handlers = Handlers::new();
    handlers.insert(
        CHANNEL.into(),
        Arc::new(Carrier(Arc::new(tx))) as Arc<dyn EffectHandler>,
    );
    let engine = Engine::start(store, config, kinds, handlers)
        .await
        .expect("the engine starts");
    let handle = engine.handle();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while handle.owned_shards().await.len() < SHARDS as usize {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the engine holds every shard within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (engine, rx)
}

/// One transition of `key` writing `texts`, committed when this returns.
pub async fn emit(h: &EngineHandle, key: ActorKey, texts: Vec<Text>) {
    let out = h
        .submit(key, json!({ "texts": texts }), None)
        .await
        .expect("submit");
    assert!(matches!(out, SubmitOutcome::Applied(_)), "{out:?}");
}

/// The first `n` arrivals, failing the test if they take more than 20 s.
pub async fn arrivals_within(arrivals: &Arrivals, n: usize) -> Vec<String> {
    let mut rx = arrivals.clone();
    let got = tokio::time::timeout(Duration::from_secs(20), rx.wait_for(|v| v.len() >= n))
        .await
        .unwrap_or_else(|_| {
            panic!(
                "{n} texts did not arrive within 20 s: {:?}",
                arrivals.borrow()
            )
        })
        .expect("the carrier lives as long as the engine")
        .clone();
    got
}
