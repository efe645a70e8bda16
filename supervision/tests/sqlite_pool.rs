#![allow(clippy::unwrap_used)]
//! The embedded store's pool never hands back a connection stuck inside a transaction: on
//! SQLite it would hold the only write lock, and every write would wait out its busy timeout
//! and fail until the connection was recycled (found by the fault simulation: no write for
//! 30 s after a stall cut a lease renewal short).

use std::time::{Duration, Instant};

use neuronx_supervision::Store;
use sqlx::Connection;

#[tokio::test]
async fn a_connection_returned_inside_a_transaction_does_not_keep_the_write_lock() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("pool.db").display());
    let store = Store::connect(&url, 4).await.unwrap();
    let Store::Sqlite(lite) = &store else {
        unreachable!()
    };
    // A transaction begun and then lost: nothing will commit or roll it back (what a future
    // dropped between the BEGIN and its answer leaves).
    let mut conn = lite.pool().acquire().await.unwrap();
    let tx = conn.begin_with("BEGIN IMMEDIATE").await.unwrap();
    std::mem::forget(tx);
    drop(conn);

    // Another connection writes soon, not after the 10 s busy timeout (or never).
    let started = Instant::now();
    let mut other = lite.pool().acquire().await.unwrap();
    sqlx::query("PRAGMA busy_timeout = 200")
        .execute(&mut *other)
        .await
        .unwrap();
    loop {
        let began = other.begin_with("BEGIN IMMEDIATE").await;
        match began {
            Ok(tx) => {
                tx.rollback().await.unwrap();
                break;
            }
            Err(e) => assert!(
                started.elapsed() < Duration::from_secs(5),
                "the write lock is still held: {e}"
            ),
        }
    }
}
