//! An inbound call on the call actor: created live, ended by its flow, and closed by its
//! watchdog when the flow never finished (a caller who hung up during the greeting).

use super::fixtures::{events, pb, run, rung, t};
use super::*;
use crate::domain::timeline::TimerOp;

fn watchdog() -> CallInput {
    CallInput::TimerFired {
        timer: CallTimer::Watchdog,
    }
}

fn fetched(status: CallStatus) -> CallInput {
    CallInput::Fetched {
        status,
        answered_by: None,
        provider_sid: "CAin".into(),
    }
}

fn fetch_effect() -> CallEffect {
    CallEffect::Fetch {
        provider_sid: "CAin".into(),
    }
}

/// The inbound call's end, told to its opportunity.
fn ended_effect() -> CallEffect {
    CallEffect::Ended {
        opportunity_id: Uuid::from_u128(7),
    }
}

fn inbound() -> CallInput {
    CallInput::Inbound {
        call_id: Uuid::from_u128(11),
        opportunity_id: Uuid::from_u128(7),
        from: "+14155550100".into(),
        to: "+14155550999".into(),
        provider_sid: "CAin".into(),
        playbook: "speed-to-lead".into(),
    }
}

#[test]
fn an_inbound_call_exists_in_progress_and_dials_nobody() {
    let d = apply(None, inbound(), t(0), &pb()).unwrap();
    assert_eq!(d.state.status, CallStatus::InProgress);
    assert_eq!(d.state.to, "+14155550100", "the lead's number");
    assert_eq!(d.state.inbound.as_deref(), Some("+14155550999"));
    assert!(
        d.state.reported,
        "not an attempt: never reported as a call result"
    );
    // The opportunity is told the call is live: the one to hang up on a STOP.
    let live = CallEffect::Live {
        opportunity_id: Uuid::from_u128(7),
    };
    assert_eq!(d.effects, [live], "{d:?}");
    // Its watchdog: no status callback comes for an inbound call.
    let watchdog = TimerOp::Set {
        name: CallTimer::Watchdog,
        at: t(pb().call_watchdog_seconds as i64),
    };
    assert_eq!(d.timers, [watchdog], "{d:?}");
    assert_eq!(events(&d), ["inbound"]);
    // A retried request changes nothing.
    let again = run(&d.state, inbound());
    assert!(again.effects.is_empty() && again.timeline.is_empty());
    for bad in ["", "4155550100", "+1x"] {
        let mut input = inbound();
        if let CallInput::Inbound { from, .. } = &mut input {
            *from = bad.into();
        }
        assert!(matches!(
            apply(None, input, t(0), &pb()),
            Err(Rejection::InvalidField { field: "from", .. })
        ));
    }
}

#[test]
fn an_inbound_conversation_tells_the_opportunity_and_completes_the_call() {
    let call = apply(None, inbound(), t(0), &pb()).unwrap().state;
    let call = run(&call, rung(&["bo"])).state;
    let picked = CallInput::RepAnswered {
        rep: "bo".into(),
        leg_sid: "CAleg".into(),
    };
    let d = run(&call, picked);
    assert!(d.effects.is_empty(), "no call result for an inbound call");
    let ended = CallInput::DialEnded {
        status: DialStatus::Completed,
        bridged: true,
        leg_sid: Some("CAleg".into()),
        talk_seconds: Some(42),
        reps: vec!["bo".into()],
    };
    let d = run(&d.state, ended);
    assert_eq!(
        d.effects,
        [
            CallEffect::Conversation {
                opportunity_id: Uuid::from_u128(7),
                rep: Some("bo".into()),
                talk_seconds: 42,
            },
            ended_effect()
        ]
    );
    assert_eq!(d.state.status, CallStatus::Completed);
}

#[test]
fn an_inbound_call_nobody_takes_is_unattended_as_inbound() {
    let call = apply(None, inbound(), t(0), &pb()).unwrap().state;
    let input = CallInput::Unattended {
        reason: UnattendedReason::NoRepAvailable,
    };
    let d = run(&call, input);
    assert_eq!(
        d.effects,
        [
            CallEffect::Unattended {
                opportunity_id: Uuid::from_u128(7),
                reason: UnattendedReason::NoRepAvailable,
                inbound: true,
            },
            ended_effect()
        ]
    );
    assert!(
        d.timeline[0].reason.starts_with("the lead called"),
        "{:?}",
        d.timeline
    );
    assert_eq!(d.state.status, CallStatus::Completed);
}

