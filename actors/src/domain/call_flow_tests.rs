//! The call flow's inputs on the call: reps rung, a rep picking up, the dial's end, and the
//! one report when nobody took the lead. Each may come twice or out of order.

use super::fixtures::{events, pb, run, rung, t};
use super::*;

/// A placed call the lead answered (a person).
fn answered() -> Call {
    let place = CallInput::Place {
        call_id: Uuid::from_u128(9),
        opportunity_id: Uuid::from_u128(7),
        to: "+14155550100".into(),
        attempt: 1,
        playbook: "speed-to-lead".into(),
        agent: None,
    };
    let mut call = apply(None, place, t(0), &pb()).unwrap().state;
    for input in [
        CallInput::Dialed {
            provider_sid: "CA1".into(),
        },
        CallInput::Status {
            status: CallStatus::InProgress,
            sequence: Some(3),
            answered_by: Some(AnsweredBy::Human),
            provider_sid: Some("CA1".into()),
        },
    ] {
        call = apply(Some(&call), input, t(1), &pb()).unwrap().state;
    }
    call
}

#[test]
fn a_bridged_dial_records_the_conversation_with_its_rep_and_talk_time() {
    let call = answered();
    let d = run(&call, rung(&["ana", "bo"]));
    assert_eq!(events(&d), ["reps_rung"]);
    let d = run(
        &d.state,
        CallInput::RepAnswered {
            rep: "bo".into(),
            leg_sid: "CA2".into(),
        },
    );
    assert_eq!(events(&d), ["rep_answered"]);
    // The lead's answer was reported already: nothing more to the opportunity.
    assert!(d.effects.is_empty(), "{:?}", d.effects);
    let ended = CallInput::DialEnded {
        status: DialStatus::Completed,
        bridged: true,
        leg_sid: Some("CA2".into()),
        talk_seconds: Some(42),
        reps: vec!["ana".into(), "bo".into()],
    };
    let d = run(&d.state, ended.clone());
    assert_eq!(events(&d), ["conversation"]);
    let conv = d.state.flow.conversation.clone().unwrap();
    assert_eq!((conv.rep.as_deref(), conv.talk_seconds), (Some("bo"), 42));
    assert_eq!(d.timeline[0].data["talk_seconds"], 42);
    // The provider repeats the action: nothing new.
    let again = run(&d.state, ended);
    assert!(again.timeline.is_empty() && again.state == d.state);
    // Nobody-took-it cannot follow a conversation.
    let late = run(
        &d.state,
        CallInput::Unattended {
            reason: UnattendedReason::RepsMissed,
        },
    );
    assert!(late.effects.is_empty() && late.timeline.is_empty());
}

#[test]
fn one_rep_rung_is_the_conversations_rep_even_without_its_whisper() {
    let call = run(&answered(), rung(&["ana"])).state;
    let d = run(
        &call,
        CallInput::DialEnded {
            status: DialStatus::Completed,
            bridged: true,
            leg_sid: Some("CA7".into()),
            talk_seconds: None,
            reps: vec!["ana".into()],
        },
    );
    let conv = d.state.flow.conversation.unwrap();
    assert_eq!((conv.rep.as_deref(), conv.talk_seconds), (Some("ana"), 0));
}

#[test]
fn a_missed_dial_is_recorded_and_unattended_is_reported_once() {
    let call = run(&answered(), rung(&["ana"])).state;
    let d = run(
        &call,
        CallInput::DialEnded {
            status: DialStatus::NoAnswer,
            bridged: false,
            leg_sid: None,
            talk_seconds: None,
            reps: vec!["ana".into()],
        },
    );
    assert_eq!(events(&d), ["reps_missed"]);
    assert!(d.state.flow.conversation.is_none());
    let input = CallInput::Unattended {
        reason: UnattendedReason::RepsMissed,
    };
    let d = run(&d.state, input.clone());
    assert_eq!(events(&d), ["unattended"]);
    assert_eq!(
        d.effects,
        [CallEffect::Unattended {
            opportunity_id: Uuid::from_u128(7),
            reason: UnattendedReason::RepsMissed,
            inbound: false,
        }]
    );
    let again = run(&d.state, input);
    assert!(again.effects.is_empty() && again.timeline.is_empty());
}

