#![allow(clippy::unwrap_used)]
//! The control plane end to end: scoped API keys, teams and round robin, team scoping, the
//! audit log, cancelling a timer, bulk actions and dead letters. Every test runs on PostgreSQL
//! and on SQLite.

#[path = "common/access.rs"]
mod access;
mod common;

use std::time::Duration;

use access::{as_key, create_in, key, poison, principal, team};
use common::{eventually, Backend, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn items(v: &Value) -> Vec<Value> {
    v["items"].as_array().cloned().unwrap_or_default()
}

async fn keys_are_shown_once_scoped_and_revocable(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let (status, created) = t
        .post(
            "/v1/keys",
            json!({"name": "night shift", "role": "operator"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let secret = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(secret.starts_with(&format!("nxk_{id}_")));
    assert_eq!(created["prefix"], format!("nxk_{id}"));
    assert_eq!(created["role"], "operator");

    let (status, _) = as_key(&t, &secret, Method::GET, "/v1/opportunities", None).await;
    assert_eq!(status, StatusCode::OK);
    let (_, list) = t.get("/v1/keys").await;
    let text = list.to_string();
    assert!(!text.contains(&secret), "a list must never show a secret");
    assert!(!text.contains("hash"), "{text}");
    let listed = items(&list);
    let mine = listed.iter().find(|k| k["id"] == id.as_str()).unwrap();
    assert!(mine["last_used_at"].is_string(), "{mine}");
    assert!(
        listed.iter().any(|k| k["role"] == "owner"),
        "the tenant's first key is its owner's"
    );

    for (body, field) in [
        (json!({"name": "x", "role": "root"}), "role"),
        (json!({"name": "", "role": "viewer"}), "name"),
        (
            json!({"name": "x", "role": "viewer", "expires_at": "2001-01-01T00:00:00Z"}),
            "expires_at",
        ),
        (
            json!({"name": "x", "role": "viewer", "expires_at": "tomorrow"}),
            "expires_at",
        ),
        (
            json!({"name": "x", "role": "viewer", "team": "nope"}),
            "team",
        ),
    ] {
        let (status, err) = t.post("/v1/keys", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
        assert_eq!(err["field"], field, "{err}");
    }
    let admin = key(&t, "admin", None, None).await;
    let (status, err) = as_key(
        &t,
        &admin,
        Method::POST,
        "/v1/keys",
        Some(json!({"name": "x", "role": "owner"})),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "an admin cannot mint an owner: {err}"
    );

    let (status, revoked) = t
        .request(
            Method::DELETE,
            &format!("/v1/keys/{id}"),
            Some(&t.key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{revoked}");
    assert!(revoked["revoked_at"].is_string());
    let (status, _) = as_key(&t, &secret, Method::GET, "/v1/opportunities", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    for bad in ["%00", "nxk_zz", "0000000000000"] {
        let (status, _) = t
            .request(
                Method::DELETE,
                &format!("/v1/keys/{bad}"),
                Some(&t.key),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{bad}");
    }

    let soon = (chrono::Utc::now() + chrono::TimeDelta::seconds(1)).to_rfc3339();
    let (_, short) = t
        .post(
            "/v1/keys",
            json!({"name": "short", "role": "viewer", "expires_at": soon}),
        )
        .await;
    let short = short["key"].as_str().unwrap().to_owned();
    eventually(Duration::from_secs(5), "the key to expire", || async {
        let (status, _) = as_key(&t, &short, Method::GET, "/v1/opportunities", None).await;
        (status == StatusCode::UNAUTHORIZED).then_some(())
    })
    .await;
    t.stop().await;
}

async fn team_opportunities_go_round_robin_and_stay_in_their_team(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    team(&t, "west").await;
    team(&t, "east").await;
    principal(&t, "ana", "operator", Some("west")).await;
    principal(&t, "bo", "operator", Some("west")).await;
    principal(&t, "cy", "operator", Some("east")).await;
    principal(&t, "vi", "viewer", Some("west")).await;

    let mut west = Vec::new();
    for i in 0..3 {
        west.push(create_in(&t, &format!("w-{i}"), Some("west")).await);
    }
    let assignees: Vec<&str> = west
        .iter()
        .map(|o| o["assignee"].as_str().unwrap())
        .collect();
    assert_eq!(
        assignees,
        ["ana", "bo", "ana"],
        "operators take turns; viewers do not"
    );
    assert!(west.iter().all(|o| o["team"] == "west"));
    let east = create_in(&t, "e-0", Some("east")).await;
    assert_eq!(east["assignee"], "cy");
    let (status, err) = t
        .post("/v1/opportunities", {
            let mut l = common::lead("x", 300);
            l["team"] = json!("north");
            l
        })
        .await;
    assert_eq!(
        (status, err["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("team"))
    );

    let ana = key(&t, "operator", Some("west"), Some("ana")).await;
    let east_id = east["id"].as_str().unwrap();
    for (method, path) in [
        (Method::GET, format!("/v1/opportunities/{east_id}")),
        (Method::GET, format!("/v1/opportunities/{east_id}/timeline")),
        (Method::POST, format!("/v1/opportunities/{east_id}/pause")),
    ] {
        let (status, body) = as_key(&t, &ana, method, &path, Some(json!({}))).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
    }
    let (_, list) = as_key(&t, &ana, Method::GET, "/v1/opportunities", None).await;
    assert_eq!(items(&list).len(), 3, "only the west team's opportunities");
    let (_, list) = t.get("/v1/opportunities?team=east").await;
    assert_eq!(items(&list).len(), 1);
    // Creating with another team's external id shows nothing of it.
    let feeder = key(&t, "integration", Some("west"), None).await;
    let (status, body) = as_key(
        &t,
        &feeder,
        Method::POST,
        "/v1/opportunities",
        Some(common::lead("e-0", 300)),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body.get("contact").is_none());

    let w0 = west[0]["id"].as_str().unwrap();
    let (status, paused) = as_key(
        &t,
        &ana,
        Method::POST,
        &format!("/v1/opportunities/{w0}/pause"),
        Some(json!({"reason": "calling back"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{paused}");
    let timeline = t.timeline(w0).await;
    let entry = timeline.iter().find(|e| e["kind"] == "paused").unwrap();
    assert_eq!(
        entry["by"], "operator:ana",
        "a principal's key acts as that principal"
    );
    let (status, err) = as_key(
        &t,
        &ana,
        Method::POST,
        &format!("/v1/opportunities/{w0}/resume"),
        Some(json!({"operator": "bo"})),
    )
    .await;
    assert_eq!(
        (status, err["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("operator"))
    );

    let w1 = west[1]["id"].as_str().unwrap();
    let reassign = format!("/v1/opportunities/{w1}/reassign");
    let (status, err) = t
        .post(&reassign, json!({"assignee": "cy", "reason": "language"}))
        .await;
    assert_eq!(
        (status, err["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("assignee"))
    );
    let (status, body) = t
        .post(&reassign, json!({"assignee": "ana", "reason": "language"}))
        .await;
    assert_eq!(
        (status, body["assignee"].as_str()),
        (StatusCode::OK, Some("ana"))
    );
    let (status, body) = t
        .post(&format!("/v1/opportunities/{w1}/escalate"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["assignee"], "escalations:west",
        "each team has its own queue"
    );
    t.stop().await;
}

async fn every_operator_action_is_audited(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let id = t.create("lead-1", 300).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let pause = format!("/v1/opportunities/{id}/pause");
    let (status, _) = t.post(&pause, json!({"reason": "customer asked"})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = t.post(&pause, json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT);

    let (status, log) = t.get(&format!("/v1/audit?action=pause&target={id}")).await;
    assert_eq!(status, StatusCode::OK, "{log}");
    let entries = items(&log);
    assert_eq!(entries.len(), 2, "{log}");
    let first = &entries[0];
    assert!(first["principal"].as_str().unwrap().starts_with("nxk_"));
    assert_eq!(first["role"], "owner");
    assert_eq!(first["target_kind"], "opportunity");
    assert_eq!(first["reason"], "customer asked");
    assert_eq!(first["outcome"], "applied");
    assert_eq!(first["before"]["paused"], false);
    assert_eq!(first["after"]["paused"], true);
    assert_eq!(entries[1]["outcome"], "rejected", "refusals are kept too");

    team(&t, "west").await;
    let (_, log) = t.get("/v1/audit?action=team_create").await;
    assert_eq!(items(&log).len(), 1);
    let (_, log) = t.get("/v1/audit?principal=nobody").await;
    assert_eq!(items(&log), Vec::<Value>::new());
    let (_, page) = t.get("/v1/audit?limit=1").await;
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, next) = t.get(&format!("/v1/audit?limit=1&cursor={cursor}")).await;
    assert_ne!(items(&page)[0]["id"], items(&next)[0]["id"]);
    for (query, field) in [
        ("action=explode", "action"),
        ("since=yesterday", "since"),
        ("limit=0", "limit"),
        ("surprise=1", "query"),
        ("principal=%00", "principal"),
    ] {
        let (status, err) = t.get(&format!("/v1/audit?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {err}");
        assert_eq!(err["field"], field, "{err}");
    }
    let viewer = key(&t, "viewer", None, None).await;
    let (status, _) = as_key(&t, &viewer, Method::GET, "/v1/audit", None).await;
    assert_eq!(status, StatusCode::OK);
    let integration = key(&t, "integration", None, None).await;
    let (status, _) = as_key(&t, &integration, Method::GET, "/v1/audit", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Append-only in the database itself, not only in the API.
    let store = t.engine().store().clone();
    assert!(
        refused(&store, "UPDATE audit_log SET reason = 'edited'").await
            && refused(&store, "DELETE FROM audit_log").await,
        "the audit log must refuse updates and deletes"
    );
    t.stop().await;
}

async fn an_operator_cancels_one_timer(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let id = t.create("lead-1", 300).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let cancel = format!("/v1/opportunities/{id}/timers/first_touch_sla/cancel");
    let (status, body) = t.post(&cancel, json!({"reason": "handled by phone"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let names: Vec<&str> = body["timers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(!names.contains(&"first_touch_sla"), "{names:?}");
    let timeline = t.timeline(&id).await;
    let entry = timeline
        .iter()
        .find(|e| e["kind"] == "timer_cancelled")
        .unwrap();
    assert!(entry["reason"]
        .as_str()
        .unwrap()
        .contains("handled by phone"));
    assert!(
        entry["why"].is_null(),
        "an operator's action carries its own reason"
    );
    // A decision carries the rule that fired and what it weighed. The call may still be on its
    // way on a loaded machine: wait for it.
    let placed = eventually(Duration::from_secs(20), "the first call", || async {
        t.timeline(&id)
            .await
            .into_iter()
            .find(|e| e["kind"] == "call_placed")
    })
    .await;
    assert!(
        placed["why"]["rule"].as_str().unwrap().contains("cadence"),
        "{placed}"
    );
    assert_eq!(placed["why"]["inputs"]["attempt"], 1);
    let (status, _) = t.post(&cancel, json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no longer armed");
    let (status, _) = t
        .post(
            &format!("/v1/opportunities/{id}/timers/nonsense/cancel"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, log) = t.get("/v1/audit?action=cancel_timer").await;
    assert_eq!(items(&log).len(), 1);
    t.stop().await;
}

async fn bulk_pause_counts_first_then_acts(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    team(&t, "west").await;
    let mut west = Vec::new();
    for i in 0..2 {
        west.push(create_in(&t, &format!("w-{i}"), Some("west")).await["id"].clone());
    }
    let other = create_in(&t, "o-0", None).await["id"].clone();
    let filter = json!({"team": "west", "stage": "contacting"});

    let (status, dry) = t.post("/v1/bulk/pause", json!({"filter": filter})).await;
    assert_eq!(status, StatusCode::OK, "{dry}");
    assert_eq!(dry, json!({"dry_run": true, "matched": 2}));
    let (_, paused) = t.get("/v1/opportunities?paused=true").await;
    assert_eq!(items(&paused).len(), 0, "a dry run changes nothing");

    let (_, done) = t
        .post(
            "/v1/bulk/pause",
            json!({"filter": filter, "dry_run": false, "reason": "holiday"}),
        )
        .await;
    assert_eq!(done["applied"], 2, "{done}");
    let (_, paused) = t.get("/v1/opportunities?paused=true").await;
    let mut ids: Vec<Value> = items(&paused).iter().map(|o| o["id"].clone()).collect();
    ids.sort_by_key(|v| v.to_string());
    west.sort_by_key(|v| v.to_string());
    assert_eq!(ids, west);
    let (_, theirs) = t
        .get(&format!("/v1/opportunities/{}", other.as_str().unwrap()))
        .await;
    assert_eq!(theirs["paused"], false);
    let (_, log) = t.get("/v1/audit?action=bulk_pause").await;
    assert_eq!(items(&log).len(), 2, "one entry per opportunity");

    let (_, dry) = t
        .post("/v1/bulk/resume", json!({"filter": {"paused": true}}))
        .await;
    assert_eq!(dry["matched"], 2);
    let (_, done) = t
        .post("/v1/bulk/resume", json!({"filter": {}, "dry_run": false}))
        .await;
    assert_eq!(done["applied"], 2, "{done}");
    for (body, field) in [
        (json!({"filter": {"stage": "dreaming"}}), "filter.stage"),
        (json!({"filter": {"team": "nope"}}), "filter.team"),
        (json!({"filter": {"playbook": "nope"}}), "filter.playbook"),
        (json!({"filter": {"colour": "red"}}), "filter"),
    ] {
        let (status, err) = t.post("/v1/bulk/pause", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
        assert!(err["field"].as_str().unwrap().starts_with(field), "{err}");
    }
    let viewer = key(&t, "viewer", None, None).await;
    let (status, _) = as_key(&t, &viewer, Method::POST, "/v1/bulk/pause", Some(json!({}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    t.stop().await;
}

/// Whether the database refuses `sql`.
async fn refused(store: &neuronx_supervision::Store, sql: &str) -> bool {
    match store {
        neuronx_supervision::Store::Postgres(pg) => {
            sqlx::query(sql).execute(pg.pool()).await.is_err()
        }
        neuronx_supervision::Store::Sqlite(lite) => {
            sqlx::query(sql).execute(lite.pool()).await.is_err()
        }
    }
}

/// An action through the engine is logged `pending` before it is submitted (so a crash after
/// the engine's commit cannot lose its entry) and settled after. Settling is the one change the
/// database allows, once; the other columns of a pending entry stay as written.
async fn a_pending_audit_entry_settles_once(backend: Backend) {
    use neuronx::control::audit::{self, AuditAction, Entry, Outcome};
    use neuronx::control::keys::Identity;
    use neuronx::control::Role;
    let t = TestApp::spawn(backend).await;
    let id = t.create("lead-1", 300).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let store = t.engine().store().clone();
    let tenant = neuronx_supervision::TenantId(t.tenant.parse().unwrap());
    let who = Identity {
        tenant,
        key_prefix: neuronx::control::keys::CLI_KEY.to_owned(),
        role: Role::Owner,
        team: None,
        principal: Some("ops".to_owned()),
    };
    let entry = |outcome| Entry {
        action: AuditAction::Pause,
        target_kind: "opportunity",
        target_id: id.clone(),
        reason: Some("night"),
        outcome,
        before: Some(json!({"paused": false})),
        after: None,
    };
    let pending = audit::begin(&store, &who, entry(Outcome::Applied))
        .await
        .unwrap();
    let (_, log) = t.get(&format!("/v1/audit?target={id}")).await;
    let listed = items(&log);
    assert_eq!(listed.len(), 1, "{log}");
    assert_eq!(listed[0]["outcome"], "pending", "begin ignores the outcome");

    // Only the outcome and "after" of a pending entry may change.
    let sql = "UPDATE audit_log SET reason = 'edited' WHERE outcome = 'pending'";
    assert!(
        refused(&store, sql).await,
        "a pending entry's reason is fixed"
    );

    audit::settle(
        &store,
        pending,
        Outcome::Applied,
        Some(json!({"paused": true})),
    )
    .await
    .unwrap();
    // A second settle changes nothing: the entry is final.
    audit::settle(&store, pending, Outcome::Rejected, None)
        .await
        .unwrap();
    let (_, log) = t.get(&format!("/v1/audit?target={id}")).await;
    let listed = items(&log);
    assert_eq!(listed[0]["outcome"], "applied", "{log}");
    assert_eq!(listed[0]["after"], json!({"paused": true}));
    assert_eq!(listed[0]["reason"], "night");
    let sql = "UPDATE audit_log SET outcome = 'rejected'";
    assert!(refused(&store, sql).await, "a settled entry is final");

    // Through the API the entry is settled before the answer: never left pending.
    let (status, body) = t
        .post(
            &format!("/v1/opportunities/{id}/pause"),
            json!({"reason": "r"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, log) = t.get(&format!("/v1/audit?action=pause&target={id}")).await;
    let outcomes: Vec<String> = items(&log)
        .iter()
        .map(|e| e["outcome"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(outcomes, vec!["applied", "applied"], "{log}");
    t.stop().await;
}

/// A product change and its audit entry are one transaction: when the entry cannot be written
/// the change is not made either (they used to be two statements, so a crash between left a
/// team, key or do-not-call entry the log never recorded).
async fn a_change_and_its_audit_entry_land_together(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let store = t.engine().store().clone();
    // The log refuses entries of these actions from now on.
    match &store {
        neuronx_supervision::Store::Postgres(pg) => {
            for sql in [
                "CREATE FUNCTION refuse_entry() RETURNS trigger LANGUAGE plpgsql AS $$
                 BEGIN RAISE EXCEPTION 'refused'; END; $$",
                "CREATE TRIGGER refuse_some BEFORE INSERT ON audit_log FOR EACH ROW
                 WHEN (NEW.action IN ('team_create', 'dnc_add', 'key_revoke'))
                 EXECUTE FUNCTION refuse_entry()",
            ] {
                sqlx::query(sql).execute(pg.pool()).await.unwrap();
            }
        }
        neuronx_supervision::Store::Sqlite(lite) => {
            sqlx::query(
                "CREATE TRIGGER refuse_some BEFORE INSERT ON audit_log
                 WHEN NEW.action IN ('team_create', 'dnc_add', 'key_revoke')
                 BEGIN SELECT RAISE(ABORT, 'refused'); END",
            )
            .execute(lite.pool())
            .await
            .unwrap();
        }
    }
    let (status, _) = t.post("/v1/teams", json!({"name": "west"})).await;
    assert!(status.is_server_error(), "{status}");
    let (_, teams) = t.get("/v1/teams").await;
    assert_eq!(
        items(&teams),
        Vec::<Value>::new(),
        "no team without its entry"
    );

    let (status, _) = t.post("/v1/dnc", json!({"phone": "+14155552671"})).await;
    assert!(status.is_server_error(), "{status}");
    let tenant = neuronx_supervision::TenantId(t.tenant.parse().unwrap());
    let listed = neuronx::tenant_data::on_dnc(&store, tenant, "+14155552671")
        .await
        .unwrap();
    assert!(!listed, "no number without its entry");

    let viewer = key(&t, "viewer", None, None).await;
    let (_, keys) = t.get("/v1/keys").await;
    let id = items(&keys)
        .into_iter()
        .find(|k| viewer.starts_with(k["prefix"].as_str().unwrap()))
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = t
        .request(
            Method::DELETE,
            &format!("/v1/keys/{id}"),
            Some(&t.key),
            None,
        )
        .await;
    assert!(status.is_server_error(), "{status}");
    let (status, _) = as_key(&t, &viewer, Method::GET, "/v1/opportunities", None).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the key still works: its revocation rolled back"
    );
    t.stop().await;
}

async fn dead_letters_are_retried_or_discarded(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let id = t.create("lead-1", 300).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let letter = poison(&t, &id, "poison-1").await;
    let first = letter["id"].as_i64().unwrap();
    let viewer = key(&t, "viewer", None, None).await;
    let retry = format!("/v1/dead-letters/{first}/retry");
    let (status, _) = as_key(&t, &viewer, Method::POST, &retry, Some(json!({}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let other = neuronx::tenants::create(t.engine().store(), "other")
        .await
        .unwrap()
        .api_key;
    let (status, _) = as_key(&t, &other, Method::POST, &retry, Some(json!({}))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Retrying the same poison fails again: a new letter replaces the retried one.
    let (status, body) = t.post(&retry, json!({"reason": "after the fix"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "retried");
    let again = eventually(Duration::from_secs(15), "the retried letter", || async {
        let (_, body) = t.get("/v1/dead-letters").await;
        items(&body)
            .into_iter()
            .find(|l| l["id"].as_i64() != Some(first))
    })
    .await;
    let (_, all) = t.get("/v1/dead-letters").await;
    assert_eq!(items(&all).len(), 1, "the retried letter is gone: {all}");

    let second = again["id"].as_i64().unwrap();
    let (status, body) = t
        .post(&format!("/v1/dead-letters/{second}/discard"), json!({}))
        .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("discarded"))
    );
    let (_, all) = t.get("/v1/dead-letters").await;
    assert_eq!(items(&all), Vec::<Value>::new());
    let (status, _) = t
        .post(&format!("/v1/dead-letters/{second}/discard"), json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, log) = t.get("/v1/audit?target_kind=dead_letter").await;
    assert_eq!(log["field"], "query", "unknown filters are refused");
    let (_, retried) = t.get("/v1/audit?action=dead_letter_retry").await;
    let (_, discarded) = t.get("/v1/audit?action=dead_letter_discard").await;
    assert_eq!((items(&retried).len(), items(&discarded).len()), (1, 1));
    t.stop().await;
}

/// A team-scoped key never reaches past its team: an opportunity created in the team with an
/// explicit assignee is still the team's; repeating an unbound opportunity's external id does
/// not pull it in; an admin of the team mints access for the team only; the audit log shows it
/// only what was done to its team's opportunities.
async fn team_scoped_keys_stay_in_their_team(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    team(&t, "west").await;
    team(&t, "east").await;
    principal(&t, "ana", "operator", Some("west")).await;
    let west_ops = key(&t, "operator", Some("west"), None).await;

    let mut lead = common::lead("assigned", 300);
    lead["team"] = json!("west");
    lead["assignee"] = json!("ana");
    let (status, created) = t.post("/v1/opportunities", lead).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap();
    let (status, body) = as_key(
        &t,
        &west_ops,
        Method::GET,
        &format!("/v1/opportunities/{id}"),
        None,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "bound to its team despite the assignee: {body}"
    );

    let unbound = create_in(&t, "unbound", None).await;
    let unbound_id = unbound["id"].as_str().unwrap();
    let feeder = key(&t, "integration", Some("west"), None).await;
    let (status, _) = as_key(
        &t,
        &feeder,
        Method::POST,
        "/v1/opportunities",
        Some(common::lead("unbound", 300)),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = as_key(
        &t,
        &west_ops,
        Method::GET,
        &format!("/v1/opportunities/{unbound_id}"),
        None,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a repeated external id does not bind it"
    );

    let west_admin = key(&t, "admin", Some("west"), None).await;
    for body in [
        json!({"name": "wide", "role": "operator"}),
        json!({"name": "east", "role": "operator", "team": "east"}),
    ] {
        let (status, made) = as_key(
            &t,
            &west_admin,
            Method::POST,
            "/v1/keys",
            Some(body.clone()),
        )
        .await;
        match body.get("team") {
            None => {
                assert_eq!(status, StatusCode::CREATED, "{made}");
                assert_eq!(made["team"], "west", "defaults to the admin's team: {made}");
            }
            Some(_) => assert_eq!(
                (status, made["field"].as_str()),
                (StatusCode::BAD_REQUEST, Some("team")),
                "{made}"
            ),
        }
    }
    let (status, made) = as_key(
        &t,
        &west_admin,
        Method::POST,
        "/v1/principals",
        Some(json!({"name": "ed", "role": "operator", "team": "east"})),
    )
    .await;
    assert_eq!(
        (status, made["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("team")),
        "{made}"
    );

    let east_opp = create_in(&t, "east-1", Some("east")).await;
    let east_id = east_opp["id"].as_str().unwrap();
    let (status, _) = t
        .post(&format!("/v1/opportunities/{east_id}/pause"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = t
        .post(&format!("/v1/opportunities/{id}/pause"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let west_viewer = key(&t, "viewer", Some("west"), None).await;
    let (status, log) = as_key(&t, &west_viewer, Method::GET, "/v1/audit", None).await;
    assert_eq!(status, StatusCode::OK, "{log}");
    let targets: Vec<&str> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["target_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        targets,
        vec![id],
        "only the west opportunity's entries: {log}"
    );
    let (_, all) = t.get("/v1/audit").await;
    assert!(items(&all).len() > 1, "the owner sees everything");
    t.stop().await;
}

both_backends!(
    a_pending_audit_entry_settles_once,
    a_change_and_its_audit_entry_land_together,
    dead_letters_are_retried_or_discarded,
    keys_are_shown_once_scoped_and_revocable,
    team_opportunities_go_round_robin_and_stay_in_their_team,
    every_operator_action_is_audited,
    an_operator_cancels_one_timer,
    bulk_pause_counts_first_then_acts,
    team_scoped_keys_stay_in_their_team,
);
