//! Plain SQL on a schedule's database, beside the engines: the logs the invariants read and the
//! connection cuts.
//!
//! Two logs are kept by triggers the driver installs once the engines have migrated (the
//! product knows nothing of them):
//! - `sim_timer_removals`: every timer row deleted or moved (its old `due_at`), with the
//!   database's clock at that moment. A firing consumes its row, so the database's time of a
//!   firing is the time its row went: "never early by the database clock" compares the two.
//! - `sim_versions`: every actor row written at a version other than one past its last (or
//!   whose state changed without a new version), which must stay empty.
//! - `sim_opt_outs`: when each `opted_out` timeline entry was written, by the database's clock.
//!   An entry's `at` is its transition's time, taken before the commit: an engine frozen in
//!   between (a stall) commits the opt-out only when it thaws, and cannot honour it before.

use sqlx::{PgPool, Row, SqlitePool};

pub enum Db {
    Pg(PgPool),
    Sqlite(SqlitePool),
}

/// A timer row that went, and when by the database's clock.
#[derive(Debug, Clone)]
pub struct Removal {
    pub actor: String,
    pub name: String,
    pub due_at_ms: i64,
    pub at_ms: i64,
}

/// An outbox row, as the effect checks read it.
#[derive(Debug, Clone)]
pub struct Effect {
    /// The actor whose effect it is (an opportunity or one of its calls).
    #[allow(dead_code)]
    pub actor: String,
    /// The group: the opportunity, for its own effects and its calls'.
    pub grp: String,
    pub idem_key: String,
    pub channel: String,
    pub status: String,
    #[allow(dead_code)]
    pub payload: String,
    pub result: Option<String>,
}

const PG_LOGS: &str = r#"
CREATE TABLE sim_timer_removals (actor_id TEXT, name TEXT, due_at BIGINT, at_ms BIGINT);
CREATE FUNCTION sim_timer_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' OR NEW.due_at <> OLD.due_at THEN
    INSERT INTO sim_timer_removals
    VALUES (OLD.actor_id::text, OLD.name, OLD.due_at,
            (extract(epoch FROM clock_timestamp()) * 1000)::bigint);
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER sim_timer_removed AFTER DELETE OR UPDATE ON timers
  FOR EACH ROW EXECUTE FUNCTION sim_timer_removed();
CREATE TABLE sim_versions (actor_id TEXT, old_version BIGINT, new_version BIGINT);
CREATE FUNCTION sim_version_written() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    IF NEW.version <> 1 THEN
      INSERT INTO sim_versions VALUES (NEW.id::text, NULL, NEW.version);
    END IF;
  ELSIF NEW.version <> OLD.version + 1
        AND (NEW.version <> OLD.version OR NEW.state IS DISTINCT FROM OLD.state) THEN
    INSERT INTO sim_versions VALUES (NEW.id::text, OLD.version, NEW.version);
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER sim_version_written AFTER INSERT OR UPDATE ON actors
  FOR EACH ROW EXECUTE FUNCTION sim_version_written();
CREATE TABLE sim_opt_outs (actor_id TEXT, version BIGINT, at_ms BIGINT);
CREATE FUNCTION sim_opt_out_written() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO sim_opt_outs
  VALUES (NEW.actor_id::text, NEW.version, (extract(epoch FROM clock_timestamp()) * 1000)::bigint);
  RETURN NULL;
END $$;
CREATE TRIGGER sim_opt_out_written AFTER INSERT ON timeline
  FOR EACH ROW WHEN (NEW.entry_kind = 'opted_out') EXECUTE FUNCTION sim_opt_out_written();
"#;

