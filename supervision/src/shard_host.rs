//! One shard host per leased shard: the directory of its resident actors, input delivery one
//! at a time per actor, restarts from checkpoint, dead letters and passivation.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, SupervisionEvent};

use crate::entity_actor;
use crate::key::{ActorKey, Epoch, ShardId};
use crate::kinds::Kinds;
use crate::protocol::{
    ActorFault, Answer, Committed, DeliveryError, DispatcherMsg, EntityMsg, EntityRef, ManagerMsg,
    PollScope, Reply, ShardHostMsg, TimerMsg, Work,
};
use crate::restart::{FailureKind, RestartTracker};
use crate::runtime::Runtime;
use crate::store::{Consumed, Inserted};

mod admission;
mod failures;
mod inbox;

pub struct Args {
    pub shard: ShardId,
    pub epoch: Epoch,
    pub manager: ActorRef<ManagerMsg>,
    pub timers: ActorRef<TimerMsg>,
    pub dispatcher: ActorRef<DispatcherMsg>,
}

struct Resident {
    actor: Option<EntityRef>,
    queue: VecDeque<Work>,
    inflight: Option<Work>,
    strikes: u32,
    restarts: RestartTracker,
    last_active: Instant,
    /// Set aside after failing past its restart limit: inputs are dead-lettered until then.
    quarantine: Option<failures::Quarantine>,
    /// Failed since its actor was spawned: the next one re-arms its timers from the store.
    rearm: bool,
    /// Has work and waits in `State::awaiting` for room to be activated (admission.rs).
    awaiting: bool,
}

pub struct State {
    /// Whose gauges this host's counts are part of; given back when the state goes (`Drop`).
    metrics: Arc<crate::metrics::Metrics>,
    shard: ShardId,
    epoch: Epoch,
    manager: ActorRef<ManagerMsg>,
    timers: ActorRef<TimerMsg>,
    dispatcher: ActorRef<DispatcherMsg>,
    residents: HashMap<ActorKey, Resident>,
    cells: HashMap<ActorId, ActorKey>,
    /// Actors with work that wait for room under the host's share of the resident cap, in
    /// the order they are to be activated (admission.rs).
    awaiting: admission::Awaiting,
    /// Inbox rows queued or in flight here, so a poll does not deliver them twice.
    known_inbox: HashSet<i64>,
    /// A poll for a wake-up is queued.
    woken: bool,
    /// When the safety-net poll last read this shard's inbox.
    stragglers_polled: std::time::Instant,
    /// A read of the inbox is running: no second one starts until its `Polled` arrives, so
    /// polls asked while the database is slow do not pile up and multiply its load.
    polling: bool,
    /// A wake-up came while a read was running (which may have started before the input was
    /// written): read everything again once it ends.
    poll_again: bool,
    /// The last read came back a full page: more inputs wait in the store, read when the host
    /// has worked through half of what it holds (inbox.rs).
    more_inbox: bool,
    /// Answers of recently applied inbox inputs. The safety-net poll can apply an input before
    /// the in-process delivery that carries its caller arrives; the caller gets the answer here.
    answered: HashMap<i64, Answer>,
    answered_order: VecDeque<i64>,
    /// Callers waiting for the answer to an inbox input.
    waiting: HashMap<i64, Vec<Reply>>,
}

/// Answers a host keeps (`State::answered`): enough for the moments in which a caller's
/// delivery or a late poll can follow the commit of its input. Every host keeps its own, so
/// this is per shard: 1,024 for each of 256 shards held 262,144 answers (and hundreds of MB)
/// once a takeover's backlog had gone through.
const ANSWERS_KEPT: usize = 128;

pub struct ShardHost {
    rt: Arc<Runtime>,
    kinds: Kinds,
}

impl ShardHost {
    pub fn new(rt: Arc<Runtime>, kinds: Kinds) -> Self {
        Self { rt, kinds }
    }
}

impl Actor for ShardHost {
    type Msg = ShardHostMsg;
    type State = State;
    type Arguments = Args;

    async fn pre_start(
        &self,
        myself: ActorRef<ShardHostMsg>,
        args: Args,
    ) -> Result<State, ActorProcessingErr> {
        myself.send_interval(self.rt.config.passivate_after / 2, || ShardHostMsg::Sweep);
        myself.cast(ShardHostMsg::PollInbox(PollScope::Everything))?;
        Ok(State {
            metrics: self.rt.metrics.clone(),
            shard: args.shard,
            epoch: args.epoch,
            manager: args.manager,
            timers: args.timers,
            dispatcher: args.dispatcher,
            residents: HashMap::new(),
            cells: HashMap::new(),
            awaiting: admission::Awaiting::default(),
            known_inbox: HashSet::new(),
            woken: false,
            stragglers_polled: std::time::Instant::now(),
            polling: false,
            poll_again: false,
            more_inbox: false,
            answered: HashMap::new(),
            answered_order: VecDeque::new(),
            waiting: HashMap::new(),
        })
    }

