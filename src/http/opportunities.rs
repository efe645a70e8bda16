//! `/v1/opportunities`: create, read, list, timeline, and the operator commands.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use neuronx_actors::domain::opportunity::{
    validate_e164, Consent, Contact, OppInput, Opportunity, SlaOverride, Stage,
};
use neuronx_actors::opportunity as opp;
use neuronx_supervision::store::{ActorRow, ListQuery};
use neuronx_supervision::{SubmitOutcome, TenantId};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

use super::error::ApiError;
use super::extract::{Body, Params, Tenant};
use super::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    external_id: String,
    contact: ContactRequest,
    playbook: Option<String>,
    sla: Option<SlaRequest>,
    assignee: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ContactRequest {
    name: String,
    phone: String,
    email: Option<String>,
    timezone: Option<String>,
    consent: ConsentRequest,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsentRequest {
    voice: bool,
    sms: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SlaRequest {
    first_touch_seconds: Option<u64>,
}

#[derive(Serialize)]
pub struct TimerView {
    name: String,
    due_at: DateTime<Utc>,
}

pub fn ms_to_time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

fn view(row: &ActorRow, timers: Vec<TimerView>) -> Result<Value, ApiError> {
    let o: Opportunity = serde_json::from_value(row.state.clone())
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("stored opportunity: {e}")))?;
    Ok(json!({
        "id": o.id,
        "external_id": o.external_id,
        "stage": o.stage,
        "assignee": o.assignee,
        "paused": o.paused,
        "escalated": o.escalated,
        "reached": o.reached,
        "version": row.version,
        "attempts": o.attempts,
        "playbook": o.playbook,
        "first_touch_seconds": o.first_touch_seconds,
        "contact": o.contact,
        "active_call": o.active_call,
        "timers": timers,
        "created_at": o.created_at,
        "updated_at": o.updated_at,
    }))
}

async fn load(state: &AppState, tenant: TenantId, id: Uuid) -> Result<Value, ApiError> {
    let store = state.engine.store();
    let row = store
        .get_actor(tenant, opp::KIND.as_str(), id)
        .await?
        .ok_or(ApiError::NotFound("opportunity"))?;
    let timers = store
        .timers_of(tenant, opp::KIND.as_str(), id)
        .await?
        .into_iter()
        .map(|t| TimerView {
            name: t.name,
            due_at: ms_to_time(t.due_at_ms),
        })
        .collect();
    view(&row, timers)
}

fn validate(req: &CreateRequest, state: &AppState) -> Result<(), ApiError> {
    let ext = req.external_id.trim();
    if ext.is_empty() || ext.len() > 200 {
        return Err(ApiError::invalid(
            "external_id",
            "must be 1 to 200 characters",
        ));
    }
    if req.contact.name.trim().is_empty() || req.contact.name.len() > 200 {
        return Err(ApiError::invalid(
            "contact.name",
            "must be 1 to 200 characters",
        ));
    }
    validate_e164(&req.contact.phone)
        .map_err(|e| ApiError::invalid("contact.phone", e.to_string()))?;
    if let Some(tz) = &req.contact.timezone {
        tz.parse::<chrono_tz::Tz>().map_err(|_| {
            ApiError::invalid("contact.timezone", format!("unknown IANA time zone {tz:?}"))
        })?;
    }
    if let Some(email) = &req.contact.email {
        if !email.contains('@') || email.len() > 320 {
            return Err(ApiError::invalid("contact.email", "not an email address"));
        }
    }
    if let Some(p) = &req.playbook {
        if !state.playbooks.contains_key(p) {
            return Err(ApiError::invalid(
                "playbook",
                format!("unknown playbook {p:?}"),
            ));
        }
    }
    if let Some(s) = req.sla.as_ref().and_then(|s| s.first_touch_seconds) {
        if !(1..=30 * 86_400).contains(&s) {
            return Err(ApiError::invalid(
                "sla.first_touch_seconds",
                "must be between 1 and 2592000",
            ));
        }
    }
    if let Some(a) = &req.assignee {
        if a.trim().is_empty() || a.len() > 200 {
            return Err(ApiError::invalid("assignee", "must be 1 to 200 characters"));
        }
    }
    Ok(())
}

