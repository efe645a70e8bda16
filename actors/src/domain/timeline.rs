//! The output shape shared by every domain state machine: operator-facing
//! timeline events and timer operations for the host to schedule.

use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

/// Why something happened, shown to operators.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    System,
    Playbook,
    Operator(String),
    Channel,
    Contact,
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::System => f.write_str("system"),
            Cause::Playbook => f.write_str("playbook"),
            Cause::Operator(name) => write!(f, "operator:{name}"),
            Cause::Channel => f.write_str("channel"),
            Cause::Contact => f.write_str("contact"),
        }
    }
}

named_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    pub enum TimelineKind {
        Created = "created",
        StageChanged = "stage_changed",
        SlaEscalated = "sla_escalated",
        Paused = "paused",
        Resumed = "resumed",
        Reassigned = "reassigned",
        EffectSent = "effect_sent",
        CallStatus = "call_status",
        CallPlaced = "call_placed",
        CallOutcome = "call_outcome",
        TimerHeld = "timer_held",
        /// An operator cancelled an armed timer.
        TimerCancelled = "timer_cancelled",
        Rejected = "rejected",
        Replied = "replied",
        AttemptsExhausted = "attempts_exhausted",
        /// The compliance gate (or the dispatcher's do-not-call check)
        /// deferred or denied an outbound call or text.
        ComplianceBlocked = "compliance_blocked",
        OptedOut = "opted_out",
        OptedIn = "opted_in",
        HelpRequested = "help_requested",
        /// The carrier sent an outbound text, delivered it, or failed it for good (with its
        /// error code); or refused it (`data.status = refused`).
        MessageStatus = "message_status",
        /// The carrier's lookup reported the contact's line type (or failed to).
        LineType = "line_type",
        /// A marketing text was not sent: the line takes no texts (a landline).
        SmsSkipped = "sms_skipped",
        /// The call flow: reps rung, a rep picking up, the conversation with its rep and talk
        /// time, or an answered lead that reached nobody (`data.event` says which).
        Conversation = "conversation",
        /// People were sent an escalation's notice: whom, by which channels, and why.
        Notified = "notified",
        /// A live call was hung up (or its hang-up is owed until the dial returns), and why:
        /// the lead opted out, the number went on the do-not-call list, the opportunity closed
        /// or was paused with hang-up, or the provider reported a call we had closed.
        HangUp = "hang_up",
        /// The contact came back as another lead: merged into this opportunity, or this one
        /// was skipped as a duplicate of the live one (one person, one cadence).
        ContactReturned = "contact_returned",
        /// A human wrote to the lead by hand: the playbook's automatic texts and emails stop.
        TakenOver = "taken_over",
        /// An operator handed a taken-over conversation back to the playbook.
        HandedBack = "handed_back",
        /// An email to the lead went out (`data.event = sent`: the server accepted it) or did
        /// not (`failed`, with why); the email itself is an `effect_sent` entry.
        EmailStatus = "email_status",
        /// A playbook email was not sent: the gate refused it (no address, no consent,
        /// unsubscribed, the address bounced) or its template did not render.
        EmailSkipped = "email_skipped",
        /// The lead's address hard-bounced (SMTP 5xx): marked invalid, never mailed again.
        EmailBounced = "email_bounced",
        /// The lead unsubscribed from email (one-click); calls and texts go on.
        EmailUnsubscribed = "email_unsubscribed",
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEvent {
    pub kind: TimelineKind,
    pub cause: Cause,
    /// Human-readable sentence for operators.
    pub reason: String,
    /// Structured details, e.g. `{"from":"new","to":"contacting"}`.
    pub data: serde_json::Value,
}

impl TimelineEvent {
    pub fn new(
        kind: TimelineKind,
        cause: Cause,
        reason: impl Into<String>,
        data: serde_json::Value,
    ) -> Self {
        Self {
            kind,
            cause,
            reason: reason.into(),
            data,
        }
    }
}

/// A timer instruction for the host. Timers are keyed by name, so setting an
/// already armed timer re-arms it and clearing an unarmed one is harmless.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum TimerOp<N> {
    Set { name: N, at: DateTime<Utc> },
    Clear { name: N },
}

/// `now + seconds`, saturating at the largest representable instant so that
/// absurd durations from configuration or API overrides can never panic a
/// transition.
pub fn deadline(now: DateTime<Utc>, seconds: u64) -> DateTime<Utc> {
    i64::try_from(seconds)
        .ok()
        .and_then(TimeDelta::try_seconds)
        .and_then(|delta| now.checked_add_signed(delta))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cause_serializes_tagged_and_displays_compactly() {
        assert_eq!(
            serde_json::to_value(Cause::System).unwrap(),
            json!("system")
        );
        let op = Cause::Operator("ana".into());
        assert_eq!(
            serde_json::to_value(&op).unwrap(),
            json!({"operator": "ana"})
        );
        assert_eq!(op.to_string(), "operator:ana");
        let back: Cause = serde_json::from_value(json!({"operator": "ana"})).unwrap();
        assert_eq!(back, op);
        assert_eq!(Cause::Contact.to_string(), "contact");
    }

    #[test]
    fn timeline_kind_as_str_matches_serde() {
        assert_eq!(TimelineKind::ALL.len(), 32);
        for kind in TimelineKind::ALL {
            assert_eq!(serde_json::to_value(kind).unwrap(), json!(kind.as_str()));
        }
        assert_eq!(
            TimelineKind::AttemptsExhausted.as_str(),
            "attempts_exhausted"
        );
    }

    #[test]
    fn timer_op_serializes_with_op_tag() {
        let at = DateTime::<Utc>::UNIX_EPOCH;
        let op: TimerOp<String> = TimerOp::Set {
            name: "x".into(),
            at,
        };
        let v = serde_json::to_value(&op).unwrap();
        assert_eq!(v["op"], json!("set"));
        assert_eq!(v["name"], json!("x"));
    }

    #[test]
    fn deadline_saturates_instead_of_panicking() {
        let now = DateTime::<Utc>::UNIX_EPOCH;
        assert_eq!(deadline(now, 300), now + TimeDelta::seconds(300));
        assert_eq!(deadline(now, u64::MAX), DateTime::<Utc>::MAX_UTC);
        assert_eq!(deadline(now, i64::MAX as u64), DateTime::<Utc>::MAX_UTC);
    }
}
