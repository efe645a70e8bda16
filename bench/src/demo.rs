//! `neuronx demo`: the engine on a temporary embedded SQLite and the carrier simulator, in one
//! process. It creates a tenant and a batch of leads on the short `demo` playbook, shows live
//! counters, and ends with a summary.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use neuronx_adapters::carrier_sim::{self, SimConfig};
use neuronx_supervision::store::ListQuery;
use neuronx_supervision::TenantId;
use serde_json::json;

use neuronx::app::App;
use neuronx::config::Settings;
use neuronx::secrets::Keyring;

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// How many leads to create.
    #[arg(long, default_value_t = 200)]
    pub leads: u32,
    /// Stop waiting for the conversations to settle after this many seconds.
    #[arg(long, default_value_t = 90)]
    pub max_seconds: u64,
}

/// Area codes across the time zones, Florida included (stricter window and a call cap).
const AREA_CODES: [u16; 8] = [212, 617, 312, 214, 303, 602, 415, 305];

const ZONES: [&str; 10] = [
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "Pacific/Honolulu",
    "Asia/Tokyo",
    "Asia/Kolkata",
    "Europe/London",
    "America/Sao_Paulo",
    "Australia/Sydney",
];

/// The `n`th of a run of distinct, valid North American numbers in `area` (a real area code):
/// exchanges 200–999 without the N11 service codes, 10,000 lines each (7.2 million in all). The
/// shape alone (`+1415` and seven digits) is not enough: the API refuses numbers the
/// numbering plan cannot hold, such as exchange 000.
pub fn lead_phone(area: u16, n: u64) -> String {
    let exchanges: u64 = 800 - 8; // 200..=999 less 211, 311, …, 911
    let mut exchange = 200 + (n / 10_000) % exchanges;
    // Skip each N11 at or below it: map the index past the service codes.
    for n11 in [211, 311, 411, 511, 611, 711, 811, 911] {
        if exchange >= n11 {
            exchange += 1;
        }
    }
    format!("+1{area}{exchange}{:04}", n % 10_000)
}

/// A time zone where it is mid-day now, so calling hours do not depend on when this runs
/// (the demo, the benchmark and the tests use it).
pub fn daytime_zone() -> &'static str {
    zone_where(|h| (10..18).contains(&h)).unwrap_or("America/New_York")
}

/// A time zone where it is night now: calls there must wait for calling hours.
pub fn night_zone() -> &'static str {
    zone_where(|h| !(6..22).contains(&h)).unwrap_or("Asia/Tokyo")
}

fn zone_where(pred: impl Fn(u32) -> bool) -> Option<&'static str> {
    use chrono::Timelike;
    let now = chrono::Utc::now();
    ZONES.into_iter().find(|z| {
        z.parse::<chrono_tz::Tz>()
            .is_ok_and(|tz| pred(now.with_timezone(&tz).hour()))
    })
}

pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

#[derive(Default, Debug)]
pub struct Summary {
    pub leads: u32,
    pub calls: u64,
    pub answered: u64,
    pub sms: u64,
    pub replies: u64,
    pub escalations: u64,
    pub compliance_blocks: u64,
    pub opted_out: u64,
    pub duplicate_sends: u64,
    pub speed_to_lead_p50_ms: i64,
    pub speed_to_lead_p99_ms: i64,
    pub stages: BTreeMap<String, u64>,
}

