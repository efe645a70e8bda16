//! The scenarios that freeze or cut off part of the cluster rather than kill it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use uuid::Uuid;

use crate::cluster::{Cluster, Spec};
use crate::common::eventually;
use crate::load::{self, now_ms};
use crate::procs::signal;
use crate::proxy::Cut;
use crate::{failover_budget, leads_landed, verify, RATE, SIM_TOML};

const ALL: [usize; 3] = [0, 1, 2];
const FENCED: &str = "neuronx_fencing_rejections_total";
const OWNED: &str = "neuronx_owned_shards";

/// Opportunities on the given shards.
async fn opportunities_on(c: &Cluster, shards: &[(i32, i64)], limit: i64) -> Vec<Uuid> {
    let ids: Vec<i32> = shards.iter().map(|(s, _)| *s).collect();
    sqlx::query_scalar(
        "SELECT id FROM actors WHERE kind = 'opportunity' AND shard = ANY($1) ORDER BY created_at DESC LIMIT $2",
    )
    .bind(&ids)
    .bind(limit)
    .fetch_all(&c.pool)
    .await
    .unwrap()
}

/// Waits until instance `i` holds shards and at least one opportunity is on them (the load
/// reaches the database at its own pace: a loaded machine may need far longer than usual);
/// returns those shards and up to `limit` of their opportunities, newest first.
async fn opportunities_of(c: &Cluster, i: usize, limit: i64) -> (Vec<(i32, i64)>, Vec<Uuid>) {
    let what = format!("an opportunity on a shard of {}", c.nodes[i].id);
    eventually(Duration::from_secs(30), &what, || async {
        let held = c.shards_of(i).await;
        if held.is_empty() {
            return None;
        }
        let opps = opportunities_on(c, &held, limit).await;
        (!opps.is_empty()).then_some((held, opps))
    })
    .await
}

