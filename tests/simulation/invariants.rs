//! The invariants that read the database's own logs and the outbox beside the API: timers,
//! versions, effects, and the compliance gate's answers (STOP windows, consent).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, FixedOffset};
use neuronx_adapters::carrier_sim::{CallView, MessageView, SimStats};
use serde_json::Value;

use crate::db::{Effect, Removal};
use crate::driver::{InputKind, Model};
use crate::firings::Firing;
use crate::schedule::Consent;

/// A firing later than this after its due time (by the database's clock) is starvation, not a
/// takeover: the slowest path is a stall (3 s) plus the lease TTL (1.5 s) plus a reload.
const LATE_MS: i64 = 15_000;

/// Every firing committed once, never before its due time by the database's clock (the time its
/// row went), and not starved.
pub fn timers(firings: &[Firing], removals: &[Removal], bad: &mut Vec<String>) {
    let mut fired: BTreeMap<(&str, &str, i64), usize> = BTreeMap::new();
    for f in firings {
        *fired
            .entry((f.actor.as_str(), f.timer.as_str(), f.due_at_ms))
            .or_default() += 1;
    }
    for ((actor, timer, due), n) in &fired {
        if *n > 1 {
            bad.push(format!("timer {timer}@{due} of {actor} fired {n} times"));
        }
    }
    let removed: HashMap<(&str, &str, i64), &Removal> = removals
        .iter()
        .map(|r| ((r.actor.as_str(), r.name.as_str(), r.due_at_ms), r))
        .collect();
    for f in firings {
        let key = (f.actor.as_str(), f.timer.as_str(), f.due_at_ms);
        let Some(r) = removed.get(&key) else {
            bad.push(format!(
                "timer {}@{} of {} fired (engine clock {}) but its row was never consumed",
                f.timer, f.due_at_ms, f.actor, f.now_ms
            ));
            continue;
        };
        if r.at_ms < f.due_at_ms {
            bad.push(format!(
                "timer {}@{} of {} fired {} ms early by the database's clock (engine clock {})",
                f.timer,
                f.due_at_ms,
                f.actor,
                f.due_at_ms - r.at_ms,
                f.now_ms
            ));
        }
        if r.at_ms - f.due_at_ms > LATE_MS {
            bad.push(format!(
                "timer {}@{} of {} fired {} ms late",
                f.timer,
                f.due_at_ms,
                f.actor,
                r.at_ms - f.due_at_ms
            ));
        }
    }
}

/// Every actor row written one version past the last (the triggers log the others).
pub fn versions(jumps: &[(String, Option<i64>, i64)], bad: &mut Vec<String>) {
    for (actor, old, new) in jumps {
        bad.push(format!(
            "actor {actor} written at version {new} after {old:?} (not one past)"
        ));
    }
}

/// No effect lost or made up: every create the carrier saw belongs to an effect recorded done or
/// unknown (never one still open, held or canceled), and every effect recorded created (a call
/// or message SID in its result) reached the carrier under its own key (a notice to a rep, with
/// no status callback, under none).
pub fn effects(
    effects: &[Effect],
    stats: &SimStats,
    calls: &[CallView],
    messages: &[MessageView],
    bad: &mut Vec<String>,
) {
    let by_key: HashMap<&str, &Effect> = effects.iter().map(|e| (e.idem_key.as_str(), e)).collect();
    for key in stats.creates_per_effect.keys() {
        match by_key.get(key.as_str()) {
            None => bad.push(format!("the carrier created {key}, which no effect names")),
            Some(e) if !matches!(e.status.as_str(), "done" | "unknown") => bad.push(format!(
                "the carrier created {key}, recorded {} ({:?})",
                e.status, e.result
            )),
            Some(_) => {}
        }
    }
    let created: HashMap<&str, Option<&str>> = calls
        .iter()
        .map(|c| (c.sid.as_str(), c.effect.as_deref()))
        .chain(
            messages
                .iter()
                .map(|m| (m.sid.as_str(), m.effect.as_deref())),
        )
        .collect();
    for e in effects {
        let result: Value = e
            .result
            .as_deref()
            .and_then(|r| serde_json::from_str(r).ok())
            .unwrap_or(Value::Null);
        let sid = result["call_sid"]
            .as_str()
            .or(result["message_sid"].as_str());
        // A notice to a rep carries no status callback, so the carrier has no key for it:
        // it must exist there, under no other effect's key.
        let key = (e.channel != "notify_sms").then_some(e.idem_key.as_str());
        if let Some(sid) = sid {
            if created.get(sid) != Some(&key) {
                bad.push(format!(
                    "effect {} recorded created as {sid}, which the carrier has as {:?}",
                    e.idem_key,
                    created.get(sid)
                ));
            }
        }
        if matches!(e.status.as_str(), "pending" | "inflight") {
            bad.push(format!(
                "effect {} still {} once quiet",
                e.idem_key, e.status
            ));
        }
    }
}

/// The opportunity's unknown voice effects (a dial that may have reached the carrier).
pub fn unknown_dials(effects: &[Effect], opportunity: &str) -> usize {
    effects
        .iter()
        .filter(|e| e.grp == opportunity && e.channel == "voice" && e.status == "unknown")
        .count()
}

