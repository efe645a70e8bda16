//! `offer`, the call flow's choice of whom to ring, on a store without an engine: its order, its
//! exclusions, working hours, most calls, simultaneous ringing and, on PostgreSQL, offers racing
//! for one free rep.

use chrono::{DateTime, Duration, TimeZone, Utc};
use neuronx::control::access::{self as control, NewPrincipal, PrincipalKind};
use neuronx::control::reps::{self, Offer, RepProfile, RepStatus, RingStrategy, WorkingHours};
use neuronx::control::{Role, Tx};
use neuronx_supervision::{Store, TenantId};
use uuid::Uuid;

use crate::common::{self, Backend};

/// A store and tenant without an engine: `offer` is plain queries.
async fn store(backend: Backend) -> (Store, TenantId, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = common::fresh_database(backend, &dir).await;
    let store = neuronx::app::open_store(&common::settings(&url))
        .await
        .unwrap();
    let tenant = neuronx::tenants::create(&store, "acme")
        .await
        .unwrap()
        .tenant_id;
    (store, tenant, dir)
}

async fn make_team(store: &Store, tenant: TenantId, name: &str) -> Uuid {
    let mut tx = Tx::begin(store).await.unwrap();
    let team = control::create_team(&mut tx, tenant, name).await.unwrap();
    tx.commit().await.unwrap();
    team.id
}

/// A user of `team`, made a rep: available, rung at a number of its own.
async fn make_rep(
    store: &Store,
    tenant: TenantId,
    name: &str,
    team: Option<&str>,
    hours: Option<WorkingHours>,
    max_calls: i64,
) {
    // Checked before the transaction: the first phone check loads the numbering plans, slower
    // than PostgreSQL lets a transaction sit idle (`idle_in_transaction_session_timeout`).
    let profile = RepProfile::new("+14155550100", "UTC", hours, Some(max_calls)).unwrap();
    let mut tx = Tx::begin(store).await.unwrap();
    let new = NewPrincipal {
        name,
        kind: PrincipalKind::User,
        role: Role::Operator,
        team,
    };
    control::create_principal(store, &mut tx, tenant, &new)
        .await
        .unwrap();
    reps::set_profile(&mut tx, tenant, name, &profile)
        .await
        .unwrap();
    reps::set_status(&mut tx, tenant, name, RepStatus::Available)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

fn names(offer: &Offer) -> Vec<&str> {
    offer.reps.iter().map(|r| r.name.as_str()).collect()
}

/// Monday 2024-01-15 10:00 UTC.
fn monday() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 15, 10, 0, 0).unwrap()
}

