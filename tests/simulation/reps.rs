//! The call flow in the simulation (issue #14): the tenant has reps, so a lead who answers is put
//! through to one by the answer's `<Dial>`, under the same crashes, stalls, cuts and carrier
//! faults as everything else. What a rep and a lead would notice is checked: a rep is never on
//! more calls at once than its `max_calls`, and no conversation the carrier bridged reaches its
//! opportunity's timeline twice (one lost is printed: see `conversations`).

use std::collections::BTreeMap;

use neuronx_adapters::carrier_sim::{CallDetail, SimHandle};
use reqwest::Method;
use serde_json::{json, Value};

use crate::driver::World;

/// Fewer reps than leads answer at once, so "nobody free" happens too.
pub const REPS: usize = 2;
const MAX_CALLS: usize = 1;

/// Rep `n`'s phone: New York's 646, outside the leads' numbers.
pub fn phone(n: usize) -> String {
    format!("+1646555{:04}", 201 + n)
}

/// Gives the tenant its reps through the API, as an operator would: no team (every call may
/// ring any of them), no working hours, one call at a time, available.
pub async fn add(world: &World) {
    for n in 0..REPS {
        let name = format!("rep-{n}");
        let steps = [
            (
                Method::POST,
                "/v1/principals".to_owned(),
                json!({"name": name, "role": "operator", "team": null}),
            ),
            (
                Method::PUT,
                format!("/v1/principals/{name}/rep"),
                json!({"phone": phone(n), "time_zone": "America/New_York", "max_calls": MAX_CALLS}),
            ),
            (
                Method::POST,
                format!("/v1/principals/{name}/status"),
                json!({"status": "available"}),
            ),
        ];
        for (method, path, body) in steps {
            let (status, answer) = world.send(method, &path, body, None).await;
            assert!(status.is_success(), "{path}: {status} {answer}");
        }
    }
}

/// Every call the carrier created over REST, with the legs its `<Dial>`s placed.
pub fn details(sim: &SimHandle) -> Vec<CallDetail> {
    sim.calls()
        .iter()
        .filter_map(|c| sim.call_detail(&c.sid))
        .filter(|d| d.parent_call_sid.is_none())
        .collect()
}

/// A rep is on no more calls at once than its `max_calls`: its legs, from the moment it picked
/// up to the moment the leg ended, never overlap beyond that. (An offer records the leg before
/// the carrier rings it and frees it only when its end is reported, so the carrier's intervals
/// sit inside the engine's.)
pub fn capacity(details: &[CallDetail], bad: &mut Vec<String>) {
    let mut talks: BTreeMap<&str, Vec<(i64, i64, &str)>> = BTreeMap::new();
    for leg in details.iter().flat_map(|d| &d.children) {
        if let Some(answered) = leg.answered_ms {
            let ended = leg.ended_ms.unwrap_or(i64::MAX);
            talks
                .entry(leg.to.as_str())
                .or_default()
                .push((answered, ended, leg.sid.as_str()));
        }
    }
    for (rep, mut legs) in talks {
        legs.sort_unstable();
        // Ends of the legs still on, at each answer in order.
        let mut on: Vec<(i64, &str)> = Vec::new();
        for (answered, ended, sid) in legs {
            on.retain(|(end, _)| *end > answered);
            on.push((ended, sid));
            if on.len() > MAX_CALLS {
                let sids: Vec<&str> = on.iter().map(|(_, s)| *s).collect();
                bad.push(format!(
                    "rep {rep} on {} calls at once (max {MAX_CALLS}): legs {sids:?}",
                    on.len()
                ));
            }
        }
    }
}

/// No conversation counted twice: the lead's timeline has no more `conversation` entries (event
/// `conversation`) than the carrier bridged calls for it. Fewer is printed, not a violation yet:
/// seed 2002 on PostgreSQL with three engines, under load, lost one (a bridged call's dial
/// action through a crash, a stall and a cut; docs/simulation.md, "Not explained yet"). Answers
/// how many were lost.
pub fn conversations(
    lead: usize,
    phone: &str,
    details: &[CallDetail],
    timeline: &[Value],
    bad: &mut Vec<String>,
) -> usize {
    let bridged: Vec<&str> = details
        .iter()
        .filter(|d| d.to == phone && d.children.iter().any(|l| l.bridged_to.is_some()))
        .map(|d| d.sid.as_str())
        .collect();
    let recorded = timeline
        .iter()
        .filter(|e| e["kind"] == "conversation" && e["data"]["event"] == "conversation")
        .count();
    if recorded > bridged.len() {
        bad.push(format!(
            "lead {lead}: {} conversations bridged by the carrier ({bridged:?}), {recorded} on the timeline",
            bridged.len()
        ));
    }
    if recorded < bridged.len() {
        eprintln!(
            "simulation:   lead {lead}: {} conversations bridged by the carrier ({bridged:?}), {recorded} on the timeline (lost: not yet a violation)",
            bridged.len()
        );
    }
    bridged.len().saturating_sub(recorded)
}
