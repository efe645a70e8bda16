//! The shard manager: leases shards from the store, renews them, spawns one shard host per
//! owned shard, routes inputs to hosts, and stops acting before a lease it cannot renew runs
//! out. It also supervises the timer service and the outbox dispatcher.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};

use crate::committer::Batcher;
use crate::key::{Epoch, ShardId};
use crate::kinds::Kinds;
use crate::outbox::{self, Dispatcher, DispatcherMsg, Handlers};
use crate::restart::{RestartDecision, RestartTracker};
use crate::runtime::Runtime;
use crate::shard_host::{self, ShardHost, ShardHostMsg};
use crate::store::{EffectDone, Inserted};
use crate::timers::{self, TimerMsg, TimerService};

pub enum ManagerMsg {
    /// Renew held leases and claim free ones.
    Tick,
    /// Forward to the host of `shard` if this instance owns it; otherwise the input is already
    /// durable and its owner will read it.
    Route(ShardId, ShardHostMsg),
    HostFenced(ShardId, Epoch),
    /// Respawn the host of a shard after a failure, if the failed host is still the current
    /// one (the lease may have been lost and re-claimed meanwhile).
    RestartHost(ShardId, ActorId),
    /// The shards held now, with their epochs.
    Owned(RpcReplyPort<Vec<(ShardId, Epoch)>>),
    /// Graceful stop: finish in-flight transitions, stop hosts, release every lease.
    Release(RpcReplyPort<()>),
}

pub struct Args {
    pub handlers: Arc<Handlers>,
    pub completions: Batcher<EffectDone, Inserted>,
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
    releasing: bool,
    ticks: u64,
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
            timers::Args {
                manager: myself.clone(),
            },
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
            outbox::Args {
                manager: myself.clone(),
            },
            myself.get_cell(),
        )
        .await?;
        myself.send_interval(self.rt.config.lease_renew, || ManagerMsg::Tick);
        myself.cast(ManagerMsg::Tick)?;
        Ok(State {
            hosts: HashMap::new(),
            cells: HashMap::new(),
            restarts: HashMap::new(),
            timers,
            dispatcher,
            deadline: Instant::now(),
            first_claim: true,
            releasing: false,
            ticks: 0,
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
            ManagerMsg::Route(shard, msg) => {
                if let Some(host) = state.hosts.get(&shard) {
                    let _ = host.actor.cast(msg);
                }
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
                }
            }
            ManagerMsg::Owned(reply) => {
                let _ = reply.send(held(state));
            }
            ManagerMsg::Release(reply) => {
                state.releasing = true;
                let leases = held(state);
                self.drop_all(state).await;
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
        state.hosts.clear();
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
    async fn tick(
        &self,
        myself: &ActorRef<ManagerMsg>,
        state: &mut State,
    ) -> Result<(), ActorProcessingErr> {
        let cfg = &self.rt.config;
        let started = Instant::now();
        let leases = held(state);
        if !leases.is_empty() {
            match self
                .rt
                .store
                .renew_shards(&cfg.instance_id, &leases, cfg.lease_ttl)
                .await
            {
                Ok(renewed) => {
                    let renewed: HashMap<ShardId, Epoch> =
                        renewed.iter().map(|l| (l.shard, l.epoch)).collect();
                    let lost: Vec<ShardId> = leases
                        .iter()
                        .filter(|(s, e)| renewed.get(s) != Some(e))
                        .map(|(s, _)| *s)
                        .collect();
                    for shard in &lost {
                        tracing::warn!(%shard, "lease lost: stopping the shard host");
                        if let Some(h) = state.hosts.remove(shard) {
                            state.cells.remove(&h.actor.get_id());
                            h.actor.stop(Some("lease lost".into()));
                        }
                    }
                    state.deadline = started + safe_window(cfg.lease_ttl);
                    if !lost.is_empty() {
                        self.announce(state);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "lease renewal failed");
                    if Instant::now() >= state.deadline {
                        tracing::warn!("leases may have expired: stopping every shard host");
                        self.drop_all(state).await;
                    }
                    return Ok(());
                }
            }
        }
        self.claim(myself, state, started).await
    }

    async fn claim(
        &self,
        myself: &ActorRef<ManagerMsg>,
        state: &mut State,
        started: Instant,
    ) -> Result<(), ActorProcessingErr> {
        let cfg = &self.rt.config;
        let force = cfg.force_claim && state.first_claim;
        let mut gained = false;
        for id in 0..cfg.shard_count as i32 {
            let shard = ShardId(id);
            if state.hosts.contains_key(&shard) {
                continue;
            }
            match self
                .rt
                .store
                .claim_shard(shard, &cfg.instance_id, cfg.lease_ttl, force)
                .await
            {
                Ok(Some(lease)) => {
                    self.spawn_host(myself, state, shard, lease.epoch).await?;
                    gained = true;
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "shard claim failed");
                    break;
                }
            }
        }
        if gained {
            state.deadline = started + safe_window(cfg.lease_ttl);
            tracing::info!(owned = state.hosts.len(), "shards claimed");
            self.announce(state);
        }
        state.first_claim = false;
        Ok(())
    }

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
    }

    /// Tells the timer service and the dispatcher which shards are ours now.
    fn announce(&self, state: &State) {
        let leases = held(state);
        self.rt.metrics.owned_shards.set(leases.len() as i64);
        let _ = state
            .timers
            .cast(TimerMsg::Owned(leases.iter().map(|(s, _)| *s).collect()));
        let _ = state.dispatcher.cast(DispatcherMsg::Owned(leases));
    }

    async fn drop_all(&self, state: &mut State) {
        let hosts: Vec<Host> = state.hosts.drain().map(|(_, h)| h).collect();
        state.cells.clear();
        self.announce(state);
        for h in hosts {
            h.actor
                .stop_and_wait(
                    Some("shards released".into()),
                    Some(Duration::from_secs(10)),
                )
                .await
                .ok();
        }
    }
}

/// How long after a renewal began this instance may still act: the lease TTL less a margin for
/// clock drift between this process and the database, and for the renewal's own latency.
fn safe_window(ttl: Duration) -> Duration {
    ttl.saturating_sub(ttl / 3)
}
