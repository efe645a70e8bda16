//! Hanging up what must stop: a STOP, a do-not-call entry, a close and a pause with hang-up
//! each ask the live call (ringing or bridged) to hang up, once; without a live call nothing
//! is asked.

use super::fixtures::run;
use super::*;
use crate::domain::timeline::{Cause, TimelineKind};

fn call_id(opp: &Opportunity) -> Uuid {
    opp.live_call.as_ref().expect("a live call").call_id
}

fn created() -> Opportunity {
    let opp = super::fixtures::created();
    assert!(opp.active_call.is_some(), "the first touch places a call");
    opp
}

/// The lead answered: `active_call` is cleared, the call is still live (bridged).
fn answered() -> Opportunity {
    let opp = created();
    let input = OppInput::CallFinished {
        call_id: call_id(&opp),
        result: CallResult::Answered,
    };
    let opp = run(&opp, input, 10).state;
    assert_eq!(opp.active_call, None);
    assert!(opp.live_call.is_some());
    opp
}

fn hang_ups(d: &OppDecision) -> Vec<(Uuid, String)> {
    d.effects
        .iter()
        .filter_map(|e| match e {
            OppEffect::HangUpCall { call_id, reason } => Some((*call_id, reason.clone())),
            _ => None,
        })
        .collect()
}

fn stop() -> OppInput {
    OppInput::Replied {
        body: "STOP".into(),
    }
}

fn lost() -> OppInput {
    OppInput::SetStage {
        stage: Stage::Lost,
        by: "ana".into(),
        reason: None,
    }
}

fn pause(hang_up: bool) -> OppInput {
    OppInput::Pause {
        by: "ana".into(),
        reason: None,
        hang_up,
    }
}

fn dnc() -> OppInput {
    OppInput::NumberOnDnc { by: "ana".into() }
}

fn hang_up_event(d: &OppDecision) -> &crate::domain::timeline::TimelineEvent {
    d.timeline
        .iter()
        .find(|e| e.kind == TimelineKind::HangUp)
        .expect("a hang_up timeline entry")
}

#[test]
fn a_stop_hangs_up_the_bridged_call() {
    let opp = answered();
    let id = call_id(&opp);
    let d = run(&opp, stop(), 20);
    assert_eq!(hang_ups(&d), vec![(id, "the lead opted out by sms".into())]);
    assert_eq!(hang_up_event(&d).cause, Cause::Contact);
    assert_eq!(d.state.stage, Stage::DoNotContact);
    assert!(d.state.live_call.as_ref().unwrap().hang_up_asked);
    // The opt-out confirmation still goes out.
    assert!(d
        .effects
        .iter()
        .any(|e| matches!(e, OppEffect::SendSms { .. })));
}

#[test]
fn a_stop_hangs_up_a_ringing_call() {
    let opp = created();
    let id = call_id(&opp);
    let d = run(&opp, stop(), 5);
    assert_eq!(hang_ups(&d).len(), 1);
    assert_eq!(hang_ups(&d)[0].0, id);
}

#[test]
fn a_close_hangs_up_the_live_call() {
    let opp = answered();
    let d = run(&opp, lost(), 20);
    assert_eq!(
        hang_ups(&d),
        vec![(call_id(&opp), "the opportunity closed as lost".into())]
    );
    assert_eq!(hang_up_event(&d).cause, Cause::Operator("ana".into()));
}

#[test]
fn a_pause_with_hang_up_hangs_up_and_a_plain_pause_does_not() {
    let opp = answered();
    let plain = run(&opp, pause(false), 20);
    assert!(hang_ups(&plain).is_empty());
    assert!(plain.state.paused);
    let d = run(&opp, pause(true), 20);
    assert_eq!(hang_ups(&d).len(), 1);
    assert!(d.state.paused);
    assert!(hang_up_event(&d).reason.contains("asked to hang up"));
}

