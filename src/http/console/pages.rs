//! The console's pages. Everything shown comes from the same handlers as the API (so the same
//! tenant and team scoping applies); buttons appear only for roles that may use them, and the
//! server refuses them anyway for the others.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use serde_json::Value;

use super::super::error::ApiError;
use super::super::AppState;
use super::queue::{work_forms, Lead, Origin};
use super::{html as render, Operator};
use crate::control::reps::{Rep, RepStatus};
use crate::control::{allows, Action};
use crate::usecases::{opportunities, snooze};

/// The console's one style sheet: light by default, dark when the system asks
/// (`prefers-color-scheme`); on a narrow screen the header wraps and a table scrolls inside its
/// own box (`.scroll`) so the page never scrolls sideways.
const STYLE: &str = ":root{--fg:#1d2330;--bg:#fff;--line:#e3e6ee;--muted:#4a5060;--bar:#1d2330;--link:#1a4fb5;--err:#a40000;--chart:#3b6fd8}
@media (prefers-color-scheme:dark){:root{--fg:#e8eaf0;--bg:#14171f;--line:#333a4a;--muted:#b5bccb;--bar:#0b0d12;--link:#8fb4ff;--err:#ff8a8a;--chart:#7aa2ff}}
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:var(--fg);background:var(--bg)}a{color:var(--link)}
header{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:center;padding:.6rem 1rem;background:var(--bar);color:#fff}
header a{color:#fff}header .end{margin-left:auto;display:flex;flex-wrap:wrap;gap:.5rem;align-items:center}nav{display:flex;gap:.8rem;flex-wrap:wrap}
main{padding:1rem;max-width:100%;box-sizing:border-box}.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid var(--line)}
.badge{display:inline-block;padding:0 .45rem;border-radius:.6rem;font-size:12px;font-weight:600}
.paused,.away,.offline{background:#ffe1a8;color:#5c3700}.live,.available{background:#d7f5dd;color:#14532d}
.escalated,.overdue{background:#ffd6d6;color:#7a0000}.oncall,.busy{background:#dbe6ff;color:#102a6b}.err{color:var(--err)}
.why{color:var(--muted);font-size:12px}section{margin-bottom:1.5rem}form.inline{display:inline}
button{cursor:pointer}.filters{display:flex;flex-wrap:wrap;gap:.5rem;margin-bottom:.8rem;align-items:end}
.tiles{display:grid;grid-template-columns:repeat(auto-fill,minmax(9rem,1fr));gap:.6rem}.tile{border:1px solid var(--line);border-radius:.4rem;padding:.5rem}
.tile b{display:block;font-size:22px}.chart{width:100%;max-width:48rem;height:auto}.chart rect{fill:var(--chart)}.chart text{fill:var(--fg);font-size:10px}
.chart line{stroke:var(--line)}.pages{display:flex;gap:1rem;margin-top:.6rem}input,select,textarea{max-width:100%}";

/// Live updates: the server says when something changed; htmx refetches the live parts.
/// Countdowns tick in the browser from their due time, and show how long ago once past.
const SCRIPT: &str = "const feed = new EventSource('/console/events');
feed.addEventListener('changed', () => document.querySelectorAll('[data-live]').forEach(el => htmx.trigger(el, 'refresh')));
function span(s) { return Math.floor(s / 60) + 'm ' + (s % 60) + 's'; }
function tick() { document.querySelectorAll('[data-due]').forEach(el => {
  const s = Math.round((Date.parse(el.dataset.due) - Date.now()) / 1000);
  el.textContent = s > 0 ? span(s) : 'overdue ' + span(-s); }); }
setInterval(tick, 1000); document.addEventListener('htmx:afterSettle', tick); tick();";

pub(super) fn page(op: Option<&Operator>, title: &str, body: Markup) -> Markup {
    page_with(op, title, html! {}, body)
}

/// A rep's own status and whether it is on a call; refreshed live in the header.
pub(super) fn rep_badge(rep: &Rep) -> Markup {
    let status = rep.effective_status.as_str();
    html! {
        span.badge.(status) { (status) }
        @if rep.live_calls > 0 { " " span.badge.oncall #on-call { "on a call" } }
    }
}

/// The header's part for a signed-in principal that is a rep: its status switch and badges.
fn rep_controls(op: &Operator, rep: &Rep) -> Markup {
    html! {
        form.inline method="post" action="/console/status" hx-post="/console/status" hx-target="#me" hx-swap="innerHTML" {
            input type="hidden" name="csrf" value=(op.csrf);
            label for="my-status" { "My status " }
            select #my-status name="status" {
                @for s in [RepStatus::Available, RepStatus::Away, RepStatus::Offline] {
                    option value=(s.as_str()) selected[rep.status == s] { (s.as_str()) }
                }
            }
            " " button #set-status type="submit" { "Set" }
        }
        span #me data-live hx-get="/console/me" hx-trigger="refresh, every 5s" hx-swap="innerHTML" { (rep_badge(rep)) }
    }
}

/// `page` with more in its head (the signed-in page's refresh).
fn page_with(op: Option<&Operator>, title: &str, head_extra: Markup, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                (head_extra)
                title { (title) " · NeuronX console" }
                style { (PreEscaped(STYLE)) }
                script src="/console/assets/htmx.min.js" {}
            }
            body {
                header {
                    strong { a href="/console" { "NeuronX console" } }
                    @if let Some(op) = op {
                        nav aria-label="Console" {
                            a href="/console" { "Opportunities" }
                            a href="/console/queue" { "My queue" }
                            a href="/console/dashboard" { "Dashboard" }
                        }
                        div.end {
                            @if let Some(rep) = &op.rep { (rep_controls(op, rep)) }
                            span { (op.identity.actor_name()) " · " (op.identity.role)
                                @if let Some(t) = &op.identity.team { " · team " (t.name) } }
                            form.inline method="post" action="/console/logout" {
                                input type="hidden" name="csrf" value=(op.csrf);
                                button { "Sign out" }
                            }
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

/// A refused form: its reason, and the way back to where it was sent from.
pub fn error_page_back(status: StatusCode, message: &str, back: Option<&str>) -> Response {
    let body = html! {
        p.err role="alert" { (status.as_u16()) ": " (message) }
        @if let Some(to) = back { p { a href=(to) { "← back" } } }
    };
    render(status, page(None, "Refused", body))
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

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
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
    let uuid = uuid::Uuid::parse_str(text(&o, "id")).ok();
    let snoozed = match uuid {
        Some(u) => snooze::current(&state.engine, op.identity.tenant, u).await?,
        None => None,
    };
    Ok(html! {
        section {
            p {
                "Stage " strong { (text(&o, "stage")) } " · assignee " strong { (text(&o, "assignee")) }
                @if !text(&o, "team").is_empty() { " · team " strong { (text(&o, "team")) } }
                " · " @if o["paused"] == true { span.badge.paused { "paused" } } @else { span.badge.live { "live" } }
                @if o["escalated"] == true { " · " span.badge.escalated { "escalated" } }
                @if !o["live_call"].is_null() { " · " span.badge.oncall { "on a call" } }
            }
            @if !o["takeover"].is_null() {
                p #takeover {
                    span.badge.oncall.takeover { "taken over" } " by " strong { (text(&o["takeover"], "by")) }
                    " since " (text(&o["takeover"], "since")) ": the playbook's automatic texts are stopped until someone hands the conversation back."
                }
            }
            @if let Some(z) = &snoozed {
                p #snoozed {
                    span.badge.away.snoozed { "snoozed" } " out of the queue until " strong { (z.until.format("%Y-%m-%d %H:%M UTC")) }
                    " by " (z.by) @if let Some(r) = &z.reason { " (" (r) ")" } ". "
                    @if can_operate {
                        form.inline method="post" action=(action("unsnooze")) {
                            input type="hidden" name="csrf" value=(op.csrf);
                            input type="hidden" name="back" value="detail";
                            button #btn-unsnooze type="submit" { "un-snooze" }
                        }
                    }
                }
            }
            @if can_operate {
                div.actions {
                    @for name in [if o["paused"] == true { "resume" } else { "pause" }, "escalate"] {
                        form.inline method="post" action=(action(name)) {
                            input type="hidden" name="csrf" value=(op.csrf);
                            input type="hidden" name="back" value="detail";
                            input type="text" name="reason" placeholder="reason (optional)" aria-label={ "Reason to " (name) " (optional)" };
                            button #{ "btn-" (name) } { (name) }
                        }
                        " "
                    }
                    form.inline method="post" action=(action("reassign")) {
                        input type="hidden" name="csrf" value=(op.csrf);
                        input type="hidden" name="back" value="detail";
                        label for="reassign-to" { "Reassign to " }
                        select #reassign-to name="assignee" { @for p in members.iter().filter(|p| p.active) { option value=(p.name) { (p.name) " (" (p.role) ")" } } }
                        " " input type="text" name="reason" placeholder="reason (required)" aria-label="Reason to reassign" required;
                        button { "reassign" }
                    }
                    @if let Some(uuid) = uuid {
                        @let lead = Lead {
                            id: uuid,
                            name: text(&o["contact"], "name"),
                            mine: op.identity.principal.as_deref() == Some(text(&o, "assignee")),
                            taken_over: !o["takeover"].is_null(),
                        };
                        div.actions { (work_forms(op, &lead, Origin::Detail)) }
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
            ul { @for m in &messages { li {
                (text(m, "at")) " · " (text(m, "kind")) " · " (text(m, "reason"))
                // What the lead or we wrote (an email's subject first), not only that we did.
                @if let Some(subject) = m["data"]["subject"].as_str() { " · " em { (subject) } }
                @if let Some(body) = m["data"]["body"].as_str().filter(|b| !b.is_empty()) {
                    " · \u{201c}" (body.chars().take(200).collect::<String>()) "\u{201d}"
                }
            } } }
        }
        section {
            h2 { "Timeline" }
            div.scroll tabindex="0" role="region" aria-label="Timeline" { table {
                thead { tr { th { "At" } th { "What" } th { "By" } th { "Why" } } }
                tbody { @for e in &entries { tr {
                    td { (text(e, "at")) }
                    td { strong { (text(e, "kind")) } br; (text(e, "reason")) }
                    td { (text(e, "by")) }
                    td.why { @if let Some(rule) = e["why"]["rule"].as_str() { (rule) br; code { (e["why"]["inputs"]) } } }
                } } }
            } }
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
