//! How one call progresses after it is placed: the provider's answers and
//! callbacks, our timers, and the single outcome report.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{outcome, AnsweredBy, Call, CallEffect, CallStatus, CallTimer, Rejection};
use crate::domain::opportunity::CallResult;
use crate::domain::playbook::Playbook;
use crate::domain::timeline::{deadline, Cause, TimelineEvent, TimelineKind, TimerOp};

pub(super) struct Step<'a> {
    pub(super) call: Call,
    pub(super) now: DateTime<Utc>,
    pub(super) pb: &'a Playbook,
    pub(super) effects: Vec<CallEffect>,
    pub(super) timers: Vec<TimerOp<CallTimer>>,
    pub(super) timeline: Vec<TimelineEvent>,
}

impl Step<'_> {
    pub(super) fn dialed(&mut self, sid: String) -> Result<(), Rejection> {
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
        } else {
            // A hang-up asked while the dial was in flight goes out now.
            self.send_owed_hang_up();
        }
        self.event(
            Cause::Channel,
            format!("the provider accepted the call as {sid}"),
            json!({ "status": self.call.status, "provider_sid": sid }),
        );
        Ok(())
    }

    pub(super) fn dial_failed(&mut self, reason: String) {
        // Once the provider has accepted the call its callbacks are the
        // authority; a late refusal from a retried request cannot undo that.
        if self.call.status != CallStatus::Queued || self.call.provider_sid.is_some() {
            return;
        }
        let text = format!("the provider refused the call: {reason}");
        self.end(CallStatus::Failed, CallResult::Failed, Cause::Channel, text);
    }

    pub(super) fn dial_blocked(&mut self, reason: String) {
        if self.call.status != CallStatus::Queued || self.call.provider_sid.is_some() {
            return;
        }
        let text = format!("the call was not placed: {reason}");
        self.end(CallStatus::Failed, CallResult::Blocked, Cause::System, text);
    }

    pub(super) fn dial_unknown(&mut self, reason: String) {
        // Any sign of the provider having the call makes this moot.
        if self.call.status != CallStatus::Queued
            || self.call.provider_sid.is_some()
            || self.call.dial_unknown
        {
            return;
        }
        self.call.dial_unknown = true;
        self.event(
            Cause::Channel,
            format!(
                "the dial request's outcome is unknown ({reason}); not dialing again, \
                 waiting for the provider's callbacks"
            ),
            json!({ "status": self.call.status, "reason": reason }),
        );
    }

    pub(super) fn status(
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
        if from.is_terminal() && !status.is_terminal() {
            // Closed locally (ring timeout, watchdog) while the provider says the call is
            // still going: hang that leg up.
            self.late_live_callback(status, provider_sid);
            return Ok(());
        }
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
        if !status.is_terminal() {
            self.send_owed_hang_up();
        }
        if status == CallStatus::InProgress {
            self.clear(CallTimer::RingTimeout);
            // Agent first, the provider's leg is the rep's: their answer is not the lead's.
            if by == Some(AnsweredBy::Human) && self.call.agent.is_none() {
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
            self.clear(CallTimer::RingTimeout);
            self.clear(CallTimer::Watchdog);
            if self.call.agent.is_some() && !self.call.reported {
                self.agent_leg_ended();
            } else {
                self.report_end(outcome(status, was_in_progress, by));
            }
        }
        Ok(())
    }

    pub(super) fn timer_fired(&mut self, timer: CallTimer) {
        let status = self.call.status;
        if status.is_terminal() {
            if timer == CallTimer::Watchdog {
                self.agent_dial_result_lost();
            }
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
            CallTimer::Watchdog if self.call.inbound.is_some() => self.inbound_watchdog(),
            CallTimer::Watchdog => self.watchdog(status),
        }
    }

    /// Asks the provider once, then gives up.
    fn watchdog(&mut self, status: CallStatus) {
        let seconds = self.pb.call_watchdog_seconds;
        if let (false, Some(sid)) = (self.call.fetch_attempted, self.call.provider_sid.clone()) {
            self.call.fetch_attempted = true;
            self.effects.push(CallEffect::Fetch {
                provider_sid: sid.clone(),
            });
            self.timers.push(TimerOp::Set {
                name: CallTimer::Watchdog,
                at: deadline(self.now, seconds),
            });
            self.event(
                Cause::System,
                format!("no terminal status within {seconds} s; asking the provider for the call"),
                json!({ "status": status, "provider_sid": sid }),
            );
            return;
        }
        // A call still in progress did connect; reporting it failed would
        // make the opportunity redial a lead who picked up.
        let result = if status == CallStatus::InProgress {
            outcome(CallStatus::Completed, true, self.call.answered_by)
        } else {
            CallResult::Failed
        };
        let text = if self.call.fetch_attempted {
            "still no terminal status after asking the provider; marking the call failed".to_owned()
        } else if self.call.dial_unknown {
            "the dial request's outcome was never resolved; marking the call failed".to_owned()
        } else {
            format!("no terminal status within {seconds} s; marking the call failed")
        };
        self.end(CallStatus::Failed, result, Cause::System, text);
    }

    /// Ends the call locally, without a provider callback.
    fn end(&mut self, status: CallStatus, result: CallResult, cause: Cause, text: String) {
        let from = std::mem::replace(&mut self.call.status, status);
        self.event(cause, text, json!({ "from": from, "to": status }));
        self.report_end(result);
        self.clear(CallTimer::RingTimeout);
        self.clear(CallTimer::Watchdog);
    }

    pub(super) fn report(&mut self, result: CallResult) {
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

    pub(super) fn set(&mut self, name: CallTimer, seconds: u64) {
        self.timers
            .retain(|op| !matches!(op, TimerOp::Set { name: n, .. } | TimerOp::Clear { name: n } if *n == name));
        self.timers.push(TimerOp::Set {
            name,
            at: deadline(self.now, seconds),
        });
    }

    pub(super) fn clear(&mut self, name: CallTimer) {
        self.timers
            .retain(|op| !matches!(op, TimerOp::Set { name: n, .. } if *n == name));
        if !self.timers.contains(&TimerOp::Clear { name }) {
            self.timers.push(TimerOp::Clear { name });
        }
    }

    pub(super) fn event(&mut self, cause: Cause, reason: String, data: serde_json::Value) {
        self.timeline.push(TimelineEvent::new(
            TimelineKind::CallStatus,
            cause,
            reason,
            data,
        ));
    }
}
