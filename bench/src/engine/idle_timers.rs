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

/// The product's guard that drops a test's PostgreSQL database, passed or panicked.
#[cfg(test)]
#[path = "../../../tests/common/dropped_db.rs"]
mod dropped_db;

#[cfg(test)]
mod tests {
    use super::dropped_db;
    use neuronx_supervision::Store;
    use sqlx::Row;

    const SHARDS: u32 = 16;

    /// The rows `arm` wrote: (count, distinct shards, min and max due, highest shard).
    async fn idle_rows(store: &Store) -> (i64, i64, i64, i64, i64) {
        let sql = "SELECT count(*), count(DISTINCT shard), min(due_at), max(due_at), max(shard)
                   FROM timers WHERE kind = 'idle'";
        match store {
            Store::Postgres(pg) => {
                let r = sqlx::query(sql).fetch_one(pg.pool()).await.unwrap();
                let shard: i32 = r.get(4);
                (r.get(0), r.get(1), r.get(2), r.get(3), i64::from(shard))
            }
            Store::Sqlite(lite) => {
                let r = sqlx::query(sql).fetch_one(lite.pool()).await.unwrap();
                (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4))
            }
        }
    }

    /// Armed timers land in the runtime's table as the timer service reads it: all of them,
    /// due when asked, spread over every shard and no further.
    async fn arms_the_timers_over_the_shards(store: Store) {
        store.migrate(SHARDS).await.unwrap();
        let due = 4_102_444_800_000; // 2100-01-01: never due during the test
        super::arm(&store, 1_000, due).await.unwrap();
        let (count, shards, min_due, max_due, top) = idle_rows(&store).await;
        assert_eq!((count, min_due, max_due), (1_000, due, due));
        assert_eq!((shards, top), (i64::from(SHARDS), i64::from(SHARDS) - 1));
        store.close().await;
    }

    #[tokio::test]
    async fn sqlite_arms_the_timers_over_the_shards() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("idle.db").display());
        arms_the_timers_over_the_shards(Store::connect(&url, 2).await.unwrap()).await;
    }

    #[tokio::test]
    async fn postgres_arms_the_timers_over_the_shards() {
        let admin = std::env::var("NEURONX_TEST_PG_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let name = format!("nx_t_idle_{}", uuid::Uuid::new_v4().simple());
        {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await
                .unwrap();
        }
        let _dropped = dropped_db::DroppedDatabase {
            admin_url: admin.clone(),
            name: name.clone(),
        };
        let url = match admin.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{name}"),
            None => panic!("NEURONX_TEST_PG_URL has no database: {admin}"),
        };
        arms_the_timers_over_the_shards(Store::connect(&url, 2).await.unwrap()).await;
    }
}
