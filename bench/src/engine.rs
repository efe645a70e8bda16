//! `neuronx bench engine`: drives opportunities through create → call → result → first-touch
//! SLA timer on a real store and reports throughput, commit latency, timer lateness and memory.
//! A benchmark, not a test: it asserts nothing and its figures go to docs/benchmarks.md.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use neuronx_actors::domain::opportunity::{Consent, Contact, OppInput, SlaOverride};
use neuronx_actors::opportunity as opp;
use neuronx_supervision::{SubmitOutcome, TenantId};
use serde::Serialize;
use tokio::sync::Semaphore;

use neuronx_adapters::carrier_sim;

use neuronx::app::App;
use neuronx::config::Settings;

mod baseline;
mod gauges;
mod idle_timers;

use baseline::Baseline;

use gauges::{across, peak_rss_mb, quantile_ms, status_mb, Peaks};

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// postgres://... or sqlite://...; its data is kept (use a scratch database).
    #[arg(long)]
    pub database_url: String,
    /// Opportunities to create.
    #[arg(long, default_value_t = 10_000)]
    pub opportunities: u64,
    /// Seconds from create to each opportunity's first-touch SLA timer.
    #[arg(long, default_value_t = 5)]
    pub first_touch_seconds: u64,
    /// Creates in flight at once.
    #[arg(long, default_value_t = 2_000)]
    pub concurrency: usize,
    /// Extra timers armed a day ahead before the run, to measure lateness under a large table.
    #[arg(long, default_value_t = 0)]
    pub armed_timers: i64,
    /// Creates per second (0: as fast as the engine takes them). A paced run measures timer
    /// lateness at a given load rather than at saturation.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Place calls and texts through the carrier simulator's Twilio-compatible REST API (and
    /// take its signed callbacks through the webhooks) instead of the loopback channel.
    #[arg(long)]
    pub simulator: bool,
    /// Give up waiting for the backlog to drain after this many seconds.
    #[arg(long, default_value_t = 900)]
    pub timeout_seconds: u64,
    /// Leads arrive where calling hours are closed: each is created, its first call deferred
    /// to the morning by a timer and its SLA armed, and then it waits, passivated. Measures
    /// memory and creation with many live opportunities (use a long --first-touch-seconds).
    #[arg(long)]
    pub night: bool,
    /// Engine instances sharing the database, in this process; creates go round robin to them,
    /// so most land on an instance that does not own the actor (PostgreSQL only).
    #[arg(long, default_value_t = 1)]
    pub instances: u32,
    /// The Redis several instances share their send limits through.
    #[arg(
        long,
        env = "NEURONX_REDIS_URL",
        default_value = "redis://127.0.0.1:6379"
    )]
    pub redis_url: String,
    /// Seconds for each of PostgreSQL's own ceiling figures (single-transaction and batched
    /// writes of the same shape, as tools/pg-baseline), measured before and after the run and
    /// printed beside it; 0 skips them. SQLite has no such baseline.
    #[arg(long, default_value_t = 10.0)]
    pub baseline_seconds: f64,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub backend: &'static str,
    pub instances: u32,
    pub carrier: &'static str,
    pub opportunities: u64,
    pub transitions: u64,
    pub elapsed_s: f64,
    pub transitions_per_s: f64,
    pub commit_p50_ms: f64,
    pub commit_p99_ms: f64,
    pub commit_batch_mean: f64,
    pub timer_lateness_p50_ms: f64,
    pub timer_lateness_p99_ms: f64,
    pub timer_lateness_max_ms: i64,
    pub timers_fired: u64,
    pub armed_timers: i64,
    pub rate: u64,
    /// From create to the carrier accepting the first call, over up to 2,000 opportunities.
    pub lead_to_dial_p50_ms: i64,
    pub lead_to_dial_p99_ms: i64,
    pub peak_rss_mb: f64,
    /// The most actors in memory at once, and the most inputs queued in shard hosts, sampled
    /// every 100 ms: what the peak RSS is made of.
    pub resident_actors_peak: i64,
    pub inbox_depth_peak: i64,
    /// After the run, once idle actors had time to passivate (--night only).
    #[serde(flatten)]
    pub after: Option<Settled>,
    /// PostgreSQL's ceiling for the same write shape, just before and just after the run.
    pub baseline_before: Option<Baseline>,
    pub baseline_after: Option<Baseline>,
    /// transitions_per_s against the mean of the two baselines.
    #[serde(flatten)]
    pub ratios: Option<baseline::Ratios>,
    /// Why there is no baseline, when there is none.
    pub baseline_skipped: Option<&'static str>,
}

