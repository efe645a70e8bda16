//! Telling people: an escalation's notice fans out to the people the dispatcher found (the
//! assignee, or the team's on-call reps), one effect per person and channel, so each message
//! leaves the outbox on its own and a retry of one never repeats another.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::step::Step;
use super::OppEffect;
use crate::domain::timeline::{Cause, TimelineKind};

/// How a notice reached (or failed to reach) a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeChannel {
    Sms,
    Email,
}

impl NoticeChannel {
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeChannel::Sms => "sms",
            NoticeChannel::Email => "email",
        }
    }
}

/// A person to tell, and where: an SMS to `phone`, an email to `email`, or both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    /// The principal's name.
    pub name: String,
    /// E.164.
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
}

impl Step<'_> {
    /// One `NotifySms` and one `NotifyEmail` per recipient that has a number or an address, and
    /// a `notified` entry naming whom and how. Nobody to tell is recorded too: a lead waiting
    /// with no one told is what an operator must see.
    pub(super) fn notify_people(
        &mut self,
        queue: String,
        reason: String,
        recipients: Vec<Recipient>,
    ) {
        let lead = self.opp.contact.name.clone();
        let mut told = Vec::new();
        for r in recipients {
            let mut via = Vec::new();
            if let Some(to) = r.phone.clone() {
                via.push("sms");
                self.effects.push(OppEffect::NotifySms {
                    to,
                    recipient: r.name.clone(),
                    lead: lead.clone(),
                    reason: reason.clone(),
                });
            }
            if let Some(to) = r.email.clone() {
                via.push("email");
                self.effects.push(OppEffect::NotifyEmail {
                    to,
                    recipient: r.name.clone(),
                    lead: lead.clone(),
                    reason: reason.clone(),
                });
            }
            if !via.is_empty() {
                told.push((r.name, via));
            }
        }
        let text = if told.is_empty() {
            format!(
                "nobody to notify of the escalation to {queue}: no rep with a phone or an email"
            )
        } else {
            let whom: Vec<String> = told
                .iter()
                .map(|(name, via)| format!("{name} ({})", via.join(", ")))
                .collect();
            format!("escalation notice to {}", whom.join(", "))
        };
        let recipients: Vec<_> = told
            .iter()
            .map(|(name, via)| json!({"name": name, "via": via}))
            .collect();
        let data = json!({ "event": "queued", "queue": queue, "reason": reason,
                           "recipients": recipients });
        self.event(TimelineKind::Notified, Cause::System, text, data);
    }

    /// A notice that will not arrive: said on the timeline, so nobody counts on it.
    pub(super) fn notice_failed(&mut self, recipient: String, via: NoticeChannel, reason: String) {
        let text = format!(
            "escalation notice to {recipient} by {} failed: {reason}",
            via.as_str()
        );
        let data =
            json!({ "event": "failed", "recipient": recipient, "via": via, "error": reason });
        self.event(TimelineKind::Notified, Cause::Channel, text, data);
    }
}
