//! The claim of effects and the read of waiting inputs, each a fair share among tenants (issue
//! #13, item 6): oldest first alone let one tenant's import of 50,000 leads hold every other
//! tenant's first dial, and its inputs, behind all of it.
//!
//! Both find the tenants with rows in each shard by skipping from one tenant to the next on
//! `(shard, tenant_id, id)` (migration 0104), one short index read per tenant, never reading
//! the backlog itself; take the oldest few rows of each; and fill what room is left oldest
//! first, so a claim or a page still comes back full while work remains.

use super::*;

/// The claim. Tenants take turns over the whole claim, not per shard: a tenant importing
/// thousands of leads has rows in every shard, so a turn per (shard, tenant) would let it fill
/// the claim before a tenant with one row in a shard visited last.
///
/// - `live`: the held shards still at their epochs, locked `FOR KEY SHARE` in id order as
///   commits lock them (see `PgStore::claim_outbox`).
/// - `pairs`: each shard's tenants with pending effects (at most `$3` per shard).
/// - `fair`: each pair's oldest `ceil($3 / pairs)` claimable effects, each with its place `k`
///   among them. An effect is claimable while no earlier one of its actor and channel is
///   pending or in flight: a scalar subquery, one short read of `outbox_open_by_actor` per
///   candidate. It is written `NOT coalesce(..., false)` rather than `(...) IS NULL`: the
///   planner takes `IS NULL` of a subquery to keep one row in 200 and then prefers reading and
///   sorting a pair's whole backlog to walking its index in order (240 ms against 30 ms for a
///   claim of 256 among 60,000 pending effects).
/// - `fill`: when the pairs' shares do not fill the claim (tenants with fewer effects than
///   their share), the oldest other claimable effects, shards in the order given. `LIMIT 0`
///   reads nothing when the shares filled it.
/// - `chosen`: the shares in turns (each tenant's first, then each one's second...), cut at
///   `$3`, then the fill.
pub(super) const CLAIM: &str = "
WITH RECURSIVE live AS MATERIALIZED (
    SELECT s.id FROM shards s
    JOIN UNNEST($1::int[], $2::bigint[]) f(shard, epoch) ON s.id = f.shard AND s.epoch = f.epoch
    ORDER BY s.id FOR KEY SHARE OF s
),
held AS MATERIALIZED (
    SELECT h.shard, h.ord FROM UNNEST($1::int[]) WITH ORDINALITY h(shard, ord)
    JOIN live l ON l.id = h.shard
    ORDER BY h.ord
),
pairs (shard, ord, tenant_id, depth) AS (
    SELECT h.shard, h.ord, t.tenant_id, 1 FROM held h
    CROSS JOIN LATERAL (
        SELECT x.tenant_id FROM outbox x WHERE x.shard = h.shard AND x.status = 'pending'
        ORDER BY x.tenant_id LIMIT 1
    ) t
    UNION ALL
    SELECT p.shard, p.ord, t.tenant_id, p.depth + 1 FROM pairs p
    CROSS JOIN LATERAL (
        SELECT x.tenant_id FROM outbox x
        WHERE x.shard = p.shard AND x.status = 'pending' AND x.tenant_id > p.tenant_id
        ORDER BY x.tenant_id LIMIT 1
    ) t
    WHERE p.depth < $3
),
fair AS MATERIALIZED (
    SELECT c.id, c.tenant_id, p.ord, c.k FROM pairs p
    CROSS JOIN LATERAL (
        SELECT y.id, y.tenant_id, row_number() OVER (ORDER BY y.id) AS k FROM (
            SELECT x.id, x.tenant_id FROM outbox x
            WHERE x.shard = p.shard AND x.tenant_id = p.tenant_id AND x.status = 'pending'
              AND NOT coalesce((SELECT true FROM outbox e
                   WHERE e.tenant_id = x.tenant_id AND e.actor_id = x.actor_id
                     AND e.channel = x.channel AND e.id < x.id
                     AND e.status IN ('pending', 'inflight') AND e.kind = x.kind
                   LIMIT 1), false)
            ORDER BY x.id
            LIMIT (SELECT greatest(1, ceil($3::numeric / nullif(count(*), 0)))::bigint FROM pairs)
            FOR UPDATE OF x SKIP LOCKED
        ) y
    ) c
),
fill AS MATERIALIZED (
    SELECT c.id FROM held h
    CROSS JOIN LATERAL (
        SELECT x.id FROM outbox x
        WHERE x.shard = h.shard AND x.status = 'pending'
          AND NOT coalesce((SELECT true FROM outbox e
               WHERE e.tenant_id = x.tenant_id AND e.actor_id = x.actor_id
                 AND e.channel = x.channel AND e.id < x.id
                 AND e.status IN ('pending', 'inflight') AND e.kind = x.kind
               LIMIT 1), false)
          AND x.id NOT IN (SELECT f.id FROM fair f)
        ORDER BY x.id
        LIMIT greatest(0, $3 - (SELECT count(*) FROM fair))
        FOR UPDATE OF x SKIP LOCKED
    ) c
    LIMIT greatest(0, $3 - (SELECT count(*) FROM fair))
),
chosen AS (
    (SELECT r.id FROM (
        SELECT f.id, f.ord, row_number() OVER (PARTITION BY f.tenant_id ORDER BY f.k, f.ord, f.id) AS turn
        FROM fair f
     ) r
     ORDER BY r.turn, r.ord, r.id LIMIT $3)
    UNION ALL
    SELECT id FROM fill
)
UPDATE outbox o SET status = 'inflight', attempts = o.attempts + 1, updated_at = $4
FROM chosen WHERE o.id = chosen.id
RETURNING ";

