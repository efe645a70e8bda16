//! Idempotency keys for API commands: the first answer to a tenant's key is kept for a day and
//! replayed to any instance that sees the key again; the same key with another request is
//! refused. The row is claimed before the command runs, so two racing requests run it once.

use neuronx_supervision::{Store, TenantId};

use super::{now_ms, on_db, ControlError};

/// How long an answer is kept.
pub const RETENTION_MS: i64 = 24 * 3600 * 1000;
/// A claim older than this with no answer was left by an instance that stopped mid-request;
/// the next request with the key takes it over (the command may then run twice, which the
/// commands tolerate: each is idempotent in the domain or refused as a repeat).
pub const ABANDONED_AFTER_MS: i64 = 60 * 1000;

/// What to do with a request carrying a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Run it: this request holds the key now.
    Run,
    /// Answered before: send this again.
    Replay { status: u16, body: String },
    /// The key was used for a different request.
    Mismatch,
    /// The first request with this key is still running.
    InProgress,
}

type Row = (String, Option<i32>, Option<String>, i64);

/// Claims `key` for a request whose content hashes to `hash`, or says why not.
pub async fn claim(
    store: &Store,
    tenant: TenantId,
    key: &str,
    hash: &str,
) -> Result<Claim, ControlError> {
    let now = now_ms();
    let insert = "INSERT INTO idempotency_keys (tenant_id, key, request_hash, created_at)
                  VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING";
    let inserted = on_db!(store, |db, id, _json| sqlx::query(insert)
        .bind(id(tenant.0))
        .bind(key)
        .bind(hash)
        .bind(now)
        .execute(db)
        .await?
        .rows_affected());
    if inserted == 1 {
        return Ok(Claim::Run);
    }
    let read = "SELECT request_hash, status, body, created_at FROM idempotency_keys
                WHERE tenant_id = $1 AND key = $2";
    let row: Option<Row> = on_db!(store, |db, id, _json| sqlx::query_as(read)
        .bind(id(tenant.0))
        .bind(key)
        .fetch_optional(db)
        .await?);
    let Some((stored_hash, status, body, created_at)) = row else {
        // Pruned between the two statements: try once more.
        return Box::pin(claim(store, tenant, key, hash)).await;
    };
    let expired = created_at < now - RETENTION_MS;
    let abandoned = status.is_none() && created_at < now - ABANDONED_AFTER_MS;
    if expired || abandoned {
        // Take the row over, unless another request just did.
        let take = "UPDATE idempotency_keys
                    SET request_hash = $3, status = NULL, body = NULL, created_at = $4
                    WHERE tenant_id = $1 AND key = $2 AND created_at = $5";
        let taken = on_db!(store, |db, id, _json| sqlx::query(take)
            .bind(id(tenant.0))
            .bind(key)
            .bind(hash)
            .bind(now)
            .bind(created_at)
            .execute(db)
            .await?
            .rows_affected());
        return Ok(if taken == 1 {
            Claim::Run
        } else {
            Claim::InProgress
        });
    }
    if stored_hash != hash {
        return Ok(Claim::Mismatch);
    }
    Ok(match (status, body) {
        (Some(status), Some(body)) => Claim::Replay {
            status: u16::try_from(status).unwrap_or(500),
            body,
        },
        _ => Claim::InProgress,
    })
}

/// Records the answer to a claimed key.
pub async fn finish(
    store: &Store,
    tenant: TenantId,
    key: &str,
    status: u16,
    body: &str,
) -> Result<(), ControlError> {
    let sql = "UPDATE idempotency_keys SET status = $3, body = $4
               WHERE tenant_id = $1 AND key = $2";
    on_db!(store, |db, id, _json| sqlx::query(sql)
        .bind(id(tenant.0))
        .bind(key)
        .bind(i32::from(status))
        .bind(body)
        .execute(db)
        .await?
        .rows_affected());
    Ok(())
}

/// Gives a claimed key back unanswered (the request failed in a way worth retrying), so the
/// client's retry runs it again.
pub async fn release(store: &Store, tenant: TenantId, key: &str) -> Result<(), ControlError> {
    let sql = "DELETE FROM idempotency_keys
               WHERE tenant_id = $1 AND key = $2 AND status IS NULL";
    on_db!(store, |db, id, _json| sqlx::query(sql)
        .bind(id(tenant.0))
        .bind(key)
        .execute(db)
        .await?
        .rows_affected());
    Ok(())
}

/// Forgets answers older than the retention; returns how many.
pub async fn prune(store: &Store) -> Result<u64, ControlError> {
    let sql = "DELETE FROM idempotency_keys WHERE created_at < $1";
    Ok(on_db!(store, |db, _id, _json| sqlx::query(sql)
        .bind(now_ms() - RETENTION_MS)
        .execute(db)
        .await?
        .rows_affected()))
}