pub async fn run(mut settings: Settings, args: DemoArgs) -> anyhow::Result<Summary> {
    if args.leads == 0 || args.leads > 10_000 {
        bail!("--leads must be between 1 and 10000");
    }
    let dir = tempfile::tempdir().context("creating a temporary folder")?;
    let port = free_port()?;
    settings.server.database_url = format!("sqlite://{}", dir.path().join("demo.db").display());
    settings.server.listen = format!("127.0.0.1:{port}");
    settings.server.public_url = format!("http://127.0.0.1:{port}");
    settings.secrets.keys = vec![Keyring::generate_entry("demo")];
    // The carrier simulator is on loopback, where tenant hosts may not lead unless allowed.
    settings.outbound.allow = vec!["127.0.0.0/8".into()];
    settings.engine.shard_count = 64;
    let app = App::start(settings).await?;
    let base = format!("http://{}", app.addr);
    let store = app.engine().store().clone();
    let tenant = neuronx::tenants::create(&store, "demo agency").await?;
    let key = tenant.api_key.clone();

    let sim_config = SimConfig {
        inbound_sms_url: Some(format!(
            "{base}/webhooks/twilio/{}/sms/inbound",
            tenant.tenant_id
        )),
        seed: 7,
        ..SimConfig::default()
    };
    let sim_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let sim = carrier_sim::start(sim_config.clone(), sim_listener)
        .await
        .context("starting the carrier simulator")?;

    let http = reqwest::Client::new();
    let put = http
        .put(format!("{base}/v1/channels/twilio"))
        .bearer_auth(&key)
        .json(&json!({
            "account_sid": sim_config.account_sid,
            "auth_token": sim_config.auth_token,
            "from_number": "+14155550000",
            "base_url": sim.base_url,
        }))
        .send()
        .await?;
    if !put.status().is_success() {
        bail!("configuring the channel failed: {}", put.text().await?);
    }

    eprintln!(
        "NeuronX demo: {} leads on the `demo` playbook, carrier simulator at {}",
        args.leads, sim.base_url
    );
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..args.leads {
        while tasks.len() >= 16 {
            if let Some(r) = tasks.join_next().await {
                r??;
            }
        }
        let http = http.clone();
        let (base, key) = (base.clone(), key.clone());
        tasks.spawn(async move {
            let area = AREA_CODES[i as usize % AREA_CODES.len()];
            // Most leads are where it is day now; one in ten is where it is night, so the
            // calling-hours rule shows (those calls wait, and the SLA escalates them).
            let zone = if i % 10 == 9 {
                night_zone()
            } else {
                daytime_zone()
            };
            let body = json!({
                "external_id": format!("demo-{i}"),
                "playbook": "demo",
                "contact": {
                    "name": format!("Lead {i}"),
                    "phone": lead_phone(area, u64::from(i)),
                    "timezone": zone,
                    "consent": {"voice": true, "sms": true}
                }
            });
            let r = http
                .post(format!("{base}/v1/opportunities"))
                .bearer_auth(&key)
                .json(&body)
                .send()
                .await?;
            if !r.status().is_success() {
                bail!("creating lead {i} failed: {}", r.text().await?);
            }
            anyhow::Ok(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }

    // Settled when no first-touch SLA is still armed (each lead was reached or escalated) and
    // nothing is in flight, or at the time limit.
    let deadline = started + Duration::from_secs(args.max_seconds);
    loop {
        let stats = sim.stats();
        let backlog = store.backlog(i64::MAX).await?;
        let armed = first_touch_armed(&store, tenant.tenant_id).await?;
        eprint!(
            "\r{:>5.1}s  calls {:>4}  connected {:>4}  sms {:>4}  replies {:>4}  awaiting first touch {:>4}  ",
            started.elapsed().as_secs_f64(),
            stats.calls,
            stats.call_outcomes.get("completed").copied().unwrap_or(0),
            stats.messages,
            stats.replies,
            armed,
        );
        let _ = std::io::stderr().flush();
        if armed == 0 && backlog.inbox == 0 && backlog.outbox_open == 0 {
            break;
        }
        if Instant::now() > deadline {
            eprint!("(time limit reached)");
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!();
    let summary = summarize(&store, tenant.tenant_id, args.leads, &sim.stats()).await?;
    sim.shutdown().await;
    app.shutdown().await;
    Ok(summary)
}

async fn all_opportunities(
    store: &neuronx_supervision::Store,
    tenant: TenantId,
) -> anyhow::Result<Vec<neuronx_supervision::store::ActorRow>> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_actors(&ListQuery {
                tenant,
                kind: "opportunity".into(),
                status: None,
                paused: None,
                after,
                limit: 500,
            })
            .await?;
        after = page.last().map(|r| (r.created_at_ms, r.key.id));
        let done = page.len() < 500;
        out.extend(page);
        if done {
            return Ok(out);
        }
    }
}

async fn first_touch_armed(
    store: &neuronx_supervision::Store,
    tenant: TenantId,
) -> anyhow::Result<usize> {
    // One query for every armed timer, not one per opportunity on every refresh.
    let shards: Vec<_> = store.shards().await?.into_iter().map(|s| s.shard).collect();
    let kinds = [neuronx_actors::opportunity::KIND];
    let timers = store
        .timers_due_before(&shards, &kinds, i64::MIN..i64::MAX, 1_000_000)
        .await?;
    Ok(timers
        .iter()
        .filter(|t| t.key.tenant == tenant && t.name == "first_touch_sla")
        .count())
}

fn percentile(sorted: &[i64], q: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// Speed to lead of one opportunity: from its creation to the carrier accepting its first call
/// (the first call's `provider_sid` on the call's timeline). `None` if no call went out.
pub async fn speed_to_lead(
    store: &neuronx_supervision::Store,
    tenant: TenantId,
    row: &neuronx_supervision::store::ActorRow,
    timeline: &[neuronx_supervision::store::TimelineRow],
) -> anyhow::Result<Option<i64>> {
    let Some(call_id) = timeline
        .iter()
        .find(|e| e.kind == "call_placed")
        .and_then(|e| e.data.get("call_id").and_then(|v| v.as_str()))
        .and_then(|c| uuid::Uuid::parse_str(c).ok())
    else {
        return Ok(None);
    };
    let call_timeline = store.timeline(tenant, "call", call_id, 0, 50).await?;
    Ok(call_timeline
        .iter()
        .find(|e| e.data.get("provider_sid").is_some_and(|v| v.is_string()))
        .map(|accepted| accepted.at_ms - row.created_at_ms))
}

async fn summarize(
    store: &neuronx_supervision::Store,
    tenant: TenantId,
    leads: u32,
    stats: &carrier_sim::SimStats,
) -> anyhow::Result<Summary> {
    let mut s = Summary {
        leads,
        calls: stats.calls,
        answered: stats.call_outcomes.get("completed").copied().unwrap_or(0),
        sms: stats.messages,
        replies: stats.replies,
        duplicate_sends: stats.duplicate_creates,
        ..Summary::default()
    };
    let mut speed = Vec::new();
    for row in all_opportunities(store, tenant).await? {
        *s.stages.entry(row.status.clone()).or_default() += 1;
        let timeline = store
            .timeline(tenant, "opportunity", row.key.id, 0, 1000)
            .await?;
        for e in &timeline {
            match e.kind.as_str() {
                "sla_escalated" => s.escalations += 1,
                "compliance_blocked" => s.compliance_blocks += 1,
                "opted_out" => s.opted_out += 1,
                _ => {}
            }
        }
        if let Some(ms) = speed_to_lead(store, tenant, &row, &timeline).await? {
            speed.push(ms);
        }
    }
    speed.sort_unstable();
    s.speed_to_lead_p50_ms = percentile(&speed, 0.5);
    s.speed_to_lead_p99_ms = percentile(&speed, 0.99);
    Ok(s)
}

pub fn print(s: &Summary) {
    let rows: Vec<(&str, String)> = vec![
        ("leads", s.leads.to_string()),
        ("calls placed", s.calls.to_string()),
        ("calls connected", s.answered.to_string()),
        ("SMS sent", s.sms.to_string()),
        ("replies", s.replies.to_string()),
        ("opt-outs (STOP)", s.opted_out.to_string()),
        ("SLA breaches escalated", s.escalations.to_string()),
        ("compliance blocks", s.compliance_blocks.to_string()),
        ("duplicate sends", s.duplicate_sends.to_string()),
        (
            "speed to lead p50",
            format!("{} ms", s.speed_to_lead_p50_ms),
        ),
        (
            "speed to lead p99",
            format!("{} ms", s.speed_to_lead_p99_ms),
        ),
    ];
    println!("┌────────────────────────┬──────────┐");
    for (k, v) in rows {
        println!("│ {k:<22} │ {v:>8} │");
    }
    println!("└────────────────────────┴──────────┘");
    let stages: Vec<String> = s.stages.iter().map(|(k, v)| format!("{k} {v}")).collect();
    println!("stages: {}", stages.join(", "));
}

#[cfg(test)]
mod tests {
    #[test]
    fn lead_phones_are_distinct_and_valid() {
        use neuronx_actors::domain::opportunity::validate_e164;
        let mut seen = std::collections::HashSet::new();
        for n in (0..7_200_000)
            .step_by(9_973)
            .chain([1, 9_999, 10_000, 7_199_999])
        {
            let p = super::lead_phone(415, n);
            assert_eq!(validate_e164(&p), Ok(()), "{p}");
            assert!(seen.insert(p.clone()), "{p} twice");
        }
    }
}
