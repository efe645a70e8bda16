//! Click to call on the opportunity: the same gate as a cadence call, one call at a time, and
//! a rep who passes is not a call the lead missed. Shares the suites' fixtures.

use super::fixtures::{created_with as created, pb, run, t};
use super::unattended_tests::answered;
use super::*;
use crate::domain::call::Agent;
use crate::domain::compliance::Rules;
use crate::domain::timeline::{Cause, TimerOp};

fn ana() -> Agent {
    Agent {
        rep: "ana".into(),
        phone: "+14155550201".into(),
    }
}

fn call_now() -> OppInput {
    OppInput::CallNow {
        agent: ana(),
        by: "ana".into(),
    }
}

fn refused(opp: &Opportunity, input: OppInput) -> Rejection {
    apply(Some(opp), input, t(20), &pb(), &Rules::federal_only()).unwrap_err()
}

#[test]
fn a_rep_calls_an_idle_lead_agent_first() {
    let opp = answered(&created(true, Some("west")));
    let ended = run(
        &opp,
        OppInput::CallEnded {
            call_id: opp.live_call.as_ref().map(|l| l.call_id).unwrap(),
        },
        15,
    )
    .state;
    let d = run(&ended, call_now(), 20);
    let [OppEffect::StartCall { attempt, agent, .. }] = d.effects.as_slice() else {
        panic!("{:?}", d.effects);
    };
    assert_eq!((*attempt, agent.clone()), (2, Some(ana())));
    assert!(d.state.active_call.is_some());
    let placed = d.timeline.last().unwrap();
    assert_eq!(placed.cause, Cause::Operator("ana".into()));
    assert_eq!(placed.data["agent_first"], "ana");
    // Twice is refused while that call is live.
    assert!(matches!(
        refused(&d.state, call_now()),
        Rejection::CallLive { .. }
    ));
    // A rep who passes: the lead was never rung, so no follow-up text and no retry.
    let call_id = d.state.active_call.unwrap();
    let passed = OppInput::CallFinished {
        call_id,
        result: CallResult::RepMissed,
    };
    let d = run(&d.state, passed, 30);
    assert!(d.effects.is_empty(), "{:?}", d.effects);
    assert!(d.timers.is_empty(), "{:?}", d.timers);
    assert_eq!(d.state.active_call, None);
}

#[test]
fn the_gate_and_the_stage_refuse_by_name() {
    let opp = created(false, None);
    let mut no_voice = opp.clone();
    no_voice.active_call = None;
    no_voice.live_call = None;
    no_voice.contact.consent.voice = false;
    let why = refused(&no_voice, call_now());
    assert!(
        matches!(&why, Rejection::CallRefused { reason } if reason.contains("consent")),
        "{why}"
    );
    let mut opted_out = no_voice.clone();
    opted_out.opted_out = true;
    assert!(matches!(
        refused(&opted_out, call_now()),
        Rejection::OptedOut { .. }
    ));
    let bad_phone = OppInput::CallNow {
        agent: Agent {
            rep: "ana".into(),
            phone: "555".into(),
        },
        by: "ana".into(),
    };
    assert!(matches!(
        refused(&no_voice, bad_phone),
        Rejection::InvalidField {
            field: "rep.phone",
            ..
        }
    ));
}

#[test]
fn agent_first_by_the_playbook_a_pass_offers_the_lead_to_the_next_rep_soon() {
    let mut playbook = pb();
    playbook.call_flow.connect = crate::domain::playbook::ConnectMode::AgentFirst;
    // The cadence's own first call (created() placed it), passed by its rep.
    let opp = created(true, Some("west"));
    let call_id = opp.active_call.unwrap();
    let passed = OppInput::CallFinished {
        call_id,
        result: CallResult::RepMissed,
    };
    let d = apply(Some(&opp), passed, t(30), &playbook, &Rules::federal_only()).unwrap();
    assert!(d.effects.is_empty(), "no text: the lead was never rung");
    assert_eq!(
        d.timers,
        vec![TimerOp::Set {
            name: OppTimer::RetryCall,
            at: t(35),
        }]
    );
}
