//! `--armed-timers`: a large timers table for the timer-lateness figures. The rows are written
//! here, with the runtime's schema, on the store's own pool: arming timers nobody owns is a
//! benchmark's need, not something the runtime's `Store` offers (ADR 0034).

use neuronx_supervision::Store;

/// Arms `count` timers of a kind no engine registers (`idle`), due at `due_ms`, spread over the
/// shards: load in the index the timer service reads, never fired by anyone.
pub(super) async fn arm(store: &Store, count: i64, due_ms: i64) -> Result<(), sqlx::Error> {
    // Per backend: random ids and a row generator are spelled differently (gen_random_uuid and
    // generate_series on PostgreSQL, randomblob and a recursive CTE on SQLite).
    match store {
        Store::Postgres(pg) => {
            sqlx::query(
                "INSERT INTO timers (tenant_id, kind, actor_id, name, grp, shard, due_at, input)
                 SELECT gen_random_uuid(), 'idle', gen_random_uuid(), 'idle', gen_random_uuid(),
                        (g % (SELECT count(*) FROM shards))::int, $2, '{}'::jsonb
                 FROM generate_series(1, $1) g",
            )
            .bind(count)
            .bind(due_ms)
            .execute(pg.pool())
            .await?;
        }
        Store::Sqlite(lite) => {
            sqlx::query(
                "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < ?1)
                 INSERT INTO timers (tenant_id, kind, actor_id, name, grp, shard, due_at, input)
                 SELECT lower(hex(randomblob(16))), 'idle', lower(hex(randomblob(16))), 'idle',
                        lower(hex(randomblob(16))), n % max((SELECT count(*) FROM shards), 1),
                        ?2, '{}'
                 FROM g",
            )
            .bind(count)
            .bind(due_ms)
            .execute(lite.pool())
            .await?;
        }
    }
    Ok(())
}
