//! The effect handlers wired into the engine: voice and SMS through the loopback channel (the
//! Twilio-compatible adapter replaces it when configured), and escalation notices.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use neuronx_actors::domain::call::{CallInput, CallStatus};
use neuronx_adapters::loopback::{self, LoopbackVoice, StatusReport};
use neuronx_supervision::{
    ActorKey, EffectCall, EffectFuture, EffectHandler, EffectOutcome, EffectStatus, EngineHandle,
    Handlers,
};
use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::config::LoopbackSettings;

struct Voice {
    channel: LoopbackVoice<ActorKey>,
}

impl EffectHandler for Voice {
    fn execute(&self, call: EffectCall) -> EffectFuture {
        let channel = self.channel.clone();
        Box::pin(async move {
            match call.payload.get("op").and_then(|v| v.as_str()) {
                Some("dial") => match channel.dial(call.key) {
                    Ok(sid) => EffectOutcome {
                        status: EffectStatus::Done,
                        result: json!({"call_sid": sid}),
                        followup: serde_json::to_value(CallInput::Dialed { provider_sid: sid })
                            .ok(),
                    },
                    Err(e) => EffectOutcome {
                        status: EffectStatus::Done,
                        result: json!({"error": e.to_string()}),
                        followup: serde_json::to_value(CallInput::DialFailed {
                            reason: e.to_string(),
                        })
                        .ok(),
                    },
                },
                // The loopback call ends by itself; a hangup has nothing to stop.
                Some("hangup") => EffectOutcome {
                    status: EffectStatus::Done,
                    result: json!({"hung_up": true}),
                    followup: None,
                },
                other => EffectOutcome {
                    status: EffectStatus::Done,
                    result: json!({"error": format!("unknown voice operation {other:?}")}),
                    followup: None,
                },
            }
        })
    }
}

struct Sms {
    sent: AtomicU64,
}

impl EffectHandler for Sms {
    fn execute(&self, _call: EffectCall) -> EffectFuture {
        let sid = loopback::sms_sid(self.sent.fetch_add(1, Ordering::Relaxed));
        Box::pin(async move {
            EffectOutcome {
                status: EffectStatus::Done,
                result: json!({"message_sid": sid}),
                followup: None,
            }
        })
    }
}

struct Notify;

impl EffectHandler for Notify {
    fn execute(&self, call: EffectCall) -> EffectFuture {
        Box::pin(async move {
            let queue = call
                .payload
                .get("queue")
                .and_then(|v| v.as_str())
                .unwrap_or("");
            tracing::info!(key = %call.key, queue, "escalation notice");
            EffectOutcome {
                status: EffectStatus::Done,
                result: json!({"notified": queue}),
                followup: None,
            }
        })
    }
}

/// The loopback channel's reports, on their way into the engine like webhooks would be.
pub struct Reports {
    rx: mpsc::UnboundedReceiver<StatusReport<ActorKey>>,
}

pub fn handlers(settings: &LoopbackSettings) -> (Handlers, Reports, JoinHandle<()>) {
    let (voice, rx, task) = LoopbackVoice::start(
        Duration::from_millis(settings.ring_after_ms),
        Duration::from_millis(settings.no_answer_after_ms),
    );
    let mut handlers = Handlers::new();
    handlers.insert(
        "voice".into(),
        Arc::new(Voice { channel: voice }) as Arc<dyn EffectHandler>,
    );
    handlers.insert(
        "sms".into(),
        Arc::new(Sms {
            sent: AtomicU64::new(0),
        }),
    );
    handlers.insert("notify".into(), Arc::new(Notify));
    (handlers, Reports { rx }, task)
}

/// Feeds status reports to the call actors, deduplicated by call sid and sequence number.
/// Reports are enqueued concurrently (like webhooks arriving on many connections); the task
/// owns the in-flight writes and bounds them.
pub fn forward(mut reports: Reports, engine: EngineHandle) -> JoinHandle<()> {
    const IN_FLIGHT: usize = 512;
    tokio::spawn(async move {
        let mut writes = tokio::task::JoinSet::new();
        while let Some(r) = reports.rx.recv().await {
            while writes.len() >= IN_FLIGHT {
                writes.join_next().await;
            }
            while writes.try_join_next().is_some() {}
            let Ok(status) = r.status.parse::<CallStatus>() else {
                tracing::warn!(status = r.status, "unknown call status from the channel");
                continue;
            };
            let input = CallInput::Status {
                status,
                sequence: Some(r.sequence),
                answered_by: None,
                provider_sid: Some(r.call_sid.clone()),
            };
            let Ok(input) = serde_json::to_value(input) else {
                continue;
            };
            let dedupe = format!("{}:{}", r.call_sid, r.sequence);
            let engine = engine.clone();
            writes.spawn(async move {
                if let Err(e) = engine.enqueue(r.correlation, input, Some(dedupe)).await {
                    tracing::warn!(error = %e, "call status not recorded");
                }
            });
        }
        while writes.join_next().await.is_some() {}
    })
}
