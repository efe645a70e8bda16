//! What the use cases answer: typed views of opportunities, their timers and timelines, and
//! pages of them. Serialized as the API's JSON; the console renders the same values.

use chrono::{DateTime, Utc};
use neuronx_actors::domain::opportunity::{Contact, LineType, Opportunity, Stage};
use neuronx_supervision::store::{ActorRow, TimelineRow};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::Error;

// The schemas (`utoipa::ToSchema`) document these views in `/openapi.json`. Domain types from
// the actors crate (which does not depend on utoipa) are described by mirrors in
// `crate::http::openapi`; an `Option` that is always serialized (as null) is `required`, so
// generated clients read it as present-but-nullable rather than maybe-missing.

pub fn ms_to_time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// An armed timer: which, and when it fires.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TimerView {
    /// `first_touch_sla`, `response_sla`, `retry_call` or `send_sms`.
    pub name: String,
    pub due_at: DateTime<Utc>,
}

/// Who took an opportunity's conversation over from the playbook, and since when.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TakeoverView {
    pub by: String,
    pub since: DateTime<Utc>,
}

/// One opportunity as callers see it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OpportunityView {
    pub id: Uuid,
    /// The caller's own id for the lead; creating it again answers this opportunity.
    pub external_id: String,
    #[schema(value_type = crate::http::openapi::Stage)]
    pub stage: Stage,
    pub assignee: String,
    pub paused: bool,
    /// In the escalation queue.
    pub escalated: bool,
    /// The team it is bound to; null when bound to none.
    #[schema(required = true)]
    pub team: Option<String>,
    /// The lead was reached (answered a call or replied).
    pub reached: bool,
    /// Bumped by every applied input.
    pub version: i64,
    /// Calls placed so far.
    pub attempts: u32,
    pub playbook: String,
    pub first_touch_seconds: u64,
    #[schema(value_type = crate::http::openapi::Contact)]
    pub contact: Contact,
    /// The call in progress, if any.
    #[schema(required = true)]
    pub active_call: Option<Uuid>,
    /// A call of this opportunity still on the line: ringing, or answered and not yet ended
    /// (an answered call's outcome is reported at the answer, so `active_call` is already null
    /// while the lead talks). What a hang-up would end; the console's "on a call".
    #[schema(required = true)]
    pub live_call: Option<Uuid>,
    /// The contact's line type as the carrier's lookup reported it; null until one is reported
    /// (the tenant's `line_type_lookup` is off, or no marketing text was due yet).
    #[schema(required = true, value_type = Option<crate::http::openapi::LineType>)]
    pub line_type: Option<LineType>,
    /// One person, one cadence (ADR 0046): the external ids of the contact's later leads merged
    /// into this opportunity.
    pub returned: Vec<String>,
    /// Skip mode: the contact's live opportunity when this one was created; this one runs no
    /// cadence.
    #[schema(required = true)]
    pub duplicate_of: Option<Uuid>,
    /// A person texted the lead by hand and took the conversation over: the playbook's
    /// automatic texts and emails stop until an operator hands it back; null while the playbook has it.
    #[schema(required = true)]
    pub takeover: Option<TakeoverView>,
    /// The lead's email channel (ADR 0049).
    pub email: EmailChannelView,
    /// Armed timers; empty in lists, which do not read them.
    pub timers: Vec<TimerView>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl OpportunityView {
    pub fn of(row: &ActorRow, timers: Vec<TimerView>) -> Result<Self, Error> {
        let o: Opportunity = serde_json::from_value(row.state.clone())
            .map_err(|e| Error::Internal(anyhow::anyhow!("stored opportunity: {e}")))?;
        Ok(Self {
            id: o.id,
            external_id: o.external_id,
            stage: o.stage,
            assignee: o.assignee,
            paused: o.paused,
            escalated: o.escalated,
            team: o.team,
            reached: o.reached,
            version: row.version,
            attempts: o.attempts,
            playbook: o.playbook,
            first_touch_seconds: o.first_touch_seconds,
            contact: o.contact,
            active_call: o.active_call,
            live_call: o.live_call.as_ref().map(|l| l.call_id),
            line_type: o.line_type,
            returned: o.returned,
            duplicate_of: o.duplicate_of,
            takeover: o.takeover.map(|t| TakeoverView {
                by: t.by,
                since: t.since,
            }),
            email: EmailChannelView {
                unsubscribed: o.email.unsubscribed,
                bounced: o.email.bounced,
                sent: o.email.sent,
            },
            timers,
            created_at: o.created_at,
            updated_at: o.updated_at,
        })
    }
}

/// Where the lead's email channel stands.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EmailChannelView {
    /// The lead unsubscribed (one-click): no more email; calls and texts go on.
    pub unsubscribed: bool,
    /// The address that hard-bounced; it is not mailed again. Null when none did.
    #[schema(required = true)]
    pub bounced: Option<String>,
    /// The playbook's emails asked for so far.
    pub sent: u32,
}

/// Answered when an input was made durable but another instance applies it: the caller may
/// read the opportunity later.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Accepted {
    pub id: Uuid,
    /// Always `accepted`.
    #[schema(value_type = crate::http::openapi::AcceptedStatus)]
    pub status: &'static str,
}

impl Accepted {
    pub fn new(id: Uuid) -> Self {
        Self {
            id,
            status: "accepted",
        }
    }
}

/// What a command or a create did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Applied {
    /// Applied here: the opportunity after.
    Done(Box<OpportunityView>),
    /// Durable; applied by the instance that owns the opportunity.
    Accepted(Accepted),
}

/// One timeline entry, with the rule that explains it when there is one.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TimelineItem {
    pub at: DateTime<Utc>,
    /// What happened: `created`, `stage_changed`, `call_placed`, `paused`, ...
    pub kind: String,
    /// Who caused it: `system`, `playbook`, `contact`, `channel` or `operator:<name>`.
    pub by: String,
    pub reason: String,
    /// The entry's details; their keys depend on `kind`.
    #[schema(value_type = Object)]
    pub data: Value,
    /// The rule behind a decision; null for facts and operators' own actions.
    #[schema(value_type = Option<crate::http::openapi::Why>, required = true)]
    pub why: Option<Value>,
    /// The opportunity's version after this entry.
    pub version: i64,
}

impl TimelineItem {
    pub fn of(r: TimelineRow) -> Self {
        let why = super::why::why(&r.kind, &r.cause, &r.data);
        Self {
            at: ms_to_time(r.at_ms),
            kind: r.kind,
            by: r.cause,
            reason: r.reason,
            data: r.data,
            why,
            version: r.version,
        }
    }
}

/// A page of a list, oldest first; `next_cursor` resumes after its last item.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; null on the last.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}
