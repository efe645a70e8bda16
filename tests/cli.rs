#![allow(clippy::unwrap_used)]
//! `neuronx tenant ...` as a user runs it: the real binary on a fresh database, its JSON
//! output and its exit codes. Runs on PostgreSQL and on SQLite.

mod common;

use common::Backend;
use serde_json::Value;

/// Runs `neuronx tenant ...` against `database_url`; returns the exit code, stdout and stderr.
fn cli(database_url: &str, args: &[&str]) -> (i32, Value, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_neuronx"))
        .arg("tenant")
        .args(args)
        .env("NEURONX_DATABASE_URL", database_url)
        .env("NEURONX_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code().unwrap_or(-1), json, stderr)
}

async fn the_tenant_command_manages_teams_principals_and_keys(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let url = common::fresh_database(backend, &dir).await;
    let (code, created, err) = cli(&url, &["create", "acme"]);
    assert_eq!(code, 0, "{err}");
    let tenant = created["tenant_id"].as_str().unwrap().to_owned();
    assert!(created["api_key"].as_str().unwrap().starts_with("nxk_"));
    let t = ["--tenant", tenant.as_str()];

    let (code, _, err) = cli(&url, &["team", "create", t[0], t[1], "west"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = cli(&url, &["team", "create", t[0], t[1], "west"]);
    assert_eq!(code, 1);
    assert!(err.contains("already exists"), "{err}");
    let (code, teams, _) = cli(&url, &["team", "list", t[0], t[1]]);
    assert_eq!(
        (code, teams["items"][0]["name"].as_str()),
        (0, Some("west"))
    );

    let p = [
        "principal",
        "create",
        t[0],
        t[1],
        "--name",
        "ana",
        "--role",
        "operator",
    ];
    let (code, ana, err) = cli(&url, &[&p[..], &["--team", "west"]].concat());
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        (ana["team"].as_str(), ana["kind"].as_str()),
        (Some("west"), Some("user"))
    );
    let (code, _, err) = cli(&url, &[&p[..], &["--team", "north"]].concat());
    assert_eq!(code, 1);
    assert!(err.contains("no team named"), "{err}");
    let (code, listed, _) = cli(&url, &["principal", "list", t[0], t[1], "--team", "west"]);
    assert_eq!((code, listed["items"].as_array().unwrap().len()), (0, 1));

    let k = [
        "key",
        "create",
        t[0],
        t[1],
        "--name",
        "ana's key",
        "--role",
        "operator",
    ];
    let (code, key, err) = cli(
        &url,
        &[&k[..], &["--team", "west", "--principal", "ana"]].concat(),
    );
    assert_eq!(code, 0, "{err}");
    let secret = key["key"].as_str().unwrap().to_owned();
    let id = key["id"].as_str().unwrap().to_owned();
    let (code, keys, _) = cli(&url, &["key", "list", t[0], t[1]]);
    assert_eq!(code, 0);
    assert_eq!(keys["items"].as_array().unwrap().len(), 2);
    assert!(
        !keys.to_string().contains(&secret),
        "lists never show a secret"
    );
    let (code, revoked, _) = cli(&url, &["key", "revoke", t[0], t[1], &id]);
    assert_eq!(code, 0);
    assert!(revoked["revoked_at"].is_string());

    let (code, _, err) = cli(
        &url,
        &["key", "create", t[0], t[1], "--name", "x", "--role", "root"],
    );
    assert_eq!(code, 2, "a bad argument is a usage error");
    assert!(err.contains("unknown role"), "{err}");
    let nobody = uuid::Uuid::new_v4().to_string();
    let (code, _, err) = cli(&url, &["team", "list", "--tenant", &nobody]);
    assert_eq!(code, 1);
    assert!(err.contains("no tenant"), "{err}");
    let (code, _, err) = cli(&url, &["key", "revoke", t[0], t[1], "000000000000"]);
    assert_eq!(code, 1);
    assert!(err.contains("key not found"), "{err}");
}

both_backends!(the_tenant_command_manages_teams_principals_and_keys);
