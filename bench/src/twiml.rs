//! `neuronx bench twiml`: how fast the call flow answers Twilio when a lead picks up (issue
//! #14: p99 ≤ 20 ms at 500 answers a second), beside a bare axum server answering the same
//! requests with a fixed TwiML document, paced at the same rate in the same run.
//!
//! 1. **Setup**: NeuronX (`App::start`) on the given database, a fresh tenant whose Twilio
//!    account is the carrier simulator with every call unanswered (so it never asks for TwiML
//!    itself), `--reps` reps available with ten calls each, and `--answers` opportunities
//!    created through the API, whose first calls are placed and dialled (the simulator has
//!    every one) before anything is timed.
//! 2. **Baseline**: the bare server, answers paced at `--rate` a second (open loop: a request
//!    leaves on its schedule whether or not the previous ones were answered).
//! 3. **Engine**: one signed `voice/answer` request per call (`AnsweredBy=human`), paced the
//!    same; each answered one is followed (untimed) by its rep leg's `completed` callback, which
//!    frees the rep, as the carrier would when the rep hangs up.
//!
//! The engine's answer reads the call and the opportunity, offers the call to a rep (one
//! transaction over the tenant's reps) and makes the `RepsRung` input durable, all before it
//! answers. A benchmark, not a test: it fails only when an answer is not a `<Dial>`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use axum::routing::post;
use axum::Router;
use neuronx::app::App;
use neuronx::config::Settings;
use neuronx_adapters::carrier_sim::{self, CallOutcome, OutcomeMix, SimConfig};
use neuronx_adapters::twilio::signature;
use serde::Serialize;
use serde_json::json;
use tokio::net::TcpListener;
use uuid::Uuid;

#[derive(Debug, clap::Args)]
pub struct TwimlBenchArgs {
    /// PostgreSQL or SQLite URL; the bench creates a tenant of its own in it.
    #[arg(long)]
    pub database_url: String,
    /// Answers in each run (one per opportunity).
    #[arg(long, default_value_t = 5_000)]
    pub answers: usize,
    /// Answers a second, for both runs.
    #[arg(long, default_value_t = 500)]
    pub rate: u32,
    /// Reps available, ten calls each.
    #[arg(long, default_value_t = 50)]
    pub reps: usize,
}

