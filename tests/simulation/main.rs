#![allow(clippy::unwrap_used)]
//! A fault simulation over the real runtime (issue #13, "Proof"): random schedules of creates
//! (some duplicated), inbound replies and STOPs through the signed webhook, operator commands,
//! carrier callbacks duplicated and out of order, failed calls and texts, and engine crashes
//! with restarts, played against real engines (one on SQLite; one or three on PostgreSQL)
//! talking to the carrier simulator over HTTP. After each schedule, once the engines are quiet,
//! the invariants in `checks.rs` are compared with what the driver submitted.
//!
//! `NEURONX_SIM_SEED=<seed>` replays one schedule (printed by a failure);
//! `NEURONX_SIM_SCHEDULES=<n>` runs n schedules from `NEURONX_SIM_START` (default a fixed
//! start, so CI runs the same seeds); `NEURONX_SIM_BACKEND` / `NEURONX_SIM_ENGINES` pick what
//! `simulate` runs (the script `scripts/simulate.sh` sets them).

#[path = "../common/mod.rs"]
mod common;

mod checks;
mod cluster;
mod db;
mod driver;
mod firings;
mod invariants;
mod reps;
mod schedule;

use std::time::Duration;

use common::Backend;
use schedule::Schedule;

/// Runs one schedule on a fresh database and answers its violations.
async fn run_one(seed: u64, backend: Backend, engines: usize) -> Result<(), String> {
    firings::install();
    firings::take();
    let schedule = Schedule::generate(seed, engines, backend == Backend::Postgres);
    let count = |f: fn(&schedule::Step) -> bool| schedule.steps.iter().filter(|s| f(s)).count();
    eprintln!(
        "simulation: seed {seed} on {backend:?} with {engines} engine(s): {} leads, {} steps, {} crash(es), {} stall(s), {} cut(s), skew {:?} ms",
        schedule.leads,
        schedule.steps.len(),
        count(|s| matches!(s, schedule::Step::Crash { .. })),
        count(|s| matches!(s, schedule::Step::Stall { .. })),
        count(|s| matches!(s, schedule::Step::CutConnections { .. })),
        schedule.skew_ms,
    );
    // After the line above: a seed that fails to get its database is still counted as started.
    let dir = tempfile::tempdir().unwrap();
    let url = common::fresh_database(backend, &dir).await;
    let mut world = driver::World::start(schedule, &url).await;
    let model = world.play().await;
    let quiet = checks::quiet(&world, Duration::from_secs(60)).await;
    let mut bad = checks::check(&world, &model).await;
    if let Err(e) = quiet {
        bad.insert(0, e);
    }
    let summary = checks::summary(&world, &model);
    world.shutdown().await;
    if bad.is_empty() {
        // A clean schedule's database goes now rather than with the test (a long run makes
        // hundreds); a failed one's stays until the test ends, or with NEURONX_TEST_KEEP_DB.
        if backend == Backend::Postgres {
            drop_database(&url).await;
        }
        return Ok(());
    }
    Err(format!(
        "seed {seed} ({backend:?}, {engines} engines) broke {} invariant(s):\n  {}\nreplay: NEURONX_SIM_SEED={seed} NEURONX_SIM_BACKEND={} NEURONX_SIM_ENGINES={engines} cargo nextest run -p neuronx --test simulation simulate\n{summary:#?}",
        bad.len(),
        bad.join("\n  "),
        match backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "pg",
        }
    ))
}

async fn drop_database(url: &str) {
    use sqlx::Connection;
    if std::env::var("NEURONX_TEST_KEEP_DB").is_ok_and(|v| v == "1") {
        return;
    }
    let name = url.rsplit('/').next().unwrap_or(url).to_owned();
    common::keep_database(&name);
    let mut conn = sqlx::PgConnection::connect(&common::pg_admin_url())
        .await
        .unwrap();
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut conn)
        .await
        .unwrap();
    let _ = conn.close().await;
}

fn panic_text(e: tokio::task::JoinError) -> String {
    match e.try_into_panic() {
        Ok(payload) => payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "a panic without a message".to_owned()),
        Err(e) => e.to_string(),
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// The seeds to run: one replayed, or `count` from the start seed.
fn seeds(default_count: u64, default_start: u64) -> Vec<u64> {
    if let Some(seed) = env_u64("NEURONX_SIM_SEED") {
        return vec![seed];
    }
    let count = env_u64("NEURONX_SIM_SCHEDULES").unwrap_or(default_count);
    let start = env_u64("NEURONX_SIM_START").unwrap_or(default_start);
    (start..start + count).collect()
}

async fn run_all(backend: Backend, engines: usize, seeds: Vec<u64>) {
    let mut failures = Vec::new();
    for seed in &seeds {
        // A schedule that panics (the driver gave up on an engine, an engine did not start) is a
        // failed schedule, not the end of the run: the seeds after it still run.
        let outcome = match tokio::spawn(run_one(*seed, backend, engines)).await {
            Ok(outcome) => outcome,
            Err(e) => Err(format!(
                "seed {seed} ({backend:?}, {engines} engines) panicked: {}",
                panic_text(e)
            )),
        };
        match outcome {
            // One line per clean schedule: scripts/simulate.sh counts them.
            Ok(()) => eprintln!("simulation: seed {seed} clean"),
            Err(e) => {
                eprintln!("{e}");
                failures.push(e);
            }
        }
    }
    eprintln!(
        "simulation: {} of {} schedules clean (seeds {:?}..={:?}, {backend:?}, {engines} engine(s))",
        seeds.len() - failures.len(),
        seeds.len(),
        seeds.first(),
        seeds.last()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// CI's bounded run on SQLite: one engine (one per file), crashes and restarts included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_on_sqlite() {
    run_all(Backend::Sqlite, 1, seeds(2, 1_003)).await;
}

/// CI's bounded run on PostgreSQL with three engines sharing the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_on_postgres_with_three_engines() {
    run_all(Backend::Postgres, 3, seeds(2, 2_001)).await;
}

/// What `scripts/simulate.sh` runs: ignored in CI, picked with `--run-ignored`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by scripts/simulate.sh"]
async fn simulate() {
    let backend = match std::env::var("NEURONX_SIM_BACKEND").as_deref() {
        Ok("pg") | Ok("postgres") => Backend::Postgres,
        _ => Backend::Sqlite,
    };
    let engines = env_u64("NEURONX_SIM_ENGINES").unwrap_or(1) as usize;
    assert!(
        backend == Backend::Postgres || engines == 1,
        "SQLite serves one engine per file"
    );
    run_all(backend, engines, seeds(10, 1)).await;
}
