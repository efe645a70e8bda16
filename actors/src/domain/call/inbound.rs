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

/// Askings of the provider left unanswered in a row before an inbound call is closed without
/// its word (about this many watchdog periods after the last request of its flow).
pub(super) const UNANSWERED_ASKS: u8 = 3;

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
        unanswered_asks: 0,
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
    /// provider is asked for the call (its answer comes back as `Fetched`); an asking left
    /// unanswered (the fetch failed) is asked again, and only after `UNANSWERED_ASKS` of them
    /// in a row is the call closed: one carrier error must not close a call whose lead is
    /// still on hold.
    pub(super) fn inbound_watchdog(&mut self) {
        let seconds = self.pb.call_watchdog_seconds;
        if self.call.fetch_attempted {
            self.call.unanswered_asks = self.call.unanswered_asks.saturating_add(1);
        }
        let Some(sid) = self.call.provider_sid.clone() else {
            return self.inbound_gone(None, Cause::System, "no sid to ask the provider".into());
        };
        if self.call.unanswered_asks >= UNANSWERED_ASKS {
            let text = format!(
                "the provider did not answer {UNANSWERED_ASKS} askings about the call; closing it"
            );
            return self.inbound_gone(None, Cause::System, text);
        }
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

    /// What the provider said of the inbound call when the watchdog asked. Still live (a long
    /// conversation, reps still ringing): asked again next period. Ended: closed. An answer
    /// about another call (not this call's sid) is ignored.
    pub(super) fn inbound_fetched(&mut self, status: CallStatus, sid: &str) {
        if self.call.status.is_terminal() || self.call.provider_sid.as_deref() != Some(sid) {
            return; // the flow closed it meanwhile, or not this call
        }
        self.call.fetch_attempted = false;
        self.call.unanswered_asks = 0;
        if !status.is_terminal() {
            return;
        }
        let text = format!("the provider reports the call {status}");
        self.inbound_gone(Some(status), Cause::Channel, text);
    }

    /// Closes an inbound call whose flow never finished (`status`: as the provider reported
    /// it, else completed). A caller no rep picked up hung up waiting: the opportunity owes a
    /// callback, as when nobody was free; not when the call was hung up at the opportunity's
    /// own asking (a STOP, a pause with hang-up), which says why itself.
    fn inbound_gone(&mut self, status: Option<CallStatus>, cause: Cause, text: String) {
        let from = self.call.status;
        let to = status.unwrap_or(CallStatus::Completed);
        self.event(cause, text, json!({ "from": from, "to": to }));
        if self.call.flow.answered.is_empty() && self.call.hang_up.is_none() {
            self.unattended(UnattendedReason::CallerHungUp);
        }
        // Closes the call and clears its watchdog; then the status the provider gave.
        self.inbound_over();
        self.call.status = to;
    }
}
