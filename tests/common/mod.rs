//! Test harness: a real engine on a fresh database (PostgreSQL over TCP, or a SQLite file),
//! a real HTTP server on a loopback port, and a real HTTP client.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use neuronx::app::App;
use neuronx::config::Settings;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tempfile::TempDir;

mod dropped_db;
pub mod places;
use dropped_db::DroppedDatabase;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// The Redis that several instances share in tests (`.ci/run` starts one on loopback).
pub fn redis_url() -> String {
    std::env::var("NEURONX_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// The admin URL of the test PostgreSQL server (`.ci/run` starts one on loopback).
pub fn pg_admin_url() -> String {
    std::env::var("NEURONX_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A new, empty database for one test. A PostgreSQL one is dropped when the test ends, passed
/// or panicked (see `DroppedDatabase`); call this from the test's own thread (its body, not a
/// spawned task).
pub async fn fresh_database(backend: Backend, dir: &TempDir) -> String {
    match backend {
        Backend::Sqlite => format!("sqlite://{}", dir.path().join("neuronx.db").display()),
        Backend::Postgres => {
            use sqlx::Connection;
            let admin = pg_admin_url();
            let mut conn = sqlx::PgConnection::connect(&admin)
                .await
                .unwrap_or_else(|e| panic!("PostgreSQL at {admin} is required for this test: {e}"));
            let name = format!("nx_e2e_{}", uuid::Uuid::new_v4().simple());
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await
                .expect("create test database");
            let _ = conn.close().await;
            DATABASES.with(|d| {
                d.borrow_mut().push(DroppedDatabase {
                    admin_url: admin.clone(),
                    name: name.clone(),
                })
            });
            let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
            format!("{base}/{name}")
        }
    }
}

thread_local! {
    /// The PostgreSQL databases made by the test running on this thread. libtest runs each test
    /// on a thread of its own and joins it (thread-locals dropped) before it goes on or exits,
    /// under `cargo test` and `cargo nextest` alike, so they go when the test ends, whether it
    /// passed or panicked. A test killed from outside (a nextest timeout) leaves its database
    /// to `scripts/test.sh`'s clean-up of leftovers.
    static DATABASES: std::cell::RefCell<Vec<DroppedDatabase>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Keeps a database this test made (a URL or a name) after the test, to look into it.
/// `NEURONX_TEST_KEEP_DB=1` keeps every one.
pub fn keep_database(url_or_name: &str) {
    let name = url_or_name.rsplit('/').next().unwrap_or(url_or_name);
    DATABASES.with(|d| d.borrow_mut().retain(|db| db.name != name));
}

pub fn settings(database_url: &str) -> Settings {
    let env = BTreeMap::from([
        ("NEURONX_DATABASE_URL".to_string(), database_url.to_string()),
        ("NEURONX_LISTEN".to_string(), "127.0.0.1:0".to_string()),
        (
            "NEURONX_INSTANCE_ID".to_string(),
            format!("test-{}", uuid::Uuid::new_v4().simple()),
        ),
    ]);
    let mut s = Settings::load(None, &env).expect("settings");
    s.engine.shard_count = 32;
    s.engine.poll_interval_ms = 200;
    s.server.max_connections = 8;
    s.channels.loopback.ring_after_ms = 50;
    s.channels.loopback.no_answer_after_ms = 150;
    // The suite runs four test processes on two cores: a transition can take seconds to be
    // applied under that load, and a create answered 202 instead of 201 is not what a test
    // checks. Tests of the timeout itself set their own.
    s.engine.reply_timeout_ms = 20_000;
    // The carrier simulator and fake servers of the tests listen on loopback.
    s.outbound.allow = vec!["127.0.0.0/8".into()];
    s
}

pub struct TestApp {
    pub app: Option<App>,
    pub base: String,
    pub key: String,
    pub tenant: String,
    pub client: reqwest::Client,
    pub database_url: String,
    pub dir: TempDir,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> TestApp {
        let dir = tempfile::tempdir().expect("tempdir");
        let database_url = fresh_database(backend, &dir).await;
        Self::spawn_on(database_url, dir).await
    }

    /// Like `spawn`, with settings adjusted by `tune`.
    pub async fn spawn_with(backend: Backend, tune: impl FnOnce(&mut Settings)) -> TestApp {
        let dir = tempfile::tempdir().expect("tempdir");
        let database_url = fresh_database(backend, &dir).await;
        let mut s = settings(&database_url);
        tune(&mut s);
        Self::start(s, database_url, dir).await
    }

    pub async fn spawn_on(database_url: String, dir: TempDir) -> TestApp {
        Self::start(settings(&database_url), database_url, dir).await
    }

    /// Like `spawn`, with the engine on `clock` (a simulated one: the test moves time).
    pub async fn spawn_with_clock(backend: Backend, clock: neuronx_supervision::Clock) -> TestApp {
        let dir = tempfile::tempdir().expect("tempdir");
        let database_url = fresh_database(backend, &dir).await;
        let settings = settings(&database_url);
        Self::start_on_clock(settings, database_url, dir, Some(clock)).await
    }

    async fn start(settings: Settings, database_url: String, dir: TempDir) -> TestApp {
        Self::start_on_clock(settings, database_url, dir, None).await
    }

    async fn start_on_clock(
        settings: Settings,
        database_url: String,
        dir: TempDir,
        clock: Option<neuronx_supervision::Clock>,
    ) -> TestApp {
        let shards = settings.engine.shard_count as usize;
        let app = App::start_with_clock(settings, clock)
            .await
            .expect("start app");
        // Alone on its database, the instance holds every shard once its first claim is done;
        // tests that play another owner start from there.
        let engine = app.engine();
        eventually(
            Duration::from_secs(20),
            "every shard to be claimed",
            || async { (engine.owned_shards().await.len() == shards).then_some(()) },
        )
        .await;
        let created = neuronx::tenants::create(app.engine().store(), "acme")
            .await
            .expect("tenant");
        TestApp {
            base: format!("http://{}", app.addr),
            key: created.api_key,
            tenant: created.tenant_id.to_string(),
            app: Some(app),
            client: reqwest::Client::new(),
            database_url,
            dir,
        }
    }

    /// Another instance on the same database, serving the same tenant (several instances need
    /// Redis: `tune` sets it, as it must for `self`). It starts with whatever shards are free.
    pub async fn peer(&self, tune: impl FnOnce(&mut Settings)) -> TestApp {
        let mut s = settings(&self.database_url);
        tune(&mut s);
        let app = App::start(s).await.expect("start peer");
        TestApp {
            base: format!("http://{}", app.addr),
            key: self.key.clone(),
            tenant: self.tenant.clone(),
            app: Some(app),
            client: reqwest::Client::new(),
            database_url: self.database_url.clone(),
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn engine(&self) -> neuronx_supervision::EngineHandle {
        self.app.as_ref().expect("running").engine()
    }

    pub async fn stop(mut self) {
        if let Some(app) = self.app.take() {
            app.shutdown().await;
        }
    }

    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let text = resp.text().await.expect("body");
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.request(reqwest::Method::GET, path, Some(&self.key), None)
            .await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.request(reqwest::Method::POST, path, Some(&self.key), Some(body))
            .await
    }

    /// Creates a new lead and answers its view. A 202 (durable, applied later: on a loaded
    /// machine the instance can be between losing and reclaiming its shards' leases) is
    /// followed by reading the opportunity until it exists; what a create answers is checked
    /// by the tests of create itself.
    /// The value of `name` on this instance's `/metrics` (0 when absent).
    pub async fn gauge(&self, name: &str) -> f64 {
        let (_, m) = self
            .request(reqwest::Method::GET, "/metrics", None, None)
            .await;
        metric(m.as_str().unwrap(), name)
    }

    pub async fn create(&self, external_id: &str, first_touch_seconds: u64) -> Value {
        let (status, body) = self
            .post("/v1/opportunities", lead(external_id, first_touch_seconds))
            .await;
        if status == StatusCode::ACCEPTED {
            let id = body["id"].as_str().unwrap().to_owned();
            return eventually(Duration::from_secs(30), "the accepted create", || async {
                let (status, view) = self.get(&format!("/v1/opportunities/{id}")).await;
                (status == StatusCode::OK).then_some(view)
            })
            .await;
        }
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    /// Sets the tenant's `duplicate_contacts` (ADR 0046) and answers the settings after.
    pub async fn duplicate_contacts(&self, mode: &str) -> Value {
        let body = serde_json::json!({ "duplicate_contacts": mode });
        let (status, settings) = self
            .request(
                reqwest::Method::PUT,
                "/v1/settings",
                Some(&self.key),
                Some(body),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{settings}");
        assert_eq!(settings["duplicate_contacts"], mode, "{settings}");
        settings
    }

    pub async fn timeline(&self, id: &str) -> Vec<Value> {
        let (status, body) = self
            .get(&format!("/v1/opportunities/{id}/timeline?limit=1000"))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["items"].as_array().cloned().unwrap_or_default()
    }
}

/// The first call an opportunity placed, from its timeline (a create's answer may already show
/// that call ended).
pub fn first_call(timeline: &[Value]) -> Option<String> {
    timeline
        .iter()
        .find(|e| e["kind"] == "call_placed")
        .and_then(|e| e["data"]["call_id"].as_str())
        .map(str::to_owned)
}

/// A free loopback port (bound, read, released), for a server the test configures before it
/// starts.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

/// The compliance rules of a test bed that must reach its leads at any hour: every hour open, no
/// state rules (`tests/fixtures/compliance-all-day.toml`).
pub const ALL_DAY_RULES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/compliance-all-day.toml"
);

/// Points the engine at [`ALL_DAY_RULES`].
pub fn all_day_rules(settings: &mut Settings) {
    settings.compliance.rules_file = ALL_DAY_RULES.to_owned();
}

/// A time zone where it is mid-day now, with phone numbers inside it: see [`places`].
#[allow(unused_imports)] // each suite uses some
pub use places::{day_phone, daytime_zone, lead_phone};

pub fn lead(external_id: &str, first_touch_seconds: u64) -> Value {
    json!({
        "external_id": external_id,
        "contact": {
            "name": "Ana Lima",
            "phone": lead_phone(external_id),
            "email": lead_email(external_id),
            "timezone": daytime_zone(),
            "consent": {"voice": true, "sms": true}
        },
        "sla": {"first_touch_seconds": first_touch_seconds}
    })
}

/// An address of the lead's own, derived from its external id like its number
/// ([`lead_phone`]): leads sharing an address are one contact (ADR 0046), so a suite's many
/// leads must not share one.
pub fn lead_email(external_id: &str) -> String {
    let hash = external_id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("ana.{hash:016x}@example.com")
}

pub fn kinds(timeline: &[Value]) -> Vec<String> {
    timeline
        .iter()
        .filter_map(|e| e["kind"].as_str().map(str::to_owned))
        .collect()
}

/// Polls `check` until it returns `Some`, or fails the test after `within`.
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Runs one test body against both backends.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod pg {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Postgres).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Sqlite).await;
                }
            )*
        }
    };
}

/// Posts a webhook form to `url` signed with `auth_token` the way Twilio signs (the URL and the
/// sorted parameters), as the carrier would.
pub async fn post_signed(
    client: &reqwest::Client,
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
) -> reqwest::Response {
    let sig = neuronx_adapters::twilio::signature::compute(auth_token, url, params);
    client
        .post(url)
        .header("X-Twilio-Signature", sig)
        .form(params)
        .send()
        .await
        .expect("webhook request")
}

/// Runs one statement on the test's database (tests may look into the runtime's tables).
pub async fn sql(store: &neuronx_supervision::Store, statement: &str) -> Vec<String> {
    use neuronx_supervision::Store;
    match store {
        Store::Postgres(pg) => sqlx::query_scalar(statement).fetch_all(pg.pool()).await,
        Store::Sqlite(lite) => sqlx::query_scalar(statement).fetch_all(lite.pool()).await,
    }
    .unwrap()
}

/// A sample's value in a Prometheus text exposition (0 when absent).
pub fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Of creates of one person sent together: exactly one made the opportunity (201), and every
/// other joined it (200, the same id) or was told to retry (409 `contact_busy`). Answers its id.
#[allow(dead_code)] // the contact suites use it
pub fn the_one_created(answers: &[(StatusCode, Value)]) -> String {
    let created: Vec<&Value> = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .map(|(_, b)| b)
        .collect();
    assert_eq!(created.len(), 1, "{answers:?}");
    let id = created[0]["id"].as_str().unwrap().to_owned();
    for (status, body) in answers {
        match *status {
            StatusCode::CREATED => {}
            StatusCode::OK => assert_eq!(body["id"], id.as_str(), "{body}"),
            StatusCode::CONFLICT => assert_eq!(body["error"], "contact_busy", "{body}"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    id
}
