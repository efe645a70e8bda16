//! `/v1/opportunities`: create, read, list and timeline. Handlers parse and render; the
//! use cases (`crate::usecases::opportunities`) decide.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use neuronx_actors::domain::opportunity::{Consent, Contact};
use serde::Deserialize;

use super::auth::Caller;
use super::error::ApiError;
use super::extract::{Body, Params};
use super::AppState;
use crate::usecases::opportunities::{self, Created, ListFilter, NewOpportunity, Playbooks};
use crate::usecases::views::{Applied, OpportunityView, Page, TimelineItem};

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

impl CreateRequest {
    fn into_new(self) -> NewOpportunity {
        let c = self.contact;
        NewOpportunity {
            external_id: self.external_id,
            contact: Contact {
                name: c.name,
                phone: c.phone,
                email: c.email,
                timezone: c.timezone,
                consent: Consent {
                    voice: c.consent.voice,
                    sms: c.consent.sms,
                },
            },
            playbook: self.playbook,
            first_touch_seconds: self.sla.and_then(|s| s.first_touch_seconds),
            assignee: self.assignee,
            team: self.team,
        }
    }
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
    let playbooks = Playbooks {
        all: &state.playbooks,
        default: &state.default_playbook,
    };
    let created =
        opportunities::create(&state.engine, &playbooks, &caller.0, req.into_new()).await?;
    Ok(match created {
        Created::New(view) => (StatusCode::CREATED, Json(view)).into_response(),
        Created::Existing(view) => (StatusCode::OK, Json(view)).into_response(),
        Created::Accepted(a) => (StatusCode::ACCEPTED, Json(a)).into_response(),
    })
}

/// A command's or create's answer: the opportunity after (200), or accepted (202).
pub(super) fn applied(a: Applied) -> Response {
    match a {
        Applied::Done(view) => Json(view).into_response(),
        Applied::Accepted(a) => (StatusCode::ACCEPTED, Json(a)).into_response(),
    }
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
) -> Result<Json<OpportunityView>, ApiError> {
    Ok(Json(
        opportunities::get(&state.engine, &caller.0, &id).await?,
    ))
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
) -> Result<Json<Page<OpportunityView>>, ApiError> {
    let filter = ListFilter {
        stage: p.stage,
        paused: p.paused,
        team: p.team,
        limit: p.limit,
        cursor: p.cursor,
    };
    Ok(Json(
        opportunities::list(&state.engine, &caller.0, filter).await?,
    ))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    limit: Option<String>,
    cursor: Option<String>,
}

impl PageParams {
    pub fn bounds(&self) -> Result<(i64, i64), ApiError> {
        Ok(opportunities::page_bounds(
            self.limit.as_deref(),
            self.cursor.as_deref(),
        )?)
    }
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
) -> Result<Json<Page<TimelineItem>>, ApiError> {
    let page = opportunities::timeline(
        &state.engine,
        &caller.0,
        &id,
        p.limit.as_deref(),
        p.cursor.as_deref(),
    )
    .await?;
    Ok(Json(page))
}
