#![allow(clippy::unwrap_used)]
//! Reps sign in as themselves, and people are deactivated (issue #14, ADR 0042): the magic
//! link's round trip through a real SMTP server (aiosmtpd on loopback), the uniform answer, the
//! per-address limit, expired and reused links, hostile input, and deactivation (keys refused,
//! sessions ended, out of offers, open leads reassigned by the team's rules, all audited).
//! Every test runs on PostgreSQL and on SQLite.

#[path = "common/access.rs"]
mod access;
mod common;
#[path = "common/smtp.rs"]
mod smtp;

use std::time::Duration;

use access::{key, principal, team};
use common::{eventually, Backend, TestApp};
use reqwest::{header, redirect, Client, Method, StatusCode};
use serde_json::{json, Value};
use smtp::{Mode, SmtpSink};

/// What every accepted request for a link answers.
const SENT: &str =
    "If that address belongs to someone in that workspace, a sign-in link is on its way.";

fn browser() -> Client {
    Client::builder()
        .redirect(redirect::Policy::none())
        .build()
        .unwrap()
}

async fn use_sink(t: &TestApp, sink: &SmtpSink) {
    let (status, body) = t
        .request(
            Method::PUT,
            "/v1/channels/smtp",
            Some(&t.key),
            Some(
                json!({"host": "127.0.0.1", "port": sink.port, "tls": "none",
                        "from": "console@acme.test"}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// A user of `team` with a rep whose email is `email`, available.
async fn rep(t: &TestApp, name: &str, team: &str, email: &str) {
    principal(t, name, "operator", Some(team)).await;
    let (status, body) = t
        .request(
            Method::PUT,
            &format!("/v1/principals/{name}/rep"),
            Some(&t.key),
            Some(json!({"phone": "+14155550123", "time_zone": "UTC", "email": email})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = t
        .post(
            &format!("/v1/principals/{name}/status"),
            json!({"status": "available"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// Asks for a link as the sign-in form does; answers the status and the page.
async fn ask(t: &TestApp, form: &[(&str, &str)]) -> (StatusCode, String) {
    let resp = browser()
        .post(format!("{}/console/magic-link", t.base))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.text().await.unwrap())
}

/// Follows a link's path; answers the status, the page and the session cookie it set, if any.
async fn follow(t: &TestApp, path: &str) -> (StatusCode, String, Option<String>) {
    let resp = browser()
        .get(format!("{}{path}", t.base))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let cookie = resp
        .headers()
        .get(header::SET_COOKIE)
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned());
    (status, resp.text().await.unwrap(), cookie)
}

async fn console(t: &TestApp, cookie: &str) -> (StatusCode, String) {
    let resp = browser()
        .get(format!("{}/console", t.base))
        .header(header::COOKIE, cookie)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.text().await.unwrap())
}

/// The link's path and query in the `n`th message the sink received (waiting for it).
async fn link_in(sink: &SmtpSink, n: usize) -> (String, String) {
    let message = eventually(Duration::from_secs(15), "the sign-in email", || async {
        sink.messages().get(n).cloned()
    })
    .await;
    let at = message
        .find("/console/magic?token=")
        .unwrap_or_else(|| panic!("no link in {message}"));
    let path = &message[at..at + "/console/magic?token=".len() + 64];
    (path.to_owned(), message)
}

async fn audit(t: &TestApp, action: &str) -> Vec<Value> {
    let (status, body) = t.get(&format!("/v1/audit?action={action}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["items"].as_array().cloned().unwrap_or_default()
}

async fn a_magic_link_signs_a_rep_in_once(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let sink = SmtpSink::start(Mode::Accept);
    use_sink(&t, &sink).await;
    team(&t, "west").await;
    rep(&t, "ana", "west", "ana@acme.test").await;

    // The page offers both ways in.
    let (status, page, _) = follow(&t, "/console/login").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("action=\"/console/magic-link\""), "{page}");

    // The address is matched without case; the workspace by its name or its id.
    let (status, page) = ask(&t, &[("tenant", "acme"), ("email", "ANA@acme.test")]).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains(SENT), "{page}");
    let (path, message) = link_in(&sink, 0).await;
    assert!(message.contains("ana@acme.test"), "{message}");
    assert!(message.contains("15 minutes"), "{message}");
    let token = path.rsplit('=').next().unwrap();
    let stored = common::sql(t.engine().store(), "SELECT hash FROM magic_links").await;
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0], token, "only the token's hash is stored");

    let (status, page, cookie) = follow(&t, &path).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Signed in as"), "{page}");
    assert!(
        page.contains("url=/console"),
        "the page moves on to the console: {page}"
    );
    let cookie = cookie.expect("a session cookie");
    let (status, page) = console(&t, &cookie).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("ana · operator · team west"), "{page}");

    // Once only.
    let (status, page, cookie2) = follow(&t, &path).await;
    assert_eq!(status, StatusCode::GONE, "{page}");
    assert!(page.contains("already used"), "{page}");
    assert!(cookie2.is_none());

    // By id too; the second link works as the first did.
    let (status, _) = ask(&t, &[("tenant", &t.tenant), ("email", "ana@acme.test")]).await;
    assert_eq!(status, StatusCode::OK);
    let (path2, _) = link_in(&sink, 1).await;
    assert_ne!(path2, path);
    let (status, _, cookie) = follow(&t, &path2).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(console(&t, &cookie.unwrap()).await.0, StatusCode::OK);

    let sent = eventually(Duration::from_secs(10), "the sent entries", || async {
        let sent = audit(&t, "magic_link_sent").await;
        (sent.len() == 2 && sent.iter().all(|e| e["outcome"] == "applied")).then_some(sent)
    })
    .await;
    assert_eq!(sent[0]["principal"], "ana");
    assert_eq!(sent[0]["after"]["to"], "ana@acme.test");
    let opened = audit(&t, "session_open").await;
    assert_eq!(opened.len(), 2, "{opened:?}");
    assert_eq!(opened[0]["principal"], "ana");
    assert_eq!(opened[0]["key"], "magic_link");
    assert_eq!(opened[0]["after"]["role"], "operator");
    assert_eq!(opened[0]["after"]["team"], "west");
}

async fn nobody_gets_the_same_answer_and_no_mail(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let sink = SmtpSink::start(Mode::Accept);
    use_sink(&t, &sink).await;
    team(&t, "west").await;
    rep(&t, "ana", "west", "ana@acme.test").await;
    principal(&t, "bot", "integration", None).await;

    for (tenant, email) in [
        ("acme", "nobody@acme.test"),
        ("no-such-workspace", "ana@acme.test"),
        ("00000000-0000-0000-0000-000000000000", "ana@acme.test"),
    ] {
        let (status, page) = ask(&t, &[("tenant", tenant), ("email", email)]).await;
        assert_eq!(status, StatusCode::OK, "{tenant} {email}: {page}");
        assert!(page.contains(SENT), "{page}");
    }
    // The limit answers alike for an address nobody has: five, then a clear refusal.
    for n in 1..=4 {
        let (status, _) = ask(&t, &[("tenant", "acme"), ("email", "NOBODY@acme.test")]).await;
        assert_eq!(status, StatusCode::OK, "request {}", n + 1);
    }
    let (status, page) = ask(&t, &[("tenant", "acme"), ("email", "nobody@acme.test")]).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{page}");
    assert!(page.contains("too many sign-in links"), "{page}");
    // Another address is not held back by it.
    let (status, _) = ask(&t, &[("tenant", "acme"), ("email", "other@acme.test")]).await;
    assert_eq!(status, StatusCode::OK);

    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(sink.messages().is_empty(), "{:?}", sink.messages());
    assert!(
        common::sql(t.engine().store(), "SELECT hash FROM magic_links")
            .await
            .is_empty()
    );
    assert!(audit(&t, "magic_link_sent").await.is_empty());
}

async fn a_link_that_cannot_be_sent_is_logged_and_the_answer_is_the_same(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    team(&t, "west").await;
    rep(&t, "ana", "west", "ana@acme.test").await;
    // No SMTP server yet: the same answer, and the log says why nothing went.
    let (status, page) = ask(&t, &[("tenant", "acme"), ("email", "ana@acme.test")]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(SENT), "{page}");
    let entry = eventually(Duration::from_secs(10), "the refused entry", || async {
        audit(&t, "magic_link_sent")
            .await
            .into_iter()
            .find(|e| e["outcome"] == "rejected")
    })
    .await;
    assert_eq!(
        entry["after"]["error"], "the tenant has no smtp server",
        "{entry}"
    );
    // A server that refuses the address: the same again, its refusal logged.
    let sink = SmtpSink::start(Mode::Refuse);
    use_sink(&t, &sink).await;
    let (status, page) = ask(&t, &[("tenant", "acme"), ("email", "ana@acme.test")]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(SENT), "{page}");
    let refused = eventually(
        Duration::from_secs(15),
        "the second refused entry",
        || async {
            let entries = audit(&t, "magic_link_sent").await;
            (entries.len() == 2 && entries[1]["outcome"] == "rejected").then(|| entries[1].clone())
        },
    )
    .await;
    assert!(
        refused["after"]["error"].as_str().unwrap().contains("550"),
        "{refused}"
    );
}

async fn an_expired_link_is_refused(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let sink = SmtpSink::start(Mode::Accept);
    use_sink(&t, &sink).await;
    team(&t, "west").await;
    rep(&t, "ana", "west", "ana@acme.test").await;
    let (status, _) = ask(&t, &[("tenant", "acme"), ("email", "ana@acme.test")]).await;
    assert_eq!(status, StatusCode::OK);
    let (path, _) = link_in(&sink, 0).await;
    // Fifteen minutes pass (the control plane reads the wall clock: the row is aged instead).
    common::sql(
        t.engine().store(),
        "UPDATE magic_links SET expires_at = expires_at - 900001 RETURNING hash",
    )
    .await;
    let (status, page, cookie) = follow(&t, &path).await;
    assert_eq!(status, StatusCode::GONE, "{page}");
    assert!(page.contains("expired"), "{page}");
    assert!(cookie.is_none());
    assert!(audit(&t, "session_open").await.is_empty());
}

async fn hostile_input_is_refused_by_name(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let long = format!("{}@acme.test", "a".repeat(300));
    let cases: [(&[(&str, &str)], &str); 7] = [
        (&[], "tenant is required"),
        (&[("email", "ana@acme.test")], "tenant is required"),
        (&[("tenant", "acme")], "email is required"),
        (&[("tenant", "acme"), ("email", "   ")], "email is required"),
        (
            &[("tenant", "acme"), ("email", "not an address")],
            "email: not an email address",
        ),
        (
            &[("tenant", "acme"), ("email", &long)],
            "at most 254 characters",
        ),
        (
            &[("tenant", "ac\u{7}me"), ("email", "ana@acme.test")],
            "tenant must be",
        ),
    ];
    for (form, expected) in cases {
        let (status, page) = ask(&t, form).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{form:?}: {page}");
        assert!(
            page.contains(expected),
            "{form:?}: expected {expected:?} in {page}"
        );
    }
    // Not a form at all.
    let resp = browser()
        .post(format!("{}/console/magic-link", t.base))
        .json(&json!({"tenant": "acme", "email": "ana@acme.test"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(resp.text().await.unwrap().contains("as a form"));
    // Posted by another site's page.
    for (name, value) in [
        ("sec-fetch-site", "cross-site"),
        ("origin", "https://evil.example"),
        ("origin", "null"),
    ] {
        let resp = browser()
            .post(format!("{}/console/magic-link", t.base))
            .header(name, value)
            .form(&[("tenant", "acme"), ("email", "ana@acme.test")])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{name}: {value}");
        assert!(resp.text().await.unwrap().contains("own sign-in page"));
    }
    // The console's own page passes.
    let host = t.base.trim_start_matches("http://").to_owned();
    let resp = browser()
        .post(format!("{}/console/magic-link", t.base))
        .header("origin", format!("http://{host}"))
        .header("sec-fetch-site", "same-origin")
        .form(&[("tenant", "acme"), ("email", "ana@acme.test")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    let unknown = format!("/console/magic?token={}", "ab".repeat(32));
    for (path, status, expected) in [
        (
            "/console/magic",
            StatusCode::BAD_REQUEST,
            "token is required",
        ),
        (
            "/console/magic?token=",
            StatusCode::BAD_REQUEST,
            "token is required",
        ),
        (
            "/console/magic?token=zzz",
            StatusCode::BAD_REQUEST,
            "not valid",
        ),
        (
            "/console/magic?token=%00%01",
            StatusCode::BAD_REQUEST,
            "not valid",
        ),
        (&unknown, StatusCode::BAD_REQUEST, "not valid"),
    ] {
        let (got, page, cookie) = follow(&t, path).await;
        assert_eq!(got, status, "{path}: {page}");
        assert!(page.contains(expected), "{path}: {page}");
        assert!(cookie.is_none());
    }
}

/// A lead of `team` assigned to `assignee`; answers its id.
async fn lead_for(t: &TestApp, external_id: &str, team: &str, assignee: &str) -> String {
    let mut lead = common::lead(external_id, 3600);
    lead["team"] = json!(team);
    lead["assignee"] = json!(assignee);
    let (status, body) = t.post("/v1/opportunities", lead).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["assignee"], assignee);
    body["id"].as_str().unwrap().to_owned()
}

async fn sign_in_with_key(t: &TestApp, key: &str) -> String {
    let resp = browser()
        .post(format!("{}/console/login", t.base))
        .form(&[("api_key", key)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let set = resp.headers()[header::SET_COOKIE].to_str().unwrap();
    set.split(';').next().unwrap().to_owned()
}

fn named<'a>(items: &'a Value, name: &str) -> &'a Value {
    items["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in {items}"))
}

async fn deactivation_revokes_ends_and_reassigns(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let sink = SmtpSink::start(Mode::Accept);
    use_sink(&t, &sink).await;
    team(&t, "west").await;
    team(&t, "east").await;
    rep(&t, "ana", "west", "ana@acme.test").await;
    principal(&t, "bo", "operator", Some("west")).await;
    principal(&t, "cy", "operator", Some("east")).await;
    let ana_key = key(&t, "operator", Some("west"), Some("ana")).await;
    let bo_key = key(&t, "operator", Some("west"), Some("bo")).await;
    let first = lead_for(&t, "lead-1", "west", "ana").await;
    let second = lead_for(&t, "lead-2", "west", "ana").await;
    let bos = lead_for(&t, "lead-3", "west", "bo").await;
    let east = lead_for(&t, "lead-4", "east", "cy").await;

    // Two sessions: one by a link, one with ana's key.
    ask(&t, &[("tenant", "acme"), ("email", "ana@acme.test")]).await;
    let (path, _) = link_in(&sink, 0).await;
    let by_link = follow(&t, &path).await.2.unwrap();
    let by_key = sign_in_with_key(&t, &ana_key).await;
    for cookie in [&by_link, &by_key] {
        assert_eq!(console(&t, cookie).await.0, StatusCode::OK);
    }
    // A link asked for before, unused, dies with the rest.
    ask(&t, &[("tenant", "acme"), ("email", "ana@acme.test")]).await;
    let (unused, _) = link_in(&sink, 1).await;

    // Who may not.
    let path = "/v1/principals/ana/deactivate";
    let (status, _) = t.request(Method::POST, path, Some(&bo_key), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = t.post("/v1/principals/nobody/deactivate", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = t.post(path, json!({"reason": 7})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = t.post(path, json!({"why": "x"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    let (status, done) = t.post(path, json!({"reason": "left the company"})).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["principal"]["active"], false, "{done}");
    assert!(done["principal"]["deactivated_at"].is_string(), "{done}");
    assert_eq!(done["keys_revoked"], 1, "{done}");
    assert_eq!(done["sessions_ended"], 2, "{done}");
    assert_eq!(done["rep_offline"], true, "{done}");
    let moved = done["reassigned"].as_array().unwrap();
    assert_eq!(moved.len(), 2, "{done}");
    for m in moved {
        assert_eq!(m["to"], "bo", "the team's other active operator: {done}");
        assert_eq!(m["outcome"], "applied", "{done}");
    }

    // Its key fails, its sessions are over, its unused link opens nothing.
    let (status, _) = t
        .request(Method::GET, "/v1/opportunities", Some(&ana_key), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    for cookie in [&by_link, &by_key] {
        let (status, _) = console(&t, cookie).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "back to the sign-in page");
    }
    let (status, page, _) = follow(&t, &unused).await;
    assert_eq!(status, StatusCode::GONE, "{page}");
    // And no new link: the same answer, no mail.
    let (status, page) = ask(&t, &[("tenant", "acme"), ("email", "ana@acme.test")]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(SENT));

    // Listed inactive, offline, and never offered.
    let (_, reps) = t.get("/v1/reps").await;
    assert_eq!(named(&reps, "ana")["active"], false, "{reps}");
    assert_eq!(named(&reps, "ana")["status"], "offline", "{reps}");
    let (_, people) = t.get("/v1/principals").await;
    assert_eq!(named(&people, "ana")["active"], false, "{people}");
    assert_eq!(named(&people, "bo")["active"], true, "{people}");
    let (status, body) = t
        .post("/v1/principals/ana/status", json!({"status": "available"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["field"], "status", "{body}");
    let engine = t.engine();
    let store = engine.store();
    // Even a status forced behind the API's back offers nobody deactivated.
    common::sql(
        store,
        "UPDATE reps SET status = 'available' RETURNING status",
    )
    .await;
    let tenant = neuronx_supervision::TenantId(t.tenant.parse().unwrap());
    let offer = neuronx::control::reps::offer(
        store,
        tenant,
        None,
        uuid::Uuid::new_v4(),
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    assert!(offer.reps.is_empty(), "{:?}", offer.reps);
    // Nor may a key be made for it.
    let (status, body) = t
        .post(
            "/v1/keys",
            json!({"name": "again", "role": "operator", "principal": "ana"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // Nothing new goes to it.
    let (status, body) = t
        .post(
            &format!("/v1/opportunities/{first}/reassign"),
            json!({"assignee": "ana", "reason": "back?"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["field"], "assignee", "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("deactivated")
            || body.to_string().contains("deactivated"),
        "{body}"
    );

    // Its leads went to bo, each with its timeline entry and audit entry; others' stayed.
    for id in [&first, &second] {
        let (_, opp) = t.get(&format!("/v1/opportunities/{id}")).await;
        assert_eq!(opp["assignee"], "bo", "{opp}");
        let timeline = t.timeline(id).await;
        let entry = timeline
            .iter()
            .rev()
            .find(|e| e["data"]["to"] == "bo")
            .unwrap_or_else(|| panic!("no reassignment in {timeline:?}"));
        assert_eq!(entry["data"]["from"], "ana");
        assert_eq!(entry["data"]["reason"], "ana was deactivated");
    }
    let (_, opp) = t.get(&format!("/v1/opportunities/{bos}")).await;
    assert_eq!(opp["assignee"], "bo");
    let (_, opp) = t.get(&format!("/v1/opportunities/{east}")).await;
    assert_eq!(opp["assignee"], "cy");
    let reassigns = audit(&t, "reassign").await;
    let mut targets: Vec<&str> = reassigns
        .iter()
        .map(|e| e["target_id"].as_str().unwrap())
        .collect();
    targets.sort_unstable();
    let mut expected = vec![first.as_str(), second.as_str()];
    expected.sort_unstable();
    assert_eq!(targets, expected, "{reassigns:?}");
    assert!(reassigns.iter().all(|e| e["outcome"] == "applied"));
    assert!(reassigns.iter().all(|e| e["after"]["assignee"] == "bo"));
    let entries = audit(&t, "principal_deactivate").await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["reason"], "left the company");
    assert_eq!(entries[0]["before"]["active"], true);
    assert_eq!(entries[0]["after"]["active"], false);
    assert_eq!(entries[0]["after"]["keys_revoked"], 1);

    // A team with nobody else: its lead goes to the team's queue.
    let (status, done) = t.post("/v1/principals/cy/deactivate", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["reassigned"][0]["to"], "unassigned", "{done}");
    let (_, opp) = t.get(&format!("/v1/opportunities/{east}")).await;
    assert_eq!(opp["assignee"], "unassigned");

    // Back again: active, but its old key stays revoked and its rep offline.
    let (status, p) = t.post("/v1/principals/ana/activate", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{p}");
    assert_eq!(p["active"], true);
    assert!(p["deactivated_at"].is_null());
    let (status, _) = t
        .request(Method::GET, "/v1/opportunities", Some(&ana_key), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(audit(&t, "principal_activate").await.len(), 1);
    // And may sign in by a link again.
    let (status, _) = ask(&t, &[("tenant", "acme"), ("email", "ana@acme.test")]).await;
    assert_eq!(status, StatusCode::OK);
    let (path, _) = link_in(&sink, 2).await;
    let (status, _, cookie) = follow(&t, &path).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(console(&t, &cookie.unwrap()).await.0, StatusCode::OK);
}

async fn nobody_deactivates_themselves_or_above_their_role(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    principal(&t, "root", "owner", None).await;
    principal(&t, "ada", "admin", None).await;
    let ada = key(&t, "admin", None, Some("ada")).await;
    let (status, body) = t
        .request(
            Method::POST,
            "/v1/principals/ada/deactivate",
            Some(&ada),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["field"], "name", "{body}");
    let (status, body) = t
        .request(
            Method::POST,
            "/v1/principals/root/deactivate",
            Some(&ada),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _) = t
        .request(
            Method::POST,
            "/v1/principals/root/activate",
            Some(&ada),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

both_backends!(
    a_magic_link_signs_a_rep_in_once,
    nobody_gets_the_same_answer_and_no_mail,
    an_expired_link_is_refused,
    a_link_that_cannot_be_sent_is_logged_and_the_answer_is_the_same,
    hostile_input_is_refused_by_name,
    deactivation_revokes_ends_and_reassigns,
    nobody_deactivates_themselves_or_above_their_role,
    the_cli_deactivates_and_queues_the_reassignments,
);

/// `neuronx tenant principal ...`, parsed as the binary parses it and run on the test's store.
async fn cli(t: &TestApp, args: &[&str]) -> anyhow::Result<Value> {
    use clap::Parser;
    #[derive(Parser)]
    struct Tenant {
        #[command(subcommand)]
        command: neuronx::control::cli::TenantCommand,
    }
    let parsed = Tenant::try_parse_from(std::iter::once("tenant").chain(args.iter().copied()))?;
    neuronx::control::cli::run(t.engine().store(), parsed.command).await
}

async fn the_cli_deactivates_and_queues_the_reassignments(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    team(&t, "west").await;
    principal(&t, "ana", "operator", Some("west")).await;
    principal(&t, "bo", "operator", Some("west")).await;
    let ana_key = key(&t, "operator", Some("west"), Some("ana")).await;
    let lead = lead_for(&t, "lead-1", "west", "ana").await;
    let tenant = t.tenant.clone();

    let err = cli(
        &t,
        &["principal", "deactivate", "--tenant", &tenant, "nobody"],
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("no principal named"), "{err}");
    let done = cli(
        &t,
        &[
            "principal",
            "deactivate",
            "--tenant",
            &tenant,
            "ana",
            "--reason",
            "left",
        ],
    )
    .await
    .unwrap();
    assert_eq!(done["principal"]["active"], false, "{done}");
    assert_eq!(done["keys_revoked"], 1, "{done}");
    assert_eq!(done["reassigned"][0]["to"], "bo", "{done}");
    assert_eq!(done["reassigned"][0]["outcome"], "accepted", "{done}");
    let (status, _) = t
        .request(Method::GET, "/v1/opportunities", Some(&ana_key), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The serving instance applies the queued reassignment.
    eventually(
        Duration::from_secs(20),
        "the queued reassignment",
        || async {
            let (_, opp) = t.get(&format!("/v1/opportunities/{lead}")).await;
            (opp["assignee"] == "bo").then_some(())
        },
    )
    .await;
    let entries = audit(&t, "reassign").await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["principal"], "cli");
    assert_eq!(entries[0]["outcome"], "accepted");
    assert_eq!(
        audit(&t, "principal_deactivate").await[0]["principal"],
        "cli"
    );

    let back = cli(&t, &["principal", "activate", "--tenant", &tenant, "ana"])
        .await
        .unwrap();
    assert_eq!(back["active"], true, "{back}");
}
