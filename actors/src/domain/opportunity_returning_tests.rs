//! One person, one cadence (ADR 0046): a returning lead merged into the live opportunity, a
//! skipped duplicate that runs no cadence, and caps that count the earlier opportunity's
//! attempts to the same number.

use chrono::TimeDelta;

use super::fixtures::{created, pb, run, t};
use super::*;
use crate::domain::compliance::Rules;
use crate::domain::timeline::TimelineKind;

fn create(id: u128, external_id: &str, history: ContactHistory, rules: &Rules) -> OppDecision {
    let input = OppInput::Create {
        id: Uuid::from_u128(id),
        external_id: external_id.into(),
        contact: Contact {
            name: "Ana".into(),
            phone: Some("+14155550100".into()),
            email: None,
            timezone: Some("America/Los_Angeles".into()),
            consent: Consent {
                voice: true,
                sms: true,
                email: false,
            },
        },
        playbook: "speed-to-lead".into(),
        sla: None,
        assignee: None,
        team: None,
        history: Box::new(history),
    };
    apply(None, input, t(0), &pb(), rules).unwrap()
}

fn returned(external_id: &str, skipped_as: Option<Uuid>) -> OppInput {
    OppInput::ContactReturned {
        external_id: external_id.into(),
        skipped_as,
    }
}

#[test]
fn a_merged_lead_is_noted_once_and_changes_no_cadence() {
    let opp = created();
    let d = run(&opp, returned("ghl-8", None), 5);
    assert_eq!(d.timeline.len(), 1);
    assert_eq!(d.timeline[0].kind, TimelineKind::ContactReturned);
    assert_eq!(d.timeline[0].data["mode"], "merge");
    assert_eq!(d.timeline[0].data["external_id"], "ghl-8");
    assert!(d.effects.is_empty() && d.timers.is_empty());
    assert_eq!(d.state.returned, vec!["ghl-8".to_owned()]);
    assert_eq!(d.state.attempts, opp.attempts);

    // The same lead again (a retried create) adds nothing; the opportunity's own id neither.
    let again = run(&d.state, returned("ghl-8", None), 6);
    assert!(again.timeline.is_empty());
    assert_eq!(again.state.returned.len(), 1);
    let own = run(&d.state, returned("ghl-7", None), 7);
    assert!(own.timeline.is_empty());
}

#[test]
fn returning_leads_beyond_the_cap_are_still_on_the_timeline() {
    let mut opp = created();
    for n in 0..MAX_RETURNS + 2 {
        let d = run(&opp, returned(&format!("lead-{n}"), None), 5);
        assert_eq!(d.timeline.len(), 1, "lead {n}");
        opp = d.state;
    }
    assert_eq!(opp.returned.len(), MAX_RETURNS);
}

#[test]
fn a_skipped_duplicate_runs_no_cadence_and_tells_the_live_one() {
    let live = Uuid::from_u128(7);
    let history = ContactHistory {
        duplicate_of: Some(live),
        ..ContactHistory::default()
    };
    let d = create(8, "ghl-8", history, &Rules::federal_only());
    assert_eq!(d.reply, OppReply::Created);
    assert_eq!(d.state.duplicate_of, Some(live));
    assert_eq!(d.state.stage, Stage::New);
    assert_eq!(d.state.attempts, 0);
    assert!(d.timers.is_empty(), "{:?}", d.timers);
    assert_eq!(
        d.effects,
        vec![OppEffect::NoteReturn {
            opportunity_id: live,
            external_id: "ghl-8".into(),
        }]
    );
    let kinds: Vec<_> = d.timeline.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        vec![TimelineKind::Created, TimelineKind::ContactReturned]
    );

    // The live one, told, notes the duplicate with its id.
    let told = run(&created(), returned("ghl-8", Some(Uuid::from_u128(8))), 5);
    assert_eq!(told.timeline[0].data["mode"], "skip");
    assert_eq!(
        told.timeline[0].data["opportunity_id"],
        Uuid::from_u128(8).to_string()
    );
}

#[test]
fn the_caps_count_the_earlier_opportunitys_calls_to_the_number() {
    let mut rules = Rules::federal_only();
    rules.default.max_calls_per_24h = Some(2);
    // Two calls an hour ago and one two days ago (outside the window).
    let history = ContactHistory {
        calls: vec![
            t(0) - TimeDelta::days(2),
            t(0) - TimeDelta::hours(1),
            t(0) - TimeDelta::minutes(50),
        ],
        ..ContactHistory::default()
    };
    let d = create(9, "ghl-9", history, &rules);
    assert_eq!(
        d.state.call_attempts.len(),
        2,
        "only those inside the window"
    );
    assert_eq!(d.state.attempts, 0, "the cap deferred the first call");
    assert!(
        d.timeline
            .iter()
            .any(|e| e.kind == TimelineKind::ComplianceBlocked),
        "{:?}",
        d.timeline
    );

    // Without the history the same create dials at once.
    let fresh = create(10, "ghl-10", ContactHistory::default(), &rules);
    assert_eq!(fresh.state.attempts, 1);
}
