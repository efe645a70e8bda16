//! `/v1/numbers`: the tenant's numbers, each in a team's pool or tenant-wide, that leads are
//! dialled and texted from (local presence) and inbound texts are matched by.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::Caller;
use super::error::ApiError;
use super::extract::Body;
use super::AppState;
use crate::control::numbers::Number;
use crate::usecases::numbers;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NumberRequest {
    /// The team whose pool it joins; absent or null: tenant-wide.
    #[schema(example = "austin")]
    team: Option<String>,
    /// For people; absent, null or blank: none.
    #[schema(example = "Austin office")]
    label: Option<String>,
}

#[utoipa::path(
    put,
    path = "/v1/numbers/{number}",
    tag = "numbers",
    operation_id = "putNumber",
    summary = "Add a number to the pool, or move or relabel it",
    description = "A number of the tenant's Twilio account, in `team`'s pool or tenant-wide. A US or Canadian number's area code and state are derived and stored. A lead is dialled and texted from its opportunity's team's numbers (else the tenant-wide ones, else the account's `from_number`): one in its area code, else in its state, else any, the same for the same lead. Inbound texts are matched by the number they reached, and one to a number not listed (nor the account's) is refused once the tenant lists any. Tenant-wide admins only. 201 when added, 200 when changed. Audited.",
    params(("number" = String, Path, description = "E.164 (`+15125550100`; URL-encode the `+` as `%2B`)")),
    request_body = NumberRequest,
    responses(
        (status = 201, description = "added", body = crate::control::numbers::Number),
        (status = 200, description = "moved or relabelled", body = crate::control::numbers::Number),
        crate::http::openapi::Errors
    )
)]
pub async fn put_number(
    State(state): State<AppState>,
    caller: Caller,
    Path(number): Path<String>,
    Body(req): Body<NumberRequest>,
) -> Result<Response, ApiError> {
    let (view, added) = numbers::put_number(
        &state.engine,
        &caller.0,
        &number,
        req.team.as_deref(),
        req.label.as_deref(),
    )
    .await?;
    let status = if added {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view)).into_response())
}

#[utoipa::path(
    delete,
    path = "/v1/numbers/{number}",
    tag = "numbers",
    operation_id = "removeNumber",
    summary = "Remove a number from the pool",
    description = "404 when it is not one of the tenant's. Dials and texts already sent keep the number they went from. Tenant-wide admins only. Audited.",
    params(("number" = String, Path, description = "E.164")),
    responses(
        (status = 200, description = "removed; the number as it was", body = crate::control::numbers::Number),
        crate::http::openapi::Errors
    )
)]
pub async fn remove_number(
    State(state): State<AppState>,
    caller: Caller,
    Path(number): Path<String>,
) -> Result<Json<Number>, ApiError> {
    Ok(Json(
        numbers::remove_number(&state.engine, &caller.0, &number).await?,
    ))
}

#[utoipa::path(
    get,
    path = "/v1/numbers",
    tag = "numbers",
    operation_id = "listNumbers",
    summary = "List the tenant's numbers",
    description = "By number, each with its team (null: tenant-wide), label, area code and state. A team-limited key sees its team's numbers and the tenant-wide ones.",
    responses(
        (status = 200, description = "the numbers", body = crate::http::openapi::NumberList),
        crate::http::openapi::Errors
    )
)]
pub async fn list_numbers(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let numbers = numbers::list_numbers(&state.engine, &caller.0).await?;
    Ok(Json(json!({"items": numbers})))
}
