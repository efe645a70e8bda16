use std::collections::BTreeMap;

use chrono::{TimeDelta, TimeZone};
use proptest::prelude::*;
use serde_json::json;

use super::*;

fn t(seconds: i64) -> DateTime<Utc> {
    let t0 = Utc.with_ymd_and_hms(2025, 1, 1, 12, 0, 0).unwrap();
    t0 + TimeDelta::seconds(seconds)
}

fn pb() -> Playbook {
    Playbook::with_defaults("speed-to-lead")
}

fn opp_id() -> Uuid {
    Uuid::from_u128(7)
}

fn place() -> CallInput {
    CallInput::Place {
        call_id: Uuid::from_u128(9),
        opportunity_id: opp_id(),
        to: "+14155550100".into(),
        attempt: 1,
        playbook: "test".into(),
        agent: None,
    }
}

fn placed() -> Call {
    apply(None, place(), t(0), &pb()).unwrap().state
}

fn dialed() -> Call {
    let sid = CallInput::Dialed {
        provider_sid: "CA1".into(),
    };
    apply(Some(&placed()), sid, t(1), &pb()).unwrap().state
}

fn status(status: CallStatus, sequence: Option<u64>, answered_by: Option<AnsweredBy>) -> CallInput {
    CallInput::Status {
        status,
        sequence,
        answered_by,
        provider_sid: Some("CA1".into()),
    }
}

fn run(call: &Call, input: CallInput, at: i64) -> CallDecision {
    apply(Some(call), input, t(at), &pb()).unwrap()
}

/// Applies statuses in order and returns every decision.
fn feed(mut call: Call, inputs: Vec<CallInput>) -> (Call, Vec<CallDecision>) {
    let mut out = Vec::new();
    for (i, input) in inputs.into_iter().enumerate() {
        let d = run(&call, input, 2 + i as i64);
        call = d.state.clone();
        out.push(d);
    }
    (call, out)
}

fn reports(ds: &[CallDecision]) -> Vec<CallResult> {
    ds.iter()
        .flat_map(|d| &d.effects)
        .filter_map(|e| match e {
            CallEffect::Report { result, .. } => Some(*result),
            _ => None,
        })
        .collect()
}

fn report(result: CallResult) -> CallEffect {
    CallEffect::Report {
        opportunity_id: opp_id(),
        result,
    }
}

fn hangup() -> CallEffect {
    CallEffect::Hangup {
        provider_sid: "CA1".into(),
    }
}

use AnsweredBy::{Human, MachineStart};
use CallStatus::*;

#[test]
fn place_dials_and_arms_both_timers() {
    let d = apply(None, place(), t(0), &pb()).unwrap();
    assert_eq!(d.state.status, Queued);
    assert_eq!(
        d.effects,
        vec![CallEffect::Dial {
            to: "+14155550100".into(),
            machine_detection: true,
            ring_timeout_seconds: 30,
            agent: None,
        }]
    );
    assert_eq!(
        d.timers,
        vec![
            TimerOp::Set {
                name: CallTimer::RingTimeout,
                at: t(30)
            },
            TimerOp::Set {
                name: CallTimer::Watchdog,
                at: t(300)
            },
        ]
    );
    assert_eq!(d.timeline[0].kind, TimelineKind::CallPlaced);
    let again = run(&d.state, place(), 5);
    assert_eq!(again.state, d.state);
    assert!(again.effects.is_empty() && again.timers.is_empty() && again.timeline.is_empty());
}

#[test]
fn place_validates_and_other_inputs_need_a_call() {
    let err = apply(
        None,
        CallInput::DialFailed { reason: "x".into() },
        t(0),
        &pb(),
    )
    .unwrap_err();
    assert_eq!(err, Rejection::NotFound);
    let bad = CallInput::Place {
        call_id: Uuid::nil(),
        opportunity_id: opp_id(),
        to: "555".into(),
        attempt: 1,
        playbook: "test".into(),
        agent: None,
    };
    let err = apply(None, bad, t(0), &pb()).unwrap_err().to_string();
    assert!(err.starts_with("invalid to:"), "{err}");
    let zeroth = CallInput::Place {
        call_id: Uuid::nil(),
        opportunity_id: opp_id(),
        to: "+14155550100".into(),
        attempt: 0,
        playbook: "test".into(),
        agent: None,
    };
    assert!(matches!(
        apply(None, zeroth, t(0), &pb()),
        Err(Rejection::InvalidField {
            field: "attempt",
            ..
        })
    ));
}

