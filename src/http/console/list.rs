//! The console's list of opportunities: filtered, searched (name, phone, external id), sorted
//! (newest, or soonest SLA deadline) and paged, each row with its live-ticking SLA countdown
//! and its state (`escalated`, `paused` or `live`). The query is `usecases::board`'s.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};
use serde::Deserialize;

use super::super::error::ApiError;
use super::super::AppState;
use super::pages::{api_error_page, page};
use super::{html as render, Operator};
use crate::control::{allows, Action};
use crate::usecases::board::{self, BoardPage, BoardQuery, Sort};
use crate::usecases::opportunities::BoardRow;

#[derive(Deserialize, Default, Clone)]
pub struct Filters {
    stage: Option<String>,
    team: Option<String>,
    paused: Option<String>,
    q: Option<String>,
    sort: Option<String>,
    page: Option<String>,
}

impl Filters {
    /// The query string of these filters, at page `page` (none: as given).
    fn query(&self, page: Option<i64>) -> String {
        let page = page.map(|p| p.to_string()).or_else(|| self.page.clone());
        let pairs = [
            ("stage", &self.stage),
            ("team", &self.team),
            ("paused", &self.paused),
            ("q", &self.q),
            ("sort", &self.sort),
            ("page", &page),
        ];
        serde_urlencoded::to_string(
            pairs
                .iter()
                .filter_map(|(k, v)| v.as_deref().filter(|v| !v.is_empty()).map(|v| (*k, v)))
                .collect::<Vec<_>>(),
        )
        .unwrap_or_default()
    }

    fn board(&self) -> Result<BoardQuery, ApiError> {
        Ok(BoardQuery {
            stage: self.stage.clone(),
            paused: self.paused.clone(),
            team: self.team.clone(),
            search: self.q.clone(),
            sort: Sort::parse(self.sort.as_deref())?,
            page: self.page.clone(),
        })
    }
}

/// A row's state: escalated outranks paused, which outranks live.
pub(super) fn state_badge(view: &crate::usecases::views::OpportunityView) -> Markup {
    html! {
        @if view.escalated { span.badge.escalated { "escalated" } " " }
        @if view.paused { span.badge.paused { "paused" } }
        @else if !view.escalated { span.badge.live { "live" } }
        @if view.live_call.is_some() { " " span.badge.oncall { "on a call" } }
        // A person has the conversation: the playbook's automatic texts are stopped.
        @if let Some(t) = &view.takeover { " " span.badge.oncall.takeover title="automatic texts stopped" { "taken over by " (t.by) } }
    }
}

/// The next SLA deadline, ticking in the browser.
pub(super) fn sla_cell(row: &BoardRow) -> Markup {
    html! {
        @if let Some(sla) = &row.next_sla {
            span title=(sla.name) data-due=(sla.due_at.to_rfc3339()) { (sla.due_at.format("%H:%M:%S UTC")) }
        } @else { "—" }
    }
}

fn rows_markup(op: &Operator, page: &BoardPage) -> Markup {
    let can_operate = allows(op.identity.role, Action::Operate);
    html! {
        @if page.rows.is_empty() { tr { td colspan="8" { "No opportunities match." } } }
        @for row in &page.rows {
            @let o = &row.view;
            tr data-id=(o.id) {
                td { a href={ "/console/opportunities/" (o.id) } { (o.contact.name) } br; span.why { (o.contact.phone.as_deref().or(o.contact.email.as_deref()).unwrap_or_default()) " · " (o.external_id) } }
                td { (o.stage.as_str()) }
                td { (o.assignee) }
                td { (o.team.as_deref().unwrap_or("")) }
                td { (sla_cell(row)) }
                td.state {
                    (state_badge(o))
                    @if let Some(until) = row.snoozed_until {
                        " " span.badge.away.snoozed title="out of the queue until then" { "snoozed until " (until.format("%H:%M UTC")) }
                    }
                }
                td { @if let Some((kind, reason)) = &row.last_event { span title=(reason) { (kind) } } }
                td {
                    @if can_operate {
                        @let action = if o.paused { "resume" } else { "pause" };
                        button hx-post={ "/console/opportunities/" (o.id) "/" (action) }
                            hx-vals=(serde_json::json!({"csrf": op.csrf}).to_string()) hx-swap="none"
                            aria-label={ (action) " " (o.contact.name) } { (action) }
                    }
                }
            }
        }
    }
}

async fn load(state: &AppState, op: &Operator, f: &Filters) -> Result<BoardPage, ApiError> {
    Ok(board::board(&state.engine, &op.identity, f.board()?).await?)
}

const STAGES: [&str; 10] = [
    "new",
    "contacting",
    "engaged",
    "qualified",
    "booked",
    "won",
    "lost",
    "unreachable",
    "nurture",
    "do_not_contact",
];

pub async fn list(
    State(state): State<AppState>,
    op: Operator,
    Query(f): Query<Filters>,
) -> Response {
    let teams = match crate::usecases::access::list_teams(&state.engine, &op.identity).await {
        Ok(t) => t,
        Err(e) => return api_error_page(e.into()),
    };
    let found = match load(&state, &op, &f).await {
        Ok(r) => r,
        Err(e) => return api_error_page(e),
    };
    let chosen = |v: &Option<String>, x: &str| v.as_deref() == Some(x);
    let body = html! {
        h1 { "Opportunities" }
        form.filters method="get" action="/console" role="search" {
            label { "Search " input type="search" name="q" value=[f.q.as_deref()] placeholder="name, phone or external id" maxlength="200"; }
            label { "Stage " select name="stage" { option value="" { "any" }
                @for s in STAGES { option value=(s) selected[chosen(&f.stage, s)] { (s) } } } }
            label { "Team " select name="team" { option value="" { "any" }
                @for t in &teams { option value=(t.name) selected[chosen(&f.team, &t.name)] { (t.name) } } } }
            label { "Paused " select name="paused" { option value="" { "any" }
                option value="true" selected[chosen(&f.paused, "true")] { "paused" }
                option value="false" selected[chosen(&f.paused, "false")] { "running" } } }
            label { "Sort " select name="sort" {
                option value="created" selected[!chosen(&f.sort, "sla")] { "newest first" }
                option value="sla" selected[chosen(&f.sort, "sla")] { "SLA due first" } } }
            button { "Filter" }
        }
        div.scroll tabindex="0" role="region" aria-label="Opportunities" { table {
            thead { tr { th { "Lead" } th { "Stage" } th { "Assignee" } th { "Team" } th { "Next SLA" } th { "State" } th { "Last event" } th { span.why { "Action" } } } }
            tbody #rows data-live hx-get={ "/console/rows?" (f.query(None)) } hx-trigger="refresh" hx-swap="innerHTML" { (rows_markup(&op, &found)) }
        } }
        nav.pages aria-label="Pages" {
            @if found.page > 1 { a rel="prev" href={ "/console?" (f.query(Some(found.page - 1))) } { "← previous page" } }
            span { "page " (found.page) }
            @if found.more { a rel="next" href={ "/console?" (f.query(Some(found.page + 1))) } { "next page →" } }
        }
    };
    render(StatusCode::OK, page(Some(&op), "Opportunities", body))
}

pub async fn rows(
    State(state): State<AppState>,
    op: Operator,
    Query(f): Query<Filters>,
) -> Response {
    match load(&state, &op, &f).await {
        Ok(found) => render(StatusCode::OK, rows_markup(&op, &found)),
        Err(e) => api_error_page(e),
    }
}
