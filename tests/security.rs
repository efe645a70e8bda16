#![allow(clippy::unwrap_used)]
//! Security properties of the API, table-driven: every route against every role, every route
//! that takes an id against another tenant's key, wrong keys and the limit on guessing them.
//! Every test runs on PostgreSQL and on SQLite.

#[path = "common/access.rs"]
mod access;
mod common;

use access::{as_key, key};
use common::{lead, Backend, TestApp};
use neuronx::secrets::Keyring;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const ROLES: [&str; 5] = ["owner", "admin", "operator", "viewer", "integration"];

/// One row of the matrix: a route, a body, and the status expected for each role in `ROLES`
/// order. `{id}`, `{call}`, `{key}`, `{n}` are filled per role.
struct Row {
    method: Method,
    path: &'static str,
    body: Option<Value>,
    expect: [u16; 5],
}

fn row(method: Method, path: &'static str, body: Option<Value>, expect: [u16; 5]) -> Row {
    Row {
        method,
        path,
        body,
        expect,
    }
}

fn matrix() -> Vec<Row> {
    use Method as M;
    let twilio = json!({"account_sid": format!("AC{}", "0".repeat(32)), "auth_token": "t0ken",
                        "from_number": "+14155550199"});
    vec![
        //                                                          owner admin oper view integ
        row(M::GET, "/v1/opportunities", None, [200, 200, 200, 200, 200]),
        row(
            M::POST,
            "/v1/opportunities",
            // A number and an address of each lead's own: two leads of one number, or of one
            // address, would merge (ADR 0046).
            Some({
                let mut body = lead("m-{n}", 300);
                body["contact"]["phone"] = json!("+1415620{n}");
                body["contact"]["email"] = json!("m-{n}@example.com");
                body
            }),
            [201, 201, 403, 403, 201],
        ),
        row(
            M::GET,
            "/v1/opportunities/{id}",
            None,
            [200, 200, 200, 200, 200],
        ),
        row(
            M::GET,
            "/v1/opportunities/{id}/timeline",
            None,
            [200, 200, 200, 200, 200],
        ),
        row(
            M::GET,
            "/v1/opportunities/{id}/messages",
            None,
            [200, 200, 200, 200, 200],
        ),
        // A text by hand takes the conversation over; handing it back needs one taken over.
        row(
            M::POST,
            "/v1/opportunities/{id}/messages",
            Some(json!({"body": "matrix"})),
            [200, 200, 200, 403, 403],
        ),
        row(
            M::POST,
            "/v1/opportunities/{id}/hand-back",
            Some(json!({})),
            [200, 200, 200, 403, 403],
        ),
        row(
            M::POST,
            "/v1/opportunities/{id}/pause",
            Some(json!({})),
            [200, 200, 200, 403, 403],
        ),
        row(
            M::POST,
            "/v1/opportunities/{id}/resume",
            Some(json!({})),
            [200, 200, 200, 403, 403],
        ),
        row(
            M::POST,
            "/v1/opportunities/{id}/reassign",
            Some(json!({"assignee": "bo", "reason": "matrix"})),
            [200, 200, 200, 403, 403],
        ),
        row(
            M::POST,
            "/v1/opportunities/{id}/escalate",
            Some(json!({})),
            [200, 200, 200, 403, 403],
        ),
        row(
            M::POST,
            "/v1/opportunities/{id}/timers/first_touch_sla/cancel",
            Some(json!({})),
            [200, 200, 200, 403, 403],
        ),
        row(
            M::POST,
            "/v1/opportunities/{id}/stage",
            Some(json!({"stage": "nurture", "reason": "cold"})),
            [200, 200, 200, 403, 403],
        ),
        // Allowed to operate, refused by name: "nobody" is not a rep (viewers and integrations
        // may not operate at all).
        row(
            M::POST,
            "/v1/opportunities/{id}/calls",
            Some(json!({"rep": "nobody"})),
            [400, 400, 400, 403, 403],
        ),
        row(
            M::POST,
            "/v1/bulk/pause",
            Some(json!({})),
            [200, 200, 200, 403, 403],
        ),
        row(
            M::POST,
            "/v1/bulk/resume",
            Some(json!({})),
            [200, 200, 200, 403, 403],
        ),
        row(M::GET, "/v1/calls/{call}", None, [200, 200, 200, 200, 200]),
        // No such recording on the call; a viewer may not listen at all.
        row(
            M::GET,
            "/v1/calls/{call}/recordings/RE00000000000000000000000000000000",
            None,
            [404, 404, 404, 403, 403],
        ),
        row(
            M::GET,
            "/v1/calls/{call}/recordings/RE00000000000000000000000000000000/media",
            None,
            [404, 404, 404, 403, 403],
        ),
        row(M::GET, "/v1/dead-letters", None, [200, 200, 200, 200, 403]),
        row(M::GET, "/v1/cluster", None, [200, 200, 200, 200, 403]),
        // No such letter: allowed roles get as far as looking it up.
        row(
            M::POST,
            "/v1/dead-letters/999999/retry",
            Some(json!({})),
            [404, 404, 404, 403, 403],
        ),
        row(
            M::POST,
            "/v1/dead-letters/999999/discard",
            Some(json!({})),
            [404, 404, 404, 403, 403],
        ),
        row(
            M::POST,
            "/v1/teams",
            Some(json!({"name": "team-{n}"})),
            [201, 201, 403, 403, 403],
        ),
        row(M::GET, "/v1/teams", None, [200, 200, 200, 200, 200]),
        row(
            M::POST,
            "/v1/principals",
            Some(json!({"name": "p-{n}", "role": "operator"})),
            [201, 201, 403, 403, 403],
        ),
        row(M::GET, "/v1/principals", None, [200, 200, 200, 200, 200]),
        // `p-{n}` and `team-{n}` are the principal and team the rows above made.
        row(
            M::PUT,
            "/v1/principals/p-{n}/rep",
            Some(json!({"phone": "+14155550100", "time_zone": "America/New_York"})),
            [200, 200, 403, 403, 403],
        ),
        row(
            M::POST,
            "/v1/principals/p-{n}/status",
            Some(json!({"status": "available"})),
            [200, 200, 403, 403, 403],
        ),
        // Deactivated, then active again, so the rows below find it as it was.
        row(
            M::POST,
            "/v1/principals/p-{n}/deactivate",
            Some(json!({})),
            [200, 200, 403, 403, 403],
        ),
        row(
            M::POST,
            "/v1/principals/p-{n}/activate",
            Some(json!({})),
            [200, 200, 403, 403, 403],
        ),
        row(M::GET, "/v1/reps", None, [200, 200, 200, 200, 200]),
        row(
            M::PUT,
            "/v1/teams/team-{n}/ringing",
            Some(json!({"strategy": "simultaneous", "ring_timeout_seconds": 30})),
            [200, 200, 403, 403, 403],
        ),
        row(
            M::POST,
            "/v1/keys",
            Some(json!({"name": "k-{n}", "role": "viewer"})),
            [201, 201, 403, 403, 403],
        ),
        row(M::GET, "/v1/keys", None, [200, 200, 403, 403, 403]),
        row(M::DELETE, "/v1/keys/{key}", None, [200, 200, 403, 403, 403]),
        row(M::GET, "/v1/audit", None, [200, 200, 200, 200, 403]),
        row(
            M::PUT,
            "/v1/channels/twilio",
            Some(twilio),
            [200, 200, 403, 403, 403],
        ),
        row(
            M::GET,
            "/v1/channels/twilio",
            None,
            [200, 200, 403, 403, 403],
        ),
        row(
            M::PUT,
            "/v1/channels/smtp",
            Some(json!({"host": "127.0.0.1", "port": 2525, "tls": "none",
                        "from": "alerts@example.com"})),
            [200, 200, 403, 403, 403],
        ),
        row(M::GET, "/v1/channels/smtp", None, [200, 200, 403, 403, 403]),
        row(M::GET, "/v1/settings", None, [200, 200, 200, 200, 200]),
        row(
            M::PUT,
            "/v1/settings",
            Some(json!({"duplicate_contacts": "merge"})),
            [200, 200, 403, 403, 403],
        ),
        row(
            M::POST,
            "/v1/dnc",
            Some(json!({"phone": "+1415555{n}"})),
            [201, 201, 201, 403, 201],
        ),
        row(
            M::DELETE,
            "/v1/dnc/+14155550100",
            None,
            [404, 404, 404, 403, 404],
        ),
        row(
            M::PUT,
            "/v1/numbers/+1512555{n}",
            Some(json!({"label": "matrix"})),
            [201, 201, 403, 403, 403],
        ),
        row(M::GET, "/v1/numbers", None, [200, 200, 200, 200, 200]),
        // The one-click unsubscribe link is public: the signed token is its only credential, so
        // every key (or none) hears the same; a forged token is refused by name.
        row(M::GET, "/u/k1.forged", None, [400, 400, 400, 400, 400]),
        row(M::POST, "/u/k1.forged", None, [400, 400, 400, 400, 400]),
        row(
            M::DELETE,
            "/v1/numbers/+13125550100",
            None,
            [404, 404, 403, 403, 403],
        ),
    ]
}

