//! `/v1/opportunities/{id}/messages`: the conversation with the lead, and a text a person sends
//! by hand. Handlers parse and render; the use cases (`crate::usecases::messages`) decide.

use axum::extract::{Path, State};
use axum::response::Response;
use axum::Json;
use serde::Deserialize;

use super::auth::Caller;
use super::error::ApiError;
use super::extract::{Body, Params};
use super::opportunities::{applied, PageParams};
use super::AppState;
use crate::usecases::messages::{self, MessageView};
use crate::usecases::views::{Accepted, OpportunityView, Page};

#[utoipa::path(
    get,
    path = "/v1/opportunities/{id}/messages",
    tag = "opportunities",
    operation_id = "listOpportunityMessages",
    summary = "Read the conversation with the lead",
    description = "The texts exchanged with the lead, both directions, oldest first: what the playbook sent, what people sent by hand (`human`), and the lead's replies. Each outbound text carries its delivery status as the carrier reported it (`queued`, `sent`, `delivered`, `failed` with the carrier's `error_code`), or why it never left (`failed` with `error`, `canceled`). Read from the opportunity's timeline and its texts' outbox records; `next_cursor` is null on the last page.",
    params(("id" = String, Path, description = "the opportunity's id"), PageParams),
    responses(
        (status = 200, description = "a page of the thread", body = crate::http::openapi::MessagePage),
        crate::http::openapi::Errors
    )
)]
pub async fn list_messages(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Params(p): Params<PageParams>,
) -> Result<Json<Page<MessageView>>, ApiError> {
    let (limit, cursor) = p.raw();
    Ok(Json(
        messages::list(&state.engine, &caller.0, &id, limit, cursor).await?,
    ))
}

/// A text to the lead, written by a person.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendMessageRequest {
    /// `sms` (the default) or `email`.
    #[schema(value_type = Option<crate::usecases::messages::MessageChannel>)]
    channel: Option<String>,
    /// An email's subject, 1 to 200 characters on one line; only for `email`.
    subject: Option<String>,
    /// The text: 1 to 1600 characters for a text, 1 to 20,000 for an email (line breaks
    /// allowed).
    body: String,
    /// Who writes, for keys that belong to no principal (an integration writing for a person);
    /// a principal's key always writes as that principal.
    by: Option<String>,
}

#[utoipa::path(
    post,
    path = "/v1/opportunities/{id}/messages",
    tag = "operator actions",
    operation_id = "sendOpportunityMessage",
    summary = "Text or email the lead by hand",
    description = "An operator or rep texts the lead now, or emails it with `channel = email` and a `subject` (through the email gate: without email consent or an address, unsubscribed, a bounced address or opted out answers 409 `email_refused`; the email carries the footer, the unsubscribe link and, with inbound email set up, the reply address). A text: The opportunity's compliance gate decides as for every text: without SMS consent, outside the contact's calling hours (in every zone its time zone and area code name), past a cap, to a landline, or opted out answers 409 (`sms_refused` naming the gate's reason, `opted_out`), as does a paused (`paused`) or closed (`terminal_stage`) opportunity; the do-not-call list is checked when it is sent. It leaves through the outbox, is on the timeline and in the thread, and takes the conversation over: the playbook's automatic texts stop (its calls go on unless the playbook's `takeover_stops_calls`) until an operator hands it back (`POST /v1/opportunities/{id}/hand-back`). Audited as `message_send`.",
    request_body = SendMessageRequest,
    params(("id" = String, Path, description = "the opportunity's id")),
    responses(
        (status = 200, description = "the opportunity after: `takeover` names who took it over", body = OpportunityView),
        (status = 202, description = "durable; the instance that owns the opportunity applies it", body = Accepted),
        crate::http::openapi::Errors
    )
)]
pub async fn send_message(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(req): Body<SendMessageRequest>,
) -> Result<Response, ApiError> {
    let done = match req.channel.as_deref().map(str::trim) {
        None | Some("sms") => {
            if req.subject.is_some() {
                return Err(ApiError::invalid("subject", "only an email has a subject"));
            }
            messages::send(&state.engine, &caller.0, &id, req.body, req.by, None).await?
        }
        Some("email") => {
            let subject = req.subject.unwrap_or_default();
            let (engine, who) = (&state.engine, &caller.0);
            messages::send_email(engine, who, &id, subject, req.body, req.by, None).await?
        }
        Some(_) => return Err(ApiError::invalid("channel", "must be sms or email")),
    };
    Ok(applied(done))
}
