//! The effect handlers wired into the engine: voice and SMS through the loopback channel (the
//! Twilio-compatible adapter replaces it when configured), and escalation notices to people
//! (`notify`: whom to tell; `notify_sms` and `email`: one message each, in `channels/notify.rs`),
//! and the playbook's emails to leads (`lead_email`, in `channels/lead_email.rs`).

mod lead_email;
mod notify;
mod pick_rep;
mod sms;

use sms::Sms;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use neuronx_actors::domain::call::{CallInput, CallStatus};
use neuronx_actors::effects::{EffectChannel, FromPayload, MalformedEffect, VoiceEffect};
use neuronx_adapters::loopback::{LoopbackVoice, StatusReport};
use neuronx_supervision::committer::Batcher;
use neuronx_supervision::lanes::LaneOf;
use neuronx_supervision::{
    ActorKey, EffectCall, EffectFuture, EffectHandler, EffectOutcome, EffectStatus, EngineHandle,
    Handlers, Store, TenantId,
};
use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::config::LoopbackSettings;
use crate::secrets::Keyring;
use crate::send_limits::{SendKind, SendLimits};
use crate::tenant_data::{self, Precheck, PrecheckResult};
use crate::twilio_channel;
use neuronx_adapters::outbound::OutboundGuard;

/// What the voice and SMS handlers share: where tenants' accounts are, and our public URL.
#[derive(Clone)]
pub struct Context {
    pub store: Store,
    pub keyring: Arc<Keyring>,
    pub public_url: String,
    /// Where tenants' carrier hosts may lead.
    pub guard: OutboundGuard,
    /// Tenants' accounts (or their absence), so an effect does not read and unseal the
    /// credentials and build a TLS client each time. Short-lived: a changed account is used
    /// within the time to live.
    pub accounts: AccountCache,
    /// Do-not-call and opportunity-state checks, answered in groups: one round trip serves
    /// every effect dispatched meanwhile.
    prechecks: Batcher<Precheck, PrecheckResult>,
    /// Every dial and text waits here for its turn.
    limits: Arc<SendLimits>,
    /// The engine's clock (the database's time): who is in working hours is judged by it.
    pub clock: neuronx_supervision::Clock,
}

pub type AccountCache = moka::future::Cache<TenantId, Option<Arc<twilio_channel::Account>>>;

impl Context {
    /// The returned task answers the grouped prechecks; its owner aborts it at shutdown.
    pub fn new(
        store: Store,
        keyring: Arc<Keyring>,
        public_url: String,
        guard: OutboundGuard,
        limits: Arc<SendLimits>,
        clock: neuronx_supervision::Clock,
    ) -> (Self, JoinHandle<()>) {
        let lookups = store.clone();
        // Each tenant's prechecks take turns in a batch (issue #13, item 6).
        let lane: LaneOf<Precheck> = |p| Some(p.tenant);
        let (prechecks, task) = Batcher::spawn_fair(256, lane, move |items: Arc<[Precheck]>| {
            let store = lookups.clone();
            Box::pin(async move { tenant_data::precheck_batch(&store, &items).await })
        });
        let ctx = Self {
            store,
            keyring,
            public_url,
            guard,
            accounts: moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(30))
                .build(),
            prechecks,
            limits,
            clock,
        };
        (ctx, task)
    }

    async fn account(
        &self,
        tenant: TenantId,
    ) -> Result<Option<Arc<twilio_channel::Account>>, String> {
        // One load per tenant however many effects miss at once.
        self.accounts
            .try_get_with(tenant, async {
                twilio_channel::account(&self.store, &self.keyring, &self.guard, tenant)
                    .await
                    .map(|found| found.map(Arc::new))
            })
            .await
            .map_err(|e| e.to_string())
    }
}

impl Context {
    fn tenant(call: &EffectCall) -> TenantId {
        call.key.tenant
    }

    /// The do-not-call list for `phone` and, when given, the state of `opportunity`.
    async fn precheck(
        &self,
        call: &EffectCall,
        phone: &str,
        opportunity: Option<uuid::Uuid>,
    ) -> Result<PrecheckResult, String> {
        self.prechecks
            .submit(Precheck {
                tenant: Self::tenant(call),
                phone: phone.to_owned(),
                opportunity,
            })
            .await
            .map_err(|e| e.to_string())
    }
}

