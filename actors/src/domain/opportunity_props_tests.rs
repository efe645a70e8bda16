//! Properties: no sequence of inputs breaks an invariant, no call or
//! marketing text ever goes out unless the compliance gate allows it, and
//! `apply` is deterministic.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use chrono::TimeDelta;
use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::domain::compliance::{check, Channel, Decision, GateInput, Purpose, Rules};

/// A host's view: the opportunity plus the timers its decisions armed.
#[derive(Debug, Clone)]
struct Sim {
    pb: Playbook,
    rules: &'static Rules,
    opp: Opportunity,
    armed: BTreeMap<OppTimer, DateTime<Utc>>,
    now: DateTime<Utc>,
    /// Opt-out confirmations emitted so far.
    confirmations: usize,
}

fn federal() -> &'static Rules {
    static RULES: OnceLock<Rules> = OnceLock::new();
    RULES.get_or_init(Rules::federal_only)
}

fn shipped() -> &'static Rules {
    static RULES: OnceLock<Rules> = OnceLock::new();
    RULES.get_or_init(shipped_rules)
}

/// What the gate says about `opp` on `channel` at `now`.
fn gate(rules: &Rules, opp: &Opportunity, channel: Channel, now: DateTime<Utc>) -> Decision {
    let recent_attempts = match channel {
        Channel::Voice => &opp.call_attempts,
        Channel::Sms => &opp.sms_sent,
    };
    check(
        rules,
        &GateInput {
            channel,
            purpose: Purpose::Marketing,
            phone: opp.contact.phone.as_deref().unwrap(),
            contact_timezone: opp.contact.timezone.as_deref(),
            consent_voice: opp.contact.consent.voice,
            consent_sms: opp.contact.consent.sms,
            opted_out: opp.opted_out,
            opt_out_confirmation_sent: opp.opt_out_confirmed,
            on_dnc: opp.dnc_channels.contains(&channel),
            recent_attempts,
            now,
        },
    )
}

fn check_invariants(sim: &Sim) -> Result<(), String> {
    let o = &sim.opp;
    let armed_or_held = |t: OppTimer| sim.armed.contains_key(&t) || o.held_timers.contains(&t);
    let mut held = o.held_timers.clone();
    held.sort();
    held.dedup();
    let checks = [
        (
            o.attempts <= sim.pb.max_attempts,
            "attempts exceed max_attempts",
        ),
        (o.stage != Stage::New, "stage new after creation"),
        (
            !o.stage.is_terminal() || sim.armed.is_empty(),
            "terminal with armed timers",
        ),
        (
            !o.stage.is_terminal() || o.held_timers.is_empty(),
            "terminal with held timers",
        ),
        (
            o.paused || o.held_timers.is_empty(),
            "held timers while running",
        ),
        (held.len() == o.held_timers.len(), "duplicate held timers"),
        (
            !armed_or_held(OppTimer::RetryCall) || o.stage == Stage::Contacting,
            "retry outside contacting",
        ),
        (
            !o.reached || !armed_or_held(OppTimer::FirstTouchSla),
            "first-touch sla after reaching",
        ),
        (
            o.active_call.is_none() || (o.contact.consent.voice && o.attempts >= 1),
            "call without consent",
        ),
        (o.updated_at >= o.created_at, "updated before created"),
        (
            !o.opted_out || o.stage.is_terminal(),
            "opted out but still open",
        ),
        (
            o.pending_sms.is_some() == armed_or_held(OppTimer::SendSms),
            "pending sms and its timer disagree",
        ),
        (
            o.pending_sms
                .as_ref()
                .is_none_or(|p| p.purpose == Purpose::Marketing),
            "a non-marketing text was deferred",
        ),
        (
            o.call_attempts
                .iter()
                .chain(&o.sms_sent)
                .all(|&at| at <= sim.now),
            "attempt recorded in the future",
        ),
        (sim.confirmations <= 1, "more than one opt-out confirmation"),
        (
            o.active_call.is_none() || o.live_call.as_ref().map(|l| l.call_id) == o.active_call,
            "the cadence's call is not the live call",
        ),
        (
            sim.confirmations == usize::from(o.opt_out_confirmed),
            "confirmation flag disagrees with confirmations sent",
        ),
    ];
    match checks.iter().find(|(ok, _)| !ok) {
        Some((_, what)) => Err(format!("{what}: {o:?} armed {:?}", sim.armed)),
        None => Ok(()),
    }
}

