//! What an opportunity is told (`OppInput`: from the API, its calls, the carrier, its timers)
//! and what it asks of the world (`OppEffect`, which the actor host turns into outbox effects
//! and inputs to its calls).

use super::*;
use crate::domain::playbook::EmailStep;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OppInput {
    Create {
        id: Uuid,
        external_id: String,
        contact: Contact,
        playbook: String,
        #[serde(default)]
        sla: Option<SlaOverride>,
        #[serde(default)]
        assignee: Option<String>,
        /// The team the opportunity is bound to; its escalations go to that team's queue.
        #[serde(default)]
        team: Option<String>,
        /// What the tenant knows of the contact already: its live opportunity (skip mode) and
        /// its earlier opportunity's recent calls and texts (ADR 0046).
        #[serde(default)]
        history: Box<ContactHistory>,
    },
    /// The contact of this live opportunity came back as another lead: merged here
    /// (`skipped_as` is `None`) or created as a skipped duplicate (its id). Noted on the
    /// timeline once per lead; the cadence is not restarted.
    ContactReturned {
        external_id: String,
        #[serde(default)]
        skipped_as: Option<Uuid>,
    },
    Pause {
        by: String,
        #[serde(default)]
        reason: Option<String>,
        /// Also hang up the live call (ringing or bridged); by default a pause lets it finish.
        #[serde(default)]
        hang_up: bool,
    },
    Resume {
        by: String,
    },
    Reassign {
        assignee: String,
        by: String,
        reason: String,
    },
    /// A rep calls the lead now, agent first (click to call): through the same compliance
    /// gate as a cadence call; refused while another call is live.
    CallNow {
        agent: Agent,
        by: String,
    },
    /// An operator or rep texts the lead by hand, through the same compliance gate as the
    /// cadence's texts; refused (not deferred) when the gate would not send it now. The first
    /// such text takes the conversation over: the playbook's automatic texts and emails stop.
    SendText {
        body: String,
        by: String,
    },
    /// An operator or rep emails the lead by hand, through the email gate (consent, unsubscribe,
    /// a bounced address, an opt-out); refused when the gate would not send it. Like a text by
    /// hand, the first one takes the conversation over.
    WriteEmail {
        subject: String,
        body: String,
        by: String,
    },
    /// An operator hands a taken-over conversation back to the playbook.
    HandBack {
        by: String,
        #[serde(default)]
        reason: Option<String>,
    },
    Escalate {
        by: String,
        #[serde(default)]
        reason: Option<String>,
    },
    /// An operator cancels one armed (or held) timer. The host checks it is armed before
    /// submitting; cancelling one that is not is a no-op with no timeline entry.
    CancelTimer {
        timer: OppTimer,
        by: String,
        #[serde(default)]
        reason: Option<String>,
    },
    SetStage {
        stage: Stage,
        by: String,
        #[serde(default)]
        reason: Option<String>,
    },
    TimerFired {
        timer: OppTimer,
    },
    CallFinished {
        call_id: Uuid,
        result: CallResult,
    },
    /// A call already reported answered reached its terminal status: nothing is live any more.
    CallEnded {
        call_id: Uuid,
    },
    /// The lead called in and is on the line (ADR 0050): hung up like the cadence's own call
    /// when the lead opts out, the number goes on the do-not-call list or the opportunity closes.
    InboundLive {
        call_id: Uuid,
    },
    /// The carrier refused a text of this opportunity (a 4xx such as 21610, the lead
    /// unsubscribed at the carrier; or rate limiting that outlasted the retries): nothing was
    /// sent. Shown on the timeline; a refused opt-out confirmation no longer counts as sent.
    SmsRefused {
        purpose: Purpose,
        #[serde(default)]
        code: Option<u32>,
        reason: String,
    },
    /// The tenant put the contact's number on its do-not-call list: the live call is hung up
    /// and voice and marketing texts stop (the dispatcher refuses them from now on anyway).
    NumberOnDnc {
        by: String,
    },
    /// A call of this opportunity connected the lead with a rep: the conversation goes on the
    /// opportunity's timeline with the rep and the talk time.
    CallConnected {
        call_id: Uuid,
        #[serde(default)]
        rep: Option<String>,
        talk_seconds: u32,
    },
    /// A call of this opportunity was answered by the lead and nobody took it (no rep free,
    /// or every rep rung missed it): the playbook's fallback texts the lead that someone will
    /// call back and escalates to the team's queue.
    CallUnattended {
        call_id: Uuid,
        reason: crate::domain::call::UnattendedReason,
        /// The lead called us (an inbound call): the callback text thanks them for calling.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        inbound: bool,
    },
    /// An inbound SMS from the lead. STOP/START/HELP keywords are handled
    /// per `compliance::classify_reply`; anything else is a conversation.
    Replied {
        body: String,
    },
    /// The dispatcher refused an effect at send time (the number is on the
    /// tenant's do-not-call list). That channel's cadence stops.
    EffectBlocked {
        channel: Channel,
        reason: String,
    },
    /// A delivery status of an outbound text, as the provider spells it.
    /// Recorded when `sent`, `delivered`, `failed` or `undelivered`.
    MessageStatus {
        message_sid: String,
        status: String,
        /// The carrier's error code (`ErrorCode`) of a text that failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error_code: Option<u32>,
    },
    /// The dispatcher looked up the contact's line type before a text (see `line`).
    LineTypeFound(LineFound),
    /// The people an escalation's notice goes to, as the dispatcher found them: one SMS and
    /// one email effect per person follow (see `notify`).
    NotifyPeople {
        queue: String,
        reason: String,
        recipients: Vec<Recipient>,
    },
    /// A notice to a person failed for good (an SMTP 5xx, a refused text, a number on the
    /// do-not-call list): recorded on the timeline.
    NoticeFailed {
        recipient: String,
        via: NoticeChannel,
        reason: String,
    },
    /// The tenant's SMTP server accepted an email to the lead (its answer, usually a queue id).
    EmailAccepted {
        email_id: Uuid,
        #[serde(default)]
        answer: String,
    },
    /// The server refused the lead's address for good (a hard bounce): the address is marked
    /// invalid and never mailed again; the cadence goes on.
    EmailBounced {
        email_id: Uuid,
        address: String,
        code: u16,
        reason: String,
    },
    /// An email to the lead did not leave, or will not arrive, for a reason that is not the
    /// address's (no postal address, no SMTP server, a sender-side refusal, given up).
    EmailNotSent {
        email_id: Uuid,
        why: EmailFailure,
        detail: String,
    },
    /// The lead used the one-click unsubscribe of an email sent to `address`: no more email;
    /// calls and texts are not affected.
    EmailUnsubscribed {
        address: String,
        /// How: the one-click link (the default of entries written before there was another
        /// way), the `mailto:` of `List-Unsubscribe`, or a spam complaint.
        #[serde(default)]
        via: UnsubscribeVia,
    },
    /// The lead wrote to us by email (a reply to one of our emails, found by its reply
    /// address, or mail from the lead's address): on the thread, and a conversation like an
    /// inbound text.
    EmailReceived {
        from: String,
        subject: String,
        body: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message_id: Option<String>,
    },
    /// A delivery status notification said an email to `address` failed for good after the
    /// server had accepted it (a late bounce): the address is marked invalid.
    EmailReturned {
        address: String,
        /// The RFC 3463 status (`5.1.1`).
        status: String,
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OppEffect {
    /// The host turns this into a new call actor.
    StartCall {
        call_id: Uuid,
        to: String,
        attempt: u32,
        /// Agent first: the rep rung before the lead (click to call).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent: Option<Agent>,
    },
    SendSms {
        to: String,
        body: String,
        /// Marketing, or the opt-out confirmation / help reply that may go
        /// out when marketing may not (opted out, paused, closed stage).
        purpose: Purpose,
        /// The person who wrote it by hand (`SendText`); `None` for the playbook's texts.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
    },
    NotifyEscalation {
        queue: String,
        reason: String,
    },
    /// The lead replied: its people are told when nobody is on call to see it (after hours),
    /// through the same fan-out as an escalation's notice.
    NotifyReply {
        queue: String,
        reason: String,
    },
    /// A text to a person (a rep) about this lead: never marketing, never to the lead.
    NotifySms {
        to: String,
        recipient: String,
        lead: String,
        reason: String,
    },
    /// An email to a person (a rep) about this lead.
    NotifyEmail {
        to: String,
        recipient: String,
        lead: String,
        reason: String,
    },
    /// Skip mode: the host tells the contact's live opportunity (`ContactReturned`) in this
    /// transition's commit.
    NoteReturn {
        opportunity_id: Uuid,
        external_id: String,
    },
    /// An email to the lead, rendered from the playbook's template; the dispatcher adds the
    /// footer (postal address, unsubscribe link) and the `List-Unsubscribe` headers.
    SendEmail {
        email_id: Uuid,
        to: String,
        name: String,
        subject: String,
        body: String,
        step: EmailStep,
    },
    /// The host sends the call `CallInput::HangUp`.
    HangUpCall {
        call_id: Uuid,
        reason: String,
    },
}
