//! The host actor of one durable entity: it loads the checkpoint, applies inputs with the
//! entity's pure transition and commits each result in one fenced transaction.

use std::marker::PhantomData;
use std::sync::Arc;

use chrono::Utc;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde_json::Value;
use tracing::Instrument;

use crate::committer::BatchError;
use crate::entity::{Applied, Entity, OutboxHold, Rejected, TimerChange};
use crate::key::{ActorKey, Epoch, ShardId};
use crate::runtime::Runtime;
use crate::shard_host::ShardHostMsg;
use crate::store::{
    CheckpointWrite, CommitOutcome, CommitRecord, Consumed, EffectWrite, Inserted, NewInput,
    TimerWrite,
};

pub type EntityRef = ActorRef<Msg>;

/// One input to apply, as stored (inbox row or timer).
#[derive(Debug, Clone)]
pub struct Work {
    pub consumed: Consumed,
    pub input: Value,
    /// A caller on another instance waits: store the answer with the transition.
    pub reply: bool,
}

impl Work {
    pub fn from_inbox(id: i64, input: Value) -> Self {
        Self {
            consumed: Consumed::Inbox { id },
            input,
            reply: false,
        }
    }

    pub fn from_row(row: crate::store::InboxRow) -> Self {
        Self {
            consumed: Consumed::Inbox { id: row.id },
            input: row.input,
            reply: row.reply,
        }
    }
}

/// An answer as stored for a caller waiting on another instance: `{"applied": value}` or
/// `{"rejected": {"code", "message"}}`.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum StoredAnswer {
    Applied(Value),
    Rejected { code: String, message: String },
}

