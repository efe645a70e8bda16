//! The call state machine: one outbound call attempt, driven by provider
//! (Twilio) status callbacks that may arrive late, duplicated or out of order.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::opportunity::CallResult;
use super::playbook::Playbook;
#[cfg(test)]
use super::timeline::TimelineKind;
use super::timeline::{TimelineEvent, TimerOp};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("call not found")]
    NotFound,
    #[error("invalid {field}: {reason}")]
    InvalidField { field: &'static str, reason: String },
    #[error("provider sid mismatch: call is {known}, input names {got}")]
    SidMismatch { known: String, got: String },
    #[error("unknown {kind} {value:?}; expected one of {expected}")]
    UnknownValue {
        kind: &'static str,
        value: String,
        expected: String,
    },
}

named_enum! {
    /// Spelled exactly as Twilio spells them.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    pub enum CallStatus {
        Queued = "queued",
        Initiated = "initiated",
        Ringing = "ringing",
        InProgress = "in-progress",
        Completed = "completed",
        Busy = "busy",
        Failed = "failed",
        NoAnswer = "no-answer",
        Canceled = "canceled",
    }
}
parse_by_name!(CallStatus, "call status", Rejection);

impl CallStatus {
    pub fn is_terminal(self) -> bool {
        self.rank() == 4
    }

    /// Progress order; a call never moves to a lower rank, and every
    /// terminal status shares the top rank so none replaces another.
    pub fn rank(self) -> u8 {
        match self {
            CallStatus::Queued => 0,
            CallStatus::Initiated => 1,
            CallStatus::Ringing => 2,
            CallStatus::InProgress => 3,
            CallStatus::Completed
            | CallStatus::Busy
            | CallStatus::Failed
            | CallStatus::NoAnswer
            | CallStatus::Canceled => 4,
        }
    }
}

named_enum! {
    /// Answering-machine-detection result, spelled as Twilio spells it.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    pub enum AnsweredBy {
        Human = "human",
        MachineStart = "machine_start",
        MachineEndBeep = "machine_end_beep",
        MachineEndSilence = "machine_end_silence",
        MachineEndOther = "machine_end_other",
        Fax = "fax",
        Unknown = "unknown",
    }
}
parse_by_name!(AnsweredBy, "answered_by", Rejection);

impl AnsweredBy {
    /// `unknown` counts as a person: hanging up on one is worse than talking
    /// to a voicemail.
    pub fn is_machine(self) -> bool {
        !matches!(self, AnsweredBy::Human | AnsweredBy::Unknown)
    }
}

