//! Email as a lead channel: the playbook's emails pass the email gate (consent, unsubscribe,
//! a bounced address), and an unsubscribe or a bounce closes email only.

use super::fixtures::{emails, t};
use super::*;
use crate::domain::compliance::Rules;
use crate::domain::playbook::{EmailStep, EmailSteps, EmailTemplate};
use crate::domain::timeline::TimelineKind;

fn pb() -> Playbook {
    let template = |subject: &str| EmailTemplate {
        subject: subject.into(),
        body: "Hi {{ first_name }}, about {{ external_id }}.".into(),
    };
    Playbook {
        email: EmailSteps {
            first_touch: Some(template("Welcome {{ name }}")),
            after_missed_call: Some(template("We missed you, {{ first_name }}")),
        },
        ..Playbook::with_defaults("speed-to-lead")
    }
}

fn create(email: Option<&str>, consent: Consent) -> OppDecision {
    let input = OppInput::Create {
        id: Uuid::from_u128(9),
        external_id: "crm-9".into(),
        contact: Contact {
            name: "Ana Lima".into(),
            phone: Some("+14155550100".into()),
            email: email.map(str::to_owned),
            timezone: Some("America/Los_Angeles".into()),
            consent,
        },
        playbook: "speed-to-lead".into(),
        sla: None,
        assignee: None,
        team: None,
        history: Default::default(),
    };
    apply(None, input, t(0), &pb(), &Rules::federal_only()).unwrap()
}

fn all() -> Consent {
    Consent {
        voice: true,
        sms: true,
        email: true,
    }
}

fn run(state: &Opportunity, input: OppInput, at: i64) -> OppDecision {
    apply(Some(state), input, t(at), &pb(), &Rules::federal_only()).unwrap()
}

fn has(d: &OppDecision, kind: TimelineKind) -> bool {
    d.timeline.iter().any(|e| e.kind == kind)
}

fn skipped_reason(d: &OppDecision) -> Option<String> {
    d.timeline
        .iter()
        .find(|e| e.kind == TimelineKind::EmailSkipped)
        .map(|e| e.data["reason"].as_str().unwrap_or_default().to_owned())
}

fn missed(opp: &Opportunity, at: i64) -> OppDecision {
    let call_id = opp.active_call.expect("a call in progress");
    let result = CallResult::NoAnswer;
    run(opp, OppInput::CallFinished { call_id, result }, at)
}

fn texted(d: &OppDecision) -> bool {
    d.effects
        .iter()
        .any(|e| matches!(e, OppEffect::SendSms { .. }))
}

#[test]
fn a_consenting_lead_gets_the_first_touch_email_with_the_call() {
    let d = create(Some("ana@x.test"), all());
    assert_eq!(
        emails(&d),
        [(
            "ana@x.test".to_owned(),
            "Welcome Ana Lima".to_owned(),
            EmailStep::FirstTouch
        )]
    );
    assert!(d
        .effects
        .iter()
        .any(|e| matches!(e, OppEffect::StartCall { .. })));
    let sent = d
        .timeline
        .iter()
        .find(|e| e.kind == TimelineKind::EffectSent && e.data["effect"] == "send_email")
        .unwrap();
    assert_eq!(sent.data["body"], "Hi Ana, about crm-9.");
    assert_eq!(d.state.email.sent, 1);
    // Ids are derived: a replay names the same email.
    let again = create(Some("ana@x.test"), all());
    assert_eq!(again.effects, d.effects);
}

#[test]
fn the_gate_skips_without_consent_or_address_and_says_why() {
    let d = create(
        Some("ana@x.test"),
        Consent {
            email: false,
            ..all()
        },
    );
    assert!(emails(&d).is_empty());
    assert_eq!(skipped_reason(&d).as_deref(), Some("no_consent"));
    let d = create(None, all());
    assert!(emails(&d).is_empty());
    assert_eq!(skipped_reason(&d).as_deref(), Some("no_address"));
    // No [email] in the playbook: nothing is said at all.
    let plain = Playbook::with_defaults("speed-to-lead");
    let input = OppInput::Create {
        id: Uuid::from_u128(10),
        external_id: "crm-10".into(),
        contact: create(Some("ana@x.test"), all()).state.contact,
        playbook: "speed-to-lead".into(),
        sla: None,
        assignee: None,
        team: None,
        history: Default::default(),
    };
    let d = apply(None, input, t(0), &plain, &Rules::federal_only()).unwrap();
    assert!(emails(&d).is_empty() && !has(&d, TimelineKind::EmailSkipped));
}

