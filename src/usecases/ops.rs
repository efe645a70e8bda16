//! Calls and dead letters: reading a call with its timeline, listing dead letters, and
//! retrying or discarding one (audited).

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use neuronx_actors::domain::call::{AnsweredBy, Call, CallStatus};
use neuronx_actors::{call as call_actor, opportunity as opp};
use neuronx_supervision::{ActorKey, EngineHandle, RetryOutcome};
use serde::Serialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::commands::check_reason;
use super::opportunities::page_bounds;
use super::views::{ms_to_time, Page};
use super::{authorize, sees, Error};
use crate::control::audit::{self, AuditAction, Entry, Outcome};
use crate::control::keys::Identity;
use crate::control::{access, dead_letters, Action, Scope};

/// One entry of a call's timeline.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CallEvent {
    pub at: DateTime<Utc>,
    pub kind: String,
    /// Who caused it: `system`, `channel`, ...
    pub by: String,
    pub reason: String,
    /// The entry's details; their keys depend on `kind`.
    #[schema(value_type = Object)]
    pub data: Value,
}

/// A recording the carrier keeps for a call.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RecordingView {
    /// `RE` and 32 hex digits.
    pub sid: String,
    pub duration_seconds: u32,
    /// The consent the call was recorded under: `all_party` or `unknown` (the lead heard the
    /// recording notice first), or `one_party`.
    pub consent: String,
}

/// A call placed for an opportunity, with the first 200 entries of its timeline.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = Call)]
pub struct CallView {
    pub id: Uuid,
    pub opportunity_id: Uuid,
    /// The number called, E.164.
    pub to: String,
    /// 1 for the opportunity's first call, and so on.
    pub attempt: u32,
    #[schema(value_type = crate::http::openapi::CallStatus)]
    pub status: CallStatus,
    #[schema(value_type = Option<crate::http::openapi::AnsweredBy>, required = true)]
    pub answered_by: Option<AnsweredBy>,
    /// Twilio's call SID, once it answered the dial.
    #[schema(required = true)]
    pub provider_sid: Option<String>,
    /// Agent first (click to call): the rep whose phone was rung before the lead; null when
    /// the lead was dialled first.
    #[schema(required = true)]
    pub agent_first: Option<String>,
    /// Recordings of the conversation (playbook `call_flow.record`); the audio is read with
    /// `GET /v1/calls/{id}/recordings/{sid}/media`.
    pub recordings: Vec<RecordingView>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub timeline: Vec<CallEvent>,
}

/// A call the caller may see (a call belongs to its opportunity's team), with its first 200
/// timeline entries.
pub async fn get_call(engine: &EngineHandle, who: &Identity, id: &str) -> Result<CallView, Error> {
    let tenant = authorize(who, Action::Read)?;
    let id = Uuid::parse_str(id).map_err(|_| Error::NotFound("call"))?;
    let store = engine.store();
    let row = store
        .get_actor(tenant, call_actor::KIND.as_str(), id)
        .await?
        .ok_or(Error::NotFound("call"))?;
    if !sees(engine, who, row.key.group).await? {
        return Err(Error::NotFound("call"));
    }
    let c: Call = serde_json::from_value(row.state)
        .map_err(|e| Error::Internal(anyhow::anyhow!("stored call: {e}")))?;
    let timeline = store
        .timeline(tenant, call_actor::KIND.as_str(), id, 0, 200)
        .await?
        .into_iter()
        .map(|r| CallEvent {
            at: ms_to_time(r.at_ms),
            kind: r.kind,
            by: r.cause,
            reason: r.reason,
            data: r.data,
        })
        .collect();
    Ok(CallView {
        id: c.id,
        opportunity_id: c.opportunity_id,
        to: c.to,
        attempt: c.attempt,
        status: c.status,
        answered_by: c.answered_by,
        provider_sid: c.provider_sid,
        agent_first: c.agent.map(|a| a.rep),
        recordings: c
            .flow
            .recordings
            .into_iter()
            .map(|r| RecordingView {
                sid: r.sid,
                duration_seconds: r.duration_seconds,
                consent: r.consent,
            })
            .collect(),
        version: row.version,
        created_at: c.created_at,
        updated_at: c.updated_at,
        timeline,
    })
}

/// An input its actor failed too often, set aside.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = DeadLetter)]
pub struct DeadLetterView {
    /// Pass to retry or discard; also the page cursor.
    pub id: i64,
    /// `opportunity` or `call`.
    pub actor_kind: String,
    pub actor_id: Uuid,
    /// The input as it was submitted.
    #[schema(value_type = Object)]
    pub input: Value,
    /// The last failure.
    pub error: String,
    pub attempts: i32,
    pub at: DateTime<Utc>,
}

