//! Load: leads created at a steady rate through the load balancer, each with a first-touch SLA
//! of a few seconds so timers keep coming due during the chaos. A create that fails (an
//! instance down, a 5xx) is retried with the same external id (creates are idempotent on it)
//! until it is accepted or 30 s have passed; every attempt is recorded.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::task::{JoinHandle, JoinSet};

/// One attempt: when it started (ms since the epoch) and its status (0: no answer).
#[derive(Debug, Clone, Copy)]
pub struct Attempt {
    pub at_ms: i64,
    pub status: u16,
}

#[derive(Debug, Clone)]
pub struct Lead {
    pub external_id: String,
    /// The opportunity id, once a create was accepted.
    pub id: Option<String>,
    pub attempts: Vec<Attempt>,
}

impl Lead {
    pub fn accepted(&self) -> bool {
        self.id.is_some()
    }
}

pub struct Load {
    stop: Arc<AtomicBool>,
    task: JoinHandle<Vec<Lead>>,
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub fn lead_body(external_id: &str, n: usize) -> Value {
    json!({
        "external_id": external_id,
        "playbook": "demo",
        "contact": {
            "name": format!("Lead {n}"),
            // In the zone it is day in now, as the contact's: a fixed area code is dark for
            // hours of every day, and the gate then holds every call (this failed at 05:40 UTC).
            "phone": crate::common::day_phone(&format!("555{:04}", n % 10_000)),
            "timezone": crate::common::daytime_zone(),
            "consent": {"voice": true, "sms": true}
        },
        "sla": {"first_touch_seconds": 2 + (n % 3) as u64}
    })
}

/// Creates `per_second` leads a second through `base` until `finish`.
pub fn start(base: String, key: String, prefix: &'static str, per_second: u32) -> Load {
    let stop = Arc::new(AtomicBool::new(false));
    let stop_in = stop.clone();
    let task = tokio::spawn(async move {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let mut tasks = JoinSet::new();
        let mut tick = tokio::time::interval(Duration::from_secs(1) / per_second.max(1));
        let mut n = 0usize;
        while !stop_in.load(Ordering::Relaxed) {
            tick.tick().await;
            let external_id = format!("{prefix}-{n}");
            let (client, base, key) = (client.clone(), base.clone(), key.clone());
            tasks.spawn(create(client, base, key, external_id, n));
            n += 1;
        }
        let mut leads = Vec::new();
        while let Some(lead) = tasks.join_next().await {
            leads.push(lead.unwrap());
        }
        leads
    });
    Load { stop, task }
}

impl Load {
    /// Stops creating and returns every lead once its create settled.
    pub async fn finish(self) -> Vec<Lead> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap()
    }
}

async fn create(
    client: reqwest::Client,
    base: String,
    key: String,
    external_id: String,
    n: usize,
) -> Lead {
    let body = lead_body(&external_id, n);
    let mut lead = Lead {
        external_id,
        id: None,
        attempts: Vec::new(),
    };
    let give_up = now_ms() + 30_000;
    while now_ms() < give_up {
        let at_ms = now_ms();
        let resp = client
            .post(format!("{base}/v1/opportunities"))
            .bearer_auth(&key)
            .json(&body)
            .send()
            .await;
        let status = resp.as_ref().map(|r| r.status().as_u16()).unwrap_or(0);
        lead.attempts.push(Attempt { at_ms, status });
        if let Ok(r) = resp {
            if r.status().is_success() {
                let v: Value = r.json().await.unwrap_or(Value::Null);
                lead.id = v["id"].as_str().map(str::to_owned);
                if lead.id.is_some() {
                    break;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    lead
}

/// A summary line for the report.
pub fn describe(leads: &[Lead]) -> String {
    let accepted = leads.iter().filter(|l| l.accepted()).count();
    let retried = leads.iter().filter(|l| l.attempts.len() > 1).count();
    let mut statuses = std::collections::BTreeMap::new();
    for a in leads.iter().flat_map(|l| &l.attempts) {
        *statuses.entry(a.status).or_insert(0) += 1;
    }
    format!(
        "{} leads, {accepted} accepted, {retried} retried; attempt statuses {statuses:?}",
        leads.len()
    )
}
