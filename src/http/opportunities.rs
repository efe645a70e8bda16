//! `/v1/opportunities`: create, read, list, timeline, and the operator commands.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use neuronx_actors::domain::opportunity::{
    normalize_phone, Consent, Contact, OppInput, OppReply, Opportunity, SlaOverride, Stage,
};
use neuronx_actors::opportunity as opp;
use neuronx_supervision::store::{ActorRow, ListQuery};
use neuronx_supervision::{SubmitOutcome, TenantId};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

use super::auth::Caller;
use super::error::ApiError;
use super::extract::{Body, Params};
pub(super) use super::scope::visible;
use super::AppState;
use crate::control::binding::{self, Binding};
use crate::control::{access, Action};
use crate::input::{self, Lines};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    external_id: String,
    contact: ContactRequest,
    playbook: Option<String>,
    sla: Option<SlaRequest>,
    assignee: Option<String>,
    /// The team the opportunity is bound to; a team-scoped key's own team by default.
    team: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ContactRequest {
    name: String,
    phone: String,
    email: Option<String>,
    timezone: Option<String>,
    consent: ConsentRequest,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ConsentRequest {
    voice: bool,
    sms: bool,
}

#[derive(Deserialize, utoipa::ToSchema)]
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
        "team": o.team,
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

pub(super) async fn load(state: &AppState, tenant: TenantId, id: Uuid) -> Result<Value, ApiError> {
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

/// Checks a create request field by field; answers the contact's phone in E.164 form.
fn validate(req: &CreateRequest, state: &AppState) -> Result<String, ApiError> {
    input::check("external_id", &req.external_id, Lines::One, 1, 200)?;
    input::check("contact.name", &req.contact.name, Lines::One, 1, 200)?;
    let phone = normalize_phone(&req.contact.phone)
        .map_err(|e| ApiError::invalid("contact.phone", e.to_string()))?;
    if let Some(tz) = &req.contact.timezone {
        tz.parse::<chrono_tz::Tz>().map_err(|_| {
            ApiError::invalid("contact.timezone", format!("unknown IANA time zone {tz:?}"))
        })?;
    }
    if let Some(email) = &req.contact.email {
        input::check("contact.email", email, Lines::One, 3, 320)?;
        if !email.contains('@') || email.chars().any(char::is_whitespace) {
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
        input::check("assignee", a, Lines::One, 1, 200)?;
    }
    if let Some(t) = &req.team {
        input::check("team", t, Lines::One, 1, 100)?;
    }
    Ok(phone)
}

#[utoipa::path(
    post,
    path = "/v1/opportunities",
    tag = "opportunities",
    request_body = CreateRequest,
    responses((status = 201, description = "created", body = Object), (status = 200, description = "already existed (same external_id)", body = Object), (status = 202, description = "durable, not yet applied", body = Object), crate::http::openapi::Errors)
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Body(req): Body<CreateRequest>,
) -> Result<Response, ApiError> {
    let tenant = caller.require(Action::CreateOpportunity)?;
    let phone = validate(&req, &state)?;
    let external_id = req.external_id.trim().to_owned();
    let id = opp::id_for(tenant, &external_id);
    let Binding { team, assignee } = binding::bind_new(
        state.engine.store(),
        &caller.0,
        id,
        req.team.as_deref(),
        req.assignee.as_deref(),
    )
    .await?;
    let input = OppInput::Create {
        id,
        external_id,
        contact: Contact {
            name: req.contact.name.trim().to_owned(),
            phone,
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
        assignee,
        team: team.map(|t| t.name),
    };
    let phone = match &input {
        OppInput::Create { contact, .. } => contact.phone.clone(),
        _ => String::new(),
    };
    let outcome = submit(&state, tenant, id, &input).await?;
    // Only a new opportunity is indexed: a repeated external id with another phone must not
    // route that number's texts (a STOP, say) to this conversation.
    let created =
        matches!(&outcome, SubmitOutcome::Applied(r) if OppReply::of(r) == Some(OppReply::Created));
    if created || matches!(outcome, SubmitOutcome::Accepted) {
        crate::tenant_data::index_contact(state.engine.store(), tenant, &phone, id).await?;
    }
    let status = match outcome {
        SubmitOutcome::Applied(_) if created => StatusCode::CREATED,
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
    // A repeated external id of an opportunity the caller may not see (a create racing its
    // binding): like any other team's id, it is not found.
    if !caller.sees(&state, id).await? {
        return Err(ApiError::NotFound("opportunity"));
    }
    Ok((status, Json(load(&state, tenant, id).await?)).into_response())
}

pub(super) async fn submit(
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

#[utoipa::path(
    get,
    path = "/v1/opportunities/{id}",
    tag = "opportunities",
    params(("id" = String, Path, description = "the opportunity's id")),
    responses((status = 200, description = "the opportunity with its armed timers", body = Object), crate::http::openapi::Errors)
)]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let tenant = caller.require(Action::Read)?;
    let id = visible(&state, &caller, &id).await?;
    Ok(Json(load(&state, tenant, id).await?))
}

/// An id that is not a UUID names no opportunity: 404, like any other unknown id.
pub(super) fn parse_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id).map_err(|_| ApiError::NotFound("opportunity"))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    stage: Option<String>,
    paused: Option<String>,
    team: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

impl ListParams {
    /// The console's list: one page, filtered like the API's.
    pub(super) fn console(
        stage: Option<String>,
        paused: Option<String>,
        team: Option<String>,
    ) -> Self {
        Self {
            stage,
            paused,
            team,
            limit: Some("200".into()),
            cursor: None,
        }
    }
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

/// A page of opportunities. Filtering by team (or listing with a team-scoped key) filters each
/// page after reading it, so such a page may hold fewer than `limit` items; `next_cursor`
/// still walks every one.
#[utoipa::path(
    get,
    path = "/v1/opportunities",
    tag = "opportunities",
    params(ListParams),
    responses((status = 200, description = "a page: items, next_cursor", body = Object), crate::http::openapi::Errors)
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Params(p): Params<ListParams>,
) -> Result<Json<Value>, ApiError> {
    let tenant = caller.require(Action::Read)?;
    let team = match (&p.team, &caller.0.team) {
        (_, Some(own)) => Some(own.id),
        (Some(name), None) => Some(
            access::find_team(state.engine.store(), tenant, name)
                .await?
                .ok_or_else(|| ApiError::invalid("team", format!("no team named {name:?}")))?
                .id,
        ),
        (None, None) => None,
    };
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
    let members = match team {
        Some(team) => Some(access::opportunities_of(state.engine.store(), tenant, team).await?),
        None => None,
    };
    let items = rows
        .iter()
        .filter(|r| members.as_ref().is_none_or(|m| m.contains(&r.key.id)))
        .map(|r| view(r, Vec::new()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(json!({"items": items, "next_cursor": next})))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    limit: Option<String>,
    cursor: Option<String>,
}

impl PageParams {
    pub(super) fn first(limit: i64) -> Self {
        Self {
            limit: Some(limit.to_string()),
            cursor: None,
        }
    }
}

pub fn page(p: &PageParams) -> Result<(i64, i64), ApiError> {
    page_bounds(p.limit.as_deref(), p.cursor.as_deref())
}

/// `limit` (1 to 1000, default 100) and `cursor` (an id to resume after) of any paged list.
pub fn page_bounds(limit: Option<&str>, cursor: Option<&str>) -> Result<(i64, i64), ApiError> {
    let limit = match limit {
        None => 100,
        Some(l) => l
            .parse::<i64>()
            .ok()
            .filter(|l| (1..=1000).contains(l))
            .ok_or_else(|| ApiError::invalid("limit", "must be a whole number from 1 to 1000"))?,
    };
    let after = match cursor {
        None => 0,
        Some(c) => c
            .parse::<i64>()
            .ok()
            .filter(|c| *c >= 0)
            .ok_or_else(|| ApiError::invalid("cursor", "not a cursor from this API"))?,
    };
    Ok((limit, after))
}

#[utoipa::path(
    get,
    path = "/v1/opportunities/{id}/timeline",
    tag = "opportunities",
    params(("id" = String, Path, description = "the opportunity's id"), PageParams),
    responses((status = 200, description = "a page of entries, oldest first, each with its why", body = Object), crate::http::openapi::Errors)
)]
pub async fn timeline(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Params(p): Params<PageParams>,
) -> Result<Json<Value>, ApiError> {
    let tenant = caller.require(Action::Read)?;
    let (limit, after) = page(&p)?;
    let id = visible(&state, &caller, &id).await?;
    let store = state.engine.store();
    let rows = store
        .timeline(tenant, opp::KIND.as_str(), id, after, limit)
        .await?;
    let next = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| r.id.to_string()))
        .flatten();
    let items: Vec<Value> = rows
        .into_iter()
        .map(|r| {
            let why = super::why::why(&r.kind, &r.cause, &r.data);
            json!({
                "at": ms_to_time(r.at_ms),
                "kind": r.kind,
                "by": r.cause,
                "reason": r.reason,
                "data": r.data,
                "why": why,
                "version": r.version,
            })
        })
        .collect();
    Ok(Json(json!({"items": items, "next_cursor": next})))
}