#[test]
fn statuses_use_twilio_spellings() {
    let spelled = [
        "queued",
        "initiated",
        "ringing",
        "in-progress",
        "completed",
        "busy",
        "failed",
        "no-answer",
        "canceled",
    ];
    assert_eq!(
        CallStatus::ALL
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>(),
        spelled
    );
    for &s in CallStatus::ALL {
        assert_eq!(serde_json::to_value(s).unwrap(), json!(s.as_str()));
        assert_eq!(s.as_str().parse::<CallStatus>(), Ok(s));
    }
    let err = "in_progress".parse::<CallStatus>().unwrap_err().to_string();
    assert!(
        err.starts_with("unknown call status \"in_progress\""),
        "{err}"
    );
    for &a in AnsweredBy::ALL {
        assert_eq!(serde_json::to_value(a).unwrap(), json!(a.as_str()));
        assert_eq!(a.as_str().parse::<AnsweredBy>(), Ok(a));
    }
    assert_eq!(AnsweredBy::MachineEndBeep.as_str(), "machine_end_beep");
    assert!(AnsweredBy::Fax.is_machine() && !AnsweredBy::Unknown.is_machine());
    let input: CallInput =
        serde_json::from_value(json!({"type": "status", "status": "no-answer"})).unwrap();
    assert_eq!(
        input,
        CallInput::Status {
            status: NoAnswer,
            sequence: None,
            answered_by: None,
            provider_sid: None
        }
    );
}

#[test]
fn ranks_order_the_progression() {
    assert!(Queued.rank() < Initiated.rank() && Initiated.rank() < Ringing.rank());
    assert!(Ringing.rank() < InProgress.rank() && InProgress.rank() < Completed.rank());
    let terminal: Vec<_> = CallStatus::ALL
        .iter()
        .filter(|s| s.is_terminal())
        .copied()
        .collect();
    assert_eq!(terminal, vec![Completed, Busy, Failed, NoAnswer, Canceled]);
}

#[test]
fn a_human_answer_is_reported_at_once_and_only_once() {
    let (call, ds) = feed(
        dialed(),
        vec![
            status(Initiated, Some(0), None),
            status(Ringing, Some(1), None),
            status(InProgress, Some(2), Some(Human)),
            status(Completed, Some(3), Some(Human)),
        ],
    );
    assert_eq!(call.status, Completed);
    assert!(call.reported);
    assert_eq!(ds[2].effects, vec![report(CallResult::Answered)]);
    assert!(ds[2].timers.contains(&TimerOp::Clear {
        name: CallTimer::RingTimeout
    }));
    // Its end only tells the opportunity nothing is live any more.
    assert_eq!(
        ds[3].effects,
        vec![CallEffect::Ended {
            opportunity_id: opp_id()
        }]
    );
    assert!(ds[3].timers.contains(&TimerOp::Clear {
        name: CallTimer::Watchdog
    }));
    assert_eq!(reports(&ds), vec![CallResult::Answered]);
    assert!(ds
        .iter()
        .all(|d| d.timeline[0].kind == TimelineKind::CallStatus));
    assert_eq!(ds[1].timeline[0].data["to"], json!("ringing"));
}

#[test]
fn a_terminal_status_absorbs_later_callbacks() {
    let (call, ds) = feed(
        dialed(),
        vec![
            status(Completed, Some(3), None),
            status(Ringing, Some(1), None),
            status(Busy, None, None),
        ],
    );
    assert_eq!(call.status, Completed);
    assert_eq!(ds[1].state, ds[0].state);
    assert!(ds[1..]
        .iter()
        .all(|d| d.effects.is_empty() && d.timeline.is_empty()));
}

#[test]
fn stale_and_backward_callbacks_are_ignored() {
    let (call, ds) = feed(
        dialed(),
        vec![
            status(Ringing, Some(2), None),
            status(Initiated, Some(1), None),
            status(Ringing, Some(2), None),
            status(Initiated, None, None),
            status(Ringing, None, None),
        ],
    );
    assert_eq!((call.status, call.last_sequence), (Ringing, Some(2)));
    assert!(ds[1..]
        .iter()
        .all(|d| d.timeline.is_empty() && d.state == ds[0].state));
}

