//! The shard manager: registers this instance and heartbeats, holds its fair share of the shard
//! leases (claiming free or expired ones, releasing surplus ones when others join), renews
//! them, spawns one shard host per owned shard, publishes the host directory that deliveries
//! read (ADR 0027), and stops acting before a lease it cannot renew runs out. The lease rounds
//! themselves are in `rounds`. It also supervises the timer service, the outbox
//! dispatcher and the inbox listener (wake-ups from other instances).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, SupervisionEvent};

use crate::key::{Epoch, ShardId};
use crate::kinds::Kinds;
use crate::outbox::{self, Completions, Dispatcher, Handlers};
use crate::protocol::{DispatcherMsg, ManagerMsg, PollScope, ShardHostMsg, TimerMsg};
use crate::restart::{RestartDecision, RestartTracker};
use crate::runtime::{ActWindow, HeldShard, Runtime};
use crate::shard_host::{self, ShardHost};
use crate::timers::{self, TimerService};

mod rounds;
mod stopping;

pub struct Args {
    pub handlers: Arc<Handlers>,
    pub completions: Completions,
}

struct Host {
    epoch: Epoch,
    actor: ActorRef<ShardHostMsg>,
}

pub struct State {
    hosts: HashMap<ShardId, Host>,
    cells: HashMap<ActorId, ShardId>,
    restarts: HashMap<ShardId, RestartTracker>,
    timers: ActorRef<TimerMsg>,
    dispatcher: ActorRef<DispatcherMsg>,
    /// Past this instant the leases may have expired: act no more until renewed.
    deadline: Instant,
    first_claim: bool,
    /// No heartbeat yet: the first one records the start time.
    fresh: bool,
    listener: Option<tokio::task::JoinHandle<()>>,
    releasing: bool,
    ticks: u64,
    /// Hosts being stopped off this actor's handler (see `stopping`), awaited on release.
    stopping: tokio::task::JoinSet<()>,
}

pub struct ShardManager {
    rt: Arc<Runtime>,
    kinds: Kinds,
}

impl ShardManager {
    pub fn new(rt: Arc<Runtime>, kinds: Kinds) -> Self {
        Self { rt, kinds }
    }
}

impl Actor for ShardManager {
    type Msg = ManagerMsg;
    type State = State;
    type Arguments = Args;