/// Reassignments sent straight to instance `i` for `targets`, back to back, until stopped: the
/// instance always has work for its own shards in hand. Returns the answers' statuses.
fn pressure(
    c: &Cluster,
    i: usize,
    targets: Vec<Uuid>,
) -> (Arc<AtomicBool>, tokio::task::JoinHandle<Vec<u16>>) {
    let stop = Arc::new(AtomicBool::new(false));
    let (base, key, stop_in) = (c.nodes[i].base.clone(), c.key.clone(), stop.clone());
    let task = tokio::spawn(async move {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let permits = Arc::new(tokio::sync::Semaphore::new(48));
        let statuses = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = tokio::task::JoinSet::new();
        let mut n = 0usize;
        while !stop_in.load(Ordering::Relaxed) {
            let permit = permits.clone().acquire_owned().await.unwrap();
            let id = targets[n % targets.len()];
            let who = if (n / targets.len()).is_multiple_of(2) {
                "ana"
            } else {
                "bob"
            };
            let (client, url, key, statuses) = (
                client.clone(),
                format!("{base}/v1/opportunities/{id}/reassign"),
                key.clone(),
                statuses.clone(),
            );
            tasks.spawn(async move {
                let _permit = permit;
                let body = json!({"assignee": who, "reason": "chaos", "operator": "chaos"});
                let r = client.post(url).bearer_auth(key).json(&body).send().await;
                let status = r.map(|r| r.status().as_u16()).unwrap_or(0);
                statuses.lock().unwrap().push(status);
            });
            n += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        while tasks.join_next().await.is_some() {}
        let out = statuses.lock().unwrap().clone();
        out
    });
    (stop, task)
}

fn counts(statuses: &[u16]) -> std::collections::BTreeMap<u16, usize> {
    let mut m = std::collections::BTreeMap::new();
    for s in statuses {
        *m.entry(*s).or_insert(0) += 1;
    }
    m
}

/// SIGSTOP one instance past its lease while load (some of it aimed straight at its shards)
/// continues; its shards are taken over while it is frozen; woken, it is refused by the
/// fencing (when it had a transition in hand) or stops at its lease deadline, and rejoins
/// without having committed for the shards it lost (the invariants of `verify::settled`).
pub async fn zombie() {
    let c = Cluster::start(Spec::default(), SIM_TOML).await;
    c.wait_balanced(&ALL, Duration::from_secs(30)).await;
    let load = load::start(c.lb.url.clone(), c.key.clone(), "zombie", RATE);
    leads_landed(&c, 3 * RATE).await;
    let z = 2;
    let (held, targets) = opportunities_of(&c, z, 40).await;
    let fenced_before = c.metric(z, FENCED).await.unwrap_or(0.0);
    let (stop, pressure) = pressure(&c, z, targets);
    tokio::time::sleep(Duration::from_secs(1)).await;

    const DEADLINE_STOP: &str = "lease deadline passed without a renewal";
    let deadline_stops = || c.log_tail(z, usize::MAX).matches(DEADLINE_STOP).count();
    let deadline_stops_before = deadline_stops();
    signal(c.pid(z), "STOP");
    let took = c.wait_taken_over(z, &held, Duration::from_secs(15)).await;
    eprintln!(
        "chaos: zombie frozen; its {} shards taken over in {took:?}",
        held.len()
    );
    assert!(
        took <= failover_budget(&c),
        "takeover of a frozen instance took {took:?}"
    );
    // The new owners work on; the zombie's queue of requests grows.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    signal(c.pid(z), "CONT");
    let woke = Instant::now();
    let noticed = eventually(Duration::from_secs(10), "the zombie to notice", || async {
        let fenced = c.metric(z, FENCED).await?;
        let owned = c.metric(z, OWNED).await?;
        (fenced > fenced_before || owned == 0.0).then_some((fenced, owned))
    })
    .await;
    eprintln!(
        "chaos: zombie noticed after {:?}: fencing rejections, owned shards = {noticed:?}",
        woke.elapsed()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    let statuses = pressure.await.unwrap();
    let fenced = c.metric(z, FENCED).await.unwrap_or(0.0) - fenced_before;
    eprintln!(
        "chaos: zombie: {fenced} fencing rejections; direct commands answered {:?}",
        counts(&statuses)
    );
    // Woken, the zombie must not act for the shards it lost. Two guards can stop it, and which
    // comes first is a race on waking: a transition it had in hand reaches the database and is
    // refused by the fencing, or its lease deadline (overdue on waking) stops every host before
    // anything commits. A commit it had open during the freeze is cut by the database's
    // idle-in-transaction timeout and counts as neither.
    let stopped_at_deadline = deadline_stops() > deadline_stops_before;
    eprintln!("chaos: zombie: fenced {fenced}, stopped at its deadline {stopped_at_deadline}");
    assert!(
        fenced > 0.0 || stopped_at_deadline,
        "the zombie woke with work for shards it no longer owns, yet neither the fencing nor \
         its lease deadline stopped it (owned shards at wake {}); log:\n{}",
        noticed.1,
        c.log_tail(z, 20)
    );
    let back = c.wait_balanced(&ALL, Duration::from_secs(20)).await;
    eprintln!("chaos: zombie rejoined, balanced in {back:?}");
    let leads = load.finish().await;
    eprintln!("chaos: load: {}", load::describe(&leads));
    verify::settled(&c, &leads, &ALL).await;
    c.shutdown().await;
}

/// A signed status callback for a text, sent straight to instance `i` (its public URL is the
/// load balancer's, which the signature covers). The status is one the domain ignores.
/// No answer within 16 s counts as status 0 (Twilio gives up after 15 s).
async fn probe_webhook(c: &Cluster, i: usize, opp: &str) -> (u16, Duration) {
    let path = format!(
        "/webhooks/twilio/{}/sms/status?opp={opp}&effect=chaos-probe",
        c.tenant
    );
    let params: Vec<(String, String)> = vec![
        ("MessageSid".into(), format!("SMchaosprobe{}", now_ms())),
        ("MessageStatus".into(), "sent".into()),
    ];
    let sig = neuronx_adapters::twilio::signature::compute(
        "sim-auth-token",
        &format!("{}{path}", c.lb.url),
        &params,
    );
    let started = Instant::now();
    let status = c
        .http
        .post(format!("{}{path}", c.nodes[i].base))
        .header("X-Twilio-Signature", sig)
        .form(&params)
        .timeout(Duration::from_secs(16))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0);
    (status, started.elapsed())
}

/// The database drops one instance's connections (refused, then silent): it stops acting
/// before its leases run out, its shards are taken over, webhooks it cannot make durable get
/// 503, and once the database is back it rejoins by itself.
pub async fn postgres_drop() {
    let mut c = Cluster::start(Spec::default(), SIM_TOML).await;
    c.wait_balanced(&ALL, Duration::from_secs(30)).await;
    let load = load::start(c.lb.url.clone(), c.key.clone(), "pgcut", RATE);
    leads_landed(&c, 2 * RATE).await;
    let v = 1;
    for how in [Cut::Refuse, Cut::Blackhole] {
        let (held, opps) = opportunities_of(&c, v, 1).await;
        let opp = opps[0].to_string();
        let lease_end: i64 =
            sqlx::query_scalar("SELECT max(lease_until) FROM shards WHERE owner = $1")
                .bind(&c.nodes[v].id)
                .fetch_one(&c.pool)
                .await
                .unwrap();
        c.nodes[v].proxy.cut(how);
        let cut_at = now_ms();
        let stopped_at = eventually(
            failover_budget(&c) + Duration::from_secs(3),
            "the cut-off instance to drop its shards",
            || async { (c.metric(v, OWNED).await? == 0.0).then(now_ms) },
        )
        .await;
        eprintln!(
            "chaos: {how:?}: owned shards 0 after {} ms; its leases ran to {} ms after the cut",
            stopped_at - cut_at,
            lease_end - cut_at
        );
        assert!(
            stopped_at <= lease_end,
            "{how:?}: still acting {} ms after its lease ran out",
            stopped_at - lease_end
        );
        c.wait_taken_over(v, &held, Duration::from_secs(15)).await;
        eprintln!(
            "chaos: {how:?}: shards taken over {} ms after the cut",
            now_ms() - cut_at
        );
        // Twilio gives up on a webhook after 15 s.
        let (status, took) = probe_webhook(&c, v, &opp).await;
        eprintln!("chaos: {how:?}: webhook to the cut-off instance: {status} after {took:?}");
        assert!(
            status == 503 && took <= Duration::from_secs(15),
            "{how:?}: a webhook the instance cannot make durable must get 503 within 15 s, \
             got {status} after {took:?}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
        c.nodes[v].proxy.restore();
        let back = c.wait_balanced(&ALL, Duration::from_secs(20)).await;
        eprintln!("chaos: {how:?}: rejoined and balanced {back:?} after restore");
        assert!(c.nodes[v].proc.running(), "the cut-off instance exited");
        let (status, _) = probe_webhook(&c, v, &opp).await;
        assert_eq!(status, 200, "webhooks accepted again");
    }
    let leads = load.finish().await;
    eprintln!("chaos: load: {}", load::describe(&leads));
    verify::settled(&c, &leads, &ALL).await;
    c.shutdown().await;
}

async fn carrier_creates(c: &Cluster) -> u64 {
    let s = c.sim_get("/sim/stats").await;
    s["calls"].as_u64().unwrap_or(0) + s["messages"].as_u64().unwrap_or(0)
}

/// Redis goes away and comes back: sends wait (the carrier sees no create) while inputs are
/// still accepted, and sending resumes by itself.
pub async fn redis_restart() {
    let mut c = Cluster::start(Spec::default(), SIM_TOML).await;
    c.wait_balanced(&ALL, Duration::from_secs(30)).await;
    let load = load::start(c.lb.url.clone(), c.key.clone(), "redis", RATE);
    leads_landed(&c, 3 * RATE).await;
    eventually(
        Duration::from_secs(20),
        "a send to reach the carrier before the fault",
        || async { (carrier_creates(&c).await > 0).then_some(()) },
    )
    .await;
    c.redis_kill();
    let down_at = now_ms();
    // Sends already past the limiter may still land.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = carrier_creates(&c).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let during = carrier_creates(&c).await;
    let (pending, inflight): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE status = 'pending'), count(*) FILTER (WHERE status = 'inflight') FROM outbox",
    )
    .fetch_one(&c.pool)
    .await
    .unwrap();
    eprintln!("chaos: redis down: carrier creates {before} → {during}; outbox pending {pending}, inflight {inflight}");
    assert_eq!(during, before, "effects were sent while Redis was down");
    assert!(
        pending + inflight > 0,
        "no send waiting while Redis was down"
    );
    c.redis_start().await;
    let up_at = now_ms();
    let resumed = eventually(Duration::from_secs(20), "sends to resume", || async {
        (carrier_creates(&c).await > during).then(now_ms)
    })
    .await;
    eprintln!(
        "chaos: redis back: sends resumed {} ms later",
        resumed - up_at
    );
    let leads = load.finish().await;
    eprintln!("chaos: load: {}", load::describe(&leads));
    let refused: Vec<_> = leads
        .iter()
        .flat_map(|l| l.attempts.iter().map(move |a| (&l.external_id, a)))
        .filter(|(_, a)| a.at_ms >= down_at && a.at_ms < up_at && !(200..300).contains(&a.status))
        .collect();
    assert!(
        refused.is_empty(),
        "creates refused while Redis was down: {refused:?}"
    );
    verify::settled(&c, &leads, &ALL).await;
    // A send handed back while Redis was away is claimed again on the next pass; a follow-up
    // text created late in the run may still be waiting its turn when the leads have settled.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT status, count(*) FROM outbox GROUP BY 1")
                .fetch_all(&c.pool)
                .await
                .unwrap();
        if rows.iter().all(|(s, _)| s == "done" || s == "canceled") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "every waiting send went out once within 30 s of settling: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    c.shutdown().await;
}
