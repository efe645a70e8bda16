//! `neuronx bench failover`: several `neuronx serve` processes (children of this binary) on a
//! fresh PostgreSQL database and one Redis, with first-touch timers coming due every few
//! milliseconds on every shard. Then, `--kills` times: `kill -9` one instance and measure the
//! time from the kill to the first timer of one of its shards firing on the new owner (read
//! from the timeline), restart it and wait for the shards to be shared out again. Last, the
//! latency of `pause` sent to an instance that does not own the opportunity. A benchmark, not
//! a test: it prints one JSON object.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::Serialize;
use serde_json::{json, Value};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::Connection;

use neuronx::config::Settings;

mod cluster;

use cluster::*;

#[derive(Debug, clap::Args)]
pub struct FailoverArgs {
    /// An administrative PostgreSQL URL: a fresh database `nx_bench_failover_<random>` is
    /// created on its server and dropped afterwards.
    #[arg(
        long,
        env = "NEURONX_TEST_PG_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    pub database_url: String,
    /// Instances killed one after the other (each restarted before the next kill).
    #[arg(long, default_value_t = 20)]
    pub kills: u32,
    /// Engine instances (at least 2), each its own process, sharing the database.
    #[arg(long, default_value_t = 3)]
    pub instances: usize,
    /// redis://HOST:PORT shared by the instances; without it a `redis-server` of our own is
    /// started on a free port.
    #[arg(long)]
    pub redis_url: Option<String>,
    /// Leads created per second (no consent: each only arms its first-touch timer), which is
    /// how often a timer comes due somewhere.
    #[arg(long, default_value_t = 150)]
    pub rate: u32,
    /// The leads' first-touch SLA: longer than a failover, so timers armed before a kill come
    /// due while its shards have no owner.
    #[arg(long, default_value_t = 10)]
    pub sla_seconds: u64,
    /// Pauses sent to an instance that does not own the opportunity, timed one at a time after
    /// the kills (0: skip).
    #[arg(long, default_value_t = 200)]
    pub pauses: usize,
}

#[derive(Debug, Serialize)]
pub struct FailoverReport {
    pub instances: usize,
    pub shard_count: u32,
    pub lease_ttl_ms: u64,
    pub lease_renew_ms: u64,
    pub kills: usize,
    /// From `kill -9` to the first first-touch timer of one of the victim's shards firing on
    /// its new owner (the timeline entry's time).
    pub failover_p50_ms: i64,
    pub failover_p99_ms: i64,
    pub failover_max_ms: i64,
    /// The fewest timers of the victim's shards that came due between a kill and that first
    /// firing: above 0, every figure measured the takeover, not a wait for a timer to come due.
    pub overdue_at_first_firing_min: i64,
    /// From restarting the victim to every instance holding its fair share again.
    pub rebalance_p50_ms: i64,
    pub rebalance_max_ms: i64,
    pub rounds_not_rebalanced: usize,
    pub leads_created: u64,
    pub create_errors: u64,
    pub pauses_timed: usize,
    pub pauses_not_200: usize,
    pub pause_p50_ms: f64,
    pub pause_p99_ms: f64,
    pub pause_max_ms: f64,
}

struct Instance {
    id: String,
    base: String,
    port: u16,
    proc: Proc,
}

struct Bench {
    exe: std::path::PathBuf,
    dir: tempfile::TempDir,
    db_url: String,
    redis_url: String,
    instances: Vec<Instance>,
    pool: PgPool,
    http: reqwest::Client,
    key: String,
    shard_count: u32,
}

/// Nearest-rank quantile of sorted samples.
fn rank(len: usize, q: f64) -> usize {
    ((len as f64 * q).ceil() as usize).clamp(1, len.max(1)) - 1
}

