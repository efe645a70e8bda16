#![allow(clippy::unwrap_used)]
//! Commands beyond pause and resume: setting a stage with a reason, and `Idempotency-Key` on
//! every command (a retried request gets the first answer, from any instance). Both backends.

mod common;

use common::{redis_url, Backend, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// An operator sets the stage with a reason: legal moves apply and are on the timeline and in
/// the audit log; an illegal one answers 409; a missing reason or an unknown stage 400.
async fn an_operator_sets_the_stage_with_a_reason(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let id = t.create("staged", 300).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/v1/opportunities/{id}/stage");
    for (body, field) in [
        (json!({"stage": "nurture"}), "reason"),
        (json!({"stage": "nurture", "reason": " "}), "reason"),
        (json!({"stage": "famous", "reason": "x"}), "stage"),
    ] {
        let (status, err) = t.post(&path, body).await;
        assert_eq!(
            (status, err["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some(field)),
            "{err}"
        );
    }
    for stage in ["nurture", "contacting", "lost"] {
        let (status, body) = t
            .post(
                &path,
                json!({"stage": stage, "reason": format!("to {stage}")}),
            )
            .await;
        assert_eq!(
            (status, body["stage"].as_str()),
            (StatusCode::OK, Some(stage)),
            "{body}"
        );
    }
    let (status, err) = t
        .post(&path, json!({"stage": "contacting", "reason": "again"}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "lost is closed: {err}");
    let timeline = t.timeline(&id).await;
    let moves: Vec<&str> = timeline
        .iter()
        .filter(|e| {
            e["kind"] == "stage_changed"
                && e["by"].as_str().is_some_and(|b| b.starts_with("operator:"))
        })
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert_eq!(moves.len(), 3, "{timeline:?}");
    assert!(moves[2].contains("to lost"), "{moves:?}");
    let (_, log) = t.get("/v1/audit?action=set_stage").await;
    let outcomes: Vec<&str> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        ["applied", "applied", "applied", "rejected"],
        "{log}"
    );
    t.stop().await;
}

/// Sends `body` to `path` with an `Idempotency-Key`; answers the status, whether it was a
/// replay, and the body.
async fn with_key(t: &TestApp, path: &str, key: &str, body: Value) -> (StatusCode, bool, Value) {
    let resp = t
        .client
        .post(format!("{}{path}", t.base))
        .bearer_auth(&t.key)
        .header("Idempotency-Key", key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let replayed = resp.headers().get("idempotent-replayed").is_some();
    (status, replayed, resp.json().await.unwrap())
}

async fn a_repeated_idempotency_key_answers_the_first_answer(backend: Backend) {
    let shared = |s: &mut neuronx::config::Settings| s.server.redis_url = redis_url();
    let t = TestApp::spawn_with(backend, shared).await;
    let lead = common::lead("idem-1", 300);
    let (status, replayed, first) =
        with_key(&t, "/v1/opportunities", "k-create", lead.clone()).await;
    assert_eq!((status, replayed), (StatusCode::CREATED, false), "{first}");
    let (status, replayed, again) =
        with_key(&t, "/v1/opportunities", "k-create", lead.clone()).await;
    assert_eq!(
        (status, replayed),
        (StatusCode::CREATED, true),
        "the first answer, replayed"
    );
    assert_eq!(again, first);
    // The same request formatted differently (a retry from another client library) is the
    // same request.
    let pretty = t
        .client
        .post(format!("{}/v1/opportunities", t.base))
        .bearer_auth(&t.key)
        .header("Idempotency-Key", "k-create")
        .header("content-type", "application/json")
        .body(serde_json::to_string_pretty(&lead).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(pretty.status(), StatusCode::CREATED);
    assert!(pretty.headers().get("idempotent-replayed").is_some());

    let id = first["id"].as_str().unwrap().to_owned();
    let pause = format!("/v1/opportunities/{id}/pause");
    let body = json!({"reason": "lunch"});
    let (status, _, paused) = with_key(&t, &pause, "k-pause", body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{paused}");
    let (status, replayed, _) = with_key(&t, &pause, "k-pause", body).await;
    assert_eq!((status, replayed), (StatusCode::OK, true));
    let (_, log) = t.get(&format!("/v1/audit?action=pause&target={id}")).await;
    assert_eq!(
        log["items"].as_array().unwrap().len(),
        1,
        "paused once: {log}"
    );

    let (status, _, err) = with_key(&t, &pause, "k-pause", json!({"reason": "other"})).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("idempotency_key_reused")
        ),
        "{err}"
    );
    let (status, _, err) = with_key(&t, &pause, "not a key", json!({})).await;
    assert_eq!(
        (status, err["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("Idempotency-Key")),
        "{err}"
    );

    // Durable and shared: another instance on the same database replays it too.
    if backend == Backend::Postgres {
        let peer = t.peer(shared).await;
        let (status, replayed, again) = with_key(
            &peer,
            "/v1/opportunities",
            "k-create",
            common::lead("idem-1", 300),
        )
        .await;
        assert_eq!((status, replayed), (StatusCode::CREATED, true));
        assert_eq!(again["id"], first["id"]);
        peer.stop().await;
    }
    t.stop().await;
}

both_backends!(
    an_operator_sets_the_stage_with_a_reason,
    a_repeated_idempotency_key_answers_the_first_answer,
);
