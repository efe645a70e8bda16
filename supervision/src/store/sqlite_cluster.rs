//! SQLite: shard leases and instance membership. One engine runs on a file (a lock guards
//! it), so these mostly serve the same code path and the cluster view.

use std::time::Duration;

use serde_json::Value;

use super::sqlite::SqliteStore;
use super::types::*;
use super::StoreError;
use crate::key::{Epoch, ShardId};

impl SqliteStore {
    pub async fn claim_shard(
        &self,
        shard: ShardId,
        owner: &str,
        ttl: Duration,
        force: bool,
    ) -> Result<Option<Lease>, StoreError> {
        let now = self.clock.now_ms();
        let row: Option<(i64, i64)> = sqlx::query_as(
            "UPDATE shards SET owner = ?1, epoch = epoch + 1, lease_until = ?2 + ?3
             WHERE id = ?4 AND (?5 OR owner IS NULL OR lease_until < ?2)
             RETURNING epoch, lease_until",
        )
        .bind(owner)
        .bind(now)
        .bind(ttl.as_millis() as i64)
        .bind(shard.0)
        .bind(force)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(epoch, until)| Lease {
            shard,
            epoch: Epoch(epoch),
            lease_until_ms: until,
        }))
    }

    pub async fn renew_shards(
        &self,
        owner: &str,
        held: &[(ShardId, Epoch)],
        ttl: Duration,
    ) -> Result<Vec<Lease>, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let until = self.clock.now_ms() + ttl.as_millis() as i64;
        let mut renewed = Vec::with_capacity(held.len());
        for (shard, epoch) in held {
            let n = sqlx::query(
                "UPDATE shards SET lease_until = ? WHERE id = ? AND epoch = ? AND owner = ?",
            )
            .bind(until)
            .bind(shard.0)
            .bind(epoch.0)
            .bind(owner)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 1 {
                renewed.push(Lease {
                    shard: *shard,
                    epoch: *epoch,
                    lease_until_ms: until,
                });
            }
        }
        tx.commit().await?;
        Ok(renewed)
    }

    pub async fn release_shards(
        &self,
        owner: &str,
        held: &[(ShardId, Epoch)],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        for (shard, epoch) in held {
            sqlx::query(
                "UPDATE shards SET owner = NULL, lease_until = 0 WHERE id = ? AND epoch = ? AND owner = ?",
            )
            .bind(shard.0)
            .bind(epoch.0)
            .bind(owner)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Shards nobody holds, or whose lease has run out.
    pub async fn free_shards(&self) -> Result<Vec<ShardId>, StoreError> {
        let ids: Vec<i32> = sqlx::query_scalar(
            "SELECT id FROM shards WHERE owner IS NULL OR lease_until < ? ORDER BY id",
        )
        .bind(self.clock.now_ms())
        .fetch_all(&self.pool)
        .await?;
        Ok(ids.into_iter().map(ShardId).collect())
    }

    pub async fn heartbeat(
        &self,
        id: &str,
        fresh: bool,
        shared_limits: bool,
    ) -> Result<Membership, StoreError> {
        let now = self.clock.now_ms();
        sqlx::query(
            "INSERT INTO instances (id, started_at, heartbeat_at, shared_limits) VALUES (?1, ?2, ?2, ?3)
             ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at,
                 shared_limits = excluded.shared_limits,
                 started_at = CASE WHEN ?4 THEN excluded.started_at ELSE instances.started_at END",
        )
        .bind(id)
        .bind(now)
        .bind(shared_limits)
        .bind(fresh)
        .execute(&self.pool)
        .await?;
        self.membership_at(now).await
    }

    pub async fn membership(&self) -> Result<Membership, StoreError> {
        self.membership_at(self.clock.now_ms()).await
    }

    async fn membership_at(&self, now: i64) -> Result<Membership, StoreError> {
        let rows: Vec<(String, i64, i64, bool)> = sqlx::query_as(
            "SELECT id, started_at, heartbeat_at, shared_limits FROM instances ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(Membership {
            now_ms: now,
            instances: rows.into_iter().map(InstanceRow::from).collect(),
        })
    }

    pub async fn deregister(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM instances WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn prune_instances(&self, before_ms: i64) -> Result<u64, StoreError> {
        Ok(sqlx::query("DELETE FROM instances WHERE heartbeat_at < ?")
            .bind(before_ms)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    pub async fn take_replies(&self, ids: &[i64]) -> Result<Vec<Option<Value>>, StoreError> {
        let mut rows = Vec::new();
        for id in ids {
            let body: Option<String> =
                sqlx::query_scalar("DELETE FROM replies WHERE inbox_id = ? RETURNING body")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
            rows.extend(body.map(|b| (*id, b)));
        }
        super::types::replies_in_order(ids, rows)
    }

    pub async fn prune_replies(&self, before_ms: i64) -> Result<u64, StoreError> {
        Ok(sqlx::query("DELETE FROM replies WHERE created_at < ?")
            .bind(before_ms)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }
}
