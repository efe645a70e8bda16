//! Fresh, migrated databases for the store tests: one per test, on PostgreSQL or SQLite.

use std::time::Duration;

use neuronx_supervision::store::Backend;
use neuronx_supervision::Store;
use sqlx::{Connection, Executor, PgConnection};
use tempfile::TempDir;

#[path = "../../../tests/common/dropped_db.rs"]
mod dropped_db;
use dropped_db::DroppedDatabase;

/// A small shard count keeps migrations fast.
pub const SHARDS: u32 = 16;

/// The pool size of each test store.
const MAX_CONNECTIONS: u32 = 5;

/// The admin database used when `NEURONX_TEST_PG_URL` is not set.
pub const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A store on a database of its own. Keeps whatever the database lives in (the SQLite
/// directory) alive until the test is done, then removes it: the directory, or the PostgreSQL
/// database (dropped when this goes, passed or panicked).
pub struct TestDb {
    pub store: Store,
    _dir: Option<TempDir>,
    // Declared after `store`, so dropped after the pool.
    _pg: Option<DroppedDatabase>,
}

impl TestDb {
    /// Closes the pool so that no connection outlives the test.
    pub async fn finish(self) {
        self.store.close().await;
    }
}

/// A new database on the PostgreSQL server at `NEURONX_TEST_PG_URL`, migrated.
///
/// Panics, never skips, when the server is unreachable: CI starts PostgreSQL before the tests,
/// and a suite that passes by testing nothing proves nothing.
pub async fn postgres() -> TestDb {
    let admin_url =
        std::env::var("NEURONX_TEST_PG_URL").unwrap_or_else(|_| DEFAULT_PG_URL.to_owned());
    let name = format!("nx_t_{}", uuid::Uuid::new_v4().simple());
    create_database(&admin_url, &name).await;
    let dropped = DroppedDatabase {
        admin_url: admin_url.clone(),
        name: name.clone(),
    };
    let url = with_database(&admin_url, &name);
    let store = Store::connect(&url, MAX_CONNECTIONS)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the new test database {name}: {e}"));
    assert_eq!(store.backend(), Backend::Postgres);
    store
        .migrate(SHARDS)
        .await
        .unwrap_or_else(|e| panic!("migrating the test database {name} failed: {e}"));
    TestDb {
        store,
        _dir: None,
        _pg: Some(dropped),
    }
}

/// A new SQLite file in a temporary directory, migrated.
pub async fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().expect("a temporary directory for the SQLite database");
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let store = Store::connect(&url, MAX_CONNECTIONS)
        .await
        .unwrap_or_else(|e| panic!("cannot open the SQLite test database {url}: {e}"));
    assert_eq!(store.backend(), Backend::Sqlite);
    store
        .migrate(SHARDS)
        .await
        .unwrap_or_else(|e| panic!("migrating the SQLite test database failed: {e}"));
    TestDb {
        store,
        _dir: Some(dir),
        _pg: None,
    }
}

async fn create_database(admin_url: &str, name: &str) {
    let mut admin = PgConnection::connect(admin_url).await.unwrap_or_else(|e| {
        panic!(
            "PostgreSQL is unreachable at {admin_url}: {e}. The store conformance tests need a \
             running server; start one or point NEURONX_TEST_PG_URL at one."
        )
    });
    // Several tests create databases at once; PostgreSQL can refuse one while another copies
    // the template, so retry that briefly.
    let mut attempt = 0;
    loop {
        attempt += 1;
        match admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
        {
            Ok(_) => break,
            Err(e) if attempt < 20 && e.to_string().contains("being accessed by other users") => {
                tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
            }
            Err(e) => panic!("CREATE DATABASE {name} on {admin_url} failed: {e}"),
        }
    }
    admin
        .close()
        .await
        .expect("closing the PostgreSQL admin connection");
}

/// `url` with its database name replaced by `name` (query parameters kept).
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map(|i| i + 3).unwrap_or(0);
    let path_start = base[authority_start..]
        .find('/')
        .map(|i| authority_start + i)
        .unwrap_or(base.len());
    let mut out = format!("{}/{name}", &base[..path_start]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

#[test]
fn a_database_name_replaces_the_one_in_the_url() {
    assert_eq!(
        with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
        "postgres://postgres@127.0.0.1:5432/x"
    );
    assert_eq!(
        with_database("postgres://u:p@h:5432?sslmode=disable", "x"),
        "postgres://u:p@h:5432/x?sslmode=disable"
    );
    assert_eq!(
        with_database("postgresql://h/db?application_name=t", "x"),
        "postgresql://h/x?application_name=t"
    );
}

/// Runs each `async fn name(store: Store)` twice: on a fresh PostgreSQL database (`pg::name`)
/// and on a fresh SQLite file (`sqlite::name`).
macro_rules! conformance {
    ($($name:ident),+ $(,)?) => {
        mod pg {
            $(
                #[tokio::test]
                async fn $name() {
                    let db = crate::common::postgres().await;
                    super::$name(db.store.clone()).await;
                    db.finish().await;
                }
            )+
        }
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let db = crate::common::sqlite().await;
                    super::$name(db.store.clone()).await;
                    db.finish().await;
                }
            )+
        }
    };
}
