//! `neuronx bench backlog`: a takeover of a large backlog. A first engine, in this process,
//! creates opportunities at night (each waits for calling hours, its timers armed) and stops;
//! one timer of each is then made overdue, and a batch of new leads is queued in the inbox as
//! an import would leave it while no engine runs. A second engine, `neuronx serve` in a process
//! of its own, takes the shards over and drains it all. Reports the drain time and rate, and
//! that process's peak resident memory: admission control (issue #13, item 6) keeps it to what
//! the hosts can run instead of spawning every actor with work at once.
//!
//! PostgreSQL only: the second engine shares the database with this process. A benchmark, not
//! a test: its figures go to docs/benchmarks.md.

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::Serialize;
use tokio::sync::Semaphore;

use neuronx::app::App;
use neuronx::config::Settings;
use neuronx_supervision::store::NewInput;
use neuronx_supervision::{Store, TenantId};

use crate::load;

#[derive(Debug, clap::Args)]
pub struct BacklogArgs {
    /// postgres://...; its data is kept (use a scratch database).
    #[arg(long)]
    pub database_url: String,
    /// Leads queued in the inbox for the takeover (creates, each of which dials).
    #[arg(long, default_value_t = 256_000)]
    pub inputs: u64,
    /// Opportunities created before the takeover, one timer of each overdue at the takeover.
    #[arg(long, default_value_t = 200_000)]
    pub timers: u64,
    /// Creates in flight at once while the timers' opportunities are made.
    #[arg(long, default_value_t = 1_000)]
    pub concurrency: usize,
    /// The engine binary to take over with (`<it> serve`); this executable by default.
    #[arg(long)]
    pub engine_bin: Option<std::path::PathBuf>,
    /// Stop waiting after this many seconds and report what was reached by then (the leads'
    /// follow-ups keep the outbox busy long after the backlog itself is applied).
    #[arg(long, default_value_t = 1_800)]
    pub timeout_seconds: u64,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub inputs: u64,
    pub overdue_timers: u64,
    /// Seconds to build the backlog (not part of the drain).
    pub prepare_s: f64,
    /// From the takeover engine's start: its first shard held; every shard held; every input
    /// applied and every overdue timer fired; every effect sent too (the leads' dials).
    pub first_held_s: f64,
    pub takeover_s: f64,
    /// Every queued input applied and no timer due (None: not within the timeout).
    pub applied_s: Option<f64>,
    /// And the outbox empty too (None: not within the timeout).
    pub drained_s: Option<f64>,
    /// Inputs and timers applied per second, from the first shard held to `applied_s`.
    pub applied_per_s: Option<f64>,
    pub transitions: Option<u64>,
    pub transitions_per_s: Option<f64>,
    /// The takeover engine's process: peak resident set (VmHWM) and resident set at the end.
    pub engine_peak_rss_mb: f64,
    pub engine_rss_end_mb: f64,
    pub shard_count: u32,
    pub max_resident_actors: usize,
    /// What was left, and the engine's memory, every 30 s of the takeover.
    pub samples: Vec<Sample>,
}

#[derive(Debug, Serialize)]
pub struct Sample {
    pub t_s: u64,
    pub inbox: i64,
    pub timers_due: i64,
    pub outbox_open: i64,
    pub rss_mb: f64,
    pub peak_rss_mb: f64,
}

const SAMPLE_EVERY: Duration = Duration::from_secs(30);

const FIRST_TOUCH_S: u64 = 3_600;
const ENGINE_ID: &str = "backlog-takeover";

