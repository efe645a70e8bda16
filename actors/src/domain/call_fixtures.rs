//! What the call's flow test suites share (the call flow and inbound calls): one instant to
//! count from, the default playbook, one step, and the call's conversation entries.

use chrono::{TimeDelta, TimeZone};

use super::*;
use crate::domain::timeline::TimelineKind;

pub(super) fn t(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, 12, 0, 0).unwrap() + TimeDelta::seconds(seconds)
}

pub(super) fn pb() -> Playbook {
    Playbook::with_defaults("speed-to-lead")
}

/// `input` applied to `call` five seconds in.
pub(super) fn run(call: &Call, input: CallInput) -> CallDecision {
    apply(Some(call), input, t(5), &pb()).unwrap()
}

/// The `event` of each conversation entry a step wrote.
pub(super) fn events(d: &CallDecision) -> Vec<String> {
    d.timeline
        .iter()
        .filter(|e| e.kind == TimelineKind::Conversation)
        .map(|e| e.data["event"].as_str().unwrap_or_default().to_owned())
        .collect()
}

pub(super) fn rung(reps: &[&str]) -> CallInput {
    CallInput::RepsRung {
        reps: reps.iter().map(|r| r.to_string()).collect(),
    }
}