named_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
    pub enum CallTimer {
        RingTimeout = "ring_timeout",
        Watchdog = "watchdog",
    }
}
parse_by_name!(CallTimer, "call timer", Rejection);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Call {
    pub id: Uuid,
    pub opportunity_id: Uuid,
    pub to: String,
    pub attempt: u32,
    /// The opportunity's playbook, which sets this call's ring timeout and watchdog.
    pub playbook: String,
    pub status: CallStatus,
    pub last_sequence: Option<u64>,
    pub provider_sid: Option<String>,
    pub answered_by: Option<AnsweredBy>,
    /// The outcome has been sent to the opportunity; it is sent exactly once.
    pub reported: bool,
    /// The dial request may or may not have reached the provider. The call
    /// is never dialed again; callbacks or the watchdog settle it.
    #[serde(default)]
    pub dial_unknown: bool,
    /// The watchdog has asked the provider for the call once already.
    #[serde(default)]
    pub fetch_attempted: bool,
    /// An inbound call's watchdog asked the provider this many times in a row without an
    /// answer (a failed fetch): closed only once it reaches `inbound::UNANSWERED_ASKS`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unanswered_asks: u8,
    /// What the call flow did once a person answered: the reps rung, who picked up, the
    /// conversation. Empty until the provider asks for the flow.
    #[serde(default, skip_serializing_if = "Flow::is_empty")]
    pub flow: Flow,
    /// The opportunity asked for this call to be hung up (STOP, do-not-call, close, pause
    /// with hang-up); `sent` once the `Hangup` effect went out (it waits for the provider's
    /// sid while the dial is in flight). Asked once: repeats change nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hang_up: Option<HangUpAsked>,
    /// Agent first (click to call, or the playbook's `connect = "agent_first"`): the rep rung
    /// before the lead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<Agent>,
    /// The playbook rings a rep first and the dispatcher is picking one (`PickRep`): nothing is
    /// dialled until its answer (`RepPicked`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub picking: bool,
    /// An inbound call: the lead called us on this number (one of the tenant's). `to` is then
    /// the lead's number (the caller), `attempt` is 0, and nothing is ever dialled to the lead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inbound: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CallInput {
    Place {
        call_id: Uuid,
        opportunity_id: Uuid,
        to: String,
        attempt: u32,
        /// Names the playbook the host resolves and passes to `apply`.
        playbook: String,
        /// Agent first: ring this rep, and dial the lead once they accept.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent: Option<Agent>,
    },
    /// The lead called one of the tenant's numbers and the provider asked what to do: the call
    /// exists from here on, in progress, its provider sid known. Creates the call; nothing is
    /// dialled to the lead (the call flow rings reps from it).
    Inbound {
        call_id: Uuid,
        opportunity_id: Uuid,
        /// The caller, E.164.
        from: String,
        /// The tenant's number the lead called, E.164.
        to: String,
        provider_sid: String,
        /// Names the playbook the host resolves and passes to `apply`.
        playbook: String,
    },
    /// The provider accepted the dial request.
    Dialed {
        provider_sid: String,
    },
    /// The provider refused the dial request.
    /// The dispatcher refused to dial (the number is on the do-not-call list): the call ends
    /// and the opportunity closes its voice channel.
    DialBlocked {
        reason: String,
    },
    DialFailed {
        reason: String,
    },
    /// The dial request got no answer (timeout, connection reset): it may
    /// have reached the provider. Never dial again; wait for callbacks.
    DialUnknown {
        reason: String,
    },
    Status {
        status: CallStatus,
        #[serde(default)]
        sequence: Option<u64>,
        #[serde(default)]
        answered_by: Option<AnsweredBy>,
        #[serde(default)]
        provider_sid: Option<String>,
    },
    TimerFired {
        timer: CallTimer,
    },
    /// The provider's answer to `CallEffect::Fetch`, applied like a status
    /// callback without a sequence number.
    Fetched {
        status: CallStatus,
        #[serde(default)]
        answered_by: Option<AnsweredBy>,
        provider_sid: String,
    },
    /// The call flow is ringing these reps for the answered lead (one for sequential ringing,
    /// several for simultaneous).
    RepsRung {
        reps: Vec<String>,
    },
    /// The dispatcher's answer to `PickRep`: the rep to ring first, or none free.
    RepPicked {
        #[serde(default)]
        agent: Option<Agent>,
    },
    /// A rep picked up (the provider asked for the rep's whisper on that leg).
    RepAnswered {
        rep: String,
        leg_sid: String,
    },
    /// A `<Dial>` of the flow ended: the provider's `DialCallStatus` and whether the lead
    /// and the rep were connected.
    DialEnded {
        status: DialStatus,
        bridged: bool,
        #[serde(default)]
        leg_sid: Option<String>,
        #[serde(default)]
        talk_seconds: Option<u32>,
        /// The reps that `<Dial>` rang.
        #[serde(default)]
        reps: Vec<String>,
    },
    /// The lead answered and nobody could take the call: no rep free, or every rep rung
    /// missed it. The opportunity's fallback takes over.
    Unattended {
        reason: UnattendedReason,
    },
    /// The carrier finished a recording of this call's conversation.
    Recorded {
        recording: RecordingMeta,
    },
    /// The opportunity wants the call to stop (the lead opted out, the number was put on the
    /// do-not-call list, the opportunity closed, or an operator paused it with hang-up): a
    /// ringing or bridged call is hung up (the whole call, with its rep legs).
    HangUp {
        reason: String,
    },
}

