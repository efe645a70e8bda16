#![allow(clippy::unwrap_used)]
//! Authorization holes a hostile run found, each pinned: a team-limited admin stays inside its
//! team (keys, principals, the tenant's carrier account), nobody mints a key acting for a
//! principal they could not have made, a team key learns nothing of other teams' external ids,
//! racing creates bind one team and take one round-robin turn, a revoked key's console feed
//! ends, and the audit log names the key behind each action. Both backends.

#[path = "common/access.rs"]
mod access;
mod common;

use std::time::Duration;

use access::{as_key, create_in, key, principal, team};
use common::{Backend, TestApp};
use reqwest::{header, redirect, Method, StatusCode};
use serde_json::{json, Value};

fn items(v: &Value) -> Vec<Value> {
    v["items"].as_array().cloned().unwrap_or_default()
}

fn key_id(secret: &str) -> String {
    secret.split('_').nth(1).unwrap().to_owned()
}

async fn a_team_admin_stays_inside_its_team(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    team(&t, "west").await;
    team(&t, "east").await;
    principal(&t, "ana", "operator", Some("west")).await;
    principal(&t, "ed", "operator", Some("east")).await;
    principal(&t, "tess", "operator", None).await;
    let wide = key(&t, "operator", None, None).await;
    let east = key(&t, "operator", Some("east"), None).await;
    let west_admin = key(&t, "admin", Some("west"), None).await;
    let west_ops = key(&t, "operator", Some("west"), None).await;

    let (status, listed) = as_key(&t, &west_admin, Method::GET, "/v1/keys", None).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let mut ids: Vec<String> = items(&listed)
        .iter()
        .map(|k| k["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    let mut west = vec![key_id(&west_admin), key_id(&west_ops)];
    west.sort();
    assert_eq!(ids, west, "a team admin lists its team's keys only");

    for other in [&wide, &east, &t.key] {
        let path = format!("/v1/keys/{}", key_id(other));
        let (status, body) = as_key(&t, &west_admin, Method::DELETE, &path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        let (status, _) = as_key(&t, other, Method::GET, "/v1/opportunities", None).await;
        assert_eq!(status, StatusCode::OK, "the key still works");
    }
    let path = format!("/v1/keys/{}", key_id(&west_ops));
    let (status, body) = as_key(&t, &west_admin, Method::DELETE, &path, None).await;
    assert_eq!(status, StatusCode::OK, "its own team's key: {body}");

    let account = json!({"account_sid": format!("AC{}", "a".repeat(32)),
                         "auth_token": "t", "from_number": "+14155550100"});
    let (status, body) = as_key(
        &t,
        &west_admin,
        Method::PUT,
        "/v1/channels/twilio",
        Some(account),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _) = as_key(&t, &west_admin, Method::GET, "/v1/channels/twilio", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    for other in ["ed", "tess", "nobody"] {
        let body = json!({"name": "k", "role": "operator", "principal": other});
        let (status, err) = as_key(&t, &west_admin, Method::POST, "/v1/keys", Some(body)).await;
        assert_eq!(
            (status, err["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some("principal")),
            "{other}: {err}"
        );
    }
    let body = json!({"name": "k", "role": "operator", "principal": "ana"});
    let (status, made) = as_key(&t, &west_admin, Method::POST, "/v1/keys", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    assert_eq!(
        (made["team"].as_str(), made["principal"].as_str()),
        (Some("west"), Some("ana"))
    );

    // A tenant-wide admin binding a team's principal: the key joins that team.
    let body = json!({"name": "k2", "role": "operator", "principal": "ed"});
    let (status, made) = t.post("/v1/keys", body).await;
    assert_eq!(
        (status, made["team"].as_str()),
        (StatusCode::CREATED, Some("east")),
        "{made}"
    );
    let body = json!({"name": "k3", "role": "operator", "principal": "ed", "team": "west"});
    let (status, err) = t.post("/v1/keys", body).await;
    assert_eq!(
        (status, err["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("team")),
        "{err}"
    );
    t.stop().await;
}

async fn nobody_mints_a_key_acting_for_a_principal_above_them(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    principal(&t, "ceo", "owner", None).await;
    let admin = key(&t, "admin", None, None).await;
    for role in ["admin", "operator", "viewer"] {
        let body = json!({"name": "as ceo", "role": role, "principal": "ceo"});
        let (status, err) = as_key(&t, &admin, Method::POST, "/v1/keys", Some(body)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{role}: {err}");
    }
    let (status, made) = t
        .post(
            "/v1/keys",
            json!({"name": "ceo's", "role": "admin", "principal": "ceo"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "an owner may: {made}");
    t.stop().await;
}

async fn a_team_key_learns_nothing_of_other_external_ids(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    team(&t, "west").await;
    team(&t, "east").await;
    create_in(&t, "east-1", Some("east")).await;
    create_in(&t, "unbound-1", None).await;
    let feeder = key(&t, "integration", Some("west"), None).await;
    for taken in ["east-1", "unbound-1"] {
        let (status, body) = as_key(
            &t,
            &feeder,
            Method::POST,
            "/v1/opportunities",
            Some(common::lead(taken, 300)),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{taken}: {body}");
        assert!(body.get("contact").is_none(), "{body}");
    }
    let (_, page) = t.get("/v1/opportunities?team=west").await;
    assert!(
        items(&page).is_empty(),
        "nothing was pulled into west: {page}"
    );
    t.stop().await;
}

/// Every create of one external id races: one team's key binds it, the other's is not found,
/// and however many creates race, one turn of the round robin goes.
async fn racing_creates_bind_one_team_and_take_one_turn(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    team(&t, "west").await;
    team(&t, "east").await;
    principal(&t, "ana", "operator", Some("west")).await;
    principal(&t, "bo", "operator", Some("west")).await;
    principal(&t, "cy", "operator", Some("east")).await;
    let west = key(&t, "integration", Some("west"), None).await;
    let east = key(&t, "integration", Some("east"), None).await;
    const LEADS: usize = 6;
    for i in 0..LEADS {
        let ext = format!("race-{i}");
        let calls = (0..6).map(|n| {
            let k = if n % 2 == 0 { &west } else { &east };
            as_key(
                &t,
                k,
                Method::POST,
                "/v1/opportunities",
                Some(common::lead(&ext, 300)),
            )
        });
        let answers = futures_util::future::join_all(calls).await;
        let mut winners = std::collections::BTreeSet::new();
        for (n, (status, body)) in answers.iter().enumerate() {
            let side = if n % 2 == 0 { "west" } else { "east" };
            match *status {
                StatusCode::CREATED | StatusCode::OK | StatusCode::ACCEPTED => {
                    winners.insert(side);
                }
                StatusCode::NOT_FOUND => assert!(body.get("contact").is_none(), "{body}"),
                other => panic!("{ext}: {other} {body}"),
            }
        }
        assert_eq!(winners.len(), 1, "{ext}: both teams saw it: {answers:?}");
        let side = *winners.iter().next().unwrap();
        let (_, page) = t.get(&format!("/v1/opportunities?team={side}")).await;
        assert!(
            items(&page)
                .iter()
                .any(|o| o["external_id"] == ext.as_str()),
            "{ext} is bound to {side}: {page}"
        );
    }
    let turns = turns_taken(&t).await;
    assert_eq!(turns, LEADS as i64, "one round-robin turn per new lead");
    t.stop().await;
}

/// The round-robin counters of every team, added up (read from the database: the API shows
/// only the assignee each turn gave).
async fn turns_taken(t: &TestApp) -> i64 {
    let sql = "SELECT CAST(COALESCE(SUM(rr_next), 0) AS BIGINT) FROM teams";
    if t.database_url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(&t.database_url).await.unwrap();
        sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap()
    } else {
        let pool = sqlx::SqlitePool::connect(&t.database_url).await.unwrap();
        sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap()
    }
}

async fn a_revoked_keys_console_feed_ends(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let viewer = key(&t, "viewer", None, None).await;
    let browser = reqwest::Client::builder()
        .redirect(redirect::Policy::none())
        .build()
        .unwrap();
    let signed = browser
        .post(format!("{}/console/login", t.base))
        .form(&[("api_key", viewer.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), StatusCode::SEE_OTHER);
    let cookie = signed.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let mut feed = browser
        .get(format!("{}/console/events", t.base))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(feed.status(), StatusCode::OK);
    let mut seen = String::new();
    while !seen.contains("event: ready") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), feed.chunk())
            .await
            .expect("the feed's baseline")
            .unwrap()
            .expect("an open feed");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    let path = format!("/v1/keys/{}", key_id(&viewer));
    let (status, _) = t.request(Method::DELETE, &path, Some(&t.key), None).await;
    assert_eq!(status, StatusCode::OK);
    let ended = tokio::time::timeout(Duration::from_secs(15), async {
        // Keep-alive comments may come first; the feed must then end.
        while feed.chunk().await.ok().flatten().is_some() {}
    })
    .await;
    assert!(ended.is_ok(), "the feed kept streaming for a revoked key");
    t.stop().await;
}

async fn the_audit_log_names_the_key_behind_each_action(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let id = t.create("lead-1", 300).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    principal(&t, "ana", "operator", None).await;
    let first = key(&t, "operator", None, Some("ana")).await;
    let second = key(&t, "operator", None, Some("ana")).await;
    for (k, action) in [(&first, "pause"), (&second, "resume")] {
        let path = format!("/v1/opportunities/{id}/{action}");
        let (status, body) = as_key(&t, k, Method::POST, &path, Some(json!({}))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (_, log) = t.get(&format!("/v1/audit?target={id}")).await;
    let entries: Vec<(String, String, String)> = items(&log)
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["principal"].as_str().unwrap().to_owned(),
                e["key"].as_str().unwrap_or("none").to_owned(),
            )
        })
        .collect();
    let named = |k: &str| format!("nxk_{}", key_id(k));
    assert_eq!(
        entries,
        vec![
            ("pause".into(), "ana".into(), named(&first)),
            ("resume".into(), "ana".into(), named(&second)),
        ],
        "{log}"
    );
    let (_, log) = t.get("/v1/audit?action=key_create").await;
    assert!(
        items(&log)
            .iter()
            .all(|e| e["key"] == named(&t.key).as_str()),
        "keys minted by the owner's key name it: {log}"
    );
    t.stop().await;
}

both_backends!(
    a_team_admin_stays_inside_its_team,
    nobody_mints_a_key_acting_for_a_principal_above_them,
    a_team_key_learns_nothing_of_other_external_ids,
    racing_creates_bind_one_team_and_take_one_turn,
    a_revoked_keys_console_feed_ends,
    the_audit_log_names_the_key_behind_each_action,
);