fn fill(text: &str, vars: &[(&str, &str)]) -> String {
    vars.iter().fold(text.to_owned(), |t, (k, v)| {
        t.replace(&format!("{{{k}}}"), v)
    })
}

async fn every_route_answers_each_role_as_the_policy_says(backend: Backend) {
    let t = TestApp::spawn_with(backend, |s| {
        s.secrets.keys = vec![Keyring::generate_entry("k1")]
    })
    .await;
    let mut failures = Vec::new();
    for (r, role) in ROLES.iter().enumerate() {
        let key_of_role = if *role == "owner" {
            t.key.clone()
        } else {
            key(&t, role, None, None).await
        };
        // Fresh objects for each role, made with the owner's key, so every allowed request
        // can succeed in table order.
        let opp = t.create(&format!("lead-{role}"), 300).await;
        let id = opp["id"].as_str().unwrap().to_owned();
        let call = common::first_call(&t.timeline(&id).await).unwrap();
        let (_, victim) = t
            .post("/v1/keys", json!({"name": "victim", "role": "viewer"}))
            .await;
        let victim = victim["id"].as_str().unwrap().to_owned();
        let n = format!("{r:03}0");
        let vars = [
            ("id", id.as_str()),
            ("call", &call),
            ("key", &victim),
            ("n", &n),
        ];
        for row in matrix() {
            let path = fill(row.path, &vars);
            let body = row
                .body
                .as_ref()
                .map(|b| serde_json::from_str(&fill(&b.to_string(), &vars)).unwrap());
            let (status, answer) = as_key(&t, &key_of_role, row.method.clone(), &path, body).await;
            if status.as_u16() != row.expect[r] {
                failures.push(format!(
                    "{role} {} {path}: expected {}, got {status} {answer}",
                    row.method, row.expect[r]
                ));
            }
            if status == StatusCode::FORBIDDEN {
                assert_eq!(answer["error"], "forbidden", "{answer}");
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Without a key, every /v1 route is 401 before anything else (the public unsubscribe
    // link answers the same with or without one).
    for row in matrix().into_iter().filter(|r| r.path.starts_with("/v1/")) {
        let path = fill(
            row.path,
            &[("id", "x"), ("call", "x"), ("key", "x"), ("n", "1")],
        );
        let (status, _) = t
            .request(row.method.clone(), &path, None, row.body.clone())
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{} {path}", row.method);
    }
    t.stop().await;
}

async fn another_tenants_ids_answer_404_on_every_route(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let opp = t.create("lead-1", 300).await;
    let id = opp["id"].as_str().unwrap().to_owned();
    let call = common::first_call(&t.timeline(&id).await).unwrap();
    let (_, k) = t
        .post("/v1/keys", json!({"name": "x", "role": "viewer"}))
        .await;
    let key_id = k["id"].as_str().unwrap().to_owned();
    t.post("/v1/dnc", json!({"phone": "+14155550123"})).await;
    let (status, number) = t
        .request(
            Method::PUT,
            "/v1/numbers/+15125550100",
            Some(&t.key),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{number}");
    let letter = access::poison(&t, &id, "poison-1").await["id"]
        .as_i64()
        .unwrap();
    let other = neuronx::tenants::create(t.engine().store(), "other")
        .await
        .unwrap()
        .api_key;
    let routes = [
        (Method::GET, format!("/v1/opportunities/{id}")),
        (Method::GET, format!("/v1/opportunities/{id}/timeline")),
        (Method::POST, format!("/v1/opportunities/{id}/pause")),
        (Method::POST, format!("/v1/opportunities/{id}/resume")),
        (Method::POST, format!("/v1/opportunities/{id}/reassign")),
        (Method::POST, format!("/v1/opportunities/{id}/escalate")),
        (
            Method::POST,
            format!("/v1/opportunities/{id}/timers/first_touch_sla/cancel"),
        ),
        (Method::POST, format!("/v1/opportunities/{id}/stage")),
        (Method::POST, format!("/v1/opportunities/{id}/calls")),
        (Method::GET, format!("/v1/opportunities/{id}/messages")),
        (Method::POST, format!("/v1/opportunities/{id}/messages")),
        (Method::POST, format!("/v1/opportunities/{id}/hand-back")),
        (Method::GET, format!("/v1/calls/{call}")),
        (Method::DELETE, format!("/v1/keys/{key_id}")),
        (Method::DELETE, "/v1/dnc/+14155550123".to_owned()),
        (Method::DELETE, "/v1/numbers/+15125550100".to_owned()),
        (Method::POST, format!("/v1/dead-letters/{letter}/retry")),
        (Method::POST, format!("/v1/dead-letters/{letter}/discard")),
    ];
    for (method, path) in routes {
        let body = if path.ends_with("/reassign") {
            json!({"assignee": "bo", "reason": "probe"})
        } else if path.ends_with("/stage") {
            json!({"stage": "nurture", "reason": "probe"})
        } else if path.ends_with("/calls") {
            json!({"rep": "bo"})
        } else if path.ends_with("/messages") {
            json!({"body": "probe"})
        } else {
            json!({"reason": "probe"})
        };
        let (status, answer) = as_key(&t, &other, method.clone(), &path, Some(body)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {answer}");
    }
    // Nothing changed for the owner.
    let (_, mine) = t.get(&format!("/v1/opportunities/{id}")).await;
    assert_eq!(mine["paused"], false);
    let (_, keys) = t.get("/v1/keys").await;
    let victim = keys["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == key_id.as_str())
        .unwrap()
        .clone();
    assert!(victim["revoked_at"].is_null());
    let (_, letters) = t.get("/v1/dead-letters").await;
    assert_eq!(
        letters["items"][0]["id"], letter,
        "the letter is still there"
    );
    let (_, numbers) = t.get("/v1/numbers").await;
    assert_eq!(numbers["items"][0]["number"], "+15125550100", "{numbers}");
    t.stop().await;
}

async fn wrong_keys_are_refused_and_guessing_is_rate_limited(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let good_prefix = &t.key[..16];
    let wrong = format!("{good_prefix}_{}", "0".repeat(64));
    let mut statuses = Vec::new();
    for _ in 0..10 {
        let (status, body) = as_key(&t, &wrong, Method::GET, "/v1/opportunities", None).await;
        assert_eq!(body["error"], "unauthorized", "{body}");
        statuses.push(status);
    }
    assert!(statuses.iter().all(|s| *s == StatusCode::UNAUTHORIZED));
    let resp = t
        .client
        .get(format!("{}/v1/opportunities", t.base))
        .bearer_auth(&wrong)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "rate_limited");
    // A right key from that client still goes through: the limit slows guessers, it does not
    // lock out the others behind the address (ADR 0032).
    let (status, _) = t.get("/v1/opportunities").await;
    assert_eq!(status, StatusCode::OK);
    t.stop().await;
}

async fn the_openapi_document_lists_every_route(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let (status, doc) = t.request(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK, "served without a key");
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let mut listed: Vec<String> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            listed.push(format!("{} {path}", method.to_uppercase()));
        }
    }
    listed.sort();
    let mut every: Vec<String> = matrix()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .map(|r| r.replace("{call}", "{id}").replace("{key}", "{id}"))
        .map(|r| {
            r.replace("/999999/", "/{id}/")
                .replace("+14155550100", "{phone}")
                .replace("/numbers/+1512555{n}", "/numbers/{number}")
                .replace("/numbers/+13125550100", "/numbers/{number}")
        })
        .map(|r| r.replace("first_touch_sla", "{name}"))
        .map(|r| r.replace("/u/k1.forged", "/u/{token}"))
        .map(|r| r.replace("RE00000000000000000000000000000000", "{sid}"))
        .map(|r| {
            r.replace("/p-{n}/", "/{name}/")
                .replace("/team-{n}/", "/{name}/")
        })
        .chain(["GET /healthz", "GET /readyz", "GET /metrics"].map(String::from))
        .collect();
    every.sort();
    every.dedup();
    assert_eq!(
        listed, every,
        "the document and the role matrix name the same routes"
    );
    // The same document as the code builds, and every /v1 operation needs the key.
    assert_eq!(
        serde_json::to_value(neuronx::http::openapi_document()).unwrap()["paths"],
        doc["paths"]
    );
    assert!(doc["components"]["securitySchemes"]["api_key"].is_object());
    t.stop().await;
}

both_backends!(
    the_openapi_document_lists_every_route,
    every_route_answers_each_role_as_the_policy_says,
    another_tenants_ids_answer_404_on_every_route,
    wrong_keys_are_refused_and_guessing_is_rate_limited,
);
