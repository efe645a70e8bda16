//! What the use cases answer: typed views of opportunities, their timers and timelines, and
//! pages of them. Serialized as the API's JSON; the console renders the same values.

use chrono::{DateTime, Utc};
use neuronx_actors::domain::opportunity::{Contact, Opportunity, Stage};
use neuronx_supervision::store::{ActorRow, TimelineRow};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::Error;

pub fn ms_to_time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// An armed timer: which, and when it fires.
#[derive(Debug, Clone, Serialize)]
pub struct TimerView {
    pub name: String,
    pub due_at: DateTime<Utc>,
}

/// One opportunity as callers see it.
#[derive(Debug, Clone, Serialize)]
pub struct OpportunityView {
    pub id: Uuid,
    pub external_id: String,
    pub stage: Stage,
    pub assignee: String,
    pub paused: bool,
    pub escalated: bool,
    pub team: Option<String>,
    pub reached: bool,
    pub version: i64,
    pub attempts: u32,
    pub playbook: String,
    pub first_touch_seconds: u64,
    pub contact: Contact,
    pub active_call: Option<Uuid>,
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
            timers,
            created_at: o.created_at,
            updated_at: o.updated_at,
        })
    }
}

/// Answered when an input was made durable but another instance applies it: the caller may
/// read the opportunity later.
#[derive(Debug, Clone, Serialize)]
pub struct Accepted {
    pub id: Uuid,
    /// Always `accepted`.
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
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Applied {
    /// Applied here: the opportunity after.
    Done(Box<OpportunityView>),
    /// Durable; applied by the instance that owns the opportunity.
    Accepted(Accepted),
}

/// One timeline entry, with the rule that explains it when there is one.
#[derive(Debug, Clone, Serialize)]
pub struct TimelineItem {
    pub at: DateTime<Utc>,
    pub kind: String,
    pub by: String,
    pub reason: String,
    pub data: Value,
    pub why: Option<Value>,
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
#[derive(Debug, Clone, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}