#[derive(Debug, Clone)]
enum Act {
    Pause,
    Resume,
    Reassign(bool),
    Escalate,
    SetStage(Stage),
    FireArmed(usize),
    FireAny(OppTimer),
    FinishActive(CallResult),
    FinishStray(CallResult),
    Reply(&'static str),
    Blocked(Channel),
    MessageStatus(&'static str),
    Create,
    Wait(u32),
    /// A pause that also hangs up the live call.
    PauseHangUp,
    /// The number put on the do-not-call list.
    Dnc,
    /// The live call ends after it reported an answer.
    EndLive,
    /// A person texts the lead by hand (and takes the conversation over).
    HumanText,
    HandBack,
}

fn call_result() -> impl Strategy<Value = CallResult> {
    use CallResult::*;
    prop::sample::select(vec![Answered, Machine, NoAnswer, Busy, Failed, Canceled])
}

const REPLIES: &[&str] = &[
    "ok",
    "call me tomorrow",
    "STOP",
    " stop. ",
    "START",
    "yes",
    "HELP",
    "please stop texting me",
];

fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        2 => Just(Act::Pause),
        2 => Just(Act::Resume),
        1 => any::<bool>().prop_map(Act::Reassign),
        1 => Just(Act::Escalate),
        3 => prop::sample::select(Stage::ALL.to_vec()).prop_map(Act::SetStage),
        6 => any::<usize>().prop_map(Act::FireArmed),
        1 => prop::sample::select(OppTimer::ALL.to_vec()).prop_map(Act::FireAny),
        6 => call_result().prop_map(Act::FinishActive),
        1 => call_result().prop_map(Act::FinishStray),
        3 => prop::sample::select(REPLIES).prop_map(Act::Reply),
        1 => prop::sample::select(Channel::ALL.to_vec()).prop_map(Act::Blocked),
        1 => prop::sample::select(vec!["sent", "delivered", "failed", "undelivered"])
            .prop_map(Act::MessageStatus),
        1 => Just(Act::Create),
        1 => Just(Act::PauseHangUp),
        1 => Just(Act::Dnc),
        2 => Just(Act::EndLive),
        2 => Just(Act::HumanText),
        1 => Just(Act::HandBack),
        2 => (0u32..900).prop_map(Act::Wait),
        1 => (3_600u32..108_000).prop_map(Act::Wait),
    ]
}

fn playbook() -> impl Strategy<Value = Playbook> {
    (
        1u32..8,
        1u64..400,
        1u64..200,
        0u64..700,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(max_attempts, first_touch, response, retry, sms, stops_calls)| Playbook {
                max_attempts,
                first_touch_sla_seconds: first_touch,
                response_sla_seconds: response,
                retry_delay_seconds: retry,
                sms_after_missed_call: sms.then(|| "Hi {name}".to_owned()),
                takeover_stops_calls: stops_calls,
                ..pb()
            },
        )
}

/// Seconds after `t(0)` (Wednesday 20:00 UTC): anywhere in the week, or
/// within 20 minutes of a window edge (21:00 and 08:00 in New York and Los
/// Angeles, Florida's 20:00), where calls end after hours.
fn start_offset() -> impl Strategy<Value = i64> {
    let edges = vec![5, 6, 9, 17, 20];
    prop_oneof![
        0i64..7 * 86_400,
        (0i64..7, prop::sample::select(edges), -1_200i64..1_200)
            .prop_map(|(day, hour, jitter)| day * 86_400 + hour * 3_600 + jitter),
    ]
}