fn seconds(created: &str) -> Option<i64> {
    DateTime::parse_from_rfc2822(created)
        .ok()
        .map(|t| t.timestamp())
}

/// While opted out (from each `opted_out` to the next `opted_in`), no call was dialled, and at
/// most one text (the confirmation, once ever) went to the number. A send already with the
/// carrier when the STOP committed may trail it by the carrier's answer: one second of slack
/// (the carrier's times have whole seconds). An opt-out counts from when it was written
/// (`written`, by the database's clock; its entry's `at` when not logged): the engine cannot
/// honour it before, and a stall between its transition and its commit comes in between (seed
/// 102576: a dial's retry after a 503 went out as the engine thawed, before the opt-out it had
/// applied 2.5 s earlier was written; the retry asks the store, which did not know it yet).
pub fn stop_windows(
    lead: usize,
    timeline: &[Value],
    written: impl Fn(i64) -> Option<i64>,
    phone: &str,
    calls: &[CallView],
    messages: &[MessageView],
    bad: &mut Vec<String>,
) {
    let at = |e: &Value| {
        e["at"]
            .as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
    };
    let mut windows: Vec<(DateTime<FixedOffset>, Option<DateTime<FixedOffset>>)> = Vec::new();
    for e in timeline {
        let open = windows.last().is_some_and(|(_, end)| end.is_none());
        match e["kind"].as_str() {
            Some("opted_out") if !open => {
                let logged = e["version"]
                    .as_i64()
                    .and_then(&written)
                    .and_then(DateTime::from_timestamp_millis)
                    .map(|t| t.fixed_offset());
                if let Some(t) = at(e).max(logged) {
                    windows.push((t, None));
                }
            }
            Some("opted_in") if open => {
                if let (Some(t), Some(w)) = (at(e), windows.last_mut()) {
                    w.1 = Some(t);
                }
            }
            _ => {}
        }
    }
    let inside = |created: &str| {
        seconds(created).is_some_and(|s| {
            windows.iter().any(|(from, to)| {
                s > from.timestamp() + 1 && to.is_none_or(|to| s < to.timestamp())
            })
        })
    };
    let dialled = calls
        .iter()
        .filter(|c| c.to == phone && inside(&c.date_created))
        .count();
    let texted = messages
        .iter()
        .filter(|m| m.to == phone && m.direction != "inbound" && inside(&m.date_created))
        .count();
    if dialled > 0 || texted > 1 {
        // What a replay needs: when each send reached the carrier, and the lead's history.
        let sends: Vec<_> = calls
            .iter()
            .map(|c| (&c.to, &c.date_created, &c.effect))
            .chain(
                messages
                    .iter()
                    .filter(|m| m.direction != "inbound")
                    .map(|m| (&m.to, &m.date_created, &m.effect)),
            )
            .filter(|(to, _, _)| *to == phone)
            .map(|(_, at, effect)| format!("{at} {effect:?}"))
            .collect();
        let history: Vec<_> = timeline
            .iter()
            .map(|e| format!("v{} {} {} {}", e["version"], e["at"], e["kind"], e["data"]))
            .collect();
        bad.push(format!(
            "lead {lead}: while opted out ({windows:?}): {dialled} calls, {texted} texts (1 confirmation allowed); sends {sends:?}; timeline {history:#?}"
        ));
    }
}

/// Carrier callbacks (duplicated and swapped by the simulator) are applied once: one outcome per
/// call, each status of a text (`sent`, then its final one) once.
pub fn callbacks_once(lead: usize, timeline: &[Value], bad: &mut Vec<String>) {
    let mut seen: BTreeMap<(String, String), usize> = BTreeMap::new();
    for e in timeline {
        let id = match e["kind"].as_str() {
            Some("call_outcome") => e["data"]["call_id"].as_str().map(str::to_owned),
            Some("message_status") => e["data"]["message_sid"]
                .as_str()
                .map(|sid| format!("{sid} {}", e["data"]["status"])),
            _ => None,
        };
        if let (Some(kind), Some(id)) = (e["kind"].as_str(), id) {
            *seen.entry((kind.to_owned(), id)).or_default() += 1;
        }
    }
    for ((kind, id), n) in seen {
        if n > 1 {
            bad.push(format!("lead {lead}: {kind} of {id} applied {n} times"));
        }
    }
}

/// No call without voice consent; without sms consent, no text but the help replies and the
/// one opt-out confirmation.
pub fn consent(
    lead: usize,
    consent: Consent,
    model: &Model,
    phone: &str,
    stats: &SimStats,
    bad: &mut Vec<String>,
) {
    let calls = stats.calls_per_number.get(phone).copied().unwrap_or(0);
    if !consent.voice && calls > 0 {
        bad.push(format!("lead {lead}: no voice consent, {calls} calls"));
    }
    let texts = stats.messages_per_number.get(phone).copied().unwrap_or(0) as usize;
    let helps = model
        .inputs
        .iter()
        .filter(|i| i.lead == lead && i.kind == InputKind::Reply && i.status.is_success())
        .count();
    if !consent.sms && texts > helps + 1 {
        bad.push(format!(
            "lead {lead}: no sms consent, {texts} texts ({helps} replies, 1 confirmation allowed)"
        ));
    }
}
