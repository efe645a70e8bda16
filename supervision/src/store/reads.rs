//! Queries whose SQL is one text on both backends: the reads for the API, the console and the
//! benchmarks, and the plain maintenance statements. Nothing here checks an epoch.

use uuid::Uuid;

use super::both::on_both;
use super::rows::*;
use super::types::*;
use super::{Store, StoreError};
use crate::key::{Epoch, ShardId, TenantId};

impl Store {
    pub async fn shard_count(&self) -> Result<u32, StoreError> {
        let n: i64 = on_both!(self, |db, _id| sqlx::query_scalar(
            "SELECT count(*) FROM shards"
        )
        .fetch_one(db)
        .await?);
        Ok(n as u32)
    }

    pub async fn shards(&self) -> Result<Vec<ShardRow>, StoreError> {
        let sql = "SELECT id, owner, epoch, lease_until FROM shards ORDER BY id";
        let rows: Vec<(i32, Option<String>, i64, i64)> =
            on_both!(self, |db, _id| sqlx::query_as(sql).fetch_all(db).await?);
        Ok(rows
            .into_iter()
            .map(|(id, owner, epoch, until)| ShardRow {
                shard: ShardId(id),
                owner,
                epoch: Epoch(epoch),
                lease_until_ms: until,
            })
            .collect())
    }

    pub async fn get_actor(
        &self,
        tenant: TenantId,
        kind: &str,
        id: Uuid,
    ) -> Result<Option<ActorRow>, StoreError> {
        let sql = format!(
            "SELECT {ACTOR_COLS} FROM actors WHERE tenant_id = $1 AND kind = $2 AND id = $3"
        );
        let row: Option<ActorTuple> = on_both!(self, |db, uid| sqlx::query_as(&sql)
            .bind(uid(tenant.0))
            .bind(kind)
            .bind(uid(id))
            .fetch_optional(db)
            .await?);
        row.map(actor_row).transpose()
    }

    /// The actor's indexed status and paused flag, without reading its state.
    pub async fn actor_status(
        &self,
        tenant: TenantId,
        kind: &str,
        id: Uuid,
    ) -> Result<Option<(String, bool)>, StoreError> {
        let sql =
            "SELECT status, paused FROM actors WHERE tenant_id = $1 AND kind = $2 AND id = $3";
        Ok(on_both!(self, |db, uid| sqlx::query_as(sql)
            .bind(uid(tenant.0))
            .bind(kind)
            .bind(uid(id))
            .fetch_optional(db)
            .await?))
    }

    /// Whether the actor exists, without reading its state.
    pub async fn actor_exists(
        &self,
        tenant: TenantId,
        kind: &str,
        id: Uuid,
    ) -> Result<bool, StoreError> {
        let sql =
            "SELECT EXISTS (SELECT 1 FROM actors WHERE tenant_id = $1 AND kind = $2 AND id = $3)";
        Ok(on_both!(self, |db, uid| sqlx::query_scalar(sql)
            .bind(uid(tenant.0))
            .bind(kind)
            .bind(uid(id))
            .fetch_one(db)
            .await?))
    }

    /// A page of actors, oldest first. The filters are `CAST` so that PostgreSQL knows the
    /// type of a parameter that is only compared with NULL.
    pub async fn list_actors(&self, q: &ListQuery) -> Result<Vec<ActorRow>, StoreError> {
        let (after_at, after_id) = q.after.unwrap_or((i64::MIN, Uuid::nil()));
        let sql = format!(
            "SELECT {ACTOR_COLS} FROM actors
             WHERE tenant_id = $1 AND kind = $2
               AND (CAST($3 AS TEXT) IS NULL OR status = $3)
               AND (CAST($4 AS BOOLEAN) IS NULL OR paused = $4)
               AND (created_at, id) > ($5, $6)
             ORDER BY created_at, id LIMIT $7"
        );
        let rows: Vec<ActorTuple> = on_both!(self, |db, uid| sqlx::query_as(&sql)
            .bind(uid(q.tenant.0))
            .bind(&q.kind)
            .bind(&q.status)
            .bind(q.paused)
            .bind(after_at)
            .bind(uid(after_id))
            .bind(q.limit)
            .fetch_all(db)
            .await?);
        rows.into_iter().map(actor_row).collect()
    }

