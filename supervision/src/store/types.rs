//! Rows and batch items exchanged with the store.

use serde_json::Value;
use uuid::Uuid;

use crate::entity::{Lookup, OutboxHold, TimelineRecord};
use crate::key::{ActorKey, Epoch, ShardId, TenantId};

/// The `(tenant, kind, id, group)` of a row, with the kind as stored text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RowKey {
    pub tenant: TenantId,
    pub kind: String,
    pub id: Uuid,
    pub group: Uuid,
}

impl From<&ActorKey> for RowKey {
    fn from(key: &ActorKey) -> Self {
        Self {
            tenant: key.tenant,
            kind: key.kind.as_str().to_owned(),
            id: key.id,
            group: key.group,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub shard: ShardId,
    pub epoch: Epoch,
    pub lease_until_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardRow {
    pub shard: ShardId,
    pub owner: Option<String>,
    pub epoch: Epoch,
    pub lease_until_ms: i64,
}

#[derive(Debug, Clone)]
pub struct ActorRow {
    pub key: RowKey,
    pub shard: ShardId,
    pub version: i64,
    pub state: Value,
    pub status: String,
    pub paused: bool,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// Where the input a transition consumes is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Consumed {
    Inbox {
        id: i64,
    },
    /// A timer firing; stale when the timer was re-set or cleared since it was read.
    Timer {
        name: String,
        due_at_ms: i64,
    },
}

#[derive(Debug, Clone)]
pub struct CheckpointWrite {
    /// The version the actor loaded; 0 for an actor that has no row yet.
    pub expected_version: i64,
    pub state: Value,
    pub status: String,
    pub paused: bool,
}

#[derive(Debug, Clone)]
pub struct EffectWrite {
    pub idem_key: String,
    pub channel: String,
    pub payload: Value,
}

#[derive(Debug, Clone)]
pub enum TimerWrite {
    Set {
        name: String,
        due_at_ms: i64,
        input: Value,
    },
    Clear {
        name: String,
    },
}

/// Everything one transition writes.
#[derive(Debug, Clone)]
pub struct CommitRecord {
    pub key: ActorKey,
    pub shard: ShardId,
    pub epoch: Epoch,
    pub now_ms: i64,
    pub consumed: Consumed,
    pub checkpoint: Option<CheckpointWrite>,
    pub effects: Vec<EffectWrite>,
    pub timers: Vec<TimerWrite>,
    pub timeline: Vec<TimelineRecord>,
    pub sends: Vec<NewInput>,
    pub outbox: Option<OutboxHold>,
    /// Names under which the actor can be found, written with the transition.
    pub lookups: Vec<Lookup>,
    /// The answer for a caller waiting on another instance (JSON), written to `replies` with
    /// the transition.
    pub reply: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitOutcome {
    /// Committed. Carries the ids of the inputs sent to other actors, in order.
    Committed { sent: Vec<Inserted> },
    /// The shard's epoch moved on: another instance owns it.
    Fenced,
    /// The input was already consumed, or the timer was re-set or cleared.
    Stale,
    /// The checkpoint moved on under this writer.
    VersionConflict,
    /// Not written: the store failed after other records of the batch had committed. Try the
    /// input again (it is still in the inbox or the timer table).
    Unavailable,
}

/// An input to make durable.
#[derive(Debug, Clone)]
pub struct NewInput {
    pub key: ActorKey,
    pub shard: ShardId,
    /// Globally unique; a second input with the same key is a duplicate and is dropped.
    pub dedupe_key: String,
    /// When false the key is only an identifier (randomly generated) and is not remembered.
    pub remember: bool,
    pub input: Value,
    /// The caller waits on another instance: the owner stores the answer in `replies`.
    pub reply: bool,
    /// The shard is owned elsewhere: wake its owner (PostgreSQL NOTIFY) rather than wait for
    /// the safety-net poll.
    pub notify: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inserted {
    New {
        id: i64,
        key: ActorKey,
        shard: ShardId,
    },
    Duplicate,
}

/// One shard's safety-net read: its inputs written before `created_before_ms`.
#[derive(Debug, Clone, Copy)]
pub struct InboxPoll {
    pub shard: ShardId,
    pub created_before_ms: i64,
}

#[derive(Debug, Clone)]
pub struct InboxRow {
    pub id: i64,
    pub key: RowKey,
    pub shard: ShardId,
    pub input: Value,
    /// A caller on another instance waits for the answer.
    pub reply: bool,
}

/// One registered engine instance, as its heartbeats left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceRow {
    pub id: String,
    pub started_at_ms: i64,
    pub heartbeat_at_ms: i64,
    /// It rate-limits sends through Redis, shared with the other instances.
    pub shared_limits: bool,
}

/// As both backends read it: id, started_at, heartbeat_at, shared_limits.
impl From<(String, i64, i64, bool)> for InstanceRow {
    fn from((id, started, beat, shared): (String, i64, i64, bool)) -> Self {
        Self {
            id,
            started_at_ms: started,
            heartbeat_at_ms: beat,
            shared_limits: shared,
        }
    }
}

/// The instances seen at one instant of the database clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub now_ms: i64,
    pub instances: Vec<InstanceRow>,
}

impl Membership {
    /// Those whose last heartbeat is younger than `ttl`, sorted by id.
    pub fn live(&self, ttl: std::time::Duration) -> Vec<&InstanceRow> {
        let since = self.now_ms - ttl.as_millis() as i64;
        let mut live: Vec<&InstanceRow> = self
            .instances
            .iter()
            .filter(|i| i.heartbeat_at_ms >= since)
            .collect();
        live.sort_by(|a, b| a.id.cmp(&b.id));
        live
    }
}

#[derive(Debug, Clone)]
pub struct TimerRow {
    pub key: RowKey,
    pub shard: ShardId,
    pub name: String,
    pub due_at_ms: i64,
    pub input: Value,
}

/// A place in the order timers are read in (due time, then the primary key, so that timers
/// due at one instant have an order too): a read given it starts after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimerCursor {
    pub due_at_ms: i64,
    pub tenant: TenantId,
    pub kind: String,
    pub id: Uuid,
    pub name: String,
}

impl TimerRow {
    /// The place just after this row.
    pub fn cursor(&self) -> TimerCursor {
        TimerCursor {
            due_at_ms: self.due_at_ms,
            tenant: self.key.tenant,
            kind: self.key.kind.clone(),
            id: self.key.id,
            name: self.name.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxStatus {
    Pending,
    Held,
    Inflight,
    Done,
    /// Sent, but whether the provider acted is not known; never sent again blindly.
    Unknown,
    Canceled,
}

impl OutboxStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxStatus::Pending => "pending",
            OutboxStatus::Held => "held",
            OutboxStatus::Inflight => "inflight",
            OutboxStatus::Done => "done",
            OutboxStatus::Unknown => "unknown",
            OutboxStatus::Canceled => "canceled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => OutboxStatus::Pending,
            "held" => OutboxStatus::Held,
            "inflight" => OutboxStatus::Inflight,
            "done" => OutboxStatus::Done,
            "unknown" => OutboxStatus::Unknown,
            "canceled" => OutboxStatus::Canceled,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: i64,
    pub key: RowKey,
    pub shard: ShardId,
    pub idem_key: String,
    pub channel: String,
    pub payload: Value,
    pub status: OutboxStatus,
    pub attempts: i32,
    pub created_at_ms: i64,
}

/// An effect as a reader sees it: where it stands and what its handler recorded.
#[derive(Debug, Clone)]
pub struct EffectRecord {
    pub idem_key: String,
    pub channel: String,
    pub status: OutboxStatus,
    /// The handler's result (a provider's id, an error); `None` until one is recorded.
    pub result: Option<serde_json::Value>,
}

/// The end of one effect attempt.
#[derive(Debug, Clone)]
pub struct EffectDone {
    pub outbox_id: i64,
    /// The claim this completes: the row's `attempts` as its claim returned it (each claim
    /// counts one more). The write lands only while the row is still `inflight` under that
    /// claim, so a late completion cannot undo what the shard's next holder recorded.
    pub claim: i32,
    pub status: OutboxStatus,
    pub result: Value,
    pub now_ms: i64,
    /// The input that carries the result back to an actor.
    pub followup: Option<NewInput>,
}

/// What became of one effect completion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completion {
    /// Written, with what became of its follow-up input (`None` when it carried none).
    Recorded(Option<Inserted>),
    /// The row was no longer `inflight` under this claim (recorded `unknown` by the shard's
    /// next holder, or finished already): nothing was written, the follow-up included.
    Refused,
}

#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub key: ActorKey,
    pub shard: ShardId,
    pub epoch: Epoch,
    pub consumed: Consumed,
    pub input: Value,
    pub error: String,
    pub attempts: i32,
    pub now_ms: i64,
}

#[derive(Debug, Clone)]
pub struct DeadLetterRow {
    pub id: i64,
    pub key: RowKey,
    pub input: Value,
    pub error: String,
    pub attempts: i32,
    pub created_at_ms: i64,
}

#[derive(Debug, Clone)]
pub struct TimelineRow {
    pub id: i64,
    pub version: i64,
    pub at_ms: i64,
    pub kind: String,
    pub cause: String,
    pub reason: String,
    pub data: Value,
}

/// A page of one tenant's actors of one kind, oldest first.
#[derive(Debug, Clone)]
pub struct ListQuery {
    pub tenant: TenantId,
    pub kind: String,
    pub status: Option<String>,
    pub paused: Option<bool>,
    /// Resume after this `(created_at_ms, id)`.
    pub after: Option<(i64, Uuid)>,
    pub limit: i64,
}

pub(crate) fn parse_json(text: &str) -> Result<Value, super::StoreError> {
    serde_json::from_str(text).map_err(|e| super::StoreError::Corrupt(e.to_string()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Backlog {
    pub inbox: i64,
    pub outbox_open: i64,
    pub timers_due: i64,
}

/// Answers found for `ids` (as `(id, json)` rows in any order), one slot per id.
pub(crate) fn replies_in_order(
    ids: &[i64],
    rows: Vec<(i64, String)>,
) -> Result<Vec<Option<Value>>, super::StoreError> {
    let mut found: std::collections::HashMap<i64, Value> = std::collections::HashMap::new();
    for (id, body) in rows {
        found.insert(id, parse_json(&body)?);
    }
    Ok(ids.iter().map(|id| found.remove(id)).collect())
}
