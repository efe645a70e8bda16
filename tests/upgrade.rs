#![allow(clippy::unwrap_used)]
//! Upgrading a database written by the release before the runtime and the product kept
//! separate migrations (commit ae2ac2f; `scripts/upgrade-fixture.sh` made the dumps in
//! `tests/fixtures/upgrade`): nothing is lost, the contact index moves into the runtime's
//! lookups with its crash gap repaired, and the old data still works through the API.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{eventually, Backend, TestApp};
use neuronx::app::App;
use neuronx_supervision::{Store, StoreError};
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::Connection;

/// The old release's default, which the fixtures were made with.
const SHARDS: u32 = 256;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/upgrade");

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{FIXTURES}/{name}"))
        .unwrap_or_else(|e| panic!("fixture {name}: {e}"))
        .trim_end()
        .to_owned()
}

fn label(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => "postgres",
        Backend::Sqlite => "sqlite",
    }
}

/// A fresh database holding the old release's dump.
async fn load_dump(backend: Backend, dir: &tempfile::TempDir) -> String {
    let url = common::fresh_database(backend, dir).await;
    let dump = fixture(&format!("{}.sql", label(backend)));
    // One connection of its own: the PostgreSQL dump empties its session's search_path.
    match backend {
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            sqlx::raw_sql(&dump).execute(&mut conn).await.unwrap();
            conn.close().await.unwrap();
        }
        Backend::Sqlite => {
            let options: sqlx::sqlite::SqliteConnectOptions = url.parse().unwrap();
            let mut conn = sqlx::SqliteConnection::connect_with(&options.create_if_missing(true))
                .await
                .unwrap();
            sqlx::raw_sql(&dump).execute(&mut conn).await.unwrap();
            conn.close().await.unwrap();
        }
    }
    url
}

/// Each table's rows: their count, and on PostgreSQL a digest of the values of `columns` (the
/// columns each table had before the upgrade: one it adds changes no old value), so a changed
/// value shows as well as a lost row.
async fn tables(store: &Store, columns: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    match store {
        Store::Postgres(pg) => {
            for (name, cols) in columns {
                let exists: Option<String> =
                    sqlx::query_scalar("SELECT CAST(to_regclass($1) AS TEXT)")
                        .bind(format!("public.{name}"))
                        .fetch_one(pg.pool())
                        .await
                        .unwrap();
                if exists.is_none() {
                    continue;
                }
                let digest: String = sqlx::query_scalar(&format!(
                    "SELECT count(*) || ':' || coalesce(md5(string_agg(r, '|' ORDER BY r)), '')
                     FROM (SELECT CAST(ROW({cols}) AS TEXT) AS r FROM public.{name}) t"
                ))
                .fetch_one(pg.pool())
                .await
                .unwrap();
                out.insert(name.clone(), digest);
            }
        }
        Store::Sqlite(lite) => {
            for name in columns.keys() {
                let exists: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?",
                )
                .bind(name)
                .fetch_one(lite.pool())
                .await
                .unwrap();
                if exists == 0 {
                    continue;
                }
                let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {name}"))
                    .fetch_one(lite.pool())
                    .await
                    .unwrap();
                out.insert(name.clone(), n.to_string());
            }
        }
    }
    out
}

/// Every table of the database (but sqlx's own) with its columns, comma-separated.
async fn columns(store: &Store) -> BTreeMap<String, String> {
    let rows: Vec<(String, String)> = match store {
        Store::Postgres(pg) => sqlx::query_as(
            "SELECT table_name::text, string_agg(quote_ident(column_name::text), ', '
                                                 ORDER BY ordinal_position)
             FROM information_schema.columns
             WHERE table_schema = 'public' AND table_name <> '_sqlx_migrations'
             GROUP BY table_name",
        )
        .fetch_all(pg.pool())
        .await
        .unwrap(),
        Store::Sqlite(lite) => sqlx::query_as(
            "SELECT name, '' FROM sqlite_master WHERE type = 'table'
               AND name NOT IN ('_sqlx_migrations', 'sqlite_sequence')",
        )
        .fetch_all(lite.pool())
        .await
        .unwrap(),
    };
    rows.into_iter().collect()
}

async fn migrate(store: &Store) -> Result<(), StoreError> {
    store.migrate(SHARDS).await?;
    neuronx::schema::migrate(store).await
}

