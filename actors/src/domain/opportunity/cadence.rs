//! The cadence: timers, call outcomes, and every outbound call or text,
//! each checked against the compliance gate first.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;
use uuid::Uuid;

use super::{CallResult, OppEffect, OppTimer, PendingSms, Stage, Step};
use crate::domain::call::{Agent, UnattendedReason};
use crate::domain::compliance::{self, Channel, Decision, GateInput, Purpose, CAP_WINDOW_HOURS};
use crate::domain::playbook::{fill, ConnectMode, EmailStep};
use crate::domain::timeline::{Cause, TimelineKind};

/// Agent first by the playbook: how soon after a rep passes the lead is offered to the next.
const NEXT_REP_AFTER_SECONDS: u64 = 5;

/// Appends `now`, dropping instants older than the gate's cap window.
pub(super) fn record(instants: &mut Vec<DateTime<Utc>>, now: DateTime<Utc>) {
    if let Some(cutoff) = now.checked_sub_signed(TimeDelta::hours(i64::from(CAP_WINDOW_HOURS))) {
        instants.retain(|&at| at > cutoff);
    }
    instants.push(now);
}

impl Step<'_> {
    /// The compliance gate's verdict on one outbound message right now. The
    /// do-not-call list is checked by the dispatcher at send time; here
    /// `on_dnc` only reflects channels it has already refused.
    pub(super) fn gate(&self, channel: Channel, purpose: Purpose) -> Decision {
        let o = &self.opp;
        let Some(phone) = o.contact.phone.as_deref() else {
            return Decision::Deny {
                reason: compliance::BlockReason::NoPhone,
            };
        };
        let recent_attempts = match channel {
            Channel::Voice => &o.call_attempts,
            Channel::Sms => &o.sms_sent,
        };
        compliance::check(
            self.rules,
            &GateInput {
                channel,
                purpose,
                phone,
                contact_timezone: o.contact.timezone.as_deref(),
                consent_voice: o.contact.consent.voice,
                consent_sms: o.contact.consent.sms,
                opted_out: o.opted_out,
                opt_out_confirmation_sent: o.opt_out_confirmed,
                on_dnc: o.dnc_channels.contains(&channel),
                recent_attempts,
                now: self.now,
            },
        )
    }

    /// Records a deferral or denial in the timeline.
    pub(super) fn blocked(&mut self, channel: Channel, decision: &Decision) {
        let version = self.rules.version.clone();
        let (text, data) = match decision {
            Decision::Allow => return,
            Decision::Defer { until, reason } => (
                reason.describe(),
                json!({ "channel": channel, "decision": "defer", "until": until,
                    "rules_version": version }),
            ),
            Decision::Deny { reason } => (
                reason.describe(),
                json!({ "channel": channel, "decision": "deny", "rules_version": version }),
            ),
        };
        self.event(TimelineKind::ComplianceBlocked, Cause::System, text, data);
    }

    pub(super) fn can_retry(&self) -> bool {
        self.opp.stage == Stage::Contacting
            && self.opp.contact.consent.voice
            && self.opp.active_call.is_none()
            && self.opp.attempts < self.pb.max_attempts
            && !(self.pb.takeover_stops_calls && self.opp.takeover.is_some())
            // A skipped duplicate (ADR 0046) never runs a cadence of its own.
            && self.opp.duplicate_of.is_none()
    }

    pub(super) fn fire(&mut self, timer: OppTimer) {
        // A firing can race a clear, so each timer re-checks that it applies.
        let applies = !self.opp.stage.is_terminal()
            && match timer {
                OppTimer::FirstTouchSla => !self.opp.reached,
                OppTimer::ResponseSla => true,
                OppTimer::RetryCall => self.can_retry(),
                OppTimer::SendSms => self.opp.pending_sms.is_some(),
                OppTimer::CallbackSla => true,
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
            OppTimer::CallbackSla => format!(
                "the callback owed to the lead was not made within {} s",
                self.pb.callback_sla_seconds
            ),
            OppTimer::RetryCall => return self.try_call(),
            OppTimer::SendSms => {
                if let Some(pending) = self.opp.pending_sms.take() {
                    self.try_sms(pending.body, "deferred until the rules permitted it");
                }
                return;
            }
        };
        self.escalate(Cause::Playbook, text, Some(timer));
    }

    pub(super) fn hold(&mut self, timer: OppTimer, note: &str) {
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

    /// The opportunity's escalation queue: the playbook's, per team.
    pub(super) fn queue(&self) -> String {
        match &self.opp.team {
            Some(team) => format!("{}:{team}", self.pb.escalation_queue),
            None => self.pb.escalation_queue.clone(),
        }
    }

    pub(super) fn escalate(&mut self, cause: Cause, text: String, timer: Option<OppTimer>) {
        let queue = self.queue();
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

    /// The next cadence call, if the gate allows it now. A deferral re-arms
    /// `RetryCall` at the permitted instant without counting an attempt; a
    /// denial (no consent, opted out, do-not-call, unknown zone, no permitted
    /// time) stops the call cadence: only an operator or a changed fact
    /// restarts it. The first-touch SLA keeps running either way.
    pub(super) fn try_call(&mut self) {
        let decision = self.gate(Channel::Voice, Purpose::Marketing);
        self.blocked(Channel::Voice, &decision);
        match decision {
            Decision::Allow => self.place_call(),
            Decision::Defer { until, .. } => self.set_at(OppTimer::RetryCall, until),
            Decision::Deny { .. } => {}
        }
    }

    fn place_call(&mut self) {
        self.place_call_with(None, Cause::Playbook);
    }

    /// Places the next call: to the lead, or agent first to `agent` (click to call).
    pub(super) fn place_call_with(&mut self, agent: Option<Agent>, cause: Cause) {
        // The gate denies a lead without a phone; nothing is counted for a call never placed.
        let Some(to) = self.opp.contact.phone.clone() else {
            return;
        };
        self.opp.attempts += 1;
        record(&mut self.opp.call_attempts, self.now);
        let (attempt, max) = (self.opp.attempts, self.pb.max_attempts);
        // Derived, not random: a replayed transition must name the same call.
        let call_id = Uuid::new_v5(&self.opp.id, format!("call-{attempt}").as_bytes());
        self.opp.active_call = Some(call_id);
        self.opp.live_call = Some(super::LiveCall {
            call_id,
            hang_up_asked: false,
        });
        let text = match &agent {
            None => format!("call attempt {attempt} of {max}"),
            Some(a) => format!(
                "call attempt {attempt} of {max}: ringing {} first, then the lead",
                a.rep
            ),
        };
        // The rules the gate allowed it under, for audit.
        let rep = agent.as_ref().map(|a| a.rep.clone());
        let data = json!({ "call_id": call_id, "attempt": attempt, "max_attempts": max,
            "rules_version": self.rules.version, "agent_first": rep });
        self.effects.push(OppEffect::StartCall {
            call_id,
            to,
            attempt,
            agent,
        });
        self.event(TimelineKind::CallPlaced, cause, text, data);
    }

    /// A marketing text, if the line takes texts (see `line`) and the gate allows it now. A
    /// deferral keeps it as `pending_sms` (replacing any older one) with `SendSms` armed at the
    /// permitted instant, where it is checked again; a denial drops it.
    pub(super) fn try_sms(&mut self, body: String, why: &str) {
        if let Some(t) = self.opp.line_type.filter(|t| !t.takes_texts()) {
            return self.sms_skipped(t, &format!("sms skipped ({why})"));
        }
        if self.opp.takeover.is_some() {
            // A human is writing to the lead: the playbook's texts stay out of it.
            return self.skipped_for_takeover(why);
        }
        let decision = self.gate(Channel::Sms, Purpose::Marketing);
        self.blocked(Channel::Sms, &decision);
        match decision {
            Decision::Allow => {
                record(&mut self.opp.sms_sent, self.now);
                self.send_sms(body, Purpose::Marketing, why);
            }
            Decision::Defer { until, .. } => {
                let purpose = Purpose::Marketing;
                self.opp.pending_sms = Some(PendingSms { body, purpose });
                self.set_at(OppTimer::SendSms, until);
            }
            Decision::Deny { .. } => {}
        }
    }

    /// Emits a text the gate already allowed.
    pub(super) fn send_sms(&mut self, body: String, purpose: Purpose, why: &str) {
        self.send_sms_by(body, purpose, None, why);
    }

    /// Emits a text the gate already allowed, written by `by` (a person) or the playbook.
    pub(super) fn send_sms_by(
        &mut self,
        body: String,
        purpose: Purpose,
        by: Option<String>,
        why: &str,
    ) {
        let mut data = json!({ "effect": "send_sms", "body": body, "purpose": purpose,
            "rules_version": self.rules.version });
        let cause = match &by {
            Some(person) => {
                data["by"] = json!(person);
                Cause::Operator(person.clone())
            }
            None => Cause::Playbook,
        };
        // Every text passed the gate or answers a text from the number: a phone is there.
        let Some(to) = self.opp.contact.phone.clone() else {
            return;
        };
        self.effects.push(OppEffect::SendSms {
            to,
            body,
            purpose,
            by,
        });
        let text = format!("sms sent to the lead ({why})");
        self.event(TimelineKind::EffectSent, cause, text, data);
    }

    pub(super) fn call_finished(&mut self, call_id: Uuid, result: CallResult) {
        if result != CallResult::Answered {
            // Every outcome but an answer is reported at the call's end.
            self.call_ended(call_id);
        }
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
        if result == CallResult::Blocked {
            // Not a missed call: no follow-up text, no retry, and voice stays closed.
            let reason = "the call was not placed: the number is on the tenant's do-not-call list";
            self.effect_blocked(Channel::Voice, reason.to_owned());
            return;
        }
        if result == CallResult::RepMissed {
            // The lead was never dialled: nothing to follow up with the lead about. Agent first
            // by the playbook, the next attempt soon rings the next free rep.
            if self.pb.call_flow.connect == ConnectMode::AgentFirst
                && stage == Stage::Contacting
                && self.opp.attempts < self.pb.max_attempts
            {
                if self.opp.paused {
                    self.hold(OppTimer::RetryCall, "");
                } else {
                    self.set(OppTimer::RetryCall, NEXT_REP_AFTER_SECONDS);
                }
            }
            return;
        }
        if result == CallResult::Answered {
            self.mark_reached();
            if stage == Stage::Contacting {
                let text = "the lead answered the call".to_owned();
                self.move_stage(Stage::Engaged, Cause::Contact, text);
            }
        } else if stage == Stage::Contacting {
            // A machine, no answer, busy, failed or canceled call.
            self.after_missed_call();
        }
    }

    /// The lead answered and nobody took the call: the lead is reached (no more cadence
    /// calls), told by text that someone will call back, and the opportunity goes to its
    /// team's queue so a person does.
    pub(super) fn call_unattended(
        &mut self,
        call_id: Uuid,
        reason: UnattendedReason,
        inbound: bool,
    ) {
        if self.opp.stage.is_terminal() {
            return;
        }
        self.mark_reached();
        let flow = &self.pb.call_flow;
        let (sms, who) = if inbound {
            (flow.inbound_callback_sms.as_deref(), "the lead called")
        } else {
            (flow.callback_sms.as_deref(), "the lead answered")
        };
        let sms = sms.map(|t| fill(t, &self.opp.contact.name));
        if let (false, true, Some(body)) = (self.opp.paused, self.opp.contact.consent.sms, sms) {
            self.try_sms(body, &format!("{who} while no rep was free"));
        }
        let text = match reason {
            UnattendedReason::NoRepAvailable => format!("{who} and no rep was available"),
            UnattendedReason::RepsMissed => format!("{who} and every rep rung missed the call"),
            UnattendedReason::CallerHungUp => format!("{who} and hung up before reaching a rep"),
        };
        let data = json!({ "event": "unattended", "call_id": call_id, "reason": reason,
            "inbound": inbound });
        self.event(
            TimelineKind::Conversation,
            Cause::Channel,
            text.clone(),
            data,
        );
        let text = format!("{text} (call {call_id}); a callback is owed");
        self.escalate(Cause::Channel, text, None);
        // A rep must talk with the lead in time, else the people are told again.
        self.set(OppTimer::CallbackSla, self.pb.callback_sla_seconds);
    }

    /// The lead talked with a rep on one of this opportunity's calls.
    pub(super) fn call_connected(&mut self, call_id: Uuid, rep: Option<String>, talk_seconds: u32) {
        if !self.opp.reached {
            self.mark_reached();
        }
        let who = rep.as_deref().unwrap_or("a rep");
        let text = format!("talked with {who} for {talk_seconds} s");
        let data = json!({ "event": "conversation", "call_id": call_id, "rep": rep,
            "talk_seconds": talk_seconds });
        self.event(TimelineKind::Conversation, Cause::Contact, text, data);
        // Whatever was owed, a rep has now talked with the lead.
        self.clear(OppTimer::CallbackSla);
        // A lead who called in and talked with a rep is engaged, as one who answered our call
        // is (an answered outbound call moved the stage at the answer already).
        if self.opp.stage == Stage::Contacting {
            let text = format!("the lead talked with {who}");
            self.move_stage(Stage::Engaged, Cause::Contact, text);
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
                self.try_sms(body, "follow-up after a missed call");
            }
            self.try_email(EmailStep::AfterMissedCall, "follow-up after a missed call");
            if !exhausted {
                // The gate is asked when the timer fires.
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
}
