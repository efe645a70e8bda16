//! Helpers for the control-plane tests: teams, principals and keys made through the API with
//! the tenant owner's key.
#![allow(dead_code, clippy::unwrap_used)]

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::{lead, TestApp};

pub async fn team(t: &TestApp, name: &str) -> Value {
    let (status, body) = t.post("/v1/teams", json!({"name": name})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

pub async fn principal(t: &TestApp, name: &str, role: &str, team: Option<&str>) -> Value {
    let (status, body) = t
        .post(
            "/v1/principals",
            json!({"name": name, "role": role, "team": team}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

/// A new key's secret.
pub async fn key(t: &TestApp, role: &str, team: Option<&str>, principal: Option<&str>) -> String {
    let (status, body) = t
        .post(
            "/v1/keys",
            json!({"name": format!("{role} key"), "role": role, "team": team, "principal": principal}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["key"].as_str().unwrap().to_owned()
}

pub async fn as_key(
    t: &TestApp,
    key: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    t.request(method, path, Some(key), body).await
}

/// Creates an opportunity bound to `team` (or none) and returns it.
pub async fn create_in(t: &TestApp, external_id: &str, team: Option<&str>) -> Value {
    let mut lead = lead(external_id, 300);
    if let Some(team) = team {
        lead["team"] = json!(team);
    }
    let (status, body) = t.post("/v1/opportunities", lead).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}
