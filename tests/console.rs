#![allow(clippy::unwrap_used)]
//! The operator console over HTTP: sign-in and its cookie, pages, CSRF, roles enforced on the
//! server, the live feed, and sessions ending with their key. Runs on PostgreSQL and SQLite.
//! (The real-browser test is `tests/browser/console.mjs`, run by `scripts/browser.sh`.)

#[path = "common/access.rs"]
mod access;
mod common;
#[path = "common/console.rs"]
mod console;

use std::time::Duration;

use access::{key, principal};
use common::{Backend, TestApp};
use console::{browser, csrf, get_page, post_form, sign_in};
use reqwest::{header, StatusCode};
use serde_json::json;

async fn signing_in_opens_a_strict_cookie_session_and_pages_render(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let id = t.create("lead-1", 300).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let resp = browser()
        .get(format!("{}/console", t.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(resp.headers()[header::LOCATION], "/console/login");
    let wrong = browser()
        .post(format!("{}/console/login", t.base))
        .form(&[("api_key", "nxk_000000000000_00")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);

    let (cookie, set) = sign_in(&t, &t.key).await;
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(set.contains(attribute), "{set}");
    }
    assert!(
        !set.contains(&t.key),
        "the cookie is a session token, not the key"
    );
    let (status, list) = get_page(&t, &cookie, "/console").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        list.contains("Ana Lima") && list.contains("contacting"),
        "{list}"
    );
    assert!(list.contains("data-due="), "the next SLA counts down");
    let (status, detail) = get_page(&t, &cookie, &format!("/console/opportunities/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    for part in [
        "Timeline",
        "Calls",
        "Messages",
        "Timers",
        "first_touch_sla",
        "Playbook cadence",
        "btn-pause",
    ] {
        assert!(detail.contains(part), "{part} missing");
    }
    let (status, _) = get_page(&t, &cookie, "/console/opportunities/not-an-id").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, js) = get_page(&t, &cookie, "/console/assets/htmx.min.js").await;
    assert_eq!(status, StatusCode::OK);
    assert!(js.starts_with("var htmx"));

    let token = csrf(&list);
    assert_eq!(
        post_form(&t, &cookie, "/console/logout", &[("csrf", &token)]).await,
        StatusCode::SEE_OTHER
    );
    let (status, _) = get_page(&t, &cookie, "/console").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "signed out");
    t.stop().await;
}

async fn buttons_follow_the_role_and_the_server_enforces_it(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let id = t.create("lead-1", 300).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let pause = format!("/console/opportunities/{id}/pause");

    let viewer = key(&t, "viewer", None, None).await;
    let (cookie, _) = sign_in(&t, &viewer).await;
    let (_, page) = get_page(&t, &cookie, &format!("/console/opportunities/{id}")).await;
    assert!(
        !page.contains("btn-pause") && !page.contains("hx-post"),
        "viewers see no buttons"
    );
    let (_, list) = get_page(&t, &cookie, "/console").await;
    assert!(!list.contains("hx-post"));
    let token = csrf(&list);
    let status = post_form(&t, &cookie, &pause, &[("csrf", &token)]).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a hidden button is refused too"
    );

    principal(&t, "ana", "operator", None).await;
    let operator = key(&t, "operator", None, Some("ana")).await;
    let (cookie, _) = sign_in(&t, &operator).await;
    let (_, list) = get_page(&t, &cookie, "/console").await;
    let status = post_form(&t, &cookie, &pause, &[("csrf", &"0".repeat(64))]).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a form without the session's token"
    );
    let (_, body) = t.get(&format!("/v1/opportunities/{id}")).await;
    assert_eq!(body["paused"], false);
    let token = csrf(&list);
    let form = [
        ("csrf", token.as_str()),
        ("reason", "from the console"),
        ("back", "detail"),
    ];
    assert_eq!(
        post_form(&t, &cookie, &pause, &form).await,
        StatusCode::SEE_OTHER
    );
    let (_, body) = t.get(&format!("/v1/opportunities/{id}")).await;
    assert_eq!(body["paused"], true);
    let (_, log) = t.get(&format!("/v1/audit?action=pause&target={id}")).await;
    assert_eq!(log["items"][0]["principal"], "ana");
    assert_eq!(log["items"][0]["reason"], "from the console");

    // Revoking the key ends its console sessions.
    let (_, keys) = t.get("/v1/keys").await;
    let ana_key = keys["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["principal"] == "ana")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    t.request(
        reqwest::Method::DELETE,
        &format!("/v1/keys/{ana_key}"),
        Some(&t.key),
        None,
    )
    .await;
    let (status, _) = get_page(&t, &cookie, "/console").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    t.stop().await;
}