#[test]
fn a_bad_address_is_refused_by_field() {
    let input = OppInput::Create {
        id: Uuid::from_u128(11),
        external_id: "crm-11".into(),
        contact: Contact {
            email: Some("ana@".into()),
            ..create(None, all()).state.contact
        },
        playbook: "speed-to-lead".into(),
        sla: None,
        assignee: None,
        team: None,
        history: Default::default(),
    };
    let err = apply(None, input, t(0), &pb(), &Rules::federal_only()).unwrap_err();
    assert!(
        matches!(
            err,
            Rejection::InvalidField {
                field: "contact.email",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn an_unsubscribe_stops_email_only_and_is_idempotent() {
    let opp = create(Some("ana@x.test"), all()).state;
    let address = "ana@x.test".to_owned();
    let d = run(
        &opp,
        OppInput::EmailUnsubscribed {
            address: address.clone(),
            via: UnsubscribeVia::OneClick,
        },
        5,
    );
    assert!(d.state.email.unsubscribed);
    assert!(has(&d, TimelineKind::EmailUnsubscribed));
    assert_eq!(d.state.stage, opp.stage, "the stage is untouched");
    assert!(d.effects.is_empty() && d.timers.is_empty());
    // A complaint after the click changes nothing more.
    let via = UnsubscribeVia::Complaint;
    let again = run(&d.state, OppInput::EmailUnsubscribed { address, via }, 6);
    assert!(again.timeline.is_empty() && again.state == d.state);
    // The missed call's text and retry go on; the email does not.
    let after = missed(&d.state, 30);
    assert!(texted(&after), "{:?}", after.effects);
    assert!(emails(&after).is_empty());
    assert_eq!(skipped_reason(&after).as_deref(), Some("unsubscribed"));
    assert!(after.timers.iter().any(|op| matches!(
        op,
        TimerOp::Set {
            name: OppTimer::RetryCall,
            ..
        }
    )));
}

#[test]
fn a_hard_bounce_marks_the_address_invalid_and_the_cadence_goes_on() {
    let d = create(Some("ana@x.test"), all());
    let Some(OppEffect::SendEmail { email_id, .. }) = d
        .effects
        .iter()
        .find(|e| matches!(e, OppEffect::SendEmail { .. }))
        .cloned()
    else {
        panic!("no email");
    };
    let bounced = run(
        &d.state,
        OppInput::EmailBounced {
            email_id,
            address: "ana@x.test".into(),
            code: 550,
            reason: "5.1.1 no such user".into(),
        },
        5,
    );
    assert!(has(&bounced, TimelineKind::EmailBounced));
    assert_eq!(bounced.state.email.bounced.as_deref(), Some("ana@x.test"));
    assert_eq!(bounced.state.stage, Stage::Contacting);
    let after = missed(&bounced.state, 30);
    assert!(emails(&after).is_empty());
    assert_eq!(skipped_reason(&after).as_deref(), Some("address_invalid"));
    assert!(texted(&after));
    // A missed call with a good address sends the follow-up email.
    let ok = missed(&d.state, 30);
    assert_eq!(emails(&ok)[0].2, EmailStep::AfterMissedCall);
    assert_eq!(emails(&ok)[0].1, "We missed you, Ana");
    assert_eq!(ok.state.email.sent, 2);
}

#[test]
fn a_stop_closes_email_too_and_results_are_recorded() {
    let opp = create(Some("ana@x.test"), all()).state;
    let stopped = run(
        &opp,
        OppInput::Replied {
            body: "STOP".into(),
        },
        5,
    )
    .state;
    let d = run(
        &stopped,
        OppInput::EmailNotSent {
            email_id: Uuid::from_u128(1),
            why: EmailFailure::NoPostalAddress,
            detail: String::new(),
        },
        6,
    );
    let e = &d.timeline[0];
    assert_eq!(e.kind, TimelineKind::EmailStatus);
    assert_eq!(e.data["why"], "no_postal_address");
    assert!(e.reason.contains("postal address"), "{}", e.reason);
    let d = run(
        &opp,
        OppInput::EmailAccepted {
            email_id: Uuid::from_u128(1),
            answer: "queued as 1".into(),
        },
        6,
    );
    assert_eq!(d.timeline[0].data["event"], "sent");
}

#[test]
fn a_takeover_stops_the_playbooks_emails_until_the_hand_back() {
    let text = OppInput::SendText {
        body: "Hi Ana, Bo here".into(),
        by: "bo".into(),
    };
    let taken = run(&create(Some("ana@x.test"), all()).state, text, 10);
    let over = taken
        .timeline
        .iter()
        .find(|e| e.kind == TimelineKind::TakenOver)
        .expect("taken over");
    assert_eq!(over.data["emails_stop"], true);
    // The missed call's follow-up email is skipped and says why, like the text beside it.
    let after = missed(&taken.state, 30);
    assert!(emails(&after).is_empty(), "{:?}", after.effects);
    assert!(!texted(&after));
    assert_eq!(skipped_reason(&after).as_deref(), Some("taken_over"));
    let skipped = after
        .timeline
        .iter()
        .find(|e| e.kind == TimelineKind::EmailSkipped)
        .unwrap();
    assert_eq!(skipped.data["takeover"], "bo");
    assert_eq!(after.state.email.sent, 1, "only the first touch went");
    // Handed back, the playbook's next email goes again (and its text).
    let back = OppInput::HandBack {
        by: "olga".into(),
        reason: None,
    };
    let returned = run(&taken.state, back, 20);
    assert!(returned.state.takeover.is_none());
    let after = missed(&returned.state, 30);
    assert_eq!(emails(&after)[0].2, EmailStep::AfterMissedCall);
    assert!(texted(&after));
    assert!(!has(&after, TimelineKind::EmailSkipped));
}

/// A lead with an email and no phone: its playbook emails it, and its calls and texts are
/// denied by the gate and said so; a lead with neither is refused by field.
#[test]
fn an_email_only_lead_gets_emails_and_no_calls_or_texts() {
    let input = |phone: Option<&str>, email: Option<&str>| OppInput::Create {
        id: Uuid::from_u128(9),
        external_id: "crm-9".into(),
        contact: Contact {
            name: "Ana Lima".into(),
            phone: phone.map(str::to_owned),
            email: email.map(str::to_owned),
            timezone: Some("America/Los_Angeles".into()),
            consent: all(),
        },
        playbook: "speed-to-lead".into(),
        sla: None,
        assignee: None,
        team: None,
        history: Default::default(),
    };
    let d = apply(
        None,
        input(None, Some("ana@x.test")),
        t(0),
        &pb(),
        &Rules::federal_only(),
    )
    .unwrap();
    assert_eq!(emails(&d).len(), 1, "{:?}", d.effects);
    assert_eq!(emails(&d)[0].2, EmailStep::FirstTouch);
    assert!(
        !d.effects
            .iter()
            .any(|e| matches!(e, OppEffect::StartCall { .. } | OppEffect::SendSms { .. })),
        "{:?}",
        d.effects
    );
    assert_eq!(d.state.attempts, 0, "no call counted");
    let blocked = d
        .timeline
        .iter()
        .find(|e| e.kind == TimelineKind::ComplianceBlocked)
        .expect("the denied call is said");
    assert!(blocked.reason.contains("no phone"), "{}", blocked.reason);
    // The first-touch SLA still runs: someone must reach the lead.
    assert!(d.timers.iter().any(|op| matches!(
        op,
        TimerOp::Set {
            name: OppTimer::FirstTouchSla,
            ..
        }
    )));
    let err = apply(None, input(None, None), t(0), &pb(), &Rules::federal_only()).unwrap_err();
    assert!(
        matches!(
            err,
            Rejection::InvalidField {
                field: "contact.phone",
                ..
            }
        ),
        "{err:?}"
    );
}

fn reply(body: &str) -> OppInput {
    OppInput::EmailReceived {
        from: "ana@x.test".into(),
        subject: "Re: Welcome Ana Lima".into(),
        body: body.into(),
        message_id: Some("m1@mail.x.test".into()),
    }
}

#[test]
fn an_email_reply_is_on_the_thread_engages_and_asks_for_a_person_once() {
    let opp = create(Some("ana@x.test"), all()).state;
    let d = run(&opp, reply("Yes, call me at 3pm"), 60);
    let entry = d.timeline.iter().find(|e| e.kind == TimelineKind::Replied);
    let entry = entry.unwrap_or_else(|| panic!("no reply entry: {:?}", d.timeline));
    assert_eq!(entry.data["channel"], "email");
    assert_eq!(entry.data["subject"], "Re: Welcome Ana Lima");
    assert_eq!(entry.data["body"], "Yes, call me at 3pm");
    assert_eq!(d.state.stage, Stage::Engaged);
    assert!(d.timers.iter().any(|op| matches!(
        op,
        TimerOp::Set {
            name: OppTimer::ResponseSla,
            ..
        }
    )));
    let notices = |d: &OppDecision| {
        d.effects
            .iter()
            .filter(|e| matches!(e, OppEffect::NotifyReply { .. }))
            .count()
    };
    assert_eq!(notices(&d), 1, "{:?}", d.effects);
    // The same quarter hour asks no second time; it is still on the thread.
    let again = run(&d.state, reply("Or at 4"), 120);
    assert_eq!(notices(&again), 0);
    assert!(has(&again, TimelineKind::Replied));
    // Words that may ask to stop contact go to a person, whatever the channel.
    let stop = run(&opp, reply("please stop contacting me"), 60);
    assert!(
        has(&stop, TimelineKind::SlaEscalated),
        "{:?}",
        stop.timeline
    );
    // A reply to a closed opportunity is recorded and changes nothing else.
    let closed = Opportunity {
        stage: Stage::Lost,
        ..opp.clone()
    };
    let late = run(&closed, reply("hello?"), 60);
    assert!(has(&late, TimelineKind::Replied) && late.effects.is_empty());
    assert_eq!(late.state.stage, Stage::Lost);
}

#[test]
fn a_late_bounce_marks_the_address_invalid_once_and_a_complaint_unsubscribes() {
    let opp = create(Some("ana@x.test"), all()).state;
    let returned = || OppInput::EmailReturned {
        address: "ana@x.test".into(),
        status: "5.1.1".into(),
        reason: "550 5.1.1 user unknown".into(),
    };
    let d = run(&opp, returned(), 60);
    assert_eq!(d.state.email.bounced.as_deref(), Some("ana@x.test"));
    let entry = d
        .timeline
        .iter()
        .find(|e| e.kind == TimelineKind::EmailBounced);
    assert_eq!(
        entry.map(|e| e.data["status"].clone()),
        Some(serde_json::json!("5.1.1"))
    );
    assert!(run(&d.state, returned(), 61).timeline.is_empty());
    assert_eq!(
        skipped_reason(&missed(&d.state, 90)).as_deref(),
        Some("address_invalid")
    );
    let via = UnsubscribeVia::Complaint;
    let address = "ana@x.test".to_owned();
    let spam = run(&opp, OppInput::EmailUnsubscribed { address, via }, 60);
    assert!(spam.state.email.unsubscribed);
    let entry = spam
        .timeline
        .iter()
        .find(|e| e.kind == TimelineKind::EmailUnsubscribed);
    assert_eq!(
        entry.map(|e| e.data["via"].clone()),
        Some(serde_json::json!("complaint"))
    );
    // Written before there was a `via`: a one-click unsubscribe.
    let old: OppInput = serde_json::from_value(serde_json::json!(
        {"type": "email_unsubscribed", "address": "ana@x.test"}))
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        old,
        OppInput::EmailUnsubscribed {
            via: UnsubscribeVia::OneClick,
            ..
        }
    ));
}