const SQLITE_LOGS: [&str; 8] = [
    "CREATE TABLE sim_timer_removals (actor_id TEXT, name TEXT, due_at INTEGER, at_ms INTEGER)",
    "CREATE TRIGGER sim_timer_deleted AFTER DELETE ON timers BEGIN
       INSERT INTO sim_timer_removals VALUES (OLD.actor_id, OLD.name, OLD.due_at,
         CAST(ROUND((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER));
     END",
    "CREATE TRIGGER sim_timer_moved AFTER UPDATE ON timers WHEN NEW.due_at <> OLD.due_at BEGIN
       INSERT INTO sim_timer_removals VALUES (OLD.actor_id, OLD.name, OLD.due_at,
         CAST(ROUND((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER));
     END",
    "CREATE TABLE sim_versions (actor_id TEXT, old_version INTEGER, new_version INTEGER)",
    "CREATE TRIGGER sim_version_inserted AFTER INSERT ON actors WHEN NEW.version <> 1 BEGIN
       INSERT INTO sim_versions VALUES (NEW.id, NULL, NEW.version);
     END",
    "CREATE TRIGGER sim_version_updated AFTER UPDATE ON actors
       WHEN NEW.version <> OLD.version + 1
        AND (NEW.version <> OLD.version OR NEW.state IS NOT OLD.state) BEGIN
       INSERT INTO sim_versions VALUES (NEW.id, OLD.version, NEW.version);
     END",
    "CREATE TABLE sim_opt_outs (actor_id TEXT, version INTEGER, at_ms INTEGER)",
    "CREATE TRIGGER sim_opt_out_written AFTER INSERT ON timeline
       WHEN NEW.entry_kind = 'opted_out' BEGIN
       INSERT INTO sim_opt_outs VALUES (NEW.actor_id, NEW.version,
         CAST(ROUND((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER));
     END",
];

impl Db {
    pub async fn connect(url: &str) -> Db {
        if url.starts_with("postgres") {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(2)
                .connect(url)
                .await
                .unwrap();
            Db::Pg(pool)
        } else {
            let pool = sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(1)
                .connect(url)
                .await
                .unwrap();
            Db::Sqlite(pool)
        }
    }

    /// The `application_name` of engine `n`'s connections.
    pub fn engine_name(n: usize) -> String {
        format!("sim-engine-{n}")
    }

    pub async fn install_logs(&self) {
        match self {
            Db::Pg(pool) => {
                sqlx::raw_sql(PG_LOGS).execute(pool).await.unwrap();
            }
            Db::Sqlite(pool) => {
                for statement in SQLITE_LOGS {
                    sqlx::query(statement).execute(pool).await.unwrap();
                }
            }
        }
    }

    /// Terminates every connection engine `n` holds (PostgreSQL; nothing to cut in SQLite).
    pub async fn cut(&self, n: usize) -> u64 {
        let Db::Pg(pool) = self else { return 0 };
        sqlx::query(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE datname = current_database() AND application_name = $1",
        )
        .bind(Db::engine_name(n))
        .fetch_one(pool)
        .await
        .map(|r| r.get::<i64, _>(0) as u64)
        .unwrap_or(0)
    }

    pub async fn timer_removals(&self) -> Vec<Removal> {
        let q = "SELECT actor_id, name, due_at, at_ms FROM sim_timer_removals";
        let rows = match self {
            Db::Pg(pool) => sqlx::query(q)
                .fetch_all(pool)
                .await
                .unwrap()
                .into_iter()
                .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
                .collect::<Vec<(String, String, i64, i64)>>(),
            Db::Sqlite(pool) => sqlx::query(q)
                .fetch_all(pool)
                .await
                .unwrap()
                .into_iter()
                .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
                .collect(),
        };
        rows.into_iter()
            .map(|(actor, name, due_at_ms, at_ms)| Removal {
                actor,
                name,
                due_at_ms,
                at_ms,
            })
            .collect()
    }

    /// When each opt-out was written, by the database's clock: `(actor, version) → ms`.
    pub async fn opt_outs(&self) -> std::collections::HashMap<(String, i64), i64> {
        let q = "SELECT actor_id, version, at_ms FROM sim_opt_outs";
        let rows: Vec<(String, i64, i64)> = match self {
            Db::Pg(pool) => sqlx::query_as(q).fetch_all(pool).await.unwrap(),
            Db::Sqlite(pool) => sqlx::query_as(q).fetch_all(pool).await.unwrap(),
        };
        rows.into_iter()
            .map(|(actor, version, at)| ((actor, version), at))
            .collect()
    }

    /// Actor rows written at a version other than one past the last.
    pub async fn version_jumps(&self) -> Vec<(String, Option<i64>, i64)> {
        let q = "SELECT actor_id, old_version, new_version FROM sim_versions";
        match self {
            Db::Pg(pool) => sqlx::query(q)
                .fetch_all(pool)
                .await
                .unwrap()
                .into_iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect(),
            Db::Sqlite(pool) => sqlx::query(q)
                .fetch_all(pool)
                .await
                .unwrap()
                .into_iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect(),
        }
    }

    /// Every outbox row.
    pub async fn effects(&self) -> Vec<Effect> {
        let map = |(actor, grp, idem_key, channel, status, payload, result)| Effect {
            actor,
            grp,
            idem_key,
            channel,
            status,
            payload,
            result,
        };
        match self {
            Db::Pg(pool) => sqlx::query(
                "SELECT actor_id::text, grp::text, idem_key, channel, status, payload::text, result::text
                 FROM outbox ORDER BY id",
            )
            .fetch_all(pool)
            .await
            .unwrap()
            .into_iter()
            .map(|r| {
                map((
                    r.get(0),
                    r.get(1),
                    r.get(2),
                    r.get(3),
                    r.get(4),
                    r.get(5),
                    r.get(6),
                ))
            })
            .collect(),
            Db::Sqlite(pool) => sqlx::query(
                "SELECT actor_id, grp, idem_key, channel, status, payload, result FROM outbox ORDER BY id",
            )
            .fetch_all(pool)
            .await
            .unwrap()
            .into_iter()
            .map(|r| {
                map((
                    r.get(0),
                    r.get(1),
                    r.get(2),
                    r.get(3),
                    r.get(4),
                    r.get(5),
                    r.get(6),
                ))
            })
            .collect(),
        }
    }

    /// Shard acquisitions beyond the first of each shard: how often shards changed hands (or
    /// were taken again after a lease ran out).
    pub async fn takeovers(&self) -> i64 {
        let q =
            "SELECT CAST(COALESCE(SUM(epoch), 0) - COUNT(*) AS BIGINT) FROM shards WHERE epoch > 0";
        match self {
            Db::Pg(pool) => sqlx::query_scalar(q).fetch_one(pool).await.unwrap(),
            Db::Sqlite(pool) => sqlx::query_scalar(q).fetch_one(pool).await.unwrap(),
        }
    }

    pub async fn close(&self) {
        match self {
            Db::Pg(pool) => pool.close().await,
            Db::Sqlite(pool) => pool.close().await,
        }
    }
}