async fn offers_go_round_robin_to_free_reps_only(backend: Backend) {
    let (store, tenant, _dir) = store(backend).await;
    let west = make_team(&store, tenant, "west").await;
    make_team(&store, tenant, "east").await;
    for name in ["a1", "b2", "c3"] {
        make_rep(&store, tenant, name, Some("west"), None, 1).await;
    }
    make_rep(&store, tenant, "d4", Some("west"), None, 1).await;
    let mut tx = Tx::begin(&store).await.unwrap();
    reps::set_status(&mut tx, tenant, "d4", RepStatus::Away)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    make_rep(&store, tenant, "e5", Some("east"), None, 1).await;
    let t0 = monday();
    let at = |s: i64| t0 + Duration::seconds(s);
    let calls: Vec<Uuid> = (0..8).map(|_| Uuid::new_v4()).collect();
    let offer = |call: usize, when: i64| {
        let store = store.clone();
        let call = calls[call];
        async move {
            reps::offer(&store, tenant, Some(west), call, at(when))
                .await
                .unwrap()
        }
    };

    let first = offer(0, 0).await;
    assert_eq!(first.strategy, RingStrategy::Sequential);
    assert_eq!(first.ring_timeout_seconds, 20, "the column's default");
    assert_eq!(names(&first), ["a1"], "never offered, then by name");
    assert_eq!(first.reps[0].phone, "+14155550100");
    assert_eq!(names(&offer(1, 1).await), ["b2"], "a1 is at its most calls");
    reps::leg_ended(&store, tenant, calls[0], "a1", at(2))
        .await
        .unwrap();
    assert_eq!(
        names(&offer(2, 3).await),
        ["c3"],
        "never offered before a1, free again"
    );
    assert_eq!(names(&offer(3, 4).await), ["a1"], "offered longest ago");
    assert!(
        offer(4, 5).await.reps.is_empty(),
        "everyone busy; d4 away; e5 east"
    );

    let listed = reps::list_reps(&store, tenant, Some(west), at(6))
        .await
        .unwrap();
    let view = |n: &str| listed.iter().find(|r| r.name == n).unwrap().clone();
    assert_eq!(view("a1").live_calls, 1);
    assert_eq!(view("a1").effective_status, RepStatus::Busy);
    assert_eq!(view("a1").status, RepStatus::Available);
    assert_eq!(view("d4").effective_status, RepStatus::Away);
    assert!(view("a1").last_offered_at.is_some());

    // The Dial of call 1 ended: b2 is free, and it is offered call 4.
    reps::call_ended(&store, tenant, calls[1], at(7))
        .await
        .unwrap();
    assert_eq!(names(&offer(4, 8).await), ["b2"]);
    // b2 let call 4 ring out: it is not offered call 4 again, and nobody else is free.
    reps::leg_ended(&store, tenant, calls[4], "b2", at(9))
        .await
        .unwrap();
    assert!(offer(4, 10).await.reps.is_empty(), "b2 had call 4 already");
    assert_eq!(names(&offer(5, 11).await), ["b2"], "but takes another");
    // Repeated or unknown ends change nothing.
    for (call, name) in [(4, "b2"), (5, "nobody"), (5, "\0")] {
        reps::leg_ended(&store, tenant, calls[call], name, at(12))
            .await
            .unwrap();
    }
    assert!(offer(6, 13).await.reps.is_empty());

    // Tenant-wide (no team): e5 of east is the one free.
    let any = reps::offer(&store, tenant, None, calls[7], at(14))
        .await
        .unwrap();
    assert_eq!(names(&any), ["e5"]);
    // A leg whose end never came stops counting after four hours.
    let later = reps::offer(&store, tenant, Some(west), calls[6], at(4 * 3600 + 10))
        .await
        .unwrap();
    assert_eq!(
        names(&later),
        ["c3"],
        "c3's leg of 4 h ago no longer counts"
    );
    // Another tenant's offers see none of these reps.
    let other = neuronx::tenants::create(&store, "other")
        .await
        .unwrap()
        .tenant_id;
    let none = reps::offer(&store, other, None, Uuid::new_v4(), at(15))
        .await
        .unwrap();
    assert!(none.reps.is_empty());
    store.close().await;
}

async fn offers_honour_hours_most_calls_and_simultaneous_ringing(backend: Backend) {
    let (store, tenant, _dir) = store(backend).await;
    let day = make_team(&store, tenant, "day").await;
    let pair = make_team(&store, tenant, "pair").await;
    let sim = make_team(&store, tenant, "sim").await;
    let hours = WorkingHours::parse_spec("mon-fri,09:00-17:00").unwrap();
    make_rep(&store, tenant, "dan", Some("day"), Some(hours), 1).await;
    make_rep(&store, tenant, "pia", Some("pair"), None, 2).await;
    for name in ["s1", "s2", "s3", "s4", "s5", "s6", "s7"] {
        make_rep(&store, tenant, name, Some("sim"), None, 1).await;
    }
    let saturday = Utc.with_ymd_and_hms(2024, 1, 13, 10, 0, 0).unwrap();
    let early = Utc.with_ymd_and_hms(2024, 1, 15, 8, 59, 0).unwrap();
    for when in [saturday, early] {
        let o = reps::offer(&store, tenant, Some(day), Uuid::new_v4(), when)
            .await
            .unwrap();
        assert!(o.reps.is_empty(), "out of hours at {when}");
    }
    let o = reps::offer(&store, tenant, Some(day), Uuid::new_v4(), monday())
        .await
        .unwrap();
    assert_eq!(names(&o), ["dan"]);
    let listed = reps::list_reps(&store, tenant, Some(day), saturday)
        .await
        .unwrap();
    assert!(!listed[0].in_hours);

    // Two calls at once, not three.
    for expect in [vec!["pia"], vec!["pia"], vec![]] {
        let o = reps::offer(&store, tenant, Some(pair), Uuid::new_v4(), monday())
            .await
            .unwrap();
        assert_eq!(names(&o), expect);
    }

    let mut tx = Tx::begin(&store).await.unwrap();
    let (before, after) = reps::set_ringing(&mut tx, tenant, "sim", RingStrategy::Simultaneous, 30)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(before.ring_strategy, RingStrategy::Sequential);
    assert_eq!(after.ring_strategy, RingStrategy::Simultaneous);
    assert_eq!(
        reps::ringing(&store, tenant, sim).await.unwrap(),
        (RingStrategy::Simultaneous, 30)
    );
    let call = Uuid::new_v4();
    let o = reps::offer(&store, tenant, Some(sim), call, monday())
        .await
        .unwrap();
    assert_eq!(o.strategy, RingStrategy::Simultaneous);
    assert_eq!(o.ring_timeout_seconds, 30);
    assert_eq!(names(&o), ["s1", "s2", "s3", "s4", "s5"], "five at most");
    // Nobody answered: the next ring of the same call goes to the two not yet rung.
    reps::call_ended(&store, tenant, call, monday())
        .await
        .unwrap();
    let o = reps::offer(&store, tenant, Some(sim), call, monday())
        .await
        .unwrap();
    assert_eq!(names(&o), ["s6", "s7"]);
    let mut tx = Tx::begin(&store).await.unwrap();
    for timeout in [4, 121] {
        assert!(
            reps::set_ringing(&mut tx, tenant, "sim", RingStrategy::Sequential, timeout)
                .await
                .is_err()
        );
    }
    drop(tx);
    store.close().await;
}

