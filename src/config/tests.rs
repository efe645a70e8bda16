use super::*;

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn refusal(file: Option<&Path>, vars: &[(&str, &str)]) -> String {
    format!("{:#}", Settings::load(file, &env(vars)).unwrap_err())
}

fn file(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

#[test]
fn the_embedded_default_loads_and_defaults_to_sqlite() {
    let s = Settings::load(None, &BTreeMap::new()).unwrap();
    assert_eq!(s.server.database_url, "sqlite://neuronx.db");
    assert_eq!(s.engine.shard_count, 256);
    assert!(s.playbooks().unwrap().contains_key("speed-to-lead"));
    assert!(s.compliance_rules().unwrap().state("FL").is_some());
}

#[test]
fn environment_overrides_the_file() {
    let (_dir, path) = file("[server]\ndatabase_url = \"sqlite://file.db\"\n");
    let vars = [("NEURONX_DATABASE_URL", "postgres://x@localhost/db")];
    let s = Settings::load(Some(&path), &env(&vars)).unwrap();
    assert_eq!(s.server.database_url, "postgres://x@localhost/db");
    assert_eq!(
        Settings::load(Some(&path), &BTreeMap::new())
            .unwrap()
            .server
            .database_url,
        "sqlite://file.db"
    );
}

#[test]
fn an_unknown_key_is_refused_with_its_name() {
    let (_dir, path) = file("[engine]\nshard_cont = 3\n");
    let err = refusal(Some(&path), &[]);
    assert!(err.contains("engine.shard_cont"), "{err}");
    assert!(err.contains(&path.display().to_string()), "{err}");
}

#[test]
fn one_key_of_every_section_is_set_from_its_variable() {
    let s = Settings::load(
        None,
        &env(&[
            ("NEURONX_SERVER__MAX_CONNECTIONS", "7"),
            ("NEURONX_SERVER__INSTANCE_ID", "123"),
            ("NEURONX_ENGINE__SHARD_COUNT", "64"),
            ("NEURONX_PLAYBOOKS__DEFAULT", "demo"),
            ("NEURONX_CHANNELS__LOOPBACK__RING_AFTER_MS", "321"),
            ("NEURONX_SECRETS__KEYS", "k2:abc, k1:def,"),
            ("NEURONX_COMPLIANCE__RULES_FILE", "/etc/rules.toml"),
            ("NEURONX_LIMITS__VOICE_PER_SECOND", "12.5"),
            ("NEURONX_LIMITS__SMS_BURST", "7"),
            ("NEURONX_OUTBOUND__ALLOW", "127.0.0.0/8,::1"),
        ]),
    )
    .unwrap();
    assert_eq!(s.server.max_connections, 7);
    // A number stays text where the key is text.
    assert_eq!(s.server.instance_id, "123");
    assert_eq!(s.engine.shard_count, 64);
    assert_eq!(s.playbooks.default, "demo");
    assert_eq!(s.channels.loopback.ring_after_ms, 321);
    assert_eq!(
        s.channels.loopback.no_answer_after_ms, 1000,
        "a sibling kept"
    );
    assert_eq!(s.secrets.keys, ["k2:abc", "k1:def"]);
    assert_eq!(s.compliance.rules_file, "/etc/rules.toml");
    assert_eq!(s.limits.voice_per_second, 12.5);
    assert_eq!(s.limits.sms_burst, 7);
    assert_eq!(s.outbound.allow, ["127.0.0.0/8", "::1"]);
}

/// A default value written as an environment variable would carry it.
fn as_text(value: &figment::value::Value) -> String {
    use figment::value::Value;
    match value {
        Value::String(_, s) => s.clone(),
        Value::Num(_, n) => n
            .to_i128()
            .map(|i| i.to_string())
            .unwrap_or_else(|| n.to_f64().unwrap().to_string()),
        Value::Bool(_, b) => b.to_string(),
        // Both lists are empty by default; this entry is valid for either.
        Value::Array(_, items) if items.is_empty() => "127.0.0.1".into(),
        Value::Array(_, items) => items.iter().map(as_text).collect::<Vec<_>>().join(","),
        other => panic!("no default of this type: {other:?}"),
    }
}

#[test]
fn every_key_has_a_variable() {
    let schema = load::defaults().unwrap();
    let keys = keys().unwrap();
    assert!(keys.len() > 30, "{keys:?}");
    for key in keys {
        // Each key given its default back, written as text: none is unknown or mistyped.
        let text = as_text(load::lookup(&schema, &key).unwrap());
        let var = env_name(&key);
        let result = Settings::load(None, &env(&[(var.as_str(), text.as_str())]));
        assert!(result.is_ok(), "{var}={text}: {:#}", result.unwrap_err());
    }
}

#[test]
fn the_short_names_keep_their_meaning_and_the_long_form_wins() {
    let s = Settings::load(
        None,
        &env(&[
            ("NEURONX_SECRET_KEYS", "k2:abc,k1:def"),
            ("NEURONX_OUTBOUND_ALLOW", "10.0.0.0/8, 127.0.0.1"),
            ("NEURONX_LISTEN", "0.0.0.0:1"),
            ("NEURONX_SERVER__LISTEN", "0.0.0.0:2"),
            ("NEURONX_REDIS_URL", ""),
        ]),
    )
    .unwrap();
    assert_eq!(s.secrets.keys, ["k2:abc", "k1:def"]);
    assert_eq!(s.outbound.allow, ["10.0.0.0/8", "127.0.0.1"]);
    assert_eq!(s.server.listen, "0.0.0.0:2");
    assert_eq!(s.server.redis_url, "", "an empty variable is ignored");
}

#[test]
fn a_bad_value_in_the_environment_names_the_key_and_the_variable() {
    let vars = [("NEURONX_ENGINE__SHARD_COUNT", "abc")];
    let err = Settings::load(None, &env(&vars)).unwrap_err();
    match err.downcast_ref::<ConfigError>() {
        Some(ConfigError::Invalid { key, origin, .. }) => {
            assert_eq!(key, "engine.shard_count");
            assert_eq!(origin, "environment variable NEURONX_ENGINE__SHARD_COUNT");
        }
        other => panic!("{other:?}"),
    }
    let err = format!("{err:#}");
    assert!(err.starts_with("engine.shard_count: invalid type"), "{err}");
    assert!(err.contains("\"abc\""), "{err}");

    let err = refusal(None, &[("NEURONX_LIMITS__SMS_BURST", "-1")]);
    assert!(err.contains("limits.sms_burst"), "{err}");
    assert!(err.contains("NEURONX_LIMITS__SMS_BURST"), "{err}");
}

#[test]
fn a_bad_value_in_a_file_names_the_key_and_the_file() {
    let (_dir, path) = file("[channels.loopback]\nring_after_ms = \"soon\"\n");
    let err = refusal(Some(&path), &[]);
    assert!(err.contains("channels.loopback.ring_after_ms"), "{err}");
    assert!(
        err.contains(&format!("config file {}", path.display())),
        "{err}"
    );
    let (_dir, path) = file("[engine\n");
    let err = refusal(Some(&path), &[]);
    assert!(err.contains(&path.display().to_string()), "{err}");
    let err = refusal(Some(Path::new("/nonexistent/neuronx.toml")), &[]);
    assert!(err.contains("/nonexistent/neuronx.toml"), "{err}");
}

#[test]
fn a_value_refused_by_validation_names_the_layer_that_set_it() {
    let (_dir, path) = file("[engine]\nshard_count = 0\n");
    let err = refusal(Some(&path), &[]);
    assert!(
        err.starts_with("engine.shard_count: must be between"),
        "{err}"
    );
    assert!(err.contains(&path.display().to_string()), "{err}");
    let err = refusal(Some(&path), &[("NEURONX_ENGINE__SHARD_COUNT", "70000")]);
    assert!(err.contains("NEURONX_ENGINE__SHARD_COUNT"), "{err}");
    let err = refusal(None, &[("NEURONX_ENGINE__LEASE_TTL_MS", "1500")]);
    assert!(err.starts_with("engine.lease_renew_ms"), "{err}");
    assert!(err.contains("embedded default"), "{err}");
    let err = refusal(None, &[("NEURONX_LIMITS__ACCOUNT_CALLS_BURST", "0")]);
    assert!(err.contains("limits.account_calls_burst"), "{err}");
    let err = refusal(None, &[("NEURONX_OUTBOUND_ALLOW", "10.0.0.0/33")]);
    assert!(err.contains("outbound.allow"), "{err}");
    assert!(err.contains("NEURONX_OUTBOUND_ALLOW"), "{err}");
}

#[test]
fn the_database_url_refusal_does_not_show_a_password() {
    let err = refusal(None, &[("NEURONX_DATABASE_URL", "mysql://u:hunter2@db/x")]);
    assert!(err.contains("server.database_url"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

#[test]
fn unknown_variables_are_refused_only_in_the_section_form() {
    let err = refusal(None, &[("NEURONX_ENGINE__SHARD_CONT", "3")]);
    assert!(err.contains("engine.shard_cont"), "{err}");
    assert!(err.contains("NEURONX_ENGINE__SHARD_CONT"), "{err}");
    let err = refusal(None, &[("NEURONX_CHANNELS__LOOPBACK", "3")]);
    assert!(err.contains("NEURONX_CHANNELS__LOOPBACK__"), "{err}");
    Settings::load(
        None,
        &env(&[
            ("NEURONX_LOG", "debug"),
            ("NEURONX_LOG_FORMAT", "json"),
            ("NEURONX_TEST_PG_URL", "postgres://x"),
            ("NEURONX_BIN", "/usr/bin/neuronx"),
        ]),
    )
    .unwrap();
}

#[test]
fn the_public_url_must_be_an_absolute_http_base() {
    for good in [
        "https://crm.example.com",
        "http://127.0.0.1:8080/",
        "https://example.com/neuronx",
    ] {
        let s = Settings::load(None, &env(&[("NEURONX_PUBLIC_URL", good)]));
        assert!(s.is_ok(), "{good}: {:#}", s.unwrap_err());
    }
    for bad in [
        "crm.example.com",
        "/webhooks",
        "ftp://example.com",
        "https://example.com/?a=1",
        "https://example.com/#top",
        "http://",
    ] {
        let err = refusal(None, &[("NEURONX_PUBLIC_URL", bad)]);
        assert!(err.starts_with("server.public_url: "), "{bad}: {err}");
        assert!(err.contains("NEURONX_PUBLIC_URL"), "{bad}: {err}");
    }
    let (_dir, path) = file("[server]\npublic_url = \"example.com\"\n");
    let err = refusal(Some(&path), &[]);
    assert!(err.contains(&path.display().to_string()), "{err}");
}

#[test]
fn the_log_variables_are_checked() {
    let (_, format) = log_settings(&BTreeMap::new(), "info").unwrap();
    assert_eq!(format, LogFormat::Text);
    let vars = env(&[
        ("NEURONX_LOG", "debug,sqlx=warn"),
        ("NEURONX_LOG_FORMAT", "json"),
    ]);
    let (filter, format) = log_settings(&vars, "info").unwrap();
    assert_eq!(format, LogFormat::Json);
    assert!(filter.to_string().contains("sqlx=warn"), "{filter}");
    let err = log_settings(&env(&[("NEURONX_LOG", "info,sqlx=loud")]), "info").unwrap_err();
    assert!(err.to_string().starts_with("NEURONX_LOG: "), "{err}");
    let err = log_settings(&env(&[("NEURONX_LOG_FORMAT", "xml")]), "info").unwrap_err();
    assert!(err.to_string().contains("NEURONX_LOG_FORMAT"), "{err}");
}

#[test]
fn the_documentation_names_every_variable() {
    let doc = include_str!("../../docs/configuration.md");
    for key in keys().unwrap() {
        let var = env_name(&key);
        assert!(doc.contains(&var), "docs/configuration.md lacks {var}");
    }
}

#[test]
fn trusted_proxies_are_networks_from_a_comma_separated_variable() {
    let vars = [(
        "NEURONX_SERVER__TRUSTED_PROXIES",
        "10.0.0.0/8, 192.168.1.5,::1",
    )];
    let s = Settings::load(None, &env(&vars)).unwrap();
    let nets = s.trusted_proxies().unwrap();
    assert_eq!(nets.len(), 3);
    assert!(nets[1].contains(&"192.168.1.5".parse::<std::net::IpAddr>().unwrap()));
    let err = refusal(
        None,
        &[("NEURONX_SERVER__TRUSTED_PROXIES", "10.0.0.0/8,proxy")],
    );
    assert!(err.starts_with("server.trusted_proxies"), "{err}");
    assert!(err.contains("\"proxy\""), "{err}");
    assert!(err.contains("NEURONX_SERVER__TRUSTED_PROXIES"), "{err}");
    let err = refusal(None, &[("NEURONX_SERVER__HEADER_TIMEOUT_MS", "0")]);
    assert!(err.starts_with("server.header_timeout_ms"), "{err}");
}