#[test]
fn a_rep_picking_up_before_the_answer_callback_reports_the_answer() {
    // The whisper request can beat the lead's in-progress callback.
    let place = CallInput::Place {
        call_id: Uuid::from_u128(9),
        opportunity_id: Uuid::from_u128(7),
        to: "+14155550100".into(),
        attempt: 1,
        playbook: "speed-to-lead".into(),
        agent: None,
    };
    let call = apply(None, place, t(0), &pb()).unwrap().state;
    let d = run(
        &call,
        CallInput::RepAnswered {
            rep: "ana".into(),
            leg_sid: "CA2".into(),
        },
    );
    assert!(d.effects.iter().any(|e| matches!(
        e,
        CallEffect::Report {
            result: CallResult::Answered,
            ..
        }
    )));
    // The same leg again adds nothing.
    let again = run(
        &d.state,
        CallInput::RepAnswered {
            rep: "ana".into(),
            leg_sid: "CA2".into(),
        },
    );
    assert!(again.timeline.is_empty() && again.effects.is_empty());
}

#[test]
fn the_same_reps_rung_twice_are_recorded_once() {
    let d = run(&answered(), rung(&["ana"]));
    let again = run(&d.state, rung(&["ana", " "]));
    assert!(again.timeline.is_empty());
    assert_eq!(again.state.flow.rung, ["ana"]);
}

#[test]
fn the_flow_survives_serialisation_and_old_states_read_without_it() {
    let call = run(&answered(), rung(&["ana"])).state;
    let back: Call = serde_json::from_value(serde_json::to_value(&call).unwrap()).unwrap();
    assert_eq!(back, call);
    let mut old = serde_json::to_value(answered()).unwrap();
    assert!(old.get("flow").is_none(), "an empty flow is not written");
    old.as_object_mut().unwrap().remove("flow");
    let read: Call = serde_json::from_value(old).unwrap();
    assert!(read.flow.is_empty());
}

/// A click-to-call placed agent first, its rep's phone answered (no machine detection).
fn agent_first_answered() -> (Call, CallDecision) {
    let place = CallInput::Place {
        call_id: Uuid::from_u128(10),
        opportunity_id: Uuid::from_u128(7),
        to: "+14155550100".into(),
        attempt: 2,
        playbook: "speed-to-lead".into(),
        agent: Some(Agent {
            rep: "ana".into(),
            phone: "+14155550201".into(),
        }),
    };
    let placed = apply(None, place, t(0), &pb()).unwrap();
    let mut call = placed.state.clone();
    for input in [
        CallInput::Dialed {
            provider_sid: "CA1".into(),
        },
        CallInput::Status {
            status: CallStatus::InProgress,
            sequence: Some(3),
            answered_by: None,
            provider_sid: Some("CA1".into()),
        },
    ] {
        let d = apply(Some(&call), input, t(1), &pb()).unwrap();
        // The rep answering is not the lead answering: nothing is reported yet.
        assert!(
            !d.effects
                .iter()
                .any(|e| matches!(e, CallEffect::Report { .. })),
            "{:?}",
            d.effects
        );
        call = d.state;
    }
    (call, placed)
}

#[test]
fn agent_first_dials_the_rep_without_machine_detection() {
    let (_, placed) = agent_first_answered();
    assert_eq!(
        placed.effects,
        [CallEffect::Dial {
            to: "+14155550100".into(),
            machine_detection: false,
            ring_timeout_seconds: 30,
            agent: Some(Agent {
                rep: "ana".into(),
                phone: "+14155550201".into(),
            }),
        }]
    );
}

#[test]
fn agent_first_reports_the_lead_answering_when_the_dial_connects() {
    let (call, _) = agent_first_answered();
    let accepted = CallInput::RepAnswered {
        rep: "ana".into(),
        leg_sid: "CA1".into(),
    };
    let d = run(&call, accepted);
    assert!(d.effects.is_empty(), "accepting is not reaching the lead");
    let ended = CallInput::DialEnded {
        status: DialStatus::Completed,
        bridged: true,
        leg_sid: Some("CA5".into()),
        talk_seconds: Some(30),
        reps: Vec::new(),
    };
    let d = run(&d.state, ended);
    assert_eq!(
        d.effects,
        [
            CallEffect::Report {
                opportunity_id: Uuid::from_u128(7),
                result: CallResult::Answered,
            },
            CallEffect::Conversation {
                opportunity_id: Uuid::from_u128(7),
                rep: Some("ana".into()),
                talk_seconds: 30,
            },
        ]
    );
}