/// Why the call's opportunity forbids dialling now (paused or closed), if it does.
fn parent_blocks_dial(check: &PrecheckResult) -> Option<&'static str> {
    match check.opportunity {
        Some((_, true)) => Some("the opportunity is paused"),
        Some((Some(stage), _)) if stage.is_terminal() => Some("the opportunity is closed"),
        _ => None,
    }
}

/// The effect cannot be judged now (the database or the keyring failed) and nothing was sent:
/// it goes back to the outbox to be tried again.
fn undecided(reason: String) -> EffectOutcome {
    tracing::warn!(%reason, "effect put back: cannot decide now");
    EffectOutcome {
        status: EffectStatus::RetryLater,
        result: json!({"undecided": reason}),
        followup: None,
    }
}

struct Voice {
    channel: LoopbackVoice<ActorKey>,
    ctx: Context,
}

/// A payload that is not the effect its channel expects is never guessed at: recorded as
/// failed with the reason, and nothing is sent.
fn malformed(e: MalformedEffect) -> EffectOutcome {
    tracing::error!(error = %e, "effect not run: malformed payload");
    EffectOutcome {
        status: EffectStatus::Done,
        result: json!({"error": e.to_string()}),
        followup: None,
    }
}

/// An operation that reached a handler that does not run it (a bug, not an outage): recorded
/// and never retried.
fn malformed_op(op: &str) -> EffectOutcome {
    EffectOutcome {
        status: EffectStatus::Done,
        result: json!({"error": format!("{op} is not run by this handler")}),
        followup: None,
    }
}

fn followup(input: &CallInput) -> Option<serde_json::Value> {
    serde_json::to_value(input).ok()
}

impl EffectHandler for Voice {
    fn execute(&self, call: EffectCall) -> EffectFuture {
        let channel = self.channel.clone();
        let ctx = self.ctx.clone();
        Box::pin(async move {
            let op = match VoiceEffect::from_payload(&call.payload) {
                Ok(op) => op,
                Err(e) => return malformed(e),
            };
            // Not a carrier request: the rep a call rings first, before anything is dialled.
            if let VoiceEffect::PickRep {
                call_id,
                opportunity_id,
            } = op
            {
                return pick_rep::pick(&ctx, &call, call_id, opportunity_id).await;
            }
            if let VoiceEffect::Dial {
                to, opportunity_id, ..
            } = &op
            {
                let check = match ctx.precheck(&call, to, Some(*opportunity_id)).await {
                    Ok(check) => check,
                    Err(e) => return undecided(e),
                };
                // A hold or cancel covers effects queued when the opportunity paused or closed;
                // a dial its call actor queues afterwards is caught here.
                if let Some(reason) = parent_blocks_dial(&check) {
                    return EffectOutcome {
                        status: EffectStatus::Done,
                        result: json!({"blocked": reason}),
                        followup: followup(&CallInput::DialFailed {
                            reason: format!("blocked: {reason}"),
                        }),
                    };
                }
                if check.on_dnc {
                    return EffectOutcome {
                        status: EffectStatus::Done,
                        result: json!({"blocked": "do-not-call"}),
                        followup: followup(&CallInput::DialBlocked {
                            reason: "the number is on the do-not-call list".into(),
                        }),
                    };
                }
            }
            let account = match ctx.account(Context::tenant(&call)).await {
                Ok(account) => account,
                Err(e) => return undecided(e),
            };
            // The lead sees a number of its opportunity's pool (ADR 0043), chosen before the
            // dial waits for its turn and recorded in its result.
            let caller = match (&op, account.as_deref()) {
                (
                    VoiceEffect::Dial {
                        to, opportunity_id, ..
                    },
                    Some(account),
                ) => {
                    match twilio_channel::caller_id(&ctx.store, account, *opportunity_id, to).await
                    {
                        Ok(caller) => Some(caller),
                        Err(e) => return undecided(e),
                    }
                }
                _ => None,
            };
            if matches!(op, VoiceEffect::Dial { .. }) {
                let sid = account.as_ref().map(|a| a.client.account_sid());
                if let Err(later) = ctx
                    .limits
                    .admit(
                        SendKind::Dial,
                        Context::tenant(&call),
                        sid,
                        &call.lease,
                        &call.standing,
                    )
                    .await
                {
                    return later;
                }
            }
            if let (
                Some(account),
                VoiceEffect::Fetch {
                    provider_sid,
                    call_id,
                },
            ) = (&account, &op)
            {
                let tenant = Context::tenant(&call);
                let now = ctx.clock.now();
                let fetched =
                    twilio_channel::fetch(&ctx.store, account, tenant, *call_id, provider_sid, now);
                return fetched.await.unwrap_or_else(undecided);
            }
            if let Some(account) = account {
                return twilio_channel::voice(
                    &account,
                    &ctx.public_url,
                    &call,
                    &op,
                    caller.as_ref(),
                )
                .await;
            }
            match op {
                VoiceEffect::Dial { .. } => match channel.dial(call.key) {
                    Ok(sid) => EffectOutcome {
                        status: EffectStatus::Done,
                        result: json!({"call_sid": sid}),
                        followup: followup(&CallInput::Dialed { provider_sid: sid }),
                    },
                    Err(e) => EffectOutcome {
                        status: EffectStatus::Done,
                        result: json!({"error": e.to_string()}),
                        followup: followup(&CallInput::DialFailed {
                            reason: e.to_string(),
                        }),
                    },
                },
                // The loopback call ends by itself; a hangup has nothing to stop.
                VoiceEffect::Hangup { .. } => EffectOutcome {
                    status: EffectStatus::Done,
                    result: json!({"hung_up": true}),
                    followup: None,
                },
                // Answered above, before any channel.
                VoiceEffect::PickRep { .. } => malformed_op("pick_rep"),
                // The loopback channel reports every status itself and keeps no call records
                // to look up; the call's watchdog gives up on its next firing.
                VoiceEffect::Fetch { .. } => EffectOutcome {
                    status: EffectStatus::Done,
                    result: json!({"error": "the loopback channel keeps no calls to fetch"}),
                    followup: None,
                },
            }
        })
    }