pub async fn create(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Body(req): Body<CreateRequest>,
) -> Result<Response, ApiError> {
    validate(&req, &state)?;
    let external_id = req.external_id.trim().to_owned();
    let id = opp::id_for(tenant, &external_id);
    let input = OppInput::Create {
        id,
        external_id,
        contact: Contact {
            name: req.contact.name.trim().to_owned(),
            phone: req.contact.phone,
            email: req.contact.email,
            timezone: req.contact.timezone,
            consent: Consent {
                voice: req.contact.consent.voice,
                sms: req.contact.consent.sms,
            },
        },
        playbook: req
            .playbook
            .unwrap_or_else(|| state.default_playbook.clone()),
        sla: req.sla.map(|s| SlaOverride {
            first_touch_seconds: s.first_touch_seconds,
        }),
        assignee: req.assignee,
    };
    let phone = match &input {
        OppInput::Create { contact, .. } => contact.phone.clone(),
        _ => String::new(),
    };
    let outcome = submit(&state, tenant, id, &input).await?;
    // Only a new opportunity is indexed: a repeated external id with another phone must not
    // route that number's texts (a STOP, say) to this conversation.
    if matches!(&outcome, SubmitOutcome::Applied(r) if *r == json!("created"))
        || matches!(outcome, SubmitOutcome::Accepted)
    {
        crate::tenant_data::index_contact(state.engine.store(), tenant, &phone, id).await?;
    }
    let status = match outcome {
        SubmitOutcome::Applied(reply) if reply == json!("created") => StatusCode::CREATED,
        SubmitOutcome::Applied(_) | SubmitOutcome::Duplicate => StatusCode::OK,
        SubmitOutcome::Accepted => {
            return Ok((
                StatusCode::ACCEPTED,
                Json(json!({"id": id, "status": "accepted"})),
            )
                .into_response())
        }
        SubmitOutcome::Rejected(r) => {
            return Err(ApiError::Conflict {
                code: r.code,
                message: r.message,
            })
        }
    };
    Ok((status, Json(load(&state, tenant, id).await?)).into_response())
}

async fn submit(
    state: &AppState,
    tenant: TenantId,
    id: Uuid,
    input: &OppInput,
) -> Result<SubmitOutcome, ApiError> {
    let input = serde_json::to_value(input).map_err(|e| ApiError::Internal(e.into()))?;
    state
        .engine
        .submit(opp::key(tenant, id), input, None)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))
}

pub async fn get(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id)?;
    Ok(Json(load(&state, tenant, id).await?))
}

/// An id that is not a UUID names no opportunity: 404, like any other unknown id.
fn parse_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id).map_err(|_| ApiError::NotFound("opportunity"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    stage: Option<String>,
    paused: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

fn encode_cursor(at: i64, id: Uuid) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{at}:{id}"))
}

fn decode_cursor(c: &str) -> Option<(i64, Uuid)> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c)
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (at, id) = text.split_once(':')?;
    Some((at.parse().ok()?, Uuid::parse_str(id).ok()?))
}

