//! `GET /v1/audit`: the tenant's audit log, oldest first, filtered.

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::auth::Caller;
use super::error::ApiError;
use super::extract::Params;
use super::AppState;
use crate::control::audit::{self, AuditAction, Query};
use crate::control::Action;

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    principal: Option<String>,
    action: Option<String>,
    target: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// An optional RFC 3339 time from a request, named by `field` when it is malformed.
pub(super) fn rfc3339(
    field: &'static str,
    raw: Option<&str>,
) -> Result<Option<DateTime<Utc>>, ApiError> {
    raw.map(|t| {
        DateTime::parse_from_rfc3339(t)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| ApiError::invalid(field, format!("not an RFC 3339 time: {e}")))
    })
    .transpose()
}

#[utoipa::path(
    get,
    path = "/v1/audit",
    tag = "audit",
    params(AuditParams),
    responses((status = 200, description = "a page of audit entries, oldest first", body = crate::http::openapi::AuditPage), crate::http::openapi::Errors)
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Params(p): Params<AuditParams>,
) -> Result<Json<Value>, ApiError> {
    let tenant = caller.require(Action::ReadOps)?;
    let (limit, after) =
        crate::usecases::opportunities::page_bounds(p.limit.as_deref(), p.cursor.as_deref())?;
    let action = p
        .action
        .as_deref()
        .map(str::parse::<AuditAction>)
        .transpose()?;
    let q = Query {
        principal: p.principal,
        action,
        target_id: p.target,
        since: rfc3339("since", p.since.as_deref())?,
        until: rfc3339("until", p.until.as_deref())?,
        after,
        limit,
    };
    let store = state.engine.store();
    let mut rows = audit::list(store, tenant, &q).await?;
    let next = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| r.id.to_string()))
        .flatten();
    // A team-scoped key reads what was done to its team's opportunities only: entries carry
    // other teams' opportunities (before and after) and the tenant's access changes.
    if let Some(team) = &caller.0.team {
        let ours: std::collections::HashSet<String> =
            crate::control::access::opportunities_of(store, tenant, team.id)
                .await?
                .iter()
                .map(Uuid::to_string)
                .collect();
        rows.retain(|r| r.target_kind == "opportunity" && ours.contains(&r.target_id));
    }
    Ok(Json(json!({"items": rows, "next_cursor": next})))
}