#[test]
fn completed_maps_by_what_answered() {
    let outcome = |inputs| reports(&feed(dialed(), inputs).1);
    let no_amd = outcome(vec![
        status(InProgress, None, None),
        status(Completed, None, None),
    ]);
    assert_eq!(no_amd, vec![CallResult::Answered]);
    let unknown = outcome(vec![
        status(InProgress, None, Some(AnsweredBy::Unknown)),
        status(Completed, None, None),
    ]);
    assert_eq!(unknown, vec![CallResult::Answered]);
    let machine = outcome(vec![
        status(InProgress, None, Some(MachineStart)),
        status(Completed, None, None),
    ]);
    assert_eq!(machine, vec![CallResult::Machine]);
    assert_eq!(
        outcome(vec![status(Completed, None, None)]),
        vec![CallResult::NoAnswer]
    );
    // Skipped in-progress, but an AMD verdict proves something picked up.
    assert_eq!(
        outcome(vec![status(Completed, None, Some(Human))]),
        vec![CallResult::Answered]
    );
    assert_eq!(
        outcome(vec![status(Completed, None, Some(AnsweredBy::Fax))]),
        vec![CallResult::Machine]
    );
}

#[test]
fn other_terminal_statuses_map_directly() {
    for (s, r) in [
        (Busy, CallResult::Busy),
        (Failed, CallResult::Failed),
        (NoAnswer, CallResult::NoAnswer),
        (Canceled, CallResult::Canceled),
    ] {
        let d = run(&dialed(), status(s, Some(1), None), 5);
        assert_eq!(d.effects, vec![report(r)], "{s}");
        assert_eq!(d.timers.len(), 2, "{s}");
    }
}

#[test]
fn a_machine_is_hung_up_unless_the_playbook_leaves_voicemail() {
    let d = run(&dialed(), status(InProgress, None, Some(MachineStart)), 5);
    assert_eq!(d.effects, vec![hangup()]);
    let voicemail = Playbook {
        voicemail: true,
        ..pb()
    };
    let d = apply(
        Some(&dialed()),
        status(InProgress, None, Some(MachineStart)),
        t(5),
        &voicemail,
    )
    .unwrap();
    assert!(d.effects.is_empty());
}

#[test]
fn a_late_amd_verdict_updates_an_answered_call() {
    let (call, ds) = feed(
        dialed(),
        vec![
            status(InProgress, Some(2), None),
            status(InProgress, Some(3), Some(Human)),
        ],
    );
    assert_eq!(call.answered_by, Some(Human));
    assert_eq!(ds[1].effects, vec![report(CallResult::Answered)]);
}

#[test]
fn ring_timeout_hangs_up_an_unanswered_call() {
    let ringing = run(&dialed(), status(Ringing, Some(1), None), 5).state;
    let d = run(
        &ringing,
        CallInput::TimerFired {
            timer: CallTimer::RingTimeout,
        },
        30,
    );
    assert_eq!(d.state.status, NoAnswer);
    assert_eq!(d.effects, vec![hangup(), report(CallResult::NoAnswer)]);
    assert!(d.timers.contains(&TimerOp::Clear {
        name: CallTimer::Watchdog
    }));
    assert_eq!(d.timeline[0].reason, "no answer within 30 s; hanging up");
    let no_sid = run(
        &placed(),
        CallInput::TimerFired {
            timer: CallTimer::RingTimeout,
        },
        30,
    );
    assert_eq!(no_sid.effects, vec![report(CallResult::NoAnswer)]);
    // The provider's acknowledgement arrives after we gave up.
    let late = run(
        &no_sid.state,
        CallInput::Dialed {
            provider_sid: "CA1".into(),
        },
        31,
    );
    assert_eq!(late.effects, vec![hangup()]);
    assert_eq!(late.state.status, NoAnswer);
    let answered = run(&dialed(), status(InProgress, None, None), 5).state;
    let ignored = run(
        &answered,
        CallInput::TimerFired {
            timer: CallTimer::RingTimeout,
        },
        30,
    );
    assert_eq!(ignored.state, answered);
}

fn watchdog() -> CallInput {
    CallInput::TimerFired {
        timer: CallTimer::Watchdog,
    }
}

fn fetch() -> CallEffect {
    CallEffect::Fetch {
        provider_sid: "CA1".into(),
    }
}

fn fetched(status: CallStatus, answered_by: Option<AnsweredBy>) -> CallInput {
    CallInput::Fetched {
        status,
        answered_by,
        provider_sid: "CA1".into(),
    }
}

