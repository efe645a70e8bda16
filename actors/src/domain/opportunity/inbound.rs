//! What the contact and the channels tell us: inbound texts (keywords and
//! conversation), dispatch-time blocks and delivery statuses.

use chrono::TimeDelta;
use serde_json::json;

use super::{OppEffect, OppTimer, Stage, Step};
use crate::domain::compliance::{self, Channel, Decision, Keyword, Purpose};
use crate::domain::text::one_line;
use crate::domain::timeline::{Cause, TimelineKind};

impl Step<'_> {
    /// STOP opts out, START opts back in (only when opted out: a plain "yes"
    /// from a subscribed lead is a conversation), HELP gets the help text;
    /// anything else engages the lead.
    pub(super) fn replied(&mut self, body: String) {
        let keyword = compliance::classify_reply(&body);
        let text = "the lead replied by sms".to_owned();
        let data = json!({ "body": body, "keyword": keyword });
        self.event(TimelineKind::Replied, Cause::Contact, text, data);
        match keyword {
            Some(Keyword::OptOut) => self.opt_out(),
            Some(Keyword::OptIn) if self.opp.opted_out => self.opt_in(),
            Some(Keyword::Help) => self.help(),
            Some(Keyword::OptIn) | None => self.conversation(&body),
        }
    }

    pub(super) fn conversation(&mut self, body: &str) {
        if self.opp.stage.is_terminal() {
            return;
        }
        self.mark_reached();
        if self.opp.stage == Stage::Contacting {
            let text = "the lead replied".to_owned();
            self.move_stage(Stage::Engaged, Cause::Contact, text);
        }
        self.set(OppTimer::ResponseSla, self.pb.response_sla_seconds);
        // "please stop texting me" is not a keyword but may be a revocation
        // (FCC: any reasonable means), so a human must read it. A paused
        // opportunity notifies no one; its response SLA is held and
        // escalates on resume.
        if self.opp.paused {
            return;
        }
        if compliance::mentions_opt_out(body) {
            let text =
                "the lead's reply may ask to stop contact; a human must review it".to_owned();
            self.escalate(Cause::Contact, text, None);
            return;
        }
        // A reply after hours must not wait for the morning unseen: the dispatcher tells the
        // assignee (else the team's reps) when nobody is on call; in hours it tells no one.
        // A lead texting on in the same quarter hour asks once.
        let quiet = TimeDelta::seconds(REPLY_NOTICE_QUIET_SECONDS);
        if self
            .opp
            .reply_noticed_at
            .is_some_and(|at| self.now < at + quiet)
        {
            return;
        }
        self.opp.reply_noticed_at = Some(self.now);
        self.effects.push(OppEffect::NotifyReply {
            queue: self.queue(),
            reason: format!(
                "{} replied: \"{}\"",
                self.opp.contact.name,
                one_line(body, REPLY_EXCERPT_CHARS)
            ),
        });
    }

    /// Honoured at once and on every channel: the opportunity moves to
    /// do_not_contact (from any open stage; a closed one keeps its stage),
    /// every timer and any deferred text are dropped, and the one
    /// confirmation text goes out if it never has. The confirmation is sent
    /// even while paused: it is owed to the contact, not marketing.
    fn opt_out(&mut self) {
        let again = std::mem::replace(&mut self.opp.opted_out, true);
        let text = "the lead opted out by sms; no more calls or marketing texts".to_owned();
        let data = json!({ "stage": self.opp.stage, "already_opted_out": again });
        self.event(TimelineKind::OptedOut, Cause::Contact, text, data);
        let text = "the lead opted out by sms".to_owned();
        self.hang_up_live_call(Cause::Contact, text);
        if !self.opp.stage.is_terminal() {
            let text = "the lead opted out".to_owned();
            self.move_stage(Stage::DoNotContact, Cause::Contact, text);
        }
        self.clear_all();
        if self.opp.opt_out_confirmed {
            return; // at most one confirmation, ever
        }
        match self.gate(Channel::Sms, Purpose::OptOutConfirmation) {
            Decision::Allow => {
                self.opp.opt_out_confirmed = true;
                let body = self.pb.opt_out_confirmation.clone();
                self.send_sms(body, Purpose::OptOutConfirmation, "opt-out confirmation");
            }
            blocked => self.blocked(Channel::Sms, &blocked),
        }
    }

    /// Consent is back, but the stage stays do_not_contact: only an operator
    /// reopens the opportunity (`SetStage` to contacting, refused while
    /// opted out).
    fn opt_in(&mut self) {
        self.opp.opted_out = false;
        let text = "the lead opted back in by sms; an operator may reopen the opportunity";
        let data = json!({ "stage": self.opp.stage });
        self.event(TimelineKind::OptedIn, Cause::Contact, text.to_owned(), data);
    }

    /// Answered at any hour and in any stage, unless the contact opted out.
    fn help(&mut self) {
        let text = "the lead asked for help by sms".to_owned();
        let data = json!({ "stage": self.opp.stage });
        self.event(TimelineKind::HelpRequested, Cause::Contact, text, data);
        match self.gate(Channel::Sms, Purpose::HelpReply) {
            Decision::Allow => {
                let body = self.pb.help_reply.clone();
                self.send_sms(body, Purpose::HelpReply, "help reply");
            }
            blocked => self.blocked(Channel::Sms, &blocked),
        }
    }

    /// The dispatcher found the number on the do-not-call list. The channel
    /// is remembered, so the gate denies it from now on and its cadence
    /// stops: for voice the blocked call is forgotten (its late report is
    /// ignored) and no retry is armed; for sms any deferred text is dropped.
    /// The attempt stays counted, since call ids derive from the count.
    pub(super) fn effect_blocked(&mut self, channel: Channel, reason: String) {
        if !self.opp.dnc_channels.contains(&channel) {
            self.opp.dnc_channels.push(channel);
        }
        let data = json!({ "channel": channel, "decision": "deny", "source": "dispatch" });
        self.event(TimelineKind::ComplianceBlocked, Cause::System, reason, data);
        match channel {
            Channel::Voice => {
                self.opp.active_call = None;
                self.clear(OppTimer::RetryCall);
            }
            Channel::Sms => self.clear(OppTimer::SendSms),
        }
    }

    /// The carrier's progress of a text: `sent` (it left the carrier) and the final statuses,
    /// with the carrier's error code when it failed. `queued` and `sending` add nothing to what
    /// the outbox already knows (the carrier accepted it), so they are not recorded. The
    /// thread (`GET …/messages`) reads a text's status from these entries by `message_sid`.
    pub(super) fn message_status(
        &mut self,
        message_sid: String,
        status: String,
        error_code: Option<u32>,
    ) {
        let text = match status.as_str() {
            "sent" => "sms sent by the carrier",
            "delivered" => "sms delivered to the lead",
            "failed" => "sms could not be sent",
            "undelivered" => "sms not delivered by the carrier",
            _ => return,
        };
        let mut data = json!({ "message_sid": message_sid, "status": status });
        let text = match error_code {
            Some(code) => {
                data["error_code"] = json!(code);
                format!("{text} ({message_sid}, error {code})")
            }
            None => format!("{text} ({message_sid})"),
        };
        self.event(TimelineKind::MessageStatus, Cause::Channel, text, data);
    }
}

/// Replies within this long of one that asked for a notice ask for none.
const REPLY_NOTICE_QUIET_SECONDS: i64 = 15 * 60;

/// How much of a reply a notice quotes.
const REPLY_EXCERPT_CHARS: usize = 120;
