//! The generic durable actor runtime under NeuronX.
//!
//! It knows nothing about sales. An [`Entity`] supplies a pure transition function; the runtime
//! hosts one supervised ractor actor per key, makes every input durable before it is
//! acknowledged, commits each transition (checkpoint, consumed input, outbox effects, timers,
//! timeline, messages to other actors) in one transaction fenced by the shard's epoch, fires
//! durable timers, dispatches the outbox after commit and restarts failed actors from their last
//! checkpoint.
//!
//! Layout: `key` (identities and sharding), `store` (the two SQL backends), `entity` (the
//! contract a domain implements), `protocol` (every actor's messages and the types they carry),
//! `entity_actor` (the host actor), `shard_host` (directory, delivery, restarts, dead letters,
//! passivation), `shard_manager` (leases), `timers`, `outbox`, `committer` (group commit),
//! `restart` (pure restart policy), `engine` (the root supervisor and the handle the rest of
//! the program talks to). Modules depend downwards only: an actor module names another actor's
//! module only to spawn it as its child, and every message, reply or fault it exchanges with
//! the others comes from `protocol`.

pub mod clock;
pub mod committer;
pub mod engine;
pub mod entity;
pub mod entity_actor;
pub mod key;
pub mod kinds;
pub mod lanes;
pub mod listener;
pub mod membership;
pub mod metrics;
pub mod outbox;
pub mod protocol;
pub mod restart;
pub mod runtime;
pub mod shard_host;
pub mod shard_manager;
pub mod store;
pub mod timers;

pub use clock::Clock;
pub use engine::{
    Engine, EngineConfig, EngineHandle, RetryOutcome, Staged, StartError, SubmitError,
    SubmitOutcome,
};
pub use entity::{
    Applied, Changes, EffectRequest, Entity, KeyType, Lookup, OutboxHold, Rejected, Summary,
    TimelineRecord, TimerChange,
};
pub use key::{ActorKey, ActorKind, Epoch, ShardId, TenantId};
pub use kinds::Kinds;
pub use outbox::{
    EffectCall, EffectFuture, EffectHandler, EffectOutcome, EffectStatus, Handlers, LeaseCheck,
    Standing,
};
pub use store::{InTx, Store, StoreError};
