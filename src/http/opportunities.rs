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
use crate::usecases::views::{Accepted, Applied, OpportunityView, Page, TimelineItem};

/// A new lead.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    /// Your id for the lead, 1 to 200 characters: creating it again answers the same
    /// opportunity.
    external_id: String,
    contact: ContactRequest,
    /// A configured playbook's name; the default playbook when absent.
    playbook: Option<String>,
    sla: Option<SlaRequest>,
    /// Who owns it; round-robin in its team when absent.
    assignee: Option<String>,
    /// The team the opportunity is bound to; a team-scoped key's own team by default.
    team: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ContactRequest {
    name: String,
    /// Any form libphonenumber reads with its country code (`+1 (415) 555-2671`); stored
    /// E.164. A lead needs a phone, an email, or both; without a phone it is never called or
    /// texted.
    phone: Option<String>,
    /// Compared trimmed and lower-cased when matching the contact (one person, one cadence).
    email: Option<String>,
    /// IANA time zone (`America/New_York`); calling hours are checked in it.
    timezone: Option<String>,
    consent: ConsentRequest,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ConsentRequest {
    voice: bool,
    sms: bool,
    /// The playbook's emails to the lead (`[email]`); absent means no consent.
    #[serde(default)]
    email: bool,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct SlaRequest {
    /// Overrides the playbook's first-touch time: 1 to 2592000 (30 days).
    #[schema(minimum = 1, maximum = 2_592_000)]
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
                    email: c.consent.email,
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
    operation_id = "createOpportunity",
    summary = "Create an opportunity",
    description = "Creates the opportunity for a lead and starts its playbook. Idempotent on \
                   `external_id`: creating it again answers the existing opportunity (200), \
                   whatever else the request says. The lead is bound to a team (the key's own \
                   for a team-scoped key) and assigned round-robin in it unless `assignee` is \
                   given. One person, one cadence: when the contact's phone (else its email) \
                   already belongs to a live opportunity, the tenant's `duplicate_contacts` setting decides: `merge` \
                   (the default) answers that live opportunity (200) and notes the lead on its \
                   timeline; `skip` creates this one (201) running no cadence, with \
                   `duplicate_of` naming the live one. 409 `contact_busy` when another lead of \
                   the same contact is being created at that moment (retry).",
    request_body = CreateRequest,
    responses(
        (status = 201, description = "created", body = OpportunityView),
        (status = 200, description = "already existed (same external_id), or the contact's live opportunity the lead was merged into", body = OpportunityView),
        (status = 202, description = "durable; another instance creates it", body = Accepted),
        crate::http::openapi::Errors
    )
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
        Created::Existing(view) | Created::Merged(view) => {
            (StatusCode::OK, Json(view)).into_response()
        }
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
    operation_id = "getOpportunity",
    summary = "Read an opportunity",
    description = "The opportunity with its armed timers. Another tenant's or team's id, and \
                   an id that is no UUID, answer 404.",
    params(("id" = String, Path, description = "the opportunity's id")),
    responses(
        (status = 200, description = "the opportunity with its armed timers", body = OpportunityView),
        crate::http::openapi::Errors
    )
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

/// The list's filters. Each is read as text and checked by the use case, so a bad value
/// answers the API's JSON 400 naming it; the document declares the type each must have.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only opportunities in this stage.
    #[param(value_type = Option<crate::http::openapi::Stage>)]
    stage: Option<String>,
    /// Only paused (`true`) or running (`false`) opportunities.
    #[param(value_type = Option<bool>)]
    paused: Option<String>,
    /// Only this team's (a team-scoped key lists its own team's regardless).
    team: Option<String>,
    /// Page size, 1 to 500; 50 when absent.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    limit: Option<String>,
    /// The previous page's `next_cursor`.
    cursor: Option<String>,
}

#[utoipa::path(
    get,
    path = "/v1/opportunities",
    tag = "opportunities",
    operation_id = "listOpportunities",
    summary = "List opportunities",
    description = "A page of opportunities, oldest first, without their timers. Filtering by \
                   team (or listing with a team-scoped key) filters each page after reading \
                   it, so a page may hold fewer than `limit` items; follow `next_cursor` until \
                   it is null to see every one.",
    params(ListParams),
    responses(
        (status = 200, description = "a page of opportunities", body = crate::http::openapi::OpportunityPage),
        crate::http::openapi::Errors
    )
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

/// `limit` and `cursor` of an id-paged list, read as text and checked by
/// `usecases::opportunities::page_bounds` (a bad value is a JSON 400 naming it).
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Page size, 1 to 1000; 100 when absent.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
    /// The previous page's `next_cursor`.
    cursor: Option<String>,
}

impl PageParams {
    /// The limit and cursor as given, for use cases that check them themselves.
    pub fn raw(&self) -> (Option<&str>, Option<&str>) {
        (self.limit.as_deref(), self.cursor.as_deref())
    }
}

#[utoipa::path(
    get,
    path = "/v1/opportunities/{id}/timeline",
    tag = "opportunities",
    operation_id = "getOpportunityTimeline",
    summary = "Read an opportunity's timeline",
    description = "A page of what happened to the opportunity, oldest first. Each entry that \
                   is a decision (by the playbook, the compliance gate or the system) carries \
                   its `why`: the rule in an operator's words and the inputs it weighed.",
    params(("id" = String, Path, description = "the opportunity's id"), PageParams),
    responses(
        (status = 200, description = "a page of timeline entries", body = crate::http::openapi::TimelinePage),
        crate::http::openapi::Errors
    )
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
