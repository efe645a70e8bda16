//! Human takeover: a person's text goes through the gate and stops the playbook's automatic
//! texts (its calls go on unless the playbook says otherwise) until an operator hands the
//! conversation back. Shares the suites' fixtures.

use super::fixtures::{created_with, emails, pb, run, t};
use super::*;
use crate::domain::compliance::Rules;
use crate::domain::timeline::{Cause, TimelineKind};

fn text(body: &str) -> OppInput {
    OppInput::SendText {
        body: body.into(),
        by: "ana".into(),
    }
}

fn hand_back() -> OppInput {
    OppInput::HandBack {
        by: "olga".into(),
        reason: Some("lead went quiet".into()),
    }
}

fn refused(opp: &Opportunity, input: OppInput, at: i64) -> Rejection {
    apply(Some(opp), input, t(at), &pb(), &Rules::federal_only()).unwrap_err()
}

fn kinds(d: &OppDecision) -> Vec<TimelineKind> {
    d.timeline.iter().map(|e| e.kind).collect()
}

fn texts(d: &OppDecision) -> Vec<(String, Purpose, Option<String>)> {
    d.effects
        .iter()
        .filter_map(|e| match e {
            OppEffect::SendSms {
                body, purpose, by, ..
            } => Some((body.clone(), *purpose, by.clone())),
            _ => None,
        })
        .collect()
}

/// The first call missed: what the cadence does next.
fn missed(opp: &Opportunity, at: i64) -> OppDecision {
    let call_id = opp.active_call.expect("a call in progress");
    let result = CallResult::NoAnswer;
    run(opp, OppInput::CallFinished { call_id, result }, at)
}

#[test]
fn a_persons_text_leaves_through_the_gate_and_takes_the_conversation_over() {
    let opp = created_with(true, None);
    let d = run(&opp, text("Hi Ana, this is Ana from Acme"), 20);
    assert_eq!(
        texts(&d),
        [(
            "Hi Ana, this is Ana from Acme".to_owned(),
            Purpose::Marketing,
            Some("ana".to_owned())
        )]
    );
    assert_eq!(
        kinds(&d),
        [TimelineKind::TakenOver, TimelineKind::EffectSent]
    );
    assert!(d
        .timeline
        .iter()
        .all(|e| e.cause == Cause::Operator("ana".into())));
    assert_eq!(d.timeline[1].data["by"], "ana");
    let taken = d.state.takeover.clone().unwrap();
    assert_eq!((taken.by.as_str(), taken.since), ("ana", t(20)));
    assert_eq!(d.state.sms_sent, [t(20)], "counted like any text");
    // A second text (by anyone) is just a text: the takeover stays the first person's.
    let again = apply(
        Some(&d.state),
        OppInput::SendText {
            body: "still there?".into(),
            by: "bo".into(),
        },
        t(30),
        &pb(),
        &Rules::federal_only(),
    )
    .unwrap();
    assert_eq!(kinds(&again), [TimelineKind::EffectSent]);
    assert_eq!(again.state.takeover, d.state.takeover);
}

#[test]
fn under_takeover_automatic_texts_stop_and_calls_go_on() {
    let opp = created_with(true, None);
    let taken = run(&opp, text("hello"), 5).state;
    let d = missed(&taken, 30);
    assert!(texts(&d).is_empty(), "{:?}", d.effects);
    let skipped = d
        .timeline
        .iter()
        .find(|e| e.kind == TimelineKind::SmsSkipped)
        .expect("the skipped follow-up is on the timeline");
    assert_eq!(skipped.data["takeover"], "ana");
    assert!(skipped
        .reason
        .contains("ana has taken the conversation over"));
    assert!(d.timers.iter().any(|op| matches!(
        op,
        TimerOp::Set {
            name: OppTimer::RetryCall,
            ..
        }
    )));
    let retried = run(
        &d.state,
        OppInput::TimerFired {
            timer: OppTimer::RetryCall,
        },
        700,
    );
    assert!(matches!(
        retried.effects.as_slice(),
        [OppEffect::StartCall { .. }]
    ));
    // The replies owed to the contact still go out: HELP is answered.
    let help = run(
        &taken,
        OppInput::Replied {
            body: "HELP".into(),
        },
        40,
    );
    assert_eq!(texts(&help)[0].1, Purpose::HelpReply);
}