pub(crate) fn encode_answer(answer: &Answer) -> Option<String> {
    let stored = match answer {
        Ok(value) => StoredAnswer::Applied(value.clone()),
        Err(DeliveryError::Rejected(r)) => StoredAnswer::Rejected {
            code: r.code.clone(),
            message: r.message.clone(),
        },
        Err(_) => return None,
    };
    serde_json::to_string(&stored).ok()
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DeliveryError {
    #[error("rejected: {0}")]
    Rejected(Rejected),
    #[error("the input was already applied")]
    Duplicate,
    #[error("this instance no longer owns the actor's shard")]
    Fenced,
    #[error("the actor failed: {0}")]
    Failed(String),
}

pub type Answer = Result<Value, DeliveryError>;
pub type Reply = RpcReplyPort<Answer>;

pub enum Msg {
    /// Apply one input; the host sends the next only after `Done`, and answers the callers
    /// waiting for it (reply ports stay with the host, so a restart never loses one silently).
    Apply(Work),
}

/// Why an actor failed, so its host can tell a poisoned input from an unavailable database.
#[derive(Debug, thiserror::Error)]
pub enum ActorFault {
    /// The input cannot be applied (undecodable, or the checkpoint is): it counts a strike.
    #[error("input cannot be applied: {0}")]
    Poison(String),
    /// The store is unavailable or moved under us: restart from the checkpoint and retry.
    #[error("infrastructure: {0}")]
    Infra(String),
}

pub struct Args {
    pub key: ActorKey,
    pub shard: ShardId,
    pub epoch: Epoch,
    pub host: ActorRef<ShardHostMsg>,
}

pub struct State<S> {
    key: ActorKey,
    shard: ShardId,
    epoch: Epoch,
    host: ActorRef<ShardHostMsg>,
    /// `None` until the first input: activation stays cheap and the load happens off the host.
    loaded: Option<(i64, Option<S>)>,
    span: tracing::Span,
}

pub struct EntityActor<E: Entity> {
    entity: Arc<E>,
    rt: Arc<Runtime>,
    _marker: PhantomData<E>,
}

impl<E: Entity> EntityActor<E> {
    pub fn new(entity: Arc<E>, rt: Arc<Runtime>) -> Self {
        Self {
            entity,
            rt,
            _marker: PhantomData,
        }
    }
}

/// What the host needs to know after a commit.
pub struct Committed {
    pub timers: Vec<TimerChange>,
    /// Inputs sent to other actors, with their inbox ids.
    pub sent: Vec<(Inserted, Value)>,
    /// Effects committed, or held ones released: the dispatcher has work in this shard.
    pub outbox_work: bool,
}

impl<E: Entity> Actor for EntityActor<E> {
    type Msg = Msg;
    type State = State<E::State>;
    type Arguments = Args;

    async fn pre_start(
        &self,
        _myself: ActorRef<Msg>,
        args: Args,
    ) -> Result<Self::State, ActorProcessingErr> {
        let span = tracing::info_span!("actor", key = %args.key, shard = %args.shard);
        Ok(State {
            key: args.key,
            shard: args.shard,
            epoch: args.epoch,
            host: args.host,
            loaded: None,
            span,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Msg>,
        msg: Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let span = state.span.clone();
        match msg {
            Msg::Apply(work) => self.apply(state, work).instrument(span).await,
        }
    }
}

impl<E: Entity> EntityActor<E> {
    async fn load(&self, state: &mut State<E::State>) -> Result<(), ActorFault> {
        if state.loaded.is_some() {
            return Ok(());
        }
        let row = self
            .rt
            .load(state.key)
            .await
            .map_err(|e| ActorFault::Infra(e.to_string()))?;
        state.loaded = Some(match row {
            None => (0, None),
            Some(row) => {
                let s: E::State = serde_json::from_value(row.state)
                    .map_err(|e| ActorFault::Poison(format!("checkpoint: {e}")))?;
                (row.version, Some(s))
            }
        });
        Ok(())
    }

    async fn apply(
        &self,
        state: &mut State<E::State>,
        work: Work,
    ) -> Result<(), ActorProcessingErr> {
        self.load(state).await?;
        let (version, current) = match &state.loaded {
            Some((v, s)) => (*v, s.as_ref()),
            None => (0, None),
        };
        let input: E::Input = serde_json::from_value(work.input.clone())
            .map_err(|e| ActorFault::Poison(format!("undecodable input: {e}")))?;
        let now = Utc::now();
        let outcome = self.entity.apply(&state.key, current, input, now);
        let (mut record, next_state, answer, timers) = match outcome {
            Err(rejected) => {
                tracing::info!(code = %rejected.code, reason = %rejected.message, "input rejected");
                let record = self.record(state, &work, now.timestamp_millis(), None);
                (record, None, Err(DeliveryError::Rejected(rejected)), vec![])
            }
            Ok(applied) => self.build(state, version, &work, applied, now.timestamp_millis())?,
        };
        if work.reply {
            record.reply = encode_answer(&answer);
        }
        let outbox_work = !record.effects.is_empty() || record.outbox == Some(OutboxHold::Release);
        let sent_inputs: Vec<Value> = record.sends.iter().map(|s| s.input.clone()).collect();
        let outcome = self.rt.commit(record).await.map_err(|e| match &e {
            BatchError::Store(s) if s.is_data_error() => ActorFault::Poison(e.to_string()),
            _ => ActorFault::Infra(e.to_string()),
        })?;
        match outcome {
            CommitOutcome::Committed { sent } => {
                if let Some(next) = next_state {
                    state.loaded = Some((version + 1, Some(next)));
                }
                self.rt.metrics.transitions.inc();
                if let Consumed::Timer { due_at_ms, .. } = work.consumed {
                    let late = (Utc::now().timestamp_millis() - due_at_ms).max(0);
                    self.rt.metrics.observe_timer_lateness(late);
                }
                let committed = Committed {
                    timers,
                    sent: sent.into_iter().zip(sent_inputs).collect(),
                    outbox_work,
                };
                let _ =
                    state
                        .host
                        .cast(ShardHostMsg::Done(state.key, Some(committed), Some(answer)));
                Ok(())
            }
            CommitOutcome::Stale => {
                // Applied before (a poll raced an in-process delivery): its answer is recorded.
                let _ = state.host.cast(ShardHostMsg::Done(state.key, None, None));
                Ok(())
            }
            CommitOutcome::Fenced => {
                self.rt.metrics.fencing_rejections.inc();
                tracing::warn!(epoch = %state.epoch, "commit fenced: shard owned elsewhere");
                let _ = state.host.cast(ShardHostMsg::Fenced);
                Ok(())
            }
            CommitOutcome::VersionConflict => {
                Err(ActorFault::Infra("checkpoint version moved under this actor".into()).into())
            }
            CommitOutcome::Unavailable => {
                Err(ActorFault::Infra("the commit did not reach the store".into()).into())
            }
        }
    }

    fn record(
        &self,
        state: &State<E::State>,
        work: &Work,
        now_ms: i64,
        checkpoint: Option<CheckpointWrite>,
    ) -> CommitRecord {
        CommitRecord {
            key: state.key,
            shard: state.shard,
            epoch: state.epoch,
            now_ms,
            consumed: work.consumed.clone(),
            checkpoint,
            effects: vec![],
            timers: vec![],
            timeline: vec![],
            sends: vec![],
            outbox: None,
            reply: None,
        }
    }

    #[allow(clippy::type_complexity)]
    fn build(
        &self,
        state: &State<E::State>,
        version: i64,
        work: &Work,
        applied: Applied<E::State>,
        now_ms: i64,
    ) -> Result<
        (
            CommitRecord,
            Option<E::State>,
            Result<Value, DeliveryError>,
            Vec<TimerChange>,
        ),
        ActorFault,
    > {
        let Applied {
            state: next,
            changes,
        } = applied;
        let anything = next.is_some()
            || !changes.effects.is_empty()
            || !changes.timers.is_empty()
            || !changes.timeline.is_empty()
            || !changes.sends.is_empty()
            || changes.outbox.is_some();
        let current = state.loaded.as_ref().and_then(|(_, s)| s.as_ref());
        let next = match (next, current) {
            (Some(n), _) => Some(n),
            (None, Some(c)) if anything => Some(c.clone()),
            _ => None,
        };
        let checkpoint = match &next {
            Some(s) => {
                let summary = self.entity.summary(s);
                Some(CheckpointWrite {
                    expected_version: version,
                    state: serde_json::to_value(s)
                        .map_err(|e| ActorFault::Poison(format!("state: {e}")))?,
                    status: summary.status,
                    paused: summary.paused,
                })
            }
            None => None,
        };
        let new_version = version + 1;
        let mut record = self.record(state, work, now_ms, checkpoint);
        record.effects = changes
            .effects
            .into_iter()
            .enumerate()
            .map(|(i, e)| EffectWrite {
                idem_key: format!("{}/{new_version}/{i}", state.key),
                channel: e.channel,
                payload: e.payload,
            })
            .collect();
        record.timers = changes
            .timers
            .iter()
            .map(|t| match t {
                TimerChange::Set {
                    name,
                    due_at,
                    input,
                } => TimerWrite::Set {
                    name: name.clone(),
                    due_at_ms: due_at.timestamp_millis(),
                    input: input.clone(),
                },
                TimerChange::Clear { name } => TimerWrite::Clear { name: name.clone() },
            })
            .collect();
        record.timeline = changes.timeline;
        record.sends = changes
            .sends
            .into_iter()
            .enumerate()
            .map(|(i, (to, input))| {
                let shard = self.rt.shard_of(&to);
                NewInput {
                    shard,
                    key: to,
                    // The version check makes a commit happen once, so the key needs no memory.
                    dedupe_key: format!("{}/{new_version}/send/{i}", state.key),
                    remember: false,
                    input,
                    reply: false,
                    notify: !self.rt.owns(shard),
                }
            })
            .collect();
        record.outbox = changes.outbox;
        Ok((record, next, Ok(changes.reply), changes.timers))
    }
}
