//! PostgreSQL rows as tuples, and their conversions into the store's row types.

use uuid::Uuid;

use super::types::*;
use super::StoreError;
use crate::key::{ShardId, TenantId};

pub(super) fn row_key(tenant: Uuid, kind: String, id: Uuid, group: Uuid) -> RowKey {
    RowKey {
        tenant: TenantId(tenant),
        kind,
        id,
        group,
    }
}

/// Poll ordinal, then id, tenant, kind, actor, group, shard, input, reply.
pub(super) type PolledTuple = (i64, i64, Uuid, String, Uuid, Uuid, i32, String, bool);

pub(super) type ActorTuple = (
    Uuid,
    String,
    Uuid,
    Uuid,
    i32,
    i64,
    String,
    String,
    bool,
    i64,
    i64,
);

pub(super) fn actor_row(t: ActorTuple) -> Result<ActorRow, StoreError> {
    Ok(ActorRow {
        key: row_key(t.0, t.1, t.2, t.3),
        shard: ShardId(t.4),
        version: t.5,
        state: parse_json(&t.6)?,
        status: t.7,
        paused: t.8,
        created_at_ms: t.9,
        updated_at_ms: t.10,
    })
}

pub(super) type DeadLetterTuple = (i64, Uuid, String, Uuid, String, String, i32, i64);
pub(super) type TimerTuple = (Uuid, String, Uuid, Uuid, i32, String, i64, String);

pub(super) fn timer_row(t: TimerTuple) -> Result<TimerRow, StoreError> {
    Ok(TimerRow {
        key: row_key(t.0, t.1, t.2, t.3),
        shard: ShardId(t.4),
        name: t.5,
        due_at_ms: t.6,
        input: parse_json(&t.7)?,
    })
}

pub(super) const OUTBOX_COLS: &str = "id, tenant_id, kind, actor_id, grp, shard, idem_key, channel, payload::text, status, attempts, created_at";
pub(super) const OUTBOX_COLS_O: &str = "o.id, o.tenant_id, o.kind, o.actor_id, o.grp, o.shard, o.idem_key, o.channel, o.payload::text, o.status, o.attempts, o.created_at";
pub(super) type OutboxTuple = (
    i64,
    Uuid,
    String,
    Uuid,
    Uuid,
    i32,
    String,
    String,
    String,
    String,
    i32,
    i64,
);

pub(super) fn outbox_row(t: OutboxTuple) -> Result<OutboxRow, StoreError> {
    Ok(OutboxRow {
        id: t.0,
        key: row_key(t.1, t.2, t.3, t.4),
        shard: ShardId(t.5),
        idem_key: t.6,
        channel: t.7,
        payload: parse_json(&t.8)?,
        status: OutboxStatus::parse(&t.9)
            .ok_or_else(|| StoreError::Corrupt(format!("outbox status {:?}", t.9)))?,
        attempts: t.10,
        created_at_ms: t.11,
    })
}
