//! `neuronx bench webhooks`: how many signed Twilio voice status callbacks the HTTP edge takes
//! per second, against a bare axum server answering the same requests with an empty 200.
//!
//! One process, one run, loopback only:
//! 1. **Baseline**: a bare axum server whose only route (the same POST path shape) answers 200
//!    with an empty body, driven by the load generator below with the same form bodies and
//!    headers. This is the ceiling the HTTP stack, the client and the machine allow.
//! 2. **Engine**: NeuronX (`App::start`) on the given database, on a fixed free port with
//!    `public_url = http://127.0.0.1:<port>`, a generated keyring key, a fresh tenant whose
//!    Twilio credentials are stored through `PUT /v1/channels/twilio`. K real call actors are
//!    placed with `CallInput::Place`; their dial requests go to a small stub carrier in this
//!    process that accepts each call with `CallSid = "CA" + call id`, so the calls stay alive
//!    (queued, with a provider sid) and the callbacks are *applied*, not dropped as unknown or
//!    ignored by a failed call. Then N callbacks, signed exactly as Twilio signs them, are spread
//!    over the K calls with unique (CallSid, SequenceNumber) pairs and CallStatus cycling
//!    initiated → ringing → in-progress (never terminal: no outcome is reported to an
//!    opportunity that does not exist).
//! 3. **Verification**: after the run the inbox must drain; the report counts the webhook
//!    outcomes the server recorded (accepted/duplicate/unknown), the calls that reached
//!    in-progress, the `call_status` timeline rows written and the tenant's dead letters.
//!
//! A benchmark, not a test: it asserts nothing about speed, only that every request was
//! answered 200 and the calls ended where the callbacks put them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;
use neuronx_actors::domain::call::CallInput;
use neuronx_actors::{call as call_actor, opportunity as opp};
use neuronx_adapters::twilio::signature;
use neuronx_supervision::{SubmitOutcome, TenantId};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, Semaphore};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::demo::free_port;
use neuronx::app::App;
use neuronx::config::Settings;
use neuronx::secrets::Keyring;

mod load;
mod servers;

use load::*;
use servers::*;

/// The auth token the bench tenant's account uses; it signs every callback.
const AUTH_TOKEN: &str = "bench-webhooks-auth-token-0123456789";
const ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";
/// Statuses the callbacks cycle through, by sequence number. None is terminal.
const STATUSES: [&str; 3] = ["initiated", "ringing", "in-progress"];
/// Per-request bound: a request slower than this counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on one load run, and on each wait for the engine to settle.
const RUN_DEADLINE: Duration = Duration::from_secs(900);
const SETTLE_DEADLINE: Duration = Duration::from_secs(180);

#[derive(Debug, clap::Args)]
pub struct WebhookBenchArgs {
    /// postgres://... or sqlite://...; its data is kept (use a scratch database).
    #[arg(long)]
    pub database_url: String,
    /// Signed voice status callbacks to send.
    #[arg(long, default_value_t = 50_000)]
    pub requests: usize,
    /// Requests in flight at once (client workers, each with its own pooled connection).
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Distinct call actors the callbacks are spread over.
    #[arg(long, default_value_t = 1_000)]
    pub calls: usize,
}

#[derive(Debug, Serialize)]
pub struct BaselineFigures {
    pub requests_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub requests: usize,
    pub non_200: u64,
}

#[derive(Debug, Serialize)]
pub struct EngineFigures {
    /// 200 answers per second of wall time for the whole run.
    pub accepted_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Answers other than 200, plus requests that got no answer (transport errors, timeouts).
    pub non_200: u64,
    pub requests: usize,
    pub calls: usize,
    pub concurrency: usize,
}

