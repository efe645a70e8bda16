//! The call state machine: one outbound call attempt, driven by provider
//! (Twilio) status callbacks that may arrive late, duplicated or out of order.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::opportunity::{validate_e164, CallResult};
use super::playbook::Playbook;
use super::timeline::{deadline, Cause, TimelineEvent, TimelineKind, TimerOp};

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
    },
    /// The provider accepted the dial request.
    Dialed {
        provider_sid: String,
    },
    /// The provider refused the dial request.
    DialFailed {
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
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CallEffect {
    Dial {
        to: String,
    },
    Hangup {
        provider_sid: String,
    },
    Report {
        opportunity_id: Uuid,
        result: CallResult,
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
                ..
            },
        ) => return place(call_id, opportunity_id, to, attempt, now, playbook),
        (None, _) => return Err(Rejection::NotFound),
        (Some(current), input) => (current, input),
    };
    let mut step = Step {
        call: current.clone(),
        pb: playbook,
        effects: Vec::new(),
        timers: Vec::new(),
        timeline: Vec::new(),
    };
    match input {
        CallInput::Place { .. } => {}
        CallInput::Dialed { provider_sid } => step.dialed(provider_sid)?,
        CallInput::DialFailed { reason } => step.dial_failed(reason),
        CallInput::Status {
            status,
            sequence,
            answered_by,
            provider_sid,
        } => step.status(status, sequence, answered_by, provider_sid)?,
        CallInput::TimerFired { timer } => step.timer_fired(timer),
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

fn place(
    id: Uuid,
    opportunity_id: Uuid,
    to: String,
    attempt: u32,
    now: DateTime<Utc>,
    pb: &Playbook,
) -> Result<CallDecision, Rejection> {
    validate_e164(&to).map_err(|e| Rejection::InvalidField {
        field: "to",
        reason: e.to_string(),
    })?;
    if attempt == 0 {
        return Err(Rejection::InvalidField {
            field: "attempt",
            reason: "must be at least 1".to_owned(),
        });
    }
    let call = Call {
        id,
        opportunity_id,
        to: to.clone(),
        attempt,
        playbook: pb.name.clone(),
        status: CallStatus::Queued,
        last_sequence: None,
        provider_sid: None,
        answered_by: None,
        reported: false,
        created_at: now,
        updated_at: now,
    };
    Ok(CallDecision {
        state: call,
        effects: vec![CallEffect::Dial { to }],
        timers: vec![
            TimerOp::Set {
                name: CallTimer::RingTimeout,
                at: deadline(now, pb.ring_timeout_seconds),
            },
            TimerOp::Set {
                name: CallTimer::Watchdog,
                at: deadline(now, pb.call_watchdog_seconds),
            },
        ],
        timeline: vec![TimelineEvent::new(
            TimelineKind::CallPlaced,
            Cause::Playbook,
            format!("dialing the lead, attempt {attempt}"),
            json!({ "call_id": id, "opportunity_id": opportunity_id, "attempt": attempt }),
        )],
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

struct Step<'a> {
    call: Call,
    pb: &'a Playbook,
    effects: Vec<CallEffect>,
    timers: Vec<TimerOp<CallTimer>>,
    timeline: Vec<TimelineEvent>,
}

impl Step<'_> {
    fn dialed(&mut self, sid: String) -> Result<(), Rejection> {
        if sid.trim().is_empty() {
            return Err(Rejection::InvalidField {
                field: "provider_sid",
                reason: "must not be empty".to_owned(),
            });
        }
        match &self.call.provider_sid {
            Some(known) if *known == sid => return Ok(()),
            Some(known) => {
                return Err(Rejection::SidMismatch {
                    known: known.clone(),
                    got: sid,
                })
            }
            None => self.call.provider_sid = Some(sid.clone()),
        }
        if self.call.status.is_terminal() {
            // We already gave up on this call (ring timeout or watchdog
            // before the provider answered our request); make sure the
            // provider's leg does not ring on unobserved.
            self.effects.push(CallEffect::Hangup {
                provider_sid: sid.clone(),
            });
        }
        self.event(
            Cause::Channel,
            format!("the provider accepted the call as {sid}"),
            json!({ "status": self.call.status, "provider_sid": sid }),
        );
        Ok(())
    }

    fn dial_failed(&mut self, reason: String) {
        // Once the provider has accepted the call its callbacks are the
        // authority; a late refusal from a retried request cannot undo that.
        if self.call.status != CallStatus::Queued || self.call.provider_sid.is_some() {
            return;
        }
        let text = format!("the provider refused the call: {reason}");
        self.end(CallStatus::Failed, CallResult::Failed, Cause::Channel, text);
    }

    fn status(
        &mut self,
        status: CallStatus,
        sequence: Option<u64>,
        answered_by: Option<AnsweredBy>,
        provider_sid: Option<String>,
    ) -> Result<(), Rejection> {
        if let (Some(known), Some(got)) = (&self.call.provider_sid, &provider_sid) {
            if known != got {
                return Err(Rejection::SidMismatch {
                    known: known.clone(),
                    got: got.clone(),
                });
            }
        }
        let from = self.call.status;
        let stale =
            matches!((self.call.last_sequence, sequence), (Some(last), Some(seq)) if seq <= last);
        let news = status.rank() > from.rank()
            || (status == from && answered_by.is_some() && answered_by != self.call.answered_by);
        if from.is_terminal() || stale || !news {
            return Ok(());
        }
        let was_machine = self.call.answered_by.is_some_and(AnsweredBy::is_machine);
        self.call.status = status;
        self.call.last_sequence = self.call.last_sequence.max(sequence);
        if self.call.provider_sid.is_none() {
            self.call.provider_sid = provider_sid;
        }
        if answered_by.is_some() {
            self.call.answered_by = answered_by;
        }
        let by = self.call.answered_by;
        self.event(
            Cause::Channel,
            format!("call status {status} (was {from})"),
            json!({ "from": from, "to": status, "sequence": sequence, "answered_by": by }),
        );
        if status == CallStatus::InProgress {
            self.clear(CallTimer::RingTimeout);
            if by == Some(AnsweredBy::Human) {
                self.report(CallResult::Answered);
            }
            let now_machine = by.is_some_and(AnsweredBy::is_machine);
            if now_machine && !was_machine && !self.pb.voicemail {
                // The playbook leaves no voicemail; the completed callback
                // that follows the hangup reports the machine.
                self.hangup();
            }
        } else if status.is_terminal() {
            let was_in_progress = from == CallStatus::InProgress;
            self.report(outcome(status, was_in_progress, by));
            self.clear(CallTimer::RingTimeout);
            self.clear(CallTimer::Watchdog);
        }
        Ok(())
    }

    fn timer_fired(&mut self, timer: CallTimer) {
        let status = self.call.status;
        if status.is_terminal() {
            return;
        }
        match timer {
            CallTimer::RingTimeout if status == CallStatus::InProgress => {}
            CallTimer::RingTimeout => {
                self.hangup();
                let text = format!(
                    "no answer within {} s; hanging up",
                    self.pb.ring_timeout_seconds
                );
                self.end(
                    CallStatus::NoAnswer,
                    CallResult::NoAnswer,
                    Cause::Playbook,
                    text,
                );
            }
            CallTimer::Watchdog => {
                // A call still in progress did connect; reporting it failed
                // would make the opportunity redial a lead who picked up.
                let result = if status == CallStatus::InProgress {
                    outcome(CallStatus::Completed, true, self.call.answered_by)
                } else {
                    CallResult::Failed
                };
                let text = format!(
                    "no terminal status within {} s; marking the call failed",
                    self.pb.call_watchdog_seconds
                );
                self.end(CallStatus::Failed, result, Cause::System, text);
            }
        }
    }

    /// Ends the call locally, without a provider callback.
    fn end(&mut self, status: CallStatus, result: CallResult, cause: Cause, text: String) {
        let from = std::mem::replace(&mut self.call.status, status);
        self.event(cause, text, json!({ "from": from, "to": status }));
        self.report(result);
        self.clear(CallTimer::RingTimeout);
        self.clear(CallTimer::Watchdog);
    }

    fn report(&mut self, result: CallResult) {
        if self.call.reported {
            return;
        }
        self.call.reported = true;
        self.effects.push(CallEffect::Report {
            opportunity_id: self.call.opportunity_id,
            result,
        });
        self.timeline.push(TimelineEvent::new(
            TimelineKind::CallOutcome,
            Cause::Channel,
            format!("call outcome {result} reported to the opportunity"),
            json!({ "result": result, "attempt": self.call.attempt }),
        ));
    }

    fn hangup(&mut self) {
        if let Some(sid) = &self.call.provider_sid {
            self.effects.push(CallEffect::Hangup {
                provider_sid: sid.clone(),
            });
        }
    }

    fn clear(&mut self, name: CallTimer) {
        if !self.timers.contains(&TimerOp::Clear { name }) {
            self.timers.push(TimerOp::Clear { name });
        }
    }

    fn event(&mut self, cause: Cause, reason: String, data: serde_json::Value) {
        self.timeline.push(TimelineEvent::new(
            TimelineKind::CallStatus,
            cause,
            reason,
            data,
        ));
    }
}

#[cfg(test)]
#[path = "call_tests.rs"]
mod tests;
