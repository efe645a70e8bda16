//! `/console/dashboard`: the numbers of `usecases::dashboard` as tiles, and the leads created
//! per hour over the last 24 h as an SVG chart drawn here (no script, no chart library). The
//! chart's colours come from the style sheet, so it follows dark mode and the CSP.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use maud::{html, Markup, PreEscaped};

use super::super::AppState;
use super::pages::{api_error_page, page};
use super::{html as render, Operator};
use crate::usecases::dashboard::{self, Dashboard, AT_RISK};

fn seconds(ms: Option<i64>) -> String {
    match ms {
        Some(ms) => format!("{:.1} s", ms as f64 / 1000.0),
        None => "—".into(),
    }
}

const WIDTH: u32 = 480;
const HEIGHT: u32 = 160;
const TOP: u32 = 14;
const BOTTOM: u32 = 20;

/// Bars, one per hour; every sixth hour labelled; a text summary for screen readers.
fn chart(per_hour: &[(DateTime<Utc>, u32)]) -> Markup {
    let max = per_hour.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    let total: u32 = per_hour.iter().map(|(_, n)| *n).sum();
    let slot = WIDTH / per_hour.len().max(1) as u32;
    let plot = HEIGHT - TOP - BOTTOM;
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<line x1=\"0\" y1=\"{y}\" x2=\"{WIDTH}\" y2=\"{y}\"/>",
        y = HEIGHT - BOTTOM
    );
    for (i, (hour, n)) in per_hour.iter().enumerate() {
        let h = plot * n / max;
        let x = i as u32 * slot;
        let _ = write!(
            svg,
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{h}\"><title>{} UTC: {n}</title></rect>",
            x + 1,
            HEIGHT - BOTTOM - h,
            slot.saturating_sub(2),
            hour.format("%H:00"),
        );
        if *n > 0 {
            let _ = write!(
                svg,
                "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{n}</text>",
                x + slot / 2,
                HEIGHT - BOTTOM - h - 2
            );
        }
        if i % 6 == 0 {
            let _ = write!(
                svg,
                "<text x=\"{x}\" y=\"{}\">{}</text>",
                HEIGHT - 6,
                hour.format("%H:00")
            );
        }
    }
    let label = format!(
        "Leads created per hour over the last 24 hours: {total} in all, at most {max} in one hour"
    );
    html! {
        svg.chart #chart viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } role="img" aria-label=(label) xmlns="http://www.w3.org/2000/svg" {
            (PreEscaped(svg))
        }
    }
}

fn tiles(d: &Dashboard) -> Markup {
    let tile = |id: &str, label: &str, value: String| {
        html! { div.tile id=(id) { b { (value) } (label) } }
    };
    html! {
        div.tiles {
            (tile("speed-p50", "speed to lead p50 today", seconds(d.speed_p50_ms)))
            (tile("speed-p90", "speed to lead p90 today", seconds(d.speed_p90_ms)))
            (tile("leads-today", "leads today", d.leads_today.to_string()))
            (tile("at-risk", &format!("SLA due within {} min", AT_RISK.num_minutes()), d.at_risk.to_string()))
            (tile("breached", "escalated, open", d.breached.to_string()))
            (tile("live-calls", "live calls", d.live_calls.to_string()))
            (tile("texts-waiting", "texts waiting on the send limit", d.texts_waiting.to_string()))
            (tile("reps-available", "reps available", format!("{} of {}", d.reps_available, d.reps_total)))
        }
    }
}

fn panel(d: &Dashboard) -> Markup {
    html! {
        (tiles(d))
        h2 { "Leads created, last 24 h" }
        (chart(&d.per_hour))
        p.why { "As of " (d.now.format("%Y-%m-%d %H:%M:%S UTC")) ". Today starts at midnight UTC; speed to lead runs from a lead's creation to its first call placed." }
    }
}

async fn load(state: &AppState, op: &Operator) -> Result<Dashboard, Response> {
    dashboard::dashboard(&state.engine, &op.identity)
        .await
        .map_err(|e| api_error_page(e.into()))
}

pub async fn dashboard(State(state): State<AppState>, op: Operator) -> Response {
    let d = match load(&state, &op).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let body = html! {
        h1 { "Dashboard" }
        div #dashboard data-live hx-get="/console/dashboard/panel" hx-trigger="refresh, every 15s" hx-swap="innerHTML" { (panel(&d)) }
    };
    render(StatusCode::OK, page(Some(&op), "Dashboard", body))
}

pub async fn dashboard_panel(State(state): State<AppState>, op: Operator) -> Response {
    match load(&state, &op).await {
        Ok(d) => render(StatusCode::OK, panel(&d)),
        Err(r) => r,
    }
}