/// The rules, the contact's phone and zone, and the starting instant.
fn setting() -> impl Strategy<Value = (&'static Rules, Contact, DateTime<Utc>)> {
    let phones = vec![
        "+14155550100", // CA
        "+13055550100", // FL: 08:00-20:00, 3 per 24 h
        "+12565550100", // AL: no Sundays or holidays
        "+18505550100", // FL, split Central/Eastern
        "+442071234567",
    ];
    let zones = vec![
        None,
        Some("America/Los_Angeles"),
        Some("America/New_York"),
        Some("Mars/Base"),
    ];
    (
        any::<bool>(),
        prop::sample::select(phones),
        prop::sample::select(zones),
        start_offset(),
    )
        .prop_map(|(real, phone, zone, offset)| {
            let rules = if real { shipped() } else { federal() };
            let mut contact = contact(true, true);
            contact.phone = Some(phone.to_owned());
            contact.timezone = zone.map(str::to_owned);
            (rules, contact, t(offset))
        })
}

fn with_contact(mut input: OppInput, c: &Contact, voice: bool, sms: bool) -> OppInput {
    if let OppInput::Create { contact, .. } = &mut input {
        *contact = Contact {
            consent: Consent {
                voice,
                sms,
                email: false,
            },
            ..c.clone()
        };
    }
    input
}

/// Fresh opportunities, and opportunities built directly in any stage.
fn start() -> impl Strategy<Value = Sim> {
    let fresh = (
        playbook(),
        setting(),
        any::<(bool, bool)>(),
        prop::option::of(1u64..500),
    )
        .prop_map(|(pb, (rules, contact, now), (voice, sms), first_touch)| {
            let mut input = with_contact(create_input(voice, sms), &contact, voice, sms);
            if let OppInput::Create { playbook, sla, .. } = &mut input {
                playbook.clone_from(&pb.name);
                *sla = Some(SlaOverride {
                    first_touch_seconds: first_touch,
                });
            }
            let d = apply(None, input, now, &pb, rules).unwrap();
            let mut sim = Sim {
                pb,
                rules,
                opp: d.state,
                armed: BTreeMap::new(),
                now,
                confirmations: 0,
            };
            track(&mut sim, &d.timers);
            sim
        });
    let stage = prop::sample::select(Stage::ALL[1..].to_vec());
    let flags = any::<(bool, bool, bool, bool, bool, bool)>();
    let held = prop::collection::vec(prop::sample::select(OppTimer::ALL.to_vec()), 0..4);
    let built = (playbook(), setting(), stage, flags, 0u32..8, held).prop_map(
        |(pb, (rules, contact, now), stage, flags, attempts, mut held)| {
            let (voice, sms, paused, reached, calling, opted_out) = flags;
            let mut opp = created_with(voice, sms, &pb);
            opp.contact = Contact {
                consent: opp.contact.consent,
                ..contact
            };
            opp.stage = stage;
            opp.attempts = attempts.min(pb.max_attempts);
            opp.active_call = (calling && voice && opp.attempts >= 1)
                .then(|| Uuid::new_v5(&opp.id, format!("call-{}", opp.attempts).as_bytes()));
            opp.live_call = opp.active_call.map(|call_id| LiveCall {
                call_id,
                hang_up_asked: false,
            });
            opp.paused = paused;
            opp.reached = reached;
            opp.opted_out = opted_out && stage.is_terminal();
            held.sort();
            held.dedup();
            held.retain(|h| {
                paused
                    && !stage.is_terminal()
                    && *h != OppTimer::SendSms
                    && (*h != OppTimer::RetryCall || stage == Stage::Contacting)
                    && (*h != OppTimer::FirstTouchSla || !reached)
            });
            opp.held_timers = held;
            Sim {
                pb,
                rules,
                opp,
                armed: BTreeMap::new(),
                now,
                confirmations: 0,
            }
        },
    );
    prop_oneof![fresh, built]
}

fn track(sim: &mut Sim, ops: &[TimerOp<OppTimer>]) {
    for op in ops {
        match op {
            TimerOp::Set { name, at } => sim.armed.insert(*name, *at),
            TimerOp::Clear { name } => sim.armed.remove(name),
        };
    }
}

