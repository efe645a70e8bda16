//! The claim of effects and the read of waiting inputs, each a fair share among tenants, as
//! on PostgreSQL (see `pg/fair.rs` for why). The database is in process, so the steps are
//! statements of their own inside one transaction rather than one statement: the tenants of
//! each shard found by skipping from one to the next on `(shard, tenant_id, id)` (migration
//! 0104), each tenant's oldest rows, then the oldest of the rest.

use std::collections::HashSet;

use super::*;

/// An effect is claimable while no earlier one of its actor and channel is pending or in
/// flight (see `PgStore::claim_outbox`). The check repeats the predicate of
/// `outbox_open_by_actor` literally, which SQLite needs to use that index.
const CLAIMABLE: &str = "x.status = 'pending'
    AND NOT EXISTS (SELECT 1 FROM outbox e
        WHERE e.tenant_id = x.tenant_id AND e.actor_id = x.actor_id
          AND e.channel = x.channel AND e.id < x.id
          AND e.status IN ('pending', 'inflight') AND e.kind = x.kind)";

/// One row taken as a tenant's share: `k`-th (from 1) of its tenant's in its shard, whose place
/// in the order asked is `ord`.
struct Share<T> {
    tenant: String,
    k: usize,
    ord: usize,
    id: i64,
    row: T,
}

/// Each tenant's first row, then each one's second, and so on, cut at `limit`. Within a turn,
/// shards in the order asked, then oldest first.
fn in_turns<T>(mut shares: Vec<Share<T>>, limit: usize) -> Vec<T> {
    shares.sort_by(|a, b| (&a.tenant, a.k, a.ord, a.id).cmp(&(&b.tenant, b.k, b.ord, b.id)));
    let mut turned: Vec<(usize, Share<T>)> = Vec::with_capacity(shares.len());
    let mut turn = 0;
    for s in shares {
        turn = match turned.last() {
            Some((_, prev)) if prev.tenant == s.tenant => turn + 1,
            _ => 1,
        };
        turned.push((turn, s));
    }
    turned.sort_by_key(|(turn, s)| (*turn, s.ord, s.id));
    turned.into_iter().take(limit).map(|(_, s)| s.row).collect()
}

/// `limit` shared among `tenants`, rounded up, at least one.
fn share(limit: usize, tenants: usize) -> usize {
    limit.div_ceil(tenants.max(1)).max(1)
}

/// The tenants with rows in `shard` of `table` matching `filter`, at most `limit`.
async fn tenants_of(
    tx: &mut sqlx::SqliteConnection,
    table: &str,
    filter: &str,
    shard: i32,
    limit: usize,
) -> Result<Vec<String>, StoreError> {
    let sql = format!(
        "SELECT tenant_id FROM {table} WHERE shard = ? AND tenant_id > ? {filter}
         ORDER BY tenant_id LIMIT 1"
    );
    let mut tenants: Vec<String> = Vec::new();
    while tenants.len() < limit {
        let after = tenants.last().map(String::as_str).unwrap_or("");
        let next: Option<String> = sqlx::query_scalar(&sql)
            .bind(shard)
            .bind(after)
            .fetch_optional(&mut *tx)
            .await?;
        match next {
            Some(t) => tenants.push(t),
            None => break,
        }
    }
    Ok(tenants)
}

impl SqliteStore {
    /// A fair share among tenants, as `PgStore::claim_outbox`.
    pub async fn claim_outbox(
        &self,
        held: &[(ShardId, Epoch)],
        limit: i64,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let cap = usize::try_from(limit).unwrap_or(0);
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        // The claim's time, which the orphan check compares with its own now (ADR 0037).
        let now = self.clock.now_ms();
        let current: Vec<(i32, i64)> = sqlx::query_as("SELECT id, epoch FROM shards")
            .fetch_all(&mut *tx)
            .await?;
        let live: HashSet<(i32, i64)> = current.into_iter().collect();
        // Each shard once, in the order given: a shard named twice would have its rows taken
        // twice by one claim, and its effects run twice.
        let mut seen = HashSet::new();
        let shards: Vec<i32> = held
            .iter()
            .filter(|(s, e)| live.contains(&(s.0, e.0)) && seen.insert(s.0))
            .map(|(s, _)| s.0)
            .collect();
        let pending = "AND status = 'pending'";
        let mut pairs = Vec::new();
        for (ord, shard) in shards.iter().enumerate() {
            for tenant in tenants_of(&mut tx, "outbox", pending, *shard, cap).await? {
                pairs.push((ord, *shard, tenant));
            }
        }
        let each = share(cap, pairs.len());
        let mut shares = Vec::new();
        for (ord, shard, tenant) in pairs {
            let rows: Vec<OutboxTuple> = sqlx::query_as(&format!(
                "SELECT {OUTBOX_COLS} FROM outbox x
                 WHERE x.shard = ? AND x.tenant_id = ? AND {CLAIMABLE} ORDER BY x.id LIMIT ?"
            ))
            .bind(shard)
            .bind(&tenant)
            .bind(each as i64)
            .fetch_all(&mut *tx)
            .await?;
            for (i, row) in rows.into_iter().enumerate() {
                shares.push(Share {
                    tenant: tenant.clone(),
                    k: i + 1,
                    ord,
                    id: row.0,
                    row,
                });
            }
        }
        let taken: HashSet<i64> = shares.iter().map(|s| s.id).collect();
        let mut chosen = in_turns(shares, cap);
        if chosen.len() < cap {
            // The shares left room (every share was taken whole): the oldest of the rest.
            let rows: Vec<OutboxTuple> = sqlx::query_as(&format!(
                "SELECT {OUTBOX_COLS} FROM outbox x WHERE x.shard IN ({}) AND {CLAIMABLE}
                 ORDER BY x.id LIMIT ?",
                shard_list(shards.iter().copied())
            ))
            .bind((cap + taken.len()) as i64)
            .fetch_all(&mut *tx)
            .await?;
            let room = cap - chosen.len();
            chosen.extend(
                rows.into_iter()
                    .filter(|r| !taken.contains(&r.0))
                    .take(room),
            );
        }
        let mut claimed = Vec::with_capacity(chosen.len());
        for row in chosen {
            sqlx::query(
                "UPDATE outbox SET status = 'inflight', attempts = attempts + 1, updated_at = ? WHERE id = ?",
            )
            .bind(now)
            .bind(row.0)
            .execute(&mut *tx)
            .await?;
            let mut row = outbox_row(row)?;
            row.status = OutboxStatus::Inflight;
            row.attempts += 1;
            claimed.push(row);
        }
        tx.commit().await?;
        Ok(claimed)
    }

