//! An inbound call: the lead called one of the tenant's numbers. The call exists from the
//! provider's first request, already in progress (the lead is on the line); the call flow rings
//! reps from it exactly as it does for an answered outbound call, and the call ends when its
//! flow does: after the conversation, or once the lead was told someone will call back (the
//! provider hangs up after either document, and no status callback is asked for an inbound
//! call).
//!
//! An inbound call is not an attempt of the cadence: it is never reported to the opportunity
//! as a call result (`reported` from the start), only as a conversation or as unattended.

use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use super::{AnsweredBy, Call, CallDecision, CallEffect, CallStatus, Flow, Rejection};
use crate::domain::opportunity::validate_e164;
use crate::domain::playbook::Playbook;
use crate::domain::timeline::{Cause, TimelineEvent, TimelineKind};

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
        timers: Vec::new(),
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
            self.effects.push(CallEffect::Ended {
                opportunity_id: self.call.opportunity_id,
            });
        }
    }
}
