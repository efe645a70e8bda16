#![allow(clippy::unwrap_used)]
//! `neuronx` as a user runs it: the real binary on a fresh database, its JSON output and its
//! exit codes (`tenant ...` on PostgreSQL and on SQLite), its help and version, and how it
//! refuses a bad setting.

#[path = "../../tests/common/mod.rs"]
mod common;

use common::Backend;
use serde_json::Value;

/// Runs `neuronx tenant ...` against `database_url`; returns the exit code, stdout and stderr.
fn cli(database_url: &str, args: &[&str]) -> (i32, Value, String) {
    command(database_url, "tenant", args)
}

/// Runs `neuronx <name> ...` against `database_url`; returns the exit code, stdout and stderr.
fn command(database_url: &str, name: &str, args: &[&str]) -> (i32, Value, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_neuronx"))
        .arg(name)
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

async fn the_number_command_manages_the_pool(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let url = common::fresh_database(backend, &dir).await;
    let (code, created, err) = cli(&url, &["create", "acme"]);
    assert_eq!(code, 0, "{err}");
    let tenant = created["tenant_id"].as_str().unwrap().to_owned();
    let t = ["--tenant", tenant.as_str()];
    let (code, _, err) = cli(&url, &["team", "create", t[0], t[1], "texas"]);
    assert_eq!(code, 0, "{err}");
    let number = |args: &[&str]| command(&url, "number", args);

    let (code, added, err) = number(&[
        "add",
        t[0],
        t[1],
        "+1 512 555 0100",
        "--team",
        "texas",
        "--label",
        "Austin",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(added["number"], "+15125550100");
    assert_eq!(
        (added["team"].as_str(), added["state"].as_str()),
        (Some("texas"), Some("TX"))
    );
    let (code, _, err) = number(&["add", t[0], t[1], "5125550100"]);
    assert_eq!(code, 1);
    assert!(err.contains("invalid number"), "{err}");
    let (code, _, err) = number(&["add", t[0], t[1], "+12125550100", "--team", "nowhere"]);
    assert_eq!(code, 1);
    assert!(err.contains("no team named"), "{err}");
    let (code, listed, _) = number(&["list", t[0], t[1]]);
    assert_eq!((code, listed["items"].as_array().unwrap().len()), (0, 1));
    let (code, removed, err) = number(&["remove", t[0], t[1], "+15125550100"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(removed["removed"]["label"], "Austin");
    let (code, _, err) = number(&["remove", t[0], t[1], "+15125550100"]);
    assert_eq!(code, 1);
    assert!(err.contains("number not found"), "{err}");
}

both_backends!(
    the_tenant_command_manages_teams_principals_and_keys,
    the_number_command_manages_the_pool,
);

/// Runs the binary with `args` and exactly the `NEURONX_*` variables of `env` (the test's own
/// environment may hold others, e.g. NEURONX_TEST_PG_URL); returns the exit code, stdout and
/// stderr.
fn neuronx(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_neuronx"));
    for (var, _) in std::env::vars().filter(|(var, _)| var.starts_with("NEURONX_")) {
        cmd.env_remove(var);
    }
    let out = cmd.args(args).envs(env.iter().copied()).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_version_names_the_commit() {
    let (code, out, err) = neuronx(&["--version"], &[]);
    assert_eq!(code, 0, "{err}");
    let prefix = format!("neuronx {} (commit ", env!("CARGO_PKG_VERSION"));
    let commit = out
        .trim_end()
        .strip_prefix(&prefix)
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{out:?}"));
    let hash = commit.strip_suffix("-dirty").unwrap_or(commit);
    // The workspace's checkout, as cli/build.rs looks for it.
    let in_git = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../.git")
        .exists();
    if in_git {
        assert!(
            hash.len() >= 7 && hash.chars().all(|c| c.is_ascii_hexdigit()),
            "{out:?}"
        );
    } else {
        assert_eq!(commit, "unknown");
    }
}

#[test]
fn serve_help_ends_with_the_environment_variables() {
    let (code, out, err) = neuronx(&["serve", "--help"], &[]);
    assert_eq!(code, 0, "{err}");
    let tail = &out[out
        .find("Environment variables")
        .unwrap_or_else(|| panic!("{out}"))..];
    for var in [
        "NEURONX_<SECTION>__<KEY>",
        "NEURONX_DATABASE_URL",
        "NEURONX_PUBLIC_URL",
        "NEURONX_SECRET_KEYS",
        "NEURONX_LOG ",
        "NEURONX_LOG_FORMAT",
    ] {
        assert!(tail.contains(var), "{var} missing from:\n{out}");
    }
    assert!(out.trim_end().ends_with("docs/configuration.md"), "{out}");
}

#[test]
fn a_bad_setting_stops_the_command_naming_its_variable() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    let db = ("NEURONX_DATABASE_URL", db.as_str());
    for (var, value, says) in [
        (
            "NEURONX_ENGINE__SHARD_COUNT",
            "abc",
            "engine.shard_count: invalid type",
        ),
        ("NEURONX_ENGINE__SHARD_CONT", "64", "engine.shard_cont"),
        ("NEURONX_PUBLIC_URL", "example.com", "server.public_url"),
        ("NEURONX_LOG", "info,sqlx=loud", "NEURONX_LOG: "),
    ] {
        let (code, _, err) = neuronx(&["migrate"], &[db, (var, value)]);
        assert_eq!(code, 1, "{var}={value}: {err}");
        assert!(err.contains(says), "{var}={value}: {err}");
        assert!(err.contains(var), "{var}={value}: {err}");
    }
    let (code, _, err) = neuronx(
        &["tenant", "create", "acme"],
        &[db, ("NEURONX_LIMITS__SMS_BURST", "0")],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("limits.sms_burst"), "{err}");
    assert!(
        !dir.path().join("db.sqlite").exists(),
        "refused before the database is touched"
    );
}

#[test]
fn a_setting_from_the_environment_reaches_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    let db = ("NEURONX_DATABASE_URL", db.as_str());
    let (code, _, err) = neuronx(&["migrate"], &[db, ("NEURONX_ENGINE__SHARD_COUNT", "64")]);
    assert_eq!(code, 0, "{err}");
    // The shard count is written when the database is created: another one is now refused.
    let (code, _, err) = neuronx(&["migrate"], &[db]);
    assert_eq!(code, 1);
    assert!(err.contains("has 64 shards"), "{err}");
}

/// The README's first command, smaller: `neuronx demo` runs the engine, the carrier simulator
/// and an SMTP server in one process and ends with its summary table. Every lead consented to
/// email and gets the playbook's first email; the night leads escalate, and the reps hear of it
/// by text and by email; a lead's email reply lands on its thread; no effect goes out twice.
#[test]
fn the_demo_reaches_leads_by_phone_text_and_email_and_reps_by_notice() {
    let (code, out, err) = neuronx(&["demo", "--leads", "20", "--max-seconds", "120"], &[]);
    assert_eq!(code, 0, "{err}");
    let row = |label: &str| -> u64 {
        out.lines()
            .find_map(|l| {
                let cells: Vec<&str> = l.split('│').map(str::trim).collect();
                (cells.get(1) == Some(&label)).then(|| cells[2].trim_end_matches(" ms").parse())
            })
            .unwrap_or_else(|| panic!("no row {label:?} in {out}"))
            .unwrap()
    };
    assert_eq!(row("leads"), 20, "{out}");
    assert_eq!(row("emails to leads"), 20, "{out}");
    assert_eq!(row("duplicate sends"), 0, "{out}");
    assert!(row("calls placed") >= 18, "{out}");
    assert!(row("escalations") >= 2, "{out}");
    assert!(row("emails to reps") >= 1, "{out}");
    // One lead in five answers its email through the demo's mail relay (Mailgun's protocol):
    // leads 2, 7, 12 and 17, each on its own thread.
    assert_eq!(row("email replies"), 4, "{out}");
    // One lead in ten calls the tenant's number back: leads 4 and 14.
    assert_eq!(row("calls from leads"), 2, "{out}");
    assert!(row("SMS to reps (notices)") >= 1, "{out}");
    assert!(out.contains("stages: "), "{out}");
}