#[test]
fn handing_back_resumes_the_playbooks_texts() {
    let opp = created_with(true, None);
    let taken = run(&opp, text("hello"), 5).state;
    let d = run(&taken, hand_back(), 10);
    assert_eq!(d.state.takeover, None);
    assert_eq!(kinds(&d), [TimelineKind::HandedBack]);
    let e = &d.timeline[0];
    assert_eq!(e.cause, Cause::Operator("olga".into()));
    assert_eq!(e.data["taken_over_by"], "ana");
    assert!(e.reason.ends_with(": lead went quiet"), "{}", e.reason);
    let after = missed(&d.state, 30);
    assert_eq!(
        texts(&after).len(),
        1,
        "the missed-call follow-up goes again"
    );
    assert_eq!(texts(&after)[0].2, None, "written by the playbook");
    // Nothing to hand back twice.
    assert_eq!(refused(&d.state, hand_back(), 40), Rejection::NotTakenOver);
}

#[test]
fn a_playbook_may_stop_calls_under_takeover_too() {
    let stops = Playbook {
        takeover_stops_calls: true,
        ..pb()
    };
    let rules = Rules::federal_only();
    let step =
        |opp: &Opportunity, input, at| apply(Some(opp), input, t(at), &stops, &rules).unwrap();
    let opp = created_with(true, None);
    let call_id = opp.active_call.unwrap();
    let result = CallResult::NoAnswer;
    let waiting = step(&opp, OppInput::CallFinished { call_id, result }, 10).state;
    let d = step(&waiting, text("I'll call you tonight"), 20);
    assert!(d.timers.contains(&TimerOp::Clear {
        name: OppTimer::RetryCall
    }));
    assert_eq!(d.timeline[0].data["calls_stop"], true);
    // A retry already due finds the cadence stopped.
    let fired = OppInput::TimerFired {
        timer: OppTimer::RetryCall,
    };
    assert!(step(&d.state, fired, 700).effects.is_empty());
    // Handed back, the cadence calls again after its retry delay.
    let back = step(&d.state, hand_back(), 800);
    assert!(back.timers.iter().any(|op| matches!(
        op,
        TimerOp::Set {
            name: OppTimer::RetryCall,
            ..
        }
    )));
}

#[test]
fn the_gate_and_the_stage_refuse_a_persons_text_by_name() {
    let opp = created_with(true, None);
    // Midnight in Los Angeles: quiet hours, refused with the zone named, not queued.
    let why = refused(&opp, text("hi"), 12 * 3600);
    assert!(
        matches!(&why, Rejection::SmsRefused { reason } if reason.contains("America/Los_Angeles")),
        "{why}"
    );
    let no_sms = created_with(false, None);
    let why = refused(&no_sms, text("hi"), 20);
    assert!(
        matches!(&why, Rejection::SmsRefused { reason } if reason.contains("consent")),
        "{why}"
    );
    let mut opted_out = opp.clone();
    opted_out.opted_out = true;
    assert!(matches!(
        refused(&opted_out, text("hi"), 20),
        Rejection::OptedOut { .. }
    ));
    let mut paused = opp.clone();
    paused.paused = true;
    assert!(matches!(
        refused(&paused, text("hi"), 20),
        Rejection::Paused { .. }
    ));
    let mut won = opp.clone();
    won.stage = Stage::Won;
    assert!(matches!(
        refused(&won, text("hi"), 20),
        Rejection::Terminal { .. }
    ));
    let mut landline = opp.clone();
    landline.line_type = Some(LineType::Landline);
    assert!(matches!(
        refused(&landline, text("hi"), 20),
        Rejection::SmsRefused { .. }
    ));
    for body in ["", "   ", &"x".repeat(MAX_TEXT_CHARS + 1)] {
        assert!(matches!(
            refused(&opp, text(body), 20),
            Rejection::InvalidField { field: "body", .. }
        ));
    }
    // Nothing was taken over by a refusal.
    assert_eq!(opp.takeover, None);
}

