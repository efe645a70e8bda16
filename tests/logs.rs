#![allow(clippy::unwrap_used)]
//! No secret reaches a log: every log line of a real engine, at debug level, is captured while
//! keys are made, used, guessed and revoked and a provider token is stored; then the capture is
//! searched for each secret. Runs on PostgreSQL and on SQLite.

#[path = "common/access.rs"]
mod access;
mod common;
#[path = "common/logs.rs"]
mod logs;

use access::{as_key, key};
use common::{Backend, TestApp};
use neuronx::secrets::Keyring;
use reqwest::{Method, StatusCode};
use serde_json::json;

async fn no_key_or_secret_appears_in_the_logs(backend: Backend) {
    let logs = logs::capture("debug");
    let t = TestApp::spawn_with(backend, |s| {
        s.secrets.keys = vec![Keyring::generate_entry("k1")]
    })
    .await;
    let token = "tw1lio-auth-token-never-logged";
    let mut secrets = vec![t.key.clone(), token.to_owned()];

    let operator = key(&t, "operator", None, None).await;
    secrets.push(operator.clone());
    let id = t.create("lead-1", 300).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = as_key(
        &t,
        &operator,
        Method::POST,
        &format!("/v1/opportunities/{id}/pause"),
        Some(json!({"reason": "check logs"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = t
        .request(
            Method::PUT,
            "/v1/channels/twilio",
            Some(&t.key),
            Some(
                json!({"account_sid": format!("AC{}", "1".repeat(32)), "auth_token": token,
                        "from_number": "+14155550199"}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // A wrong secret behind a real prefix, and a secret pasted without any prefix.
    let wrong_secret = "f".repeat(64);
    let pasted = "sk_live_0123456789abcdef0123456789abcdef";
    secrets.push(wrong_secret.clone());
    secrets.push(pasted.to_owned());
    for presented in [
        format!("{}_{wrong_secret}", &t.key[..16]),
        pasted.to_owned(),
    ] {
        let (status, _) = as_key(&t, &presented, Method::GET, "/v1/opportunities", None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    // A console session's token is a secret too.
    let signed_in = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{}/console/login", t.base))
        .form(&[("api_key", operator.as_str())])
        .send()
        .await
        .unwrap();
    let cookie = signed_in.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    let session = cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("nx_session=");
    assert_eq!(session.len(), 64);
    secrets.push(session.to_owned());
    let (_, listed) = t.get("/v1/keys").await;
    let operator_id = listed["items"][1]["id"].as_str().unwrap().to_owned();
    t.request(
        Method::DELETE,
        &format!("/v1/keys/{operator_id}"),
        Some(&t.key),
        None,
    )
    .await;
    t.stop().await;

    let text = logs.text();
    assert!(
        text.contains("authentication failed"),
        "the capture must hold this test's lines"
    );
    for secret in &secrets {
        // The secret part: prefixes are meant to be seen.
        let tail = secret.rsplit('_').next().unwrap();
        assert!(!text.contains(tail), "a secret reached the logs: {tail}");
    }
    let wrong_secret_prefix = &wrong_secret[..12];
    assert!(!text.contains(wrong_secret_prefix));
}

both_backends!(no_key_or_secret_appears_in_the_logs);
