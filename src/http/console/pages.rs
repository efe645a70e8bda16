//! The console's pages. Everything shown comes from the same handlers as the API (so the same
//! tenant and team scoping applies); buttons appear only for roles that may use them, and the
//! server refuses them anyway for the others.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use serde::Deserialize;
use serde_json::Value;

use super::super::error::ApiError;
use super::super::AppState;
use super::{html as render, Operator};
use crate::control::{allows, Action};
use crate::usecases::opportunities::{self, ListFilter};

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1d2330}
header{display:flex;gap:1rem;align-items:center;padding:.6rem 1rem;background:#1d2330;color:#fff}
header a{color:#fff}header form{margin-left:auto}main{padding:1rem}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #e3e6ee}
.badge{display:inline-block;padding:0 .45rem;border-radius:.6rem;font-size:12px;font-weight:600}
.paused{background:#ffe1a8;color:#7a4a00}.live{background:#d7f5dd;color:#14532d}.err{color:#a40000}
.why{color:#555;font-size:12px}section{margin-bottom:1.5rem}form.inline{display:inline}
button{cursor:pointer}.filters{display:flex;gap:.5rem;margin-bottom:.8rem;align-items:end}";

/// Live updates: the server says when something changed; htmx refetches the live parts.
/// Countdowns tick in the browser from their due time.
const SCRIPT: &str = "const feed = new EventSource('/console/events');
feed.addEventListener('changed', () => document.querySelectorAll('[data-live]').forEach(el => htmx.trigger(el, 'refresh')));
function tick() { document.querySelectorAll('[data-due]').forEach(el => {
  const s = Math.round((Date.parse(el.dataset.due) - Date.now()) / 1000);
  el.textContent = s > 0 ? Math.floor(s / 60) + 'm ' + (s % 60) + 's' : 'due'; }); }
setInterval(tick, 1000); document.addEventListener('htmx:afterSettle', tick); tick();";

fn page(op: Option<&Operator>, title: &str, body: Markup) -> Markup {
    page_with(op, title, html! {}, body)
}

/// `page` with more in its head (the signed-in page's refresh).
fn page_with(op: Option<&Operator>, title: &str, head_extra: Markup, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                (head_extra)
                title { (title) " · NeuronX console" }
                style { (PreEscaped(STYLE)) }
                script src="/console/assets/htmx.min.js" {}
            }
            body {
                header {
                    strong { a href="/console" { "NeuronX console" } }
                    @if let Some(op) = op {
                        span { (op.identity.actor_name()) " · " (op.identity.role)
                            @if let Some(t) = &op.identity.team { " · team " (t.name) } }
                        form method="post" action="/console/logout" {
                            input type="hidden" name="csrf" value=(op.csrf);
                            button { "Sign out" }
                        }
                    }
                }
                main { (body) }
                @if op.is_some() { script { (PreEscaped(SCRIPT)) } }
            }
        }
    }
}

pub fn error_page(status: StatusCode, message: &str) -> Response {
    render(
        status,
        page(
            None,
            "Error",
            html! { p.err { (status.as_u16()) ": " (message) } },
        ),
    )
}

/// An API refusal shown in the console with its own status (403 for a role that may not).
pub fn api_error_page(e: ApiError) -> Response {
    let message = e.to_string();
    let status = e.into_response().status();
    error_page(status, &message)
}

pub fn login_page(message: Option<&str>, status: StatusCode) -> Response {
    login_page_with(None, message, status)
}

/// The sign-in page: by email (a magic link, ADR 0042) or with an API key. `notice` says what
/// happened; `error` what was wrong.
pub fn login_page_with(notice: Option<&str>, error: Option<&str>, status: StatusCode) -> Response {
    render(
        status,
        page(
            None,
            "Sign in",
            html! {
                h1 { "Sign in" }
                @if let Some(m) = notice { p #notice { (m) } }
                @if let Some(m) = error { p.err { (m) } }
                section {
                    h2 { "By email" }
                    form method="post" action="/console/magic-link" {
                        label { "Workspace " input type="text" name="tenant" autocomplete="organization" size="30" maxlength="100" required; }
                        " "
                        label { "Email " input type="email" name="email" autocomplete="email" size="40" maxlength="254" required; }
                        " " button type="submit" { "Email me a sign-in link" }
                    }
                }
                section {
                    h2 { "With an API key" }
                    form method="post" action="/console/login" {
                        label { "API key " input type="password" name="api_key" autocomplete="off" size="60" required; }
                        " " button type="submit" { "Sign in" }
                    }
                }
            },
        ),
    )
}

/// The page a followed sign-in link answers: it moves on to the console by itself.
pub fn signed_in_page(who: &str) -> Response {
    let head = html! { meta http-equiv="refresh" content="0; url=/console"; };
    let body = html! {
        h1 { "Signed in" }
        p { "Signed in as " strong { (who) } ". " a href="/console" { "Continue to the console" } }
    };
    render(StatusCode::OK, page_with(None, "Signed in", head, body))
}

pub async fn login_form() -> Response {
    login_page(None, StatusCode::OK)
}

#[derive(Deserialize, Default)]
pub struct Filters {
    stage: Option<String>,
    team: Option<String>,
    paused: Option<String>,
}

impl Filters {
    fn query(&self) -> String {
        let pairs = [
            ("stage", &self.stage),
            ("team", &self.team),
            ("paused", &self.paused),
        ];
        serde_urlencoded::to_string(
            pairs
                .iter()
                .filter_map(|(k, v)| v.as_deref().filter(|v| !v.is_empty()).map(|v| (*k, v)))
                .collect::<Vec<_>>(),
        )
        .unwrap_or_default()
    }
}

fn nonempty(v: &Option<String>) -> Option<String> {
    v.clone().filter(|v| !v.is_empty())
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// The table rows: one per opportunity, with its next SLA countdown and last event.
async fn row_markup(state: &AppState, op: &Operator, f: &Filters) -> Result<Markup, ApiError> {
    let filter = ListFilter {
        stage: nonempty(&f.stage),
        paused: nonempty(&f.paused),
        team: nonempty(&f.team),
        limit: Some("200".into()),
        cursor: None,
    };
    let rows = opportunities::board(&state.engine, &op.identity, filter).await?;
    let can_operate = allows(op.identity.role, Action::Operate);
    Ok(html! {
        @if rows.is_empty() { tr { td colspan="8" { "No opportunities match." } } }
        @for row in &rows {
            @let o = &row.view;
            tr data-id=(o.id) {
                td { a href={ "/console/opportunities/" (o.id) } { (o.contact.name) } }
                td { (o.stage.as_str()) }
                td { (o.assignee) }
                td { (o.team.as_deref().unwrap_or("")) }
                td { @if let Some(sla) = &row.next_sla { span title=(sla.name) data-due=(sla.due_at.to_rfc3339()) { "…" } } @else { "—" } }
                td.state { @if o.paused { span.badge.paused { "paused" } } @else { span.badge.live { "live" } } }
                td { @if let Some((kind, reason)) = &row.last_event { span title=(reason) { (kind) } } }
                td {
                    @if can_operate {
                        @let action = if o.paused { "resume" } else { "pause" };
                        button hx-post={ "/console/opportunities/" (o.id) "/" (action) }
                            hx-vals=(serde_json::json!({"csrf": op.csrf}).to_string()) hx-swap="none" { (action) }
                    }
                }
            }
        }
    })
}

pub async fn list(
    State(state): State<AppState>,
    op: Operator,
    Query(f): Query<Filters>,
) -> Response {
    let teams = match crate::usecases::access::list_teams(&state.engine, &op.identity).await {
        Ok(t) => t,
        Err(e) => return api_error_page(e.into()),
    };
    let rows = match row_markup(&state, &op, &f).await {
        Ok(r) => r,
        Err(e) => return api_error_page(e),
    };
    let stages = [
        "new",
        "contacting",
        "engaged",
        "qualified",
        "won",
        "lost",
        "unreachable",
        "do_not_contact",
    ];
    let chosen = |v: &Option<String>, x: &str| v.as_deref() == Some(x);
    let body = html! {
        h1 { "Opportunities" }
        form.filters method="get" action="/console" {
            label { "Stage " select name="stage" { option value="" { "any" }
                @for s in stages { option value=(s) selected[chosen(&f.stage, s)] { (s) } } } }
            label { "Team " select name="team" { option value="" { "any" }
                @for t in &teams { option value=(t.name) selected[chosen(&f.team, &t.name)] { (t.name) } } } }
            label { "Paused " select name="paused" { option value="" { "any" }
                option value="true" selected[chosen(&f.paused, "true")] { "paused" }
                option value="false" selected[chosen(&f.paused, "false")] { "running" } } }
            button { "Filter" }
        }
        table {
            thead { tr { th { "Lead" } th { "Stage" } th { "Assignee" } th { "Team" } th { "Next SLA" } th { "State" } th { "Last event" } th {} } }
            tbody #rows data-live hx-get={ "/console/rows?" (f.query()) } hx-trigger="refresh" hx-swap="innerHTML" { (rows) }
        }
    };
    render(StatusCode::OK, page(Some(&op), "Opportunities", body))
}

pub async fn rows(
    State(state): State<AppState>,
    op: Operator,
    Query(f): Query<Filters>,
) -> Response {
    match row_markup(&state, &op, &f).await {
        Ok(rows) => render(StatusCode::OK, rows),
        Err(e) => api_error_page(e),
    }
}

/// The live part of the detail page: state, buttons, timers, timeline, calls and messages.
async fn panel_markup(state: &AppState, op: &Operator, id: &str) -> Result<Markup, ApiError> {
    let o = opportunities::get(&state.engine, &op.identity, id).await?;
    let o = serde_json::to_value(&o).map_err(|e| ApiError::Internal(e.into()))?;
    let tl = opportunities::timeline(&state.engine, &op.identity, id, Some("1000"), None).await?;
    let entries: Vec<Value> = tl
        .items
        .iter()
        .filter_map(|e| serde_json::to_value(e).ok())
        .collect();
    let mut calls = Vec::new();
    for e in entries.iter().filter(|e| e["kind"] == "call_placed") {
        if let Some(call) = e["data"]["call_id"].as_str() {
            if let Ok(c) = crate::usecases::ops::get_call(&state.engine, &op.identity, call).await {
                calls.push(c);
            }
        }
    }
    let messages: Vec<&Value> = entries
        .iter()
        .filter(|e| {
            matches!(
                e["kind"].as_str(),
                Some("effect_sent" | "replied" | "message_status")
            )
        })
        .collect();
    let team = Some(text(&o, "team")).filter(|t| !t.is_empty());
    let members =
        crate::usecases::access::list_principals(&state.engine, &op.identity, team).await?;
    let can_operate = allows(op.identity.role, Action::Operate);
    let action = |name: &str| format!("/console/opportunities/{id}/{name}");
    Ok(html! {
        section {
            p {
                "Stage " strong { (text(&o, "stage")) } " · assignee " strong { (text(&o, "assignee")) }
                @if !text(&o, "team").is_empty() { " · team " strong { (text(&o, "team")) } }
                " · " @if o["paused"] == true { span.badge.paused { "paused" } } @else { span.badge.live { "live" } }
                @if o["escalated"] == true { " · escalated" }
            }
            @if can_operate {
                div.actions {
                    @for name in [if o["paused"] == true { "resume" } else { "pause" }, "escalate"] {
                        form.inline method="post" action=(action(name)) {
                            input type="hidden" name="csrf" value=(op.csrf);
                            input type="hidden" name="back" value="detail";
                            input type="text" name="reason" placeholder="reason (optional)";
                            button #{ "btn-" (name) } { (name) }
                        }
                        " "
                    }
                    form.inline method="post" action=(action("reassign")) {
                        input type="hidden" name="csrf" value=(op.csrf);
                        input type="hidden" name="back" value="detail";
                        select name="assignee" { @for p in members.iter().filter(|p| p.active) { option value=(p.name) { (p.name) " (" (p.role) ")" } } }
                        input type="text" name="reason" placeholder="reason (required)" required;
                        button { "reassign" }
                    }
                }
            }
        }
        section {
            h2 { "Timers" }
            @let timers = o["timers"].as_array().cloned().unwrap_or_default();
            @if timers.is_empty() { p { "None armed." } }
            ul { @for t in &timers { li { (text(t, "name")) " in " span data-due=(text(t, "due_at")) { "…" } } } }
        }
        section {
            h2 { "Calls" }
            @if calls.is_empty() { p { "No calls." } }
            ul { @for c in &calls { li { (c.to) " · attempt " (c.attempt) " · " strong { (c.status.as_str()) } } } }
        }
        section {
            h2 { "Messages" }
            @if messages.is_empty() { p { "No messages." } }
            ul { @for m in &messages { li { (text(m, "at")) " · " (text(m, "kind")) " · " (text(m, "reason")) } } }
        }
        section {
            h2 { "Timeline" }
            table {
                thead { tr { th { "At" } th { "What" } th { "By" } th { "Why" } } }
                tbody { @for e in &entries { tr {
                    td { (text(e, "at")) }
                    td { strong { (text(e, "kind")) } br; (text(e, "reason")) }
                    td { (text(e, "by")) }
                    td.why { @if let Some(rule) = e["why"]["rule"].as_str() { (rule) br; code { (e["why"]["inputs"]) } } }
                } } }
            }
        }
    })
}

pub async fn detail(
    State(state): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
) -> Response {
    let panel = match panel_markup(&state, &op, &id).await {
        Ok(p) => p,
        Err(e) => return api_error_page(e),
    };
    let body = html! {
        p { a href="/console" { "← all opportunities" } }
        h1 { "Opportunity " code { (id) } }
        div #panel data-live hx-get={ "/console/opportunities/" (id) "/panel" } hx-trigger="refresh" hx-swap="innerHTML" { (panel) }
    };
    render(StatusCode::OK, page(Some(&op), "Opportunity", body))
}

pub async fn panel(
    State(state): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
) -> Response {
    match panel_markup(&state, &op, &id).await {
        Ok(p) => render(StatusCode::OK, p),
        Err(e) => api_error_page(e),
    }
}
