//! `neuronx bench ring`: how soon a rep's phone rings (issue #14: p99 ≤ 500 ms at 50 leads a
//! second on PostgreSQL, through the simulator), in either connect mode:
//!
//! - **agent first**: from the lead's create request leaving the client to the carrier creating
//!   the call to the rep (the call actor picked a free rep, placed the call to the rep's phone);
//! - **lead first**: from the lead answering (the carrier's answer instant) to the carrier
//!   creating the first rep leg of the `<Dial>` our answer TwiML returned.
//!
//! Both instants come from one clock on one machine (the bench's and the simulator's wall clock,
//! `Utc::now`). The baseline, measured in the same run, is the carrier simulator alone: a REST
//! call create sent straight to it, request leaving to call created, paced the same, so the ratio
//! says what NeuronX adds over the carrier's own round trip. Leads are created through the API,
//! open loop at `--rate` a second; each is matched to its call afterwards through
//! `GET /v1/calls/{id}` and the simulator's call detail. A benchmark, not a test: it fails only
//! when a lead's rep never rang.

use std::time::Duration;

use anyhow::{bail, Context};
use neuronx::app::App;
use neuronx::config::Settings;
use neuronx_adapters::carrier_sim::{
    self, CallOutcome, FlowConfig, OutcomeMix, SimConfig, SimHandle,
};
use serde::Serialize;
use serde_json::json;
use tokio::net::TcpListener;
use uuid::Uuid;

use crate::api::Api;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Lead created → the rep's phone ringing.
    AgentFirst,
    /// Lead answered → the first rep leg ringing.
    LeadFirst,
}

#[derive(Debug, clap::Args)]
pub struct RingBenchArgs {
    /// PostgreSQL or SQLite URL; the bench creates a tenant of its own in it.
    #[arg(long)]
    pub database_url: String,
    /// Which connect mode the bench's playbook uses: agent-first (ring a rep, then dial the
    /// lead) or lead-first (dial the lead, ring reps when it answers).
    #[arg(long, value_enum)]
    pub mode: Mode,
    /// Leads in the run.
    #[arg(long, default_value_t = 1_000)]
    pub leads: usize,
    /// Leads created a second (open loop).
    #[arg(long, default_value_t = 50)]
    pub rate: u32,
    /// Reps of the bench's team, available, ten calls each.
    #[arg(long, default_value_t = 100)]
    pub reps: usize,
}

