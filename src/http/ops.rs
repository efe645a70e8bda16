//! Calls, dead letters, health, readiness and metrics.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use neuronx_actors::call as call_actor;
use neuronx_actors::domain::call::Call;
use serde_json::{json, Value};
use uuid::Uuid;

use super::auth::Caller;
use super::error::ApiError;
use super::extract::{Body, Params};
use super::opportunities::PageParams;
use super::AppState;
use crate::control::audit::{self, AuditAction, Entry, Outcome};
use crate::control::{dead_letters, Action};
use crate::usecases::views::ms_to_time;

#[utoipa::path(
    get,
    path = "/v1/calls/{id}",
    tag = "calls",
    params(("id" = String, Path, description = "the call's id")),
    responses((status = 200, description = "the call with its timeline", body = Object), crate::http::openapi::Errors)
)]
pub async fn get_call(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let tenant = caller.require(Action::Read)?;
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("call"))?;
    let store = state.engine.store();
    let row = store
        .get_actor(tenant, call_actor::KIND.as_str(), id)
        .await?
        .ok_or(ApiError::NotFound("call"))?;
    // A call belongs to its opportunity's team.
    if !caller.sees(&state, row.key.group).await? {
        return Err(ApiError::NotFound("call"));
    }
    let c: Call = serde_json::from_value(row.state)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("stored call: {e}")))?;
    let timeline: Vec<Value> = store
        .timeline(tenant, call_actor::KIND.as_str(), id, 0, 200)
        .await?
        .into_iter()
        .map(|r| json!({"at": ms_to_time(r.at_ms), "kind": r.kind, "by": r.cause, "reason": r.reason, "data": r.data}))
        .collect();
    Ok(Json(json!({
        "id": c.id,
        "opportunity_id": c.opportunity_id,
        "to": c.to,
        "attempt": c.attempt,
        "status": c.status,
        "answered_by": c.answered_by,
        "provider_sid": c.provider_sid,
        "version": row.version,
        "created_at": c.created_at,
        "updated_at": c.updated_at,
        "timeline": timeline,
    })))
}

#[utoipa::path(
    get,
    path = "/v1/dead-letters",
    tag = "dead letters",
    params(PageParams),
    responses((status = 200, description = "a page of dead letters", body = Object), crate::http::openapi::Errors)
)]
pub async fn dead_letters(
    State(state): State<AppState>,
    caller: Caller,
    Params(p): Params<PageParams>,
) -> Result<Json<Value>, ApiError> {
    let tenant = caller.require(Action::ReadOps)?;
    let (limit, after) = p.bounds()?;
    let rows = state
        .engine
        .store()
        .dead_letters(tenant, after, limit)
        .await?;
    let next = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| r.id.to_string()))
        .flatten();
    // A team-scoped key sees only its team's opportunities' dead letters (calls' letters name
    // the call, not its opportunity, and are left to unscoped keys).
    // One read of the team's opportunities for the page, not one per letter.
    let ours = match &caller.0.team {
        Some(team) => Some(
            crate::control::access::opportunities_of(state.engine.store(), tenant, team.id)
                .await?
                .into_iter()
                .collect::<std::collections::HashSet<_>>(),
        ),
        None => None,
    };
    let visible: Vec<_> = rows
        .into_iter()
        .filter(|r| {
            ours.as_ref().is_none_or(|ours| {
                r.key.kind == neuronx_actors::opportunity::KIND.as_str() && ours.contains(&r.key.id)
            })
        })
        .collect();
    let items: Vec<Value> = visible
        .into_iter()
        .map(|r| {
            json!({
                "id": r.id,
                "actor_kind": r.key.kind,
                "actor_id": r.key.id,
                "input": r.input,
                "error": r.error,
                "attempts": r.attempts,
                "at": ms_to_time(r.created_at_ms),
            })
        })
        .collect();
    Ok(Json(json!({"items": items, "next_cursor": next})))
}

#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterRequest {
    reason: Option<String>,
}

