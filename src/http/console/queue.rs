//! `/console/queue`, a rep's queue: the escalated and callback-due leads assigned to the
//! signed-in principal or bound to its team, oldest breach first (`usecases::board::queue`),
//! with claim, call now, send a text, snooze, hand back and set the outcome. Each button posts to the same action route as the
//! detail page's (`mod.rs` `act`), so the use case's role check and audit entry apply.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};
use uuid::Uuid;

use super::super::AppState;
use super::list::{sla_cell, state_badge};
use super::pages::{api_error_page, page};
use super::{html as render, Operator};
use crate::control::{allows, Action};
use crate::usecases::board::{self, QueueItem};
use crate::usecases::snooze::SnoozeFor;
use neuronx_actors::domain::opportunity::MAX_TEXT_CHARS;
use neuronx_actors::domain::playbook::{MAX_BODY_CHARS, MAX_SUBJECT_CHARS};

/// The outcomes a rep sets from the queue: each a stage change with a reason.
pub const OUTCOMES: [&str; 4] = ["booked", "won", "lost", "nurture"];

/// Where a work form was used: the queue (which it returns to) or a lead's page.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Origin {
    Queue,
    Detail,
}

/// The lead a row of work forms acts on.
pub(super) struct Lead<'a> {
    pub id: Uuid,
    pub name: &'a str,
    /// Assigned to the signed-in principal already: no claim.
    pub mine: bool,
    /// A person took the conversation over: offer to hand it back.
    pub taken_over: bool,
}

/// Claim (unless the lead is mine already), call now (both for a principal's session), send a
/// text, snooze, hand back a taken-over conversation and set the outcome: the queue's forms,
/// also on a lead's page.
pub(super) fn work_forms(op: &Operator, lead: &Lead, from: Origin) -> Markup {
    let id = lead.id;
    let name = lead.name;
    let to = |action: &str| format!("/console/opportunities/{id}/{action}");
    let back = match from {
        Origin::Queue => "queue",
        Origin::Detail => "detail",
    };
    let has_principal = op.identity.principal.is_some();
    let hidden = html! {
        input type="hidden" name="csrf" value=(op.csrf);
        input type="hidden" name="back" value=(back);
    };
    html! {
        @if has_principal && !lead.mine {
            form.inline method="post" action=(to("claim")) {
                (hidden)
                button.claim type="submit" aria-label={ "claim " (name) } { "claim" }
            }
            " "
        }
        @if has_principal {
            form.inline method="post" action=(to("call")) {
                input type="hidden" name="csrf" value=(op.csrf);
                input type="hidden" name="back" value="detail";
                button.call type="submit" aria-label={ "call now: " (name) } { "call now" }
            }
            " "
        }
        @if lead.taken_over {
            form.inline method="post" action=(to("hand-back")) {
                (hidden)
                button.hand-back type="submit" aria-label={ "hand back: " (name) } { "hand back" }
            }
            " "
        }
        form.inline method="post" action=(to("snooze")) {
            (hidden)
            select name="for" aria-label={ "Snooze " (name) " for" } {
                @for c in SnoozeFor::ALL { option value=(c.as_str()) { (c.label()) } }
            }
            " " input type="text" name="reason" maxlength="2000" placeholder="why (optional)" aria-label={ "Why snooze " (name) " (optional)" };
            " " button.snooze type="submit" { "snooze" }
        }
        " "
        form.inline method="post" action=(to("text")) {
            (hidden)
            // One per rendered form: a second submit of the same form sends nothing more.
            input type="hidden" name="nonce" value=(uuid::Uuid::new_v4());
            input type="text" name="body" required maxlength=(MAX_TEXT_CHARS) placeholder="text to the lead" aria-label={ "Text to " (name) };
            " " button.text type="submit" { "send text" }
        }
        " "
        // A lead's page also answers by email (the thread shows the lead's emails there).
        @if from == Origin::Detail {
            form.inline method="post" action=(to("email")) {
                (hidden)
                input type="hidden" name="nonce" value=(uuid::Uuid::new_v4());
                input type="text" name="subject" required maxlength=(MAX_SUBJECT_CHARS) placeholder="email subject" aria-label={ "Subject of an email to " (name) };
                " " input type="text" name="body" required maxlength=(MAX_BODY_CHARS) placeholder="email to the lead" aria-label={ "Email to " (name) };
                " " button.email type="submit" { "send email" }
            }
            " "
        }
        form.inline method="post" action=(to("outcome")) {
            (hidden)
            select name="stage" aria-label={ "Outcome for " (name) } {
                @for s in OUTCOMES { option value=(s) { (s) } }
            }
            " " input type="text" name="reason" required maxlength="2000" placeholder="reason (required)" aria-label={ "Reason for the outcome of " (name) };
            " " button type="submit" { "set outcome" }
        }
    }
}

fn rows_markup(op: &Operator, items: &[QueueItem]) -> Markup {
    let can_operate = allows(op.identity.role, Action::Operate);
    html! {
        @if items.is_empty() { tr { td colspan="6" { "Nothing waits for you." } } }
        @for item in items {
            @let o = &item.row.view;
            tr data-id=(o.id) {
                td { a href={ "/console/opportunities/" (o.id) } { (o.contact.name) } br; span.why { (o.contact.phone.as_deref().or(o.contact.email.as_deref()).unwrap_or_default()) } }
                td {
                    span.badge.overdue { (item.breach.as_str()) } br;
                    span.why data-due=(item.since.to_rfc3339()) { (item.since.format("%H:%M:%S UTC")) }
                }
                td { (o.assignee) @if item.mine { " (me)" } }
                td { (o.stage.as_str()) " " (state_badge(o)) }
                td { (sla_cell(&item.row)) }
                td { @if can_operate {
                    @let lead = Lead { id: o.id, name: &o.contact.name, mine: item.mine, taken_over: o.takeover.is_some() };
                    (work_forms(op, &lead, Origin::Queue))
                } }
            }
        }
    }
}

async fn load(state: &AppState, op: &Operator) -> Result<Vec<QueueItem>, Response> {
    board::queue(&state.engine, &op.identity)
        .await
        .map_err(|e| api_error_page(e.into()))
}

pub async fn queue(State(state): State<AppState>, op: Operator) -> Response {
    let items = match load(&state, &op).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    let whose = match (&op.identity.principal, &op.identity.team) {
        (Some(me), Some(team)) => format!("Assigned to {me} or to team {}", team.name),
        (Some(me), None) => format!("Assigned to {me}"),
        (None, Some(team)) => format!("Bound to team {}", team.name),
        (None, None) => "Every team's".to_owned(),
    };
    let body = html! {
        h1 { "My queue" }
        p.why { (whose) ": escalated leads and leads owed a callback, oldest breach first. A snoozed lead comes back when its time is up." }
        div.scroll tabindex="0" role="region" aria-label="My queue" { table {
            thead { tr { th { "Lead" } th { "Why, since" } th { "Assignee" } th { "Stage" } th { "Next SLA" } th { "Actions" } } }
            tbody #queue data-live hx-get="/console/queue/rows" hx-trigger="refresh" hx-swap="innerHTML" { (rows_markup(&op, &items)) }
        } }
    };
    render(StatusCode::OK, page(Some(&op), "My queue", body))
}

pub async fn rows(State(state): State<AppState>, op: Operator) -> Response {
    match load(&state, &op).await {
        Ok(items) => render(StatusCode::OK, rows_markup(&op, &items)),
        Err(r) => r,
    }
}
