//! The opportunity state machine: one sales opportunity from creation through
//! the call/SMS cadence and SLAs to a closing stage.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::playbook::Playbook;
use super::timeline::{deadline, Cause, TimelineEvent, TimelineKind, TimerOp};

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
}

fn invalid(field: &'static str, reason: &str) -> Rejection {
    Rejection::InvalidField {
        field,
        reason: reason.to_owned(),
    }
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

    pub fn can_move_to(self, to: Stage) -> bool {
        use Stage::*;
        if self.is_terminal() || self == to {
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

    /// Stages in which no cadence or SLA may keep running.
    fn stops_timers(self) -> bool {
        self.is_terminal() || matches!(self, Stage::Unreachable | Stage::Nurture)
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consent {
    pub voice: bool,
    pub sms: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub name: String,
    /// E.164.
    pub phone: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub timezone: Option<String>,
    /// Absent consent means none: never call or text without it.
    #[serde(default)]
    pub consent: Consent,
}

/// `+`, then 8 to 15 digits, the first not 0.
pub fn validate_e164(phone: &str) -> Result<(), Rejection> {
    let shape = "must be e.164: '+' then 8 to 15 digits";
    let digits = phone
        .strip_prefix('+')
        .ok_or_else(|| invalid("phone", shape))?;
    if !(8..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid("phone", shape));
    }
    if digits.starts_with('0') {
        return Err(invalid("phone", "country code must not start with 0"));
    }
    Ok(())
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
    }
}
parse_by_name!(OppTimer, "timer", Rejection);

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
    /// Timers that fired while paused, re-fired in order on resume.
    pub held_timers: Vec<OppTimer>,
    pub escalated: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
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
    }
}

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
    },
    Pause {
        by: String,
        #[serde(default)]
        reason: Option<String>,
    },
    Resume {
        by: String,
    },
    Reassign {
        assignee: String,
        by: String,
        reason: String,
    },
    Escalate {
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
    /// An inbound SMS from the lead.
    Replied {
        body: String,
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
    },
    SendSms {
        to: String,
        body: String,
    },
    NotifyEscalation {
        queue: String,
        reason: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OppReply {
    Created,
    AlreadyExists,
    Applied,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OppDecision {
    pub state: Opportunity,
    pub effects: Vec<OppEffect>,
    pub timers: Vec<TimerOp<OppTimer>>,
    pub timeline: Vec<TimelineEvent>,
    pub reply: OppReply,
}

/// The opportunity's transition function.
pub fn apply(
    state: Option<&Opportunity>,
    input: OppInput,
    now: DateTime<Utc>,
    playbook: &Playbook,
) -> Result<OppDecision, Rejection> {
    let Some(current) = state else {
        return create(input, now, playbook);
    };
    let reply = match input {
        OppInput::Create { .. } => OppReply::AlreadyExists,
        _ => OppReply::Applied,
    };
    let mut step = Step::new(current.clone(), now, playbook);
    match input {
        OppInput::Create { .. } => {}
        OppInput::Pause { by, reason } => step.pause(by, reason)?,
        OppInput::Resume { by } => step.resume(by)?,
        OppInput::Reassign {
            assignee,
            by,
            reason,
        } => step.reassign(assignee, by, reason)?,
        OppInput::Escalate { by, reason } => step.operator_escalate(by, reason)?,
        OppInput::SetStage { stage, by, reason } => step.set_stage(stage, by, reason)?,
        OppInput::TimerFired { timer } => step.fire(timer),
        OppInput::CallFinished { call_id, result } => step.call_finished(call_id, result),
        OppInput::Replied { body } => step.replied(body),
    }
    Ok(step.finish(Some(current), reply))
}

fn create(input: OppInput, now: DateTime<Utc>, pb: &Playbook) -> Result<OppDecision, Rejection> {
    let OppInput::Create {
        id,
        external_id,
        contact,
        playbook,
        sla,
        assignee,
    } = input
    else {
        return Err(Rejection::NotFound);
    };
    if external_id.trim().is_empty() {
        return Err(invalid("external_id", "must not be empty"));
    }
    validate_e164(&contact.phone)?;
    if playbook != pb.name {
        let supplied = pb.name.clone();
        return Err(Rejection::PlaybookMismatch {
            requested: playbook,
            supplied,
        });
    }
    if assignee.as_ref().is_some_and(|a| a.trim().is_empty()) {
        return Err(invalid("assignee", "must not be empty"));
    }
    let first_touch_seconds = match sla.and_then(|s| s.first_touch_seconds) {
        Some(0) => return Err(invalid("sla.first_touch_seconds", "must be at least 1")),
        Some(seconds) => seconds,
        None => pb.first_touch_sla_seconds,
    };
    let opp = Opportunity {
        id,
        external_id,
        contact,
        stage: Stage::New,
        assignee: assignee.unwrap_or_else(|| "unassigned".to_owned()),
        paused: false,
        attempts: 0,
        playbook,
        first_touch_seconds,
        reached: false,
        active_call: None,
        held_timers: Vec::new(),
        escalated: false,
        created_at: now,
        updated_at: now,
    };
    let mut step = Step::new(opp, now, pb);
    let o = &step.opp;
    let text = format!("created for {} with playbook {}", o.external_id, o.playbook);
    let data = json!({ "external_id": o.external_id, "playbook": o.playbook,
        "assignee": o.assignee, "first_touch_seconds": first_touch_seconds });
    step.event(TimelineKind::Created, Cause::System, text, data);
    let text = format!("playbook {} started the first touch", pb.name);
    step.move_stage(Stage::Contacting, Cause::Playbook, text);
    let consent = step.opp.contact.consent;
    if consent.voice && step.opp.attempts < pb.max_attempts {
        step.place_call();
    } else if let (true, Some(body)) = (consent.sms, pb.missed_call_sms(&step.opp.contact.name)) {
        step.send_sms(body, "first touch without voice consent");
    }
    step.set(OppTimer::FirstTouchSla, first_touch_seconds);
    Ok(step.finish(None, OppReply::Created))
}

/// Accumulates one transition's outputs.
struct Step<'a> {
    opp: Opportunity,
    now: DateTime<Utc>,
    pb: &'a Playbook,
    effects: Vec<OppEffect>,
    timers: Vec<TimerOp<OppTimer>>,
    timeline: Vec<TimelineEvent>,
}

impl<'a> Step<'a> {
    fn new(opp: Opportunity, now: DateTime<Utc>, pb: &'a Playbook) -> Self {
        let (effects, timers, timeline) = (Vec::new(), Vec::new(), Vec::new());
        Self {
            opp,
            now,
            pb,
            effects,
            timers,
            timeline,
        }
    }

    /// `before` is `None` for a creation.
    fn finish(mut self, before: Option<&Opportunity>, reply: OppReply) -> OppDecision {
        // A no-op keeps `updated_at` too, so duplicates and late deliveries
        // leave no trace.
        let touched = before.is_none_or(|b| self.opp != *b)
            || !self.effects.is_empty()
            || !self.timers.is_empty()
            || !self.timeline.is_empty();
        if touched {
            self.opp.updated_at = self.now;
        }
        OppDecision {
            state: self.opp,
            effects: self.effects,
            timers: self.timers,
            timeline: self.timeline,
            reply,
        }
    }

    fn event(&mut self, kind: TimelineKind, cause: Cause, reason: String, data: serde_json::Value) {
        self.timeline
            .push(TimelineEvent::new(kind, cause, reason, data));
    }

    /// Keeps at most one op per timer so the host never sees a set and a
    /// clear of the same timer in one decision and has to guess the order.
    fn set(&mut self, name: OppTimer, seconds: u64) {
        self.timers.retain(|op| timer_name(op) != name);
        let at = deadline(self.now, seconds);
        self.timers.push(TimerOp::Set { name, at });
    }

    fn clear(&mut self, name: OppTimer) {
        self.timers.retain(|op| timer_name(op) != name);
        self.timers.push(TimerOp::Clear { name });
        self.opp.held_timers.retain(|held| *held != name);
    }

    fn mark_reached(&mut self) {
        self.opp.reached = true;
        self.clear(OppTimer::FirstTouchSla);
    }

    fn move_stage(&mut self, to: Stage, cause: Cause, reason: String) {
        let from = std::mem::replace(&mut self.opp.stage, to);
        self.event(
            TimelineKind::StageChanged,
            cause,
            reason,
            json!({ "from": from, "to": to }),
        );
        if from == Stage::Contacting {
            // The call cadence only runs while contacting.
            self.clear(OppTimer::RetryCall);
        }
        if to.stops_timers() {
            for &timer in OppTimer::ALL {
                self.clear(timer);
            }
        }
        if to.implies_reached() {
            self.mark_reached();
        }
    }
}

fn timer_name(op: &TimerOp<OppTimer>) -> OppTimer {
    match op {
        TimerOp::Set { name, .. } | TimerOp::Clear { name } => *name,
    }
}

fn with_reason(text: String, reason: Option<&str>) -> String {
    match reason.map(str::trim) {
        Some(r) if !r.is_empty() => format!("{text}: {r}"),
        _ => text,
    }
}

// Operator commands.
impl Step<'_> {
    fn pause(&mut self, by: String, reason: Option<String>) -> Result<(), Rejection> {
        if self.opp.paused {
            return Err(Rejection::AlreadyPaused);
        }
        self.opp.paused = true;
        let text = with_reason(format!("paused by {by}"), reason.as_deref());
        let data = json!({ "by": by, "reason": reason });
        self.event(TimelineKind::Paused, Cause::Operator(by), text, data);
        Ok(())
    }

    fn resume(&mut self, by: String) -> Result<(), Rejection> {
        if !self.opp.paused {
            return Err(Rejection::NotPaused);
        }
        self.opp.paused = false;
        let held = std::mem::take(&mut self.opp.held_timers);
        let (text, data) = (
            format!("resumed by {by}"),
            json!({ "by": by, "held_timers": held }),
        );
        self.event(TimelineKind::Resumed, Cause::Operator(by), text, data);
        for timer in held {
            self.fire(timer);
        }
        Ok(())
    }

    fn reassign(&mut self, to: String, by: String, reason: String) -> Result<(), Rejection> {
        if to.trim().is_empty() {
            return Err(invalid("assignee", "must not be empty"));
        }
        if to == self.opp.assignee {
            return Ok(()); // reassigning is idempotent
        }
        let from = std::mem::replace(&mut self.opp.assignee, to.clone());
        let text = with_reason(
            format!("reassigned from {from} to {to} by {by}"),
            Some(&reason),
        );
        let data = json!({ "from": from, "to": to, "by": by, "reason": reason });
        self.event(TimelineKind::Reassigned, Cause::Operator(by), text, data);
        Ok(())
    }

    fn operator_escalate(&mut self, by: String, reason: Option<String>) -> Result<(), Rejection> {
        let stage = self.opp.stage;
        if stage.is_terminal() {
            return Err(Rejection::Terminal {
                stage,
                action: "escalate",
            });
        }
        if self.opp.paused {
            // Escalating notifies a queue, and a paused opportunity emits
            // nothing; unlike a timer, an operator's request cannot be held.
            return Err(Rejection::Paused {
                action: "escalating",
            });
        }
        let text = with_reason(format!("escalated by {by}"), reason.as_deref());
        self.escalate(Cause::Operator(by), text, None);
        Ok(())
    }

    fn set_stage(
        &mut self,
        to: Stage,
        by: String,
        reason: Option<String>,
    ) -> Result<(), Rejection> {
        let from = self.opp.stage;
        if to == from {
            return Ok(()); // an operator's retried request is not an error
        }
        if !from.can_move_to(to) {
            return Err(Rejection::IllegalTransition { from, to });
        }
        let text = with_reason(
            format!("moved from {from} to {to} by {by}"),
            reason.as_deref(),
        );
        self.move_stage(to, Cause::Operator(by), text);
        if to == Stage::Contacting && self.can_retry() {
            // Otherwise nothing would ever dial again in contacting.
            self.set(OppTimer::RetryCall, 0);
        }
        Ok(())
    }
}

// System inputs: timers, call outcomes, replies.
impl Step<'_> {
    fn can_retry(&self) -> bool {
        self.opp.stage == Stage::Contacting
            && self.opp.contact.consent.voice
            && self.opp.active_call.is_none()
            && self.opp.attempts < self.pb.max_attempts
    }

    fn fire(&mut self, timer: OppTimer) {
        // A firing can race a clear, so each timer re-checks that it applies.
        let applies = !self.opp.stage.is_terminal()
            && match timer {
                OppTimer::FirstTouchSla => !self.opp.reached,
                OppTimer::ResponseSla => true,
                OppTimer::RetryCall => self.can_retry(),
            };
        if !applies {
            return;
        }
        if self.opp.paused {
            return self.hold(timer, "");
        }
        let text = match timer {
            OppTimer::FirstTouchSla => format!(
                "lead not reached within {} s of creation",
                self.opp.first_touch_seconds
            ),
            OppTimer::ResponseSla => format!(
                "no human response within {} s of the lead's reply",
                self.pb.response_sla_seconds
            ),
            OppTimer::RetryCall => return self.place_call(),
        };
        self.escalate(Cause::Playbook, text, Some(timer));
    }

    fn hold(&mut self, timer: OppTimer, note: &str) {
        if !self.opp.held_timers.contains(&timer) {
            self.opp.held_timers.push(timer);
        }
        let text = format!("{timer} held until the opportunity is resumed{note}");
        self.event(
            TimelineKind::TimerHeld,
            Cause::System,
            text,
            json!({ "timer": timer }),
        );
    }

    fn escalate(&mut self, cause: Cause, text: String, timer: Option<OppTimer>) {
        let queue = self.pb.escalation_queue.clone();
        let from = std::mem::replace(&mut self.opp.assignee, queue.clone());
        self.opp.escalated = true;
        let reason = text.clone();
        self.effects.push(OppEffect::NotifyEscalation {
            queue: queue.clone(),
            reason,
        });
        let text = format!("{text}; moved to the {queue} queue");
        let data = json!({ "queue": queue, "from_assignee": from, "timer": timer });
        self.event(TimelineKind::SlaEscalated, cause, text, data);
    }

    fn place_call(&mut self) {
        self.opp.attempts += 1;
        let (attempt, max) = (self.opp.attempts, self.pb.max_attempts);
        // Derived, not random: a replayed transition must name the same call.
        let call_id = Uuid::new_v5(&self.opp.id, format!("call-{attempt}").as_bytes());
        self.opp.active_call = Some(call_id);
        let to = self.opp.contact.phone.clone();
        self.effects.push(OppEffect::StartCall {
            call_id,
            to,
            attempt,
        });
        let text = format!("call attempt {attempt} of {max}");
        let data = json!({ "call_id": call_id, "attempt": attempt, "max_attempts": max });
        self.event(TimelineKind::CallPlaced, Cause::Playbook, text, data);
    }

    fn send_sms(&mut self, body: String, why: &str) {
        let data = json!({ "effect": "send_sms", "body": body });
        let to = self.opp.contact.phone.clone();
        self.effects.push(OppEffect::SendSms { to, body });
        let text = format!("sms sent to the lead ({why})");
        self.event(TimelineKind::EffectSent, Cause::Playbook, text, data);
    }

    fn call_finished(&mut self, call_id: Uuid, result: CallResult) {
        if self.opp.active_call != Some(call_id) {
            return; // duplicate or late: counting it again would skew attempts
        }
        self.opp.active_call = None;
        let attempt = self.opp.attempts;
        let text = format!("call attempt {attempt} ended: {result}");
        let data = json!({ "call_id": call_id, "attempt": attempt, "result": result });
        self.event(TimelineKind::CallOutcome, Cause::Channel, text, data);
        let stage = self.opp.stage;
        if stage.is_terminal() {
            return;
        }
        if result == CallResult::Answered {
            self.mark_reached();
            if stage == Stage::Contacting {
                let text = "the lead answered the call".to_owned();
                self.move_stage(Stage::Engaged, Cause::Contact, text);
            }
        } else if stage == Stage::Contacting {
            self.after_missed_call();
        }
    }

    fn after_missed_call(&mut self) {
        let (attempts, max) = (self.opp.attempts, self.pb.max_attempts);
        let exhausted = attempts >= max;
        if self.opp.paused {
            // The follow-up waits for resume; the sms is not worth holding
            // since the retried call reaches the lead anyway.
            if !exhausted {
                self.hold(OppTimer::RetryCall, "; the missed-call sms was skipped");
            }
        } else {
            let sms = self.pb.missed_call_sms(&self.opp.contact.name);
            if let (true, Some(body)) = (self.opp.contact.consent.sms, sms) {
                self.send_sms(body, "follow-up after a missed call");
            }
            if !exhausted {
                self.set(OppTimer::RetryCall, self.pb.retry_delay_seconds);
            }
        }
        if exhausted {
            let text = format!("lead not reached after {attempts} call attempts");
            let data = json!({ "attempts": attempts, "max_attempts": max });
            self.event(TimelineKind::AttemptsExhausted, Cause::Playbook, text, data);
            let text = "every call attempt went unanswered".to_owned();
            self.move_stage(Stage::Unreachable, Cause::Playbook, text);
        }
    }

    fn replied(&mut self, body: String) {
        let text = "the lead replied by sms".to_owned();
        self.event(
            TimelineKind::Replied,
            Cause::Contact,
            text,
            json!({ "body": body }),
        );
        if self.opp.stage.is_terminal() {
            return;
        }
        self.mark_reached();
        if self.opp.stage == Stage::Contacting {
            let text = "the lead replied".to_owned();
            self.move_stage(Stage::Engaged, Cause::Contact, text);
        }
        self.set(OppTimer::ResponseSla, self.pb.response_sla_seconds);
    }
}

#[cfg(test)]
#[path = "opportunity_tests.rs"]
mod tests;