#[test]
fn agent_first_reports_the_lead_missing_the_call_or_the_rep_passing() {
    let (call, _) = agent_first_answered();
    let missed = CallInput::DialEnded {
        status: DialStatus::Busy,
        bridged: false,
        leg_sid: None,
        talk_seconds: None,
        reps: Vec::new(),
    };
    let d = run(&call, missed);
    assert_eq!(events(&d), ["lead_missed"]);
    assert!(d.effects.contains(&CallEffect::Report {
        opportunity_id: Uuid::from_u128(7),
        result: CallResult::Busy,
    }));
    // The rep hung up without accepting: the lead was never dialled.
    let completed = CallInput::Status {
        status: CallStatus::Completed,
        sequence: Some(9),
        answered_by: None,
        provider_sid: Some("CA1".into()),
    };
    let d = run(&call, completed);
    assert_eq!(events(&d), ["rep_missed"]);
    assert!(d.effects.contains(&CallEffect::Report {
        opportunity_id: Uuid::from_u128(7),
        result: CallResult::RepMissed,
    }));
}

#[test]
fn agent_first_awaits_the_dial_result_that_races_the_calls_end() {
    let (call, _) = agent_first_answered();
    let accepted = CallInput::RepAnswered {
        rep: "ana".into(),
        leg_sid: "CA1".into(),
    };
    let call = run(&call, accepted).state;
    let completed = CallInput::Status {
        status: CallStatus::Completed,
        sequence: Some(9),
        answered_by: None,
        provider_sid: Some("CA1".into()),
    };
    let d = run(&call, completed);
    // Not reported yet: the dial's own result is awaited, under the watchdog.
    assert!(
        !d.effects
            .iter()
            .any(|e| matches!(e, CallEffect::Report { .. })),
        "{:?}",
        d.effects
    );
    assert!(d.timers.iter().any(|t| matches!(
        t,
        TimerOp::Set {
            name: CallTimer::Watchdog,
            ..
        }
    )));
    let ended = d.state;
    let bridged = CallInput::DialEnded {
        status: DialStatus::Completed,
        bridged: true,
        leg_sid: Some("CA5".into()),
        talk_seconds: Some(12),
        reps: Vec::new(),
    };
    let d = run(&ended, bridged);
    let opp = Uuid::from_u128(7);
    assert!(d.effects.contains(&CallEffect::Report {
        opportunity_id: opp,
        result: CallResult::Answered,
    }));
    // The call is over already: the opportunity hears that too, so nothing stays live.
    assert!(d.effects.contains(&CallEffect::Ended {
        opportunity_id: opp
    }));
    // Had it never come, the watchdog settles it as not answered.
    let lost = CallInput::TimerFired {
        timer: CallTimer::Watchdog,
    };
    let d = run(&ended, lost);
    assert!(d.effects.contains(&CallEffect::Report {
        opportunity_id: opp,
        result: CallResult::NoAnswer,
    }));
}

#[test]
fn a_recording_is_kept_once_with_its_consent() {
    let call = answered();
    let rec = RecordingMeta {
        sid: "RE0123456789abcdef0123456789abcdef".into(),
        duration_seconds: 42,
        consent: "all_party".into(),
    };
    let d = run(
        &call,
        CallInput::Recorded {
            recording: rec.clone(),
        },
    );
    assert_eq!(events(&d), ["recorded"]);
    assert_eq!(d.state.flow.recordings, std::slice::from_ref(&rec));
    assert!(d.effects.is_empty());
    // The carrier's repeated callback changes nothing.
    let again = run(&d.state, CallInput::Recorded { recording: rec });
    assert!(again.timeline.is_empty());
    assert_eq!(again.state.flow.recordings.len(), 1);
}
