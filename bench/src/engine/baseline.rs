//! PostgreSQL's own ceiling for the engine's write shape, measured by the engine benchmark
//! before and after its run so that every report carries the baseline of its own moment.
//!
//! The same work as `tools/pg-baseline` (pgbench): one "transition" updates a state row, inserts
//! an outbox row and upserts a timer row, on scratch tables of its own. Two figures:
//! - single: one transition per transaction, 8 clients;
//! - batched: 100 transitions per transaction, 2 clients (the storage ceiling the engine's group
//!   commit can approach).
//!
//! Statements go as pgbench sends them by default: one at a time, each a simple-protocol query
//! with its key written in, so PostgreSQL parses and plans every one. (Prepared statements gave a
//! single-transaction figure up to 2.9 times pgbench's in the same minute on a loaded machine.)

use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use sqlx::postgres::PgConnection;
use sqlx::{Connection, Executor};

use super::BenchArgs;

/// State rows the scratch table holds, as in `pg-baseline`.
pub const STATE_ROWS: i64 = 200_000;
const SINGLE_CLIENTS: usize = 8;
const BATCH_CLIENTS: usize = 2;
const BATCH: i64 = 100;
/// Where each statement takes its transaction's random key.
const KEY: &str = "@K@";

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Baseline {
    /// Transactions per second, one transition each, 8 clients.
    pub single_txn_tps: f64,
    /// Transitions per second, 100 per transaction, 2 clients.
    pub batched_per_s: f64,
}

/// The scratch tables of one measurement: their own names, so a benchmark and the baseline's
/// test (or `pg-baseline`, whose tables are `pgb_*`) never share rows.
struct Tables {
    state: String,
    outbox: String,
    timers: String,
}

impl Tables {
    fn new() -> Self {
        let tag = uuid::Uuid::new_v4().simple().to_string();
        let tag = &tag[..12];
        Self {
            state: format!("nxbl_{tag}_state"),
            outbox: format!("nxbl_{tag}_outbox"),
            timers: format!("nxbl_{tag}_timers"),
        }
    }

    fn single_sql(&self) -> [String; 3] {
        [
            format!(
                "UPDATE {} SET version = version + 1, state = jsonb_set(state, '{{attempts}}', \
                 to_jsonb((state->>'attempts')::int + 1)) WHERE key = 'opp:' || @K@",
                self.state
            ),
            format!(
                "INSERT INTO {}(key, idem, payload) VALUES ('opp:' || @K@, md5(random()::text), \
                 '{{\"kind\":\"sms\",\"to\":\"+15551234567\"}}')",
                self.outbox
            ),
            format!(
                "INSERT INTO {}(key, name, due_at) VALUES ('opp:' || @K@, 'sla', now() + interval '5 min') \
                 ON CONFLICT (key, name) DO UPDATE SET due_at = excluded.due_at",
                self.timers
            ),
        ]
    }

    fn batch_sql(&self) -> [String; 3] {
        [
            format!(
                "UPDATE {} SET version = version + 1, state = jsonb_set(state, '{{attempts}}', \
                 to_jsonb((state->>'attempts')::int + 1)) \
                 WHERE key = ANY (SELECT 'opp:' || (@K@ * {BATCH} + g) FROM generate_series(1, {BATCH}) g)",
                self.state
            ),
            format!(
                "INSERT INTO {}(key, idem, payload) SELECT 'opp:' || (@K@ * {BATCH} + g), md5(random()::text), \
                 '{{\"kind\":\"sms\",\"to\":\"+15551234567\"}}' FROM generate_series(1, {BATCH}) g",
                self.outbox
            ),
            format!(
                "INSERT INTO {}(key, name, due_at) SELECT 'opp:' || (@K@ * {BATCH} + g), 'sla', \
                 now() + interval '5 min' FROM generate_series(1, {BATCH}) g \
                 ON CONFLICT (key, name) DO UPDATE SET due_at = excluded.due_at",
                self.timers
            ),
        ]
    }
}

/// Measures both figures for `seconds` each on the PostgreSQL at `url`, on fresh scratch tables
/// of `rows` state rows that are dropped afterwards (also when the measurement fails).
pub async fn measure(url: &str, seconds: f64, rows: i64) -> anyhow::Result<Baseline> {
    measure_on(url, seconds, rows, &Tables::new()).await
}

async fn measure_on(
    url: &str,
    seconds: f64,
    rows: i64,
    tables: &Tables,
) -> anyhow::Result<Baseline> {
    let mut admin = PgConnection::connect(url)
        .await
        .context("connecting for the PostgreSQL baseline")?;
    let result: anyhow::Result<Baseline> = async {
        create(&mut admin, tables, rows).await?;
        let run_for = Duration::from_secs_f64(seconds);
        let single = drive(url, &tables.single_sql(), SINGLE_CLIENTS, rows, 1, run_for).await?;
        let batched = drive(
            url,
            &tables.batch_sql(),
            BATCH_CLIENTS,
            rows,
            BATCH,
            run_for,
        )
        .await?;
        Ok(Baseline {
            single_txn_tps: single,
            batched_per_s: batched * BATCH as f64,
        })
    }
    .await;
    let dropped = admin
        .execute(
            format!(
                "DROP TABLE IF EXISTS {}, {}, {}",
                tables.state, tables.outbox, tables.timers
            )
            .as_str(),
        )
        .await;
    let baseline = result?;
    dropped.context("dropping the baseline's scratch tables")?;
    Ok(baseline)
}

