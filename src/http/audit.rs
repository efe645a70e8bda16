//! `GET /v1/audit`: the tenant's audit log, oldest first, filtered.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;

use super::auth::Caller;
use super::error::ApiError;
use super::extract::Params;
use super::AppState;
use crate::control::audit::Record;
use crate::usecases::audit::AuditFilter;
use crate::usecases::views::Page;

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    principal: Option<String>,
    action: Option<String>,
    target: Option<String>,
    /// RFC 3339: entries at or after.
    #[param(format = DateTime)]
    since: Option<String>,
    /// RFC 3339: entries before.
    #[param(format = DateTime)]
    until: Option<String>,
    /// Page size, 1 to 1000; 100 when absent.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
    cursor: Option<String>,
}

#[utoipa::path(
    get,
    path = "/v1/audit",
    tag = "audit",
    operation_id = "listAuditEntries",
    summary = "Read the audit log",
    description = "Who did what to which object, why, and the object before and after; oldest first, filtered by principal, action, target and time. A team-scoped key reads its team's opportunities' entries only.",
    params(AuditParams),
    responses(
        (status = 200, description = "a page of audit entries, oldest first", body = crate::http::openapi::AuditPage),
        crate::http::openapi::Errors
    )
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Params(p): Params<AuditParams>,
) -> Result<Json<Page<Record>>, ApiError> {
    let filter = AuditFilter {
        principal: p.principal,
        action: p.action,
        target: p.target,
        since: p.since,
        until: p.until,
        limit: p.limit,
        cursor: p.cursor,
    };
    Ok(Json(
        crate::usecases::audit::audit_log(&state.engine, &caller.0, filter).await?,
    ))
}