/// The console's routes for every role: every role reads; only owner, admin and operator act.
async fn every_role_reads_the_console_and_only_operating_roles_act(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    //                role           pause from the list
    let table = [
        ("owner", StatusCode::NO_CONTENT),
        ("admin", StatusCode::NO_CONTENT),
        ("operator", StatusCode::NO_CONTENT),
        ("viewer", StatusCode::FORBIDDEN),
        ("integration", StatusCode::FORBIDDEN),
    ];
    for (role, pause_status) in table {
        let id = t.create(&format!("lead-{role}"), 300).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let secret = if role == "owner" {
            t.key.clone()
        } else {
            key(&t, role, None, None).await
        };
        let (cookie, _) = sign_in(&t, &secret).await;
        for path in [
            "/console",
            &format!("/console/opportunities/{id}"),
            "/console/rows",
            "/console/queue",
            "/console/queue/rows",
            "/console/dashboard",
            "/console/dashboard/panel",
        ] {
            let (status, _) = get_page(&t, &cookie, path).await;
            assert_eq!(status, StatusCode::OK, "{role} {path}");
        }
        let (_, list) = get_page(&t, &cookie, "/console").await;
        let token = csrf(&list);
        let pause = format!("/console/opportunities/{id}/pause");
        let status = post_form(&t, &cookie, &pause, &[("csrf", &token)]).await;
        assert_eq!(status, pause_status, "{role} pause");
        let (_, body) = t.get(&format!("/v1/opportunities/{id}")).await;
        assert_eq!(
            body["paused"],
            pause_status == StatusCode::NO_CONTENT,
            "{role}"
        );
    }
    t.stop().await;
}

async fn the_live_feed_announces_changes(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let id = t.create("lead-1", 300).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (cookie, _) = sign_in(&t, &t.key).await;
    let mut feed = browser()
        .get(format!("{}/console/events", t.base))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(feed.status(), StatusCode::OK);
    assert_eq!(feed.headers()[header::CONTENT_TYPE], "text/event-stream");
    let mut seen = String::new();
    while !seen.contains("event: ready") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), feed.chunk())
            .await
            .expect("the feed's baseline")
            .unwrap()
            .expect("an open feed");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    let (status, _) = t
        .post(&format!("/v1/opportunities/{id}/pause"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let found = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(chunk) = feed.chunk().await.unwrap() {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains("event: changed") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(found, Ok(true), "no change announced: {seen:?}");
    t.stop().await;
}

/// A console form carrying NUL, a control character or a bidi override is refused with a 400
/// page, and nothing reaches the opportunity (PostgreSQL used to answer 503 with its raw error;
/// SQLite stored it).
async fn hostile_form_text_is_refused(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let id = t.create("lead-1", 300).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (cookie, _) = sign_in(&t, &t.key).await;
    let (_, page) = get_page(&t, &cookie, &format!("/console/opportunities/{id}")).await;
    let token = csrf(&page);
    let pause = format!("/console/opportunities/{id}/pause");
    for reason in ["a\u{0}b", "bell\u{7}", "flip\u{202E}"] {
        let status = post_form(&t, &cookie, &pause, &[("csrf", &token), ("reason", reason)]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{reason:?}");
    }
    let (_, body) = t.get(&format!("/v1/opportunities/{id}")).await;
    assert_eq!(body["paused"], false, "nothing was applied");
    let reassign = format!("/console/opportunities/{id}/reassign");
    let form = [
        ("csrf", token.as_str()),
        ("reason", "x"),
        ("assignee", "bo\nx"),
    ];
    assert_eq!(
        post_form(&t, &cookie, &reassign, &form).await,
        StatusCode::BAD_REQUEST
    );
    t.stop().await;
}

both_backends!(
    hostile_form_text_is_refused,
    signing_in_opens_a_strict_cookie_session_and_pages_render,
    buttons_follow_the_role_and_the_server_enforces_it,
    every_role_reads_the_console_and_only_operating_roles_act,
    the_live_feed_announces_changes,
);
