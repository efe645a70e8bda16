//! The contract between the runtime and a domain: a pure transition function per actor kind.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::key::{ActorKey, ActorKind};

/// What the runtime indexes about an actor's state, so lists and filters need no JSON parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The actor's status word (an opportunity's stage, a call's status).
    pub status: String,
    pub paused: bool,
}

/// An effect to perform outside after the commit. The runtime gives it the idempotency key
/// `(actor key, version, index)`.
#[derive(Debug, Clone, PartialEq)]
pub struct EffectRequest {
    /// Which effect handler runs it (e.g. `voice`, `sms`, `notify`).
    pub channel: String,
    pub payload: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TimerChange {
    /// Arm (or re-arm: the name is replaced) a timer that delivers `input` to this actor at
    /// `due_at`.
    Set {
        name: String,
        due_at: DateTime<Utc>,
        input: Value,
    },
    Clear {
        name: String,
    },
}

/// A human-readable history entry.
#[derive(Debug, Clone, PartialEq)]
pub struct TimelineRecord {
    /// A stable snake_case word such as `stage_changed`.
    pub kind: String,
    /// Who or what caused it: `system`, `playbook`, `operator:ana`, ...
    pub cause: String,
    pub reason: String,
    pub data: Value,
}

/// What happens to the effects of this actor's group (the actor and its children, e.g. an
/// opportunity and its calls) that are committed but not yet dispatched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxHold {
    /// Keep them in the outbox without sending them (pause).
    Hold,
    /// Send them again (resume).
    Release,
    /// Drop them: they will never be sent (opt-out, terminal stage).
    Cancel,
}

/// What a lookup key is, e.g. `phone`: a stable snake_case word chosen by the domain. The runtime
/// treats it as an opaque name, like an actor kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyType(pub &'static str);

impl KeyType {
    pub fn as_str(&self) -> &'static str {
        self.0
    }
}

/// A name under which this actor can be found (a contact's phone number), written in the commit
/// of the transition that gives it, so no crash can leave an actor that exists but cannot be
/// found. Names are kept for the actor's life; one name may lead to several actors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    pub key_type: KeyType,
    pub key: String,
}

/// Everything a transition changes besides the state itself.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Changes {
    pub effects: Vec<EffectRequest>,
    pub timers: Vec<TimerChange>,
    pub timeline: Vec<TimelineRecord>,
    /// Inputs for other actors (a child call, the parent opportunity). They are written to the
    /// inbox in the same transaction, so a message between actors is never lost or duplicated.
    pub sends: Vec<(ActorKey, Value)>,
    pub outbox: Option<OutboxHold>,
    /// Names under which this actor can be found from now on (`Store::find`).
    pub lookups: Vec<Lookup>,
    /// The answer given to whoever submitted the input and waits for it.
    pub reply: Value,
}

/// The result of applying an input.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied<S> {
    /// `None` leaves the checkpoint untouched (the input is consumed, nothing else changes).
    pub state: Option<S>,
    pub changes: Changes,
}

/// An input the domain refuses, with the reason. It is consumed without changing the actor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Rejected {
    /// A stable snake_case word (`illegal_transition`, `not_found`, ...).
    pub code: String,
    pub message: String,
}

/// One kind of durable actor.
///
/// `apply` must be deterministic given its arguments and must not do IO: the runtime may call
/// it again with the same arguments after a crash, and only the committed result counts.
pub trait Entity: Send + Sync + 'static {
    type State: Serialize + DeserializeOwned + Send + Sync + Clone + 'static;
    type Input: DeserializeOwned + Send + 'static;

    fn kind(&self) -> ActorKind;

    fn apply(
        &self,
        key: &ActorKey,
        state: Option<&Self::State>,
        input: Self::Input,
        now: DateTime<Utc>,
    ) -> Result<Applied<Self::State>, Rejected>;

    fn summary(&self, state: &Self::State) -> Summary;
}
