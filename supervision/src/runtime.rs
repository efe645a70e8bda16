//! What every runtime actor shares: the store, the group committers, metrics and settings.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::clock::Clock;
use crate::committer::{BatchError, Batcher};
use ractor::ActorRef;
use tokio::sync::watch;

use crate::key::{ActorKey, Epoch, ShardId};
use crate::metrics::Metrics;
use crate::protocol::ShardHostMsg;
use crate::restart::RestartPolicy;
use crate::store::{
    ActorRow, CommitOutcome, CommitRecord, InboxPoll, InboxRow, Inserted, NewInput, Store,
};

/// Engine settings. Durations are chosen for one machine; see the configuration reference.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub instance_id: String,
    pub shard_count: u32,
    pub lease_ttl: Duration,
    pub lease_renew: Duration,
    /// Idle actors leave memory after this; their state and timers stay in the store.
    pub passivate_after: Duration,
    /// Actors in memory at most on this instance: past it, the least recently used idle ones
    /// passivate early, so a burst of leads costs reloads rather than memory.
    pub max_resident_actors: usize,
    pub commit_max_batch: usize,
    pub commit_workers: usize,
    /// Timers due within this window are held in memory; later ones are read when they near.
    pub timer_horizon: Duration,
    pub outbox_batch: i64,
    pub effect_concurrency: usize,
    /// An effect still claimed this long after its shard came to this instance was left by
    /// the previous owner: it is recorded unknown. Longer than any effect runs.
    pub orphan_after: Duration,
    /// The safety-net poll of the inbox and outbox; wake-ups normally come in-process.
    pub poll_interval: Duration,
    pub restart: RestartPolicy,
    /// Failures of one input before it goes to the dead letters.
    pub max_strikes: u32,
    /// How long `submit` waits for the transition before answering "accepted".
    pub reply_timeout: Duration,
    /// How long a dedupe key is remembered (a webhook retried later than this is new input).
    pub dedupe_retention: Duration,
    /// The only engine on its database (embedded SQLite, guarded by a file lock): it claims
    /// every shard unconditionally at start and keeps them when a renewal is slow.
    pub force_claim: bool,
    /// Sends are rate-limited through Redis, shared with other instances (recorded with this
    /// instance's heartbeats, so an instance that limits alone is visible to the others).
    pub shared_limits: bool,
    /// Every `now` of the runtime: the database's time (`Clock::system`), or a test's.
    pub clock: Clock,
}

impl EngineConfig {
    /// Rows one shard's inbox read takes at a time: a shard's share of the resident cap (97
    /// for 25,000 over 256 shards), between 16 and 1,000. A host queues in memory the rows its
    /// actors are not running yet, so what every host holds after a takeover of a large
    /// backlog is about the resident cap, not 256 pages of a thousand parsed inputs (issue #13,
    /// item 6); a host reads its next page when it has worked through this one.
    pub fn inbox_page(&self) -> usize {
        let share = self.max_resident_actors / self.shard_count.max(1) as usize;
        share.clamp(16, 1000)
    }

    /// Work that may wait in memory for room, at most: half the resident cap. Past it the
    /// hosts are behind (`Runtime::overloaded`), and timer firings in flight stop there.
    pub fn waiting_bound(&self) -> usize {
        (self.max_resident_actors / 2).max(1)
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            instance_id: "neuronx".into(),
            shard_count: 256,
            lease_ttl: Duration::from_secs(3),
            lease_renew: Duration::from_secs(1),
            passivate_after: Duration::from_secs(30),
            max_resident_actors: 25_000,
            commit_max_batch: 500,
            commit_workers: 2,
            timer_horizon: Duration::from_secs(60),
            outbox_batch: 256,
            effect_concurrency: 256,
            orphan_after: Duration::from_secs(120),
            poll_interval: Duration::from_secs(1),
            restart: RestartPolicy::default(),
            max_strikes: 3,
            reply_timeout: Duration::from_secs(5),
            dedupe_retention: Duration::from_secs(7 * 86_400),
            force_claim: false,
            shared_limits: false,
            clock: Clock::system(),
        }
    }
}

/// How long this instance may act on its shards, as the shard manager last set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActWindow {
    /// No lease held (not started yet, stopped, or every lease lost).
    Never,
    /// Until the leases may have run out unrenewed.
    Until(Instant),
    /// The only engine on its database (embedded SQLite behind its file lock): nobody else can
    /// take its shards, so a slow renewal does not end its right to act.
    Always,
}

impl ActWindow {
    pub fn open(self) -> bool {
        match self {
            ActWindow::Never => false,
            ActWindow::Until(until) => Instant::now() < until,
            ActWindow::Always => true,
        }
    }
}

/// One entry of the published directory.
#[derive(Clone)]
pub(crate) struct HeldShard {
    pub shard: ShardId,
    pub epoch: Epoch,
    pub host: ActorRef<ShardHostMsg>,
}

/// The group readers and writers the engine starts for its runtime.
pub(crate) struct Batchers {
    pub committers: Vec<Batcher<CommitRecord, CommitOutcome>>,
    pub ingest: Batcher<NewInput, Inserted>,
    pub loader: Batcher<ActorKey, Option<ActorRow>>,
    /// Reads of answers from other instances: many callers waiting at once share one query.
    pub replies: Batcher<i64, Option<serde_json::Value>>,
    pub polls: Batcher<InboxPoll, Vec<InboxRow>>,
}

