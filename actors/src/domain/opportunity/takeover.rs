//! Human takeover: an operator or rep texts (or emails, `email::write_email`) the lead by
//! hand (`OppInput::SendText`), and from
//! that text on the playbook's automatic texts and emails stop (`email::try_email`), so the
//! lead does not get a rep's sentence followed by a canned follow-up. The cadence's calls are
//! left to the playbook: a call is how a rep reaches the lead too, and stopping it is a
//! playbook's choice (`takeover_stops_calls`). The compliance replies owed to the contact (the
//! one opt-out confirmation, the answer to HELP) still go out. An operator hands the conversation back
//! (`OppInput::HandBack`); nothing skipped meanwhile is replayed. ADR 0048.
//!
//! A human's text passes the same gate as a marketing text (consent, opt-out, calling hours in
//! every zone of the contact, frequency caps, a line that takes texts) and is counted like one;
//! the dispatcher checks the do-not-call list at send time as for every marketing text. Like
//! click to call, a text the gate would defer is refused with the gate's reason rather than
//! queued: the person asked for now.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::cadence::record;
use super::{with_reason, OppTimer, Rejection, Step};
use crate::domain::compliance::{Channel, Decision, Purpose};
use crate::domain::timeline::{Cause, TimelineKind};

/// The longest text a person may send by hand, in characters (the carrier's limit for one
/// concatenated message).
pub const MAX_TEXT_CHARS: usize = 1600;

/// Who took the conversation over, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Takeover {
    pub by: String,
    pub since: DateTime<Utc>,
}

impl Step<'_> {
    pub(super) fn send_text(&mut self, body: String, by: String) -> Result<(), Rejection> {
        const ACTION: &str = "texting the lead";
        let chars = body.chars().count();
        if body.trim().is_empty() || chars > MAX_TEXT_CHARS {
            return Err(Rejection::InvalidField {
                field: "body",
                reason: format!("must be 1 to {MAX_TEXT_CHARS} characters"),
            });
        }
        if by.trim().is_empty() {
            return Err(Rejection::InvalidField {
                field: "by",
                reason: "must not be empty".to_owned(),
            });
        }
        // A paused opportunity's outbox is held: the text would leave at some later resume.
        self.open_for(ACTION)?;
        if let Some(t) = self.opp.line_type.filter(|t| !t.takes_texts()) {
            return Err(Rejection::SmsRefused {
                reason: format!("the number is a {t}, which takes no texts"),
            });
        }
        match self.gate(Channel::Sms, Purpose::Marketing) {
            Decision::Allow => {}
            refused => {
                return Err(Rejection::SmsRefused {
                    reason: refused.describe(),
                })
            }
        }
        self.take_over(&by);
        record(&mut self.opp.sms_sent, self.now);
        let why = format!("written by {by}");
        self.send_sms_by(body, Purpose::Marketing, Some(by), &why);
        // A person answered the lead: that is the response the response SLA waits for.
        self.clear(OppTimer::ResponseSla);
        Ok(())
    }

    /// The first human text takes over; a later one (by anyone) changes nothing. A text the
    /// playbook deferred is dropped: it would be skipped when due anyway.
    pub(super) fn take_over(&mut self, by: &str) {
        if self.opp.takeover.is_some() {
            return;
        }
        self.opp.takeover = Some(super::Takeover {
            by: by.to_owned(),
            since: self.now,
        });
        if self.opp.pending_sms.is_some() {
            self.clear(OppTimer::SendSms);
        }
        let stops_calls = self.pb.takeover_stops_calls;
        if stops_calls {
            self.clear(OppTimer::RetryCall);
        }
        let text = if stops_calls {
            format!("{by} took the conversation over: the playbook's texts, emails and calls stop")
        } else {
            format!(
                "{by} took the conversation over: the playbook's texts and emails stop, its calls go on"
            )
        };
        let data = json!({ "by": by, "texts_stop": true, "emails_stop": true,
            "calls_stop": stops_calls });
        let cause = Cause::Operator(by.to_owned());
        self.event(TimelineKind::TakenOver, cause, text, data);
    }

    pub(super) fn hand_back(
        &mut self,
        by: String,
        reason: Option<String>,
    ) -> Result<(), Rejection> {
        let Some(taken) = self.opp.takeover.take() else {
            return Err(Rejection::NotTakenOver);
        };
        let text = format!(
            "{by} handed the conversation back to the playbook (taken over by {})",
            taken.by
        );
        let text = with_reason(text, reason.as_deref());
        let data = json!({ "taken_over_by": taken.by, "since": taken.since });
        self.event(TimelineKind::HandedBack, Cause::Operator(by), text, data);
        // The playbook resumes from its next step; calls a takeover stopped resume too.
        if self.pb.takeover_stops_calls && self.can_retry() {
            self.set(OppTimer::RetryCall, self.pb.retry_delay_seconds);
        }
        Ok(())
    }

    /// An automatic text not sent because a human has the conversation.
    pub(super) fn skipped_for_takeover(&mut self, why: &str) {
        let by = self.opp.takeover.as_ref().map(|t| t.by.clone());
        let who = by.as_deref().unwrap_or("a person");
        let text = format!("sms skipped ({why}): {who} has taken the conversation over");
        let data = json!({ "channel": "sms", "takeover": by });
        self.event(TimelineKind::SmsSkipped, Cause::Playbook, text, data);
    }
}