/// Turns an abstract act into a concrete input, firing armed timers the way
/// a host would (advancing the clock and disarming them).
fn resolve(sim: &mut Sim, act: Act) -> Option<OppInput> {
    let by = op("ana");
    Some(match act {
        Act::Pause => OppInput::Pause {
            by,
            reason: None,
            hang_up: false,
        },
        Act::Resume => OppInput::Resume { by },
        Act::Reassign(other) => {
            let assignee = if other { "bo" } else { "ana" }.to_owned();
            OppInput::Reassign {
                assignee,
                by,
                reason: String::new(),
            }
        }
        Act::Escalate => OppInput::Escalate { by, reason: None },
        Act::SetStage(stage) => OppInput::SetStage {
            stage,
            by,
            reason: None,
        },
        Act::FireArmed(i) => {
            let (&timer, &at) = sim.armed.iter().nth(i % sim.armed.len().max(1))?;
            sim.now = sim.now.max(at);
            sim.armed.remove(&timer);
            OppInput::TimerFired { timer }
        }
        Act::FireAny(timer) => {
            sim.armed.remove(&timer);
            OppInput::TimerFired { timer }
        }
        Act::FinishActive(result) => OppInput::CallFinished {
            call_id: sim.opp.active_call?,
            result,
        },
        Act::FinishStray(result) => OppInput::CallFinished {
            call_id: Uuid::nil(),
            result,
        },
        Act::Reply(body) => OppInput::Replied { body: body.into() },
        Act::Blocked(channel) => OppInput::EffectBlocked {
            channel,
            reason: "the number is on the do-not-call list".into(),
        },
        Act::MessageStatus(status) => OppInput::MessageStatus {
            message_sid: "SM1".into(),
            status: status.into(),
            error_code: None,
        },
        Act::Create => create_input(true, true),
        Act::PauseHangUp => OppInput::Pause {
            by,
            reason: None,
            hang_up: true,
        },
        Act::Dnc => OppInput::NumberOnDnc { by },
        // A call reports its end this way only after it reported an answer.
        Act::EndLive if sim.opp.active_call.is_some() => return None,
        Act::EndLive => OppInput::CallEnded {
            call_id: sim.opp.live_call.as_ref()?.call_id,
        },
        Act::HumanText => OppInput::SendText {
            body: "Ana from Acme here".into(),
            by: "ana".into(),
        },
        Act::HandBack => OppInput::HandBack { by, reason: None },
        Act::Wait(s) => {
            sim.now += TimeDelta::seconds(i64::from(s));
            return None;
        }
    })
}

fn purpose_of(effect: &OppEffect) -> Option<Purpose> {
    match effect {
        OppEffect::StartCall { .. } => Some(Purpose::Marketing),
        OppEffect::SendSms { purpose, .. } => Some(*purpose),
        // Notices to people and hang-ups are no message to the lead.
        _ => None,
    }
}

/// Every deferral re-plans its message at the instant the gate named.
fn deferrals_replanned(d: &OppDecision) -> bool {
    d.timeline
        .iter()
        .filter(|e| e.kind == TimelineKind::ComplianceBlocked && e.data["decision"] == "defer")
        .all(|e| {
            let timer = match e.data["channel"].as_str() {
                Some("voice") => OppTimer::RetryCall,
                _ => OppTimer::SendSms,
            };
            d.timers.iter().any(|op| match op {
                TimerOp::Set { name, at } => {
                    *name == timer && json!(at) == e.data["until"] && *at > d.state.updated_at
                }
                TimerOp::Clear { .. } => false,
            })
        })
}

