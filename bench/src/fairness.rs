//! `neuronx bench fairness`: tenant A imports leads as fast as the engine takes them while
//! tenant B creates one every 100 ms; reports B's lead-to-dial (create to the carrier
//! accepting the first call) and A's throughput. Without a fair share of the outbox claims
//! (issue #13, item 6) B's dials queued behind all of A's. A benchmark, not a test: its figures
//! go to docs/benchmarks.md.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::Serialize;
use tokio::sync::Semaphore;

use neuronx::app::App;
use neuronx::config::Settings;

use crate::load;

#[derive(Debug, clap::Args)]
pub struct FairnessArgs {
    /// postgres://... or sqlite://...; its data is kept (use a scratch database).
    #[arg(long)]
    pub database_url: String,
    /// Leads tenant A imports.
    #[arg(long, default_value_t = 50_000)]
    pub import: u64,
    /// A's creates in flight at once (the import's clients).
    #[arg(long, default_value_t = 1_000)]
    pub concurrency: usize,
    /// Milliseconds between two of tenant B's leads.
    #[arg(long, default_value_t = 100)]
    pub b_every_ms: u64,
    /// Give up waiting for the backlog to drain after this many seconds.
    #[arg(long, default_value_t = 900)]
    pub timeout_seconds: u64,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub backend: &'static str,
    pub a_leads: u64,
    /// From the first create to the last one applied, and to A's last lead dialled (the
    /// carrier's answer to its first call recorded).
    pub a_import_s: f64,
    pub a_creates_per_s: f64,
    pub a_drain_s: f64,
    pub a_dials_per_s: f64,
    /// From each create's submit to its first dial: A's leads wait for the import ahead of
    /// them, B's should not.
    pub a_lead_to_dial_p50_ms: i64,
    pub a_lead_to_dial_p99_ms: i64,
    pub b_leads: usize,
    pub b_dialled: usize,
    pub b_lead_to_dial_p50_ms: i64,
    pub b_lead_to_dial_p99_ms: i64,
    pub b_lead_to_dial_max_ms: i64,
    /// B's lead-to-dial split at the dial's commit: submit to commit (two actors' inbox, load,
    /// apply, commit), and commit to the carrier's answer (claim, precheck, request, completion).
    pub b_to_commit_p50_ms: i64,
    pub b_to_commit_p99_ms: i64,
    pub b_commit_to_dial_p50_ms: i64,
    pub b_commit_to_dial_p99_ms: i64,
    /// Means over every tenant, from the engine's own histograms: a group commit's write, and
    /// a dial's execution from its claim to its outcome (the precheck and the carrier's
    /// answer, not the completion's write).
    pub commit_mean_ms: f64,
    pub dial_execution_mean_ms: f64,
    /// The outbox claim's query, and how many claims ran.
    pub claim_mean_ms: f64,
    pub claims: u64,
    pub peak_rss_mb: f64,
}

/// First touch far away: no SLA timer fires during the run, whatever its length.
const FIRST_TOUCH_S: u64 = 3_600;