async fn create(conn: &mut PgConnection, t: &Tables, rows: i64) -> anyhow::Result<()> {
    let ddl = format!(
        "SET client_min_messages = warning;
         CREATE TABLE {s}(key text primary key, version bigint not null, state jsonb not null);
         CREATE TABLE {o}(id bigserial primary key, key text not null, idem text unique not null, payload jsonb not null);
         CREATE TABLE {t}(key text not null, name text not null, due_at timestamptz not null, primary key(key, name));
         INSERT INTO {s} SELECT 'opp:'||g, 0, jsonb_build_object('stage','new','attempts',0,'pad',repeat('x',300))
             FROM generate_series(1, {rows}) g;",
        s = t.state,
        o = t.outbox,
        t = t.timers,
    );
    // Several statements in one simple-protocol call, as psql runs the tool's script.
    conn.execute(ddl.as_str())
        .await
        .context("creating the baseline's scratch tables")?;
    Ok(())
}

/// `clients` connections each run transactions of the three statements, each bound to a random
/// key, until `run_for` has passed. Returns transactions per second over all clients.
async fn drive(
    url: &str,
    sql: &[String; 3],
    clients: usize,
    rows: i64,
    per_txn: i64,
    run_for: Duration,
) -> anyhow::Result<f64> {
    // The batched statement's key counts blocks of 100 rows: 0 .. rows / 100 - 1.
    let keys = (rows / per_txn).max(1);
    let mut conns = Vec::with_capacity(clients);
    for _ in 0..clients {
        conns.push(PgConnection::connect(url).await?);
    }
    let started = Instant::now();
    let deadline = started + run_for;
    let mut tasks = tokio::task::JoinSet::new();
    for (c, mut conn) in conns.into_iter().enumerate() {
        let sql = sql.clone();
        tasks.spawn(async move {
            let mut rng = XorShift::seeded(c as u64);
            let mut done = 0u64;
            while Instant::now() < deadline {
                // pgbench's `random(1, 200000)` and `random(0, 1999)`.
                let k = rng.below(keys as u64) as i64 + i64::from(per_txn == 1);
                let mut tx = conn.begin().await?;
                for statement in &sql {
                    // The key inline and the simple protocol: pgbench's default, which parses
                    // and plans each statement each time, as the tool measures.
                    let text = statement.replace(KEY, &k.to_string());
                    (&mut *tx).execute(text.as_str()).await?;
                }
                tx.commit().await?;
                done += 1;
            }
            conn.close().await?;
            anyhow::Ok(done)
        });
    }
    let mut total = 0u64;
    while let Some(done) = tasks.join_next().await {
        total += done??;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

/// Whether this run measures PostgreSQL's ceiling, or why not.
pub fn plan(args: &BenchArgs) -> Result<(), &'static str> {
    if !args.database_url.starts_with("postgres") {
        Err("SQLite: the baseline is PostgreSQL's ceiling")
    } else if args.baseline_seconds <= 0.0 {
        Err("--baseline-seconds 0")
    } else {
        Ok(())
    }
}

pub async fn measure_around(args: &BenchArgs, when: &str) -> anyhow::Result<Baseline> {
    let b = measure(&args.database_url, args.baseline_seconds, STATE_ROWS)
        .await
        .with_context(|| format!("measuring PostgreSQL's baseline {when} the run"))?;
    eprintln!(
        "PostgreSQL baseline {when}: single-transaction {:.0}/s, batched {:.0}/s",
        b.single_txn_tps, b.batched_per_s
    );
    Ok(b)
}

/// Keys need only be spread, not unpredictable: a small generator rather than a dependency.
struct XorShift(u64);

impl XorShift {
    fn seeded(stream: u64) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        Self((nanos ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// The engine's rate against the baseline: the batched ceiling as the mean of the figures before
/// and after the run (as the target reads), and the single-transaction one likewise.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Ratios {
    pub batched_mean_per_s: f64,
    pub single_mean_tps: f64,
    pub ratio_to_batched: f64,
    pub ratio_to_single: f64,
}

pub fn ratios(engine_per_s: f64, before: &Baseline, after: &Baseline) -> Ratios {
    let batched = (before.batched_per_s + after.batched_per_s) / 2.0;
    let single = (before.single_txn_tps + after.single_txn_tps) / 2.0;
    let ratio = |x: f64| if x > 0.0 { engine_per_s / x } else { 0.0 };
    Ratios {
        batched_mean_per_s: batched,
        single_mean_tps: single,
        ratio_to_batched: ratio(batched),
        ratio_to_single: ratio(single),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Against the test PostgreSQL a short run gives positive figures and leaves no tables.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_short_baseline_gives_positive_figures_and_cleans_up() {
        let url = std::env::var("NEURONX_TEST_PG_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let tables = Tables::new();
        let b = measure_on(&url, 0.3, 5_000, &tables).await.unwrap();
        assert!(b.single_txn_tps > 0.0, "{b:?}");
        assert!(b.batched_per_s > 0.0, "{b:?}");
        let mut conn = PgConnection::connect(&url).await.unwrap();
        for name in [&tables.state, &tables.outbox, &tables.timers] {
            let left: Option<String> = sqlx::query_scalar("SELECT to_regclass($1)::text")
                .bind(name)
                .fetch_one(&mut conn)
                .await
                .unwrap();
            assert_eq!(left, None, "{name} was left behind");
        }
        let r = ratios(1_000.0, &b, &b);
        assert!(r.ratio_to_batched > 0.0 && r.ratio_to_single > 0.0, "{r:?}");
    }
}