fn step_checks(
    sim: &Sim,
    before: &Opportunity,
    input: &OppInput,
    d: &OppDecision,
) -> Result<(), String> {
    let after = &d.state;
    let resuming = matches!(input, OppInput::Resume { .. });
    let stage_events: Vec<_> = d
        .timeline
        .iter()
        .filter(|e| e.kind == TimelineKind::StageChanged)
        .collect();
    let moved = before.stage != after.stage;
    let starts = d
        .effects
        .iter()
        .filter(|e| matches!(e, OppEffect::StartCall { .. }))
        .count();
    let hang_ups: Vec<Uuid> = d
        .effects
        .iter()
        .filter_map(|e| match e {
            OppEffect::HangUpCall { call_id, .. } => Some(*call_id),
            _ => None,
        })
        .collect();
    let mut names: Vec<_> = d.timers.iter().map(timer_name).collect();
    names.sort();
    names.dedup();
    let purposes: Vec<Purpose> = d.effects.iter().filter_map(purpose_of).collect();
    let marketing = purposes.contains(&Purpose::Marketing);
    // Owed to the contact whatever the stage or pause: the one opt-out
    // confirmation and help replies.
    let only_owed = d.effects.iter().all(|e| {
        matches!(
            purpose_of(e),
            Some(Purpose::OptOutConfirmation | Purpose::HelpReply)
        ) || matches!(e, OppEffect::HangUpCall { .. })
    });
    let reopened = before.stage == Stage::DoNotContact
        && after.stage == Stage::Contacting
        && !before.opted_out
        && matches!(input, OppInput::SetStage { .. });
    let gate_allows = |channel| gate(sim.rules, before, channel, sim.now).is_allowed();
    let texts = purposes
        .iter()
        .filter(|p| **p == Purpose::Marketing)
        .count()
        - starts;
    // Under a takeover the playbook writes no marketing text, and calls only if it lets them.
    let taken = before.takeover.is_some() && after.takeover.is_some();
    let playbook_texts = d.effects.iter().any(|e| {
        matches!(
            e,
            OppEffect::SendSms {
                purpose: Purpose::Marketing,
                by: None,
                ..
            }
        )
    });
    let checks = [
        (
            !taken || !playbook_texts,
            "the playbook texted a lead a person took over",
        ),
        (
            !taken || !sim.pb.takeover_stops_calls || starts == 0,
            "the cadence called a lead taken over by a playbook that stops calls",
        ),
        (
            !before.paused || resuming || only_owed,
            "paused opportunity emitted effects",
        ),
        (
            !before.stage.is_terminal() || only_owed,
            "terminal stage emitted effects",
        ),
        (
            !before.stage.is_terminal() || after.stage == before.stage || reopened,
            "left a terminal stage",
        ),
        (
            !before.stage.is_terminal()
                || after
                    .active_call
                    .is_none_or(|c| before.active_call == Some(c)),
            "closed opportunity started a call",
        ),
        (
            !(before.opted_out || after.opted_out || before.stage == Stage::DoNotContact)
                || !marketing,
            "opted-out or do-not-contact lead got marketing",
        ),
        (
            !purposes.contains(&Purpose::HelpReply) || !before.opted_out,
            "help reply after opting out",
        ),
        (
            starts == 0 || gate_allows(Channel::Voice),
            "call placed while the gate does not allow it",
        ),
        (
            texts == 0 || gate_allows(Channel::Sms),
            "marketing text sent while the gate does not allow it",
        ),
        (
            deferrals_replanned(d),
            "deferral not re-planned at its instant",
        ),
        (
            stage_events.len() == usize::from(moved),
            "stage change without exactly one event",
        ),
        (
            stage_events
                .iter()
                .all(|e| e.data == json!({"from": before.stage, "to": after.stage})),
            "stage event data does not match the move",
        ),
        (starts <= 1, "more than one call started"),
        (hang_ups.len() <= 1, "more than one hang-up"),
        (
            hang_ups.iter().all(|id| {
                before
                    .live_call
                    .as_ref()
                    .is_some_and(|l| l.call_id == *id && !l.hang_up_asked)
            }),
            "hang-up of a call that is not live, or asked twice",
        ),
        (
            (after.attempts > before.attempts) == (starts == 1),
            "attempts changed without a call",
        ),
        (after.attempts <= before.attempts + 1, "attempts jumped"),
        (names.len() == d.timers.len(), "several ops for one timer"),
        (
            d.timers.iter().all(|op| match op {
                TimerOp::Set { at, .. } => *at >= after.updated_at,
                TimerOp::Clear { .. } => true,
            }),
            "timer set in the past",
        ),
    ];
    match checks.iter().find(|(ok, _)| !ok) {
        Some((_, what)) => Err(format!("{what}: {input:?}\nbefore {before:?}\n{d:?}")),
        None => Ok(()),
    }
}