pub struct Runtime {
    pub store: Store,
    pub config: EngineConfig,
    pub metrics: Arc<Metrics>,
    committers: Vec<Batcher<CommitRecord, CommitOutcome>>,
    ingest: Batcher<NewInput, Inserted>,
    loader: Batcher<ActorKey, Option<ActorRow>>,
    /// Reads of answers from other instances: many callers waiting at once share one query.
    replies: Batcher<i64, Option<serde_json::Value>>,
    polls: Batcher<InboxPoll, Vec<InboxRow>>,
    /// The shards held now with their hosts, sorted by shard, as the shard manager last
    /// published them. The manager owns the directory; everyone else reads this snapshot, so
    /// a delivery never waits in the manager's mailbox behind its lease renewals.
    directory: watch::Sender<Vec<HeldShard>>,
    /// Past this instant the leases may have run out (no renewal succeeded in time): nothing
    /// may be sent. Set by the shard manager after each renewal.
    act_window: watch::Sender<ActWindow>,
    /// Woken when another instance may have posted an answer a caller here waits for.
    pub(crate) reply_posted: Arc<tokio::sync::Notify>,
}

impl Runtime {
    pub(crate) fn new(
        store: Store,
        config: EngineConfig,
        metrics: Arc<Metrics>,
        batchers: Batchers,
    ) -> Self {
        Self {
            store,
            config,
            metrics,
            committers: batchers.committers,
            ingest: batchers.ingest,
            loader: batchers.loader,
            replies: batchers.replies,
            polls: batchers.polls,
            directory: watch::Sender::new(Vec::new()),
            act_window: watch::Sender::new(ActWindow::Never),
            reply_posted: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// Inputs of one shard written before `created_before_ms`, read together with other
    /// hosts' polls.
    pub async fn poll_inbox(
        &self,
        shard: ShardId,
        created_before_ms: i64,
    ) -> Result<Vec<InboxRow>, BatchError> {
        self.polls
            .submit(InboxPoll {
                shard,
                created_before_ms,
            })
            .await
    }

    /// The answer to inbox input `id` if its owner (on another instance) has applied it.
    pub async fn take_reply(&self, id: i64) -> Result<Option<serde_json::Value>, BatchError> {
        self.replies.submit(id).await
    }

    /// Whether this instance holds `shard` now.
    pub fn owns(&self, shard: ShardId) -> bool {
        self.directory
            .borrow()
            .binary_search_by_key(&shard, |h| h.shard)
            .is_ok()
    }

    /// More actors wait for room than half the instance's resident cap: the hosts are behind.
    /// New work that can wait in the store does (effect claims, timer firings) until they
    /// catch up, instead of queueing in memory behind admission (issue #13, item 6: a
    /// takeover's backlog held 90,000 waiting actors and 1.4 GB before). Read off the gauge
    /// every host keeps exact as actors join and leave the admission queue.
    pub(crate) fn overloaded(&self) -> bool {
        let waiting = usize::try_from(self.metrics.awaiting_activation.get()).unwrap_or(0);
        waiting >= self.config.waiting_bound()
    }

    /// This instance's share of `max_resident_actors` for each shard it holds.
    pub(crate) fn resident_budget(&self) -> usize {
        let held = self.directory.borrow().len().max(1);
        (self.config.max_resident_actors / held).max(1)
    }

    pub fn owned(&self) -> Vec<(ShardId, Epoch)> {
        self.directory
            .borrow()
            .iter()
            .map(|h| (h.shard, h.epoch))
            .collect()
    }

    /// The host of `shard` if this instance holds it.
    pub(crate) fn host_of(&self, shard: ShardId) -> Option<ActorRef<ShardHostMsg>> {
        let directory = self.directory.borrow();
        directory
            .binary_search_by_key(&shard, |h| h.shard)
            .ok()
            .and_then(|i| directory.get(i))
            .map(|h| h.host.clone())
    }

    /// Hands `msg` to the host of `shard`; when this instance does not hold it the input is
    /// already durable and its owner reads it from the store.
    pub(crate) fn route(&self, shard: ShardId, msg: ShardHostMsg) {
        if let Some(host) = self.host_of(shard) {
            let _ = host.cast(msg);
        }
    }

    pub(crate) fn publish_directory(&self, mut held: Vec<HeldShard>) {
        held.sort_by_key(|h| h.shard);
        self.directory.send_replace(held);
    }

    /// False once the leases may have expired unrenewed (a frozen or cut-off instance): the
    /// dispatcher sends nothing then, even effects it claimed before.
    pub fn may_act(&self) -> bool {
        self.act_window.borrow().open()
    }

    pub(crate) fn lease_watch(&self) -> watch::Receiver<ActWindow> {
        self.act_window.subscribe()
    }

    pub(crate) fn set_act_window(&self, window: ActWindow) {
        self.act_window.send_replace(window);
    }

    /// Loads one checkpoint as part of a group read: activations come in bursts.
    pub async fn load(&self, key: ActorKey) -> Result<Option<ActorRow>, BatchError> {
        self.loader.submit(key).await
    }

    /// Commits one transition as part of a group commit on the shard's committer.
    pub async fn commit(&self, record: CommitRecord) -> Result<CommitOutcome, BatchError> {
        let n = self.committers.len().max(1);
        let idx = record.shard.0.unsigned_abs() as usize % n;
        let committer = self.committers.get(idx).ok_or(BatchError::Closed)?;
        committer.submit(record).await
    }

    /// Makes one input durable as part of a group insert.
    pub async fn ingest(&self, input: NewInput) -> Result<Inserted, BatchError> {
        self.ingest.submit(input).await
    }

    pub fn shard_of(&self, key: &ActorKey) -> ShardId {
        key.shard(self.config.shard_count)
    }
}
