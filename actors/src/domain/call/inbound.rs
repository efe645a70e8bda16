//! An inbound call: the lead called one of the tenant's numbers. The call exists from the
//! provider's first request, already in progress (the lead is on the line); the call flow rings
//! reps from it exactly as it does for an answered outbound call, and the call ends when its
//! flow does: after the conversation, or once the lead was told someone will call back (the
//! provider hangs up after either document, and no status callback is asked for an inbound
//! call).
//!
//! An inbound call is not an attempt of the cadence: it is never reported to the opportunity
//! as a call result (`reported` from the start), only as a conversation or as unattended.
//!
//! Without a status callback, a caller who hangs up before the `<Dial>` starts (during the
//! greeting) leaves no request at all, and the call would stay in progress, holding the
//! opportunity's live call. So the call keeps a watchdog: each period it asks the provider for
//! the call, and closes it once the provider says it ended, or did not answer the last asking.

use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use super::{
    AnsweredBy, Call, CallDecision, CallEffect, CallStatus, CallTimer, Flow, Rejection,
    UnattendedReason,
};
use crate::domain::opportunity::validate_e164;
use crate::domain::playbook::Playbook;
use crate::domain::timeline::{deadline, Cause, TimelineEvent, TimelineKind, TimerOp};

use super::progress::Step;

/// What `CallInput::Inbound` creates a call from.
pub(super) struct NewInbound {
    pub id: Uuid,
    pub opportunity_id: Uuid,
    pub from: String,
    pub to: String,
    pub provider_sid: String,
}

pub(super) fn create(
    new: NewInbound,
    now: DateTime<Utc>,
    pb: &Playbook,
) -> Result<CallDecision, Rejection> {
    for (field, value) in [("from", &new.from), ("to", &new.to)] {
        validate_e164(value).map_err(|e| Rejection::InvalidField {
            field,
            reason: e.to_string(),
        })?;
    }
    if new.provider_sid.trim().is_empty() {
        return Err(Rejection::InvalidField {
            field: "provider_sid",
            reason: "must not be empty".to_owned(),
        });
    }
    let text = format!("the lead called {} from {}", new.to, new.from);
    let data = json!({ "event": "inbound", "call_id": new.id, "from": new.from, "to": new.to,
        "provider_sid": new.provider_sid });
    let call = Call {
        id: new.id,
        opportunity_id: new.opportunity_id,
        to: new.from,
        attempt: 0,
        playbook: pb.name.clone(),
        status: CallStatus::InProgress,
        last_sequence: None,
        provider_sid: Some(new.provider_sid),
        answered_by: Some(AnsweredBy::Human),
        reported: true,
        dial_unknown: false,
        fetch_attempted: false,
        flow: Flow::default(),
        hang_up: None,
        agent: None,
        picking: false,
        inbound: Some(new.to),
        created_at: now,
        updated_at: now,
    };
    let live = CallEffect::Live {
        opportunity_id: call.opportunity_id,
    };
    Ok(CallDecision {
        state: call,
        effects: vec![live],
        timers: vec![TimerOp::Set {
            name: CallTimer::Watchdog,
            at: deadline(now, pb.call_watchdog_seconds),
        }],
        timeline: vec![TimelineEvent::new(
            TimelineKind::Conversation,
            Cause::Contact,
            text,
            data,
        )],
    })
}

impl Step<'_> {
    /// The inbound call's flow is over (a conversation, or the callback promise): the provider
    /// hangs up after our document, so the call is complete, and the opportunity no longer has
    /// it to hang up.
    pub(super) fn inbound_over(&mut self) {
        if self.call.inbound.is_some() && !self.call.status.is_terminal() {
            self.call.status = CallStatus::Completed;
            self.clear(CallTimer::Watchdog);
            self.effects.push(CallEffect::Ended {
                opportunity_id: self.call.opportunity_id,
            });
        }
    }

    /// The inbound call's watchdog: no request of its flow ended it within a period. The
    /// provider is asked for the call (its answer comes back as `Fetched`); if it did not
    /// answer the last asking either, the call is closed.
    pub(super) fn inbound_watchdog(&mut self) {
        let seconds = self.pb.call_watchdog_seconds;
        match (self.call.fetch_attempted, self.call.provider_sid.clone()) {
            (false, Some(sid)) => {
                self.call.fetch_attempted = true;
                self.effects.push(CallEffect::Fetch {
                    provider_sid: sid.clone(),
                });
                self.set(CallTimer::Watchdog, seconds);
                self.event(
                    Cause::System,
                    format!("no word of the call for {seconds} s; asking the provider for it"),
                    json!({ "status": self.call.status, "provider_sid": sid }),
                );
            }
            _ => self.inbound_gone(
                CallStatus::Completed,
                Cause::System,
                "the provider did not say whether the call was still live; closing it".to_owned(),
            ),
        }
    }

    /// What the provider said of the inbound call when the watchdog asked. Still live (a long
    /// conversation, reps still ringing): asked again next period. Ended: closed.
    pub(super) fn inbound_fetched(&mut self, status: CallStatus) {
        if self.call.status.is_terminal() {
            return; // the flow closed it meanwhile
        }
        if !status.is_terminal() {
            self.call.fetch_attempted = false;
            return;
        }
        let text = format!("the provider reports the call {status}");
        self.inbound_gone(status, Cause::Channel, text);
    }

    /// Closes an inbound call whose flow never finished. A caller no rep picked up for hung up
    /// waiting: the opportunity owes a callback, as when nobody was free.
    fn inbound_gone(&mut self, status: CallStatus, cause: Cause, text: String) {
        let from = self.call.status;
        self.event(cause, text, json!({ "from": from, "to": status }));
        if self.call.flow.answered.is_empty() {
            self.unattended(UnattendedReason::CallerHungUp);
        }
        self.inbound_over();
        self.call.status = status;
        self.clear(CallTimer::Watchdog);
    }
}
