//! Bulk pause and resume by filter (team, stage, playbook, paused): a dry run counts what would
//! change; `"dry_run": false` acts on each opportunity like the single commands do, with one
//! audit entry per opportunity.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use neuronx_actors::domain::opportunity::OppInput;
use neuronx_actors::opportunity as opp;
use neuronx_supervision::store::ListQuery;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::auth::Caller;
use super::commands::{acting_as, check_reason, run};
use super::error::ApiError;
use super::extract::Body;
use super::AppState;
use crate::control::access;
use crate::control::audit::AuditAction;
use crate::control::Action;

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkFilter {
    team: Option<String>,
    stage: Option<String>,
    playbook: Option<String>,
    paused: Option<bool>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkRequest {
    #[serde(default)]
    filter: BulkFilter,
    /// Count what would change, change nothing. Defaults to true: a bulk action is confirmed
    /// by asking again with `"dry_run": false`.
    dry_run: Option<bool>,
    operator: Option<String>,
    reason: Option<String>,
}

/// At most this many opportunities per bulk request: a larger set is narrowed by filter.
const BULK_LIMIT: usize = 5_000;

async fn matching(
    state: &AppState,
    caller: &Caller,
    filter: &BulkFilter,
    want_paused: bool,
) -> Result<Vec<Uuid>, ApiError> {
    let tenant = caller.0.tenant;
    let store = state.engine.store();
    let stage = filter
        .stage
        .as_deref()
        .map(|s| {
            s.parse::<neuronx_actors::domain::opportunity::Stage>()
                .map(|st| st.to_string())
                .map_err(|e| ApiError::invalid("filter.stage", e.to_string()))
        })
        .transpose()?;
    if let Some(p) = &filter.playbook {
        if !state.playbooks.contains_key(p) {
            return Err(ApiError::invalid(
                "filter.playbook",
                format!("unknown playbook {p:?}"),
            ));
        }
    }
    let team = match (&filter.team, &caller.0.team) {
        (Some(name), Some(own)) if name.trim() != own.name => {
            return Err(ApiError::invalid(
                "filter.team",
                format!("this key acts on team {:?} only", own.name),
            ))
        }
        (_, Some(own)) => Some(own.id),
        (Some(name), None) => Some(
            access::require_team(store, tenant, "filter.team", name)
                .await?
                .id,
        ),
        (None, None) => None,
    };
    let members = match team {
        Some(t) => Some(access::opportunities_of(store, tenant, t).await?),
        None => None,
    };
    // Only those the action would change: pausing skips the paused, resuming the running.
    let paused = Some(want_paused);
    if filter.paused.is_some_and(|p| p != want_paused) {
        return Ok(Vec::new());
    }
    let mut found = Vec::new();
    let mut after = None;
    loop {
        let rows = store
            .list_actors(&ListQuery {
                tenant,
                kind: opp::KIND.as_str().into(),
                status: stage.clone(),
                paused,
                after,
                limit: 500,
            })
            .await?;
        let last = rows.last().map(|r| (r.created_at_ms, r.key.id));
        for r in &rows {
            if members.as_ref().is_some_and(|m| !m.contains(&r.key.id)) {
                continue;
            }
            if let Some(p) = &filter.playbook {
                if r.state.get("playbook").and_then(Value::as_str) != Some(p) {
                    continue;
                }
            }
            found.push(r.key.id);
        }
        if found.len() > BULK_LIMIT {
            return Err(ApiError::invalid(
                "filter",
                format!("matches more than {BULK_LIMIT} opportunities; narrow it"),
            ));
        }
        match last {
            Some(l) if rows.len() == 500 => after = Some(l),
            _ => return Ok(found),
        }
    }
}

async fn bulk(
    state: AppState,
    caller: Caller,
    req: BulkRequest,
    pause: bool,
) -> Result<Json<Value>, ApiError> {
    caller.require(Action::Operate)?;
    check_reason(&req.reason)?;
    let by = acting_as(&caller, req.operator.clone())?;
    // Pausing selects running opportunities, resuming paused ones.
    let ids = matching(&state, &caller, &req.filter, !pause).await?;
    let dry_run = req.dry_run.unwrap_or(true);
    if dry_run {
        return Ok(Json(json!({"dry_run": true, "matched": ids.len()})));
    }
    let action = if pause {
        AuditAction::BulkPause
    } else {
        AuditAction::BulkResume
    };
    let (mut applied, mut accepted, mut rejected) = (0, 0, 0);
    for id in &ids {
        let input = if pause {
            OppInput::Pause {
                by: by.clone(),
                reason: req.reason.clone(),
            }
        } else {
            OppInput::Resume { by: by.clone() }
        };
        match run(&state, &caller, *id, action, input).await {
            Ok(r) if r.status() == StatusCode::ACCEPTED => accepted += 1,
            Ok(_) => applied += 1,
            Err(ApiError::Conflict { .. }) => rejected += 1,
            Err(e) => return Err(e),
        }
    }
    Ok(Json(json!({
        "dry_run": false,
        "matched": ids.len(),
        "applied": applied,
        "accepted": accepted,
        "rejected": rejected,
    })))
}

#[utoipa::path(
    post,
    path = "/v1/bulk/pause",
    tag = "operator actions",
    request_body = BulkRequest,
    responses((status = 200, description = "dry run: matched; otherwise matched, applied, accepted, rejected", body = Object), crate::http::openapi::Errors)
)]
pub async fn bulk_pause(
    State(state): State<AppState>,
    caller: Caller,
    Body(req): Body<BulkRequest>,
) -> Result<Json<Value>, ApiError> {
    bulk(state, caller, req, true).await
}

#[utoipa::path(
    post,
    path = "/v1/bulk/resume",
    tag = "operator actions",
    request_body = BulkRequest,
    responses((status = 200, description = "dry run: matched; otherwise matched, applied, accepted, rejected", body = Object), crate::http::openapi::Errors)
)]
pub async fn bulk_resume(
    State(state): State<AppState>,
    caller: Caller,
    Body(req): Body<BulkRequest>,
) -> Result<Json<Value>, ApiError> {
    bulk(state, caller, req, false).await
}