#[test]
fn watchdog_gives_up_on_a_silent_call() {
    // Without a provider sid there is nothing to fetch.
    let d = run(&placed(), watchdog(), 300);
    assert_eq!(d.state.status, Failed);
    assert_eq!(d.effects, vec![report(CallResult::Failed)]);
    assert_eq!(
        d.timeline[0].reason,
        "no terminal status within 300 s; marking the call failed"
    );
    // An in-progress call did connect; the fetch failing still reports it.
    let talking = run(&dialed(), status(InProgress, None, None), 5).state;
    let asked = run(&talking, watchdog(), 300);
    assert_eq!(asked.effects, vec![fetch()]);
    let d = run(&asked.state, watchdog(), 600);
    let ended = CallEffect::Ended {
        opportunity_id: opp_id(),
    };
    assert_eq!(d.effects, vec![report(CallResult::Answered), ended]);
    let done = run(&dialed(), status(Busy, None, None), 5).state;
    assert_eq!(
        run(
            &done,
            CallInput::TimerFired {
                timer: CallTimer::Watchdog
            },
            300
        )
        .state,
        done
    );
}

#[test]
fn a_refused_dial_fails_the_call() {
    let d = run(
        &placed(),
        CallInput::DialFailed {
            reason: "21211 invalid number".into(),
        },
        1,
    );
    assert_eq!(d.state.status, Failed);
    assert_eq!(d.effects, vec![report(CallResult::Failed)]);
    assert_eq!(
        d.timeline[0].reason,
        "the provider refused the call: 21211 invalid number"
    );
    let accepted = dialed();
    assert_eq!(
        run(&accepted, CallInput::DialFailed { reason: "x".into() }, 2).state,
        accepted
    );
}

#[test]
fn a_foreign_provider_sid_is_rejected() {
    let other = CallInput::Status {
        status: Ringing,
        sequence: None,
        answered_by: None,
        provider_sid: Some("CA2".into()),
    };
    let err = apply(Some(&dialed()), other, t(3), &pb()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "provider sid mismatch: call is CA1, input names CA2"
    );
    let dup = run(
        &dialed(),
        CallInput::Dialed {
            provider_sid: "CA1".into(),
        },
        3,
    );
    assert_eq!(dup.state, dialed());
}

#[test]
fn watchdog_fetches_once_and_the_fetch_resolves_the_call() {
    let ringing = run(&dialed(), status(Ringing, Some(1), None), 5).state;
    let d = run(&ringing, watchdog(), 300);
    assert_eq!(d.state.status, Ringing);
    assert!(d.state.fetch_attempted && !d.state.reported);
    assert_eq!(d.effects, vec![fetch()]);
    assert_eq!(
        d.timers,
        vec![TimerOp::Set {
            name: CallTimer::Watchdog,
            at: t(600)
        }]
    );
    assert_eq!(
        d.timeline[0].reason,
        "no terminal status within 300 s; asking the provider for the call"
    );
    let resolved = run(&d.state, fetched(Completed, Some(MachineStart)), 301);
    assert_eq!(resolved.state.status, Completed);
    assert_eq!(resolved.effects, vec![report(CallResult::Machine)]);
    assert!(resolved.timers.contains(&TimerOp::Clear {
        name: CallTimer::Watchdog
    }));
    // The re-armed watchdog firing late finds the call settled.
    let late = run(&resolved.state, watchdog(), 600);
    assert_eq!(late.state, resolved.state);
    assert!(late.effects.is_empty());
}

#[test]
fn a_fetch_that_never_answers_fails_the_call() {
    let ringing = run(&dialed(), status(Ringing, Some(1), None), 5).state;
    let asked = run(&ringing, watchdog(), 300).state;
    let d = run(&asked, watchdog(), 600);
    assert_eq!(d.state.status, Failed);
    assert_eq!(d.effects, vec![report(CallResult::Failed)]);
    assert_eq!(
        d.timeline[0].reason,
        "still no terminal status after asking the provider; marking the call failed"
    );
    // A fetch still showing the call ringing changes nothing new.
    let still = run(&asked, fetched(Ringing, None), 301);
    assert_eq!(still.state, asked);
    assert!(still.effects.is_empty());
}