#[test]
fn a_caller_gone_before_the_dial_is_found_by_the_watchdog_and_owed_a_callback() {
    let call = apply(None, inbound(), t(0), &pb()).unwrap().state;
    // Reps were offered, but the caller hung up during the greeting: no request ever came.
    let call = run(&call, rung(&["bo"])).state;
    let d = run(&call, watchdog());
    assert_eq!(d.effects, [fetch_effect()], "the provider is asked");
    assert_eq!(d.state.status, CallStatus::InProgress);
    assert!(d.state.fetch_attempted);
    assert!(
        matches!(
            d.timers.as_slice(),
            [TimerOp::Set {
                name: CallTimer::Watchdog,
                ..
            }]
        ),
        "{:?}",
        d.timers
    );
    // The provider says the call is over: closed, the opportunity owes a callback and no
    // longer has a live call.
    let d = run(&d.state, fetched(CallStatus::Completed));
    assert_eq!(
        d.effects,
        [
            CallEffect::Unattended {
                opportunity_id: Uuid::from_u128(7),
                reason: UnattendedReason::CallerHungUp,
                inbound: true,
            },
            ended_effect()
        ]
    );
    assert_eq!(d.state.status, CallStatus::Completed);
    assert_eq!(events(&d), ["unattended"]);
    assert!(d.timers.contains(&TimerOp::Clear {
        name: CallTimer::Watchdog
    }));
    // A late firing or a repeated answer changes nothing.
    let again = run(&d.state, watchdog());
    assert!(again.effects.is_empty() && again.timeline.is_empty());
    let again = run(&d.state, fetched(CallStatus::Completed));
    assert!(again.effects.is_empty() && again.timeline.is_empty());
}

#[test]
fn a_long_inbound_conversation_is_asked_after_each_period_and_never_cut() {
    let call = apply(None, inbound(), t(0), &pb()).unwrap().state;
    let picked = CallInput::RepAnswered {
        rep: "bo".into(),
        leg_sid: "CAleg".into(),
    };
    let mut call = run(&run(&call, rung(&["bo"])).state, picked).state;
    for _ in 0..3 {
        let d = run(&call, watchdog());
        assert_eq!(d.effects, [fetch_effect()]);
        // Still live at the provider: asked again at the next period, not closed.
        let d = run(&d.state, fetched(CallStatus::InProgress));
        assert!(d.effects.is_empty(), "{:?}", d.effects);
        assert_eq!(d.state.status, CallStatus::InProgress);
        assert!(!d.state.fetch_attempted);
        call = d.state;
    }
    // The conversation ended without its dial action: closed, and no callback is owed, as a
    // rep picked up.
    let d = run(&call, watchdog());
    let d = run(&d.state, fetched(CallStatus::Completed));
    assert_eq!(d.effects, [ended_effect()]);
    assert_eq!(d.state.status, CallStatus::Completed);
}

#[test]
fn an_inbound_call_is_closed_only_after_several_unanswered_askings() {
    let call = apply(None, inbound(), t(0), &pb()).unwrap().state;
    // The fetches fail (no `Fetched` comes): asked again at each firing, the lead may still
    // be on hold.
    let mut asked = run(&call, watchdog()).state;
    for _ in 1..inbound::UNANSWERED_ASKS {
        let d = run(&asked, watchdog());
        assert_eq!(d.effects, [fetch_effect()], "asked again");
        assert_eq!(d.state.status, CallStatus::InProgress);
        asked = d.state;
    }
    let d = run(&asked, watchdog());
    assert_eq!(d.state.status, CallStatus::Completed);
    assert!(d.effects.contains(&ended_effect()), "{:?}", d.effects);
    assert!(d.effects.iter().any(|e| matches!(
        e,
        CallEffect::Unattended {
            reason: UnattendedReason::CallerHungUp,
            ..
        }
    )));
    // One answer in between starts the count again.
    let answered = run(
        &run(&call, watchdog()).state,
        fetched(CallStatus::InProgress),
    )
    .state;
    assert_eq!(answered.unanswered_asks, 0);
    // A flow that ended normally leaves no watchdog behind.
    let input = CallInput::Unattended {
        reason: UnattendedReason::NoRepAvailable,
    };
    let d = run(&call, input);
    assert!(d.timers.contains(&TimerOp::Clear {
        name: CallTimer::Watchdog
    }));
}

#[test]
fn a_call_hung_up_at_the_opportunitys_asking_owes_no_callback_and_other_sids_are_ignored() {
    let call = apply(None, inbound(), t(0), &pb()).unwrap().state;
    // An answer about another call changes nothing.
    let asked = run(&call, watchdog()).state;
    let other = CallInput::Fetched {
        status: CallStatus::Completed,
        answered_by: None,
        provider_sid: "CAother".into(),
    };
    let d = run(&asked, other);
    assert_eq!(d.state.status, CallStatus::InProgress);
    assert!(d.effects.is_empty() && d.timeline.is_empty());
    // The lead texted STOP while on hold: the call was hung up at the opportunity's asking.
    let stop = CallInput::HangUp {
        reason: "the lead opted out".into(),
    };
    let hung = run(&asked, stop).state;
    assert!(hung.hang_up.is_some(), "{hung:?}");
    let d = run(&hung, fetched(CallStatus::Completed));
    assert_eq!(d.state.status, CallStatus::Completed);
    assert_eq!(
        d.effects,
        [ended_effect()],
        "no callback owed: {:?}",
        d.effects
    );
}
