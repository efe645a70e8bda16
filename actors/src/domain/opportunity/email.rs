//! Email as a lead channel: the playbook's emails (first touch, after a missed call) through
//! the email gate, and what the dispatcher and the lead report back: accepted, bounced, not
//! sent, unsubscribed. An unsubscribe or a bounce closes email only; calls and texts go on.

use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::step::{invalid, Step};
use super::{OppEffect, OppTimer, Rejection};
use crate::domain::compliance::{check_email, EmailBlock, EmailFacts};
use crate::domain::playbook::{EmailStep, LeadFields, MAX_BODY_CHARS, MAX_SUBJECT_CHARS};
use crate::domain::timeline::{Cause, TimelineKind};

/// The lead's email channel as the opportunity knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailChannel {
    /// The lead unsubscribed (one-click): no more email to them, whatever the address.
    #[serde(default)]
    pub unsubscribed: bool,
    /// The address that hard-bounced; a different address is tried afresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bounced: Option<String>,
    /// Emails asked for so far; names the next one (`email-{n}`).
    #[serde(default)]
    pub sent: u32,
}

impl EmailChannel {
    pub fn is_untouched(&self) -> bool {
        *self == Self::default()
    }
}

/// How the lead said "no more email".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnsubscribeVia {
    /// The link in the footer or the one-click `List-Unsubscribe-Post` (RFC 8058).
    #[default]
    OneClick,
    /// An email to the `mailto:` of `List-Unsubscribe` (our reply address, subject
    /// `unsubscribe`).
    Mailto,
    /// The lead's mailbox provider reported that they marked an email as spam (a feedback
    /// report): treated as an unsubscribe, as the mailbox providers require.
    Complaint,
}

impl UnsubscribeVia {
    fn describe(self) -> &'static str {
        match self {
            UnsubscribeVia::OneClick => "unsubscribed from email (one-click link)",
            UnsubscribeVia::Mailto => "unsubscribed from email (by email)",
            UnsubscribeVia::Complaint => "marked an email as spam, so is unsubscribed from email",
        }
    }
}

/// Why an email to the lead did not leave or will not arrive (not the address's fault).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmailFailure {
    /// The tenant has no postal address: CAN-SPAM wants one in every commercial email.
    NoPostalAddress,
    /// The tenant has no SMTP server (`PUT /v1/channels/smtp`).
    NoSmtpServer,
    /// No key to sign the unsubscribe link with (`NEURONX_SECRET_KEYS`).
    NoSigningKey,
    /// The address unsubscribed or bounced, on this opportunity while the email waited in the
    /// outbox, or on another of the tenant's (an opt-out is honoured for good).
    Suppressed,
    /// A permanent refusal that is about us (5.7.x policy or authentication), or the message
    /// itself: fix the sending; the address is kept.
    Refused,
    /// A permanent refusal widely treated as soft (5.2.2 mailbox full): not sent.
    MailboxFull,
    /// The server kept failing (no connection, 4xx) through every retry.
    GaveUp,
}

impl EmailFailure {
    pub fn describe(self) -> &'static str {
        match self {
            EmailFailure::NoPostalAddress => {
                "the tenant has no postal address for the footer (CAN-SPAM); set postal_address in /v1/settings"
            }
            EmailFailure::NoSmtpServer => "the tenant has no SMTP server",
            EmailFailure::NoSigningKey => "no key is configured to sign the unsubscribe link",
            EmailFailure::Suppressed => {
                "the address unsubscribed or bounced (here or on another of the tenant's leads)"
            }
            EmailFailure::Refused => "the SMTP server refused it (not the address's fault)",
            EmailFailure::MailboxFull => "the lead's mailbox is full",
            EmailFailure::GaveUp => "the SMTP server kept failing; given up",
        }
    }
}

/// A light check of a lead's address (the API checks it fully first): one `@` between two
/// non-empty parts, no spaces or control characters, at most 254 characters.
pub fn validate_address(address: &str) -> Result<(), Rejection> {
    let ok = address.len() <= 254
        && !address.chars().any(|c| c.is_whitespace() || c.is_control())
        && matches!(address.split_once('@'), Some((l, d)) if !l.is_empty() && !d.is_empty() && !d.contains('@'));
    if ok {
        Ok(())
    } else {
        Err(invalid("contact.email", "not an email address"))
    }
}