#[derive(Debug, Serialize)]
pub struct Latencies {
    pub answered: usize,
    pub failed: usize,
    pub achieved_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

#[derive(Debug, Serialize)]
pub struct TwimlReport {
    pub backend: String,
    pub answers: usize,
    pub rate: u32,
    pub reps: usize,
    pub baseline: Latencies,
    pub engine: Latencies,
    /// Engine p99 over baseline p99.
    pub p99_ratio: f64,
    /// Answers that rang a rep (a `<Dial>`); the rest told the lead someone will call back.
    pub dials: usize,
}

const AUTH_TOKEN: &str = "bench-twiml-auth-token-0123456789abcd";

pub async fn run(mut settings: Settings, args: TwimlBenchArgs) -> anyhow::Result<TwimlReport> {
    if args.answers == 0 || args.rate == 0 || args.reps == 0 {
        bail!("--answers, --rate and --reps must each be at least 1");
    }
    let public_url = crate::api::serve_on_loopback(&mut settings, &args.database_url)?;
    let sim_config = SimConfig {
        auth_token: AUTH_TOKEN.into(),
        outcome_mix: OutcomeMix::all(CallOutcome::NoAnswer),
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
    sim: &carrier_sim::SimHandle,
    sim_config: &SimConfig,
    public_url: &str,
    args: &TwimlBenchArgs,
) -> anyhow::Result<TwimlReport> {
    let store = app.engine().store().clone();
    let (tenant_id, api) = crate::api::tenant_on_simulator(
        &store,
        "bench-twiml",
        public_url,
        &sim.base_url,
        &sim_config.account_sid,
        AUTH_TOKEN,
    )
    .await?;
    let tenant = tenant_id.0;
    let http = api.http.clone();
    for i in 0..args.reps {
        let phone = format!("+1212555{:04}", 1000 + i);
        api.available_rep(&format!("rep-{i:03}"), None, &phone)
            .await?;
    }
    // The opportunities, and the calls their first touch places.
    let mut calls = Vec::with_capacity(args.answers);
    let place = crate::places::daytime();
    for i in 0..args.answers {
        let lead = json!({"external_id": format!("twiml-{i}"), "contact": {
            "name": format!("Lead {i}"), "phone": place.phone(i as u64),
            "timezone": place.zone, "consent": {"voice": true, "sms": false}}});
        let body = api
            .send(reqwest::Method::POST, "/v1/opportunities", lead)
            .await?;
        let opp: Uuid = body["id"].as_str().unwrap_or_default().parse()?;
        calls.push((Uuid::new_v5(&opp, b"call-1"), opp));
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    for (call, _) in &calls {
        while !store.actor_exists(tenant_id, "call", *call).await? {
            if Instant::now() > deadline {
                bail!("call {call} was not placed within 300 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    // And dialled: the first dials leave at the account's send limit, and a run that began
    // while they still drained would measure the answers beside that backlog's claims.
    let want = u64::try_from(args.answers)?;
    let deadline = Instant::now() + Duration::from_secs(300);
    while sim.stats().calls < want {
        if Instant::now() > deadline {
            bail!("{want} calls were not all dialled within 300 s of being placed");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Statistics, as a database that has run for a while has them (autovacuum's analyze): the
    // tables were filled moments ago, and a plan made for empty ones joins every rep with every
    // principal of the tenant row by row (0.5 ms per offer against 0.13 ms).
    if let neuronx_supervision::Store::Postgres(pg) = &store {
        sqlx::query("ANALYZE").execute(pg.pool()).await?;
    }

    let bare = bare_server().await?;
    let requests: Vec<Signed> = calls
        .iter()
        .map(|(call, opp)| signed(public_url, tenant, *call, *opp, "answer"))
        .collect();
    let base_requests: Vec<Signed> = requests
        .iter()
        .map(|r| Signed {
            url: r.url.replace(public_url, &bare),
            ..r.clone()
        })
        .collect();
    let (baseline, _) = paced(&http, base_requests, args.rate, None).await;
    let frees: Vec<Signed> = calls
        .iter()
        .map(|(call, opp)| signed(public_url, tenant, *call, *opp, "leg"))
        .collect();
    let (engine, dials) = paced(&http, requests, args.rate, Some(Arc::new(frees))).await;
    Ok(TwimlReport {
        backend: store.backend().as_str().to_owned(),
        answers: args.answers,
        rate: args.rate,
        reps: args.reps,
        p99_ratio: engine.p99_ms / baseline.p99_ms.max(1e-9),
        baseline,
        engine,
        dials,
    })
}

#[derive(Clone)]
struct Signed {
    url: String,
    form: Vec<(String, String)>,
    signature: String,
}

/// A flow request for one call, signed as Twilio signs it (done before any timing starts):
/// the lead's answer (`answer`), or a rep leg's end (`leg`, its URL finished with the rep's
/// name and signed again when the rep is known).
fn signed(public_url: &str, tenant: Uuid, call: Uuid, opp: Uuid, hook: &str) -> Signed {
    let mut url =
        format!("{public_url}/webhooks/twilio/{tenant}/voice/{hook}?call={call}&opp={opp}");
    let pairs: &[(&str, &str)] = if hook == "leg" {
        url.push_str("&rep=");
        &[("CallStatus", "completed"), ("Direction", "outbound-dial")]
    } else {
        &[
            ("AnsweredBy", "human"),
            ("CallStatus", "in-progress"),
            ("Direction", "outbound-api"),
        ]
    };
    let mut form: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    form.push(("AccountSid".into(), "AC0".into()));
    form.push(("CallSid".into(), format!("CA{}", call.simple())));
    let signature = signature::compute(AUTH_TOKEN, &url, &form);
    Signed {
        url,
        form,
        signature,
    }
}

/// A server answering every POST with a fixed TwiML document: the ceiling of the HTTP stack,
/// the client and the machine for the same requests.
async fn bare_server() -> anyhow::Result<String> {
    const DOC: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Say>Hold on</Say>\
        <Dial action=\"http://x/dial\" timeout=\"20\"><Number>+12125551000</Number></Dial></Response>";
    let router = Router::new().route(
        "/webhooks/twilio/{tenant}/voice/{hook}",
        post(|| async { ([(axum::http::header::CONTENT_TYPE, "text/xml")], DOC) }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok(base)
}

/// Sends `requests` at `rate` a second on a fixed schedule and times each. With `frees`, each
/// answer that rang a rep is followed by that call's leg-completed callback (the rep's name
/// read from the `<Number>`'s status callback URL), untimed.
async fn paced(
    http: &reqwest::Client,
    requests: Vec<Signed>,
    rate: u32,
    frees: Option<Arc<Vec<Signed>>>,
) -> (Latencies, usize) {
    let start = tokio::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, req) in requests.into_iter().enumerate() {
        let at = start + Duration::from_secs_f64(i as f64 / f64::from(rate));
        tokio::time::sleep_until(at).await;
        let http = http.clone();
        let frees = frees.clone();
        tasks.spawn(async move {
            let sent = Instant::now();
            let resp = http
                .post(&req.url)
                .header("X-Twilio-Signature", &req.signature)
                .form(&req.form)
                .send()
                .await;
            let body = match resp {
                Ok(r) if r.status().is_success() => r.text().await.ok(),
                _ => None,
            };
            let took = sent.elapsed();
            let dialled = body.as_deref().is_some_and(|b| b.contains("<Dial"));
            if let (Some(frees), Some(body)) = (frees, body.as_deref()) {
                if let Some(rep) = rep_of(body) {
                    let free = &frees[i];
                    let url = format!("{}{rep}", free.url);
                    let signature = signature::compute(AUTH_TOKEN, &url, &free.form);
                    let _ = http
                        .post(&url)
                        .header("X-Twilio-Signature", signature)
                        .form(&free.form)
                        .send()
                        .await;
                }
            }
            (body.is_some(), took, dialled)
        });
    }
    let mut latencies = Vec::new();
    let (mut failed, mut dials) = (0, 0);
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((true, took, dialled)) => {
                latencies.push(took);
                dials += usize::from(dialled);
            }
            _ => failed += 1,
        }
    }
    let elapsed = start.elapsed().as_secs_f64().max(1e-9);
    latencies.sort();
    let ms = |q: f64| {
        let n = latencies.len();
        if n == 0 {
            return 0.0;
        }
        let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
        latencies[rank - 1].as_secs_f64() * 1000.0
    };
    let figures = Latencies {
        answered: latencies.len(),
        failed,
        achieved_per_s: latencies.len() as f64 / elapsed,
        p50_ms: ms(0.5),
        p99_ms: ms(0.99),
        max_ms: ms(1.0),
    };
    (figures, dials)
}

/// The rep a `<Dial>` rang, from its leg status callback URL (`…&rep=NAME"`).
fn rep_of(doc: &str) -> Option<&str> {
    let start = doc.find("&amp;rep=")? + "&amp;rep=".len();
    let rest = &doc[start..];
    Some(&rest[..rest.find('"')?])
}
