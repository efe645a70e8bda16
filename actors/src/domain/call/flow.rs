//! The call flow after a person answers: which reps were rung, who picked up, the
//! conversation, and the one report to the opportunity when nobody took the lead.
//!
//! The reps are chosen outside (their availability is shared, mutable state the pure
//! transition cannot read); the flow's webhooks tell the call what was decided and what the
//! provider reported, and the call keeps the record and decides what it means for the
//! opportunity. Every input here may arrive twice or out of order (a whisper request after
//! the dial that it belongs to ended), so each one is applied only when it adds something.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::Rejection;
use crate::domain::call::CallEffect;
use crate::domain::opportunity::CallResult;
use crate::domain::timeline::{Cause, TimelineEvent, TimelineKind};

use super::progress::Step;
use super::CallTimer;

/// Agent first: how long a call whose rep accepted waits, after its own end, for the dial to
/// the lead to report (the two callbacks race; seconds apart at most when nothing is lost).
const AWAIT_DIAL_RESULT_SECONDS: u64 = 60;

named_enum! {
    /// `DialCallStatus`, spelled as Twilio spells it.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    pub enum DialStatus {
        Completed = "completed",
        Answered = "answered",
        Busy = "busy",
        NoAnswer = "no-answer",
        Failed = "failed",
        Canceled = "canceled",
    }
}
parse_by_name!(DialStatus, "dial call status", Rejection);

named_enum! {
    /// Why an answered lead reached nobody.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    pub enum UnattendedReason {
        /// No rep of the team was available, in hours and below their call limit.
        NoRepAvailable = "no_rep_available",
        /// Every rep rung missed the call (no answer, busy, declined).
        RepsMissed = "reps_missed",
        /// The lead who called in was gone before any rep was put through (hung up during the
        /// greeting, or the carrier never reported the dial): found by the inbound watchdog.
        CallerHungUp = "caller_hung_up",
    }
}
parse_by_name!(UnattendedReason, "unattended reason", Rejection);

/// The call flow's record on the call (see `CallInput::RepsRung` and the inputs after it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flow {
    /// Every rep rung for this call, in order.
    #[serde(default)]
    pub rung: Vec<String>,
    /// Legs a rep picked up: (rep, leg sid).
    #[serde(default)]
    pub answered: Vec<RepLeg>,
    /// The conversation, once the provider reports the lead and a rep were connected.
    #[serde(default)]
    pub conversation: Option<Conversation>,
    /// The opportunity was told nobody took the call (once).
    #[serde(default)]
    pub unattended: bool,
    /// Recordings of the conversation the carrier reported (sid and length; the audio stays
    /// with the carrier, fetched by sid from the tenant's own account).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recordings: Vec<RecordingMeta>,
}

/// A recording the carrier keeps for this call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingMeta {
    /// `RE` + 32 hex digits (checked by the webhook before it reaches the call).
    pub sid: String,
    pub duration_seconds: u32,
    /// The consent the call was made under: `all_party` (announced), `one_party`, `unknown`
    /// (announced).
    pub consent: String,
}

impl Flow {
    pub fn is_empty(&self) -> bool {
        *self == Flow::default()
    }
}

/// Agent first: the rep a call rings before the lead (click to call). The lead is dialled
/// only once this rep picks up and presses 1; until then the call's provider leg is the rep's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agent {
    /// The principal's name.
    pub rep: String,
    /// The rep's phone, E.164, as it was when the call was placed.
    pub phone: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepLeg {
    pub rep: String,
    pub leg_sid: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    /// The rep who talked to the lead; `None` when the provider's leg is not one we saw
    /// answer (its whisper request never reached us).
    pub rep: Option<String>,
    pub talk_seconds: u32,
}

/// What an agent-first dial to the lead that did not connect amounts to.
fn lead_result(status: DialStatus) -> CallResult {
    match status {
        DialStatus::Busy => CallResult::Busy,
        DialStatus::Failed => CallResult::Failed,
        DialStatus::Canceled => CallResult::Canceled,
        DialStatus::NoAnswer | DialStatus::Completed | DialStatus::Answered => CallResult::NoAnswer,
    }
}

