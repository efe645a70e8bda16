//! What the runtime's actors say to each other: every actor's message enum and the small types
//! those messages carry (inputs to apply, answers, commit results, faults).
//!
//! They live here, under every actor, so that module dependencies form a DAG: this module
//! depends only on `key`, `entity` and `store`; an actor module depends on it and on the layers
//! below (`runtime`, `committer`, `kinds`, ...), and names another actor's module only to spawn
//! that actor as its child (its constructor and `Args` stay in its own file), which follows the
//! supervision tree downwards: engine → shard manager → timer service, dispatcher, shard hosts
//! → entity actors (spawned through `kinds`). Every message going up or sideways, and every
//! reply or fault, is named from here.

use ractor::{ActorId, ActorRef, RpcReplyPort};
use serde_json::Value;

use crate::entity::{Rejected, TimerChange};
use crate::key::{ActorKey, Epoch, ShardId};
use crate::store::{Consumed, InboxRow, Inserted};

// ---------------------------------------------------------------------------------------------
// Entity actor (`entity_actor.rs`)

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

    pub fn from_row(row: InboxRow) -> Self {
        Self {
            consumed: Consumed::Inbox { id: row.id },
            input: row.input,
            reply: row.reply,
        }
    }
}

pub enum EntityMsg {
    /// Apply one input; the host sends the next only after `Done`, and answers the callers
    /// waiting for it (reply ports stay with the host, so a restart never loses one silently).
    Apply(Work),
}

pub type EntityRef = ActorRef<EntityMsg>;

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

/// What the host needs to know after a commit.
pub struct Committed {
    pub timers: Vec<TimerChange>,
    /// Inputs sent to other actors, with their inbox ids.
    pub sent: Vec<(Inserted, Value)>,
    /// Effects committed, or held ones released: the dispatcher has work in this shard.
    pub outbox_work: bool,
}

// ---------------------------------------------------------------------------------------------
// Shard host (`shard_host.rs`)

pub enum ShardHostMsg {
    /// An input for an actor of this shard.
    Deliver(ActorKey, Work, Option<Reply>),
    /// The actor finished its in-flight input (`None`: nothing was committed), with the answer
    /// it gave, kept for a caller whose delivery arrives after a poll already applied it.
    Done(ActorKey, Option<Committed>, Option<Answer>),
    /// A commit was fenced: this instance lost the shard.
    Fenced,
    /// Read inputs that arrived while nobody was told (restart, another instance).
    PollInbox(PollScope),
    /// Another instance wrote inputs for this shard (NOTIFY). Wake-ups arriving before the
    /// poll they cause share it.
    Wake,
    /// What an inbox poll read, in order; sent even when it read nothing or failed, since it
    /// also says the poll has ended (one runs at a time).
    Polled(Vec<InboxRow>),
    /// Passivate idle actors.
    Sweep,
    Respawn(ActorKey),
}

pub enum PollScope {
    /// Every waiting input: when the shard is taken over.
    Everything,
    /// Every waiting input, after a wake-up from another instance.
    Woken,
    /// Inputs older than two poll intervals: fresher ones are on their way in-process, and
    /// polling them too would apply them twice (the second commit is stale, but costs a
    /// transition).
    Stragglers,
}

// ---------------------------------------------------------------------------------------------
// Shard manager (`shard_manager.rs`)

pub enum ManagerMsg {
    /// Renew held leases and claim free ones.
    Tick,
    /// The local lease deadline set by a renewal has come: if no later renewal moved it,
    /// stop acting now rather than at the next tick.
    Deadline,
    HostFenced(ShardId, Epoch),
    /// Respawn the host of a shard after a failure, if the failed host is still the current
    /// one (the lease may have been lost and re-claimed meanwhile).
    RestartHost(ShardId, ActorId),
    /// Every host reads its stragglers now: asked together, their reads share one query.
    PollStragglers,
    /// Another instance made inputs durable for this shard (`None`: for any owned shard, after
    /// the listener lost notifications).
    Wake(Option<ShardId>),
    /// Graceful stop: finish in-flight transitions, stop hosts, release every lease.
    Release(RpcReplyPort<()>),
}

// ---------------------------------------------------------------------------------------------
// Timer service (`timers.rs`)

pub enum TimerMsg {
    /// The shards this instance now owns.
    Owned(Vec<ShardId>),
    /// A commit set or cleared timers of an actor.
    Changed(ActorKey, ShardId, Vec<TimerChange>),
    /// The armed sleep ended; stale generations are ignored.
    Wake(u64),
    Refill,
    /// Read the next slice of an overdue backlog, after the last one read.
    Backlog,
    /// A firing of this timer was applied (or found stale): it is no longer in flight.
    Over(ActorKey, String),
}

// ---------------------------------------------------------------------------------------------
// Outbox dispatcher (`outbox.rs`)

pub enum DispatcherMsg {
    Owned(Vec<(ShardId, Epoch)>),
    /// Effects were committed in this shard (or held ones released); claim them soon. Kicks
    /// within a short window share one claim, so a burst of commits costs one claim query.
    Kick(ShardId),
    /// The safety net: claim from every held shard (effects committed by a previous owner,
    /// handed back unsent, or missed kicks).
    Sweep,
    /// Claim now.
    Claim,
    /// Effects of these shards still claimed by their previous owner (see `outbox/orphans.rs`).
    Orphans(Vec<ShardId>),
    /// The periodic orphan check of every held shard: an effect of ours whose task was lost (a
    /// panic in a handler, a dropped future) is recorded like one a stopped instance left.
    OrphanSweep,
    /// A spawned effect finished; `again` names its shard when it went back to pending.
    Finished {
        again: Option<ShardId>,
    },
}

// ---------------------------------------------------------------------------------------------
// Root actor (`engine.rs`)

pub enum RootMsg {
    RestartManager,
}