    async fn post_stop(
        &self,
        myself: ActorRef<ShardHostMsg>,
        _state: &mut State,
    ) -> Result<(), ActorProcessingErr> {
        // In-flight transitions finish (a stop is seen between messages); queued ones stay in
        // the store for the next owner.
        myself
            .stop_children_and_wait(None, Some(std::time::Duration::from_secs(10)))
            .await;
        // The gauges are given back when the state is dropped, after this.
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<ShardHostMsg>,
        msg: ShardHostMsg,
        state: &mut State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ShardHostMsg::Deliver(key, work, reply) => {
                self.enqueue(&myself, state, key, work, reply).await
            }
            ShardHostMsg::Done(key, committed, answer) => {
                self.done(&myself, state, key, committed, answer).await
            }
            ShardHostMsg::Fenced => {
                tracing::warn!(shard = %state.shard, epoch = %state.epoch, "shard lost: stopping its actors");
                let _ = state
                    .manager
                    .cast(ManagerMsg::HostFenced(state.shard, state.epoch));
                myself.stop(Some("fenced".into()));
                Ok(())
            }
            ShardHostMsg::PollInbox(scope) => {
                self.poll_inbox(&myself, state, scope);
                Ok(())
            }
            ShardHostMsg::Polled(rows) => self.take_polled(&myself, state, rows).await,
            ShardHostMsg::Wake => {
                if !state.woken {
                    state.woken = true;
                    myself.cast(ShardHostMsg::PollInbox(PollScope::Woken))?;
                }
                Ok(())
            }
            ShardHostMsg::Sweep => {
                self.sweep(state);
                Ok(())
            }
            ShardHostMsg::Respawn(key) => {
                self.ensure_actor(&myself, state, key).await?;
                self.pump(state, key);
                Ok(())
            }
        }
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<ShardHostMsg>,
        evt: SupervisionEvent,
        state: &mut State,
    ) -> Result<(), ActorProcessingErr> {
        match evt {
            SupervisionEvent::ActorFailed(cell, err) => {
                let Some(key) = state.cells.remove(&cell.get_id()) else {
                    return Ok(());
                };
                self.rt.metrics.resident_actors.dec();
                self.rt.metrics.actor_restarts.inc();
                let kind = match err.downcast_ref::<ActorFault>() {
                    Some(ActorFault::Infra(_)) => FailureKind::Infra,
                    _ => FailureKind::Actor,
                };
                tracing::warn!(%key, error = %err, ?kind, "actor failed");
                self.on_failure(&myself, state, key, cell.get_id(), kind, err.to_string())
                    .await
            }
            SupervisionEvent::ActorTerminated(cell, _, _) => {
                if let Some(key) = state.cells.remove(&cell.get_id()) {
                    self.rt.metrics.resident_actors.dec();
                    // A resident may already have a newer actor (passivated, then asked again).
                    let needs_actor = state
                        .residents
                        .get_mut(&key)
                        .filter(|r| r.actor.as_ref().map(|a| a.get_id()) == Some(cell.get_id()))
                        .map(|r| {
                            r.actor = None;
                            !r.queue.is_empty() || r.inflight.is_some()
                        });
                    match needs_actor {
                        Some(true) => {
                            self.ensure_actor(&myself, state, key).await?;
                            self.pump(state, key);
                        }
                        Some(false) => {
                            state.residents.remove(&key);
                        }
                        None => {}
                    }
                    // Its room goes to the next actor waiting for one.
                    self.activate_awaiting(&myself, state).await?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

impl ShardHost {
    async fn enqueue(
        &self,
        myself: &ActorRef<ShardHostMsg>,
        state: &mut State,
        key: ActorKey,
        work: Work,
        reply: Option<Reply>,
    ) -> Result<(), ActorProcessingErr> {
        let urgent = reply.is_some();
        if let Consumed::Inbox { id } = work.consumed {
            if let Some(answer) = state.answered.get(&id) {
                if let Some(reply) = reply {
                    let _ = reply.send(answer.clone());
                }
                return Ok(());
            }
            if let Some(reply) = reply {
                state.waiting.entry(id).or_default().push(reply);
            }
            if !state.known_inbox.insert(id) {
                // Already queued or in flight (a poll found it first).
                return Ok(());
            }
        }
        let resident = state.residents.entry(key).or_insert_with(|| Resident {
            actor: None,
            queue: VecDeque::new(),
            inflight: None,
            strikes: 0,
            restarts: RestartTracker::default(),
            last_active: Instant::now(),
            quarantine: None,
            rearm: false,
            awaiting: false,
        });
        if let Some(reason) = failures::still_quarantined(resident) {
            self.bury(state, key, work, reason, 0).await;
            return Ok(());
        }
        resident.queue.push_back(work);
        self.rt.metrics.inbox_depth.inc();
        self.ensure_actor(myself, state, key).await?;
        if urgent {
            // A caller waits for this one: it goes before work nobody waits for.
            admission::hurry(state, key);
        }
        self.pump(state, key);
        Ok(())
    }

    async fn ensure_actor(
        &self,
        myself: &ActorRef<ShardHostMsg>,
        state: &mut State,
        key: ActorKey,
    ) -> Result<(), ActorProcessingErr> {
        let Some(resident) = state.residents.get(&key) else {
            return Ok(());
        };
        if resident.actor.is_some() || resident.quarantine.is_some() {
            return Ok(());
        }
        let rearm = resident.rearm;
        if !self.admit(state, key) {
            return Ok(());
        }
        let spawner = self
            .kinds
            .spawner(key.kind)
            .ok_or_else(|| format!("no entity registered for kind {}", key.kind))?;
        let args = entity_actor::Args {
            key,
            shard: state.shard,
            epoch: state.epoch,
            host: myself.clone(),
            rearm,
        };
        let actor = spawner
            .spawn(self.rt.clone(), args, myself.get_cell())
            .await?;
        self.rt.metrics.resident_actors.inc();
        state.cells.insert(actor.get_id(), key);
        if let Some(r) = state.residents.get_mut(&key) {
            r.actor = Some(actor);
            r.rearm = false;
        }
        self.keep_to_budget(state);
        Ok(())
    }

    fn pump(&self, state: &mut State, key: ActorKey) {
        let Some(r) = state.residents.get_mut(&key) else {
            return;
        };
        if r.inflight.is_some() {
            return;
        }
        let Some(actor) = r.actor.clone() else {
            return;
        };
        if let Some(work) = r.queue.pop_front() {
            self.rt.metrics.inbox_depth.dec();
            r.inflight = Some(work.clone());
            r.last_active = Instant::now();
            if actor.cast(EntityMsg::Apply(work.clone())).is_err() {
                // The actor is stopping; it comes back through ActorTerminated with this input.
                r.inflight = None;
                r.queue.push_front(work);
                self.rt.metrics.inbox_depth.inc();
            }
        }
    }

    async fn done(
        &self,
        myself: &ActorRef<ShardHostMsg>,
        state: &mut State,
        key: ActorKey,
        committed: Option<Committed>,
        answer: Option<Answer>,
    ) -> Result<(), ActorProcessingErr> {
        let mut fired = None;
        if let Some(r) = state.residents.get_mut(&key) {
            match r.inflight.take().map(|w| w.consumed) {
                Some(Consumed::Timer { name, .. }) => fired = Some(name),
                Some(Consumed::Inbox { id }) => {
                    state.known_inbox.remove(&id);
                    let waiters = state.waiting.remove(&id).unwrap_or_default();
                    match answer {
                        Some(answer) => {
                            for reply in waiters {
                                let _ = reply.send(answer.clone());
                            }
                            state.answered.insert(id, answer);
                            state.answered_order.push_back(id);
                            if state.answered_order.len() > ANSWERS_KEPT {
                                if let Some(old) = state.answered_order.pop_front() {
                                    state.answered.remove(&old);
                                }
                            }
                        }
                        None => {
                            // Applied before (stale commit): answer from then, if still known.
                            let earlier = state
                                .answered
                                .get(&id)
                                .cloned()
                                .unwrap_or(Err(DeliveryError::Duplicate));
                            for reply in waiters {
                                let _ = reply.send(earlier.clone());
                            }
                        }
                    }
                }
                None => {}
            }
            r.strikes = 0;
            r.restarts.on_success();
            r.last_active = Instant::now();
        }
        if let Some(name) = fired {
            // The timer service counts its firings in flight; this one is over.
            let _ = state.timers.cast(TimerMsg::Over(key, name));
        }
        self.read_next_page(myself, state);
        // Actors that were busy when the host went over its share may be idle now.
        self.keep_to_budget(state);
        self.activate_awaiting(myself, state).await?;
        if let Some(c) = committed {
            if !c.timers.is_empty() {
                let _ = state
                    .timers
                    .cast(TimerMsg::Changed(key, state.shard, c.timers));
            }
            if c.outbox_work {
                let _ = state.dispatcher.cast(DispatcherMsg::Kick(state.shard));
            }
            for (sent, input) in c.sent {
                if let Inserted::New { id, key, shard } = sent {
                    // The input is already durable; delivering it here only saves a poll.
                    let msg = ShardHostMsg::Deliver(key, Work::from_inbox(id, input), None);
                    if shard == state.shard {
                        let _ = myself.cast(msg);
                    } else {
                        self.rt.route(shard, msg);
                    }
                }
            }
        }
        self.pump(state, key);
        Ok(())
    }
}

/// A host's share of the gauges leaves with its state: after `post_stop` on a stop, and also when
/// a host that did not stop within its grace is killed, which skips `post_stop` (its counts used
/// to stay in the gauges for the life of the process).
impl Drop for State {
    fn drop(&mut self) {
        let resident = self
            .residents
            .values()
            .filter(|r| r.actor.is_some())
            .count();
        self.metrics.resident_actors.sub(resident as i64);
        let queued: usize = self.residents.values().map(|r| r.queue.len()).sum();
        self.metrics.inbox_depth.sub(queued as i64);
        self.metrics
            .awaiting_activation
            .sub(self.awaiting.len() as i64);
    }
}
