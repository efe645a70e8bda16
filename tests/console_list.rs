#![allow(clippy::unwrap_used)]
//! The console's list, dashboard and page layout (issue #14): the list paged, searched and
//! sorted with its `escalated` badge; the dashboard's counts within the caller's scope; pages
//! fit for a phone and for dark mode with every control labelled. Each through a real server and
//! real HTTP, checked on the rendered page and on the API's state. Runs on PostgreSQL and
//! SQLite. (The real-browser test, with axe-core, is `tests/browser/console.mjs`.)

#[path = "common/access.rs"]
mod access;
mod common;
#[path = "common/console.rs"]
mod console;

use access::{key, team};
use common::{Backend, TestApp};
use console::{get_page, lead, rep_profile, row_ids, sign_in};
use reqwest::StatusCode;
use serde_json::json;

async fn the_list_pages_searches_sorts_and_badges_escalations(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let oldest = lead(&t, "ext-oldest", "Olga Oldest", "+14155550150", None, 300).await;
    let mut ids = vec![oldest.clone()];
    for i in 0..50 {
        let phone = format!("+1415555{:04}", 1000 + i);
        ids.push(
            lead(
                &t,
                &format!("ext-{i}"),
                &format!("Lead {i}"),
                &phone,
                None,
                300,
            )
            .await,
        );
    }
    // The soonest SLA of all: sorting by SLA puts it first.
    let urgent = lead(&t, "ext-urgent", "Uma Urgent", "+14155550177", None, 120).await;
    let (cookie, _) = sign_in(&t, &t.key).await;

    let (status, first) = get_page(&t, &cookie, "/console").await;
    assert_eq!(status, StatusCode::OK);
    let listed = row_ids(&first);
    assert_eq!(listed.len(), 50, "a page holds 50");
    assert_eq!(listed[0], urgent, "newest first");
    assert!(!listed.contains(&oldest), "the oldest is on page 2");
    assert!(
        first.contains("rel=\"next\" href=\"/console?page=2\""),
        "a link to page 2"
    );
    let (_, second) = get_page(&t, &cookie, "/console?page=2").await;
    let mut rest = row_ids(&second);
    rest.sort();
    let mut want = vec![oldest.clone(), ids[1].clone()];
    want.sort();
    assert_eq!(rest, want, "the two oldest");
    assert!(second.contains("rel=\"prev\"") && !second.contains("rel=\"next\""));

    // Search: by name (any case), by phone digits however typed, by external id.
    let (_, found) = get_page(&t, &cookie, "/console?q=olga").await;
    assert_eq!(row_ids(&found), vec![oldest.clone()]);
    let (_, found) = get_page(&t, &cookie, "/console?q=%28415%29%20555-0177").await;
    assert_eq!(row_ids(&found), vec![urgent.clone()]);
    let (_, found) = get_page(&t, &cookie, "/console?q=EXT-OLDEST").await;
    assert_eq!(row_ids(&found), vec![oldest.clone()]);
    // A typed wildcard is a literal: nobody's name holds a `%`.
    let (_, found) = get_page(&t, &cookie, "/console?q=%25").await;
    assert!(row_ids(&found).is_empty() && found.contains("No opportunities match."));

    let (_, by_sla) = get_page(&t, &cookie, "/console?sort=sla").await;
    assert_eq!(row_ids(&by_sla)[0], urgent, "the soonest SLA first");
    let (_, rows) = get_page(&t, &cookie, "/console/rows?sort=sla&q=uma").await;
    assert_eq!(
        row_ids(&rows),
        vec![urgent.clone()],
        "the live refresh keeps the query"
    );

    let (status, body) = t
        .post(
            &format!("/v1/opportunities/{urgent}/escalate"),
            json!({"reason": "vip"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, found) = get_page(&t, &cookie, "/console?q=uma").await;
    assert!(found.contains("badge escalated"), "{found}");
    assert!(
        !found.contains("badge live"),
        "an escalated lead no longer says live"
    );

    // The filters still apply, with the search: paused, and by stage.
    let (status, _) = t
        .post(&format!("/v1/opportunities/{oldest}/pause"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, found) = get_page(&t, &cookie, "/console?paused=true").await;
    assert_eq!(row_ids(&found), vec![oldest.clone()]);
    let (_, found) = get_page(&t, &cookie, "/console?paused=false&q=olga").await;
    assert!(row_ids(&found).is_empty());
    let (_, found) = get_page(&t, &cookie, "/console?stage=won").await;
    assert!(row_ids(&found).is_empty());

    for bad in [
        "/console?sort=up",
        "/console?page=0",
        "/console?stage=gone",
        "/console?q=a%00b",
    ] {
        let (status, page) = get_page(&t, &cookie, bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        let field = bad.split(['?', '=']).nth(1).unwrap();
        assert!(page.contains(field), "{bad} names {field}: {page}");
    }
    t.stop().await;
}

async fn the_dashboard_counts_within_the_callers_scope(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    team(&t, "west").await;
    let a = lead(&t, "d-1", "Dee One", "+14155550171", Some("west"), 3600).await;
    lead(&t, "d-2", "Dee Two", "+14155550172", None, 3600).await;
    lead(&t, "d-3", "Dee Three", "+14155550173", None, 120).await;
    let (status, _) = t
        .post(&format!("/v1/opportunities/{a}/escalate"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    rep_profile(
        &t,
        "ana",
        "operator",
        Some("west"),
        "+14155550201",
        "available",
    )
    .await;
    rep_profile(&t, "bo", "operator", None, "+14155550202", "away").await;

    let tile = |page: &str, id: &str| {
        let at = page
            .find(&format!("id=\"{id}\""))
            .unwrap_or_else(|| panic!("{id}: {page}"));
        let rest = &page[at..];
        let b = rest.find("<b>").unwrap() + 3;
        rest[b..b + rest[b..].find("</b>").unwrap()].to_owned()
    };
    let (cookie, _) = sign_in(&t, &t.key).await;
    let (status, page) = get_page(&t, &cookie, "/console/dashboard").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(tile(&page, "leads-today"), "3");
    assert_eq!(tile(&page, "breached"), "1");
    assert_eq!(tile(&page, "reps-available"), "1 of 2");
    assert_eq!(
        tile(&page, "at-risk"),
        "1",
        "one SLA falls due within 5 minutes"
    );
    for id in ["speed-p50", "speed-p90", "live-calls"] {
        tile(&page, id);
    }
    assert!(page.contains("<svg") && page.contains("role=\"img\""));
    assert_eq!(page.matches("<rect").count(), 24, "one bar per hour");
    assert!(page.contains("3 in all"), "the chart's summary");

    // A team-limited key counts its team's only.
    let west = key(&t, "viewer", Some("west"), None).await;
    let (cookie, _) = sign_in(&t, &west).await;
    let (status, panel) = get_page(&t, &cookie, "/console/dashboard/panel").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(tile(&panel, "leads-today"), "1");
    assert_eq!(tile(&panel, "breached"), "1");
    assert_eq!(tile(&panel, "reps-available"), "1 of 1");
    t.stop().await;
}

/// Every page fits a phone (viewport, tables scrolling in their own box), follows dark mode,
/// and labels every control.
async fn pages_fit_a_phone_and_dark_mode_and_label_their_controls(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let id = t.create("lead-1", 300).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (cookie, _) = sign_in(&t, &t.key).await;
    for path in [
        "/console",
        "/console/queue",
        "/console/dashboard",
        &format!("/console/opportunities/{id}"),
    ] {
        let (status, page) = get_page(&t, &cookie, path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(
            page.contains("name=\"viewport\" content=\"width=device-width, initial-scale=1\""),
            "{path}"
        );
        assert!(page.contains("prefers-color-scheme:dark"), "{path}");
        if page.contains("<table") {
            assert!(
                page.contains("class=\"scroll\""),
                "{path}: a table scrolls in its box"
            );
        }
    }
    let (_, detail) = get_page(&t, &cookie, &format!("/console/opportunities/{id}")).await;
    assert!(
        detail.contains("<label for=\"reassign-to\">"),
        "the reassign control is labelled"
    );
    assert!(detail.contains("aria-label=\"Reason to reassign\""));
    t.stop().await;
}

both_backends!(
    the_list_pages_searches_sorts_and_badges_escalations,
    the_dashboard_counts_within_the_callers_scope,
    pages_fit_a_phone_and_dark_mode_and_label_their_controls,
);
