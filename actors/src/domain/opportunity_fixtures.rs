//! What the opportunity's focused test suites share: one instant to count from, the default
//! playbook, a created opportunity (Ana, a Los Angeles number, voice consent) and one step.

use chrono::{TimeDelta, TimeZone};

use super::*;
use crate::domain::compliance::Rules;

/// Seconds after a Wednesday noon in Los Angeles (inside every calling window).
pub(super) fn t(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 8, 20, 0, 0).unwrap() + TimeDelta::seconds(seconds)
}

pub(super) fn pb() -> Playbook {
    Playbook::with_defaults("speed-to-lead")
}

/// Created at `t(0)`, with sms consent as given and bound to `team`; its first call placed.
pub(super) fn created_with(sms: bool, team: Option<&str>) -> Opportunity {
    let input = OppInput::Create {
        id: Uuid::from_u128(7),
        external_id: "ghl-7".into(),
        contact: Contact {
            name: "Ana".into(),
            phone: Some("+14155550100".into()),
            email: None,
            timezone: Some("America/Los_Angeles".into()),
            consent: Consent {
                voice: true,
                sms,
                email: false,
            },
        },
        playbook: "speed-to-lead".into(),
        sla: None,
        assignee: None,
        team: team.map(str::to_owned),
        history: Default::default(),
    };
    apply(None, input, t(0), &pb(), &Rules::federal_only())
        .unwrap()
        .state
}

/// [`created_with`] sms consent and no team.
pub(super) fn created() -> Opportunity {
    created_with(true, None)
}

/// `input` applied at `t(at)`.
pub(super) fn run(state: &Opportunity, input: OppInput, at: i64) -> OppDecision {
    apply(Some(state), input, t(at), &pb(), &Rules::federal_only()).unwrap()
}

/// The emails a decision sends: address, subject and step.
pub(super) fn emails(d: &OppDecision) -> Vec<(String, String, crate::domain::playbook::EmailStep)> {
    d.effects
        .iter()
        .filter_map(|e| match e {
            OppEffect::SendEmail {
                to, subject, step, ..
            } => Some((to.clone(), subject.clone(), *step)),
            _ => None,
        })
        .collect()
}