    /// Each poll's page shared among the shard's tenants, as `PgStore::pending_inboxes`: a
    /// tenant's share is `limit / tenants` rows (a shard counts at most `limit` tenants), the
    /// oldest of the rest fill the page, and the page is sorted by id.
    pub async fn pending_inboxes(
        &self,
        polls: &[InboxPoll],
        limit: i64,
    ) -> Result<Vec<Vec<InboxRow>>, StoreError> {
        let cap = usize::try_from(limit).unwrap_or(0);
        // One read transaction: the shares and the fill see the same rows.
        let mut tx = self.pool.begin().await?;
        let mut out = Vec::with_capacity(polls.len());
        for poll in polls {
            let tenants = tenants_of(&mut tx, "inbox", "", poll.shard.0, cap).await?;
            let each = cap / tenants.len().max(1);
            let mut page: Vec<InboxTuple> = Vec::new();
            for tenant in &tenants {
                let rows: Vec<InboxTuple> = sqlx::query_as(&format!(
                    "SELECT {INBOX_COLS} FROM inbox
                     WHERE shard = ? AND tenant_id = ? AND created_at < ? ORDER BY id LIMIT ?"
                ))
                .bind(poll.shard.0)
                .bind(tenant)
                .bind(poll.created_before_ms)
                .bind(each as i64)
                .fetch_all(&mut *tx)
                .await?;
                page.extend(rows);
            }
            if page.len() < cap {
                let taken: HashSet<i64> = page.iter().map(|r| r.0).collect();
                let rows: Vec<InboxTuple> = sqlx::query_as(&format!(
                    "SELECT {INBOX_COLS} FROM inbox WHERE shard = ? AND created_at < ?
                     ORDER BY id LIMIT ?"
                ))
                .bind(poll.shard.0)
                .bind(poll.created_before_ms)
                .bind((cap + taken.len()) as i64)
                .fetch_all(&mut *tx)
                .await?;
                let room = cap - page.len();
                page.extend(
                    rows.into_iter()
                        .filter(|r| !taken.contains(&r.0))
                        .take(room),
                );
            }
            // An actor's inputs are applied in the order they were written.
            page.sort_unstable_by_key(|r| r.0);
            out.push(
                page.into_iter()
                    .map(inbox_row)
                    .collect::<Result<Vec<_>, StoreError>>()?,
            );
        }
        tx.commit().await?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(tenant: &str, k: usize, ord: usize, id: i64) -> Share<i64> {
        Share {
            tenant: tenant.into(),
            k,
            ord,
            id,
            row: id,
        }
    }

    #[test]
    fn tenants_take_turns_whatever_their_backlog() {
        // Tenant a has the oldest rows, in two shards; b has one row, newest, in the last.
        let shares = vec![
            s("a", 1, 0, 1),
            s("a", 2, 0, 2),
            s("a", 3, 0, 3),
            s("a", 1, 1, 4),
            s("a", 2, 1, 5),
            s("b", 1, 1, 9),
        ];
        assert_eq!(in_turns(shares, 3), vec![1, 9, 4]);
    }

    #[test]
    fn shares_round_up_and_are_never_zero() {
        assert_eq!(share(256, 2), 128);
        assert_eq!(share(256, 3), 86);
        assert_eq!(share(256, 1000), 1);
        assert_eq!(share(256, 0), 256);
        assert_eq!(share(0, 5), 1);
    }
}