    async fn pre_start(
        &self,
        myself: ActorRef<ManagerMsg>,
        args: Args,
    ) -> Result<State, ActorProcessingErr> {
        let (timers, _) = Actor::spawn_linked(
            None,
            TimerService::new(self.rt.clone(), self.kinds.clone()),
            timers::Args,
            myself.get_cell(),
        )
        .await?;
        let (dispatcher, _) = Actor::spawn_linked(
            None,
            Dispatcher::new(
                self.rt.clone(),
                self.kinds.clone(),
                args.handlers,
                args.completions,
            ),
            outbox::Args,
            myself.get_cell(),
        )
        .await?;
        // Without it wake-ups from other instances wait for the safety-net poll, which is slower
        // but correct; so a failure here is logged, not fatal.
        let listener = match self.rt.store.inbox_listener().await {
            Ok(l) => {
                l.map(|l| crate::listener::spawn(l, myself.clone(), self.rt.reply_posted.clone()))
            }
            Err(e) => {
                tracing::warn!(error = %e, "inbox listener unavailable; relying on polls");
                None
            }
        };
        myself.send_interval(self.rt.config.lease_renew, || ManagerMsg::Tick);
        myself.send_interval(self.rt.config.poll_interval, || ManagerMsg::PollStragglers);
        myself.cast(ManagerMsg::Tick)?;
        Ok(State {
            hosts: HashMap::new(),
            cells: HashMap::new(),
            restarts: HashMap::new(),
            timers,
            dispatcher,
            deadline: Instant::now(),
            first_claim: true,
            fresh: true,
            listener,
            releasing: false,
            ticks: 0,
            stopping: tokio::task::JoinSet::new(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<ManagerMsg>,
        msg: ManagerMsg,
        state: &mut State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ManagerMsg::Tick => {
                if !state.releasing {
                    self.tick(&myself, state).await?;
                    state.ticks += 1;
                    if state.ticks % HOUSEKEEPING_EVERY == 1 {
                        self.housekeeping().await;
                    }
                }
            }
            ManagerMsg::Deadline => {
                self.drop_if_expired(state);
            }
            ManagerMsg::HostFenced(shard, epoch) => {
                if state.hosts.get(&shard).is_some_and(|h| h.epoch == epoch) {
                    if let Some(h) = state.hosts.remove(&shard) {
                        state.cells.remove(&h.actor.get_id());
                    }
                    self.announce(state);
                }
            }
            ManagerMsg::RestartHost(shard, failed) => {
                let current = state.hosts.get(&shard);
                if let Some(epoch) = current
                    .filter(|h| h.actor.get_id() == failed)
                    .map(|h| h.epoch)
                {
                    self.spawn_host(&myself, state, shard, epoch).await?;
                    self.publish(state);
                }
            }
            ManagerMsg::PollStragglers => {
                for host in state.hosts.values() {
                    let _ = host
                        .actor
                        .cast(ShardHostMsg::PollInbox(PollScope::Stragglers));
                }
            }
            ManagerMsg::Wake(shard) => {
                for (s, host) in &state.hosts {
                    if shard.is_none_or(|w| w == *s) {
                        let _ = host.actor.cast(ShardHostMsg::Wake);
                    }
                }
            }
            ManagerMsg::Release(reply) => {
                state.releasing = true;
                let leases = held(state);
                self.drop_all(state);
                // Hosts stopping in the background (dropped, or given up with their release
                // still to come) finish first: within their grace and kill, so this is bounded.
                while state.stopping.join_next().await.is_some() {}
                // Stop these now, while their stop hooks can run: running effects finish and
                // record their results (a supervisor exiting would kill them instead).
                let stopping = Some(Duration::from_secs(15));
                let _ = state.dispatcher.stop_and_wait(None, stopping).await;
                let _ = state.timers.stop_and_wait(None, stopping).await;
                if let Err(e) = self
                    .rt
                    .store
                    .release_shards(&self.rt.config.instance_id, &leases)
                    .await
                {
                    tracing::warn!(error = %e, "releasing leases failed; they expire by themselves");
                }
                // Leaving at once, rather than when the heartbeat ages, lets the others take
                // their larger shares on their next tick.
                if let Err(e) = self.rt.store.deregister(&self.rt.config.instance_id).await {
                    tracing::warn!(error = %e, "deregistering failed; the heartbeat ages out");
                }
                let _ = reply.send(());
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<ManagerMsg>,
        evt: SupervisionEvent,
        state: &mut State,
    ) -> Result<(), ActorProcessingErr> {
        if let SupervisionEvent::ActorFailed(cell, err) = evt {
            let failed = cell.get_id();
            let Some(shard) = state.cells.remove(&failed) else {
                if failed == state.timers.get_id() || failed == state.dispatcher.get_id() {
                    // Let our supervisor restart us whole, with fresh hosts.
                    return Err(format!("engine component failed: {err}").into());
                }
                // A host already dropped (lease lost, fenced) failing on its way out.
                tracing::info!(error = %err, "a released shard host failed while stopping");
                return Ok(());
            };
            tracing::warn!(%shard, error = %err, "shard host failed");
            let decision = state
                .restarts
                .entry(shard)
                .or_default()
                .on_failure(&self.rt.config.restart, Instant::now());
            match decision {
                RestartDecision::Restart { after } => {
                    myself.send_after(after, move || ManagerMsg::RestartHost(shard, failed));
                }
                RestartDecision::GiveUp => {
                    return Err(format!("shard host {shard} keeps failing: {err}").into());
                }
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<ManagerMsg>,
        state: &mut State,
    ) -> Result<(), ActorProcessingErr> {
        self.rt.metrics.owned_shards.set(0);
        self.rt.publish_directory(Vec::new());
        self.rt.set_act_window(ActWindow::Never);
        state.hosts.clear();
        // Dropping the set would abort the stops (and releases) midway: let them finish.
        state.stopping.detach_all();
        if let Some(l) = state.listener.take() {
            l.abort();
        }
        Ok(())
    }
}

/// Housekeeping runs on the first tick and then every this many ticks.
const HOUSEKEEPING_EVERY: u64 = 300;

fn held(state: &State) -> Vec<(ShardId, Epoch)> {
    let mut held: Vec<_> = state.hosts.iter().map(|(s, h)| (*s, h.epoch)).collect();
    held.sort();
    held
}

impl ShardManager {
    async fn spawn_host(
        &self,
        myself: &ActorRef<ManagerMsg>,
        state: &mut State,
        shard: ShardId,
        epoch: Epoch,
    ) -> Result<(), ActorProcessingErr> {
        let (actor, _) = Actor::spawn_linked(
            None,
            ShardHost::new(self.rt.clone(), self.kinds.clone()),
            shard_host::Args {
                shard,
                epoch,
                manager: myself.clone(),
                timers: state.timers.clone(),
                dispatcher: state.dispatcher.clone(),
            },
            myself.get_cell(),
        )
        .await?;
        state.cells.insert(actor.get_id(), shard);
        state.hosts.insert(shard, Host { epoch, actor });
        Ok(())
    }

    /// Retention: forget old dedupe keys. Every instance may do it; the delete is idempotent.
    async fn housekeeping(&self) {
        let retention = self.rt.config.dedupe_retention.as_millis() as i64;
        let before = chrono::Utc::now().timestamp_millis() - retention;
        match self.rt.store.prune_dedupe(before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(pruned = n, "old dedupe keys forgotten"),
            Err(e) => tracing::warn!(error = %e, "dedupe pruning failed"),
        }
        let now = chrono::Utc::now().timestamp_millis();
        // Answers nobody came for (the caller timed out) and instances gone for a day.
        if let Err(e) = self.rt.store.prune_replies(now - 600_000).await {
            tracing::warn!(error = %e, "reply pruning failed");
        }
        if let Err(e) = self.rt.store.prune_instances(now - 86_400_000).await {
            tracing::warn!(error = %e, "instance pruning failed");
        }
    }

    /// Publishes the hosts for direct delivery (a restarted host replaces its predecessor).
    fn publish(&self, state: &State) {
        let directory = state
            .hosts
            .iter()
            .map(|(shard, h)| HeldShard {
                shard: *shard,
                epoch: h.epoch,
                host: h.actor.clone(),
            })
            .collect();
        self.rt.publish_directory(directory);
    }

    /// Tells the timer service, the dispatcher and every router which shards are ours now.
    fn announce(&self, state: &State) {
        let leases = held(state);
        self.rt.metrics.owned_shards.set(leases.len() as i64);
        self.publish(state);
        let _ = state
            .timers
            .cast(TimerMsg::Owned(leases.iter().map(|(s, _)| *s).collect()));
        let _ = state.dispatcher.cast(DispatcherMsg::Owned(leases));
    }

    /// Takes every host out of the state at once and stops them off this handler (renewals
    /// never wait behind a stopping host).
    fn drop_all(&self, state: &mut State) {
        let hosts: Vec<_> = state.hosts.drain().map(|(_, h)| h.actor).collect();
        state.cells.clear();
        self.announce(state);
        self.stop_in_background(state, hosts, "shards released");
    }

    fn stop_in_background(
        &self,
        state: &mut State,
        hosts: Vec<ActorRef<ShardHostMsg>>,
        reason: &'static str,
    ) {
        if hosts.is_empty() {
            return;
        }
        while state.stopping.try_join_next().is_some() {}
        state.stopping.spawn(stopping::stop_dropped(hosts, reason));
    }
}
