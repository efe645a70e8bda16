//! `/v1/principals/{name}/rep`, `/v1/principals/{name}/status`, `/v1/reps` and
//! `/v1/teams/{name}/ringing`: who takes calls, when, and how a team rings them.

use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::Caller;
use super::error::ApiError;
use super::extract::{Body, Params};
use super::AppState;
use crate::control::access::Team;
use crate::control::reps::Rep;
use crate::usecases::reps::{self, HoursFields, ProfileFields};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoursRequest {
    /// The days a span starts on.
    #[schema(value_type = Vec<crate::control::reps::Day>)]
    days: Vec<String>,
    /// Local start, `HH:MM` (24 h).
    #[schema(example = "09:00")]
    from: String,
    /// Local end, `HH:MM` (`24:00`: midnight); earlier than `from` for an overnight span.
    #[schema(example = "17:00")]
    to: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RepRequest {
    /// E.164 (`+14155552671`); the number the rep is rung at.
    phone: String,
    /// IANA time zone the working hours are read in.
    #[schema(example = "America/New_York")]
    time_zone: String,
    /// When the rep takes calls; absent or null: any time.
    working_hours: Option<HoursRequest>,
    /// Calls the rep takes at once, 1 to 10 (default 1).
    #[schema(minimum = 1, maximum = 10)]
    max_calls: Option<i64>,
    /// Where escalation notices reach the rep by email (besides an SMS to `phone`); absent
    /// or null: none.
    #[schema(example = "ana@example.com")]
    email: Option<String>,
}

#[utoipa::path(
    put,
    path = "/v1/principals/{name}/rep",
    tag = "reps",
    operation_id = "setRep",
    summary = "Make a user a rep, or change its profile",
    description = "The phone the user is rung at (and texted escalation notices at), an optional email for notices, its time zone and working hours and the calls it takes at once. A new rep is `offline` until its status is set; a rep's status is kept. Service accounts take no calls (400 on `name`). Audited.",
    params(("name" = String, Path, description = "the principal's name")),
    request_body = RepRequest,
    responses(
        (status = 200, description = "the rep", body = crate::control::reps::Rep),
        crate::http::openapi::Errors
    )
)]
pub async fn set_rep(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(req): Body<RepRequest>,
) -> Result<Json<Rep>, ApiError> {
    let fields = ProfileFields {
        phone: &req.phone,
        time_zone: &req.time_zone,
        working_hours: req.working_hours.as_ref().map(|h| HoursFields {
            days: &h.days,
            from: &h.from,
            to: &h.to,
        }),
        max_calls: req.max_calls,
        email: req.email.as_deref(),
    };
    Ok(Json(
        reps::set_profile(&state.engine, &caller.0, &name, fields).await?,
    ))
}

/// The statuses a rep may be given; `busy` is derived from its live calls.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)] // Schema only: the use case parses the status.
pub enum SettableStatus {
    Available,
    Away,
    Offline,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusRequest {
    #[schema(value_type = SettableStatus)]
    status: String,
}

#[utoipa::path(
    post,
    path = "/v1/principals/{name}/status",
    tag = "reps",
    operation_id = "setRepStatus",
    summary = "Set a rep's status",
    description = "`available`, `away` or `offline`; `busy` is derived from live calls and refused (400 on `status`). Admins set any rep's in reach; a key acting for the rep sets its own. Audited.",
    params(("name" = String, Path, description = "the rep's principal name")),
    request_body = StatusRequest,
    responses(
        (status = 200, description = "the rep", body = crate::control::reps::Rep),
        crate::http::openapi::Errors
    )
)]
pub async fn set_status(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(req): Body<StatusRequest>,
) -> Result<Json<Rep>, ApiError> {
    Ok(Json(
        reps::set_status(&state.engine, &caller.0, &name, &req.status).await?,
    ))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RepParams {
    /// Only this team's reps (a team-limited key: its own team only).
    team: Option<String>,
}

#[utoipa::path(
    get,
    path = "/v1/reps",
    tag = "reps",
    operation_id = "listReps",
    summary = "List reps",
    description = "The tenant's reps (a team-limited key: its team's), each with its status as set, its effective status (`busy` at `max_calls` live calls), its live calls and whether it is within its working hours now.",
    params(RepParams),
    responses(
        (status = 200, description = "the reps", body = crate::http::openapi::RepList),
        crate::http::openapi::Errors
    )
)]
pub async fn list_reps(
    State(state): State<AppState>,
    caller: Caller,
    Params(p): Params<RepParams>,
) -> Result<Json<Value>, ApiError> {
    let reps = reps::list_reps(&state.engine, &caller.0, p.team.as_deref()).await?;
    Ok(Json(json!({"items": reps})))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RingingRequest {
    #[schema(value_type = crate::control::reps::RingStrategy)]
    strategy: String,
    /// How long each rep is rung, 5 to 120 seconds.
    #[schema(minimum = 5, maximum = 120)]
    ring_timeout_seconds: i64,
}

#[utoipa::path(
    put,
    path = "/v1/teams/{name}/ringing",
    tag = "reps",
    operation_id = "setTeamRinging",
    summary = "Set how a team rings its reps",
    description = "`sequential`: one rep at a time, the one offered a call longest ago first; `simultaneous`: up to five at once, the first to answer takes the call. Each rep is rung for `ring_timeout_seconds`. Audited.",
    params(("name" = String, Path, description = "the team's name")),
    request_body = RingingRequest,
    responses(
        (status = 200, description = "the team", body = crate::control::access::Team),
        crate::http::openapi::Errors
    )
)]
pub async fn set_ringing(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(req): Body<RingingRequest>,
) -> Result<Json<Team>, ApiError> {
    Ok(Json(
        reps::set_ringing(
            &state.engine,
            &caller.0,
            &name,
            &req.strategy,
            req.ring_timeout_seconds,
        )
        .await?,
    ))
}