#[derive(Debug, Serialize)]
pub struct Percentiles {
    pub samples: usize,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

#[derive(Debug, Serialize)]
pub struct RingReport {
    pub backend: String,
    pub mode: Mode,
    pub leads: usize,
    pub rate: u32,
    pub reps: usize,
    /// The simulator alone: REST create sent to call created.
    pub baseline: Percentiles,
    /// Lead created (agent first) or answered (lead first) to the rep's phone ringing.
    pub engine: Percentiles,
    pub p99_ratio: f64,
    /// Leads whose rep never rang within the wait.
    pub missing: usize,
}

const AUTH_TOKEN: &str = "bench-ring-auth-token-0123456789abcdef";
const TEAM: &str = "bench";

fn playbook(mode: Mode) -> String {
    let connect = match mode {
        Mode::AgentFirst => "agent_first",
        Mode::LeadFirst => "lead_first",
    };
    format!(
        "name = \"ring\"\nfirst_touch_sla_seconds = 600\nmax_attempts = 1\n\
         ring_timeout_seconds = 20\n\n[call_flow]\nconnect = \"{connect}\"\n"
    )
}

fn rep_phone(i: usize) -> String {
    format!("+1212555{:04}", 1000 + i)
}

pub async fn run(mut settings: Settings, args: RingBenchArgs) -> anyhow::Result<RingReport> {
    if args.leads == 0 || args.rate == 0 || args.reps == 0 {
        bail!("--leads, --rate and --reps must each be at least 1");
    }
    let playbooks = tempfile::tempdir().context("a folder for the playbook")?;
    std::fs::write(playbooks.path().join("ring.toml"), playbook(args.mode))?;
    let public_url = crate::api::serve_on_loopback(&mut settings, &args.database_url)?;
    settings.playbooks.dir = playbooks.path().display().to_string();
    settings.playbooks.default = "ring".into();
    // Every lead answers in person; every rep answers and presses 1 (agent first).
    let mut flow = FlowConfig::fast();
    for i in 0..args.reps {
        flow.digits.insert(rep_phone(i), vec!["1".into()]);
    }
    let sim_config = SimConfig {
        auth_token: AUTH_TOKEN.into(),
        outcome_mix: OutcomeMix::all(CallOutcome::Human),
        flow,
        ..SimConfig::default()
    };
    let sim = carrier_sim::start(sim_config.clone(), TcpListener::bind("127.0.0.1:0").await?)
        .await
        .context("starting the carrier simulator")?;
    let app = App::start(settings).await.context("starting the engine")?;
    let result = run_with(&app, &sim, &sim_config, &public_url, &args).await;
    app.shutdown().await;
    sim.shutdown().await;
    result
}

async fn run_with(
    app: &App,
    sim: &SimHandle,
    sim_config: &SimConfig,
    public_url: &str,
    args: &RingBenchArgs,
) -> anyhow::Result<RingReport> {
    let store = app.engine().store().clone();
    let (_, api) = crate::api::tenant_on_simulator(
        &store,
        "bench-ring",
        public_url,
        &sim.base_url,
        &sim_config.account_sid,
        AUTH_TOKEN,
    )
    .await?;
    api.send(reqwest::Method::POST, "/v1/teams", json!({"name": TEAM}))
        .await?;
    for i in 0..args.reps {
        api.available_rep(&format!("rep-{i:03}"), Some(TEAM), &rep_phone(i))
            .await?;
    }

    let baseline = baseline(&api.http, sim, sim_config, args).await?;
    let sent = create_leads(&api, args).await?;
    let (samples, missing) = collect(&api, sim, args.mode, &sent).await?;
    let engine = percentiles(samples);
    Ok(RingReport {
        backend: store.backend().as_str().to_owned(),
        mode: args.mode,
        leads: args.leads,
        rate: args.rate,
        reps: args.reps,
        p99_ratio: engine.p99_ms / baseline.p99_ms.max(1e-9),
        baseline,
        engine,
        missing,
    })
}

/// Creates the leads open loop at `rate` a second; each lead's id and the instant its request
/// left (Unix ms).
async fn create_leads(api: &Api, args: &RingBenchArgs) -> anyhow::Result<Vec<(Uuid, i64)>> {
    let place = crate::places::daytime();
    let every = Duration::from_secs_f64(1.0 / f64::from(args.rate));
    let start = tokio::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..args.leads {
        tokio::time::sleep_until(start + every * u32::try_from(i)?).await;
        let api = api.clone();
        let lead = json!({"external_id": format!("ring-{i}"), "team": TEAM, "contact": {
            "name": format!("Lead {i}"), "phone": place.phone(i as u64),
            "timezone": place.zone, "consent": {"voice": true, "sms": false}}});
        tasks.spawn(async move {
            let at = chrono::Utc::now().timestamp_millis();
            let body = api
                .send(reqwest::Method::POST, "/v1/opportunities", lead)
                .await?;
            let id: Uuid = body["id"].as_str().unwrap_or_default().parse()?;
            anyhow::Ok((id, at))
        });
    }
    let mut sent = Vec::with_capacity(args.leads);
    while let Some(done) = tasks.join_next().await {
        sent.push(done??);
    }
    Ok(sent)
}

/// Each lead's interval, matched through its first call (`call-1`): the carrier call it placed
/// and, lead first, that call's first `<Dial>` leg. Waits up to 60 s for the last of them.
async fn collect(
    api: &Api,
    sim: &SimHandle,
    mode: Mode,
    sent: &[(Uuid, i64)],
) -> anyhow::Result<(Vec<f64>, usize)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut samples = Vec::with_capacity(sent.len());
    let mut missing = 0;
    for (opp, at) in sent {
        let call = Uuid::new_v5(opp, b"call-1");
        let interval = loop {
            if let Some(ms) = interval(api, sim, mode, call, *at).await? {
                break Some(ms);
            }
            if tokio::time::Instant::now() > deadline {
                break None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        match interval {
            Some(ms) => samples.push(ms),
            None => missing += 1,
        }
    }
    Ok((samples, missing))
}

async fn interval(
    api: &Api,
    sim: &SimHandle,
    mode: Mode,
    call: Uuid,
    created_at: i64,
) -> anyhow::Result<Option<f64>> {
    let Ok(view) = api
        .send(
            reqwest::Method::GET,
            &format!("/v1/calls/{call}"),
            json!(null),
        )
        .await
    else {
        return Ok(None);
    };
    let Some(detail) = view["provider_sid"]
        .as_str()
        .and_then(|sid| sim.call_detail(sid))
    else {
        return Ok(None);
    };
    Ok(match mode {
        // The call rings the rep first: its creation is the rep's phone ringing.
        Mode::AgentFirst => Some((detail.created_ms - created_at) as f64),
        Mode::LeadFirst => detail.answered_ms.and_then(|answered| {
            let first_leg = detail.children.iter().map(|c| c.created_ms).min()?;
            Some((first_leg - answered) as f64)
        }),
    })
}

/// The simulator alone: `rate` REST call creates a second straight to it (to numbers no lead
/// has), request leaving to the call created.
async fn baseline(
    http: &reqwest::Client,
    sim: &SimHandle,
    config: &SimConfig,
    args: &RingBenchArgs,
) -> anyhow::Result<Percentiles> {
    let url = format!(
        "{}/2010-04-01/Accounts/{}/Calls.json",
        sim.base_url, config.account_sid
    );
    let every = Duration::from_secs_f64(1.0 / f64::from(args.rate));
    let start = tokio::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..args.leads {
        tokio::time::sleep_until(start + every * u32::try_from(i)?).await;
        let (http, url) = (http.clone(), url.clone());
        let (sid, token) = (config.account_sid.clone(), AUTH_TOKEN.to_owned());
        tasks.spawn(async move {
            let form = [
                ("To", format!("+1646555{:04}", i % 10_000)),
                ("From", "+14155550000".to_owned()),
                ("Twiml", "<Response><Hangup/></Response>".to_owned()),
            ];
            let at = chrono::Utc::now().timestamp_millis();
            let resp = http
                .post(&url)
                .basic_auth(sid, Some(token))
                .form(&form)
                .send()
                .await?;
            if !resp.status().is_success() {
                bail!("the simulator answered {}", resp.status());
            }
            let body: serde_json::Value = resp.json().await?;
            anyhow::Ok((body["sid"].as_str().unwrap_or_default().to_owned(), at))
        });
    }
    let mut samples = Vec::with_capacity(args.leads);
    while let Some(done) = tasks.join_next().await {
        let (sid, at) = done??;
        if let Some(detail) = sim.call_detail(&sid) {
            samples.push((detail.created_ms - at) as f64);
        }
    }
    Ok(percentiles(samples))
}

fn percentiles(mut samples: Vec<f64>) -> Percentiles {
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| {
        if samples.is_empty() {
            return 0.0;
        }
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples[i.min(samples.len() - 1)]
    };
    Percentiles {
        samples: samples.len(),
        p50_ms: at(0.50),
        p90_ms: at(0.90),
        p99_ms: at(0.99),
        max_ms: samples.last().copied().unwrap_or(0.0),
    }
}