/// What could be checked in the store and the server's counters after the run.
#[derive(Debug, Serialize)]
pub struct Verification {
    /// The inbox emptied (every durable callback was applied) within the settle deadline.
    pub drained: bool,
    pub drain_ms: u64,
    /// The server's `webhooks_total{route="voice_status"}` by outcome, for this run.
    pub webhook_accepted: u64,
    pub webhook_duplicate: u64,
    pub webhook_unknown: u64,
    pub webhook_other: u64,
    /// Calls whose stored status is in-progress (all of them, when each got 3+ callbacks).
    pub calls_in_progress: usize,
    /// `call_status` timeline rows recording a status change (`data.to` set; the row for the
    /// carrier accepting the dial is not counted): one per change a callback caused, 1 to 3
    /// per call depending on arrival order (stale and repeated statuses change nothing).
    pub call_status_events: usize,
    pub dead_letters: usize,
}

#[derive(Debug, Serialize)]
pub struct WebhookReport {
    pub baseline: BaselineFigures,
    pub engine: EngineFigures,
    /// engine.accepted_per_s / baseline.requests_per_s.
    pub ratio: f64,
    pub backend: &'static str,
    pub verification: Verification,
}

/// `neuronx_webhooks_total{route="voice_status"}` by outcome, from the engine's registry.
fn webhook_counts(rendered: &str) -> std::collections::BTreeMap<String, u64> {
    let mut counts = std::collections::BTreeMap::new();
    for line in rendered.lines() {
        let Some(rest) = line.strip_prefix("neuronx_webhooks_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.split_once("} ") else {
            continue;
        };
        if !labels.contains("route=\"voice_status\"") {
            continue;
        }
        let outcome = labels
            .split(',')
            .find_map(|l| l.strip_prefix("outcome=\""))
            .map(|o| o.trim_end_matches('"').to_owned())
            .unwrap_or_default();
        let n = value.trim().parse::<f64>().unwrap_or(0.0) as u64;
        *counts.entry(outcome).or_insert(0) += n;
    }
    counts
}

