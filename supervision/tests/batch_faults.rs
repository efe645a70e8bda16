//! Group writes under real PostgreSQL faults (issue #13, item 4): a batch that fails because the
//! server went away or refuses writes for a while is tried again whole and lands once the server
//! is back; only a value the database refuses splits a batch, and then only its item fails.
//!
//! The faults are real: the test database is made read-only (`default_transaction_read_only`,
//! as a standby after a failover answers 25006) and its sessions are ended by
//! `pg_terminate_backend` (57P01, as a restart or a failover ends them).

#[allow(dead_code, unused_macros)]
mod common;

use std::sync::Arc;
use std::time::Duration;

use neuronx_supervision::committer::{BatchError, Batcher};
use neuronx_supervision::store::{Inserted, NewInput};
use neuronx_supervision::{ActorKey, ActorKind, Store, TenantId};
use serde_json::json;
use sqlx::{Connection, PgConnection};
use tokio::sync::mpsc;
use uuid::Uuid;

use common::SHARDS;

/// A writer of inbox inputs over `store` that reports each batch's size and whether it landed.
fn ingest(
    store: &Store,
) -> (
    Batcher<NewInput, Inserted>,
    mpsc::UnboundedReceiver<(usize, bool)>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let store = store.clone();
    let (b, _task) = Batcher::spawn(100, move |items: Arc<[NewInput]>| {
        let (store, tx) = (store.clone(), tx.clone());
        Box::pin(async move {
            let out = store.insert_inbox(&items).await;
            let _ = tx.send((items.len(), out.is_ok()));
            out
        })
    });
    (b, rx)
}

fn input(n: usize, value: serde_json::Value) -> NewInput {
    let key = ActorKey::root(
        TenantId(Uuid::new_v4()),
        ActorKind("opportunity"),
        Uuid::new_v4(),
    );
    NewInput {
        key,
        shard: key.shard(SHARDS),
        dedupe_key: format!("batch-fault/{n}/{}", Uuid::new_v4()),
        remember: true,
        input: value,
        reply: false,
        notify: false,
    }
}

/// Submits every item before the writer runs (the test runtime has one thread and runs tasks
/// in the order they were woken), so they form one batch; returns the submitting tasks.
fn submit_together(
    b: &Batcher<NewInput, Inserted>,
    items: Vec<NewInput>,
) -> Vec<tokio::task::JoinHandle<Result<Inserted, BatchError>>> {
    items
        .into_iter()
        .map(|item| {
            let b = b.clone();
            tokio::spawn(async move { b.submit(item).await })
        })
        .collect()
}

async fn admin() -> PgConnection {
    let url =
        std::env::var("NEURONX_TEST_PG_URL").unwrap_or_else(|_| common::DEFAULT_PG_URL.to_owned());
    PgConnection::connect(&url)
        .await
        .expect("an admin connection to PostgreSQL")
}

async fn database_name(store: &Store) -> String {
    let Store::Postgres(pg) = store else {
        panic!("a PostgreSQL store");
    };
    sqlx::query_scalar("SELECT current_database()")
        .fetch_one(pg.pool())
        .await
        .expect("current_database")
}

/// Sets the database read-only (or back) for new sessions and ends the current ones, so that
/// every connection of the pool sees the change.
async fn read_only(admin: &mut PgConnection, db: &str, on: bool) {
    let setting = if on {
        "SET default_transaction_read_only = on"
    } else {
        "RESET default_transaction_read_only"
    };
    sqlx::query(&format!("ALTER DATABASE {db} {setting}"))
        .execute(&mut *admin)
        .await
        .expect("ALTER DATABASE");
    terminate(admin, db).await;
}

async fn terminate(admin: &mut PgConnection, db: &str) {
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind(db)
    .execute(&mut *admin)
    .await
    .expect("pg_terminate_backend");
}

/// Waits (up to 20 s) until `n` writes have failed; returns the sizes of all writes seen.
async fn until_failed(rx: &mut mpsc::UnboundedReceiver<(usize, bool)>, n: usize) -> Vec<usize> {
    let mut sizes = Vec::new();
    let mut failed = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while failed < n {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some((size, ok))) => {
                sizes.push(size);
                failed += usize::from(!ok);
            }
            Ok(None) => panic!("the writer stopped"),
            Err(_) => panic!("only {failed} failed writes within 20 s: {sizes:?}"),
        }
    }
    sizes
}

#[tokio::test]
async fn a_batch_refused_by_a_read_only_server_is_retried_whole_and_lands_when_writable() {
    let db = common::postgres().await;
    let name = database_name(&db.store).await;
    let mut admin = admin().await;
    let (b, mut writes) = ingest(&db.store);

    read_only(&mut admin, &name, true).await;
    let tasks = submit_together(&b, (0..8).map(|n| input(n, json!({ "n": n }))).collect());
    // The server refuses writes (25006) for a while: the batch is tried again, whole.
    let mut sizes = until_failed(&mut writes, 3).await;
    read_only(&mut admin, &name, false).await;

    let mut landed = 0;
    for t in tasks {
        match t.await.expect("submit task") {
            Ok(Inserted::New { .. }) => landed += 1,
            other => panic!("every input lands once the server takes writes: {other:?}"),
        }
    }
    assert_eq!(landed, 8);
    while let Ok((size, _)) = writes.try_recv() {
        sizes.push(size);
    }
    assert!(
        sizes.iter().all(|s| *s == 8),
        "the batch is never split for a server error: {sizes:?}"
    );
    drop(admin);
    db.finish().await;
}

#[tokio::test]
async fn a_batch_whose_sessions_are_terminated_is_retried_whole() {
    let db = common::postgres().await;
    let name = database_name(&db.store).await;
    let mut admin = admin().await;
    let (b, mut writes) = ingest(&db.store);
    // Warm the pool, then end its sessions (57P01 on their next use).
    assert!(b.submit(input(99, json!({}))).await.is_ok());
    assert_eq!(writes.recv().await, Some((1, true)));
    terminate(&mut admin, &name).await;

    let tasks = submit_together(&b, (0..8).map(|n| input(n, json!({ "n": n }))).collect());
    for t in tasks {
        let out = t.await.expect("submit task");
        assert!(matches!(out, Ok(Inserted::New { .. })), "{out:?}");
    }
    let mut sizes = Vec::new();
    while let Ok((size, _)) = writes.try_recv() {
        sizes.push(size);
    }
    assert!(sizes.iter().all(|s| *s == 8), "never split: {sizes:?}");
    drop(admin);
    db.finish().await;
}

#[tokio::test]
async fn a_value_the_database_refuses_fails_alone_and_the_rest_land() {
    let db = common::postgres().await;
    let (b, mut writes) = ingest(&db.store);
    // A NUL character cannot be stored in jsonb (22P05): that item, and only it, fails.
    let items: Vec<NewInput> = (0..5)
        .map(|n| match n {
            2 => input(n, json!({ "text": "nul\u{0}" })),
            _ => input(n, json!({ "n": n })),
        })
        .collect();
    let tasks = submit_together(&b, items);
    for (n, t) in tasks.into_iter().enumerate() {
        let out = t.await.expect("submit task");
        match n {
            2 => assert!(matches!(out, Err(BatchError::Store(_))), "{out:?}"),
            _ => assert!(matches!(out, Ok(Inserted::New { .. })), "{n}: {out:?}"),
        }
    }
    let mut sizes = Vec::new();
    while let Ok((size, _)) = writes.try_recv() {
        sizes.push(size);
    }
    assert_eq!(sizes, vec![5, 1, 1, 1, 1, 1], "split once, each item alone");
    db.finish().await;
}