/// The read of waiting inputs, per poll (shard): the same shape as `CLAIM` without locks (the
/// shard host skips rows it already holds), a page of `$3` rows shared among the shard's
/// tenants. A tenant's share is `$3 / tenants` rows (at least one: a shard counts at most
/// `$3` tenants), so the shares never overflow the page; the fill takes the oldest of the
/// rest. Rows come back grouped by poll but not sorted: the caller sorts each page by id,
/// cheaper than a sort of every page's rows here (a takeover reads 256,000 of them at once).
const POLL: &str = "
WITH RECURSIVE polls AS MATERIALIZED (
    SELECT q.shard, q.before, q.ord
    FROM UNNEST($1::int[], $2::bigint[]) WITH ORDINALITY q(shard, before, ord)
),
pairs (ord, shard, before, tenant_id, depth) AS (
    SELECT q.ord, q.shard, q.before, t.tenant_id, 1 FROM polls q
    CROSS JOIN LATERAL (
        SELECT x.tenant_id FROM inbox x WHERE x.shard = q.shard ORDER BY x.tenant_id LIMIT 1
    ) t
    UNION ALL
    SELECT p.ord, p.shard, p.before, t.tenant_id, p.depth + 1 FROM pairs p
    CROSS JOIN LATERAL (
        SELECT x.tenant_id FROM inbox x WHERE x.shard = p.shard AND x.tenant_id > p.tenant_id
        ORDER BY x.tenant_id LIMIT 1
    ) t
    WHERE p.depth < $3
),
shares AS (SELECT ord, $3 / count(*) AS share FROM pairs GROUP BY ord),
fair AS MATERIALIZED (
    SELECT p.ord, i.* FROM pairs p JOIN shares u ON u.ord = p.ord
    CROSS JOIN LATERAL (
        SELECT x.id, x.tenant_id, x.kind, x.actor_id, x.grp, x.shard, x.input, x.reply
        FROM inbox x
        WHERE x.shard = p.shard AND x.tenant_id = p.tenant_id AND x.created_at < p.before
        ORDER BY x.id LIMIT u.share
    ) i
),
rooms AS (
    SELECT q.ord, q.shard, q.before, $3 - coalesce(n.taken, 0) AS room
    FROM polls q LEFT JOIN (SELECT ord, count(*) AS taken FROM fair GROUP BY ord) n
      ON n.ord = q.ord
),
picked AS (
    SELECT * FROM fair
    UNION ALL
    SELECT r.ord, c.* FROM rooms r
    CROSS JOIN LATERAL (
        SELECT x.id, x.tenant_id, x.kind, x.actor_id, x.grp, x.shard, x.input, x.reply
        FROM inbox x
        WHERE x.shard = r.shard AND x.created_at < r.before
          AND x.id NOT IN (SELECT f.id FROM fair f)
        ORDER BY x.id LIMIT r.room
    ) c
)
SELECT k.ord, k.id, CAST(k.tenant_id AS TEXT), k.kind, CAST(k.actor_id AS TEXT),
       CAST(k.grp AS TEXT), k.shard, CAST(k.input AS TEXT), k.reply
FROM picked k";

/// Poll ordinal, then an inbox row as `rows::InboxTuple` reads it.
type PolledTuple = (i64, i64, String, String, String, String, i32, String, bool);

impl PgStore {
    /// See `POLL`: each poll's page, oldest first.
    pub async fn pending_inboxes(
        &self,
        polls: &[InboxPoll],
        limit: i64,
    ) -> Result<Vec<Vec<InboxRow>>, StoreError> {
        let rows: Vec<PolledTuple> = sqlx::query_as(POLL)
            .bind(polls.iter().map(|p| p.shard.0).collect::<Vec<_>>())
            .bind(
                polls
                    .iter()
                    .map(|p| p.created_before_ms)
                    .collect::<Vec<_>>(),
            )
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        let mut out: Vec<Vec<InboxRow>> = polls.iter().map(|_| Vec::new()).collect();
        for (ord, id, t, kind, actor, grp, shard, input, reply) in rows {
            let row = inbox_row((id, t, kind, actor, grp, shard, input, reply))?;
            let slot = usize::try_from(ord - 1)
                .ok()
                .and_then(|i| out.get_mut(i))
                .ok_or_else(|| StoreError::Corrupt(format!("inbox poll ordinal {ord}")))?;
            slot.push(row);
        }
        // An actor's inputs are applied in the order they were written.
        for page in &mut out {
            page.sort_unstable_by_key(|r| r.id);
        }
        Ok(out)
    }
}
