//! A lead who answered and reached nobody: texted that someone will call back (with sms
//! consent, through the gate), escalated to the team's queue, and never called again by the
//! cadence.

use super::fixtures::{created_with as created, run, t};
use super::*;
use crate::domain::call::UnattendedReason;
use crate::domain::timeline::{TimelineKind, TimerOp};

pub(super) fn answered(opp: &Opportunity) -> Opportunity {
    let input = OppInput::CallFinished {
        call_id: opp.active_call.unwrap(),
        result: CallResult::Answered,
    };
    run(opp, input, 10).state
}

fn unattended(call_id: Uuid) -> OppInput {
    OppInput::CallUnattended {
        call_id,
        reason: UnattendedReason::NoRepAvailable,
        inbound: false,
    }
}

#[test]
fn nobody_free_texts_the_lead_and_escalates_to_the_teams_queue() {
    let opp = created(true, Some("west"));
    let call_id = opp.active_call.unwrap();
    let opp = answered(&opp);
    let d = run(&opp, unattended(call_id), 12);
    let sms: Vec<&str> = d
        .effects
        .iter()
        .filter_map(|e| match e {
            OppEffect::SendSms { body, purpose, .. } => {
                assert_eq!(*purpose, Purpose::Marketing);
                Some(body.as_str())
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        sms,
        ["Hi Ana, thanks for picking up. Someone from our team will call you back shortly."]
    );
    assert!(d.effects.iter().any(|e| matches!(
        e,
        OppEffect::NotifyEscalation { queue, reason }
            if queue == "escalations:west" && reason.contains("no rep was available")
    )));
    assert!(d.state.escalated && d.state.reached);
    assert_eq!(d.state.assignee, "escalations:west");
    assert!(d
        .timeline
        .iter()
        .any(|e| e.kind == TimelineKind::SlaEscalated));
    // No cadence call follows: the lead was reached.
    assert!(!d
        .effects
        .iter()
        .any(|e| matches!(e, OppEffect::StartCall { .. })));
}

#[test]
fn without_sms_consent_only_the_escalation_goes_out() {
    let opp = created(false, None);
    let call_id = opp.active_call.unwrap();
    let d = run(&answered(&opp), unattended(call_id), 12);
    assert!(matches!(
        &d.effects[..],
        [OppEffect::NotifyEscalation { queue, .. }] if queue == "escalations"
    ));
}

#[test]
fn a_closed_opportunity_ignores_it() {
    let opp = created(true, None);
    let call_id = opp.active_call.unwrap();
    let lost = OppInput::SetStage {
        stage: Stage::Lost,
        by: "ana".into(),
        reason: None,
    };
    let closed = run(&opp, lost, 5).state;
    let d = run(&closed, unattended(call_id), 12);
    assert!(d.effects.is_empty() && !d.state.escalated);
}

#[test]
fn a_callback_not_made_in_time_escalates_again_and_a_conversation_settles_it() {
    let opp = created(true, Some("west"));
    let call_id = opp.active_call.unwrap();
    let opp = answered(&opp);
    let d = run(&opp, unattended(call_id), 12);
    let armed = d.timers.iter().any(
        |op| matches!(op, TimerOp::Set { name: OppTimer::CallbackSla, at } if *at == t(12 + 900)),
    );
    assert!(armed, "{:?}", d.timers);
    let owed = d.state;
    // Nobody called back: escalated again, and people are told again.
    let fired = run(
        &owed,
        OppInput::TimerFired {
            timer: OppTimer::CallbackSla,
        },
        912,
    );
    assert!(fired.effects.iter().any(|e| matches!(
        e,
        OppEffect::NotifyEscalation { reason, .. } if reason.contains("callback owed")
    )));
    // A rep talked with the lead: the callback is no longer owed.
    let talked = run(
        &owed,
        OppInput::CallConnected {
            call_id,
            rep: Some("bo".into()),
            talk_seconds: 30,
        },
        100,
    );
    assert!(talked.timers.contains(&TimerOp::Clear {
        name: OppTimer::CallbackSla
    }));
}

#[test]
fn a_lead_who_called_in_and_reached_nobody_is_thanked_for_calling_and_escalated() {
    let opp = created(true, Some("west"));
    let inbound_call = Uuid::from_u128(99);
    let input = OppInput::CallUnattended {
        call_id: inbound_call,
        reason: UnattendedReason::NoRepAvailable,
        inbound: true,
    };
    let d = run(&opp, input, 12);
    let sms: Vec<&str> = d
        .effects
        .iter()
        .filter_map(|e| match e {
            OppEffect::SendSms { body, .. } => Some(body.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        sms,
        ["Hi Ana, thanks for calling. Someone from our team will call you back shortly."]
    );
    assert!(d.state.escalated && d.state.reached);
    assert_eq!(
        d.state.active_call, opp.active_call,
        "the cadence's own call is untouched"
    );
}

#[test]
fn a_lead_who_called_in_and_talked_with_a_rep_is_engaged() {
    let opp = created(true, Some("west"));
    assert_eq!(opp.stage, Stage::Contacting);
    let talked = OppInput::CallConnected {
        call_id: Uuid::from_u128(99),
        rep: Some("bo".into()),
        talk_seconds: 30,
    };
    let d = run(&opp, talked, 12);
    assert_eq!(d.state.stage, Stage::Engaged);
    assert!(d.state.reached);
    assert!(d
        .timeline
        .iter()
        .any(|e| e.kind == TimelineKind::Conversation && e.data["rep"] == "bo"));
}
