//! SQLite reads for the API, the console and the benchmarks: nothing here writes.

use super::sqlite::SqliteStore;
use super::sqlite_rows::*;
use uuid::Uuid;

use super::types::*;
use super::StoreError;
use crate::key::TenantId;

impl SqliteStore {
    pub async fn get_actor(
        &self,
        tenant: TenantId,
        kind: &str,
        id: Uuid,
    ) -> Result<Option<ActorRow>, StoreError> {
        let row: Option<ActorTuple> = sqlx::query_as(&format!(
            "SELECT {ACTOR_COLS} FROM actors WHERE tenant_id = ? AND kind = ? AND id = ?"
        ))
        .bind(tenant.0.to_string())
        .bind(kind)
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(actor_row).transpose()
    }

    pub async fn actor_status(
        &self,
        tenant: TenantId,
        kind: &str,
        id: Uuid,
    ) -> Result<Option<(String, bool)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT status, paused FROM actors WHERE tenant_id = ? AND kind = ? AND id = ?",
        )
        .bind(tenant.0.to_string())
        .bind(kind)
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?)
    }

    pub async fn actor_exists(
        &self,
        tenant: TenantId,
        kind: &str,
        id: Uuid,
    ) -> Result<bool, StoreError> {
        Ok(sqlx::query_scalar::<_, bool>(
            "SELECT EXISTS (SELECT 1 FROM actors WHERE tenant_id = ? AND kind = ? AND id = ?)",
        )
        .bind(tenant.0.to_string())
        .bind(kind)
        .bind(id.to_string())
        .fetch_one(&self.pool)
        .await?)
    }

    pub async fn list_actors(&self, q: &ListQuery) -> Result<Vec<ActorRow>, StoreError> {
        let (after_at, after_id) = q.after.unwrap_or((i64::MIN, Uuid::nil()));
        let rows: Vec<ActorTuple> = sqlx::query_as(&format!(
            "SELECT {ACTOR_COLS} FROM actors
             WHERE tenant_id = ?1 AND kind = ?2
               AND (?3 IS NULL OR status = ?3)
               AND (?4 IS NULL OR paused = ?4)
               AND (created_at > ?5 OR (created_at = ?5 AND id > ?6))
             ORDER BY created_at, id LIMIT ?7"
        ))
        .bind(q.tenant.0.to_string())
        .bind(&q.kind)
        .bind(&q.status)
        .bind(q.paused)
        .bind(after_at)
        .bind(after_id.to_string())
        .bind(q.limit)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(actor_row).collect()
    }

    pub async fn timers_of(
        &self,
        tenant: TenantId,
        kind: &str,
        id: Uuid,
    ) -> Result<Vec<TimerRow>, StoreError> {
        let rows: Vec<TimerTuple> = sqlx::query_as(&format!(
            "SELECT {TIMER_COLS} FROM timers WHERE tenant_id = ? AND kind = ? AND actor_id = ? ORDER BY due_at, name"
        ))
        .bind(tenant.0.to_string())
        .bind(kind)
        .bind(id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(timer_row).collect()
    }

    pub async fn timeline(
        &self,
        tenant: TenantId,
        kind: &str,
        id: Uuid,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<TimelineRow>, StoreError> {
        let rows: Vec<(i64, i64, i64, String, String, String, String)> = sqlx::query_as(
            "SELECT id, version, at, entry_kind, cause, reason, data FROM timeline
             WHERE tenant_id = ? AND kind = ? AND actor_id = ? AND id > ? ORDER BY id LIMIT ?",
        )
        .bind(tenant.0.to_string())
        .bind(kind)
        .bind(id.to_string())
        .bind(after_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(id, version, at, kind, cause, reason, data)| {
                Ok(TimelineRow {
                    id,
                    version,
                    at_ms: at,
                    kind,
                    cause,
                    reason,
                    data: parse_json(&data)?,
                })
            })
            .collect()
    }

    pub async fn dead_letters(
        &self,
        tenant: TenantId,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<DeadLetterRow>, StoreError> {
        let rows: Vec<DeadLetterTuple> = sqlx::query_as(
            "SELECT id, tenant_id, kind, actor_id, input, error, attempts, created_at
             FROM dead_letters WHERE tenant_id = ? AND id > ? ORDER BY id LIMIT ?",
        )
        .bind(tenant.0.to_string())
        .bind(after_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(id, t, kind, actor, input, error, attempts, at)| {
                Ok(DeadLetterRow {
                    id,
                    key: row_key(&t, kind, &actor, &actor)?,
                    input: parse_json(&input)?,
                    error,
                    attempts,
                    created_at_ms: at,
                })
            })
            .collect()
    }

    pub async fn outbox_of(
        &self,
        tenant: TenantId,
        kind: &str,
        id: Uuid,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let rows: Vec<OutboxTuple> = sqlx::query_as(&format!(
            "SELECT {OUTBOX_COLS} FROM outbox WHERE tenant_id = ? AND kind = ? AND actor_id = ? ORDER BY id"
        ))
        .bind(tenant.0.to_string())
        .bind(kind)
        .bind(id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(outbox_row).collect()
    }

    pub async fn count_actors(&self, tenant: TenantId, kind: &str) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT count(*) FROM actors WHERE tenant_id = ? AND kind = ?")
                .bind(tenant.0.to_string())
                .bind(kind)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    pub async fn backlog(&self, before_ms: i64) -> Result<Backlog, StoreError> {
        let (inbox, outbox_open, timers_due): (i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM inbox),
                    (SELECT count(*) FROM outbox WHERE status IN ('pending', 'inflight')),
                    (SELECT count(*) FROM timers WHERE due_at < ?)",
        )
        .bind(before_ms)
        .fetch_one(&self.pool)
        .await?;
        Ok(Backlog {
            inbox,
            outbox_open,
            timers_due,
        })
    }
}
