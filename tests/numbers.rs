#![allow(clippy::unwrap_used)]
//! The tenant's numbers (issue #14): the pool's API round trip and hostile input, team scope and
//! tenant isolation; local-presence caller id as the carrier simulator sees it (a lead in 512
//! dialled from the team's 512 number, one elsewhere in Texas from its Texas number, one of no
//! team from the account's number); inbound texts routed by the number they reached, one to a
//! number that is not ours refused with nothing written, and two tenants never crossing. Every
//! test runs on PostgreSQL and on SQLite.

#[path = "common/access.rs"]
mod access;
mod common;
#[path = "common/flow.rs"]
mod flow;

use std::time::Duration;

use access::{as_key, key, team};
use common::{eventually, post_signed, Backend, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// The account's number in `flow::setup`.
const ACCOUNT_FROM: &str = "+14155550000";
const AUSTIN: &str = "+15125550100";
const MANHATTAN: &str = "+12125550100";

fn items(v: &Value) -> Vec<Value> {
    v["items"].as_array().cloned().unwrap_or_default()
}

fn numbers_of(v: &Value) -> Vec<String> {
    items(v)
        .iter()
        .filter_map(|n| n["number"].as_str().map(str::to_owned))
        .collect()
}

async fn put_number(t: &TestApp, key: &str, number: &str, body: Value) -> (StatusCode, Value) {
    t.request(
        Method::PUT,
        &format!("/v1/numbers/{number}"),
        Some(key),
        Some(body),
    )
    .await
}

async fn lead_as(
    t: &TestApp,
    key: &str,
    external_id: &str,
    phone: &str,
    team: Option<&str>,
) -> String {
    let mut lead = common::lead(external_id, 300);
    lead["contact"]["phone"] = json!(phone);
    if let Some(team) = team {
        lead["team"] = json!(team);
    }
    let (status, body) = t
        .request(Method::POST, "/v1/opportunities", Some(key), Some(lead))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

async fn lead_in(t: &TestApp, external_id: &str, phone: &str, team: Option<&str>) -> String {
    lead_as(t, &t.key, external_id, phone, team).await
}

async fn numbers_round_trip_and_refuse_bad_input(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    team(&t, "texas").await;
    team(&t, "east").await;

    let (status, n) = put_number(
        &t,
        &t.key,
        "%2B1%20512%20555%200100",
        json!({"team": "texas", "label": " Austin "}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{n}");
    assert_eq!(n["number"], AUSTIN, "stored E.164");
    assert_eq!(n["team"], "texas");
    assert_eq!(n["label"], "Austin");
    assert_eq!(
        (n["area_code"].clone(), n["state"].clone()),
        (json!(512), json!("TX"))
    );
    // A duplicate is the same number: one row, answered 200, moved and relabelled.
    let (status, n) = put_number(
        &t,
        &t.key,
        AUSTIN,
        json!({"team": "texas", "label": "Austin"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{n}");
    let (status, n) = put_number(&t, &t.key, AUSTIN, json!({"team": "east"})).await;
    assert_eq!(status, StatusCode::OK, "{n}");
    assert_eq!(
        (n["team"].clone(), n["label"].clone()),
        (json!("east"), Value::Null)
    );
    let (status, n) = put_number(&t, &t.key, AUSTIN, json!({"team": "texas"})).await;
    assert_eq!(status, StatusCode::OK, "{n}");
    let (status, n) = put_number(&t, &t.key, MANHATTAN, json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{n}");
    assert!(n["team"].is_null(), "tenant-wide: {n}");
    assert_eq!(n["state"], "NY");
    let (status, n) = put_number(&t, &t.key, "+442071838750", json!({"label": "London"})).await;
    assert_eq!(status, StatusCode::CREATED, "{n}");
    assert!(n["area_code"].is_null() && n["state"].is_null(), "{n}");

    let (_, list) = t.get("/v1/numbers").await;
    assert_eq!(
        numbers_of(&list),
        ["+12125550100", "+15125550100", "+442071838750"],
        "{list}"
    );

    // Hostile input: each refused by field, nothing stored.
    for (number, body, field) in [
        ("12345", json!({}), "number"),
        ("%2B1512555010x", json!({}), "number"),
        ("%2B99999", json!({}), "number"),
        ("not-a-number", json!({}), "number"),
        (AUSTIN, json!({"team": "nobody"}), "team"),
        (AUSTIN, json!({"label": "x".repeat(101)}), "label"),
        (AUSTIN, json!({"label": "bell\u{7}"}), "label"),
    ] {
        let (status, body) = put_number(&t, &t.key, number, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{number}: {body}");
        assert_eq!(body["field"], field, "{number}: {body}");
    }
    let (status, body) = put_number(&t, &t.key, AUSTIN, json!({"teem": "texas"})).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "unknown fields are refused: {body}"
    );
    let (_, after) = t.get("/v1/numbers").await;
    assert_eq!(after, list, "refusals change nothing");

    // Writes are for tenant-wide admins; reads for anyone, a team key seeing its team's and the
    // tenant-wide numbers only.
    let operator = key(&t, "operator", None, None).await;
    let team_admin = key(&t, "admin", Some("east"), None).await;
    let east_viewer = key(&t, "viewer", Some("east"), None).await;
    for k in [&operator, &team_admin, &east_viewer] {
        let (status, body) = put_number(&t, k, "+13035550100", json!({})).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        let (status, body) = as_key(
            &t,
            k,
            Method::DELETE,
            &format!("/v1/numbers/{AUSTIN}"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    }
    let (status, seen) = as_key(&t, &east_viewer, Method::GET, "/v1/numbers", None).await;
    assert_eq!(status, StatusCode::OK, "{seen}");
    assert_eq!(
        numbers_of(&seen),
        ["+12125550100", "+442071838750"],
        "no texas number: {seen}"
    );
    let (_, seen) = as_key(&t, &operator, Method::GET, "/v1/numbers", None).await;
    assert_eq!(numbers_of(&seen).len(), 3, "{seen}");

    // Another tenant's numbers are invisible and out of reach, even the same digits.
    let other = neuronx::tenants::create(t.engine().store(), "other agency")
        .await
        .unwrap();
    let (status, theirs) = put_number(&t, &other.api_key, "+13125550100", json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{theirs}");
    let (status, theirs) = put_number(&t, &other.api_key, AUSTIN, json!({"label": "theirs"})).await;
    assert_eq!(status, StatusCode::CREATED, "their own row: {theirs}");
    let (_, ours) = t.get("/v1/numbers").await;
    assert_eq!(ours, list, "the other tenant's numbers are not ours");
    let (status, body) = t
        .request(
            Method::DELETE,
            "/v1/numbers/+13125550100",
            Some(&t.key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    let (status, gone) = t
        .request(
            Method::DELETE,
            &format!("/v1/numbers/{AUSTIN}"),
            Some(&t.key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{gone}");
    assert_eq!(gone["team"], "texas");
    let (status, body) = t
        .request(
            Method::DELETE,
            &format!("/v1/numbers/{AUSTIN}"),
            Some(&t.key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (_, theirs) = as_key(&t, &other.api_key, Method::GET, "/v1/numbers", None).await;
    assert_eq!(
        numbers_of(&theirs),
        ["+13125550100", AUSTIN],
        "theirs untouched: {theirs}"
    );

    let (_, log) = t.get("/v1/audit?limit=100").await;
    let count = |action: &str| items(&log).iter().filter(|e| e["action"] == action).count();
    assert_eq!(
        (count("number_put"), count("number_remove")),
        (6, 1),
        "{log}"
    );
    t.stop().await;
}

/// The `From` the carrier saw on the first call to `lead`.
async fn dialled_from(s: &flow::Setup, lead: &str) -> String {
    eventually(
        Duration::from_secs(30),
        &format!("a call to {lead}"),
        || async {
            s.sim
                .calls()
                .into_iter()
                .find(|c| c.to == lead)
                .map(|c| c.from)
        },
    )
    .await
}

async fn leads_are_dialled_from_a_local_number(backend: Backend) {
    let s = flow::setup(backend).await;
    let t = &s.app;
    team(t, "texas").await;
    team(t, "east").await;
    let (status, body) = put_number(t, &t.key, AUSTIN, json!({"team": "texas"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = put_number(t, &t.key, MANHATTAN, json!({"team": "east"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    lead_in(t, "austin", "+15125550123", Some("texas")).await;
    lead_in(t, "dallas", "+12145550123", Some("texas")).await;
    lead_in(t, "denver", "+13035550123", None).await;
    assert_eq!(
        dialled_from(&s, "+15125550123").await,
        AUSTIN,
        "same area code"
    );
    assert_eq!(dialled_from(&s, "+12145550123").await, AUSTIN, "same state");
    assert_eq!(
        dialled_from(&s, "+13035550123").await,
        ACCOUNT_FROM,
        "no team, no tenant-wide number: the account's"
    );
    let stats = s.sim.stats();
    assert_eq!(stats.calls_per_from.get(AUSTIN), Some(&2), "{stats:?}");
    assert!(!stats.calls_per_from.contains_key(MANHATTAN), "{stats:?}");

    // The attempt records the number it went from and why (its completion may land a little
    // after the carrier saw the create).
    let store = t.engine().store().clone();
    eventually(Duration::from_secs(20), "three dials recorded", || async {
        let results = common::sql(
            &store,
            "SELECT CAST(result AS TEXT) FROM outbox WHERE channel = 'voice' AND result IS NOT NULL",
        )
        .await;
        let dials: Vec<Value> = results
            .iter()
            .filter_map(|r| serde_json::from_str::<Value>(r).ok())
            .filter(|r| r.get("call_sid").is_some())
            .collect();
        [
            (AUSTIN, "area_code"),
            (AUSTIN, "state"),
            (ACCOUNT_FROM, "account"),
        ]
        .iter()
        .all(|(from, by)| {
            dials
                .iter()
                .any(|d| d["from"] == *from && d["caller_id"] == *by)
        })
        .then_some(())
    })
    .await;
    s.sim.shutdown().await;
    s.app.stop().await;
}

/// Posts a signed inbound text to `tenant`'s webhook.
async fn inbound(
    s: &flow::Setup,
    tenant: &str,
    sid: &str,
    from: &str,
    to: Option<&str>,
    body: &str,
) -> (StatusCode, Value) {
    let url = format!("{}/webhooks/twilio/{tenant}/sms/inbound", s.public_url);
    let mut params: Vec<(String, String)> = vec![
        ("MessageSid".into(), sid.into()),
        ("From".into(), from.into()),
        ("Body".into(), body.into()),
    ];
    if let Some(to) = to {
        params.push(("To".into(), to.into()));
    }
    let resp = post_signed(&s.app.client, &s.auth_token, &url, &params).await;
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// The bodies of the opportunity's `replied` entries, as seen with `key`.
async fn replies(t: &TestApp, key: &str, id: &str) -> Vec<String> {
    let (status, body) = t
        .request(
            Method::GET,
            &format!("/v1/opportunities/{id}/timeline?limit=200"),
            Some(key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|e| e["kind"] == "replied")
        .filter_map(|e| e["data"]["body"].as_str().map(str::to_owned))
        .collect()
}

async fn replied(t: &TestApp, key: &str, id: &str, body: &str) {
    eventually(
        Duration::from_secs(20),
        &format!("{body:?} on {id}"),
        || async {
            replies(t, key, id)
                .await
                .iter()
                .any(|r| r == body)
                .then_some(())
        },
    )
    .await;
}

async fn dedupe_keys(t: &TestApp, sid: &str) -> usize {
    common::sql(
        t.engine().store(),
        &format!("SELECT key FROM inbox_dedupe WHERE key LIKE '%inbound:{sid}%'"),
    )
    .await
    .len()
}

async fn inbound_texts_reach_the_team_of_the_number_they_reached(backend: Backend) {
    let s = flow::setup(backend).await;
    let t = &s.app;
    let tenant = t.tenant.clone();
    team(t, "texas").await;
    team(t, "east").await;
    let (status, body) = put_number(t, &t.key, AUSTIN, json!({"team": "texas"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = put_number(t, &t.key, MANHATTAN, json!({"team": "east"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // One person, a lead of both teams: the east one is the newest. The tenant keeps such a
    // lead as a skipped duplicate (ADR 0046), so each team has its own opportunity to route to.
    t.duplicate_contacts("skip").await;
    let sender = "+12145550188";
    let texas = lead_in(t, "texas-lead", sender, Some("texas")).await;
    let east = lead_in(t, "east-lead", sender, Some("east")).await;

    let (status, body) = inbound(&s, &tenant, "SM1", sender, Some(AUSTIN), "for texas").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    replied(t, &t.key, &texas, "for texas").await;
    let (status, body) = inbound(&s, &tenant, "SM2", sender, Some(MANHATTAN), "for east").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    replied(t, &t.key, &east, "for east").await;
    // The account's own number is still ours: the opportunity holding the sender's cadence
    // (the texas one; the east one is its skipped duplicate), not merely the newest.
    let (status, body) = inbound(
        &s,
        &tenant,
        "SM3",
        sender,
        Some(ACCOUNT_FROM),
        "to the account",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    replied(t, &t.key, &texas, "to the account").await;
    assert_eq!(replies(t, &t.key, &east).await, ["for east"]);

    // A number that is not ours, or none: refused naming `To`, nothing written.
    let (status, body) = inbound(&s, &tenant, "SM4", sender, Some("+13125550100"), "stray").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        (body["error"].clone(), body["field"].clone()),
        (json!("unknown_to"), json!("To"))
    );
    let (status, body) = inbound(&s, &tenant, "SM5", sender, None, "no to").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        (body["error"].clone(), body["field"].clone()),
        (json!("missing_to"), json!("To"))
    );
    assert_eq!(dedupe_keys(t, "SM4").await + dedupe_keys(t, "SM5").await, 0);
    assert!(
        dedupe_keys(t, "SM1").await > 0,
        "the accepted ones were made durable"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    for id in [&texas, &east] {
        let bodies = replies(t, &t.key, id).await;
        assert!(
            !bodies.iter().any(|b| b == "stray" || b == "no to"),
            "{bodies:?}"
        );
    }
    s.sim.shutdown().await;
    s.app.stop().await;
}

async fn two_tenants_never_cross(backend: Backend) {
    let s = flow::setup(backend).await;
    let t = &s.app;
    let a = t.tenant.clone();
    let b = neuronx::tenants::create(t.engine().store(), "other agency")
        .await
        .unwrap();
    let (status, body) = t
        .request(
            Method::PUT,
            "/v1/channels/twilio",
            Some(&b.api_key),
            Some(json!({
                "account_sid": s.sim.account_sid(),
                "auth_token": s.auth_token,
                "from_number": "+14155550999",
                "base_url": s.sim.base_url,
            })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let theirs = "+13125550100";
    let (status, body) = put_number(t, &t.key, AUSTIN, json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = put_number(t, &b.api_key, theirs, json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // The same person is a lead of both tenants.
    let sender = "+12145550177";
    let ours_id = lead_in(t, "shared", sender, None).await;
    let theirs_id = lead_as(t, &b.api_key, "shared", sender, None).await;

    // Tenant A's webhook carrying tenant B's number: refused, B untouched.
    let (status, body) = inbound(&s, &a, "SMX1", sender, Some(theirs), "crossed").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["field"], "To");
    // Each tenant's own number reaches its own lead only.
    let (status, body) = inbound(&s, &a, "SMX2", sender, Some(AUSTIN), "for a").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let b_tenant = b.tenant_id.to_string();
    let (status, body) = inbound(&s, &b_tenant, "SMX3", sender, Some(theirs), "for b").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    replied(t, &t.key, &ours_id, "for a").await;
    replied(t, &b.api_key, &theirs_id, "for b").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(replies(t, &t.key, &ours_id).await, ["for a"]);
    assert_eq!(replies(t, &b.api_key, &theirs_id).await, ["for b"]);
    // Each tenant's opportunity is invisible to the other's key.
    let (status, _) = as_key(
        t,
        &b.api_key,
        Method::GET,
        &format!("/v1/opportunities/{ours_id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    s.sim.shutdown().await;
    s.app.stop().await;
}

both_backends!(
    numbers_round_trip_and_refuse_bad_input,
    leads_are_dialled_from_a_local_number,
    inbound_texts_reach_the_team_of_the_number_they_reached,
    two_tenants_never_cross,
);
