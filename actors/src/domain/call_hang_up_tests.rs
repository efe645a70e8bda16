//! Hanging up a call the opportunity wants stopped, a late callback for a call closed
//! locally, and the `Ended` notice after an answered call ends.

use chrono::{TimeDelta, TimeZone};

use super::*;
use crate::domain::timeline::TimelineKind;

fn t(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, 12, 0, 0).unwrap() + TimeDelta::seconds(seconds)
}

fn pb() -> Playbook {
    Playbook::with_defaults("speed-to-lead")
}

fn opp_id() -> Uuid {
    Uuid::from_u128(7)
}

fn run(call: &Call, input: CallInput, at: i64) -> CallDecision {
    apply(Some(call), input, t(at), &pb()).unwrap()
}

fn placed() -> Call {
    let place = CallInput::Place {
        call_id: Uuid::from_u128(9),
        opportunity_id: opp_id(),
        to: "+14155550100".into(),
        attempt: 1,
        playbook: "speed-to-lead".into(),
        agent: None,
    };
    apply(None, place, t(0), &pb()).unwrap().state
}

fn dialed() -> Call {
    let dialed = CallInput::Dialed {
        provider_sid: "CA1".into(),
    };
    run(&placed(), dialed, 1).state
}

fn status(status: CallStatus, answered_by: Option<AnsweredBy>) -> CallInput {
    CallInput::Status {
        status,
        sequence: None,
        answered_by,
        provider_sid: Some("CA1".into()),
    }
}

fn answered() -> Call {
    let d = run(
        &dialed(),
        status(CallStatus::InProgress, Some(AnsweredBy::Human)),
        5,
    );
    assert!(d.effects.contains(&CallEffect::Report {
        opportunity_id: opp_id(),
        result: CallResult::Answered
    }));
    d.state
}

fn hang_up(reason: &str) -> CallInput {
    CallInput::HangUp {
        reason: reason.into(),
    }
}

fn hangup_effect() -> CallEffect {
    CallEffect::Hangup {
        provider_sid: "CA1".into(),
    }
}

fn kinds(d: &CallDecision) -> Vec<TimelineKind> {
    d.timeline.iter().map(|e| e.kind).collect()
}

#[test]
fn a_ringing_call_with_a_sid_hangs_up_at_once_and_says_why() {
    let ringing = run(&dialed(), status(CallStatus::Ringing, None), 2).state;
    let d = run(&ringing, hang_up("the lead opted out by sms"), 3);
    assert_eq!(d.effects, vec![hangup_effect()]);
    assert_eq!(kinds(&d), vec![TimelineKind::HangUp]);
    assert!(d.timeline[0].reason.contains("the lead opted out by sms"));
    let asked = d.state.hang_up.clone().unwrap();
    assert!(asked.sent);
    // Nothing is reported yet: the provider's terminal callback ends the call.
    assert_eq!(d.state.status, CallStatus::Ringing);
    assert!(!d.state.reported);
}

#[test]
fn a_bridged_call_hangs_up_and_its_end_tells_the_opportunity() {
    let d = run(&answered(), hang_up("the opportunity closed as lost"), 20);
    assert_eq!(d.effects, vec![hangup_effect()]);
    let done = run(&d.state, status(CallStatus::Completed, None), 21);
    assert_eq!(
        done.effects,
        vec![CallEffect::Ended {
            opportunity_id: opp_id()
        }]
    );
    assert_eq!(done.state.status, CallStatus::Completed);
}

#[test]
fn a_repeated_hang_up_changes_nothing() {
    let first = run(&answered(), hang_up("stop"), 20).state;
    let again = run(&first, hang_up("stop again"), 21);
    assert!(again.effects.is_empty());
    assert!(again.timeline.is_empty());
    assert_eq!(again.state, first);
}

#[test]
fn a_terminal_call_ignores_a_hang_up() {
    let ended = run(&dialed(), status(CallStatus::Busy, None), 3).state;
    let d = run(&ended, hang_up("stop"), 4);
    assert!(d.effects.is_empty());
    assert!(d.timeline.is_empty());
    assert_eq!(d.state, ended);
}

