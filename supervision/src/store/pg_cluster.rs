//! PostgreSQL: shard leases and instance membership. Every time here is the engine's clock
//! (`PgStore::clock`, the database's time measured without a round trip), bound as `now`.

use std::time::Duration;

use serde_json::Value;

use super::pg::{split_held, PgStore};
use super::types::*;
use super::StoreError;
use crate::key::{Epoch, ShardId};

/// The channel an instance NOTIFYs when it makes an input durable for a shard it does not own.
pub const INBOX_CHANNEL: &str = "neuronx_inbox";

/// The channel a commit that wrote answers for callers on other instances NOTIFYs (no payload:
/// every waiting caller reads its own answer, the reads of all of them batched together).
pub const REPLY_CHANNEL: &str = "neuronx_reply";

impl PgStore {
    pub async fn claim_shard(
        &self,
        shard: ShardId,
        owner: &str,
        ttl: Duration,
        force: bool,
    ) -> Result<Option<Lease>, StoreError> {
        let row: Option<(i64, i64)> = sqlx::query_as(
            // FOR UPDATE, the one lock that waits for commits' FOR KEY SHARE: a commit that
            // checked the old epoch finishes before the epoch moves (see pg_commit::try_commit).
            "UPDATE shards s SET owner = $1, epoch = s.epoch + 1, lease_until = $5 + $2
             FROM (SELECT id FROM shards WHERE id = $3 FOR UPDATE) l
             WHERE s.id = l.id AND ($4 OR s.owner IS NULL OR s.lease_until < $5)
             RETURNING s.epoch, s.lease_until",
        )
        .bind(owner)
        .bind(ttl.as_millis() as i64)
        .bind(shard.0)
        .bind(force)
        .bind(self.clock.now_ms())
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
        let (ids, epochs) = split_held(held);
        let rows: Vec<(i32, i64, i64)> = sqlx::query_as(
            // Rows locked in id order, as commits take their shares: an update locking them
            // in plan order deadlocked against group commits (each waiting a second to be told).
            // FOR NO KEY UPDATE does not wait for commits' FOR KEY SHARE: a renewal changes no
            // epoch, and with FOR UPDATE every renewal stalled all commits behind it.
            "UPDATE shards s SET lease_until = $5 + $2
             FROM UNNEST($3::int[], $4::bigint[]) h(id, epoch),
                  (SELECT id FROM shards WHERE id = ANY($3) ORDER BY id FOR NO KEY UPDATE) l
             WHERE s.id = h.id AND l.id = s.id AND s.epoch = h.epoch AND s.owner = $1
             RETURNING s.id, s.epoch, s.lease_until",
        )
        .bind(owner)
        .bind(ttl.as_millis() as i64)
        .bind(ids)
        .bind(epochs)
        .bind(self.clock.now_ms())
        .fetch_all(&self.lease)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, epoch, until)| Lease {
                shard: ShardId(id),
                epoch: Epoch(epoch),
                lease_until_ms: until,
            })
            .collect())
    }

    pub async fn release_shards(
        &self,
        owner: &str,
        held: &[(ShardId, Epoch)],
    ) -> Result<(), StoreError> {
        let (ids, epochs) = split_held(held);
        sqlx::query(
            "UPDATE shards s SET owner = NULL, lease_until = 0
             FROM UNNEST($2::int[], $3::bigint[]) h(id, epoch),
                  (SELECT id FROM shards WHERE id = ANY($2) ORDER BY id FOR NO KEY UPDATE) l
             WHERE s.id = h.id AND l.id = s.id AND s.epoch = h.epoch AND s.owner = $1",
        )
        .bind(owner)
        .bind(ids)
        .bind(epochs)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A connection listening for inbox wake-ups and posted answers (outside the pool; it
    /// reconnects by itself).
    pub async fn inbox_listener(&self) -> Result<sqlx::postgres::PgListener, StoreError> {
        let mut listener = sqlx::postgres::PgListener::connect_with(&self.pool).await?;
        listener.listen_all([INBOX_CHANNEL, REPLY_CHANNEL]).await?;
        Ok(listener)
    }

    /// Shards nobody holds, or whose lease has run out.
    pub async fn free_shards(&self) -> Result<Vec<ShardId>, StoreError> {
        let ids: Vec<i32> = sqlx::query_scalar(
            "SELECT id FROM shards WHERE owner IS NULL OR lease_until < $1 ORDER BY id",
        )
        .bind(self.clock.now_ms())
        .fetch_all(&self.pool)
        .await?;
        Ok(ids.into_iter().map(ShardId).collect())
    }

    /// Records that `id` is alive (and, with `fresh`, that it just started), and returns every
    /// registered instance with the database's clock.
    pub async fn heartbeat(
        &self,
        id: &str,
        fresh: bool,
        shared_limits: bool,
    ) -> Result<Membership, StoreError> {
        let mut conn = self.lease.acquire().await?;
        let now: i64 = sqlx::query_scalar(
            "INSERT INTO instances (id, started_at, heartbeat_at, shared_limits)
             VALUES ($1, $4, $4, $3)
             ON CONFLICT (id) DO UPDATE SET heartbeat_at = EXCLUDED.heartbeat_at,
                 shared_limits = EXCLUDED.shared_limits,
                 started_at = CASE WHEN $2 THEN EXCLUDED.started_at ELSE instances.started_at END
             RETURNING heartbeat_at",
        )
        .bind(id)
        .bind(fresh)
        .bind(shared_limits)
        .bind(self.clock.now_ms())
        .fetch_one(&mut *conn)
        .await?;
        let instances = instance_rows(&mut conn).await?;
        Ok(Membership {
            now_ms: now,
            instances,
        })
    }

    /// The registered instances, without registering anyone.
    pub async fn membership(&self) -> Result<Membership, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let now = self.clock.now_ms();
        let instances = instance_rows(&mut conn).await?;
        Ok(Membership {
            now_ms: now,
            instances,
        })
    }

    /// A graceful leave: the others need not wait for the heartbeat to age.
    pub async fn deregister(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM instances WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Forgets instances silent since before `before_ms`.
    pub async fn prune_instances(&self, before_ms: i64) -> Result<u64, StoreError> {
        Ok(sqlx::query("DELETE FROM instances WHERE heartbeat_at < $1")
            .bind(before_ms)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    /// Takes the stored answers to inbox inputs `ids` whose owner has applied them, in order.
    pub async fn take_replies(&self, ids: &[i64]) -> Result<Vec<Option<Value>>, StoreError> {
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "DELETE FROM replies WHERE inbox_id = ANY($1) RETURNING inbox_id, body::text",
        )
        .bind(ids)
        .fetch_all(&self.pool)
        .await?;
        super::types::replies_in_order(ids, rows)
    }

    /// Forgets answers nobody came for (the caller gave up waiting).
    pub async fn prune_replies(&self, before_ms: i64) -> Result<u64, StoreError> {
        Ok(sqlx::query("DELETE FROM replies WHERE created_at < $1")
            .bind(before_ms)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }
}

async fn instance_rows(conn: &mut sqlx::PgConnection) -> Result<Vec<InstanceRow>, StoreError> {
    let rows: Vec<(String, i64, i64, bool)> = sqlx::query_as(
        "SELECT id, started_at, heartbeat_at, shared_limits FROM instances ORDER BY id",
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(InstanceRow::from).collect())
}