/// The dead letter `id` names, if this caller may see it (its tenant; a team-scoped key only
/// its team's actors).
async fn dead_letter(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<(dead_letters::DeadLetter, neuronx_supervision::ActorKey), ApiError> {
    let tenant = caller.0.tenant;
    let id: i64 = id.parse().map_err(|_| ApiError::NotFound("dead letter"))?;
    let dl = dead_letters::get(state.engine.store(), tenant, id).await?;
    let kind = match dl.kind.as_str() {
        k if k == neuronx_actors::opportunity::KIND.as_str() => neuronx_actors::opportunity::KIND,
        k if k == call_actor::KIND.as_str() => call_actor::KIND,
        _ => return Err(ApiError::NotFound("dead letter")),
    };
    // A call's group is its opportunity: read it from the call's checkpoint.
    let group = match state
        .engine
        .store()
        .get_actor(tenant, kind.as_str(), dl.actor_id)
        .await?
    {
        Some(row) => row.key.group,
        None => dl.actor_id,
    };
    if !caller.sees(state, group).await? {
        return Err(ApiError::NotFound("dead letter"));
    }
    let key = neuronx_supervision::ActorKey {
        tenant,
        kind,
        id: dl.actor_id,
        group,
    };
    Ok((dl, key))
}

async fn handle_dead_letter(
    state: AppState,
    caller: Caller,
    id: String,
    reason: Option<String>,
    retry: bool,
) -> Result<Json<Value>, ApiError> {
    let tenant = caller.require(Action::HandleDeadLetters)?;
    crate::usecases::commands::check_reason(&reason)?;
    let (dl, key) = dead_letter(&state, &caller, &id).await?;
    let before = json!({"actor_kind": dl.kind, "actor_id": dl.actor_id, "input": dl.input, "error": dl.error});
    let outcome = if retry {
        // Deduplicated on the dead letter's id: retrying twice submits the input once.
        let dedupe = format!("dead-letter-retry/{}", dl.id);
        state
            .engine
            .submit(key, dl.input.clone(), Some(dedupe))
            .await
            .map_err(|e| ApiError::Unavailable(e.to_string()))?;
        "retried"
    } else {
        "discarded"
    };
    dead_letters::remove(state.engine.store(), tenant, dl.id).await?;
    audit::record(
        state.engine.store(),
        &caller.0,
        Entry {
            action: if retry {
                AuditAction::DeadLetterRetry
            } else {
                AuditAction::DeadLetterDiscard
            },
            target_kind: "dead_letter",
            target_id: dl.id.to_string(),
            reason: reason.as_deref(),
            outcome: Outcome::Applied,
            before: Some(before),
            after: None,
        },
    )
    .await?;
    Ok(Json(json!({"id": dl.id, "status": outcome})))
}

#[utoipa::path(
    post,
    path = "/v1/dead-letters/{id}/retry",
    tag = "dead letters",
    request_body = DeadLetterRequest,
    params(("id" = String, Path, description = "the dead letter's id")),
    responses((status = 200, description = "resubmitted", body = Object), crate::http::openapi::Errors)
)]
pub async fn retry_dead_letter(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(req): Body<DeadLetterRequest>,
) -> Result<Json<Value>, ApiError> {
    handle_dead_letter(state, caller, id, req.reason, true).await
}

#[utoipa::path(
    post,
    path = "/v1/dead-letters/{id}/discard",
    tag = "dead letters",
    request_body = DeadLetterRequest,
    params(("id" = String, Path, description = "the dead letter's id")),
    responses((status = 200, description = "discarded", body = Object), crate::http::openapi::Errors)
)]
pub async fn discard_dead_letter(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(req): Body<DeadLetterRequest>,
) -> Result<Json<Value>, ApiError> {
    handle_dead_letter(state, caller, id, req.reason, false).await
}

#[utoipa::path(get, path = "/healthz", tag = "health", security(()), responses((status = 200, description = "alive", body = Object)))]
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Ready when the database answers and this instance holds at least one shard.
#[utoipa::path(get, path = "/readyz", tag = "health", security(()), responses((status = 200, description = "ready", body = Object), (status = 503, description = "not ready", body = Object)))]
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let db = state.engine.store().now_ms().await.is_ok();
    let shards = state.engine.owned_shards().await.len();
    let ready = db && shards > 0;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({"ready": ready, "database": db, "owned_shards": shards})),
    )
}

#[utoipa::path(get, path = "/metrics", tag = "health", security(()), responses((status = 200, description = "Prometheus text", body = String, content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.engine.metrics().render(),
    )
}
