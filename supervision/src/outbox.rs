//! The outbox dispatcher: claims committed effects of owned shards (fenced by epoch), runs
//! them through their channel's handler, and turns each result into an input for its actor.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use serde_json::Value;
use tokio::task::JoinSet;

use crate::committer::Batcher;
use crate::key::{ActorKey, Epoch, ShardId};
use crate::kinds::{resolve_key, Kinds};
use crate::protocol::{DispatcherMsg, ShardHostMsg, Work};
use crate::runtime::{ActWindow, Runtime};
use crate::store::{Completion, EffectDone, Inserted, NewInput, OutboxRow, OutboxStatus};

mod orphans;

/// One effect to run.
#[derive(Debug, Clone)]
pub struct EffectCall {
    pub key: ActorKey,
    /// Stable across retries: providers that dedupe get it as their idempotency key.
    pub idem_key: String,
    pub payload: Value,
    pub attempt: i32,
    /// Whether this instance may still act for the effect's shard: a handler that waited (for
    /// a send limit, say) asks again right before sending.
    pub lease: LeaseCheck,
    /// Whether the effect still stands (no pause or opt-out since it was claimed): a handler
    /// whose send waited (a retry after a 429) asks again before sending.
    pub standing: Standing,
}

/// Asks the store whether a claimed effect still stands.
#[derive(Debug, Clone)]
pub struct Standing {
    store: crate::store::Store,
    id: i64,
    claim: i32,
}

impl Standing {
    pub(crate) fn new(store: crate::store::Store, id: i64, claim: i32) -> Self {
        Self { store, id, claim }
    }

    /// False when a pause or an opt-out committed since the claim (the row's `hold`), or the
    /// row is no longer this claim's; false too when the database cannot say: the effect then
    /// goes back to the outbox unsent, where a hold, if any, applies.
    pub async fn holds(&self) -> bool {
        match self.store.effect_stands(self.id, self.claim).await {
            Ok(stands) => stands,
            Err(e) => {
                tracing::warn!(error = %e, outbox_id = self.id, "could not ask whether an effect still stands");
                false
            }
        }
    }
}

/// A view of the instance's act window (see `Runtime::may_act`).
#[derive(Debug, Clone)]
pub struct LeaseCheck(tokio::sync::watch::Receiver<ActWindow>);

impl LeaseCheck {
    pub(crate) fn new(rx: tokio::sync::watch::Receiver<ActWindow>) -> Self {
        Self(rx)
    }

    pub fn valid(&self) -> bool {
        self.0.borrow().open()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum EffectStatus {
    Done,
    /// The request may have reached the provider but no answer came: never sent again blindly.
    Unknown,
    /// Nothing was sent (a precondition could not be checked): back to the outbox, to be
    /// claimed again.
    RetryLater,
}

#[derive(Debug, Clone)]
pub struct EffectOutcome {
    pub status: EffectStatus,
    pub result: Value,
    /// An input for the actor that asked for the effect, carrying the result.
    pub followup: Option<Value>,
}

pub type EffectFuture = Pin<Box<dyn Future<Output = EffectOutcome> + Send>>;

/// Runs the effects of one channel. Implemented by the loopback channel and, next, by the
/// Twilio-compatible adapter.
pub trait EffectHandler: Send + Sync + 'static {
    fn execute(&self, call: EffectCall) -> EffectFuture;

    /// The effect was claimed by an instance that stopped before recording its result, so it
    /// may or may not have reached the provider; it is recorded `unknown` and never run again.
    /// The input, if any, that tells its actor so.
    fn orphaned(&self, _call: &EffectCall) -> Option<Value> {
        None
    }
}

pub type Handlers = HashMap<String, Arc<dyn EffectHandler>>;

/// The group writer of effect completions (`Store::complete_outbox`).
pub type Completions = Batcher<EffectDone, Completion>;

pub struct Args;

pub struct State {
    held: Vec<(ShardId, Epoch)>,
    /// Where the next claim starts in `held`: a claim takes shards in order until it has
    /// enough, so the start moves on each time and no shard waits behind busier ones.
    claim_start: usize,
    /// Shards that may have pending effects: a claim visits these only, because visiting
    /// all 256 shards cost about 1,500 index blocks per claim even when nothing was pending.
    dirty: HashSet<ShardId>,
    /// The next claim visits every held shard.
    sweep: bool,
    running: JoinSet<()>,
    claim_scheduled: bool,
}

/// Tries of an effect's completion write, and the pause between them: about half a minute.
const COMPLETION_ATTEMPTS: u32 = 30;
const COMPLETION_PAUSE: std::time::Duration = std::time::Duration::from_secs(1);

/// How long kicks gather before one claim serves them all.
const KICK_WINDOW: std::time::Duration = std::time::Duration::from_millis(2);

pub struct Dispatcher {
    rt: Arc<Runtime>,
    kinds: Kinds,
    handlers: Arc<Handlers>,
    completions: Completions,
}

impl Dispatcher {
    pub fn new(
        rt: Arc<Runtime>,
        kinds: Kinds,
        handlers: Arc<Handlers>,
        completions: Completions,
    ) -> Self {
        Self {
            rt,
            kinds,
            handlers,
            completions,
        }
    }
}

impl Actor for Dispatcher {
    type Msg = DispatcherMsg;
    type State = State;
    type Arguments = Args;

