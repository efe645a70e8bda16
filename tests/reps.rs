#![allow(clippy::unwrap_used)]
//! Reps and their availability (issue #14): the API round trip, hostile input for every field,
//! team scope, the audit log, and `offer`, the call flow's choice of whom to ring: its order,
//! its exclusions, working hours, most calls, simultaneous ringing and, on PostgreSQL, two
//! offers racing for one free rep. Every test but the race runs on PostgreSQL and on SQLite.

#[path = "common/access.rs"]
mod access;
mod common;
#[path = "reps/offers.rs"]
mod offers;

use access::{as_key, key, principal, team};
use common::{Backend, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn items(v: &Value) -> Vec<Value> {
    v["items"].as_array().cloned().unwrap_or_default()
}

async fn put(t: &TestApp, path: &str, body: Value) -> (StatusCode, Value) {
    t.request(Method::PUT, path, Some(&t.key), Some(body)).await
}

async fn reps_round_trip_and_refuse_bad_input(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    team(&t, "west").await;
    principal(&t, "ana", "operator", Some("west")).await;
    principal(&t, "bo", "operator", None).await;
    let (status, bot) = t
        .post(
            "/v1/principals",
            json!({"name": "bot", "role": "integration", "kind": "service_account"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{bot}");

    let (status, rep) = put(
        &t,
        "/v1/principals/ana/rep",
        json!({"phone": "+1 415 555 2671", "time_zone": "America/New_York"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{rep}");
    assert_eq!(rep["name"], "ana");
    assert_eq!(rep["team"], "west");
    assert_eq!(rep["phone"], "+14155552671", "stored E.164");
    assert_eq!(rep["status"], "offline", "a new rep is offline");
    assert_eq!(rep["effective_status"], "offline");
    assert_eq!(rep["max_calls"], 1);
    assert_eq!(rep["live_calls"], 0);
    assert_eq!(rep["in_hours"], true, "no hours: any time");
    assert!(rep["working_hours"].is_null());

    let (status, rep) = t
        .post("/v1/principals/ana/status", json!({"status": "available"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{rep}");
    assert_eq!(rep["effective_status"], "available");
    let hours = json!({"days": ["sat", "mon", "tue"], "from": "22:00", "to": "06:00"});
    let (status, rep) = put(
        &t,
        "/v1/principals/ana/rep",
        json!({"phone": "+14155552671", "time_zone": "Europe/Paris",
               "working_hours": hours, "max_calls": 3}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{rep}");
    assert_eq!(rep["status"], "available", "a new profile keeps the status");
    assert_eq!(rep["max_calls"], 3);
    assert_eq!(
        rep["working_hours"],
        json!({"days": ["mon", "tue", "sat"], "from": "22:00", "to": "06:00"})
    );

    let (_, before) = t.get("/v1/reps").await;
    assert_eq!(items(&before).len(), 1, "{before}");
    let rep_path = "/v1/principals/ana/rep";
    let ok = |extra: Value| {
        let mut b = json!({"phone": "+14155552671", "time_zone": "UTC"});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    let hours = |days: Value, from: &str, to: &str| json!({"working_hours": {"days": days, "from": from, "to": to}});
    let refusals = [
        (
            rep_path,
            json!({"phone": "555", "time_zone": "UTC"}),
            "phone",
        ),
        (
            rep_path,
            json!({"phone": "+1415", "time_zone": "UTC"}),
            "phone",
        ),
        (
            rep_path,
            json!({"phone": 14155552671_i64, "time_zone": "UTC"}),
            "phone",
        ),
        (rep_path, json!({"time_zone": "UTC"}), "phone"),
        (
            rep_path,
            json!({"phone": "+14155552671", "time_zone": "Mars/Base"}),
            "time_zone",
        ),
        (rep_path, json!({"phone": "+14155552671"}), "time_zone"),
        (rep_path, ok(json!({"max_calls": 0})), "max_calls"),
        (rep_path, ok(json!({"max_calls": 11})), "max_calls"),
        (rep_path, ok(json!({"max_calls": -1})), "max_calls"),
        (rep_path, ok(json!({"max_calls": 1.5})), "max_calls"),
        (rep_path, ok(json!({"max_calls": "2"})), "max_calls"),
        (
            rep_path,
            ok(hours(json!([]), "09:00", "17:00")),
            "working_hours.days",
        ),
        (
            rep_path,
            ok(hours(json!(["funday"]), "09:00", "17:00")),
            "working_hours.days",
        ),
        (
            rep_path,
            ok(hours(json!("mon"), "09:00", "17:00")),
            "working_hours.days",
        ),
        (
            rep_path,
            ok(hours(json!(["mon"]), "9am", "17:00")),
            "working_hours.from",
        ),
        (
            rep_path,
            ok(hours(json!(["mon"]), "24:00", "17:00")),
            "working_hours.from",
        ),
        (
            rep_path,
            ok(hours(json!(["mon"]), "09:00", "25:00")),
            "working_hours.to",
        ),
        (
            rep_path,
            ok(hours(json!(["mon"]), "09:00", "09:00")),
            "working_hours.to",
        ),
        (
            rep_path,
            ok(json!({"working_hours": {"days": ["mon"], "from": "09:00"}})),
            "working_hours.to",
        ),
        (
            rep_path,
            ok(
                json!({"working_hours": {"days": ["mon"], "from": "09:00", "to": "17:00",
                                        "tz": "UTC"}}),
            ),
            "working_hours",
        ),
        (rep_path, ok(json!({"colour": "blue"})), "colour"),
        ("/v1/principals/bot/rep", ok(json!({})), "name"),
    ];
    for (path, body, field) in refusals {
        let (status, err) = put(&t, path, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {body}: {err}");
        assert_eq!(err["error"], "invalid_request", "{err}");
        assert!(
            err["field"].as_str().unwrap().starts_with(field),
            "{body}: expected {field}, got {err}"
        );
    }
    let status_path = "/v1/principals/ana/status";
    for (body, field) in [
        (json!({"status": "busy"}), "status"),
        (json!({"status": "sleeping"}), "status"),
        (json!({"status": "Available"}), "status"),
        (json!({"status": null}), "status"),
        (json!({}), "status"),
        (json!({"status": "away", "until": "5pm"}), "until"),
    ] {
        let (status, err) = t.post(status_path, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {err}");
        assert_eq!(err["field"], field, "{body}: {err}");
    }
    for (body, field) in [
        (
            json!({"strategy": "random", "ring_timeout_seconds": 20}),
            "strategy",
        ),
        (
            json!({"strategy": "sequential", "ring_timeout_seconds": 4}),
            "ring_timeout_seconds",
        ),
        (
            json!({"strategy": "sequential", "ring_timeout_seconds": 121}),
            "ring_timeout_seconds",
        ),
        (
            json!({"strategy": "sequential", "ring_timeout_seconds": "20"}),
            "ring_timeout_seconds",
        ),
        (json!({"strategy": "sequential"}), "ring_timeout_seconds"),
    ] {
        let (status, err) = put(&t, "/v1/teams/west/ringing", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {err}");
        assert_eq!(err["field"], field, "{body}: {err}");
    }
    // Unknown names, a name no query may see, a user that is no rep: not found.
    for (path, body) in [
        ("/v1/principals/nobody/rep", ok(json!({}))),
        ("/v1/principals/%00/rep", ok(json!({}))),
        ("/v1/principals/nobody/status", json!({"status": "away"})),
        ("/v1/principals/%00/status", json!({"status": "away"})),
        ("/v1/principals/bo/status", json!({"status": "away"})),
    ] {
        let method = if path.ends_with("/rep") {
            Method::PUT
        } else {
            Method::POST
        };
        let (status, err) = t.request(method, path, Some(&t.key), Some(body)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {err}");
    }
    let ringing = json!({"strategy": "simultaneous", "ring_timeout_seconds": 30});
    for path in ["/v1/teams/east/ringing", "/v1/teams/%00/ringing"] {
        let (status, err) = put(&t, path, ringing.clone()).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {err}");
    }
    let (_, after) = t.get("/v1/reps").await;
    assert_eq!(after, before, "nothing refused was written");

    let (status, west) = put(&t, "/v1/teams/west/ringing", ringing).await;
    assert_eq!(status, StatusCode::OK, "{west}");
    assert_eq!(west["ring_strategy"], "simultaneous");
    assert_eq!(west["ring_timeout_seconds"], 30);
    let (_, teams) = t.get("/v1/teams").await;
    assert_eq!(items(&teams)[0]["ring_strategy"], "simultaneous", "{teams}");
    assert_eq!(items(&teams)[0]["ring_timeout_seconds"], 30, "{teams}");

    // Every change is in the log, with the object before and after.
    for (action, count) in [("rep_update", 2), ("rep_status", 1), ("team_ringing", 1)] {
        let (_, log) = t.get(&format!("/v1/audit?action={action}")).await;
        let entries = items(&log);
        assert_eq!(entries.len(), count, "{action}: {log}");
        assert!(entries[0]["after"].is_object(), "{log}");
    }
    let (_, log) = t.get("/v1/audit?action=rep_update").await;
    let first = items(&log)
        .into_iter()
        .find(|e| e["before"].is_null())
        .unwrap();
    assert_eq!(first["after"]["status"], "offline", "{first}");
    t.stop().await;
}

async fn team_keys_stay_in_their_team_and_reps_set_their_own_status(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    team(&t, "west").await;
    team(&t, "east").await;
    principal(&t, "ana", "operator", Some("west")).await;
    principal(&t, "cy", "operator", Some("east")).await;
    for name in ["ana", "cy"] {
        let (status, body) = put(
            &t,
            &format!("/v1/principals/{name}/rep"),
            json!({"phone": "+14155552671", "time_zone": "UTC"}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let west_admin = key(&t, "admin", Some("west"), None).await;
    let (status, list) = as_key(&t, &west_admin, Method::GET, "/v1/reps", None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let names: Vec<Value> = items(&list).iter().map(|r| r["name"].clone()).collect();
    assert_eq!(names, vec![json!("ana")], "{list}");
    let (status, err) = as_key(&t, &west_admin, Method::GET, "/v1/reps?team=east", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert_eq!(err["field"], "team");
    let (_, list) = t.get("/v1/reps?team=east").await;
    assert_eq!(items(&list)[0]["name"], "cy", "{list}");
    let profile = json!({"phone": "+14155552671", "time_zone": "UTC"});
    for (method, path, body) in [
        (Method::PUT, "/v1/principals/cy/rep", profile.clone()),
        (
            Method::POST,
            "/v1/principals/cy/status",
            json!({"status": "away"}),
        ),
        (
            Method::PUT,
            "/v1/teams/east/ringing",
            json!({"strategy": "sequential", "ring_timeout_seconds": 10}),
        ),
    ] {
        let (status, err) = as_key(&t, &west_admin, method, path, Some(body)).await;
        assert_eq!(
            status,
            StatusCode::NOT_FOUND,
            "{path}: another team's: {err}"
        );
    }
    let (status, body) = as_key(
        &t,
        &west_admin,
        Method::PUT,
        "/v1/principals/ana/rep",
        Some(profile.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "its own team's: {body}");

    // A rep's own key sets its own status (an operator manages no principals) and nobody
    // else's.
    let ana = key(&t, "operator", Some("west"), Some("ana")).await;
    let (status, rep) = as_key(
        &t,
        &ana,
        Method::POST,
        "/v1/principals/ana/status",
        Some(json!({"status": "available"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{rep}");
    assert_eq!(rep["status"], "available");
    for (method, path, body) in [
        (
            Method::POST,
            "/v1/principals/cy/status",
            json!({"status": "away"}),
        ),
        (Method::PUT, "/v1/principals/ana/rep", profile),
    ] {
        let (status, err) = as_key(&t, &ana, method, path, Some(body)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {err}");
    }
    let (_, log) = t.get("/v1/audit?action=rep_status").await;
    let entry = &items(&log)[0];
    assert_eq!(entry["principal"], "ana", "{entry}");
    assert_eq!(entry["before"]["status"], "offline", "{entry}");
    assert_eq!(entry["after"]["status"], "available", "{entry}");

    // Another tenant's key finds none of it.
    let other = neuronx::tenants::create(t.engine().store(), "other")
        .await
        .unwrap()
        .api_key;
    let (_, list) = as_key(&t, &other, Method::GET, "/v1/reps", None).await;
    assert_eq!(items(&list), Vec::<Value>::new());
    let (status, _) = as_key(
        &t,
        &other,
        Method::POST,
        "/v1/principals/ana/status",
        Some(json!({"status": "away"})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "not in its tenant");
    t.stop().await;
}

/// A change whose audit entry the database refuses is not made: they share one transaction.
async fn a_rep_change_and_its_audit_entry_land_together(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    team(&t, "west").await;
    principal(&t, "ana", "operator", Some("west")).await;
    let profile = json!({"phone": "+14155552671", "time_zone": "UTC"});
    let (status, _) = put(&t, "/v1/principals/ana/rep", profile.clone()).await;
    assert_eq!(status, StatusCode::OK);
    let refused = "('rep_update', 'rep_status', 'team_ringing')";
    match t.engine().store() {
        neuronx_supervision::Store::Postgres(pg) => {
            for sql in [
                "CREATE FUNCTION refuse_entry() RETURNS trigger LANGUAGE plpgsql AS $$
                 BEGIN RAISE EXCEPTION 'refused'; END; $$"
                    .to_owned(),
                format!(
                    "CREATE TRIGGER refuse_some BEFORE INSERT ON audit_log FOR EACH ROW
                     WHEN (NEW.action IN {refused}) EXECUTE FUNCTION refuse_entry()"
                ),
            ] {
                sqlx::query(&sql).execute(pg.pool()).await.unwrap();
            }
        }
        neuronx_supervision::Store::Sqlite(lite) => {
            let sql = format!(
                "CREATE TRIGGER refuse_some BEFORE INSERT ON audit_log
                 WHEN NEW.action IN {refused} BEGIN SELECT RAISE(ABORT, 'refused'); END"
            );
            sqlx::query(&sql).execute(lite.pool()).await.unwrap();
        }
    }
    let (_, before) = t.get("/v1/reps").await;
    let (_, teams) = t.get("/v1/teams").await;
    let mut changed = profile;
    changed["max_calls"] = json!(4);
    let (status, _) = put(&t, "/v1/principals/ana/rep", changed).await;
    assert!(status.is_server_error(), "{status}");
    let (status, _) = t
        .post("/v1/principals/ana/status", json!({"status": "available"}))
        .await;
    assert!(status.is_server_error(), "{status}");
    let ringing = json!({"strategy": "simultaneous", "ring_timeout_seconds": 30});
    let (status, _) = put(&t, "/v1/teams/west/ringing", ringing).await;
    assert!(status.is_server_error(), "{status}");
    assert_eq!(
        t.get("/v1/reps").await.1,
        before,
        "no rep change without its entry"
    );
    assert_eq!(
        t.get("/v1/teams").await.1,
        teams,
        "no ringing without its entry"
    );
    t.stop().await;
}

both_backends!(
    reps_round_trip_and_refuse_bad_input,
    team_keys_stay_in_their_team_and_reps_set_their_own_status,
    a_rep_change_and_its_audit_entry_land_together,
);