    pub async fn timers_of(
        &self,
        tenant: TenantId,
        kind: &str,
        id: Uuid,
    ) -> Result<Vec<TimerRow>, StoreError> {
        let sql = format!(
            "SELECT {TIMER_COLS} FROM timers WHERE tenant_id = $1 AND kind = $2 AND actor_id = $3
             ORDER BY due_at, name"
        );
        let rows: Vec<TimerTuple> = on_both!(self, |db, uid| sqlx::query_as(&sql)
            .bind(uid(tenant.0))
            .bind(kind)
            .bind(uid(id))
            .fetch_all(db)
            .await?);
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
        let sql = "SELECT id, version, at, entry_kind, cause, reason, CAST(data AS TEXT)
                   FROM timeline WHERE tenant_id = $1 AND kind = $2 AND actor_id = $3 AND id > $4
                   ORDER BY id LIMIT $5";
        let rows: Vec<TimelineTuple> = on_both!(self, |db, uid| sqlx::query_as(sql)
            .bind(uid(tenant.0))
            .bind(kind)
            .bind(uid(id))
            .bind(after_id)
            .bind(limit)
            .fetch_all(db)
            .await?);
        rows.into_iter().map(timeline_row).collect()
    }

    pub async fn dead_letters(
        &self,
        tenant: TenantId,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<DeadLetterRow>, StoreError> {
        let sql = "SELECT id, CAST(tenant_id AS TEXT), kind, CAST(actor_id AS TEXT),
                          CAST(input AS TEXT), error, attempts, created_at
                   FROM dead_letters WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3";
        let rows: Vec<DeadLetterTuple> = on_both!(self, |db, uid| sqlx::query_as(sql)
            .bind(uid(tenant.0))
            .bind(after_id)
            .bind(limit)
            .fetch_all(db)
            .await?);
        rows.into_iter().map(dead_letter_row).collect()
    }

    /// One dead letter of the tenant, if it is there.
    pub async fn find_dead_letter(
        &self,
        tenant: TenantId,
        id: i64,
    ) -> Result<Option<DeadLetterRow>, StoreError> {
        let sql = "SELECT id, CAST(tenant_id AS TEXT), kind, CAST(actor_id AS TEXT),
                          CAST(input AS TEXT), error, attempts, created_at
                   FROM dead_letters WHERE tenant_id = $1 AND id = $2";
        let row: Option<DeadLetterTuple> = on_both!(self, |db, uid| sqlx::query_as(sql)
            .bind(uid(tenant.0))
            .bind(id)
            .fetch_optional(db)
            .await?);
        row.map(dead_letter_row).transpose()
    }

    /// Whether effect `id` is still in flight under claim `claim` with no hold left on it by a
    /// pause or an opt-out committed since (`Standing::holds`).
    pub async fn effect_stands(&self, id: i64, claim: i32) -> Result<bool, StoreError> {
        let sql = "SELECT COUNT(*) FROM outbox
                   WHERE id = $1 AND status = 'inflight' AND attempts = $2 AND hold IS NULL";
        let n: i64 = on_both!(self, |db, _uid| sqlx::query_scalar(sql)
            .bind(id)
            .bind(claim)
            .fetch_one(db)
            .await?);
        Ok(n == 1)
    }

    /// Removes one dead letter (an operator handled it); false when it was already gone.
    pub async fn remove_dead_letter(&self, tenant: TenantId, id: i64) -> Result<bool, StoreError> {
        let sql = "DELETE FROM dead_letters WHERE tenant_id = $1 AND id = $2";
        let n = on_both!(self, |db, uid| sqlx::query(sql)
            .bind(uid(tenant.0))
            .bind(id)
            .execute(db)
            .await?
            .rows_affected());
        Ok(n == 1)
    }

    /// The actor's latest timeline entry, if it has one.
    pub async fn last_timeline_entry(
        &self,
        tenant: TenantId,
        kind: &str,
        id: Uuid,
    ) -> Result<Option<TimelineRow>, StoreError> {
        let sql = "SELECT id, version, at, entry_kind, cause, reason, CAST(data AS TEXT)
                   FROM timeline WHERE tenant_id = $1 AND kind = $2 AND actor_id = $3
                   ORDER BY id DESC LIMIT 1";
        let row: Option<TimelineTuple> = on_both!(self, |db, uid| sqlx::query_as(sql)
            .bind(uid(tenant.0))
            .bind(kind)
            .bind(uid(id))
            .fetch_optional(db)
            .await?);
        row.map(timeline_row).transpose()
    }

    /// A value that changes whenever any of the tenant's actors of `kind` commits (a commit
    /// bumps its version) or one is created: how many there are and their versions' sum.
    pub async fn kind_fingerprint(
        &self,
        tenant: TenantId,
        kind: &str,
    ) -> Result<(i64, i64), StoreError> {
        let sql = "SELECT COUNT(*), CAST(COALESCE(SUM(version), 0) AS BIGINT) FROM actors
                   WHERE tenant_id = $1 AND kind = $2";
        Ok(on_both!(self, |db, uid| sqlx::query_as(sql)
            .bind(uid(tenant.0))
            .bind(kind)
            .fetch_one(db)
            .await?))
    }

    pub async fn outbox_of(
        &self,
        tenant: TenantId,
        kind: &str,
        id: Uuid,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let sql = format!(
            "SELECT {OUTBOX_COLS} FROM outbox WHERE tenant_id = $1 AND kind = $2 AND actor_id = $3
             ORDER BY id"
        );
        let rows: Vec<OutboxTuple> = on_both!(self, |db, uid| sqlx::query_as(&sql)
            .bind(uid(tenant.0))
            .bind(kind)
            .bind(uid(id))
            .fetch_all(db)
            .await?);
        rows.into_iter().map(outbox_row).collect()
    }

    /// The effects of one tenant named by `idem_keys` (a transition's are `{actor}/{version}/{i}`),
    /// with their results, found through the outbox's unique key: a reader that knows which
    /// transitions it wants (an opportunity's thread) reads their effects without scanning an
    /// actor's whole outbox, which no index serves once its rows are done.
    pub async fn effects_named(
        &self,
        tenant: TenantId,
        idem_keys: &[String],
    ) -> Result<Vec<EffectRecord>, StoreError> {
        if idem_keys.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<(String, String, String, Option<String>)> = match self {
            Store::Postgres(pg) => {
                sqlx::query_as(
                    "SELECT idem_key, channel, status, CAST(result AS TEXT) FROM outbox
                     WHERE tenant_id = $1 AND idem_key = ANY($2)",
                )
                .bind(tenant.0)
                .bind(idem_keys)
                .fetch_all(pg.pool())
                .await?
            }
            Store::Sqlite(lite) => {
                let keys = serde_json::to_string(idem_keys)
                    .map_err(|e| StoreError::Corrupt(format!("effect keys: {e}")))?;
                sqlx::query_as(
                    "SELECT idem_key, channel, status, CAST(result AS TEXT) FROM outbox
                     WHERE tenant_id = ? AND idem_key IN (SELECT value FROM json_each(?))",
                )
                .bind(tenant.0.to_string())
                .bind(keys)
                .fetch_all(lite.pool())
                .await?
            }
        };
        rows.into_iter()
            .map(|(idem_key, channel, status, result)| {
                Ok(EffectRecord {
                    status: OutboxStatus::parse(&status)
                        .ok_or_else(|| StoreError::Corrupt(format!("outbox status {status:?}")))?,
                    result: result.as_deref().map(parse_json).transpose()?,
                    idem_key,
                    channel,
                })
            })
            .collect()
    }

    /// How many actors of a kind a tenant has stored (resident or not).
    pub async fn count_actors(&self, tenant: TenantId, kind: &str) -> Result<i64, StoreError> {
        let sql = "SELECT count(*) FROM actors WHERE tenant_id = $1 AND kind = $2";
        Ok(on_both!(self, |db, uid| sqlx::query_scalar(sql)
            .bind(uid(tenant.0))
            .bind(kind)
            .fetch_one(db)
            .await?))
    }

    /// Work not yet done: inputs waiting, effects not yet finished, timers due before `before_ms`.
    pub async fn backlog(&self, before_ms: i64) -> Result<Backlog, StoreError> {
        let sql = "SELECT (SELECT count(*) FROM inbox),
                          (SELECT count(*) FROM outbox WHERE status IN ('pending', 'inflight')),
                          (SELECT count(*) FROM timers WHERE due_at < $1)";
        let (inbox, outbox_open, timers_due): (i64, i64, i64) =
            on_both!(self, |db, _id| sqlx::query_as(sql)
                .bind(before_ms)
                .fetch_one(db)
                .await?);
        Ok(Backlog {
            inbox,
            outbox_open,
            timers_due,
        })
    }

    /// Forgets dedupe keys recorded before `before_ms`: a retry older than that is new input.
    pub async fn prune_dedupe(&self, before_ms: i64) -> Result<u64, StoreError> {
        let sql = "DELETE FROM inbox_dedupe WHERE created_at < $1";
        Ok(on_both!(self, |db, _id| sqlx::query(sql)
            .bind(before_ms)
            .execute(db)
            .await?
            .rows_affected()))
    }
}
