//! Calls, dead letters, health, readiness and metrics.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use neuronx_actors::call as call_actor;
use neuronx_actors::domain::call::Call;
use serde_json::{json, Value};
use uuid::Uuid;

use super::error::ApiError;
use super::extract::{Params, Tenant};
use super::opportunities::{ms_to_time, page, PageParams};
use super::AppState;

pub async fn get_call(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("call"))?;
    let store = state.engine.store();
    let row = store
        .get_actor(tenant, call_actor::KIND.as_str(), id)
        .await?
        .ok_or(ApiError::NotFound("call"))?;
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

pub async fn dead_letters(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Params(p): Params<PageParams>,
) -> Result<Json<Value>, ApiError> {
    let (limit, after) = page(&p)?;
    let rows = state
        .engine
        .store()
        .dead_letters(tenant, after, limit)
        .await?;
    let next = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| r.id.to_string()))
        .flatten();
    let items: Vec<Value> = rows
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

pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Ready when the database answers and this instance holds at least one shard.
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

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.engine.metrics().render(),
    )
}
