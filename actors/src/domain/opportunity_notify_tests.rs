//! An escalation's notice fans out: one SMS and one email effect per person the dispatcher
//! found, and a `notified` entry naming whom and how.

use chrono::TimeZone;
use serde_json::json;

use super::*;
use crate::domain::compliance::Rules;
use crate::domain::timeline::TimelineKind;

fn created() -> Opportunity {
    let input = OppInput::Create {
        id: Uuid::from_u128(9),
        external_id: "ghl-9".into(),
        contact: Contact {
            name: "Ana Lima".into(),
            phone: Some("+14155550100".into()),
            email: None,
            timezone: Some("America/Los_Angeles".into()),
            consent: Consent::default(),
        },
        playbook: "speed-to-lead".into(),
        sla: None,
        assignee: None,
        team: Some("west".into()),
        history: Default::default(),
    };
    let at = Utc.with_ymd_and_hms(2025, 1, 8, 20, 0, 0).unwrap();
    let pb = Playbook::with_defaults("speed-to-lead");
    apply(None, input, at, &pb, &Rules::federal_only())
        .unwrap()
        .state
}

fn notify(recipients: Vec<Recipient>) -> OppDecision {
    let opp = created();
    let at = Utc.with_ymd_and_hms(2025, 1, 8, 20, 5, 0).unwrap();
    let pb = Playbook::with_defaults("speed-to-lead");
    let input = OppInput::NotifyPeople {
        queue: "escalations:west".into(),
        reason: "nobody took the call".into(),
        recipients,
    };
    apply(Some(&opp), input, at, &pb, &Rules::federal_only()).unwrap()
}

fn person(name: &str, phone: Option<&str>, email: Option<&str>) -> Recipient {
    Recipient {
        name: name.into(),
        phone: phone.map(str::to_owned),
        email: email.map(str::to_owned),
    }
}

#[test]
fn each_person_gets_one_effect_per_channel_and_the_timeline_says_so() {
    let d = notify(vec![
        person("ana", Some("+14155550201"), Some("ana@acme.test")),
        person("bo", Some("+14155550202"), None),
        person("cy", None, None),
    ]);
    let sms = |to: &str, who: &str| OppEffect::NotifySms {
        to: to.into(),
        recipient: who.into(),
        lead: "Ana Lima".into(),
        reason: "nobody took the call".into(),
    };
    assert_eq!(
        d.effects,
        [
            sms("+14155550201", "ana"),
            OppEffect::NotifyEmail {
                to: "ana@acme.test".into(),
                recipient: "ana".into(),
                lead: "Ana Lima".into(),
                reason: "nobody took the call".into(),
            },
            sms("+14155550202", "bo"),
        ]
    );
    assert_eq!(d.timeline.len(), 1);
    let entry = &d.timeline[0];
    assert_eq!(entry.kind, TimelineKind::Notified);
    assert_eq!(
        entry.reason,
        "escalation notice to ana (sms, email), bo (sms)"
    );
    assert_eq!(
        entry.data["recipients"],
        json!([{"name": "ana", "via": ["sms", "email"]}, {"name": "bo", "via": ["sms"]}])
    );
    assert_eq!(entry.data["reason"], "nobody took the call");
    // The notice changes nothing else about the opportunity.
    assert_eq!(d.state.stage, created().stage);
    assert!(d.timers.is_empty());
}

#[test]
fn nobody_to_tell_is_recorded_and_sends_nothing() {
    let d = notify(vec![]);
    assert!(d.effects.is_empty());
    assert_eq!(d.timeline.len(), 1);
    assert_eq!(d.timeline[0].kind, TimelineKind::Notified);
    assert!(
        d.timeline[0].reason.starts_with("nobody to notify"),
        "{}",
        d.timeline[0].reason
    );
    assert_eq!(d.timeline[0].data["recipients"], json!([]));
}

#[test]
fn a_notice_that_failed_is_said_on_the_timeline() {
    let opp = created();
    let at = Utc.with_ymd_and_hms(2025, 1, 8, 20, 6, 0).unwrap();
    let pb = Playbook::with_defaults("speed-to-lead");
    let input = OppInput::NoticeFailed {
        recipient: "ana".into(),
        via: NoticeChannel::Email,
        reason: "550 mailbox unavailable".into(),
    };
    let d = apply(Some(&opp), input, at, &pb, &Rules::federal_only()).unwrap();
    assert!(d.effects.is_empty());
    assert_eq!(d.timeline.len(), 1);
    assert_eq!(d.timeline[0].kind, TimelineKind::Notified);
    assert_eq!(
        d.timeline[0].reason,
        "escalation notice to ana by email failed: 550 mailbox unavailable"
    );
    assert_eq!(
        d.timeline[0].data,
        json!({"event": "failed", "recipient": "ana", "via": "email",
               "error": "550 mailbox unavailable"})
    );
}

fn replied(opp: &Opportunity, body: &str, minute: u32) -> OppDecision {
    let at = Utc.with_ymd_and_hms(2025, 1, 8, 20, minute, 0).unwrap();
    let pb = Playbook::with_defaults("speed-to-lead");
    let input = OppInput::Replied { body: body.into() };
    apply(Some(opp), input, at, &pb, &Rules::federal_only()).unwrap()
}

#[test]
fn a_reply_asks_the_dispatcher_to_tell_people_if_nobody_is_on_call() {
    let d = replied(&created(), "Can you call me\n after 6?", 5);
    let notices: Vec<_> = d
        .effects
        .iter()
        .filter_map(|e| match e {
            OppEffect::NotifyReply { queue, reason } => Some((queue.clone(), reason.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        notices,
        [(
            "escalations:west".to_owned(),
            "Ana Lima replied: \"Can you call me after 6?\"".to_owned()
        )]
    );
    assert!(!d.state.escalated, "a reply is not an escalation");
}

#[test]
fn a_long_reply_is_quoted_short_and_keywords_or_a_pause_tell_nobody() {
    let long = "x".repeat(500);
    let d = replied(&created(), &long, 5);
    let reason = d
        .effects
        .iter()
        .find_map(|e| match e {
            OppEffect::NotifyReply { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .unwrap();
    assert!(reason.ends_with("x…\""), "{reason}");
    assert!(reason.chars().count() < 160, "{reason}");

    let tells = |d: &OppDecision| {
        d.effects
            .iter()
            .any(|e| matches!(e, OppEffect::NotifyReply { .. }))
    };
    assert!(!tells(&replied(&created(), "HELP", 5)));
    assert!(!tells(&replied(&created(), "STOP", 5)));
    let mut paused = created();
    paused.paused = true;
    assert!(!tells(&replied(&paused, "call me", 5)));
    // A reply that may ask to stop escalates instead (which tells people anyway).
    let d = replied(&created(), "please stop texting me", 5);
    assert!(!tells(&d));
    assert!(d.state.escalated);
}
