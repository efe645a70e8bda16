//! Calls, dead letters, health, readiness and metrics.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};

use super::auth::Caller;
use super::error::ApiError;
use super::extract::{Body, Params};
use super::opportunities::PageParams;
use super::AppState;
use crate::usecases::ops::{self, CallView, DeadLetterView, Handled, HandledView};
use crate::usecases::views::Page;

#[utoipa::path(
    get,
    path = "/v1/calls/{id}",
    tag = "calls",
    operation_id = "getCall",
    summary = "Read a call",
    description = "A call placed for an opportunity: its Twilio status, answering-machine verdict, provider SID and the first 200 entries of its timeline. A call belongs to its opportunity's team: another team's or tenant's call answers 404.",
    params(("id" = String, Path, description = "the call's id")),
    responses(
        (status = 200, description = "the call with its timeline", body = crate::usecases::ops::CallView),
        crate::http::openapi::Errors
    )
)]
pub async fn get_call(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<CallView>, ApiError> {
    Ok(Json(ops::get_call(&state.engine, &caller.0, &id).await?))
}

#[utoipa::path(
    get,
    path = "/v1/dead-letters",
    tag = "dead letters",
    operation_id = "listDeadLetters",
    summary = "List dead letters",
    description = "Inputs their actor failed too often, oldest first. A team-scoped key sees its team's opportunities' letters only; a call's letter is left to tenant-wide keys.",
    params(PageParams),
    responses(
        (status = 200, description = "a page of dead letters", body = crate::http::openapi::DeadLetterPage),
        crate::http::openapi::Errors
    )
)]
pub async fn dead_letters(
    State(state): State<AppState>,
    caller: Caller,
    Params(p): Params<PageParams>,
) -> Result<Json<Page<DeadLetterView>>, ApiError> {
    let (limit, cursor) = p.raw();
    Ok(Json(
        ops::dead_letters(&state.engine, &caller.0, limit, cursor).await?,
    ))
}

#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterRequest {
    reason: Option<String>,
}

#[utoipa::path(
    post,
    path = "/v1/dead-letters/{id}/retry",
    tag = "dead letters",
    operation_id = "retryDeadLetter",
    summary = "Retry a dead letter",
    description = "Resubmits the letter's input to its actor (deduplicated on the letter's id, so retrying twice submits it once) and removes the letter. Audited.",
    request_body = DeadLetterRequest,
    params(("id" = String, Path, description = "the dead letter's id")),
    responses(
        (status = 200, description = "resubmitted", body = crate::usecases::ops::HandledView),
        crate::http::openapi::Errors
    )
)]
pub async fn retry_dead_letter(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(req): Body<DeadLetterRequest>,
) -> Result<Json<HandledView>, ApiError> {
    let done = ops::handle_dead_letter(&state.engine, &caller.0, &id, req.reason, Handled::Retried)
        .await?;
    Ok(Json(done))
}

#[utoipa::path(
    post,
    path = "/v1/dead-letters/{id}/discard",
    tag = "dead letters",
    operation_id = "discardDeadLetter",
    summary = "Discard a dead letter",
    description = "Removes the letter without resubmitting its input. Audited.",
    request_body = DeadLetterRequest,
    params(("id" = String, Path, description = "the dead letter's id")),
    responses(
        (status = 200, description = "discarded", body = crate::usecases::ops::HandledView),
        crate::http::openapi::Errors
    )
)]
pub async fn discard_dead_letter(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(req): Body<DeadLetterRequest>,
) -> Result<Json<HandledView>, ApiError> {
    let done = ops::handle_dead_letter(
        &state.engine,
        &caller.0,
        &id,
        req.reason,
        Handled::Discarded,
    )
    .await?;
    Ok(Json(done))
}

#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    operation_id = "getHealth",
    summary = "Liveness",
    description = "Answers while the process runs. Needs no key.",
    security(()),
    responses(
        (status = 200, description = "alive", body = crate::http::openapi::Health)
    )
)]
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Ready when the database answers and this instance holds at least one shard.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    operation_id = "getReadiness",
    summary = "Readiness",
    description = "Ready (200) when the database answers and this instance holds at least one shard; 503 otherwise, and while the instance stops (`draining`). Needs no key.",
    security(()),
    responses(
        (status = 200, description = "ready", body = crate::http::openapi::Readiness),
        (status = 503, description = "not ready", body = crate::http::openapi::Readiness)
    )
)]
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

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "health",
    operation_id = "getMetrics",
    summary = "Prometheus metrics",
    description = "The engine's metrics in Prometheus' text format. Needs no key.",
    security(()),
    responses(
        (status = 200, description = "Prometheus text", body = String, content_type = "text/plain")
    )
)]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.engine.metrics().render(),
    )
}