pub async fn run(mut settings: Settings, args: BacklogArgs) -> anyhow::Result<Report> {
    if !args.database_url.starts_with("postgres") {
        bail!("bench backlog runs on PostgreSQL (--database-url postgres://...)");
    }
    settings.server.database_url = args.database_url.clone();
    load::tune(&mut settings);
    settings.server.instance_id = "backlog-prepare".into();
    let shard_count = settings.engine.shard_count;
    let max_resident_actors = settings.engine.max_resident_actors;
    let prepare = Instant::now();
    let app = App::start(settings)
        .await
        .context("starting the first engine")?;
    let engine = app.engine();
    let store = engine.store().clone();
    let tenant = neuronx::tenants::create(&store, "backlog").await?.tenant_id;
    let permits = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    let night = crate::places::night();
    for i in 0..args.timers {
        let permit = permits.clone().acquire_owned().await?;
        let e = engine.clone();
        tasks.spawn(async move {
            let _permit = permit;
            load::create(&e, tenant, "night", i, night, FIRST_TOUCH_S).await
        });
        while let Some(done) = tasks.try_join_next() {
            done??;
        }
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    app.shutdown().await;
    let overdue = make_overdue(&store, tenant).await?;
    queue_leads(&store, tenant, args.inputs, shard_count).await?;
    let prepare_s = prepare.elapsed().as_secs_f64();
    eprintln!(
        "backlog ready in {prepare_s:.1} s: {} inputs queued, {overdue} timers overdue",
        args.inputs
    );

    let port = crate::demo::free_port()?;
    let bin = match &args.engine_bin {
        Some(b) => b.clone(),
        None => std::env::current_exe()?,
    };
    let mut child = tokio::process::Command::new(bin)
        .arg("serve")
        .envs(load::tune_env())
        .env("NEURONX_SERVER__DATABASE_URL", &args.database_url)
        .env("NEURONX_SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("NEURONX_SERVER__INSTANCE_ID", ENGINE_ID)
        .env("NEURONX_LOG", "warn,sqlx=error")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("starting the takeover engine")?;
    let pid = child.id();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.timeout_seconds);
    let (mut first_held_s, mut takeover_s, mut applied_s) = (None, None, None);
    let mut samples = Vec::new();
    let mut next_sample = started + SAMPLE_EVERY;
    let drained_s = loop {
        if let Some(status) = child.try_wait()? {
            bail!("the takeover engine exited: {status}");
        }
        let t = started.elapsed().as_secs_f64();
        if takeover_s.is_none() {
            let held = held_by(&store, ENGINE_ID).await?;
            if held > 0 && first_held_s.is_none() {
                first_held_s = Some(t);
            }
            if held == i64::from(shard_count) {
                takeover_s = Some(t);
            }
        }
        let b = store.backlog(chrono::Utc::now().timestamp_millis()).await?;
        if applied_s.is_none() && b.inbox == 0 && b.timers_due == 0 {
            applied_s = Some(t);
        }
        if applied_s.is_some() && b.outbox_open == 0 {
            break Some(t);
        }
        if Instant::now() >= next_sample {
            next_sample += SAMPLE_EVERY;
            let sample = Sample {
                t_s: started.elapsed().as_secs(),
                inbox: b.inbox,
                timers_due: b.timers_due,
                outbox_open: b.outbox_open,
                rss_mb: load::status_mb(pid, "VmRSS:"),
                peak_rss_mb: load::status_mb(pid, "VmHWM:"),
            };
            eprintln!("{}", serde_json::to_string(&sample)?);
            samples.push(sample);
        }
        if Instant::now() > deadline {
            eprintln!("not drained within {} s: {b:?}", args.timeout_seconds);
            break None;
        }
        tokio::time::sleep(load::COUNT_EVERY).await;
    };
    let engine_peak_rss_mb = load::status_mb(pid, "VmHWM:");
    let engine_rss_end_mb = load::status_mb(pid, "VmRSS:");
    let transitions = scrape_transitions(port).await;
    stop(&mut child).await;
    store.close().await;
    let ended_s = started.elapsed().as_secs_f64();
    let first_held_s = first_held_s.unwrap_or(ended_s);
    let takeover_s = takeover_s.unwrap_or(ended_s);
    let work = (args.inputs + overdue) as f64;
    Ok(Report {
        inputs: args.inputs,
        overdue_timers: overdue,
        prepare_s,
        first_held_s,
        takeover_s,
        applied_s,
        drained_s,
        applied_per_s: applied_s.map(|a| work / (a - first_held_s).max(0.001)),
        transitions,
        transitions_per_s: transitions.map(|n| n as f64 / ended_s),
        engine_peak_rss_mb,
        engine_rss_end_mb,
        shard_count,
        max_resident_actors,
        samples,
    })
}

/// Makes the earliest timer of each of the tenant's opportunities due a second ago: what a
/// takeover finds after the engine was down past them. Returns how many.
async fn make_overdue(store: &Store, tenant: TenantId) -> anyhow::Result<u64> {
    let Store::Postgres(pg) = store else {
        bail!("PostgreSQL only");
    };
    let past = chrono::Utc::now().timestamp_millis() - 1_000;
    // Fresh statistics first: the timers were all written moments ago, and a plan made for an
    // empty table joined them with themselves row by row (minutes for 40,000 rows).
    sqlx::query("ANALYZE timers").execute(pg.pool()).await?;
    // Per opportunity, through the primary key's prefix (tenant, kind, actor).
    let done = sqlx::query(
        "UPDATE timers t SET due_at = $2
         WHERE t.tenant_id = $1 AND t.kind = 'opportunity'
           AND t.due_at = (SELECT min(u.due_at) FROM timers u
                           WHERE u.tenant_id = t.tenant_id AND u.kind = t.kind
                             AND u.actor_id = t.actor_id)",
    )
    .bind(tenant.0)
    .bind(past)
    .execute(pg.pool())
    .await?;
    Ok(done.rows_affected())
}

/// Queues `count` creates of daytime leads in the inbox, as the API leaves them when no
/// engine owns their shards.
async fn queue_leads(
    store: &Store,
    tenant: TenantId,
    count: u64,
    shard_count: u32,
) -> anyhow::Result<()> {
    let place = crate::places::daytime();
    let mut start = 0;
    while start < count {
        let end = (start + 1_000).min(count);
        let mut batch = Vec::with_capacity((end - start) as usize);
        for i in start..end {
            let (key, input) = load::lead(tenant, "queued", i, place, FIRST_TOUCH_S)?;
            batch.push(NewInput {
                key,
                shard: key.shard(shard_count),
                dedupe_key: format!("backlog-{}-{i}", tenant.0),
                remember: false,
                input,
                reply: false,
                notify: false,
            });
        }
        store.insert_inbox(&batch).await?;
        start = end;
    }
    Ok(())
}

async fn held_by(store: &Store, owner: &str) -> anyhow::Result<i64> {
    let Store::Postgres(pg) = store else {
        bail!("PostgreSQL only");
    };
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM shards WHERE owner = $1")
            .bind(owner)
            .fetch_one(pg.pool())
            .await?,
    )
}

/// The engine's `transitions_total` from its metrics endpoint, if it answers.
async fn scrape_transitions(port: u16) -> Option<u64> {
    let body = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| {
            l.split_whitespace()
                .next()
                .is_some_and(|n| n.ends_with("transitions_total"))
        })
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .map(|v| v as u64)
}

/// SIGTERM (a clean stop releases the shards), then a kill if it does not end in 30 s.
async fn stop(child: &mut tokio::process::Child) {
    if let Some(pid) = child.id() {
        let _ = tokio::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await;
    }
    if tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .is_err()
    {
        let _ = child.kill().await;
    }
}