/// A hang-up the opportunity asked for (`CallInput::HangUp`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HangUpAsked {
    pub reason: String,
    /// The `Hangup` effect was emitted (false while the dial is in flight, without a sid).
    pub sent: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CallEffect {
    Dial {
        /// The lead's number (the one compliance and do-not-call are checked against).
        to: String,
        /// Ask the provider for answering-machine detection: true when the lead is dialled
        /// first (both leaving a voicemail and hanging up on machines need it); false agent
        /// first, where the rep's phone is dialled.
        machine_detection: bool,
        ring_timeout_seconds: u32,
        /// Agent first: the provider dials this rep's phone, and the lead from its flow.
        agent: Option<Agent>,
    },
    Hangup {
        provider_sid: String,
    },
    /// Agent first by the playbook: pick one free rep of the opportunity's team to ring.
    PickRep,
    Report {
        opportunity_id: Uuid,
        result: CallResult,
    },
    /// Read the call from the provider (GET Calls/{sid}); the result comes
    /// back as `CallInput::Fetched`.
    Fetch {
        provider_sid: String,
    },
    /// Tell the opportunity its lead talked with a rep (its timeline shows the conversation).
    Conversation {
        opportunity_id: Uuid,
        rep: Option<String>,
        talk_seconds: u32,
    },
    /// Tell the opportunity that its answered lead (or its lead who called in) reached nobody.
    Unattended {
        opportunity_id: Uuid,
        reason: UnattendedReason,
        inbound: bool,
    },
    /// Tell the opportunity that a call it was told was answered has now ended (its terminal
    /// status): it no longer has a live call to hang up.
    Ended {
        opportunity_id: Uuid,
    },
    /// Tell the opportunity its lead called in and is on the line: the call it must hang up
    /// when the lead opts out, the number goes on the do-not-call list or it closes.
    Live {
        opportunity_id: Uuid,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallDecision {
    pub state: Call,
    pub effects: Vec<CallEffect>,
    pub timers: Vec<TimerOp<CallTimer>>,
    pub timeline: Vec<TimelineEvent>,
}

/// The call's transition function.
///
/// A human answer is reported as soon as the call is in progress with
/// `answered_by = human`, not when it completes: the opportunity's
/// first-touch SLA must not escalate a lead who is on the phone. Every other
/// outcome is reported at the terminal status. `reported` makes it once only.
///
/// The call is dialed once, when placed, and never again. A watchdog that
/// fires before a terminal status first fetches the call from the provider
/// (once, when its sid is known) and re-arms; only then is it marked failed.
pub fn apply(
    state: Option<&Call>,
    input: CallInput,
    now: DateTime<Utc>,
    playbook: &Playbook,
) -> Result<CallDecision, Rejection> {
    let (current, input) = match (state, input) {
        (
            None,
            CallInput::Place {
                call_id,
                opportunity_id,
                to,
                attempt,
                agent,
                ..
            },
        ) => return place(call_id, opportunity_id, to, attempt, agent, now, playbook),
        (
            None,
            CallInput::Inbound {
                call_id,
                opportunity_id,
                from,
                to,
                provider_sid,
                ..
            },
        ) => {
            let call = inbound::NewInbound {
                id: call_id,
                opportunity_id,
                from,
                to,
                provider_sid,
            };
            return inbound::create(call, now, playbook);
        }
        (None, _) => return Err(Rejection::NotFound),
        (Some(current), input) => (current, input),
    };
    let mut step = Step {
        call: current.clone(),
        now,
        pb: playbook,
        effects: Vec::new(),
        timers: Vec::new(),
        timeline: Vec::new(),
    };
    match input {
        // Creations repeated (a retried request): the call exists already.
        CallInput::Place { .. } | CallInput::Inbound { .. } => {}
        CallInput::Dialed { provider_sid } => step.dialed(provider_sid)?,
        CallInput::DialFailed { reason } => step.dial_failed(reason),
        CallInput::DialBlocked { reason } => step.dial_blocked(reason),
        CallInput::DialUnknown { reason } => step.dial_unknown(reason),
        CallInput::Fetched {
            status,
            provider_sid,
            ..
        } if current.inbound.is_some() => step.inbound_fetched(status, &provider_sid),
        CallInput::Fetched {
            status,
            answered_by,
            provider_sid,
        } => step.status(status, None, answered_by, Some(provider_sid))?,
        CallInput::Status {
            status,
            sequence,
            answered_by,
            provider_sid,
        } => step.status(status, sequence, answered_by, provider_sid)?,
        CallInput::TimerFired { timer } => step.timer_fired(timer),
        CallInput::RepsRung { reps } => step.reps_rung(reps),
        CallInput::RepPicked { agent } => step.rep_picked(agent),
        CallInput::RepAnswered { rep, leg_sid } => step.rep_answered(rep, leg_sid),
        CallInput::DialEnded {
            status,
            bridged,
            leg_sid,
            talk_seconds,
            reps,
        } => step.dial_ended(status, bridged, leg_sid, talk_seconds, reps),
        CallInput::Unattended { reason } => step.unattended(reason),
        CallInput::HangUp { reason } => step.hang_up(reason),
        CallInput::Recorded { recording } => step.recorded(recording),
    }
    let touched = step.call != *current
        || !step.effects.is_empty()
        || !step.timers.is_empty()
        || !step.timeline.is_empty();
    if touched {
        step.call.updated_at = now;
    }
    Ok(CallDecision {
        state: step.call,
        effects: step.effects,
        timers: step.timers,
        timeline: step.timeline,
    })
}

/// What a call that ended in `status` amounts to for the opportunity.
/// Twilio only sets `answered_by` once something picked up, so an answer
/// seen on any callback counts even when the in-progress callback was skipped.
fn outcome(status: CallStatus, was_in_progress: bool, by: Option<AnsweredBy>) -> CallResult {
    match (status, by) {
        (CallStatus::Busy, _) => CallResult::Busy,
        (CallStatus::Failed, _) => CallResult::Failed,
        (CallStatus::NoAnswer, _) => CallResult::NoAnswer,
        (CallStatus::Canceled, _) => CallResult::Canceled,
        (_, Some(by)) if by.is_machine() => CallResult::Machine,
        (_, Some(_)) => CallResult::Answered,
        (_, None) if was_in_progress => CallResult::Answered,
        (_, None) => CallResult::NoAnswer,
    }
}

mod flow;

pub use flow::{Agent, Conversation, DialStatus, Flow, RecordingMeta, RepLeg, UnattendedReason};
mod hang_up;
mod inbound;
mod pick;
mod place;

use place::place;
mod progress;

use progress::Step;

#[cfg(test)]
#[path = "call_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "call_flow_tests.rs"]
mod flow_tests;

#[cfg(test)]
#[path = "call_fixtures.rs"]
mod fixtures;

#[cfg(test)]
#[path = "call_inbound_tests.rs"]
mod inbound_tests;

#[cfg(test)]
#[path = "call_hang_up_tests.rs"]
mod hang_up_tests;

#[cfg(test)]
#[path = "call_pick_tests.rs"]
mod pick_tests;

fn is_zero(n: &u8) -> bool {
    *n == 0
}