/// `n` offers for new calls to `team`, let go at the same instant; each call with its offer.
async fn offers_at_once(
    store: &Store,
    tenant: TenantId,
    team: Uuid,
    n: usize,
) -> Vec<(Uuid, reps::Offer)> {
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(n));
    let calls: Vec<Uuid> = (0..n).map(|_| Uuid::new_v4()).collect();
    let tasks: Vec<_> = calls
        .iter()
        .map(|&call| {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                reps::offer(&store, tenant, Some(team), call, monday())
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut out = Vec::new();
    for (call, task) in calls.into_iter().zip(tasks) {
        out.push((call, task.await.unwrap()));
    }
    out
}

/// Two instances offering calls at once to a team whose one rep takes one call: exactly one
/// of them gets the rep, every round.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_offers_never_share_the_last_free_slot() {
    let (store, tenant, _dir) = store(Backend::Postgres).await;
    let solo = make_team(&store, tenant, "solo").await;
    make_rep(&store, tenant, "rae", Some("solo"), None, 1).await;
    for round in 0..5 {
        let offers = offers_at_once(&store, tenant, solo, 4).await;
        let winners: Vec<Uuid> = offers
            .iter()
            .filter(|(_, offer)| !offer.reps.is_empty())
            .map(|(call, _)| *call)
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
        reps::call_ended(&store, tenant, winners[0], monday())
            .await
            .unwrap();
    }
    store.close().await;
}

/// Offers at once to a team whose one rep takes four calls: each one gets the rep, the ones
/// that found its row locked by another offer waiting for it rather than hearing nobody is free.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_offers_all_get_a_rep_with_room() {
    let (store, tenant, _dir) = store(Backend::Postgres).await;
    let duo = make_team(&store, tenant, "duo").await;
    make_rep(&store, tenant, "rae", Some("duo"), None, 4).await;
    for round in 0..5 {
        let offers = offers_at_once(&store, tenant, duo, 4).await;
        for (call, offer) in &offers {
            assert_eq!(offer.reps.len(), 1, "round {round}: call {call} got nobody");
        }
        for (call, _) in &offers {
            reps::call_ended(&store, tenant, *call, monday())
                .await
                .unwrap();
        }
    }
    store.close().await;
}

/// Sixteen offers at once to a team of five reps taking two calls each: every free slot is
/// filled and none twice (the offers that read a rep another took meanwhile read again, and
/// the ones left with nothing wait for the locks), whatever order they ran in.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_offers_fill_every_free_slot_and_overfill_none() {
    let (store, tenant, _dir) = store(Backend::Postgres).await;
    let five = make_team(&store, tenant, "five").await;
    let names = ["r1", "r2", "r3", "r4", "r5"];
    for name in names {
        make_rep(&store, tenant, name, Some("five"), None, 2).await;
    }
    for round in 0..3 {
        let offers = offers_at_once(&store, tenant, five, 16).await;
        let mut per_rep = std::collections::BTreeMap::new();
        for (_, offer) in &offers {
            assert!(offer.reps.len() <= 1, "round {round}: sequential rings one");
            for rep in &offer.reps {
                *per_rep.entry(rep.name.clone()).or_insert(0) += 1;
            }
        }
        let expected: std::collections::BTreeMap<String, i32> =
            names.iter().map(|n| (n.to_string(), 2)).collect();
        assert_eq!(per_rep, expected, "round {round}: two calls to each rep");
        for (call, _) in &offers {
            reps::call_ended(&store, tenant, *call, monday())
                .await
                .unwrap();
        }
    }
    store.close().await;
}

crate::both_backends!(
    offers_go_round_robin_to_free_reps_only,
    offers_honour_hours_most_calls_and_simultaneous_ringing,
);