fn pick(sorted: &[i64], q: f64) -> i64 {
    sorted.get(rank(sorted.len(), q)).copied().unwrap_or(0)
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Calls `check` every `every` until it returns `Some`, or fails after `within`.
async fn poll<T, F, Fut>(
    within: Duration,
    every: u64,
    what: &str,
    mut check: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = check().await? {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("timed out after {within:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(every)).await;
    }
}

pub async fn run(settings: Settings, args: FailoverArgs) -> anyhow::Result<FailoverReport> {
    if args.instances < 2 || args.rate == 0 {
        bail!("--instances must be at least 2 and --rate at least 1");
    }
    let name = format!("nx_bench_failover_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&args.database_url)
        .await
        .context("connecting to PostgreSQL")?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await?;
    let base = args
        .database_url
        .rsplit_once('/')
        .map(|(b, _)| b)
        .unwrap_or(&args.database_url);
    let db_url = format!("{base}/{name}");
    let outcome = measure(&settings, &args, &db_url).await;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await?;
    outcome
}

async fn measure(
    settings: &Settings,
    args: &FailoverArgs,
    db_url: &str,
) -> anyhow::Result<FailoverReport> {
    let e = &settings.engine;
    let dir = tempfile::tempdir()?;
    std::fs::write(
        dir.path().join("bench.toml"),
        format!(
            "[server]\nmax_connections = {}\n[engine]\nshard_count = {}\nlease_ttl_ms = {}\n\
             lease_renew_ms = {}\npoll_interval_ms = {}\n",
            settings.server.max_connections,
            e.shard_count,
            e.lease_ttl_ms,
            e.lease_renew_ms,
            e.poll_interval_ms
        ),
    )?;
    let mut s = settings.clone();
    s.server.database_url = db_url.to_owned();
    let store = neuronx::app::open_store(&s).await?;
    let tenant = neuronx::tenants::create(&store, "bench").await?;
    store.close().await;
    let mut redis = Proc(None);
    let redis_url = match &args.redis_url {
        Some(url) => url.clone(),
        None => {
            let port = crate::demo::free_port()?;
            redis = Proc(Some(
                Command::new("redis-server")
                    .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                    .args(["--save", "", "--appendonly", "no"])
                    .current_dir(dir.path())
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .context("starting redis-server (or pass --redis-url)")?,
            ));
            wait_redis(port).await?;
            format!("redis://127.0.0.1:{port}")
        }
    };
    let mut instances = Vec::new();
    for i in 0..args.instances {
        let port = crate::demo::free_port()?;
        instances.push(Instance {
            id: format!("bench-{}", (b'a' + i as u8) as char),
            base: format!("http://127.0.0.1:{port}"),
            port,
            proc: Proc(None),
        });
    }
    let mut b = Bench {
        exe: std::env::current_exe()?,
        db_url: db_url.to_owned(),
        redis_url,
        instances,
        pool: PgPoolOptions::new()
            .max_connections(2)
            .connect(db_url)
            .await?,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?,
        key: tenant.api_key,
        shard_count: e.shard_count,
        dir,
    };
    for i in 0..b.instances.len() {
        b.start(i)?;
    }
    for i in 0..b.instances.len() {
        b.wait_up(i).await?;
    }
    if !b.wait_balanced(Duration::from_secs(60)).await? {
        bail!(
            "the shards were not shared out within 60 s: {:?}",
            b.owners().await?
        );
    }

    // Timers due all the time: leads created at a steady rate, each due `sla_seconds` later.
    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    let load = spawn_load(
        &b,
        args.rate,
        args.sla_seconds,
        stop.clone(),
        counts.clone(),
    );
    tokio::time::sleep(Duration::from_secs(args.sla_seconds + 2)).await;

    let (mut failovers, mut overdue, mut rebalances) = (Vec::new(), Vec::new(), Vec::new());
    for k in 0..args.kills as usize {
        let (fired_ms, waiting, rebalanced) = kill_once(&mut b, k).await?;
        eprintln!(
            "kill {}/{}: first timer fired {fired_ms} ms after the kill ({waiting} came due \
             meanwhile); rebalanced after restart: {rebalanced:?}",
            k + 1,
            args.kills
        );
        failovers.push(fired_ms);
        overdue.push(waiting);
        rebalances.push(rebalanced);
    }
    stop.store(true, Ordering::Relaxed);
    let _ = load.await;

    let (pause_us, not_200) = time_pauses(&b, args.pauses).await?;
    for inst in &mut b.instances {
        if let Some(mut child) = inst.proc.0.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }
    b.pool.close().await;
    redis.kill9();

    failovers.sort_unstable();
    let not_rebalanced = rebalances.iter().filter(|r| r.is_none()).count();
    let mut rebalances: Vec<i64> = rebalances.into_iter().flatten().collect();
    rebalances.sort_unstable();
    Ok(FailoverReport {
        instances: b.instances.len(),
        shard_count: e.shard_count,
        lease_ttl_ms: e.lease_ttl_ms,
        lease_renew_ms: e.lease_renew_ms,
        kills: failovers.len(),
        failover_p50_ms: pick(&failovers, 0.5),
        failover_p99_ms: pick(&failovers, 0.99),
        failover_max_ms: failovers.last().copied().unwrap_or(0),
        overdue_at_first_firing_min: overdue.iter().copied().min().unwrap_or(0),
        rebalance_p50_ms: pick(&rebalances, 0.5),
        rebalance_max_ms: rebalances.last().copied().unwrap_or(0),
        rounds_not_rebalanced: not_rebalanced,
        leads_created: counts[0].load(Ordering::Relaxed),
        create_errors: counts[1].load(Ordering::Relaxed),
        pauses_timed: pause_us.len(),
        pauses_not_200: not_200,
        pause_p50_ms: pick(&pause_us, 0.5) as f64 / 1000.0,
        pause_p99_ms: pick(&pause_us, 0.99) as f64 / 1000.0,
        pause_max_ms: pause_us.last().copied().unwrap_or(0) as f64 / 1000.0,
    })
}

/// Kills (`kill -9`) an instance that holds shards and waits for the first first-touch timer
/// of those shards to fire elsewhere; restarts it and waits for the shards to be shared out.
/// Returns the ms from kill to that firing, the timers that came due meanwhile, and the ms
/// from restart to balance (None: not within 30 s).
async fn kill_once(b: &mut Bench, k: usize) -> anyhow::Result<(i64, i64, Option<i64>)> {
    let owners = b.owners().await?;
    let held = |id: &str| -> Vec<i32> {
        let mine = owners.iter().filter(|(_, o)| o.as_deref() == Some(id));
        mine.map(|(s, _)| *s).collect()
    };
    let n = b.instances.len();
    let mut v = k % n;
    if held(&b.instances[v].id).is_empty() {
        v = (0..n)
            .max_by_key(|&i| held(&b.instances[i].id).len())
            .unwrap_or(0);
    }
    let shards = held(&b.instances[v].id);
    let kill_ms = now_ms();
    b.instances[v].proc.kill9();
    let what = format!("a timer of {} to fire after kill {k}", b.instances[v].id);
    let fired_at: i64 = poll(Duration::from_secs(60), 100, &what, || async {
        Ok(sqlx::query_scalar(
            "SELECT t.at FROM timeline t
             JOIN actors a ON a.tenant_id = t.tenant_id AND a.kind = t.kind AND a.id = t.actor_id
             WHERE t.entry_kind = 'sla_escalated' AND t.at > $1 AND a.shard = ANY($2)
             ORDER BY t.at LIMIT 1",
        )
        .bind(kill_ms)
        .bind(&shards)
        .fetch_optional(&b.pool)
        .await?)
    })
    .await?;
    // Timers of those shards that came due between the kill and that firing: the new owner
    // found them overdue (none would mean the figure waited for a timer, not the takeover).
    let waiting: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM actors
         WHERE kind = 'opportunity' AND shard = ANY($1)
           AND created_at + (state->>'first_touch_seconds')::bigint * 1000 BETWEEN $2 AND $3",
    )
    .bind(&shards)
    .bind(kill_ms)
    .bind(fired_at)
    .fetch_one(&b.pool)
    .await?;
    b.start(v)?;
    b.wait_up(v).await?;
    let restarted = Instant::now();
    let balanced = b.wait_balanced(Duration::from_secs(30)).await?;
    let rebalanced = balanced.then(|| restarted.elapsed().as_millis() as i64);
    Ok((fired_at - kill_ms, waiting, rebalanced))
}

/// Creates `n` opportunities, then pauses each through an instance that does not own its
/// shard, one at a time; the latencies (µs) of the 200 answers (sorted) and the count of others.
async fn time_pauses(b: &Bench, n: usize) -> anyhow::Result<(Vec<i64>, usize)> {
    if n == 0 {
        return Ok((Vec::new(), 0));
    }
    let bases: Vec<String> = b.instances.iter().map(|i| i.base.clone()).collect();
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let body = lead(1_000_000_000 + i as u64, 3_600);
        let r = b
            .http
            .post(format!("{}/v1/opportunities", bases[i % bases.len()]))
            .bearer_auth(&b.key)
            .json(&body)
            .send()
            .await?;
        let v: Value = r.json().await?;
        let id = v["id"].as_str().context("create answered without an id")?;
        ids.push(id.to_owned());
    }
    let uuids = ids
        .iter()
        .map(|id| id.parse())
        .collect::<Result<Vec<uuid::Uuid>, _>>()?;
    let owners: Vec<(uuid::Uuid, String)> =
        poll(Duration::from_secs(30), 50, "the creates", || async {
            let rows: Vec<(uuid::Uuid, Option<String>)> = sqlx::query_as(
                "SELECT a.id, s.owner FROM actors a JOIN shards s ON s.id = a.shard
             WHERE a.kind = 'opportunity' AND a.id = ANY($1)",
            )
            .bind(&uuids)
            .fetch_all(&b.pool)
            .await?;
            let owned: Vec<(uuid::Uuid, String)> = rows
                .into_iter()
                .filter_map(|(id, o)| Some((id, o?)))
                .collect();
            Ok((owned.len() == n).then_some(owned))
        })
        .await?;
    let mut latencies = Vec::with_capacity(n);
    let mut not_200 = 0;
    for (id, owner) in &owners {
        let Some(via) = b.instances.iter().find(|i| i.id != *owner) else {
            bail!("every instance owns {id}");
        };
        let started = Instant::now();
        let r = b
            .http
            .post(format!("{}/v1/opportunities/{id}/pause", via.base))
            .bearer_auth(&b.key)
            .json(&json!({"operator": "bench"}))
            .send()
            .await?;
        let us = started.elapsed().as_micros() as i64;
        if r.status() == reqwest::StatusCode::OK {
            latencies.push(us);
        } else {
            not_200 += 1;
        }
    }
    latencies.sort_unstable();
    Ok((latencies, not_200))
}
