//! The engine: starts the batchers and the supervision tree, and gives the rest of the program
//! one handle to submit inputs and read state.

use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};
use serde_json::Value;
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::committer::Batcher;
use crate::entity::Rejected;
use crate::key::{ActorKey, Epoch, ShardId};
use crate::kinds::Kinds;
use crate::lanes::LaneOf;
use crate::metrics::Metrics;
use crate::outbox::{Completions, Handlers};
use crate::protocol::{DeliveryError, ManagerMsg, RootMsg, ShardHostMsg, StoredAnswer, Work};
use crate::restart::{RestartDecision, RestartTracker};
use crate::runtime::Batchers;
use crate::shard_manager::{self, ShardManager};
use crate::store::{CommitRecord, EffectDone, InboxPoll, Inserted, NewInput, Store, StoreError};

pub use crate::runtime::{EngineConfig, Runtime};
pub use dead_letters::RetryOutcome;
pub use staged::Staged;

mod dead_letters;
mod staged;

#[derive(Debug, Clone, PartialEq)]
pub enum SubmitOutcome {
    /// Applied and committed; the entity's reply.
    Applied(Value),
    Rejected(Rejected),
    /// The same dedupe key was submitted before; nothing changed.
    Duplicate,
    /// Durable, and will be applied by the shard's owner (here later, or another instance).
    Accepted,
    /// Moved to the dead letters instead of applied: the input failed too often, or its actor
    /// is quarantined (the reason says which). An operator may retry it from there.
    DeadLettered(String),
}

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("the input could not be made durable: {0}")]
    Unavailable(String),
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("spawning the supervision tree: {0}")]
    Spawn(#[from] ractor::SpawnErr),
}

/// The handle the HTTP API, the CLI and the adapters use. Cheap to clone.
type ManagerWatch = tokio::sync::watch::Receiver<Option<ActorRef<ManagerMsg>>>;

#[derive(Clone)]
pub struct EngineHandle {
    rt: Arc<Runtime>,
    /// The current shard manager; the root publishes a new one after a restart.
    manager: ManagerWatch,
}

impl EngineHandle {
    pub fn store(&self) -> &Store {
        &self.rt.store
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.rt.metrics
    }

    pub fn config(&self) -> &EngineConfig {
        &self.rt.config
    }

    pub fn shard_of(&self, key: &ActorKey) -> ShardId {
        self.rt.shard_of(key)
    }

    /// Makes `input` durable for `key` and hands it to the owner without waiting for the
    /// transition: the acknowledgement for webhooks and channel callbacks.
    /// Returns `Duplicate` when the dedupe key was seen before, else `Accepted`.
    pub async fn enqueue(
        &self,
        key: ActorKey,
        input: Value,
        dedupe: Option<String>,
    ) -> Result<SubmitOutcome, SubmitError> {
        let Some(durable) = self.make_durable(key, &input, dedupe, false).await? else {
            return Ok(SubmitOutcome::Duplicate);
        };
        if durable.local {
            self.deliver_here(key, durable.shard, durable.id, input);
        }
        Ok(SubmitOutcome::Accepted)
    }

    async fn make_durable(
        &self,
        key: ActorKey,
        input: &Value,
        dedupe: Option<String>,
        wait: bool,
    ) -> Result<Option<Durable>, SubmitError> {
        let (item, local) = self.new_input(key, input, dedupe, wait);
        let shard = item.shard;
        let inserted = within_ingest_timeout(self.rt.ingest(item)).await?;
        Ok(match inserted {
            Inserted::New { id, .. } => Some(Durable { id, shard, local }),
            Inserted::Duplicate => None,
        })
    }

    /// The inbox row for `input` to `key`, and whether this instance holds its shard. Owned
    /// elsewhere, the owner is woken and, if the caller waits, stores its answer.
    fn new_input(
        &self,
        key: ActorKey,
        input: &Value,
        dedupe: Option<String>,
        wait: bool,
    ) -> (NewInput, bool) {
        let shard = self.rt.shard_of(&key);
        let local = self.rt.owns(shard);
        let (dedupe_key, remember) = match dedupe {
            Some(k) => (format!("{}/{k}", key.tenant), true),
            None => (uuid::Uuid::new_v4().to_string(), false),
        };
        let item = NewInput {
            key,
            shard,
            dedupe_key,
            remember,
            input: input.clone(),
            reply: wait && !local,
            notify: !local,
        };
        (item, local)
    }

    /// Hands a durable input to its host here, without waiting for the transition.
    fn deliver_here(&self, key: ActorKey, shard: ShardId, id: i64, input: Value) {
        let deliver = ShardHostMsg::Deliver(key, Work::from_inbox(id, input), None);
        self.rt.route(shard, deliver);
    }