/// An offer's transaction keeps one generic plan per statement (ADR 0051) and plans them without
/// sequential scans, so a plan made while the tables are empty, as here, still reaches every
/// table through an index once they hold millions of rows. The settings end with the
/// transaction, and the engine's connections never compile plans (`jit`).
#[tokio::test]
async fn an_offer_plans_once_and_reaches_every_table_through_an_index() {
    use neuronx_supervision::Store as S;
    use sqlx::Connection;
    let dir = tempfile::tempdir().unwrap();
    let url = common::fresh_database(Backend::Postgres, &dir).await;
    let mut settings = common::settings(&url);
    let setup = neuronx::app::open_store(&settings).await.unwrap();
    let tenant = neuronx::tenants::create(&setup, "acme")
        .await
        .unwrap()
        .tenant_id;
    let west = make_team(&setup, tenant, "west").await;
    for name in ["a1", "b2"] {
        make_rep(&setup, tenant, name, Some("west"), None, 1).await;
    }
    // Statistics taken while the tables hold a few rows, as autovacuum takes them on a new
    // deployment: what a plan kept for months would have been costed on.
    let S::Postgres(admin) = &setup else {
        unreachable!("a PostgreSQL store")
    };
    sqlx::query("ANALYZE").execute(admin.pool()).await.unwrap();
    // One connection: the statements the offers prepare are on the one read back below.
    settings.server.max_connections = 1;
    let store = neuronx::app::open_store(&settings).await.unwrap();
    for (i, want) in ["a1", "b2"].into_iter().enumerate() {
        let at = monday() + Duration::seconds(i as i64);
        let offer = reps::offer(&store, tenant, Some(west), Uuid::new_v4(), at)
            .await
            .unwrap();
        assert_eq!(names(&offer), [want]);
    }
    let S::Postgres(pg) = &store else {
        unreachable!("a PostgreSQL store")
    };
    let show = |name: &'static str| async move {
        let sql = format!("SELECT current_setting('{name}')");
        sqlx::query_scalar::<_, String>(&sql)
            .fetch_one(pg.pool())
            .await
            .unwrap()
    };
    let mut tx = Tx::begin_generic(&store).await.unwrap();
    let Tx::Pg(inside) = &mut tx else {
        unreachable!()
    };
    let (mode, seqscan): (String, String) = sqlx::query_as(
        "SELECT current_setting('plan_cache_mode'), current_setting('enable_seqscan')",
    )
    .fetch_one(&mut **inside)
    .await
    .unwrap();
    assert_eq!(
        (mode.as_str(), seqscan.as_str()),
        ("force_generic_plan", "off")
    );
    tx.commit().await.unwrap();
    assert_eq!(show("plan_cache_mode").await, "force_custom_plan");
    assert_eq!(show("enable_seqscan").await, "on");
    assert_eq!(show("jit").await, "off");

    // Statements with parameters planned generically only (one without any always is).
    let planned: Vec<(String, Vec<String>)> = sqlx::query_as(
        "SELECT statement, CAST(parameter_types AS TEXT[]) FROM pg_prepared_statements
         WHERE generic_plans > 0 AND custom_plans = 0 AND cardinality(parameter_types) > 0",
    )
    .fetch_all(pg.pool())
    .await
    .unwrap();
    let has = |needle: &str| planned.iter().any(|(s, _)| s.contains(needle));
    assert!(has("FROM reps r"), "the eligible read: {planned:?}");
    assert!(has("WITH wanted AS"), "the take: {planned:?}");
    // Each statement's generic plan, made as the offer made it, on these empty tables.
    let mut conn = pg.pool().acquire().await.unwrap();
    for (statement, types) in &planned {
        let mut tx = conn.begin().await.unwrap();
        sqlx::query("SET LOCAL plan_cache_mode = force_generic_plan")
            .execute(&mut *tx)
            .await
            .unwrap();
        sqlx::query("SET LOCAL enable_seqscan = off")
            .execute(&mut *tx)
            .await
            .unwrap();
        let prepare = format!("PREPARE planned ({}) AS {statement}", types.join(", "));
        sqlx::raw_sql(&prepare).execute(&mut *tx).await.unwrap();
        let nulls = vec!["NULL"; types.len()].join(", ");
        let explain = format!("EXPLAIN EXECUTE planned ({nulls})");
        let plan: Vec<String> = sqlx::query_scalar(&explain)
            .fetch_all(&mut *tx)
            .await
            .unwrap();
        let plan = plan.join("\n");
        assert!(
            !plan.contains("Seq Scan"),
            "a table read whole by {statement}:\n{plan}"
        );
        tx.rollback().await.unwrap();
        // A prepared statement outlives the transaction that made it.
        sqlx::raw_sql("DEALLOCATE planned")
            .execute(&mut *conn)
            .await
            .unwrap();
    }
}
