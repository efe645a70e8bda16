//! Rows as both backends read them, and their conversions into the store's row types. UUIDs and
//! JSON come back as `CAST(.. AS TEXT)` (PostgreSQL's UUID and JSONB, SQLite's TEXT), so one
//! tuple type and one conversion serve both.

use uuid::Uuid;

use super::types::*;
use super::StoreError;
use crate::key::{ShardId, TenantId};

/// The process clock, for SQLite (one engine, one machine); PostgreSQL reads the database's.
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
pub(super) const ACTOR_COLS: &str = "CAST(tenant_id AS TEXT), kind, CAST(id AS TEXT),
    CAST(grp AS TEXT), shard, version, CAST(state AS TEXT), status, paused, created_at, updated_at";

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

/// id, tenant, kind, actor, group, shard, input, reply.
pub(super) type InboxTuple = (i64, String, String, String, String, i32, String, bool);
pub(super) const INBOX_COLS: &str = "id, CAST(tenant_id AS TEXT), kind, CAST(actor_id AS TEXT),
    CAST(grp AS TEXT), shard, CAST(input AS TEXT), reply";

pub(super) fn inbox_row(t: InboxTuple) -> Result<InboxRow, StoreError> {
    Ok(InboxRow {
        id: t.0,
        key: row_key(&t.1, t.2, &t.3, &t.4)?,
        shard: ShardId(t.5),
        input: parse_json(&t.6)?,
        reply: t.7,
    })
}

pub(super) type TimerTuple = (String, String, String, String, i32, String, i64, String);
pub(super) const TIMER_COLS: &str = "CAST(tenant_id AS TEXT), kind, CAST(actor_id AS TEXT),
    CAST(grp AS TEXT), shard, name, due_at, CAST(input AS TEXT)";

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
pub(super) const OUTBOX_COLS: &str = "id, CAST(tenant_id AS TEXT), kind, CAST(actor_id AS TEXT),
    CAST(grp AS TEXT), shard, idem_key, channel, CAST(payload AS TEXT), status, attempts,
    created_at";

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

/// id, version, at, entry kind, cause, reason, data.
pub(super) type TimelineTuple = (i64, i64, i64, String, String, String, String);

pub(super) fn timeline_row(t: TimelineTuple) -> Result<TimelineRow, StoreError> {
    Ok(TimelineRow {
        id: t.0,
        version: t.1,
        at_ms: t.2,
        kind: t.3,
        cause: t.4,
        reason: t.5,
        data: parse_json(&t.6)?,
    })
}

/// id, tenant, kind, actor, input, error, attempts, created_at.
pub(super) type DeadLetterTuple = (i64, String, String, String, String, String, i32, i64);

pub(super) fn dead_letter_row(t: DeadLetterTuple) -> Result<DeadLetterRow, StoreError> {
    Ok(DeadLetterRow {
        id: t.0,
        // `dead_letters` keeps no group: the actor id stands in for it.
        key: row_key(&t.1, t.2, &t.3, &t.3)?,
        input: parse_json(&t.4)?,
        error: t.5,
        attempts: t.6,
        created_at_ms: t.7,
    })
}
