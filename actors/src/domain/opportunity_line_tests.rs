//! The line type reported by the carrier's lookup: recorded once, a landline's texts skipped
//! with a reason while the call cadence goes on.

use super::fixtures::{created, run};
use super::*;
use crate::domain::timeline::TimelineKind;

fn found(line_type: LineType, text_withheld: bool) -> OppInput {
    OppInput::LineTypeFound(LineFound {
        line_type,
        carrier: Some("Telco".into()),
        lookup_error: None,
        text_withheld,
    })
}

fn missed(state: &Opportunity) -> OppInput {
    OppInput::CallFinished {
        call_id: state.active_call.unwrap(),
        result: CallResult::NoAnswer,
    }
}

fn kinds(d: &OppDecision) -> Vec<TimelineKind> {
    d.timeline.iter().map(|e| e.kind).collect()
}

#[test]
fn a_withheld_text_to_a_landline_is_explained_and_later_texts_are_skipped() {
    let opp = created();
    let after_miss = run(&opp, missed(&opp), 40).state;
    let d = run(&after_miss, found(LineType::Landline, true), 41);
    assert_eq!(d.state.line_type, Some(LineType::Landline));
    assert_eq!(
        kinds(&d),
        vec![TimelineKind::LineType, TimelineKind::SmsSkipped]
    );
    assert!(
        d.timeline[1].reason.contains("landline"),
        "{:?}",
        d.timeline
    );
    assert!(d.effects.is_empty());

    // The retry still calls; its miss texts nobody and re-arms the retry.
    let retry = run(
        &d.state,
        OppInput::TimerFired {
            timer: OppTimer::RetryCall,
        },
        640,
    );
    assert!(matches!(
        retry.effects[..],
        [OppEffect::StartCall { attempt: 2, .. }]
    ));
    let second = run(&retry.state, missed(&retry.state), 700);
    assert!(
        !second
            .effects
            .iter()
            .any(|e| matches!(e, OppEffect::SendSms { .. })),
        "{:?}",
        second.effects
    );
    assert!(kinds(&second).contains(&TimelineKind::SmsSkipped));
    assert!(second.timers.iter().any(|op| matches!(
        op,
        TimerOp::Set {
            name: OppTimer::RetryCall,
            ..
        }
    )));
}

#[test]
fn a_mobile_is_recorded_once_and_texted_as_before() {
    let opp = created();
    let d = run(&opp, found(LineType::Mobile, false), 5);
    assert_eq!(d.state.line_type, Some(LineType::Mobile));
    assert_eq!(kinds(&d), vec![TimelineKind::LineType]);
    let again = run(&d.state, found(LineType::Mobile, false), 6);
    assert!(again.timeline.is_empty(), "a known type is not news");
    assert_eq!(again.state, d.state, "nothing changes, updated_at included");
    let miss = run(&d.state, missed(&d.state), 40);
    assert!(miss
        .effects
        .iter()
        .any(|e| matches!(e, OppEffect::SendSms { .. })));
}

#[test]
fn a_failed_lookup_is_unknown_and_texts_go_on() {
    let opp = created();
    let failed = OppInput::LineTypeFound(LineFound {
        line_type: LineType::Unknown,
        carrier: None,
        lookup_error: Some("twilio answered with server error http 500".into()),
        text_withheld: false,
    });
    let d = run(&opp, failed, 5);
    assert_eq!(d.state.line_type, Some(LineType::Unknown));
    assert!(d.timeline[0].reason.contains("lookup failed"));
    let miss = run(&d.state, missed(&d.state), 40);
    assert!(miss
        .effects
        .iter()
        .any(|e| matches!(e, OppEffect::SendSms { .. })));
}

#[test]
fn the_input_and_state_round_trip_and_old_states_read_without_a_type() {
    let input = found(LineType::NonFixedVoip, false);
    let json = serde_json::to_value(&input).unwrap();
    assert_eq!(json["type"], "line_type_found");
    assert_eq!(json["line_type"], "non_fixed_voip");
    assert_eq!(serde_json::from_value::<OppInput>(json).unwrap(), input);
    let opp = created();
    let stored = serde_json::to_value(&opp).unwrap();
    assert!(
        stored.get("line_type").is_none(),
        "unchanged for tenants without lookups"
    );
    let back: Opportunity = serde_json::from_value(stored).unwrap();
    assert_eq!(back.line_type, None);
}