#[test]
fn an_unknown_dial_outcome_never_redials() {
    let unknown = CallInput::DialUnknown {
        reason: "timed out".into(),
    };
    let d = run(&placed(), unknown.clone(), 1);
    assert!(d.state.dial_unknown);
    assert_eq!(d.state.status, Queued);
    assert!(d.effects.is_empty() && d.timers.is_empty());
    assert!(d.timeline[0].reason.contains("not dialing again"));
    let dup = run(&d.state, unknown.clone(), 2);
    assert_eq!(dup.state, d.state);
    assert!(dup.timeline.is_empty());
    // The provider's callbacks settle it as usual.
    let (call, ds) = feed(
        d.state.clone(),
        vec![
            status(Ringing, Some(1), None),
            status(InProgress, Some(2), Some(Human)),
        ],
    );
    assert_eq!(call.provider_sid.as_deref(), Some("CA1"));
    assert_eq!(reports(&ds), vec![CallResult::Answered]);
    // Without any callback the watchdog gives up; nothing to fetch.
    let gave_up = run(&d.state, watchdog(), 300);
    assert_eq!(gave_up.effects, vec![report(CallResult::Failed)]);
    assert_eq!(
        gave_up.timeline[0].reason,
        "the dial request's outcome was never resolved; marking the call failed"
    );
    // Once the provider has the call, an unknown outcome is moot.
    assert_eq!(run(&dialed(), unknown, 2).state, dialed());
}

#[test]
fn reconciliation_inputs_have_tagged_wire_shapes() {
    let input: CallInput = serde_json::from_value(json!({
        "type": "fetched", "status": "completed", "answered_by": "human", "provider_sid": "CA1"
    }))
    .unwrap();
    assert_eq!(input, fetched(Completed, Some(Human)));
    let effect = serde_json::to_value(fetch()).unwrap();
    assert_eq!(effect, json!({"type": "fetch", "provider_sid": "CA1"}));
    let old = json!({"id": Uuid::nil(), "opportunity_id": Uuid::nil(), "to": "+14155550100",
        "attempt": 1, "playbook": "p", "status": "queued", "last_sequence": null,
        "provider_sid": null, "answered_by": null, "reported": false,
        "created_at": t(0), "updated_at": t(0)});
    let call: Call = serde_json::from_value(old).unwrap();
    assert!(!call.dial_unknown && !call.fetch_attempted);
}

// ---- properties ----------------------------------------------------------

#[derive(Debug, Clone)]
struct CallSim {
    pb: Playbook,
    call: Call,
    armed: BTreeMap<CallTimer, DateTime<Utc>>,
    reports: usize,
    fetches: usize,
    now: DateTime<Utc>,
}

fn check_invariants(sim: &CallSim) -> Result<(), String> {
    let c = &sim.call;
    let checks = [
        (sim.reports <= 1, "reported more than once"),
        (sim.fetches <= 1, "fetched more than once"),
        (
            c.fetch_attempted == (sim.fetches == 1),
            "fetch flag disagrees with fetches sent",
        ),
        (
            !c.status.is_terminal() || !sim.armed.contains_key(&CallTimer::Watchdog),
            "watchdog armed on a settled call",
        ),
        (
            c.reported == (sim.reports == 1),
            "reported flag disagrees with reports sent",
        ),
        (
            !c.status.is_terminal() || c.reported,
            "terminal without a report",
        ),
        (
            !c.reported || c.status.is_terminal() || c.status == InProgress,
            "reported while still ringing",
        ),
        (
            !c.status.is_terminal() || sim.armed.is_empty(),
            "terminal with armed timers",
        ),
        (
            c.status != InProgress || !sim.armed.contains_key(&CallTimer::RingTimeout),
            "ring timeout armed after answer",
        ),
    ];
    match checks.iter().find(|(ok, _)| !ok) {
        Some((_, what)) => Err(format!("{what}: {c:?} armed {:?}", sim.armed)),
        None => Ok(()),
    }
}

fn call_input() -> impl Strategy<Value = CallInput> {
    let sid = prop::sample::select(vec!["CA1", "CA2"]).prop_map(str::to_owned);
    let status = prop::sample::select(CallStatus::ALL.to_vec());
    let answered = prop::option::of(prop::sample::select(AnsweredBy::ALL.to_vec()));
    prop_oneof![
        1 => sid.clone().prop_map(|provider_sid| CallInput::Dialed { provider_sid }),
        1 => Just(CallInput::DialFailed { reason: "refused".into() }),
        1 => Just(CallInput::DialUnknown { reason: "timed out".into() }),
        2 => (prop::sample::select(CallStatus::ALL.to_vec()), prop::option::of(prop::sample::select(AnsweredBy::ALL.to_vec())), sid.clone()).prop_map(
            |(status, answered_by, provider_sid)| CallInput::Fetched { status, answered_by, provider_sid }
        ),
        8 => (status, prop::option::of(0u64..8), answered, prop::option::of(sid)).prop_map(
            |(status, sequence, answered_by, provider_sid)| CallInput::Status { status, sequence, answered_by, provider_sid }
        ),
        2 => prop::sample::select(CallTimer::ALL.to_vec()).prop_map(|timer| CallInput::TimerFired { timer }),
        1 => Just(place()),
    ]
}