/// Waits until no input is waiting and no effect is open; the time it took.
async fn settle(store: &neuronx_supervision::Store) -> anyhow::Result<Option<Duration>> {
    let started = Instant::now();
    loop {
        let now = chrono::Utc::now().timestamp_millis();
        let b = store.backlog(now).await?;
        if b.inbox == 0 && b.outbox_open == 0 {
            return Ok(Some(started.elapsed()));
        }
        if started.elapsed() > SETTLE_DEADLINE {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn run(mut settings: Settings, args: WebhookBenchArgs) -> anyhow::Result<WebhookReport> {
    if args.requests == 0 || args.calls == 0 || args.concurrency == 0 {
        bail!("--requests, --calls and --concurrency must each be at least 1");
    }
    let port = free_port()?;
    settings.server.database_url = args.database_url.clone();
    settings.server.listen = format!("127.0.0.1:{port}");
    settings.server.public_url = format!("http://127.0.0.1:{port}");
    settings.secrets.keys = vec![Keyring::generate_entry("bench")];
    settings.outbound.allow = vec!["127.0.0.0/8".into()];
    let public_url = settings.server.public_url.clone();

    let carrier = Served::start(carrier_router()).await?;
    let app = App::start(settings).await.context("starting the engine")?;
    let result = run_with(&app, &carrier.base, &public_url, &args).await;
    app.shutdown().await;
    carrier.stop().await;
    result
}

async fn run_with(
    app: &App,
    carrier_base: &str,
    public_url: &str,
    args: &WebhookBenchArgs,
) -> anyhow::Result<WebhookReport> {
    let engine = app.engine();
    let store = engine.store().clone();
    let backend = store.backend().as_str();
    let created = neuronx::tenants::create(&store, "bench-webhooks").await?;
    let tenant = created.tenant_id;
    let http = client(args.concurrency)?;

    // The tenant's account, through the API, as an operator would store it.
    let resp = http
        .put(format!("{public_url}/v1/channels/twilio"))
        .bearer_auth(&created.api_key)
        .json(&serde_json::json!({
            "account_sid": ACCOUNT_SID,
            "auth_token": AUTH_TOKEN,
            "from_number": "+14155550000",
            "base_url": carrier_base,
        }))
        .send()
        .await
        .context("PUT /v1/channels/twilio")?;
    if resp.status() != reqwest::StatusCode::OK {
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        bail!("PUT /v1/channels/twilio answered {status}: {body}");
    }

    let calls: Vec<(Uuid, Uuid)> = (0..args.calls)
        .map(|_| (Uuid::new_v4(), Uuid::new_v4()))
        .collect();
    let prepared = Arc::new(prepare(tenant, public_url, &calls, args.requests)?);

    // 1. Baseline, before the calls are placed (their 30 s ring timeout starts at placement).
    let bare = Served::start(baseline_router()).await?;
    let base_run = drive(&http, &bare.base, &prepared, args.concurrency).await;
    bare.stop().await;
    let base_run = base_run?;

    // 2. K live calls: placed, dialled through the stub carrier, each holding its provider sid.
    place_calls(&engine, tenant, &calls).await?;
    if settle(&store).await?.is_none() {
        bail!("the calls were not dialled within {SETTLE_DEADLINE:?}");
    }
    for (call_id, _) in &calls {
        let row = store
            .get_actor(tenant, call_actor::KIND.as_str(), *call_id)
            .await?
            .with_context(|| format!("call {call_id} was not created"))?;
        let sid = row.state.get("provider_sid").and_then(|v| v.as_str());
        if sid != Some(call_sid(*call_id).as_str()) {
            bail!("call {call_id} was not dialled: {}", row.state);
        }
    }

    let before = webhook_counts(&engine.metrics().render());
    let engine_run = drive(&http, public_url, &prepared, args.concurrency).await?;

    // 3. What can be verified afterwards.
    let drained = settle(&store).await?;
    let after = webhook_counts(&engine.metrics().render());
    let delta = |outcome: &str| {
        after
            .get(outcome)
            .copied()
            .unwrap_or(0)
            .saturating_sub(before.get(outcome).copied().unwrap_or(0))
    };
    let (accepted, duplicate, unknown) = (delta("accepted"), delta("duplicate"), delta("unknown"));
    let total: u64 = after
        .values()
        .sum::<u64>()
        .saturating_sub(before.values().sum::<u64>());
    let mut calls_in_progress = 0;
    let mut call_status_events = 0;
    for (call_id, _) in &calls {
        let kind = call_actor::KIND.as_str();
        if let Some(row) = store.get_actor(tenant, kind, *call_id).await? {
            if row.state.get("status").and_then(|v| v.as_str()) == Some("in-progress") {
                calls_in_progress += 1;
            }
        }
        call_status_events += store
            .timeline(tenant, kind, *call_id, 0, 1_000)
            .await?
            .iter()
            .filter(|r| r.kind == "call_status" && r.data.get("to").is_some())
            .count();
    }
    let dead_letters = store.dead_letters(tenant, 0, 10_000).await?.len();

    let baseline = BaselineFigures {
        requests_per_s: base_run.ok_per_s(),
        p50_ms: base_run.percentile_ms(0.50),
        p99_ms: base_run.percentile_ms(0.99),
        max_ms: base_run.max_ms(),
        requests: args.requests,
        non_200: base_run.non_200 + base_run.errors,
    };
    let engine_figures = EngineFigures {
        accepted_per_s: engine_run.ok_per_s(),
        p50_ms: engine_run.percentile_ms(0.50),
        p99_ms: engine_run.percentile_ms(0.99),
        max_ms: engine_run.max_ms(),
        non_200: engine_run.non_200 + engine_run.errors,
        requests: args.requests,
        calls: args.calls,
        concurrency: args.concurrency,
    };
    let ratio = engine_figures.accepted_per_s / baseline.requests_per_s.max(1e-9);
    Ok(WebhookReport {
        baseline,
        engine: engine_figures,
        ratio,
        backend,
        verification: Verification {
            drained: drained.is_some(),
            drain_ms: drained.map(|d| d.as_millis() as u64).unwrap_or(0),
            webhook_accepted: accepted,
            webhook_duplicate: duplicate,
            webhook_unknown: unknown,
            webhook_other: total.saturating_sub(accepted + duplicate + unknown),
            calls_in_progress,
            call_status_events,
            dead_letters,
        },
    })
}

/// Places every call through the engine, 64 at a time.
async fn place_calls(
    engine: &neuronx_supervision::EngineHandle,
    tenant: TenantId,
    calls: &[(Uuid, Uuid)],
) -> anyhow::Result<()> {
    let permits = Arc::new(Semaphore::new(64));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, &(call_id, opp_id)) in calls.iter().enumerate() {
        let permit = permits.clone().acquire_owned().await?;
        let engine = engine.clone();
        tasks.spawn(async move {
            let _permit = permit;
            let input = CallInput::Place {
                call_id,
                opportunity_id: opp_id,
                to: format!("+1415{:07}", i % 10_000_000),
                attempt: 1,
                playbook: "speed-to-lead".into(),
                agent: None,
            };
            let key = call_actor::key(&opp::key(tenant, opp_id), call_id);
            match engine
                .submit(key, serde_json::to_value(input)?, None)
                .await?
            {
                SubmitOutcome::Applied(_) | SubmitOutcome::Accepted => Ok(()),
                other => bail!("placing call {call_id}: {other:?}"),
            }
        });
        while let Some(done) = tasks.try_join_next() {
            done??;
        }
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_the_nearest_rank() {
        let run = LoadRun {
            elapsed: Duration::from_secs(1),
            latencies_us: (1..=100).map(|i| i * 1000).collect(),
            ok: 100,
            non_200: 0,
            errors: 0,
        };
        assert_eq!(run.percentile_ms(0.50), 50.0);
        assert_eq!(run.percentile_ms(0.99), 99.0);
        assert_eq!(run.max_ms(), 100.0);
        assert_eq!(run.ok_per_s(), 100.0);
    }

    #[test]
    fn every_callback_is_signed_for_its_url_and_pairs_are_unique() {
        let tenant = TenantId(Uuid::new_v4());
        let calls: Vec<(Uuid, Uuid)> = (0..7).map(|_| (Uuid::new_v4(), Uuid::new_v4())).collect();
        let prepared = prepare(tenant, "http://127.0.0.1:1234", &calls, 50).expect("prepare");
        let mut pairs = std::collections::HashSet::new();
        for p in &prepared {
            let params: Vec<(String, String)> =
                serde_urlencoded::from_bytes(&p.body).expect("form");
            let url = format!("http://127.0.0.1:1234{}", p.path_and_query);
            assert!(signature::validate(AUTH_TOKEN, &url, &params, &p.signature));
            let get = |k: &str| {
                params
                    .iter()
                    .find(|(n, _)| n == k)
                    .map(|(_, v)| v.clone())
                    .expect("param")
            };
            assert!(pairs.insert((get("CallSid"), get("SequenceNumber"))));
        }
    }

    #[test]
    fn webhook_counts_read_the_voice_status_series() {
        let text = "# TYPE neuronx_webhooks_total counter\n\
            neuronx_webhooks_total{outcome=\"accepted\",route=\"voice_status\"} 12\n\
            neuronx_webhooks_total{outcome=\"unknown\",route=\"voice_status\"} 3\n\
            neuronx_webhooks_total{outcome=\"accepted\",route=\"sms_status\"} 5\n";
        let counts = webhook_counts(text);
        assert_eq!(counts.get("accepted"), Some(&12));
        assert_eq!(counts.get("unknown"), Some(&3));
    }

    /// Runs the benchmark once on PostgreSQL (a scratch database) and prints the report:
    /// `BENCH_WEBHOOKS_DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_webhooks \
    ///  cargo test --release -p neuronx-bench --lib webhooks -- --ignored --nocapture`
    #[tokio::test(flavor = "multi_thread")]
    #[ignore]
    async fn bench_webhooks_once() {
        let database_url = std::env::var("BENCH_WEBHOOKS_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/bench_webhooks".to_owned());
        let requests = std::env::var("BENCH_WEBHOOKS_REQUESTS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(20_000);
        let settings =
            Settings::load(None, &std::collections::BTreeMap::new()).expect("default settings");
        let report = run(
            settings,
            WebhookBenchArgs {
                database_url,
                requests,
                concurrency: 64,
                calls: 1_000,
            },
        )
        .await
        .expect("the benchmark runs");
        println!(
            "{}",
            serde_json::to_string(&report).expect("the report encodes")
        );
    }
}
