//! The invariants, checked once the engines are quiet after a schedule. Each violation is a
//! sentence; a schedule passes with none.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::{Duration, Instant};

use chrono::Utc;
use neuronx_actors::domain::opportunity::Stage;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::driver::{InputKind, Model, World};
use crate::firings;
use crate::invariants;
use crate::reps;

/// Quiet also means no timer due this soon: the simulation's playbook arms timers of one or two
/// seconds, and each is to fire (and be checked) before the schedule ends.
const TIMERS_AHEAD_MS: i64 = 2_500;

/// Waits until nothing is left to do: no input waiting, no effect open, no timer due, and the
/// carrier's counters unchanged across two polls (its callbacks delivered or given up).
pub async fn quiet(world: &World, within: Duration) -> Result<(), String> {
    let deadline = Instant::now() + within;
    let mut last = None;
    loop {
        let now = Utc::now().timestamp_millis() + TIMERS_AHEAD_MS;
        let backlog = world.store.backlog(now).await.map_err(|e| e.to_string())?;
        let stats = world.sim.stats();
        let idle = backlog.inbox == 0 && backlog.outbox_open == 0 && backlog.timers_due == 0;
        let calls_done = world.sim.calls().iter().all(|c| {
            matches!(
                c.status.as_str(),
                "completed" | "busy" | "no-answer" | "failed" | "canceled"
            )
        });
        // A callback the simulator is still retrying (its engine was stalled or restarting)
        // has been sent and neither delivered nor abandoned: it will change the engine's state
        // after its backoff, which can outlast two polls (seed 107802).
        let callbacks_settled =
            stats.callbacks_delivered + stats.callback_failures >= stats.callbacks_sent;
        if idle && calls_done && callbacks_settled && last.as_ref() == Some(&stats) {
            return Ok(());
        }
        last = idle.then_some(stats);
        if Instant::now() > deadline {
            return Err(format!("not quiet within {within:?}: {backlog:?}"));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Every invariant; answers the violations.
pub async fn check(world: &World, model: &Model) -> Vec<String> {
    let mut bad = Vec::new();
    let stats = world.sim.stats();
    // (1) No intended effect executed twice.
    if stats.duplicate_creates != 0 {
        let twice: Vec<_> = stats
            .creates_per_effect
            .iter()
            .filter(|(_, n)| **n > 1)
            .collect();
        bad.push(format!("effects executed twice: {twice:?}"));
    }
    let letters = dead_letters(world).await;
    for l in &letters {
        if l["error"].as_str().is_none_or(str::is_empty) {
            bad.push(format!("a dead letter without a reason: {l}"));
        }
    }
    let fired = firings::take();
    let removals = world.db.timer_removals().await;
    invariants::timers(&fired, &removals, &mut bad);
    invariants::versions(&world.db.version_jumps().await, &mut bad);
    let effects = world.db.effects().await;
    let opt_outs = world.db.opt_outs().await;
    let calls = world.sim.calls();
    let messages = world.sim.messages();
    invariants::effects(&effects, &stats, &calls, &messages, &mut bad);
    let details = reps::details(&world.sim);
    reps::capacity(&details, &mut bad);
    let unknown = effects.iter().filter(|e| e.status == "unknown").count();
    eprintln!(
        "simulation:   checked {} timer firings ({} timer rows gone), {} effects ({unknown} unknown), {} calls ({} bridged to a rep), {} texts, {} opt-outs written, {} shard takeovers, carrier faults {:?}",
        fired.len(),
        removals.len(),
        effects.len(),
        calls.len(),
        stats.bridged_calls,
        messages.len(),
        opt_outs.len(),
        world.db.takeovers().await,
        stats.rest_faults
    );
    for lead in 0..world.schedule.leads {
        let answers = &model.create_answers[lead];
        let ids: Vec<_> = answers
            .iter()
            .filter_map(|(_, b)| b["id"].as_str())
            .collect();
        if ids.windows(2).any(|w| w[0] != w[1]) {
            bad.push(format!(
                "lead {lead}: duplicate creates made two opportunities: {ids:?}"
            ));
        }
        let Some(id) = model.ids[lead].as_deref() else {
            bad.push(format!("lead {lead}: no create answered an id"));
            continue;
        };
        let (status, view) = world
            .send(
                Method::GET,
                &format!("/v1/opportunities/{id}"),
                Value::Null,
                None,
            )
            .await;
        if status != StatusCode::OK {
            bad.push(format!(
                "lead {lead}: created but not readable ({status}): {view}"
            ));
            continue;
        }
        let timeline = timeline(world, id).await;
        let lettered = letters
            .iter()
            .filter(|l| l["actor_id"].as_str() == Some(id))
            .count();
        inputs_applied_once(lead, model, &timeline, lettered, &mut bad);
        versions_grow(lead, &timeline, &view, &mut bad);
        stages_legal(lead, &timeline, &mut bad);
        invariants::callbacks_once(lead, &timeline, &mut bad);
        let phone = world.schedule.phone(lead);
        let written = |version| opt_outs.get(&(id.to_owned(), version)).copied();
        invariants::stop_windows(
            lead, &timeline, written, &phone, &calls, &messages, &mut bad,
        );
        let _lost = reps::conversations(lead, &phone, &details, &timeline, &mut bad);
        let consent = world.schedule.consent[lead];
        invariants::consent(lead, consent, model, &phone, &stats, &mut bad);
        // Each call placed reached the carrier at most once (a dial cut by a crash may not
        // have reached it at all: recorded unknown, never repeated); a dial whose answer was
        // lost (recorded unknown) may have reached it without a `call_placed`.
        let placed = kinds(&timeline, "call_placed") + invariants::unknown_dials(&effects, id);
        let dialled = stats.calls_per_number.get(&phone).copied().unwrap_or(0) as usize;
        if dialled > placed {
            bad.push(format!(
                "lead {lead}: dialled {dialled} times for {placed} calls placed or unknown"
            ));
        }
    }
    bad
}

fn kinds(timeline: &[Value], kind: &str) -> usize {
    timeline.iter().filter(|e| e["kind"] == kind).count()
}

/// (2) Every input the engine acknowledged is on the timeline once, or dead-lettered.
fn inputs_applied_once(
    lead: usize,
    model: &Model,
    timeline: &[Value],
    lettered: usize,
    bad: &mut Vec<String>,
) {
    let mine: Vec<_> = model.inputs.iter().filter(|i| i.lead == lead).collect();
    let acked = |f: &dyn Fn(&InputKind) -> bool, ok: &dyn Fn(StatusCode) -> bool| {
        mine.iter().filter(|i| f(&i.kind) && ok(i.status)).count()
    };
    let success = |s: StatusCode| s.is_success();
    let ok = |s: StatusCode| s == StatusCode::OK;
    let texts = acked(
        &|k| matches!(k, InputKind::Reply | InputKind::Stop | InputKind::Start),
        &success,
    );
    let stops = acked(&|k| *k == InputKind::Stop, &success);
    // START (and YES) opt in only when opted out (else they are conversation).
    let starts = acked(
        &|k| matches!(k, InputKind::Start | InputKind::Reply),
        &success,
    );
    let is_stage = |k: &InputKind| matches!(k, InputKind::SetStage(_));
    let by_operator = |kind: &str| {
        timeline
            .iter()
            .filter(|e| e["kind"] == kind)
            .filter(|e| e["by"].as_str().is_some_and(|b| b.starts_with("operator:")))
            .count()
    };
    // (what, answered 200 (must apply), answered 200 or 202 (may apply), applied). A stage
    // set to the stage the opportunity is already in answers 200 and changes nothing, so
    // stage commands only bound what applied from above (their answers are checked below).
    let seen = [
        ("replied", texts, texts, kinds(timeline, "replied")),
        ("opted_out", stops, stops, kinds(timeline, "opted_out")),
        ("opted_in", 0, starts, kinds(timeline, "opted_in")),
        (
            "paused",
            acked(&|k| *k == InputKind::Pause, &ok),
            acked(&|k| *k == InputKind::Pause, &success),
            by_operator("paused"),
        ),
        (
            "resumed",
            acked(&|k| *k == InputKind::Resume, &ok),
            acked(&|k| *k == InputKind::Resume, &success),
            by_operator("resumed"),
        ),
        (
            "operator stage_changed",
            0,
            acked(&is_stage, &success),
            by_operator("stage_changed"),
        ),
    ];
    for (what, must, may, applied) in seen {
        // A dead-lettered input does not apply.
        if applied > may || applied + lettered < must {
            bad.push(format!(
                "lead {lead}: `{what}`: {must} inputs answered 200, {may} accepted, {applied} applied, {lettered} dead-lettered; answers: {:?}",
                mine.iter().map(|i| (&i.kind, i.status, &i.answer)).collect::<Vec<_>>()
            ));
        }
    }
    // A stage command answered 200 answers the opportunity in the stage it asked for.
    for i in mine.iter().filter(|i| i.status == StatusCode::OK) {
        if let InputKind::SetStage(stage) = i.kind {
            if i.answer["stage"].as_str() != Some(stage) {
                bad.push(format!(
                    "lead {lead}: set stage {stage} answered 200 with {}",
                    i.answer
                ));
            }
        }
    }
}

/// (3) Versions along the timeline never go back and end at most at the view's version.
fn versions_grow(lead: usize, timeline: &[Value], view: &Value, bad: &mut Vec<String>) {
    let versions: Vec<i64> = timeline
        .iter()
        .filter_map(|e| e["version"].as_i64())
        .collect();
    if versions.windows(2).any(|w| w[1] < w[0]) {
        bad.push(format!("lead {lead}: versions go back: {versions:?}"));
    }
    if let (Some(last), Some(current)) = (versions.last(), view["version"].as_i64()) {
        if *last > current {
            bad.push(format!(
                "lead {lead}: timeline at version {last}, opportunity at {current}"
            ));
        }
    }
}

/// (4) Each stage change is an edge of the stage graph, and each starts where the last ended.
fn stages_legal(lead: usize, timeline: &[Value], bad: &mut Vec<String>) {
    let mut at: Option<Stage> = None;
    for e in timeline.iter().filter(|e| e["kind"] == "stage_changed") {
        let parse = |k: &str| e["data"][k].as_str().and_then(|s| Stage::from_str(s).ok());
        let (Some(from), Some(to)) = (parse("from"), parse("to")) else {
            bad.push(format!("lead {lead}: unreadable stage change {e}"));
            continue;
        };
        if !from.can_move_to(to) {
            bad.push(format!("lead {lead}: illegal move {from:?} -> {to:?}"));
        }
        if at.is_some_and(|s| s != from) {
            bad.push(format!("lead {lead}: moved from {from:?} while at {at:?}"));
        }
        at = Some(to);
    }
}

async fn timeline(world: &World, id: &str) -> Vec<Value> {
    let path = format!("/v1/opportunities/{id}/timeline?limit=1000");
    let (status, body) = world.send(Method::GET, &path, Value::Null, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["items"].as_array().cloned().unwrap_or_default()
}

async fn dead_letters(world: &World) -> Vec<Value> {
    let (status, body) = world
        .send(
            Method::GET,
            "/v1/dead-letters?limit=1000",
            Value::Null,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["items"].as_array().cloned().unwrap_or_default()
}

/// What a failed schedule prints beside its seed.
pub fn summary(world: &World, model: &Model) -> BTreeMap<&'static str, String> {
    BTreeMap::from([
        ("steps", format!("{:?}", world.schedule.steps)),
        ("carrier", format!("{:?}", world.schedule.carrier)),
        ("inputs", format!("{:?}", model.inputs)),
        ("sim", format!("{:?}", world.sim.stats())),
        ("skew_ms", format!("{:?}", world.schedule.skew_ms)),
        ("consent", format!("{:?}", world.schedule.consent)),
        (
            "faults",
            format!(
                "{} crash(es), {} stall(s), {} cut(s)",
                model.crashes, model.stalls, model.cuts
            ),
        ),
    ])
}