async fn an_old_database_upgrades_with_nothing_lost(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let url = load_dump(backend, &dir).await;

    let store = Store::connect(&url, 4).await.unwrap();
    let old = columns(&store).await;
    let before = tables(&store, &old).await;
    assert_eq!(before["actors"].split(':').next(), Some("10"), "{before:?}");
    migrate(&store).await.unwrap();
    let after = tables(&store, &old).await;
    for (table, rows) in &before {
        if table == "contact_index" {
            assert!(!after.contains_key(table), "the old index is gone");
        } else {
            assert_eq!(after.get(table), Some(rows), "table {table} changed");
        }
    }
    // Every opportunity is found by its phone, lead-5's too, whose index row the fixture
    // lost as a crash used to lose it.
    let tenant = neuronx_supervision::TenantId(
        fixture(&format!("{}.tenant", label(backend)))
            .parse()
            .unwrap(),
    );
    for i in 1..=5 {
        let phone = format!("+1415555010{i}");
        let found = neuronx::tenant_data::opportunity_of_phone(&store, tenant, &phone)
            .await
            .unwrap();
        assert!(found.is_some(), "{phone} finds its opportunity");
        // And the opportunity holds its contact's cadence (migration 0215, ADR 0046).
        let holder = neuronx::contacts::holder_of(&store, tenant, &phone)
            .await
            .unwrap();
        assert_eq!(holder, found, "{phone}'s claim");
    }
    // Migrating again changes nothing.
    migrate(&store).await.unwrap();
    assert_eq!(tables(&store, &old).await, after);
    store.close().await;

    // The old data works: the old key, its team, the sealed Twilio token (a STOP signed with
    // it is accepted) and the repaired index (the STOP reaches lead-5).
    let port = common::free_port();
    let mut settings = common::settings(&url);
    settings.server.listen = format!("127.0.0.1:{port}");
    settings.server.public_url = format!("http://127.0.0.1:{port}");
    settings.secrets.keys = vec![fixture("keyring")];
    settings.engine.shard_count = SHARDS;
    let app = App::start(settings).await.unwrap();
    let t = TestApp {
        base: format!("http://{}", app.addr),
        key: fixture(&format!("{}.key", label(backend))),
        tenant: tenant.to_string(),
        app: Some(app),
        client: reqwest::Client::new(),
        database_url: url.clone(),
        dir,
    };
    let (status, page) = t.get("/v1/opportunities?limit=10").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 5);
    let by_external = |x: &str| -> Value {
        items
            .iter()
            .find(|o| o["external_id"] == x)
            .cloned()
            .unwrap()
    };
    assert_eq!(by_external("lead-2")["paused"], true);
    assert_eq!(by_external("lead-1")["team"], "closers");
    let (status, keys) = t.get("/v1/keys").await;
    assert_eq!(status, StatusCode::OK, "{keys}");
    assert_eq!(keys["items"].as_array().map(Vec::len), Some(2), "{keys}");

    let lead5 = by_external("lead-5")["id"].as_str().unwrap().to_owned();
    let url = format!("{}/webhooks/twilio/{}/sms/inbound", t.base, t.tenant);
    let params: Vec<(String, String)> = vec![
        (
            "MessageSid".into(),
            "SM00000000000000000000000000000005".into(),
        ),
        ("From".into(), "+14155550105".into()),
        ("Body".into(), "STOP".into()),
    ];
    let resp = common::post_signed(&t.client, "fixture-token", &url, &params).await;
    assert_eq!(resp.status(), StatusCode::OK, "{:?}", resp.text().await);
    eventually(Duration::from_secs(20), "lead-5 to opt out", || async {
        let (_, o) = t.get(&format!("/v1/opportunities/{lead5}")).await;
        (o["stage"] == "do_not_contact").then_some(())
    })
    .await;
    t.stop().await;
}

/// A database whose old history stopped part-way (version 5 of 8) lacks columns the baselines
/// do not add: it is refused with a message, and nothing is written.
async fn a_database_migrated_part_way_by_an_old_release_is_refused(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let url = load_dump(backend, &dir).await;
    let store = Store::connect(&url, 4).await.unwrap();
    match &store {
        Store::Postgres(pg) => sqlx::query("DELETE FROM _sqlx_migrations WHERE version > 5")
            .execute(pg.pool())
            .await
            .map(|_| ()),
        Store::Sqlite(lite) => sqlx::query("DELETE FROM _sqlx_migrations WHERE version > 5")
            .execute(lite.pool())
            .await
            .map(|_| ()),
    }
    .unwrap();
    let old = columns(&store).await;
    let before = tables(&store, &old).await;
    match migrate(&store).await {
        Err(StoreError::LegacySchema { last }) => assert_eq!(last, 5),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(columns(&store).await, old, "no table or column added");
    assert_eq!(tables(&store, &old).await, before, "nothing written");
    store.close().await;
}

both_backends!(
    an_old_database_upgrades_with_nothing_lost,
    a_database_migrated_part_way_by_an_old_release_is_refused,
);