pub async fn run(mut settings: Settings, args: FairnessArgs) -> anyhow::Result<Report> {
    if args.import == 0 || args.b_every_ms == 0 {
        bail!("--import and --b-every-ms must be at least 1");
    }
    settings.server.database_url = args.database_url.clone();
    load::tune(&mut settings);
    settings.server.instance_id = "fairness-0".into();
    let app = App::start(settings).await.context("starting the engine")?;
    let engine = app.engine();
    let store = engine.store().clone();
    let a = neuronx::tenants::create(&store, "importer")
        .await?
        .tenant_id;
    let b = neuronx::tenants::create(&store, "neighbour")
        .await?
        .tenant_id;
    let place = crate::places::daytime();

    // Tenant B: one lead every `b_every_ms`, until A's import is dialled.
    let (stop_b, mut stopped) = tokio::sync::watch::channel(false);
    let b_engine = engine.clone();
    let every = Duration::from_millis(args.b_every_ms);
    let b_task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        let mut n = 0u64;
        let mut creates = tokio::task::JoinSet::new();
        let mut submitted = Vec::new();
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stopped.changed() => break,
            }
            let e = b_engine.clone();
            creates.spawn(async move { load::create(&e, b, "b", n, place, FIRST_TOUCH_S).await });
            n += 1;
        }
        while let Some(done) = creates.join_next().await {
            submitted.push(done??);
        }
        anyhow::Ok(submitted)
    });

    let started = Instant::now();
    let permits = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    let mut a_submitted = Vec::with_capacity(args.import as usize);
    for i in 0..args.import {
        let permit = permits.clone().acquire_owned().await?;
        let e = engine.clone();
        tasks.spawn(async move {
            let _permit = permit;
            load::create(&e, a, "a", i, place, FIRST_TOUCH_S).await
        });
        while let Some(done) = tasks.try_join_next() {
            a_submitted.push(done??);
        }
    }
    while let Some(done) = tasks.join_next().await {
        a_submitted.push(done??);
    }
    let a_import_s = started.elapsed().as_secs_f64();

    // Done when every one of A's leads has been dialled (B's keep coming meanwhile).
    let deadline = Instant::now() + Duration::from_secs(args.timeout_seconds);
    loop {
        let dialled = load::dialled(&store, a).await?;
        if dialled >= args.import as i64 {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "{dialled} of A's {} leads dialled within {} s",
                args.import,
                args.timeout_seconds
            );
        }
        tokio::time::sleep(load::COUNT_EVERY).await;
    }
    let a_drain_s = started.elapsed().as_secs_f64();
    let _ = stop_b.send(true);
    let b_submitted = b_task.await??;
    // B's last leads, created just before the stop, are dialled within the second.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let peak_rss_mb = load::status_mb(None, "VmHWM:");

    let a_samples = load::lead_to_dial(&store, a, &a_submitted).await?;
    let b_stages = load::dial_stages(&store, b, &b_submitted).await?;
    let b_samples = &b_stages.total;
    let m = engine.metrics();
    let mean_ms = |sum: f64, count: u64| 1_000.0 * sum / count.max(1) as f64;
    let dial = m.effect_latency.with_label_values(&["voice"]);
    let report = Report {
        backend: store.backend().as_str(),
        a_leads: args.import,
        a_import_s,
        a_creates_per_s: args.import as f64 / a_import_s,
        a_drain_s,
        a_dials_per_s: args.import as f64 / a_drain_s,
        a_lead_to_dial_p50_ms: load::pick(&a_samples, 0.5),
        a_lead_to_dial_p99_ms: load::pick(&a_samples, 0.99),
        b_leads: b_submitted.len(),
        b_dialled: b_samples.len(),
        b_lead_to_dial_p50_ms: load::pick(b_samples, 0.5),
        b_lead_to_dial_p99_ms: load::pick(b_samples, 0.99),
        b_lead_to_dial_max_ms: b_samples.last().copied().unwrap_or(0),
        b_to_commit_p50_ms: load::pick(&b_stages.to_commit, 0.5),
        b_to_commit_p99_ms: load::pick(&b_stages.to_commit, 0.99),
        b_commit_to_dial_p50_ms: load::pick(&b_stages.commit_to_dial, 0.5),
        b_commit_to_dial_p99_ms: load::pick(&b_stages.commit_to_dial, 0.99),
        commit_mean_ms: mean_ms(
            m.commit_latency.get_sample_sum(),
            m.commit_latency.get_sample_count(),
        ),
        dial_execution_mean_ms: mean_ms(dial.get_sample_sum(), dial.get_sample_count()),
        claim_mean_ms: mean_ms(
            m.outbox_claim.get_sample_sum(),
            m.outbox_claim.get_sample_count(),
        ),
        claims: m.outbox_claim.get_sample_count(),
        peak_rss_mb,
    };
    app.shutdown().await;
    Ok(report)
}