fn call_playbook() -> impl Strategy<Value = Playbook> {
    (1u64..60, 1u64..300, any::<bool>()).prop_map(|(ring, extra, voicemail)| Playbook {
        ring_timeout_seconds: ring,
        call_watchdog_seconds: ring + extra,
        voicemail,
        ..pb()
    })
}

fn step_checks(before: &Call, d: &CallDecision) -> Result<(), String> {
    let after = &d.state;
    let only_hangups = d
        .effects
        .iter()
        .all(|e| matches!(e, CallEffect::Hangup { .. }));
    let fetching = d
        .effects
        .iter()
        .any(|e| matches!(e, CallEffect::Fetch { .. }));
    // Only the watchdog is re-armed, and only when it asks for a fetch.
    let no_sets = d.timers.iter().all(|op| match op {
        TimerOp::Clear { .. } => true,
        TimerOp::Set { name, .. } => fetching && *name == CallTimer::Watchdog,
    });
    let no_dial = !d
        .effects
        .iter()
        .any(|e| matches!(e, CallEffect::Dial { .. }));
    let checks = [
        (
            after.status.rank() >= before.status.rank(),
            "status went backwards",
        ),
        (
            !before.status.is_terminal()
                || (after.status, after.answered_by, after.last_sequence)
                    == (before.status, before.answered_by, before.last_sequence),
            "a terminal call changed",
        ),
        (
            !before.status.is_terminal() || only_hangups,
            "terminal call emitted more than a hangup",
        ),
        (no_sets, "timer armed after placing"),
        (no_dial, "dialed again after placing"),
        (
            after.last_sequence >= before.last_sequence,
            "sequence went backwards",
        ),
    ];
    match checks.iter().find(|(ok, _)| !ok) {
        Some((_, what)) => Err(format!("{what}: before {before:?}\n{d:?}")),
        None => Ok(()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn no_callback_sequence_breaks_an_invariant(
        pb in call_playbook(),
        inputs in prop::collection::vec((call_input(), 0u16..100), 0..40),
    ) {
        let d = apply(None, place(), t(0), &pb).unwrap();
        let mut sim = CallSim { pb, call: d.state, armed: BTreeMap::new(), reports: 0, fetches: 0, now: t(0) };
        for op in &d.timers {
            if let TimerOp::Set { name, at } = op { sim.armed.insert(*name, *at); }
        }
        for (input, wait) in inputs {
            sim.now += TimeDelta::seconds(i64::from(wait));
            if let CallInput::TimerFired { timer } = &input {
                sim.armed.remove(timer);
            }
            let first = apply(Some(&sim.call), input.clone(), sim.now, &sim.pb);
            prop_assert_eq!(&first, &apply(Some(&sim.call), input, sim.now, &sim.pb), "not deterministic");
            let Ok(d) = first else { continue };
            if let Err(e) = step_checks(&sim.call, &d) {
                return Err(TestCaseError::fail(e));
            }
            sim.reports += d.effects.iter().filter(|e| matches!(e, CallEffect::Report { .. })).count();
            sim.fetches += d.effects.iter().filter(|e| matches!(e, CallEffect::Fetch { .. })).count();
            for op in &d.timers {
                match op {
                    TimerOp::Set { name, at } => sim.armed.insert(*name, *at),
                    TimerOp::Clear { name } => sim.armed.remove(name),
                };
            }
            sim.call = d.state;
            if let Err(e) = check_invariants(&sim) {
                return Err(TestCaseError::fail(e));
            }
        }
    }
}

#[test]
fn a_dial_blocked_at_dispatch_ends_the_call_and_reports_blocked() {
    let d = run(
        &placed(),
        CallInput::DialBlocked {
            reason: "the number is on the do-not-call list".into(),
        },
        1,
    );
    assert_eq!(d.state.status, CallStatus::Failed);
    assert_eq!(reports(std::slice::from_ref(&d)), vec![CallResult::Blocked]);
    // Once the provider has the call, a late block changes nothing.
    let late = run(
        &dialed(),
        CallInput::DialBlocked {
            reason: "late".into(),
        },
        2,
    );
    assert!(late.effects.is_empty());
    assert_eq!(late.state.status, dialed().status);
}