    /// Makes `input` durable for `key`, then lets the owning actor apply it and waits (up to the
    /// reply timeout) for the committed result. `dedupe` makes a retried submit a no-op.
    pub async fn submit(
        &self,
        key: ActorKey,
        input: Value,
        dedupe: Option<String>,
    ) -> Result<SubmitOutcome, SubmitError> {
        let Some(Durable { id, shard, local }) =
            self.make_durable(key, &input, dedupe, true).await?
        else {
            return Ok(SubmitOutcome::Duplicate);
        };
        if !local {
            return Ok(self.await_remote(id).await);
        }
        let wait = self.rt.config.reply_timeout;
        // Released since it was made durable: its new owner applies it.
        let Some(host) = self.rt.host_of(shard) else {
            return Ok(SubmitOutcome::Accepted);
        };
        let reply = ractor::call_t!(
            host,
            |port| ShardHostMsg::Deliver(key, Work::from_inbox(id, input), Some(port)),
            wait.as_millis() as u64
        );
        Ok(match reply {
            Ok(Ok(value)) => SubmitOutcome::Applied(value),
            Ok(Err(DeliveryError::Rejected(r))) => SubmitOutcome::Rejected(r),
            Ok(Err(DeliveryError::Duplicate)) => SubmitOutcome::Duplicate,
            Ok(Err(DeliveryError::Failed(reason))) => SubmitOutcome::DeadLettered(reason),
            // Not owned here, timed out, or the actor is restarting: the input is durable.
            Ok(Err(_)) | Err(_) => SubmitOutcome::Accepted,
        })
    }

    /// Whether this instance may act on its shards now (false once its leases may have run
    /// out unrenewed; always true for the exclusive embedded engine once started).
    pub fn may_act(&self) -> bool {
        self.rt.may_act()
    }

    /// The shards this instance holds, with their epochs.
    pub async fn owned_shards(&self) -> Vec<(ShardId, Epoch)> {
        self.rt.owned()
    }

    /// Waits for the owner on another instance to apply input `id` and store its answer. The
    /// owner was woken by NOTIFY; this side polls the answer, briefly, up to the reply timeout.
    /// Waits for the owner's answer: read when the owner's commit NOTIFYs, and every
    /// `REMOTE_POLL` in case a notification was lost.
    async fn await_remote(&self, id: i64) -> SubmitOutcome {
        let deadline = tokio::time::Instant::now() + self.rt.config.reply_timeout;
        let mut woken = "first";
        loop {
            // Registered before the read, so a notification during it is not missed.
            let posted = self.rt.reply_posted.notified();
            tokio::pin!(posted);
            posted.as_mut().enable();
            match self.rt.take_reply(id).await {
                Ok(Some(body)) => {
                    self.rt
                        .metrics
                        .remote_answers
                        .with_label_values(&[woken])
                        .inc();
                    return decode_reply(body);
                }
                Ok(None) => {}
                Err(e) => tracing::debug!(error = %e, "reading a remote answer failed"),
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return SubmitOutcome::Accepted;
            }
            tokio::select! {
                _ = &mut posted => woken = "notification",
                _ = tokio::time::sleep(REMOTE_POLL.min(deadline - now)) => woken = "poll",
            }
        }
    }

    fn manager(&self) -> Option<ActorRef<ManagerMsg>> {
        self.manager.borrow().clone()
    }
}

/// An input made durable: its inbox id, its shard, and whether this instance owns the shard.
struct Durable {
    id: i64,
    shard: ShardId,
    local: bool,
}

/// How long making an input durable may take before the caller is answered "unavailable".
const INGEST_TIMEOUT: Duration = Duration::from_secs(3);