    async fn pre_start(
        &self,
        myself: ActorRef<DispatcherMsg>,
        _args: Args,
    ) -> Result<State, ActorProcessingErr> {
        // The safety net for effects committed by a previous owner or missed wake-ups.
        myself.send_interval(self.rt.config.poll_interval, || DispatcherMsg::Sweep);
        // Not only when a shard is gained: whatever left an effect claimed, it is not left so.
        myself.send_interval(self.rt.config.orphan_after, || DispatcherMsg::OrphanSweep);
        Ok(State {
            held: Vec::new(),
            claim_start: 0,
            dirty: HashSet::new(),
            sweep: true,
            running: JoinSet::new(),
            claim_scheduled: false,
        })
    }

    /// Effects already running finish (bounded), so a clean stop leaves none half-recorded.
    async fn post_stop(
        &self,
        _myself: ActorRef<DispatcherMsg>,
        state: &mut State,
    ) -> Result<(), ActorProcessingErr> {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while !state.running.is_empty() {
            match tokio::time::timeout_at(deadline, state.running.join_next()).await {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => {
                    tracing::warn!(left = state.running.len(), "effects still running at stop");
                    break;
                }
            }
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<DispatcherMsg>,
        msg: DispatcherMsg,
        state: &mut State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            DispatcherMsg::Owned(held) => {
                self.watch_for_orphans(&myself, &state.held, &held);
                state.held = held;
                state.sweep = true;
                self.claim(&myself, state).await;
            }
            DispatcherMsg::Kick(shard) => {
                state.dirty.insert(shard);
                Self::schedule(&myself, state);
            }
            DispatcherMsg::Sweep => {
                state.sweep = true;
                Self::schedule(&myself, state);
            }
            DispatcherMsg::Claim => {
                state.claim_scheduled = false;
                self.claim(&myself, state).await;
            }
            DispatcherMsg::Orphans(shards) => self.reclaim_orphans(state, &shards),
            DispatcherMsg::OrphanSweep => {
                let held: Vec<ShardId> = state.held.iter().map(|(s, _)| *s).collect();
                self.reclaim_orphans(state, &held);
            }
            DispatcherMsg::Finished { again } => {
                while state.running.try_join_next().is_some() {}
                state.dirty.extend(again);
                // Room again: claim what waited for it, sharing the claim with other kicks.
                if !state.dirty.is_empty() || state.sweep {
                    Self::schedule(&myself, state);
                }
            }
        }
        Ok(())
    }
}

impl Dispatcher {
    fn schedule(myself: &ActorRef<DispatcherMsg>, state: &mut State) {
        if !state.claim_scheduled {
            state.claim_scheduled = true;
            myself.send_after(KICK_WINDOW, || DispatcherMsg::Claim);
        }
    }

