//! Operator commands: pause, resume, reassign, escalate, cancel a timer, move the stage.

use serde_json::json;

use super::{invalid, with_reason, OppTimer, Rejection, Stage, Step};
use crate::domain::timeline::{Cause, TimelineKind};

impl Step<'_> {
    /// A pause lets a live call finish unless `hang_up` asks to end it too.
    pub(super) fn pause(
        &mut self,
        by: String,
        reason: Option<String>,
        hang_up: bool,
    ) -> Result<(), Rejection> {
        if self.opp.paused {
            return Err(Rejection::AlreadyPaused);
        }
        self.opp.paused = true;
        let text = with_reason(format!("paused by {by}"), reason.as_deref());
        let data = json!({ "by": by, "reason": reason, "hang_up": hang_up });
        self.event(
            TimelineKind::Paused,
            Cause::Operator(by.clone()),
            text,
            data,
        );
        if hang_up {
            let text = format!("{by} paused the opportunity and asked to hang up");
            self.hang_up_live_call(Cause::Operator(by), text);
        }
        Ok(())
    }

    /// Held timers re-fire now, so a held call or text is re-checked against
    /// the gate as things stand (consent may have been revoked meanwhile).
    pub(super) fn resume(&mut self, by: String) -> Result<(), Rejection> {
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

    pub(super) fn reassign(
        &mut self,
        to: String,
        by: String,
        reason: String,
    ) -> Result<(), Rejection> {
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

    pub(super) fn operator_escalate(
        &mut self,
        by: String,
        reason: Option<String>,
    ) -> Result<(), Rejection> {
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

    /// Cancelling the first-touch SLA means nobody is escalated for this
    /// lead: the operator takes that on, and the timeline says so.
    pub(super) fn cancel_timer(
        &mut self,
        timer: OppTimer,
        by: String,
        reason: Option<String>,
    ) -> Result<(), Rejection> {
        let stage = self.opp.stage;
        if stage.is_terminal() {
            return Err(Rejection::Terminal {
                stage,
                action: "cancel a timer",
            });
        }
        self.clear(timer);
        let text = with_reason(
            format!("{timer} timer cancelled by {by}"),
            reason.as_deref(),
        );
        let data = json!({ "timer": timer, "by": by, "reason": reason });
        self.event(
            TimelineKind::TimerCancelled,
            Cause::Operator(by),
            text,
            data,
        );
        Ok(())
    }

    pub(super) fn set_stage(
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
        if from == Stage::DoNotContact && self.opp.opted_out {
            return Err(Rejection::OptedOut {
                action: "the opportunity can be reopened",
            });
        }
        let text = with_reason(
            format!("moved from {from} to {to} by {by}"),
            reason.as_deref(),
        );
        self.move_stage(to, Cause::Operator(by), text);
        if to == Stage::Contacting {
            // A human chose to contact the lead again: the dispatcher checks
            // the do-not-call list afresh.
            self.opp.dnc_channels.clear();
            if self.can_retry() {
                // Otherwise nothing would ever dial again in contacting.
                self.set(super::OppTimer::RetryCall, 0);
            }
        }
        Ok(())
    }
}