#[test]
fn a_dnc_entry_hangs_up_and_closes_both_channels() {
    let opp = created();
    let id = call_id(&opp);
    let d = run(&opp, dnc(), 5);
    assert_eq!(
        hang_ups(&d),
        vec![(id, "the number was put on the do-not-call list".into())]
    );
    assert!(d
        .state
        .dnc_channels
        .contains(&crate::domain::compliance::Channel::Voice));
    assert!(d
        .state
        .dnc_channels
        .contains(&crate::domain::compliance::Channel::Sms));
    assert_eq!(d.state.active_call, None);
    // The hung-up call's end is no missed call: no follow-up text, no retry.
    let ended = OppInput::CallFinished {
        call_id: id,
        result: CallResult::Canceled,
    };
    let after = run(&d.state, ended, 6);
    assert!(after.effects.is_empty());
    assert_eq!(after.state.live_call, None);
    assert_eq!(after.state.stage, Stage::Contacting);
}

#[test]
fn repeats_ask_once() {
    let opp = answered();
    let first = run(&opp, stop(), 20).state;
    let again = run(&first, stop(), 21);
    assert!(hang_ups(&again).is_empty());
    let closed = run(&first, dnc(), 22);
    assert!(hang_ups(&closed).is_empty());
    let listed = run(&answered(), dnc(), 20).state;
    let twice = run(&listed, dnc(), 21);
    assert!(hang_ups(&twice).is_empty());
    assert!(twice.timeline.is_empty());
    assert_eq!(twice.state, listed);
}

#[test]
fn no_hang_up_without_a_live_call() {
    let opp = created();
    let id = call_id(&opp);
    let missed = OppInput::CallFinished {
        call_id: id,
        result: CallResult::NoAnswer,
    };
    let opp = run(&opp, missed, 30).state;
    assert_eq!(opp.live_call, None);
    for input in [stop(), lost(), pause(true), dnc()] {
        let d = run(&opp, input, 31);
        assert!(hang_ups(&d).is_empty());
        assert!(!d.timeline.iter().any(|e| e.kind == TimelineKind::HangUp));
    }
}

#[test]
fn the_end_of_an_answered_call_clears_the_live_call() {
    let opp = answered();
    let id = call_id(&opp);
    let d = run(&opp, OppInput::CallEnded { call_id: id }, 40);
    assert_eq!(d.state.live_call, None);
    assert!(d.timeline.is_empty());
    // Another call's end changes nothing.
    let other = OppInput::CallEnded {
        call_id: Uuid::from_u128(99),
    };
    assert_eq!(run(&opp, other, 40).state.live_call, opp.live_call);
    // Then nothing is live to hang up.
    assert!(hang_ups(&run(&d.state, stop(), 41)).is_empty());
}

/// The lead called in while nothing of the cadence was live: a STOP hangs that call up, and
/// its end clears it. A lead calling in while the cadence's own call is live keeps that one.
#[test]
fn a_lead_on_an_inbound_call_is_hung_up_on_a_stop() {
    let opp = answered();
    let opp = run(
        &opp,
        OppInput::CallEnded {
            call_id: call_id(&opp),
        },
        20,
    )
    .state;
    assert_eq!(opp.live_call, None);
    let inbound = Uuid::from_u128(42);
    let live = run(&opp, OppInput::InboundLive { call_id: inbound }, 21).state;
    assert_eq!(call_id(&live), inbound);
    let d = run(&live, stop(), 22);
    assert_eq!(hang_ups(&d).len(), 1, "{:?}", d.effects);
    assert_eq!(hang_ups(&d)[0].0, inbound);
    let over = run(&live, OppInput::CallEnded { call_id: inbound }, 23).state;
    assert_eq!(over.live_call, None);
    assert!(hang_ups(&run(&over, stop(), 24)).is_empty());

    let busy = answered();
    let kept = run(&busy, OppInput::InboundLive { call_id: inbound }, 25).state;
    assert_eq!(kept.live_call, busy.live_call);
}