/// A page of dead letters. A team-scoped key sees only its team's opportunities' letters
/// (a call's letter names the call, not its opportunity, and is left to tenant-wide keys).
pub async fn dead_letters(
    engine: &EngineHandle,
    who: &Identity,
    limit: Option<&str>,
    cursor: Option<&str>,
) -> Result<Page<DeadLetterView>, Error> {
    let tenant = authorize(who, Action::ReadOps)?;
    let (limit, after) = page_bounds(limit, cursor)?;
    let store = engine.store();
    let rows = store.dead_letters(tenant, after, limit).await?;
    let next_cursor = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| r.id.to_string()))
        .flatten();
    // One read of the team's opportunities for the page, not one per letter.
    let ours: Option<HashSet<Uuid>> = match Scope::of(who).team() {
        Some(team) => Some(
            access::opportunities_of(store, tenant, team)
                .await?
                .into_iter()
                .collect(),
        ),
        None => None,
    };
    let items = rows
        .into_iter()
        .filter(|r| {
            ours.as_ref()
                .is_none_or(|ours| r.key.kind == opp::KIND.as_str() && ours.contains(&r.key.id))
        })
        .map(|r| DeadLetterView {
            id: r.id,
            actor_kind: r.key.kind,
            actor_id: r.key.id,
            input: r.input,
            error: r.error,
            attempts: r.attempts,
            at: ms_to_time(r.created_at_ms),
        })
        .collect();
    Ok(Page { items, next_cursor })
}

/// The dead letter `id` names, if this caller may see it.
async fn dead_letter(
    engine: &EngineHandle,
    who: &Identity,
    id: &str,
) -> Result<(dead_letters::DeadLetter, ActorKey), Error> {
    let tenant = who.tenant;
    let id: i64 = id.parse().map_err(|_| Error::NotFound("dead letter"))?;
    let dl = dead_letters::get(engine.store(), tenant, id).await?;
    let kind = match dl.kind.as_str() {
        k if k == opp::KIND.as_str() => opp::KIND,
        k if k == call_actor::KIND.as_str() => call_actor::KIND,
        _ => return Err(Error::NotFound("dead letter")),
    };
    // A call's group is its opportunity: read it from the call's checkpoint.
    let group = match engine
        .store()
        .get_actor(tenant, kind.as_str(), dl.actor_id)
        .await?
    {
        Some(row) => row.key.group,
        None => dl.actor_id,
    };
    if !sees(engine, who, group).await? {
        return Err(Error::NotFound("dead letter"));
    }
    let key = ActorKey {
        tenant,
        kind,
        id: dl.actor_id,
        group,
    };
    Ok((dl, key))
}

/// What became of a handled dead letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Handled {
    Retried,
    Discarded,
}

/// A dead letter retried (its input resubmitted) or discarded.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = HandledDeadLetter)]
pub struct HandledView {
    pub id: i64,
    pub status: Handled,
}

/// Retries (resubmits its input, deduplicated on the letter's id) or discards one dead letter.
pub async fn handle_dead_letter(
    engine: &EngineHandle,
    who: &Identity,
    id: &str,
    reason: Option<String>,
    how: Handled,
) -> Result<HandledView, Error> {
    let tenant = authorize(who, Action::HandleDeadLetters)?;
    check_reason(&reason)?;
    let (dl, key) = dead_letter(engine, who, id).await?;
    let before = json!({"actor_kind": dl.kind, "actor_id": dl.actor_id, "input": dl.input, "error": dl.error});
    let action = match how {
        Handled::Retried => AuditAction::DeadLetterRetry,
        Handled::Discarded => AuditAction::DeadLetterDiscard,
    };
    // Logged before the letter is touched, settled after: a crash between cannot lose it.
    let entry = audit::begin(
        engine.store(),
        who,
        Entry {
            action,
            target_kind: "dead_letter",
            target_id: dl.id.to_string(),
            reason: reason.as_deref(),
            outcome: Outcome::Pending,
            before: Some(before),
            after: None,
        },
    )
    .await?;
    let found = match how {
        // The input goes back to the inbox and the letter leaves the list in one transaction,
        // deduplicated on the letter's id.
        Handled::Retried => {
            engine
                .retry_dead_letter(key, dl.id, dl.input.clone())
                .await
                .map_err(|e| Error::Unavailable(e.to_string()))?
                != RetryOutcome::Gone
        }
        Handled::Discarded => dead_letters::remove(engine.store(), tenant, dl.id).await?,
    };
    let outcome = if found {
        Outcome::Applied
    } else {
        Outcome::Rejected
    };
    audit::settle(engine.store(), entry, outcome, None).await?;
    if !found {
        return Err(Error::NotFound("dead letter"));
    }
    Ok(HandledView {
        id: dl.id,
        status: how,
    })
}