    async fn claim(&self, myself: &ActorRef<DispatcherMsg>, state: &mut State) {
        while state.running.try_join_next().is_some() {}
        let room = self
            .rt
            .config
            .effect_concurrency
            .saturating_sub(state.running.len()) as i64;
        if room == 0 || state.held.is_empty() || !self.rt.may_act() {
            return;
        }
        if self.rt.overloaded() {
            // Each effect brings its actor a follow-up input; while the hosts are behind, the
            // effects wait in the outbox. The next sweep (every poll interval) tries again.
            self.rt.metrics.claims_held_back.inc();
            return;
        }
        let limit = room.min(self.rt.config.outbox_batch);
        state.claim_start = (state.claim_start + 1) % state.held.len();
        let mut order = state.held.clone();
        order.rotate_left(state.claim_start);
        let sweep = std::mem::take(&mut state.sweep);
        if !sweep {
            order.retain(|(s, _)| state.dirty.contains(s));
        }
        if order.is_empty() {
            return;
        }
        let claim = self.rt.metrics.outbox_claim.start_timer();
        let claimed = self.rt.store.claim_outbox(&order, limit).await;
        claim.observe_duration();
        let rows = match claimed {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "outbox claim failed");
                state.sweep |= sweep;
                return;
            }
        };
        let full = rows.len() as i64 == limit;
        // A claim that came back short emptied the shards it visited; a full one may have
        // left rows in any of them, so they stay dirty (and a sweep stays owed).
        if full {
            state.sweep |= sweep;
        } else {
            for (s, _) in &order {
                state.dirty.remove(s);
            }
        }
        for row in rows {
            self.spawn_effect(myself, state, row);
        }
        if full {
            let _ = myself.cast(DispatcherMsg::Claim);
        }
    }

    fn spawn_effect(&self, myself: &ActorRef<DispatcherMsg>, state: &mut State, row: OutboxRow) {
        let Some(key) = resolve_key(&self.kinds, &row.key) else {
            tracing::warn!(kind = %row.key.kind, "effect of an unknown kind");
            return;
        };
        let handler = self.handlers.get(&row.channel).cloned();
        let completions = self.completions.clone();
        let me = myself.clone();
        let metrics = self.rt.metrics.clone();
        let rt = self.rt.clone();
        state.running.spawn(async move {
            let started = Instant::now();
            let outcome = match handler {
                // Claimed before a freeze or a lost connection: the lease may be another's now.
                // Hand it back unsent; whoever owns the shard sends it.
                _ if !rt.may_act() => EffectOutcome {
                    status: EffectStatus::RetryLater,
                    result: serde_json::json!({"error": "lease not renewed in time; not sent"}),
                    followup: None,
                },
                Some(h) => {
                    h.execute(EffectCall {
                        key,
                        idem_key: row.idem_key.clone(),
                        payload: row.payload.clone(),
                        attempt: row.attempts,
                        lease: LeaseCheck::new(rt.lease_watch()),
                        standing: Standing::new(rt.store.clone(), row.id, row.attempts),
                    })
                    .await
                }
                None => EffectOutcome {
                    status: EffectStatus::Done,
                    result: serde_json::json!({"error": format!("no handler for channel {}", row.channel)}),
                    followup: None,
                },
            };
            metrics
                .effect_latency
                .with_label_values(&[row.channel.as_str()])
                .observe(started.elapsed().as_secs_f64());
            record(&rt, &completions, key, &row, outcome).await;
            // The shard is claimed again whatever the outcome: the next effect of this actor
            // and channel waited for this one to finish (the claim starts none while an earlier
            // one is pending or in flight), and one handed back to pending is due again.
            let _ = me.cast(DispatcherMsg::Finished {
                again: Some(row.shard),
            });
        });
    }
}

/// Records an effect's outcome on its row and hands the follow-up input, if any, to its actor
/// (made durable with the completion, deduplicated per effect).
///
/// The row changes only while it is still `inflight` under this claim: a completion arriving
/// after the shard's next holder recorded the effect `unknown` (this instance froze past its
/// lease) is refused, writes nothing and is counted, so a dial reported "not dialling again"
/// is never put back to pending and dialled late.
async fn record(
    rt: &Runtime,
    completions: &Completions,
    key: ActorKey,
    row: &OutboxRow,
    outcome: EffectOutcome,
) {
    let status = match outcome.status {
        EffectStatus::Done => OutboxStatus::Done,
        EffectStatus::Unknown => OutboxStatus::Unknown,
        EffectStatus::RetryLater => OutboxStatus::Pending,
    };
    rt.metrics
        .effects
        .with_label_values(&[row.channel.as_str(), status.as_str()])
        .inc();
    let shard = row.shard;
    let followup_input = outcome.followup.clone();
    let done = EffectDone {
        outbox_id: row.id,
        claim: row.attempts,
        status,
        result: outcome.result,
        now_ms: rt.config.clock.now_ms(),
        followup: outcome.followup.map(|input| NewInput {
            key,
            shard,
            dedupe_key: format!("{}/result", row.idem_key),
            remember: true,
            input,
            reply: false,
            // Released while the effect ran (rebalancing): wake the new owner.
            notify: !rt.owns(shard),
        }),
    };
    // A completion the database could not take (a lost connection, a restart) is tried again
    // while this instance may still act for the shard; past that, the row stays claimed and
    // the shard's next holder records it unknown (orphans.rs). A late try is harmless: the
    // write is a compare-and-set on the claim.
    let written = completions
        .submit_retrying(done, COMPLETION_ATTEMPTS, COMPLETION_PAUSE, || rt.may_act())
        .await;
    match written {
        Ok(Completion::Recorded(Some(Inserted::New { id, key, shard }))) => {
            if let Some(input) = followup_input {
                let deliver = ShardHostMsg::Deliver(key, Work::from_inbox(id, input), None);
                rt.route(shard, deliver);
            }
        }
        Ok(Completion::Recorded(_)) => {}
        Ok(Completion::Refused) => {
            rt.metrics
                .completions_refused
                .with_label_values(&[row.channel.as_str()])
                .inc();
            tracing::warn!(channel = %row.channel, idem_key = %row.idem_key, claim = row.attempts,
                outcome = status.as_str(),
                "effect result refused: the row is no longer in flight under this claim");
        }
        Err(e) => tracing::warn!(error = %e, "effect completion not recorded"),
    }
}