#[test]
fn a_persons_text_answers_the_lead_and_drops_a_deferred_automatic_one() {
    let opp = created_with(true, None);
    let replied = run(
        &opp,
        OppInput::Replied {
            body: "who is this?".into(),
        },
        10,
    );
    assert!(replied.timers.iter().any(|op| matches!(
        op,
        TimerOp::Set {
            name: OppTimer::ResponseSla,
            ..
        }
    )));
    let mut state = replied.state;
    state.pending_sms = Some(PendingSms {
        body: "Hi Ana, we just tried to call you.".into(),
        purpose: Purpose::Marketing,
    });
    let d = run(&state, text("Ana from Acme here"), 20);
    assert!(d.timers.contains(&TimerOp::Clear {
        name: OppTimer::ResponseSla
    }));
    assert!(d.timers.contains(&TimerOp::Clear {
        name: OppTimer::SendSms
    }));
    assert_eq!(d.state.pending_sms, None);
}

#[test]
fn checkpoints_from_before_takeovers_still_load() {
    let opp = created_with(true, None);
    let mut old = serde_json::to_value(&opp).unwrap();
    assert!(old.get("takeover").is_none(), "absent when none");
    old.as_object_mut().unwrap().remove("takeover");
    let back: Opportunity = serde_json::from_value(old).unwrap();
    assert_eq!(back, opp);
}

fn email(subject: &str, body: &str) -> OppInput {
    OppInput::WriteEmail {
        subject: subject.into(),
        body: body.into(),
        by: "ana".into(),
    }
}

#[test]
fn a_persons_email_passes_the_email_gate_and_takes_the_conversation_over() {
    let mut opp = created_with(true, None);
    // No address, no consent: refused by the gate, nothing written.
    let no = refused(&opp, email("Hi", "Hello"), 20);
    assert!(matches!(no, Rejection::EmailRefused { .. }), "{no:?}");
    opp.contact.email = Some("ana@x.test".into());
    opp.contact.consent.email = true;
    let d = run(
        &opp,
        email("About your\r\nquote", "Hi Ana,\n\ncall me back."),
        20,
    );
    assert_eq!(
        emails(&d),
        [(
            "ana@x.test".to_owned(),
            "About your quote".to_owned(),
            crate::domain::playbook::EmailStep::ByHand
        )],
        "one line of subject"
    );
    assert!(
        kinds(&d).contains(&TimelineKind::TakenOver),
        "{:?}",
        kinds(&d)
    );
    let entry = d
        .timeline
        .iter()
        .find(|e| e.kind == TimelineKind::EffectSent);
    assert_eq!(
        entry.map(|e| e.cause.clone()),
        Some(Cause::Operator("ana".into()))
    );
    assert_eq!(
        d.state.takeover.as_ref().map(|t| t.by.as_str()),
        Some("ana")
    );
    // Unsubscribed, a bounced address, an empty subject: refused.
    let mut gone = d.state.clone();
    gone.email.unsubscribed = true;
    assert!(matches!(
        refused(&gone, email("Hi", "x"), 30),
        Rejection::EmailRefused { .. }
    ));
    let mut bounced = d.state.clone();
    bounced.email.bounced = Some("ana@x.test".into());
    assert!(matches!(
        refused(&bounced, email("Hi", "x"), 30),
        Rejection::EmailRefused { .. }
    ));
    assert!(matches!(
        refused(&d.state, email("  ", "x"), 30),
        Rejection::InvalidField {
            field: "subject",
            ..
        }
    ));
}
