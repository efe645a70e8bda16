//! `neuronx demo`: the engine on a temporary embedded SQLite and the carrier simulator, in one
//! process. It creates a tenant with a bench of reps and a batch of leads on the short `demo`
//! playbook, shows live counters, and ends with a summary.

use std::collections::HashSet;
use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use neuronx_adapters::carrier_sim::{self, SimConfig};
use neuronx_supervision::TenantId;
use serde_json::json;

mod replies;
mod summary;
pub use summary::{print, speed_to_lead, Summary};
use summary::{Emails, Texts};

use neuronx::app::App;
use neuronx::config::Settings;
use neuronx::secrets::Keyring;

use crate::mail_sink::MailSink;
use crate::places;

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// How many leads to create.
    #[arg(long, default_value_t = 200)]
    pub leads: u32,
    /// Stop waiting for the conversations to settle after this many seconds.
    #[arg(long, default_value_t = 90)]
    pub max_seconds: u64,
}

/// The demo tenant's reps, `rep-01` onwards: each takes one call at a time, so at most this many
/// leads talk to a rep at once; an answered lead nobody is free for gets the callback path.
const REPS: u32 = 12;
/// The tenant's number: the caller id of its calls and texts, and the number leads call back.
const FROM: &str = "+14155550000";

/// Rep `n`'s phone: New York's 646 (no lead's area code) and the 555-01xx lines set aside for
/// fiction, so no rep shares a number with a lead (the summary tells their texts apart by it).
fn rep_phone(n: u32) -> String {
    format!("+1646555{:04}", 100 + n)
}

/// Rep `n`'s email: escalation notices reach reps by text and by email.
fn rep_email(n: u32) -> String {
    format!("rep-{n:02}@demo-agency.test")
}

pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
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

    // The tenant's mail relay: an SMTP server in this process, on loopback, that keeps what it
    // receives (notices to reps, the playbook's first email to each lead).
    let mail = MailSink::start(tokio::net::TcpListener::bind("127.0.0.1:0").await?)
        .context("starting the demo's SMTP server")?;

    let http = reqwest::Client::new();
    let put = http
        .put(format!("{base}/v1/channels/twilio"))
        .bearer_auth(&key)
        .json(&json!({
            "account_sid": sim_config.account_sid,
            "auth_token": sim_config.auth_token,
            "from_number": FROM,
            "base_url": sim.base_url,
        }))
        .send()
        .await?;
    if !put.status().is_success() {
        bail!("configuring the channel failed: {}", put.text().await?);
    }
    let email_setup = [
        (
            "/v1/channels/smtp",
            json!({"host": "127.0.0.1", "port": mail.addr.port(), "tls": "none",
                   "from": "hello@demo-agency.test", "from_name": "Demo Agency"}),
        ),
        (
            "/v1/settings",
            json!({"postal_address": "Demo Agency, 1 Main Street, Springfield, IL 62701"}),
        ),
    ];
    for (path, body) in email_setup {
        let r = http
            .put(format!("{base}{path}"))
            .bearer_auth(&key)
            .json(&body)
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("PUT {path} failed: {}", r.text().await?);
        }
    }
    // Leads' answers by email come back through the tenant's mail relay (ours, speaking
    // Mailgun's protocol) to the thread.
    let mut replies = replies::EmailReplies::setup(&http, &base, &key).await?;
    let voice_url = format!("{base}/webhooks/twilio/{}/voice/inbound", tenant.tenant_id);
    let mut call_backs = replies::CallBacks::new(http.clone(), &sim.base_url, voice_url, FROM);
    add_reps(&http, &base, &key).await?;
    let rep_phones: HashSet<String> = (1..=REPS).map(rep_phone).collect();
    let rep_emails: HashSet<String> = (1..=REPS).map(rep_email).collect();

    eprintln!(
        "NeuronX demo: {} leads on the `demo` playbook, {REPS} reps, carrier simulator at {}",
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
            // Most leads are where it is day now; one in ten is where it is night, so the
            // calling-hours rule shows (those calls wait, and the SLA escalates them).
            let place = if i % 10 == 9 {
                places::night()
            } else {
                places::daytime()
            };
            let body = json!({
                "external_id": format!("demo-{i}"),
                "playbook": "demo",
                "contact": {
                    "name": format!("Lead {i}"),
                    "phone": place.phone(u64::from(i)),
                    "email": format!("lead-{i}@example.com"),
                    "timezone": place.zone,
                    "consent": {"voice": true, "sms": true, "email": true}
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

    // Settled when no first-touch SLA is still armed (each lead was reached or escalated),
    // nothing is in flight here or at the carrier (no call still up, so every conversation has
    // ended, and no webhook on its way), twice in a row, or at the time limit.
    let deadline = started + Duration::from_secs(args.max_seconds);
    let mut quiet_polls = 0;
    loop {
        replies.answer_new(&mail).await?;
        call_backs
            .call_new(&mail, |i| places::daytime().phone(u64::from(i)))
            .await?;
        let stats = sim.stats();
        let texts = Texts::count(&sim.messages(), &rep_phones);
        let emails = mail.read(|m| Emails::count(m, &rep_emails));
        let backlog = store.backlog(i64::MAX).await?;
        let armed = first_touch_armed(&store, tenant.tenant_id).await?;
        eprint!(
            "\r{:>5.1}s  calls {:>4} connected {:>4} bridged {:>4}  sms {:>4} replies {:>4} notices {:>4}  emails {:>4}  not yet reached {:>4} ",
            started.elapsed().as_secs_f64(),
            stats.calls,
            stats.call_outcomes.get("completed").copied().unwrap_or(0),
            stats.bridged_calls,
            texts.to_leads,
            texts.lead_replies,
            texts.to_reps + emails.to_reps,
            emails.to_leads,
            armed,
        );
        let _ = std::io::stderr().flush();
        let quiet = armed == 0
            && backlog.inbox == 0
            && backlog.outbox_open == 0
            && carrier_idle(&sim, &stats);
        quiet_polls = if quiet { quiet_polls + 1 } else { 0 };
        if quiet_polls >= 2 {
            break;
        }
        if Instant::now() > deadline {
            eprint!("(time limit reached)");
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!();
    let texts = Texts::count(&sim.messages(), &rep_phones);
    let emails = mail.read(|m| Emails::count(m, &rep_emails));
    let mut summary = summary::summarize(
        &store,
        tenant.tenant_id,
        args.leads,
        REPS,
        &sim.stats(),
        texts,
        emails,
    )
    .await?;
    summary.email_replies_posted = replies.accepted();
    mail.shutdown();
    sim.shutdown().await;
    app.shutdown().await;
    Ok(summary)
}

/// Gives the tenant `REPS` reps through the API, as an operator would: a principal each (no
/// team, so every call rings all of them), a rep profile (an email for notices; no working
/// hours: always in hours; one call at a time) and the status `available`.
async fn add_reps(http: &reqwest::Client, base: &str, key: &str) -> anyhow::Result<()> {
    for n in 1..=REPS {
        let name = format!("rep-{n:02}");
        let principal = json!({"name": name, "role": "operator", "team": null});
        let profile = json!({
            "phone": rep_phone(n),
            "email": rep_email(n),
            "time_zone": "America/New_York",
            "max_calls": 1,
        });
        let status = json!({"status": "available"});
        let steps = [
            (
                reqwest::Method::POST,
                "/v1/principals".to_owned(),
                principal,
            ),
            (
                reqwest::Method::PUT,
                format!("/v1/principals/{name}/rep"),
                profile,
            ),
            (
                reqwest::Method::POST,
                format!("/v1/principals/{name}/status"),
                status,
            ),
        ];
        for (method, path, body) in steps {
            let r = http
                .request(method.clone(), format!("{base}{path}"))
                .bearer_auth(key)
                .json(&body)
                .send()
                .await?;
            if !r.status().is_success() {
                bail!(
                    "adding {name} ({method} {path}) failed: {}",
                    r.text().await?
                );
            }
        }
    }
    Ok(())
}

/// No call is still up at the carrier (a lead talking to a rep keeps its call up) and no
/// webhook it sent is still on its way to us.
fn carrier_idle(sim: &carrier_sim::SimHandle, stats: &carrier_sim::SimStats) -> bool {
    let up = |status: &str| matches!(status, "queued" | "initiated" | "ringing" | "in-progress");
    stats.callbacks_sent <= stats.callbacks_delivered + stats.callback_failures
        && !sim.calls().iter().any(|c| up(&c.status))
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
