//! SQLite rows as tuples of text and integers, and their conversions into the store's row types.

use uuid::Uuid;

use super::types::*;
use super::StoreError;
use crate::key::{ShardId, TenantId};

/// id, tenant, kind, actor, group, shard, input, reply.
pub(super) type InboxTuple = (i64, String, String, String, String, i32, String, bool);

pub(super) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub(super) fn uuid(text: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(text).map_err(|e| StoreError::Corrupt(format!("uuid {text:?}: {e}")))
}

pub(super) fn row_key(t: &str, kind: String, id: &str, grp: &str) -> Result<RowKey, StoreError> {
    Ok(RowKey {
        tenant: TenantId(uuid(t)?),
        kind,
        id: uuid(id)?,
        group: uuid(grp)?,
    })
}

pub(super) type ActorTuple = (
    String,
    String,
    String,
    String,
    i32,
    i64,
    String,
    String,
    bool,
    i64,
    i64,
);
pub(super) const ACTOR_COLS: &str =
    "tenant_id, kind, id, grp, shard, version, state, status, paused, created_at, updated_at";

pub(super) fn actor_row(t: ActorTuple) -> Result<ActorRow, StoreError> {
    Ok(ActorRow {
        key: row_key(&t.0, t.1, &t.2, &t.3)?,
        shard: ShardId(t.4),
        version: t.5,
        state: parse_json(&t.6)?,
        status: t.7,
        paused: t.8,
        created_at_ms: t.9,
        updated_at_ms: t.10,
    })
}

pub(super) type DeadLetterTuple = (i64, String, String, String, String, String, i32, i64);
pub(super) type TimerTuple = (String, String, String, String, i32, String, i64, String);
pub(super) const TIMER_COLS: &str = "tenant_id, kind, actor_id, grp, shard, name, due_at, input";

pub(super) fn timer_row(t: TimerTuple) -> Result<TimerRow, StoreError> {
    Ok(TimerRow {
        key: row_key(&t.0, t.1, &t.2, &t.3)?,
        shard: ShardId(t.4),
        name: t.5,
        due_at_ms: t.6,
        input: parse_json(&t.7)?,
    })
}

pub(super) type OutboxTuple = (
    i64,
    String,
    String,
    String,
    String,
    i32,
    String,
    String,
    String,
    String,
    i32,
    i64,
);
pub(super) const OUTBOX_COLS: &str = "id, tenant_id, kind, actor_id, grp, shard, idem_key, channel, payload, status, attempts, created_at";

pub(super) fn outbox_row(t: OutboxTuple) -> Result<OutboxRow, StoreError> {
    Ok(OutboxRow {
        id: t.0,
        key: row_key(&t.1, t.2, &t.3, &t.4)?,
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