/// Only what drives the cadence: timers, missed calls and time passing.
fn cadence_act() -> impl Strategy<Value = Act> {
    use CallResult::*;
    prop_oneof![
        4 => any::<usize>().prop_map(Act::FireArmed),
        4 => prop::sample::select(vec![Machine, NoAnswer, Busy, Failed]).prop_map(Act::FinishActive),
        3 => (0u32..1_800).prop_map(Act::Wait),
        1 => (3_600u32..50_000).prop_map(Act::Wait),
    ]
}

/// Fresh opportunities with consent on both channels.
fn consenting_start() -> impl Strategy<Value = Sim> {
    (playbook(), setting()).prop_map(|(pb, (rules, contact, now))| {
        let mut input = with_contact(create_input(true, true), &contact, true, true);
        if let OppInput::Create { playbook, .. } = &mut input {
            playbook.clone_from(&pb.name);
        }
        let d = apply(None, input, now, &pb, rules).unwrap();
        let mut sim = Sim {
            pb,
            rules,
            opp: d.state,
            armed: BTreeMap::new(),
            now,
            confirmations: 0,
        };
        track(&mut sim, &d.timers);
        sim
    })
}

/// Applies each act as a host would, checking every step and invariant.
fn drive(sim: &mut Sim, acts: Vec<Act>) -> Result<(), TestCaseError> {
    check_invariants(sim).map_err(TestCaseError::fail)?;
    for act in acts {
        let Some(input) = resolve(sim, act) else {
            continue;
        };
        let system = !matches!(
            input,
            OppInput::Pause { .. }
                | OppInput::Resume { .. }
                | OppInput::Reassign { .. }
                | OppInput::Escalate { .. }
                | OppInput::SetStage { .. }
                | OppInput::SendText { .. }
                | OppInput::HandBack { .. }
        );
        match apply(Some(&sim.opp), input.clone(), sim.now, &sim.pb, sim.rules) {
            Ok(d) => {
                step_checks(sim, &sim.opp, &input, &d).map_err(TestCaseError::fail)?;
                track(sim, &d.timers);
                sim.confirmations += d
                    .effects
                    .iter()
                    .filter(|e| purpose_of(e) == Some(Purpose::OptOutConfirmation))
                    .count();
                sim.opp = d.state;
            }
            Err(e) => prop_assert!(!system, "system input rejected: {e}"),
        }
        check_invariants(sim).map_err(TestCaseError::fail)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn no_sequence_of_inputs_breaks_an_invariant(
        mut sim in start(),
        acts in prop::collection::vec(act(), 0..60),
    ) {
        drive(&mut sim, acts)?;
    }

    /// The gate property where it matters most: a long-running cadence
    /// crossing nights, weekends, DST and caps never calls or texts when
    /// the gate would not allow it (checked in `step_checks`).
    #[test]
    fn the_cadence_only_contacts_when_the_gate_allows(
        mut sim in consenting_start(),
        acts in prop::collection::vec(cadence_act(), 0..80),
    ) {
        drive(&mut sim, acts)?;
    }

    #[test]
    fn apply_is_deterministic(
        mut sim in start(),
        acts in prop::collection::vec(act(), 1..20),
    ) {
        for act in acts {
            let Some(input) = resolve(&mut sim, act) else { continue };
            let first = apply(Some(&sim.opp), input.clone(), sim.now, &sim.pb, sim.rules);
            let second = apply(Some(&sim.opp), input, sim.now, &sim.pb, sim.rules);
            prop_assert_eq!(&first, &second);
            if let Ok(d) = first {
                track(&mut sim, &d.timers);
                sim.opp = d.state;
            }
        }
    }
}
