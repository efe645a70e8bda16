//! What the backlog and fairness benchmarks share: the settings that measure the engine rather
//! than the configured send rates, a lead's create input, lead-to-dial read off the outbox,
//! and a process's memory.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::bail;
use neuronx::config::Settings;
use neuronx_actors::domain::opportunity::{Consent, Contact, OppInput, SlaOverride};
use neuronx_actors::opportunity as opp;
use neuronx_supervision::{ActorKey, EngineHandle, Store, SubmitOutcome, TenantId};
use uuid::Uuid;

use crate::places::Place;

/// The loopback carrier (a call rings after 20 ms, goes unanswered after 50 ms) and generous
/// send limits, as `bench engine` sets them: the default 50 dials a second per tenant would
/// pace the import and measure the limiter, not the engine.
pub(crate) fn tune(settings: &mut Settings) {
    settings.server.listen = "127.0.0.1:0".into();
    settings.channels.loopback.ring_after_ms = 20;
    settings.channels.loopback.no_answer_after_ms = 50;
    for (limit, burst) in [
        (
            &mut settings.limits.voice_per_second,
            &mut settings.limits.voice_burst,
        ),
        (
            &mut settings.limits.sms_per_second,
            &mut settings.limits.sms_burst,
        ),
        (
            &mut settings.limits.account_calls_per_second,
            &mut settings.limits.account_calls_burst,
        ),
    ] {
        *limit = 100_000.0;
        *burst = 100_000;
    }
}

/// The same settings as environment variables, for an engine in a process of its own.
pub(crate) fn tune_env() -> Vec<(String, String)> {
    [
        ("CHANNELS__LOOPBACK__RING_AFTER_MS", "20"),
        ("CHANNELS__LOOPBACK__NO_ANSWER_AFTER_MS", "50"),
        ("LIMITS__VOICE_PER_SECOND", "100000"),
        ("LIMITS__VOICE_BURST", "100000"),
        ("LIMITS__SMS_PER_SECOND", "100000"),
        ("LIMITS__SMS_BURST", "100000"),
        ("LIMITS__ACCOUNT_CALLS_PER_SECOND", "100000"),
        ("LIMITS__ACCOUNT_CALLS_BURST", "100000"),
    ]
    .into_iter()
    .map(|(k, v)| (format!("NEURONX_{k}"), v.to_owned()))
    .collect()
}