pub async fn list(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Params(p): Params<ListParams>,
) -> Result<Json<Value>, ApiError> {
    let stage = p
        .stage
        .map(|s| {
            s.parse::<Stage>()
                .map(|st| {
                    serde_json::to_value(st)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                })
                .map_err(|e| ApiError::invalid("stage", e.to_string()))
        })
        .transpose()?
        .flatten();
    let paused = p
        .paused
        .map(|v| match v.as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(ApiError::invalid("paused", "must be true or false")),
        })
        .transpose()?;
    let limit = match p.limit {
        None => 50,
        Some(l) => l
            .parse::<i64>()
            .ok()
            .filter(|l| (1..=500).contains(l))
            .ok_or_else(|| ApiError::invalid("limit", "must be a whole number from 1 to 500"))?,
    };
    let after = p
        .cursor
        .map(|c| {
            decode_cursor(&c)
                .ok_or_else(|| ApiError::invalid("cursor", "not a cursor from this API"))
        })
        .transpose()?;
    let rows = state
        .engine
        .store()
        .list_actors(&ListQuery {
            tenant,
            kind: opp::KIND.as_str().into(),
            status: stage,
            paused,
            after,
            limit,
        })
        .await?;
    let next = (rows.len() as i64 == limit)
        .then(|| {
            rows.last()
                .map(|r| encode_cursor(r.created_at_ms, r.key.id))
        })
        .flatten();
    let items = rows
        .iter()
        .map(|r| view(r, Vec::new()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(json!({"items": items, "next_cursor": next})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageParams {
    limit: Option<String>,
    cursor: Option<String>,
}

pub fn page(p: &PageParams) -> Result<(i64, i64), ApiError> {
    let limit = match &p.limit {
        None => 100,
        Some(l) => l
            .parse::<i64>()
            .ok()
            .filter(|l| (1..=1000).contains(l))
            .ok_or_else(|| ApiError::invalid("limit", "must be a whole number from 1 to 1000"))?,
    };
    let after = match &p.cursor {
        None => 0,
        Some(c) => c
            .parse::<i64>()
            .ok()
            .filter(|c| *c >= 0)
            .ok_or_else(|| ApiError::invalid("cursor", "not a cursor from this API"))?,
    };
    Ok((limit, after))
}

pub async fn timeline(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
    Params(p): Params<PageParams>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id)?;
    let (limit, after) = page(&p)?;
    let store = state.engine.store();
    if !store.actor_exists(tenant, opp::KIND.as_str(), id).await? {
        return Err(ApiError::NotFound("opportunity"));
    }
    let rows = store
        .timeline(tenant, opp::KIND.as_str(), id, after, limit)
        .await?;
    let next = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| r.id.to_string()))
        .flatten();
    let items: Vec<Value> = rows
        .into_iter()
        .map(|r| {
            json!({
                "at": ms_to_time(r.at_ms),
                "kind": r.kind,
                "by": r.cause,
                "reason": r.reason,
                "data": r.data,
                "version": r.version,
            })
        })
        .collect();
    Ok(Json(json!({"items": items, "next_cursor": next})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandRequest {
    /// Who acts; until principals exist, the caller names the operator.
    operator: Option<String>,
    reason: Option<String>,
    assignee: Option<String>,
}

#[derive(Clone, Copy)]
pub enum Command {
    Pause,
    Resume,
    Reassign,
    Escalate,
}

fn command_input(cmd: Command, req: CommandRequest) -> Result<OppInput, ApiError> {
    let by = req.operator.unwrap_or_else(|| "api".into());
    if by.trim().is_empty() || by.len() > 200 {
        return Err(ApiError::invalid("operator", "must be 1 to 200 characters"));
    }
    if req.reason.as_ref().is_some_and(|r| r.len() > 2000) {
        return Err(ApiError::invalid(
            "reason",
            "must be at most 2000 characters",
        ));
    }
    Ok(match cmd {
        Command::Pause => OppInput::Pause {
            by,
            reason: req.reason,
        },
        Command::Resume => OppInput::Resume { by },
        Command::Escalate => OppInput::Escalate {
            by,
            reason: req.reason,
        },
        Command::Reassign => {
            let assignee = req
                .assignee
                .filter(|a| !a.trim().is_empty() && a.len() <= 200)
                .ok_or_else(|| ApiError::invalid("assignee", "required, 1 to 200 characters"))?;
            let reason = req
                .reason
                .filter(|r| !r.trim().is_empty())
                .ok_or_else(|| ApiError::invalid("reason", "required for a reassignment"))?;
            OppInput::Reassign {
                assignee: assignee.trim().to_owned(),
                by,
                reason,
            }
        }
    })
}

pub async fn command(
    state: AppState,
    tenant: TenantId,
    id: String,
    cmd: Command,
    req: CommandRequest,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    if !state
        .engine
        .store()
        .actor_exists(tenant, opp::KIND.as_str(), id)
        .await?
    {
        return Err(ApiError::NotFound("opportunity"));
    }
    let input = command_input(cmd, req)?;
    match submit(&state, tenant, id, &input).await? {
        SubmitOutcome::Applied(_) | SubmitOutcome::Duplicate => {
            Ok(Json(load(&state, tenant, id).await?).into_response())
        }
        SubmitOutcome::Accepted => Ok((
            StatusCode::ACCEPTED,
            Json(json!({"id": id, "status": "accepted"})),
        )
            .into_response()),
        SubmitOutcome::Rejected(r) => Err(ApiError::Conflict {
            code: r.code,
            message: r.message,
        }),
    }
}

macro_rules! command_route {
    ($name:ident, $cmd:expr) => {
        pub async fn $name(
            State(state): State<AppState>,
            Tenant(tenant): Tenant,
            Path(id): Path<String>,
            Body(req): Body<CommandRequest>,
        ) -> Result<Response, ApiError> {
            command(state, tenant, id, $cmd, req).await
        }
    };
}

command_route!(pause, Command::Pause);
command_route!(resume, Command::Resume);
command_route!(reassign, Command::Reassign);
command_route!(escalate, Command::Escalate);
