//! Placing an outbound call: the call exists from here, and its first effect is the dial (or,
//! agent first by the playbook, picking the rep to ring first).

use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use super::{pick, Agent, Call, CallDecision, CallEffect, CallStatus, CallTimer, Flow, Rejection};
use crate::domain::opportunity::validate_e164;
use crate::domain::playbook::Playbook;
use crate::domain::timeline::{deadline, Cause, TimelineEvent, TimelineKind, TimerOp};

pub(super) fn place(
    id: Uuid,
    opportunity_id: Uuid,
    to: String,
    attempt: u32,
    agent: Option<Agent>,
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
        dial_unknown: false,
        fetch_attempted: false,
        unanswered_asks: 0,
        flow: Flow::default(),
        hang_up: None,
        agent: agent.clone(),
        picking: pick::first(&agent, pb),
        inbound: None,
        created_at: now,
        updated_at: now,
    };
    let text = match &agent {
        None if call.picking => format!("picking a rep to ring first, attempt {attempt}"),
        None => format!("dialing the lead, attempt {attempt}"),
        Some(a) => format!("ringing {} first, attempt {attempt}", a.rep),
    };
    let first = if call.picking {
        CallEffect::PickRep
    } else {
        pick::dial(to, agent, pb)
    };
    Ok(CallDecision {
        state: call,
        effects: vec![first],
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
            text,
            json!({ "call_id": id, "opportunity_id": opportunity_id, "attempt": attempt }),
        )],
    })
}
