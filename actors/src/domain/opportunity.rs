//! The opportunity state machine: one sales opportunity from creation through
//! the call/SMS cadence and SLAs to a closing stage.
//!
//! Every outbound marketing call or text passes the compliance gate first
//! (`compliance::check`); a deferral re-plans it at the gate's next permitted
//! instant, a denial records why and stops that channel's cadence. Inbound
//! texts are classified for STOP/START/HELP keywords. The code is split by
//! input source: operator commands (`operator`), timers and call outcomes
//! (`cadence`), and the contact and channels (`inbound`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::call::Agent;
use super::compliance::{Channel, Purpose, Rules};
use super::playbook::Playbook;
use super::timeline::{TimelineEvent, TimerOp};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("opportunity not found")]
    NotFound,
    #[error("opportunity is already paused")]
    AlreadyPaused,
    #[error("opportunity is not paused")]
    NotPaused,
    #[error("opportunity is paused; resume it before {action}")]
    Paused { action: &'static str },
    #[error("opportunity is {stage}, a terminal stage; cannot {action}")]
    Terminal { stage: Stage, action: &'static str },
    #[error("illegal stage transition from {from} to {to}")]
    IllegalTransition { from: Stage, to: Stage },
    #[error("invalid {field}: {reason}")]
    InvalidField { field: &'static str, reason: String },
    #[error("playbook mismatch: input names {requested:?} but playbook {supplied:?} was supplied")]
    PlaybookMismatch { requested: String, supplied: String },
    #[error("unknown {kind} {value:?}; expected one of {expected}")]
    UnknownValue {
        kind: &'static str,
        value: String,
        expected: String,
    },
    #[error("the contact has opted out; they must text start to opt back in before {action}")]
    OptedOut { action: &'static str },
    #[error("call {call_id} is still live; wait for it to end or hang it up")]
    CallLive { call_id: Uuid },
    #[error("the compliance gate refused the call: {reason}")]
    CallRefused { reason: String },
    #[error("the compliance gate refused the text: {reason}")]
    SmsRefused { reason: String },
    #[error("the email gate refused the email: {reason}")]
    EmailRefused { reason: String },
    #[error("no human has taken over this opportunity's conversation; nothing to hand back")]
    NotTakenOver,
}

named_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
    pub enum Stage {
        New = "new",
        Contacting = "contacting",
        Engaged = "engaged",
        Qualified = "qualified",
        Booked = "booked",
        Won = "won",
        Lost = "lost",
        Unreachable = "unreachable",
        Nurture = "nurture",
        DoNotContact = "do_not_contact",
    }
}
parse_by_name!(Stage, "stage", Rejection);

impl Stage {
    /// Unreachable and nurture are parked, not closed: an operator may move
    /// them back to contacting.
    pub fn is_terminal(self) -> bool {
        matches!(self, Stage::Won | Stage::Lost | Stage::DoNotContact)
    }

    /// The stage graph. `do_not_contact` is terminal for the cadence, but an
    /// operator may reopen it to `contacting`; `apply` refuses that while the
    /// contact is still opted out (they must text START first).
    pub fn can_move_to(self, to: Stage) -> bool {
        use Stage::*;
        if self == to {
            return false;
        }
        if self == DoNotContact {
            return to == Contacting;
        }
        if self.is_terminal() {
            return false;
        }
        matches!(
            (self, to),
            (_, Lost | DoNotContact)
                | (New, Contacting)
                | (Contacting, Engaged | Unreachable | Nurture)
                | (Engaged, Qualified | Nurture | Contacting)
                | (Qualified, Booked | Nurture)
                | (Booked, Won | Qualified)
                | (Unreachable, Contacting | Nurture)
                | (Nurture, Contacting)
        )
    }

    /// Stages an operator only reaches after talking to the lead.
    fn implies_reached(self) -> bool {
        matches!(
            self,
            Stage::Engaged | Stage::Qualified | Stage::Booked | Stage::Won
        )
    }

    /// Stages in which no cadence or SLA may keep running (a parked stage
    /// still sends a text the gate deferred).
    fn stops_timers(self) -> bool {
        self.is_terminal() || matches!(self, Stage::Unreachable | Stage::Nurture)
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consent {
    pub voice: bool,
    pub sms: bool,
    /// Marketing email (the playbook's `[email]` steps); absent means none.
    #[serde(default)]
    pub email: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub name: String,
    /// E.164; none for a lead reached by email only, which is never called or texted (the gate
    /// denies it, `no_phone`). A lead has a phone, an email, or both.
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub timezone: Option<String>,
    /// Absent consent means none: never call or text without it.
    #[serde(default)]
    pub consent: Consent,
}

/// A number already in E.164 form (`+14155550100`) that the numbering plan says can exist.
/// The shape alone is not enough: `+12345678` and `+10005550100` have it but no phone does,
/// and dialling them costs money and trust.
pub fn validate_e164(phone: &str) -> Result<(), Rejection> {
    let normal = normalize_phone(phone)?;
    if normal != phone {
        return Err(invalid("phone", format!("must be in e.164 form: {normal}")));
    }
    Ok(())
}

/// A phone number written in international form (`+1 (415) 555-0100` or `+14155550100`),
/// checked against the numbering plan (libphonenumber's metadata) and given in E.164. Numbers
/// without a country code are refused: which country would be a guess.
pub fn normalize_phone(raw: &str) -> Result<String, Rejection> {
    let raw = raw.trim();
    if !raw.starts_with('+') {
        return Err(invalid(
            "phone",
            "must start with + and the country code (e.164)",
        ));
    }
    if raw.chars().count() > 32 || raw.chars().any(|c| c.is_control()) {
        return Err(invalid("phone", "not a phone number"));
    }
    let parsed = phonenumber::parse(None, raw)
        .map_err(|e| invalid("phone", format!("not a phone number: {e}")))?;
    if !parsed.is_valid() {
        return Err(invalid(
            "phone",
            "not a valid number in its country's numbering plan",
        ));
    }
    Ok(parsed.format().mode(phonenumber::Mode::E164).to_string())
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaOverride {
    pub first_touch_seconds: Option<u64>,
}

named_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
    pub enum OppTimer {
        FirstTouchSla = "first_touch_sla",
        ResponseSla = "response_sla",
        RetryCall = "retry_call",
        /// Sends `Opportunity::pending_sms`, a text the gate deferred.
        SendSms = "send_sms",
        /// A callback owed to a lead who answered and reached nobody is overdue.
        CallbackSla = "callback_sla",
    }
}
parse_by_name!(OppTimer, "timer", Rejection);

/// The opportunity's call that may still be ringing or bridged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveCall {
    pub call_id: Uuid,
    /// A hang-up was sent to the call already; it is sent once.
    #[serde(default)]
    pub hang_up_asked: bool,
}

/// A text the compliance gate deferred; `OppTimer::SendSms` re-checks and
/// sends it at the permitted instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingSms {
    pub body: String,
    pub purpose: Purpose,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Opportunity {
    pub id: Uuid,
    pub external_id: String,
    pub contact: Contact,
    pub stage: Stage,
    pub assignee: String,
    pub paused: bool,
    /// Call attempts placed so far; never exceeds the playbook's maximum.
    pub attempts: u32,
    pub playbook: String,
    pub first_touch_seconds: u64,
    /// A person answered a call or the lead replied.
    pub reached: bool,
    pub active_call: Option<Uuid>,
    /// The call that may still be on the line: set when a call is placed, kept after the lead
    /// answers (when `active_call` is cleared) and cleared when the call reports its end (a
    /// missed outcome, or `CallEnded` after an answer). A STOP, a do-not-call entry, a close
    /// or a pause with hang-up hangs it up (`OppEffect::HangUpCall`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live_call: Option<LiveCall>,
    /// Timers that fired while paused, re-fired in order on resume.
    pub held_timers: Vec<OppTimer>,
    pub escalated: bool,
    /// The team the opportunity is bound to, by name: escalations go to its queue
    /// (`<escalation queue>:<team>`), and operators outside it do not see it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When each call of the last 24 h was placed (the gate's frequency
    /// caps); pruned whenever one is added.
    #[serde(default)]
    pub call_attempts: Vec<DateTime<Utc>>,
    /// When each marketing text of the last 24 h was sent; pruned likewise.
    /// Opt-out confirmations and help replies are not counted.
    #[serde(default)]
    pub sms_sent: Vec<DateTime<Utc>>,
    /// The contact revoked consent (STOP): no call or marketing text, on any
    /// channel, until they opt back in (START).
    #[serde(default)]
    pub opted_out: bool,
    /// The one opt-out confirmation text has gone out; never another.
    #[serde(default)]
    pub opt_out_confirmed: bool,
    /// A text the gate deferred; `OppTimer::SendSms` is armed (or held) for
    /// it. At most one: a newer deferred text replaces it.
    #[serde(default)]
    pub pending_sms: Option<PendingSms>,
    /// Channels the dispatcher refused because the number is on the
    /// tenant's do-not-call list; the gate denies them from then on. An
    /// operator moving the opportunity to contacting clears it (the
    /// dispatcher checks the list again).
    #[serde(default)]
    pub dnc_channels: Vec<Channel>,
    /// The line type the carrier's lookup reported (the tenant enables lookups); `None` until
    /// one is reported. A landline is never sent marketing texts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line_type: Option<LineType>,
    /// External ids of later leads of the same contact merged into this one (ADR 0046).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub returned: Vec<String>,
    /// Skip mode: the contact's live opportunity when this one was created; it runs no cadence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<Uuid>,
    /// When a reply last asked for an after-hours notice: one per quiet period, not one per text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_noticed_at: Option<DateTime<Utc>>,
    /// A human wrote to the lead by hand: the playbook's automatic texts and emails stop until an operator
    /// hands the conversation back (see `takeover`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub takeover: Option<Takeover>,
    /// The lead's email channel: unsubscribed, bounced, how many emails were sent (see `email`).
    #[serde(default, skip_serializing_if = "EmailChannel::is_untouched")]
    pub email: EmailChannel,
}

named_enum! {
    /// What the call actor reports back when a call ends.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    pub enum CallResult {
        /// A person answered.
        Answered = "answered",
        Machine = "machine",
        NoAnswer = "no_answer",
        Busy = "busy",
        Failed = "failed",
        Canceled = "canceled",
        /// Not placed: the dispatcher found the number on the tenant's do-not-call list.
        Blocked = "blocked",
        /// Agent first (click to call): the rep did not pick up or declined, so the lead was
        /// never dialled.
        RepMissed = "rep_missed",
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OppReply {
    Created,
    AlreadyExists,
    Applied,
}

impl OppReply {
    /// The reply a committed transition gave, as the runtime hands it back (JSON).
    pub fn of(reply: &serde_json::Value) -> Option<Self> {
        Self::deserialize(reply).ok()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OppDecision {
    pub state: Opportunity,
    pub effects: Vec<OppEffect>,
    pub timers: Vec<TimerOp<OppTimer>>,
    pub timeline: Vec<TimelineEvent>,
    pub reply: OppReply,
}

/// The opportunity's transition function. `rules` is the compliance table
/// every outbound call and marketing text is checked against at `now`.
pub fn apply(
    state: Option<&Opportunity>,
    input: OppInput,
    now: DateTime<Utc>,
    playbook: &Playbook,
    rules: &Rules,
) -> Result<OppDecision, Rejection> {
    let Some(current) = state else {
        return create(input, now, playbook, rules);
    };
    let reply = match input {
        OppInput::Create { .. } => OppReply::AlreadyExists,
        _ => OppReply::Applied,
    };
    let mut step = Step::new(current.clone(), now, playbook, rules);
    match input {
        OppInput::Create { .. } => {}
        OppInput::Pause {
            by,
            reason,
            hang_up,
        } => step.pause(by, reason, hang_up)?,
        OppInput::Resume { by } => step.resume(by)?,
        OppInput::Reassign {
            assignee,
            by,
            reason,
        } => step.reassign(assignee, by, reason)?,
        OppInput::Escalate { by, reason } => step.operator_escalate(by, reason)?,
        OppInput::CallNow { agent, by } => step.call_now(agent, by)?,
        OppInput::SendText { body, by } => step.send_text(body, by)?,
        OppInput::WriteEmail { subject, body, by } => step.write_email(subject, body, by)?,
        OppInput::HandBack { by, reason } => step.hand_back(by, reason)?,
        OppInput::CancelTimer { timer, by, reason } => step.cancel_timer(timer, by, reason)?,
        OppInput::SetStage { stage, by, reason } => step.set_stage(stage, by, reason)?,
        OppInput::TimerFired { timer } => step.fire(timer),
        OppInput::CallFinished { call_id, result } => step.call_finished(call_id, result),
        OppInput::CallEnded { call_id } => step.call_ended(call_id),
        OppInput::InboundLive { call_id } => step.inbound_live(call_id),
        OppInput::NumberOnDnc { by } => step.number_on_dnc(by),
        OppInput::SmsRefused {
            purpose,
            code,
            reason,
        } => step.sms_refused(purpose, code, reason),
        OppInput::CallUnattended {
            call_id,
            reason,
            inbound,
        } => step.call_unattended(call_id, reason, inbound),
        OppInput::CallConnected {
            call_id,
            rep,
            talk_seconds,
        } => step.call_connected(call_id, rep, talk_seconds),
        OppInput::Replied { body } => step.replied(body),
        OppInput::EffectBlocked { channel, reason } => step.effect_blocked(channel, reason),
        OppInput::MessageStatus {
            message_sid,
            status,
            error_code,
        } => step.message_status(message_sid, status, error_code),
        OppInput::LineTypeFound(found) => step.line_type_found(found),
        OppInput::NotifyPeople {
            queue,
            reason,
            recipients,
        } => step.notify_people(queue, reason, recipients),
        OppInput::NoticeFailed {
            recipient,
            via,
            reason,
        } => step.notice_failed(recipient, via, reason),
        OppInput::ContactReturned {
            external_id,
            skipped_as,
        } => step.contact_returned(external_id, skipped_as),
        OppInput::EmailAccepted { email_id, answer } => step.email_accepted(email_id, answer),
        OppInput::EmailBounced {
            email_id,
            address,
            code,
            reason,
        } => step.email_bounced(email_id, address, code, reason),
        OppInput::EmailNotSent {
            email_id,
            why,
            detail,
        } => step.email_not_sent(email_id, why, detail),
        OppInput::EmailUnsubscribed { address, via } => step.email_unsubscribed(address, via),
        OppInput::EmailReceived {
            from,
            subject,
            body,
            message_id,
        } => step.email_received(from, subject, body, message_id),
        OppInput::EmailReturned {
            address,
            status,
            reason,
        } => step.email_returned(address, status, reason),
    }
    Ok(step.finish(Some(current), reply))
}

mod cadence;
mod call_now;
mod email;
mod email_replies;
mod hang_up;
mod inbound;
mod line;
mod messages;
mod notify;
mod operator;
mod refused;
mod returning;
mod step;
mod takeover;

pub use email::{validate_address, EmailChannel, EmailFailure, UnsubscribeVia};
pub use line::{LineFound, LineType};
pub use messages::{OppEffect, OppInput};
pub use notify::{NoticeChannel, Recipient};
pub use returning::{ContactHistory, MAX_RETURNS};
pub use takeover::{Takeover, MAX_TEXT_CHARS};

use step::{create, invalid, with_reason, Step};

#[cfg(test)]
#[path = "opportunity_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "opportunity_fixtures.rs"]
mod fixtures;

#[cfg(test)]
#[path = "opportunity_line_tests.rs"]
mod line_tests;

#[cfg(test)]
#[path = "opportunity_unattended_tests.rs"]
mod unattended_tests;

#[cfg(test)]
#[path = "opportunity_call_now_tests.rs"]
mod call_now_tests;

#[cfg(test)]
#[path = "opportunity_notify_tests.rs"]
mod notify_tests;

#[cfg(test)]
#[path = "opportunity_hang_up_tests.rs"]
mod hang_up_tests;

#[cfg(test)]
#[path = "opportunity_refused_tests.rs"]
mod refused_tests;

#[cfg(test)]
#[path = "opportunity_returning_tests.rs"]
mod returning_tests;

#[cfg(test)]
#[path = "opportunity_takeover_tests.rs"]
mod takeover_tests;

#[cfg(test)]
#[path = "opportunity_email_tests.rs"]
mod email_tests;