/// A write that makes an input durable, bounded: a caller (a carrier's webhook) is better told
/// 503 now, and retries, than left waiting on a database that does not answer.
async fn within_ingest_timeout<T, E: std::fmt::Display>(
    write: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, SubmitError> {
    tokio::time::timeout(INGEST_TIMEOUT, write)
        .await
        .map_err(|_| SubmitError::Unavailable("the database did not answer in time".into()))?
        .map_err(|e| SubmitError::Unavailable(e.to_string()))
}

/// The safety net under the notification of a posted answer: a lost one costs at most this.
const REMOTE_POLL: Duration = Duration::from_millis(50);

fn decode_reply(body: Value) -> SubmitOutcome {
    match serde_json::from_value(body) {
        Ok(StoredAnswer::Applied(v)) => SubmitOutcome::Applied(v),
        Ok(StoredAnswer::Rejected { code, message }) => {
            SubmitOutcome::Rejected(Rejected { code, message })
        }
        Err(_) => SubmitOutcome::Accepted,
    }
}

struct Root {
    rt: Arc<Runtime>,
    kinds: Kinds,
    handlers: Arc<Handlers>,
    completions: Completions,
}

struct RootState {
    manager: ActorRef<ManagerMsg>,
    manager_tx: tokio::sync::watch::Sender<Option<ActorRef<ManagerMsg>>>,
    restarts: RestartTracker,
}

impl Root {
    async fn spawn_manager(
        &self,
        myself: &ActorRef<RootMsg>,
    ) -> Result<ActorRef<ManagerMsg>, ractor::SpawnErr> {
        let (manager, _) = Actor::spawn_linked(
            None,
            ShardManager::new(self.rt.clone(), self.kinds.clone()),
            shard_manager::Args {
                handlers: self.handlers.clone(),
                completions: self.completions.clone(),
            },
            myself.get_cell(),
        )
        .await?;
        Ok(manager)
    }
}

impl Actor for Root {
    type Msg = RootMsg;
    type State = RootState;
    type Arguments = tokio::sync::watch::Sender<Option<ActorRef<ManagerMsg>>>;

    async fn pre_start(
        &self,
        myself: ActorRef<RootMsg>,
        manager_tx: Self::Arguments,
    ) -> Result<RootState, ActorProcessingErr> {
        let manager = self.spawn_manager(&myself).await?;
        let _ = manager_tx.send(Some(manager.clone()));
        Ok(RootState {
            manager,
            manager_tx,
            restarts: RestartTracker::default(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<RootMsg>,
        msg: RootMsg,
        state: &mut RootState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            RootMsg::RestartManager => {
                state.manager = self.spawn_manager(&myself).await?;
                let _ = state.manager_tx.send(Some(state.manager.clone()));
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<RootMsg>,
        evt: SupervisionEvent,
        state: &mut RootState,
    ) -> Result<(), ActorProcessingErr> {
        match evt {
            SupervisionEvent::ActorFailed(cell, err) if cell.get_id() == state.manager.get_id() => {
                tracing::error!(error = %err, "shard manager failed");
                match state
                    .restarts
                    .on_failure(&self.rt.config.restart, std::time::Instant::now())
                {
                    RestartDecision::Restart { after } => {
                        myself.send_after(after, || RootMsg::RestartManager);
                        Ok(())
                    }
                    RestartDecision::GiveUp => Err(format!("engine gave up: {err}").into()),
                }
            }
            SupervisionEvent::ActorFailed(_, err) => {
                // Any other child (the HTTP server) failing takes the engine down: a process
                // supervisor restarts it whole.
                Err(format!("engine component failed: {err}").into())
            }
            _ => Ok(()),
        }
    }
}

/// A running engine. Dropping it does not stop it; call [`Engine::shutdown`].
pub struct Engine {
    root: ActorRef<RootMsg>,
    root_task: JoinHandle<()>,
    tasks: Vec<JoinHandle<()>>,
    handle: EngineHandle,
}

impl Engine {
    /// Starts the engine on a migrated store with the given entity kinds and effect handlers.
    pub async fn start(
        store: Store,
        config: EngineConfig,
        kinds: Kinds,
        handlers: Handlers,
    ) -> Result<Self, StartError> {
        // Every time the runtime writes or compares in SQL is this clock's `now` (ADR 0037).
        let store = store.with_clock(config.clock.clone());
        let metrics = Arc::new(Metrics::new()?);
        let mut tasks = Vec::new();
        let mut committers = Vec::new();
        for _ in 0..config.commit_workers.max(1) {
            let s = store.clone();
            let m = metrics.clone();
            let lane: LaneOf<CommitRecord> = |r| Some(r.key.tenant);
            let (b, task) = Batcher::spawn_fair(config.commit_max_batch, lane, move |batch| {
                let s = s.clone();
                let m = m.clone();
                Box::pin(async move {
                    let started = std::time::Instant::now();
                    m.commit_batch.observe(batch.len() as f64);
                    let out = s.commit(&batch).await;
                    m.commit_latency.observe(started.elapsed().as_secs_f64());
                    out
                })
            });
            committers.push(b);
            tasks.push(task);
        }
        let s = store.clone();
        let lane: LaneOf<NewInput> = |i| Some(i.key.tenant);
        let (ingest, task) = Batcher::spawn_fair(
            config.commit_max_batch,
            lane,
            move |batch: Arc<[NewInput]>| {
                let s = s.clone();
                Box::pin(async move { s.insert_inbox(&batch).await })
            },
        );
        tasks.push(task);
        let s = store.clone();
        let (replies, task) = Batcher::spawn(config.commit_max_batch, move |ids: Arc<[i64]>| {
            let s = s.clone();
            Box::pin(async move { s.take_replies(&ids).await })
        });
        tasks.push(task);
        let s = store.clone();
        // A completion without a follow-up input waits in the shared lane.
        let lane: LaneOf<EffectDone> = |d| d.followup.as_ref().map(|f| f.key.tenant);
        let (completions, task) =
            Batcher::spawn_fair(256, lane, move |batch: Arc<[EffectDone]>| {
                let s = s.clone();
                Box::pin(async move { s.complete_outbox(&batch).await })
            });
        tasks.push(task);

        let s = store.clone();
        let lane: LaneOf<ActorKey> = |k| Some(k.tenant);
        let (loader, task) = Batcher::spawn_fair(
            config.commit_max_batch,
            lane,
            move |keys: Arc<[ActorKey]>| {
                let s = s.clone();
                Box::pin(async move { s.load_actors(&keys).await })
            },
        );
        tasks.push(task);

        let s = store.clone();
        let page = config.inbox_page() as i64;
        // Every host reads its stragglers once per poll interval; read together, 256 shards
        // cost one query instead of 256 (a tenth of the database's time when paced).
        let (polls, task) =
            Batcher::spawn(config.commit_max_batch, move |polls: Arc<[InboxPoll]>| {
                let s = s.clone();
                Box::pin(async move { s.pending_inboxes(&polls, page).await })
            });
        tasks.push(task);

        // The first `now` of any transition is already the database's.
        sync_clock(&store, &config.clock).await;
        tasks.push(tokio::spawn(keep_clock_synced(
            store.clone(),
            config.clock.clone(),
            config.lease_renew,
        )));

        let rt = Arc::new(Runtime::new(
            store,
            config,
            metrics,
            Batchers {
                committers,
                ingest,
                loader,
                replies,
                polls,
            },
        ));
        let root = Root {
            rt: rt.clone(),
            kinds,
            handlers: Arc::new(handlers),
            completions,
        };
        // The root publishes the current manager here, so handles follow a restarted manager.
        let (manager_tx, manager) = tokio::sync::watch::channel(None);
        let (root, root_task) = Actor::spawn(None, root, manager_tx).await?;
        Ok(Self {
            root,
            root_task,
            tasks,
            handle: EngineHandle { rt, manager },
        })
    }

    pub fn handle(&self) -> EngineHandle {
        self.handle.clone()
    }

    /// The root actor, for components that the program supervises under the engine (HTTP).
    pub fn root_cell(&self) -> ractor::ActorCell {
        self.root.get_cell()
    }

    /// Finishes in-flight transitions, releases every lease and stops.
    pub async fn shutdown(self) {
        if let Some(m) = self.handle.manager() {
            let _ = ractor::call_t!(m, ManagerMsg::Release, 15_000);
        }
        self.root
            .stop_and_wait(Some("shutdown".into()), Some(Duration::from_secs(15)))
            .await
            .ok();
        for t in self.tasks {
            t.abort();
        }
        let _ = self.root_task.await;
    }

    /// Resolves when the engine stops by itself (its supervision gave up).
    pub async fn stopped(&mut self) {
        let _ = (&mut self.root_task).await;
    }
}

/// A local clock this far off the database's is worth a warning.
const CLOCK_OFF_MS: i64 = 1_000;

/// Measures the clock's offset to the database once (one `SELECT` of its time); a failure
/// keeps the last offset.
async fn sync_clock(store: &Store, clock: &Clock) {
    let sent = clock.local_ms();
    let before = clock.offset_ms();
    match store.now_ms().await {
        Ok(db) => {
            let offset = clock.observe(sent, db, clock.local_ms());
            // Once when it goes off, and again when it moves: measured at every renewal, a
            // steady offset would otherwise fill the log (2.5 lines a second).
            if offset.abs() > CLOCK_OFF_MS && (before - offset).abs() > CLOCK_OFF_MS / 2 {
                tracing::warn!(
                    offset_ms = offset,
                    "this machine's clock is off the database's"
                );
            }
        }
        Err(e) => tracing::warn!(error = %e, "the database's clock could not be read"),
    }
}

/// Measures the offset at the lease renewal's pace for as long as the engine runs, so a wall
/// clock stepped or drifting under a running instance is followed within a second or so.
async fn keep_clock_synced(store: Store, clock: Clock, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        sync_clock(&store, &clock).await;
    }
}