#[derive(Debug, Serialize)]
pub struct Settled {
    pub live_opportunities: i64,
    pub resident_actors_after: i64,
    pub rss_after_mb: f64,
}

const PASSIVATE_AFTER_MS: u64 = 5_000;

pub async fn run(mut settings: Settings, args: BenchArgs) -> anyhow::Result<Report> {
    if args.opportunities == 0 {
        bail!("--opportunities must be at least 1");
    }
    settings.server.database_url = args.database_url.clone();
    let measure_baseline = baseline::plan(&args);
    let baseline_before = match measure_baseline {
        Ok(()) => Some(baseline::measure_around(&args, "before").await?),
        Err(why) => {
            eprintln!("PostgreSQL baseline: skipped ({why})");
            None
        }
    };
    settings.server.listen = "127.0.0.1:0".into();
    settings.channels.loopback.ring_after_ms = 20;
    settings.channels.loopback.no_answer_after_ms = 50;
    // Idle opportunities leave memory soon after their last input, as at a million leads.
    settings.engine.passivate_after_ms = PASSIVATE_AFTER_MS;
    if args.simulator {
        let port = crate::demo::free_port()?;
        settings.server.listen = format!("127.0.0.1:{port}");
        settings.server.public_url = format!("http://127.0.0.1:{port}");
        settings.secrets.keys = vec![neuronx::secrets::Keyring::generate_entry("bench")];
        settings.outbound.allow = vec!["127.0.0.0/8".into()];
    }
    if args.instances == 0 || (args.instances > 1 && !args.database_url.starts_with("postgres")) {
        bail!("--instances must be 1, or several on a postgres:// database");
    }
    if args.instances > 1 {
        settings.server.redis_url = args.redis_url.clone();
    }
    // Generous limits: the benchmark measures the engine, not the configured send rates
    // (the default 50 dials a second per tenant would pace the whole run).
    settings.limits.voice_per_second = 100_000.0;
    settings.limits.voice_burst = 100_000;
    settings.limits.sms_per_second = 100_000.0;
    settings.limits.sms_burst = 100_000;
    settings.limits.account_calls_per_second = 100_000.0;
    settings.limits.account_calls_burst = 100_000;
    let keyring = settings.keyring()?;
    let shard_count = settings.engine.shard_count as usize;
    settings.server.instance_id = "bench-0".into();
    let app = App::start(settings.clone())
        .await
        .context("starting the engine")?;
    let mut peers = Vec::new();
    for k in 1..args.instances {
        let mut s = settings.clone();
        s.server.instance_id = format!("bench-{k}");
        s.server.listen = "127.0.0.1:0".into();
        peers.push(App::start(s).await.context("starting another instance")?);
    }
    let engine = app.engine();
    let handles: Vec<_> = std::iter::once(engine.clone())
        .chain(peers.iter().map(|p| p.engine()))
        .collect();
    balanced(&handles, shard_count).await?;
    let store = engine.store().clone();
    let backend = store.backend().as_str();
    if args.armed_timers > 0 {
        let day_ahead = chrono::Utc::now().timestamp_millis() + 86_400_000;
        idle_timers::arm(&store, args.armed_timers, day_ahead)
            .await
            .context("arming the extra timers")?;
    }
    let tenant = neuronx::tenants::create(&store, "bench").await?.tenant_id;
    let sim = if args.simulator {
        let mut config = carrier_sim::SimConfig {
            seed: 11,
            ..carrier_sim::SimConfig::default()
        };
        config.reply_mix.probability = 0.0;
        let sim = carrier_sim::start(
            config.clone(),
            tokio::net::TcpListener::bind("127.0.0.1:0").await?,
        )
        .await
        .context("starting the carrier simulator")?;
        let stored = neuronx::tenant_data::StoredCredentials {
            account_sid: config.account_sid.clone(),
            from_number: "+14155550000".into(),
            base_url: Some(sim.base_url.clone()),
            sealed: keyring.seal(&config.auth_token)?,
            line_type_lookup: false,
        };
        neuronx::tenant_data::put_credentials(&store, tenant, "twilio", &stored).await?;
        Some(sim)
    } else {
        None
    };
    let started = Instant::now();
    let transitions_now = || {
        handles
            .iter()
            .map(|h| h.metrics().transitions.get())
            .sum::<u64>()
    };
    let before = transitions_now();
    let peaks = Peaks::start(handles.clone());
    let permits = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    let place = if args.night {
        crate::places::night()
    } else {
        crate::places::daytime()
    };
    let pace = (args.rate > 0).then(|| Duration::from_secs_f64(1.0 / args.rate as f64));
    for i in 0..args.opportunities {
        if let Some(pace) = pace {
            tokio::time::sleep_until((started + pace * i as u32).into()).await;
        }
        let permit = permits.clone().acquire_owned().await?;
        let engine = handles[i as usize % handles.len()].clone();
        let first_touch = args.first_touch_seconds;
        tasks.spawn(async move {
            let _permit = permit;
            create(&engine, tenant, i, first_touch, place).await
        });
        while let Some(done) = tasks.try_join_next() {
            done??;
        }
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let created_by = chrono::Utc::now().timestamp_millis();
    // Done when every first-touch timer has fired and nothing is left in flight; at night,
    // when nothing is left in flight and no timer is overdue.
    let last_due = if args.night {
        created_by
    } else {
        created_by + (args.first_touch_seconds as i64) * 1000 + 1
    };
    let deadline = Instant::now() + Duration::from_secs(args.timeout_seconds);
    loop {
        let b = store.backlog(last_due).await?;
        let now = chrono::Utc::now().timestamp_millis();
        if now > last_due && b.inbox == 0 && b.outbox_open == 0 && b.timers_due == 0 {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "backlog did not drain within {} s: {b:?}",
                args.timeout_seconds
            );
        }
        // Counting the backlog reads whole tables: often enough, not so often that it loads
        // the database the engine is being measured on.
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let m = engine.metrics();
    let transitions = transitions_now() - before;
    let batch = m.commit_batch.get_sample_sum() / (m.commit_batch.get_sample_count().max(1) as f64);
    let (lead_to_dial_p50_ms, lead_to_dial_p99_ms) = lead_to_dial(&store, tenant).await?;
    let after = if args.night {
        Some(settled(&handles, &store, tenant).await?)
    } else {
        None
    };
    let lateness_max = m.timer_lateness_max_ms.get();
    let (resident_actors_peak, inbox_depth_peak) = peaks.finish();
    let mut report = Report {
        backend,
        instances: args.instances,
        carrier: if args.simulator {
            "simulator"
        } else {
            "loopback"
        },
        opportunities: args.opportunities,
        transitions,
        elapsed_s: elapsed,
        transitions_per_s: transitions as f64 / elapsed,
        commit_p50_ms: quantile_ms(&m.commit_latency, 0.5),
        commit_p99_ms: quantile_ms(&m.commit_latency, 0.99),
        commit_batch_mean: batch,
        // Interpolating inside a wide bucket can land past the largest lateness observed.
        timer_lateness_p50_ms: quantile_ms(&m.timer_lateness, 0.5).min(lateness_max as f64),
        timer_lateness_p99_ms: quantile_ms(&m.timer_lateness, 0.99).min(lateness_max as f64),
        timer_lateness_max_ms: lateness_max,
        timers_fired: m.timer_lateness.get_sample_count(),
        armed_timers: args.armed_timers,
        rate: args.rate,
        lead_to_dial_p50_ms,
        lead_to_dial_p99_ms,
        peak_rss_mb: peak_rss_mb(),
        resident_actors_peak,
        inbox_depth_peak,
        after,
        baseline_before: None,
        baseline_after: None,
        ratios: None,
        baseline_skipped: measure_baseline.err(),
    };
    if let Some(sim) = sim {
        if sim.stats().duplicate_creates > 0 {
            bail!("the carrier saw duplicate sends: {:?}", sim.stats());
        }
        sim.shutdown().await;
    }
    for p in peers {
        p.shutdown().await;
    }
    app.shutdown().await;
    if let Some(before) = baseline_before {
        let after = baseline::measure_around(&args, "after").await?;
        let r = baseline::ratios(report.transitions_per_s, &before, &after);
        eprintln!(
            "engine {:.0} transitions/s; PostgreSQL batched {:.0}/s (before {:.0}, after {:.0}), \
             single-transaction {:.0}/s; ratio {:.3}x batched, {:.3}x single",
            report.transitions_per_s,
            r.batched_mean_per_s,
            before.batched_per_s,
            after.batched_per_s,
            r.single_mean_tps,
            r.ratio_to_batched,
            r.ratio_to_single,
        );
        report.baseline_before = Some(before);
        report.baseline_after = Some(after);
        report.ratios = Some(r);
    }
    Ok(report)
}

/// Waits for idle actors to passivate, then counts the opportunities stored (at night none
/// closes: each waits for the morning), the actors still in memory and the memory held.
async fn settled(
    handles: &[neuronx_supervision::EngineHandle],
    store: &neuronx_supervision::Store,
    tenant: TenantId,
) -> anyhow::Result<Settled> {
    let resident = || across(handles, |m| m.resident_actors.get());
    let deadline = Instant::now() + Duration::from_millis(PASSIVATE_AFTER_MS * 4);
    while resident() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(Settled {
        live_opportunities: store.count_actors(tenant, "opportunity").await?,
        resident_actors_after: resident(),
        rss_after_mb: status_mb("VmRSS:"),
    })
}

/// Waits until every instance holds its fair share (within one) of the shards.
async fn balanced(
    handles: &[neuronx_supervision::EngineHandle],
    shard_count: usize,
) -> anyhow::Result<()> {
    let fair = shard_count / handles.len();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut held = Vec::new();
        for h in handles {
            held.push(h.owned_shards().await.len());
        }
        if held.iter().sum::<usize>() == shard_count && held.iter().all(|n| *n >= fair) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the shards did not balance within 60 s: {held:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn lead_to_dial(
    store: &neuronx_supervision::Store,
    tenant: TenantId,
) -> anyhow::Result<(i64, i64)> {
    let rows = store
        .list_actors(&neuronx_supervision::store::ListQuery {
            tenant,
            kind: "opportunity".into(),
            status: None,
            paused: None,
            after: None,
            limit: 2_000,
        })
        .await?;
    let mut samples = Vec::with_capacity(rows.len());
    for row in &rows {
        let timeline = store
            .timeline(tenant, "opportunity", row.key.id, 0, 100)
            .await?;
        if let Some(ms) = crate::demo::speed_to_lead(store, tenant, row, &timeline).await? {
            samples.push(ms);
        }
    }
    samples.sort_unstable();
    let pick = |q: f64| {
        samples
            .get(((samples.len().max(1) - 1) as f64 * q).round() as usize)
            .copied()
            .unwrap_or(0)
    };
    Ok((pick(0.5), pick(0.99)))
}

async fn create(
    engine: &neuronx_supervision::EngineHandle,
    tenant: TenantId,
    i: u64,
    first_touch_seconds: u64,
    place: &crate::places::Place,
) -> anyhow::Result<()> {
    let external_id = format!("bench-{i}");
    let id = opp::id_for(tenant, &external_id);
    let input = OppInput::Create {
        id,
        external_id,
        contact: Contact {
            name: format!("Lead {i}"),
            phone: Some(place.phone(i)),
            email: None,
            timezone: Some(place.zone.into()),
            consent: Consent {
                voice: true,
                sms: true,
                email: false,
            },
        },
        playbook: "speed-to-lead".into(),
        sla: Some(SlaOverride {
            first_touch_seconds: Some(first_touch_seconds),
        }),
        assignee: None,
        team: None,
        history: Default::default(),
    };
    let outcome = engine
        .submit(opp::key(tenant, id), serde_json::to_value(input)?, None)
        .await?;
    match outcome {
        SubmitOutcome::Applied(_) | SubmitOutcome::Accepted => Ok(()),
        other => bail!("create {id} was not applied: {other:?}"),
    }
}