impl Step<'_> {
    /// The playbook's email for `step`, if it has one, the gate allows it and it renders. A
    /// refusal is said on the timeline (`email_skipped`) and changes nothing else: the cadence
    /// goes on.
    pub(super) fn try_email(&mut self, step: EmailStep, why: &str) {
        let Some(template) = self.pb.email.template(step) else {
            return;
        };
        if self.opp.stage.is_terminal() || self.opp.paused || self.opp.duplicate_of.is_some() {
            return;
        }
        // A human is writing to the lead (ADR 0048): a canned email after their words would
        // undo the takeover as surely as a canned text. Said, like the texts it skips.
        if let Some(taken) = &self.opp.takeover {
            let by = taken.by.clone();
            let text = format!(
                "{} email not sent: {by} has taken the conversation over",
                step.as_str()
            );
            let data = json!({ "step": step, "reason": "taken_over", "takeover": by });
            return self.event(TimelineKind::EmailSkipped, Cause::Playbook, text, data);
        }
        let to = match self.mailable() {
            Ok(to) => to,
            Err(block) => {
                let text = format!("{} email not sent: {}", step.as_str(), block.describe());
                let data = json!({ "step": step, "reason": block });
                return self.event(TimelineKind::EmailSkipped, Cause::System, text, data);
            }
        };
        let contact = &self.opp.contact;
        let phone = contact.phone.as_deref().unwrap_or_default();
        let fields = LeadFields::new(&contact.name, &to, phone, &self.opp.external_id);
        let rendered = match template.render(&fields) {
            Ok(r) => r,
            Err(e) => {
                let text = format!("{} email not sent: its template failed: {e}", step.as_str());
                let data = json!({ "step": step, "reason": "template", "error": e });
                return self.event(TimelineKind::EmailSkipped, Cause::System, text, data);
            }
        };
        self.queue_email(to, rendered.subject, rendered.body, step, None, why);
    }

    /// The lead's address, when the email gate allows mailing it.
    fn mailable(&self) -> Result<String, EmailBlock> {
        let address = self.opp.contact.email.as_deref();
        let facts = EmailFacts {
            address,
            consent: self.opp.contact.consent.email,
            opted_out: self.opp.opted_out,
            unsubscribed: self.opp.email.unsubscribed,
            address_invalid: address.is_some() && self.opp.email.bounced.as_deref() == address,
        };
        check_email(&facts)?;
        Ok(address.unwrap_or_default().to_owned())
    }

    /// The email effect and its timeline entry (`effect_sent`, `data.effect = send_email`),
    /// by the playbook or, with `by`, by a person.
    fn queue_email(
        &mut self,
        to: String,
        subject: String,
        body: String,
        step: EmailStep,
        by: Option<String>,
        why: &str,
    ) {
        self.opp.email.sent += 1;
        // Derived, not random: a replayed transition must name the same email.
        let n = self.opp.email.sent;
        let email_id = Uuid::new_v5(&self.opp.id, format!("email-{n}").as_bytes());
        let mut data = json!({ "effect": "send_email", "email_id": email_id, "step": step,
            "to": to, "subject": subject, "body": body });
        if let Some(by) = &by {
            data["by"] = json!(by);
        }
        self.effects.push(OppEffect::SendEmail {
            email_id,
            to,
            name: self.opp.contact.name.clone(),
            subject,
            body,
            step,
        });
        let text = format!("email to the lead ({why})");
        let cause = by.map_or(Cause::Playbook, Cause::Operator);
        self.event(TimelineKind::EffectSent, cause, text, data);
    }

    /// A person emails the lead now (`OppInput::WriteEmail`): refused, not deferred, when the
    /// opportunity is closed, paused or opted out or the email gate says no; the first such
    /// email takes the conversation over, and answers the response SLA.
    pub(super) fn write_email(
        &mut self,
        subject: String,
        body: String,
        by: String,
    ) -> Result<(), Rejection> {
        // One line: a line break in a subject would be a header injection.
        let subject = subject.split_whitespace().collect::<Vec<_>>().join(" ");
        if subject.is_empty() || subject.chars().count() > MAX_SUBJECT_CHARS {
            let reason = format!("must be 1 to {MAX_SUBJECT_CHARS} characters");
            return Err(Rejection::InvalidField {
                field: "subject",
                reason,
            });
        }
        if body.trim().is_empty() || body.chars().count() > MAX_BODY_CHARS {
            let reason = format!("must be 1 to {MAX_BODY_CHARS} characters");
            return Err(Rejection::InvalidField {
                field: "body",
                reason,
            });
        }
        if by.trim().is_empty() {
            let reason = "must not be empty".to_owned();
            return Err(Rejection::InvalidField {
                field: "by",
                reason,
            });
        }
        self.open_for("emailing the lead")?;
        let to = self.mailable().map_err(|block| Rejection::EmailRefused {
            reason: block.describe().to_owned(),
        })?;
        self.take_over(&by);
        let why = format!("written by {by}");
        self.queue_email(to, subject, body, EmailStep::ByHand, Some(by), &why);
        // A person answered the lead: that is the response the response SLA waits for.
        self.clear(OppTimer::ResponseSla);
        Ok(())
    }

    pub(super) fn email_accepted(&mut self, email_id: Uuid, answer: String) {
        let text = "the SMTP server accepted the email to the lead".to_owned();
        let data = json!({ "event": "sent", "email_id": email_id, "answer": answer });
        self.event(TimelineKind::EmailStatus, Cause::Channel, text, data);
    }

    /// A hard bounce: the address is marked invalid (later emails skip it); nothing else
    /// changes, so the calls and texts of the cadence go on.
    pub(super) fn email_bounced(
        &mut self,
        email_id: Uuid,
        address: String,
        code: u16,
        reason: String,
    ) {
        let text =
            format!("the email to {address} bounced ({code}); the address is marked invalid");
        let data = json!({ "email_id": email_id, "address": address, "code": code,
            "error": reason });
        self.opp.email.bounced = Some(address);
        self.event(TimelineKind::EmailBounced, Cause::Channel, text, data);
    }

    pub(super) fn email_not_sent(&mut self, email_id: Uuid, why: EmailFailure, detail: String) {
        let text = format!("the email to the lead was not sent: {}", why.describe());
        let data = json!({ "event": "failed", "email_id": email_id, "why": why,
            "error": detail });
        self.event(TimelineKind::EmailStatus, Cause::Channel, text, data);
    }

    /// Idempotent: a second click (or a complaint after it) changes nothing and writes nothing.
    pub(super) fn email_unsubscribed(&mut self, address: String, via: UnsubscribeVia) {
        if self.opp.email.unsubscribed {
            return;
        }
        self.opp.email.unsubscribed = true;
        let text = format!(
            "the lead {} ({address}); no more email, calls and texts go on",
            via.describe()
        );
        let data = json!({ "address": address, "via": via });
        self.event(TimelineKind::EmailUnsubscribed, Cause::Contact, text, data);
    }
}