impl Step<'_> {
    pub(super) fn reps_rung(&mut self, reps: Vec<String>) {
        let new: Vec<String> = reps
            .into_iter()
            .filter(|r| !r.trim().is_empty() && !self.call.flow.rung.contains(r))
            .collect();
        if new.is_empty() {
            return;
        }
        self.call.flow.rung.extend(new.iter().cloned());
        let text = format!("ringing {}", new.join(", "));
        self.conversation_event(text, json!({ "event": "reps_rung", "reps": new }));
    }

    pub(super) fn rep_answered(&mut self, rep: String, leg_sid: String) {
        if rep.trim().is_empty() || leg_sid.trim().is_empty() {
            return;
        }
        if self.call.flow.answered.iter().any(|l| l.leg_sid == leg_sid) {
            return;
        }
        self.call.flow.answered.push(RepLeg {
            rep: rep.clone(),
            leg_sid: leg_sid.clone(),
        });
        let text = format!("{rep} picked up");
        let data = json!({ "event": "rep_answered", "rep": rep, "leg_sid": leg_sid });
        self.conversation_event(text, data);
        // Lead first: a rep on the line is the connection the answered call stands for (the
        // opportunity was told at the answer already; `report` sends once). Agent first: the
        // rep only accepted; the lead is reached when the dial to them connects.
        if self.call.agent.is_none() {
            self.report(CallResult::Answered);
        }
    }

    pub(super) fn dial_ended(
        &mut self,
        status: DialStatus,
        bridged: bool,
        leg_sid: Option<String>,
        talk_seconds: Option<u32>,
        reps: Vec<String>,
    ) {
        if bridged {
            if self.call.flow.conversation.is_some() {
                return; // the provider repeated the dial's action
            }
            let rep = leg_sid.as_ref().and_then(|sid| {
                self.call
                    .flow
                    .answered
                    .iter()
                    .find(|l| l.leg_sid == *sid)
                    .map(|l| l.rep.clone())
            });
            // One rep rung and connected: that rep, even if its whisper request was lost.
            let rep = rep.or_else(|| (reps.len() == 1).then(|| reps[0].clone()));
            // Agent first, the rep is the call's own leg, not a dialled one.
            let rep = rep.or_else(|| self.call.agent.as_ref().map(|a| a.rep.clone()));
            let talk = talk_seconds.unwrap_or(0);
            self.call.flow.conversation = Some(Conversation {
                rep: rep.clone(),
                talk_seconds: talk,
            });
            let who = rep.as_deref().unwrap_or("a rep");
            let text = format!("talked with {who} for {talk} s");
            let data = json!({ "event": "conversation", "rep": rep, "talk_seconds": talk,
                "dial_status": status, "leg_sid": leg_sid });
            self.conversation_event(text, data);
            // Agent first: this is the lead answering (lead first reported it at the answer).
            // If the call's own end came first, the opportunity hears the end with it.
            if self.call.status.is_terminal() {
                self.report_end(CallResult::Answered);
            } else {
                self.report(CallResult::Answered);
            }
            self.effects.push(CallEffect::Conversation {
                opportunity_id: self.call.opportunity_id,
                rep,
                talk_seconds: talk,
            });
            self.inbound_over();
            return;
        }
        let text = match reps.as_slice() {
            [] => format!("the rep's line ended without a connection ({status})"),
            reps => format!("{} missed the call ({status})", reps.join(", ")),
        };
        if self.call.agent.is_some() {
            // Agent first: the dial was to the lead, and the lead did not take it.
            let text = format!("the lead did not take the rep's call ({status})");
            let data = json!({ "event": "lead_missed", "dial_status": status, "leg_sid": leg_sid });
            self.conversation_event(text, data);
            self.report(lead_result(status));
            return;
        }
        let data = json!({ "event": "reps_missed", "reps": reps, "dial_status": status,
            "leg_sid": leg_sid });
        self.conversation_event(text, data);
    }

    pub(super) fn unattended(&mut self, reason: UnattendedReason) {
        if self.call.flow.unattended || self.call.flow.conversation.is_some() {
            return;
        }
        self.call.flow.unattended = true;
        let who = if self.call.inbound.is_some() {
            "the lead called"
        } else {
            "the lead answered"
        };
        let text = match reason {
            UnattendedReason::NoRepAvailable => {
                format!("{who} and no rep was available; the lead was told someone will call back")
            }
            UnattendedReason::RepsMissed => format!(
                "{who} and every rep rung missed the call; the lead was told someone will call back"
            ),
            UnattendedReason::CallerHungUp => {
                format!("{who} and hung up before reaching a rep")
            }
        };
        let data = json!({ "event": "unattended", "reason": reason });
        self.conversation_event(text, data);
        self.effects.push(CallEffect::Unattended {
            opportunity_id: self.call.opportunity_id,
            reason,
            inbound: self.call.inbound.is_some(),
        });
        self.inbound_over();
    }

    pub(super) fn recorded(&mut self, meta: RecordingMeta) {
        if self.call.flow.recordings.iter().any(|r| r.sid == meta.sid) {
            return; // the carrier repeated its callback
        }
        let text = format!(
            "the conversation was recorded ({} s)",
            meta.duration_seconds
        );
        let data = json!({ "event": "recorded", "recording_sid": meta.sid,
            "duration_seconds": meta.duration_seconds, "consent": meta.consent });
        self.conversation_event(text, data);
        self.call.flow.recordings.push(meta);
    }

    /// Agent first, the rep's leg (the call itself) ended before the dial to the lead reported.
    /// A rep who never accepted: the lead was not dialled at all. A rep who accepted: the
    /// dial's result is on its way (the provider posts it and the call's status separately,
    /// in either order), so it is awaited, for at most `AWAIT_DIAL_RESULT_SECONDS`.
    pub(super) fn agent_leg_ended(&mut self) {
        let Some(agent) = self.call.agent.clone() else {
            return;
        };
        if !self.call.flow.answered.is_empty() {
            self.set(CallTimer::Watchdog, AWAIT_DIAL_RESULT_SECONDS);
            return;
        }
        let text = format!(
            "{} did not take the call; the lead was not dialled",
            agent.rep
        );
        let data = json!({ "event": "rep_missed", "rep": agent.rep });
        self.conversation_event(text, data);
        self.report_end(CallResult::RepMissed);
    }

    /// The awaited dial result never came: counted as a lead who did not answer, so the
    /// opportunity's cadence goes on rather than waiting for ever.
    pub(super) fn agent_dial_result_lost(&mut self) {
        if self.call.agent.is_none() || self.call.reported {
            return;
        }
        let text = "the dial to the lead never reported its result; counted as not answered";
        let data = json!({ "event": "lead_missed", "dial_status": null });
        self.conversation_event(text.to_owned(), data);
        self.report_end(CallResult::NoAnswer);
    }

    fn conversation_event(&mut self, text: String, data: serde_json::Value) {
        self.timeline.push(TimelineEvent::new(
            TimelineKind::Conversation,
            Cause::Channel,
            text,
            data,
        ));
    }
}