/// Lead `i` of a run tagged `tag`: its actor key and its create input, with its first-touch
/// SLA `first_touch_seconds` away (long runs keep it from firing).
pub(crate) fn lead(
    tenant: TenantId,
    tag: &str,
    i: u64,
    place: &Place,
    first_touch_seconds: u64,
) -> anyhow::Result<(ActorKey, serde_json::Value)> {
    let external_id = format!("{tag}-{i}");
    let id = opp::id_for(tenant, &external_id);
    let input = OppInput::Create {
        id,
        external_id,
        contact: Contact {
            name: format!("Lead {tag} {i}"),
            // Tenant B's leads have numbers of their own (an offset past A's).
            phone: Some(place.phone(if tag.starts_with('b') {
                5_000_000 + i
            } else {
                i
            })),
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
    Ok((opp::key(tenant, id), serde_json::to_value(input)?))
}

/// Creates lead `i` through the engine, as the API does, and waits for it to be applied.
/// Returns the opportunity's id and when it was submitted (ms since the epoch).
pub(crate) async fn create(
    engine: &EngineHandle,
    tenant: TenantId,
    tag: &str,
    i: u64,
    place: &Place,
    first_touch_seconds: u64,
) -> anyhow::Result<(Uuid, i64)> {
    let (key, input) = lead(tenant, tag, i, place, first_touch_seconds)?;
    let submitted = chrono::Utc::now().timestamp_millis();
    match engine.submit(key, input, None).await? {
        SubmitOutcome::Applied(_) | SubmitOutcome::Accepted => Ok((key.id, submitted)),
        other => bail!("create {tag}-{i} was not applied: {other:?}"),
    }
}

/// When each of the tenant's opportunities was first dialled: the carrier's answer to its
/// first call recorded (the voice effect done), in ms since the epoch, by opportunity id (an
/// opportunity's calls are of its group), with when that dial was committed (the outbox row
/// written by the call's transition): `(committed, done)`. Read off the outbox rather than the timelines: the
/// call's timeline carries the provider's id only when the answer was recorded before the
/// call's first status callback, which a 20 ms ring often beats.
pub(crate) async fn first_dials(
    store: &Store,
    tenant: TenantId,
) -> anyhow::Result<HashMap<Uuid, (i64, i64)>> {
    // Per backend: uuids are bound as uuids on PostgreSQL, as text on SQLite.
    let sql = "SELECT CAST(grp AS TEXT), min(created_at), min(updated_at) FROM outbox
               WHERE tenant_id = $1 AND channel = 'voice' AND status = 'done' GROUP BY grp";
    let rows: Vec<(String, i64, i64)> = match store {
        Store::Postgres(pg) => {
            sqlx::query_as(sql)
                .bind(tenant.0)
                .fetch_all(pg.pool())
                .await?
        }
        Store::Sqlite(lite) => {
            sqlx::query_as(sql)
                .bind(tenant.0.to_string())
                .fetch_all(lite.pool())
                .await?
        }
    };
    let mut out = HashMap::with_capacity(rows.len());
    for (grp, committed, done) in rows {
        out.insert(Uuid::parse_str(&grp)?, (committed, done));
    }
    Ok(out)
}

/// How many of the tenant's opportunities have been dialled (see `first_dials`).
pub(crate) async fn dialled(store: &Store, tenant: TenantId) -> anyhow::Result<i64> {
    let sql = "SELECT count(DISTINCT grp) FROM outbox
               WHERE tenant_id = $1 AND channel = 'voice' AND status = 'done'";
    Ok(match store {
        Store::Postgres(pg) => {
            sqlx::query_scalar(sql)
                .bind(tenant.0)
                .fetch_one(pg.pool())
                .await?
        }
        Store::Sqlite(lite) => {
            sqlx::query_scalar(sql)
                .bind(tenant.0.to_string())
                .fetch_one(lite.pool())
                .await?
        }
    })
}

/// Lead-to-dial of the leads `submitted` (id, submit time): from the submit to the first
/// dial, in milliseconds, sorted. Leads not dialled are left out.
pub(crate) async fn lead_to_dial(
    store: &Store,
    tenant: TenantId,
    submitted: &[(Uuid, i64)],
) -> anyhow::Result<Vec<i64>> {
    Ok(dial_stages(store, tenant, submitted).await?.total)
}

/// Lead-to-dial split at the dial's commit, each part sorted (milliseconds).
pub(crate) struct DialStages {
    /// Submit to the call's transition committing the dial (both actors' inbox, load, apply
    /// and commit).
    pub to_commit: Vec<i64>,
    /// That commit to the carrier's answer (the outbox claim, the compliance precheck, the
    /// request, the completion write).
    pub commit_to_dial: Vec<i64>,
    pub total: Vec<i64>,
}

pub(crate) async fn dial_stages(
    store: &Store,
    tenant: TenantId,
    submitted: &[(Uuid, i64)],
) -> anyhow::Result<DialStages> {
    let dials = first_dials(store, tenant).await?;
    let mut stages = DialStages {
        to_commit: Vec::new(),
        commit_to_dial: Vec::new(),
        total: Vec::new(),
    };
    for (id, at) in submitted {
        if let Some((committed, done)) = dials.get(id) {
            stages.to_commit.push(committed - at);
            stages.commit_to_dial.push(done - committed);
            stages.total.push(done - at);
        }
    }
    stages.to_commit.sort_unstable();
    stages.commit_to_dial.sort_unstable();
    stages.total.sort_unstable();
    Ok(stages)
}

/// The `q` quantile of sorted samples (0 when there are none).
pub(crate) fn pick(sorted: &[i64], q: f64) -> i64 {
    sorted
        .get(((sorted.len().max(1) - 1) as f64 * q).round() as usize)
        .copied()
        .unwrap_or(0)
}

/// A field of `/proc/<pid>/status` (`VmHWM:`, the peak resident set; `VmRSS:`) in MiB, of this
/// process when `pid` is `None`.
pub(crate) fn status_mb(pid: Option<u32>, field: &str) -> f64 {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/status"),
        None => "/proc/self/status".into(),
    };
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// How often the benchmarks count the backlog: counting reads whole tables, so often enough
/// to time the drain to a fraction of a second, not so often that it loads the database the
/// engine is measured on.
pub(crate) const COUNT_EVERY: Duration = Duration::from_millis(250);
