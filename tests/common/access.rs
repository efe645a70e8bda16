//! Helpers for the control-plane tests: teams, principals and keys made through the API with
//! the tenant owner's key.
#![allow(dead_code, clippy::unwrap_used)]

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use std::time::Duration;

use crate::common::{eventually, lead, TestApp};

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

/// Puts an input no opportunity can decode in its inbox and waits for it to be dead-lettered.
pub async fn poison(t: &TestApp, id: &str, dedupe: &str) -> Value {
    use neuronx_supervision::store::NewInput;
    let tenant = neuronx_supervision::TenantId(t.tenant.parse().unwrap());
    let key = neuronx_actors::opportunity::key(tenant, id.parse().unwrap());
    t.engine()
        .store()
        .insert_inbox(&[NewInput {
            key,
            shard: key.shard(32),
            dedupe_key: dedupe.into(),
            remember: true,
            input: json!({"type": "no_such_input"}),
            reply: false,
            notify: false,
        }])
        .await
        .unwrap();
    eventually(Duration::from_secs(15), "the dead letter", || async {
        let (_, body) = t.get("/v1/dead-letters").await;
        body["items"].as_array().and_then(|i| i.first().cloned())
    })
    .await
}