#[test]
fn a_hang_up_while_the_dial_is_in_flight_goes_out_with_the_sid() {
    let d = run(&placed(), hang_up("paused by ana"), 1);
    assert!(d.effects.is_empty());
    assert_eq!(kinds(&d), vec![TimelineKind::HangUp]);
    assert!(d.timeline[0].reason.contains("owed"));
    assert!(!d.state.hang_up.as_ref().unwrap().sent);
    let dialed = CallInput::Dialed {
        provider_sid: "CA1".into(),
    };
    let d = run(&d.state, dialed, 2);
    assert_eq!(d.effects, vec![hangup_effect()]);
    assert!(d.state.hang_up.as_ref().unwrap().sent);
    // A callback after that sends nothing more.
    let d = run(&d.state, status(CallStatus::Ringing, None), 3);
    assert!(d.effects.is_empty());
}

#[test]
fn an_owed_hang_up_goes_out_on_the_first_callback_naming_the_call() {
    // The dial's outcome was unknown: the sid first arrives with a callback.
    let unknown = CallInput::DialUnknown {
        reason: "timed out".into(),
    };
    let call = run(&placed(), unknown, 1).state;
    let call = run(&call, hang_up("stop"), 2).state;
    let d = run(&call, status(CallStatus::Ringing, None), 3);
    assert_eq!(d.effects, vec![hangup_effect()]);
}

#[test]
fn a_callback_for_a_call_closed_as_no_answer_hangs_up_the_live_leg() {
    // The dial's outcome was unknown and the ring timeout closed the call without a sid.
    let unknown = CallInput::DialUnknown {
        reason: "timed out".into(),
    };
    let call = run(&placed(), unknown, 1).state;
    let fire = CallInput::TimerFired {
        timer: CallTimer::RingTimeout,
    };
    let closed = run(&call, fire, 30).state;
    assert_eq!(closed.status, CallStatus::NoAnswer);
    let late = status(CallStatus::InProgress, Some(AnsweredBy::Human));
    let d = run(&closed, late.clone(), 31);
    assert_eq!(d.effects, vec![hangup_effect()]);
    assert_eq!(kinds(&d), vec![TimelineKind::HangUp]);
    assert_eq!(d.state.status, CallStatus::NoAnswer);
    assert_eq!(d.state.provider_sid.as_deref(), Some("CA1"));
    // Once: a duplicate of the callback changes nothing.
    let again = run(&d.state, late, 32);
    assert!(again.effects.is_empty());
    assert!(again.timeline.is_empty());
    // Its terminal callback changes nothing either.
    let done = run(&d.state, status(CallStatus::Completed, None), 33);
    assert!(done.effects.is_empty());
}

#[test]
fn a_late_callback_for_a_call_hung_up_when_it_closed_sends_nothing() {
    let fire = CallInput::TimerFired {
        timer: CallTimer::RingTimeout,
    };
    let d = run(&dialed(), fire, 30);
    assert!(d.effects.contains(&hangup_effect()));
    let late = run(&d.state, status(CallStatus::InProgress, None), 31);
    assert!(late.effects.is_empty());
}

#[test]
fn a_missed_call_reports_once_and_sends_no_ended_notice() {
    let d = run(&dialed(), status(CallStatus::NoAnswer, None), 3);
    assert_eq!(
        d.effects,
        vec![CallEffect::Report {
            opportunity_id: opp_id(),
            result: CallResult::NoAnswer
        }]
    );
}

#[test]
fn an_answer_seen_only_at_the_end_reports_and_ends_together() {
    let d = run(
        &dialed(),
        status(CallStatus::Completed, Some(AnsweredBy::Human)),
        3,
    );
    assert_eq!(
        d.effects,
        vec![
            CallEffect::Report {
                opportunity_id: opp_id(),
                result: CallResult::Answered
            },
            CallEffect::Ended {
                opportunity_id: opp_id()
            }
        ]
    );
}