    /// A dial left in flight may have placed the call: the call waits for the provider's
    /// callbacks and its own timers, exactly as after a dial request that got no answer.
    fn orphaned(&self, call: &EffectCall) -> Option<serde_json::Value> {
        match VoiceEffect::from_payload(&call.payload) {
            Ok(VoiceEffect::Dial { .. }) => followup(&CallInput::DialUnknown {
                reason: "the instance that placed it stopped before recording the result".into(),
            }),
            // An offer left in flight: the call dials the lead first rather than wait (a rep
            // it recorded is freed when the call ends).
            Ok(VoiceEffect::PickRep { .. }) => followup(&CallInput::RepPicked { agent: None }),
            Ok(VoiceEffect::Hangup { .. } | VoiceEffect::Fetch { .. }) | Err(_) => None,
        }
    }
}

/// The loopback channel's reports, on their way into the engine like webhooks would be.
pub struct Reports {
    rx: mpsc::UnboundedReceiver<StatusReport<ActorKey>>,
}

/// Voice and SMS go through the tenant's Twilio-compatible account when it has one, else
/// through the loopback channel.
pub fn handlers(settings: &LoopbackSettings, ctx: Context) -> (Handlers, Reports, JoinHandle<()>) {
    let (voice, rx, task) = LoopbackVoice::start(
        Duration::from_millis(settings.ring_after_ms),
        Duration::from_millis(settings.no_answer_after_ms),
    );
    let mut handlers = Handlers::new();
    handlers.insert(
        EffectChannel::Voice.as_str().into(),
        Arc::new(Voice {
            channel: voice,
            ctx: ctx.clone(),
        }) as Arc<dyn EffectHandler>,
    );
    handlers.insert(
        EffectChannel::Sms.as_str().into(),
        Arc::new(Sms {
            sent: AtomicU64::new(0),
            ctx: ctx.clone(),
        }),
    );
    handlers.insert(
        EffectChannel::Notify.as_str().into(),
        Arc::new(notify::Notify { ctx: ctx.clone() }),
    );
    handlers.insert(
        EffectChannel::NotifySms.as_str().into(),
        Arc::new(notify::NoticeSmsHandler {
            sent: AtomicU64::new(0),
            ctx: ctx.clone(),
        }),
    );
    handlers.insert(
        EffectChannel::Email.as_str().into(),
        Arc::new(notify::NoticeEmailHandler { ctx: ctx.clone() }),
    );
    handlers.insert(
        EffectChannel::LeadEmail.as_str().into(),
        Arc::new(lead_email::LeadEmailHandler { ctx }),
    );
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
