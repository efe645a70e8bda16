//! The host actor of one durable entity: it loads the checkpoint, applies inputs with the
//! entity's pure transition and commits each result in one fenced transaction.

use std::marker::PhantomData;
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use serde_json::Value;
use tracing::Instrument;

use crate::committer::BatchError;
use crate::entity::{Applied, Entity, OutboxHold, TimerChange};
use crate::key::{ActorKey, Epoch, ShardId};
use crate::protocol::{
    encode_answer, ActorFault, Committed, DeliveryError, EntityMsg, ShardHostMsg, Work,
};
use crate::runtime::Runtime;
use crate::store::{
    CheckpointWrite, CommitOutcome, CommitRecord, Consumed, EffectWrite, NewInput, TimerWrite,
};

pub struct Args {
    pub key: ActorKey,
    pub shard: ShardId,
    pub epoch: Epoch,
    pub host: ActorRef<ShardHostMsg>,
    /// Restarted after a failure: a commit may have landed without this actor hearing of it,
    /// so its timers are re-armed from the store (see `State::rearm`).
    pub rearm: bool,
}

pub struct State<S> {
    key: ActorKey,
    shard: ShardId,
    epoch: Epoch,
    host: ActorRef<ShardHostMsg>,
    /// `None` until the first input: activation stays cheap and the load happens off the host.
    loaded: Option<(i64, Option<S>)>,
    /// The next load also reads the actor's timers from the store, and the next report to the
    /// host carries them (`rearmed`) to the timer window: a commit whose answer was lost wrote
    /// timers that nobody armed in memory (issue #13, item 10).
    rearm: bool,
    rearmed: Vec<TimerChange>,
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

impl<E: Entity> Actor for EntityActor<E> {
    type Msg = EntityMsg;
    type State = State<E::State>;
    type Arguments = Args;

    async fn pre_start(
        &self,
        _myself: ActorRef<EntityMsg>,
        args: Args,
    ) -> Result<Self::State, ActorProcessingErr> {
        let span = tracing::info_span!("actor", key = %args.key, shard = %args.shard);
        Ok(State {
            key: args.key,
            shard: args.shard,
            epoch: args.epoch,
            host: args.host,
            loaded: None,
            rearm: args.rearm,
            rearmed: Vec::new(),
            span,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<EntityMsg>,
        msg: EntityMsg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let span = state.span.clone();
        match msg {
            EntityMsg::Apply(work) => self.apply(state, work).instrument(span).await,
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
        if state.rearm {
            let key = state.key;
            let rows = self
                .rt
                .store
                .timers_of(key.tenant, key.kind.as_str(), key.id)
                .await
                .map_err(|e| ActorFault::Infra(e.to_string()))?;
            state.rearmed = rows
                .into_iter()
                .filter_map(|t| {
                    Some(TimerChange::Set {
                        due_at: Utc.timestamp_millis_opt(t.due_at_ms).single()?,
                        name: t.name,
                        input: t.input,
                    })
                })
                .collect();
            state.rearm = false;
        }
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
        let now = self.rt.config.clock.now();
        if let Consumed::Timer { name, due_at_ms } = &work.consumed {
            // Not due yet by the database's clock (this instance's timer window ran ahead): the
            // firing goes back to the timer service rather than apply early.
            if *due_at_ms > now.timestamp_millis() {
                self.rt.metrics.early_timer_firings.inc();
                let rearm = TimerChange::Set {
                    name: name.clone(),
                    due_at: chrono::TimeZone::timestamp_millis_opt(&Utc, *due_at_ms)
                        .single()
                        .unwrap_or(now),
                    input: work.input.clone(),
                };
                let committed = Committed {
                    timers: vec![rearm],
                    sent: vec![],
                    outbox_work: false,
                };
                let _ = state
                    .host
                    .cast(ShardHostMsg::Done(state.key, Some(committed), None));
                return Ok(());
            }
        }
        let input: E::Input = serde_json::from_value(work.input.clone())
            .map_err(|e| ActorFault::Poison(format!("undecodable input: {e}")))?;
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
                if let Consumed::Timer { name, due_at_ms } = &work.consumed {
                    let now_ms = self.rt.config.clock.now_ms();
                    self.rt
                        .metrics
                        .observe_timer_lateness((now_ms - due_at_ms).max(0));
                    // The firing log, one event per firing committed (its own target, so a
                    // drill or the fault simulation can collect it and nothing else).
                    tracing::debug!(
                        target: "neuronx_supervision::timer_fired",
                        actor = %state.key.id,
                        timer = %name,
                        due_at_ms = *due_at_ms,
                        now_ms,
                        "timer fired"
                    );
                }
                // Re-armed first: the transition's own changes come after and win.
                let mut rearmed = std::mem::take(&mut state.rearmed);
                rearmed.extend(timers);
                let committed = Committed {
                    timers: rearmed,
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
                // Applied before: by this actor (a poll raced an in-process delivery), or by a
                // commit of this actor whose answer was lost (the batch was written again and
                // found its input consumed). Then the state here is behind the store, and the
                // timers and effects that commit wrote were never handed on: reload, re-arm
                // from the store and look at the outbox. The answer is recorded either way.
                state.loaded = None;
                state.rearm = true;
                self.load(state).await?;
                let committed = Committed {
                    timers: std::mem::take(&mut state.rearmed),
                    sent: vec![],
                    outbox_work: true,
                };
                let _ = state
                    .host
                    .cast(ShardHostMsg::Done(state.key, Some(committed), None));
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
            lookups: vec![],
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
            || changes.outbox.is_some()
            || !changes.lookups.is_empty();
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
        let origin = origin(state.key, version, checkpoint.is_some(), &work.consumed);
        let mut record = self.record(state, work, now_ms, checkpoint);
        record.effects = changes
            .effects
            .into_iter()
            .enumerate()
            .map(|(i, e)| EffectWrite {
                idem_key: format!("{origin}/{i}"),
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
                    // The commit happens once (version or consumed input), so the key needs no
                    // memory.
                    dedupe_key: format!("{origin}/send/{i}"),
                    remember: false,
                    input,
                    reply: false,
                    notify: !self.rt.owns(shard),
                }
            })
            .collect();
        record.outbox = changes.outbox;
        record.lookups = changes.lookups;
        Ok((record, next, Ok(changes.reply), changes.timers))
    }
}

/// What names a transition's effects and sends: `actor/version`, the version its checkpoint
/// writes; that version is unique to the transition and stable when a crash makes it run again.
/// A transition that writes no checkpoint (an actor without state stays without) leaves the
/// version where it was, so the next such transition would mint the same keys and the outbox
/// (`idem_key` UNIQUE, `ON CONFLICT DO NOTHING`) would drop its effects silently. Those are
/// named by the input they consume instead, which only one commit can consume: the inbox row's
/// id, or the timer's name and due time (issue #13, item 10).
fn origin(key: ActorKey, version: i64, checkpointed: bool, consumed: &Consumed) -> String {
    match consumed {
        _ if checkpointed => format!("{key}/{}", version + 1),
        Consumed::Inbox { id } => format!("{key}/{version}/input/{id}"),
        Consumed::Timer { name, due_at_ms } => format!("{key}/{version}/timer/{name}@{due_at_ms}"),
    }
}
