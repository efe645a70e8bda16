//! Send limits against real Redis over TCP: the shared one on 127.0.0.1:6379 for behaviour, and
//! a `redis-server` of our own on a free port where a test stops, freezes or restarts it.
//! Every test uses fresh random keys, so they run in parallel with each other and with others.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use neuronx_adapters::limits::{
    Admission, LimitError, LimitKey, Limiter, Quota, CALL_TIMEOUT, KEY_PREFIX,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

const SHARED_REDIS: &str = "redis://127.0.0.1:6379";

fn quota(per_second: f64, burst: u32) -> Quota {
    Quota::new(per_second, burst).unwrap()
}

fn tenant_voice() -> LimitKey {
    LimitKey::tenant_channel(uuid::Uuid::new_v4(), "voice")
}

fn account() -> LimitKey {
    LimitKey::account_calls(&format!("AC{}", uuid::Uuid::new_v4().simple()))
}

async fn shared() -> Limiter {
    let limiter = Limiter::connect(Some(SHARED_REDIS)).await.unwrap();
    limiter.ping().await.expect("redis on 127.0.0.1:6379");
    limiter
}

/// Counts how many of `n` immediate checks are admitted.
async fn admitted_of(limiter: &Limiter, keys: &[(LimitKey, Quota)], n: usize) -> usize {
    let mut admitted = 0;
    for _ in 0..n {
        if limiter.check(keys).await.unwrap() == Admission::Admitted {
            admitted += 1;
        }
    }
    admitted
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A `redis-server` child of this test, killed when dropped.
struct OwnRedis {
    port: u16,
    child: Child,
}

impl OwnRedis {
    async fn start(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server on PATH");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !answers_ping(port).await {
            assert!(
                Instant::now() < deadline,
                "redis-server on {port} never answered"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Self { port, child }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn kill(mut self) {
        self.child.kill().await.unwrap();
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.id().unwrap().to_string();
        let status = std::process::Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

/// Raw RESP, so readiness does not depend on the code under test.
async fn answers_ping(port: u16) -> bool {
    let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    let mut reply = [0u8; 7];
    stream.write_all(b"PING\r\n").await.is_ok()
        && stream.read_exact(&mut reply).await.is_ok()
        && &reply == b"+PONG\r\n"
}

/// Polls `check` until it admits or `within` passes; true if it admitted.
async fn admits_within(limiter: &Limiter, keys: &[(LimitKey, Quota)], within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Ok(Admission::Admitted) = limiter.check(keys).await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn a_burst_is_admitted_at_once_then_the_next_check_waits_one_interval() {
    let limiter = shared().await;
    let keys = [(tenant_voice(), quota(10.0, 5))];
    let start = Instant::now();
    assert_eq!(admitted_of(&limiter, &keys, 5).await, 5);
    let outcome = limiter.check(&keys).await.unwrap();
    // One interval (100 ms) less whatever passed since the first check; 1 ms for rounding.
    let least = Duration::from_millis(99).saturating_sub(start.elapsed());
    match outcome {
        Admission::Wait(d) => assert!(d >= least && d <= Duration::from_millis(100), "{d:?}"),
        Admission::Admitted => panic!("the sixth check was admitted"),
    }
}

#[tokio::test]
async fn two_limiters_on_one_redis_share_a_single_budget() {
    let (first, second) = (shared().await, shared().await);
    // One refill every 10 s: none can happen during the test.
    let keys = [(account(), quota(0.1, 5))];
    let (mut from_first, mut from_second) = (0, 0);
    for _ in 0..10 {
        from_first += admitted_of(&first, &keys, 1).await;
        from_second += admitted_of(&second, &keys, 1).await;
    }
    assert_eq!(from_first + from_second, 5);
    assert!(
        from_first > 0 && from_second > 0,
        "{from_first} + {from_second}"
    );
}

#[tokio::test]
async fn a_refused_multi_key_check_consumes_none_of_its_keys() {
    let limiter = shared().await;
    // Slow rates, so no refill during the test can blur the counts.
    let (tenant, carrier) = ((tenant_voice(), quota(1.0, 5)), (account(), quota(0.1, 1)));
    assert_eq!(
        limiter.check(std::slice::from_ref(&carrier)).await.unwrap(),
        Admission::Admitted
    );
    let both = [tenant.clone(), carrier.clone()];
    for _ in 0..3 {
        match limiter.check(&both).await.unwrap() {
            // The carrier key's wait (about 10 s).
            Admission::Wait(d) => assert!(d > Duration::from_secs(5), "{d:?}"),
            Admission::Admitted => panic!("admitted past an exhausted key"),
        }
    }
    // The tenant key still has its whole burst.
    assert_eq!(admitted_of(&limiter, &[tenant], 6).await, 5);
}

#[tokio::test]
async fn the_wait_is_the_longest_over_the_refusing_keys() {
    let limiter = shared().await;
    let fast = (tenant_voice(), quota(10.0, 1));
    let slow = (account(), quota(0.5, 1));
    assert_eq!(
        admitted_of(&limiter, &[fast.clone(), slow.clone()], 1).await,
        1
    );
    match limiter.check(&[fast, slow]).await.unwrap() {
        Admission::Wait(d) => assert!(
            d > Duration::from_millis(1_500) && d <= Duration::from_secs(2),
            "{d:?}"
        ),
        Admission::Admitted => panic!("admitted past two exhausted keys"),
    }
}

#[tokio::test]
async fn keys_carry_a_ttl_and_vanish_once_idle() {
    let limiter = shared().await;
    let key = tenant_voice();
    assert_eq!(
        limiter
            .check(&[(key.clone(), quota(10.0, 5))])
            .await
            .unwrap(),
        Admission::Admitted
    );
    let client = redis::Client::open(SHARED_REDIS).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let stored = format!("{KEY_PREFIX}{key}");
    let pttl: i64 = redis::cmd("PTTL")
        .arg(&stored)
        .query_async(&mut conn)
        .await
        .unwrap();
    // One admission puts the TAT one interval (100 ms) ahead: that is all the key has to live.
    assert!(pttl > 0 && pttl <= 100, "pttl {pttl}");
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let exists: bool = redis::cmd("EXISTS")
            .arg(&stored)
            .query_async(&mut conn)
            .await
            .unwrap();
        if !exists {
            break;
        }
        assert!(Instant::now() < deadline, "{stored} never expired");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn over_a_second_the_admitted_count_is_rate_times_time_plus_burst() {
    let limiter = shared().await;
    let keys = [(account(), quota(20.0, 5))];
    let start = Instant::now();
    let (mut admitted, mut last_check) = (0, start);
    // Paced, so the count depends on elapsed time and not on how fast Redis answers.
    while start.elapsed() < Duration::from_secs(1) {
        last_check = Instant::now();
        admitted += admitted_of(&limiter, &keys, 1).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let expected = 5.0 + 20.0 * (last_check - start).as_secs_f64();
    assert!(
        (admitted as f64 - expected).abs() <= 2.0,
        "admitted {admitted}, expected about {expected:.1}"
    );
}

#[tokio::test]
async fn with_nothing_listening_checks_fail_closed_within_the_timeout() {
    let url = format!("redis://:secret@127.0.0.1:{}", free_port());
    // Not fatal at start: the engine keeps running and holds its sends.
    let limiter = Limiter::connect(Some(&url)).await.unwrap();
    assert!(limiter.is_shared());
    assert!(!format!("{limiter:?}").contains("secret"));
    for _ in 0..3 {
        let start = Instant::now();
        let outcome = limiter.check(&[(account(), quota(100.0, 100))]).await;
        assert!(
            matches!(outcome, Err(LimitError::Unavailable(_))),
            "{outcome:?}"
        );
        assert!(start.elapsed() < CALL_TIMEOUT + Duration::from_millis(250));
    }
    assert!(matches!(
        limiter.ping().await,
        Err(LimitError::Unavailable(_))
    ));
}

#[tokio::test]
async fn a_frozen_redis_is_bounded_by_the_timeout_and_checks_resume_when_it_thaws() {
    let redis = OwnRedis::start(free_port()).await;
    let limiter = Limiter::connect(Some(&redis.url())).await.unwrap();
    let keys = [(account(), quota(100.0, 100))];
    assert_eq!(limiter.check(&keys).await.unwrap(), Admission::Admitted);
    redis.signal("-STOP");
    let start = Instant::now();
    let outcome = limiter.check(&keys).await;
    let elapsed = start.elapsed();
    redis.signal("-CONT");
    assert!(
        matches!(outcome, Err(LimitError::Unavailable(_))),
        "{outcome:?}"
    );
    assert!(
        elapsed < CALL_TIMEOUT + Duration::from_millis(250),
        "{elapsed:?}"
    );
    assert!(admits_within(&limiter, &keys, Duration::from_secs(10)).await);
    redis.kill().await;
}

#[tokio::test]
async fn the_same_limiter_recovers_after_redis_restarts() {
    let port = free_port();
    let redis = OwnRedis::start(port).await;
    let limiter = Limiter::connect(Some(&redis.url())).await.unwrap();
    let keys = [(tenant_voice(), quota(100.0, 100))];
    assert_eq!(limiter.check(&keys).await.unwrap(), Admission::Admitted);

    redis.kill().await;
    for _ in 0..3 {
        let outcome = limiter.check(&keys).await;
        assert!(
            matches!(outcome, Err(LimitError::Unavailable(_))),
            "{outcome:?}"
        );
    }

    // The new server has an empty script cache: admitting again also proves the NOSCRIPT reload.
    let redis = OwnRedis::start(port).await;
    assert!(
        admits_within(&limiter, &keys, Duration::from_secs(10)).await,
        "no admission within 10 s of redis coming back"
    );
    assert!(limiter.ping().await.is_ok());
    redis.kill().await;
}

#[tokio::test(start_paused = true)]
async fn the_local_limiter_admits_a_burst_then_one_per_interval() {
    let limiter = Limiter::connect(None).await.unwrap();
    assert!(!limiter.is_shared());
    let keys = [(tenant_voice(), quota(10.0, 5))];
    assert_eq!(admitted_of(&limiter, &keys, 5).await, 5);
    // Time is paused, so the wait is exact.
    assert_eq!(
        limiter.check(&keys).await.unwrap(),
        Admission::Wait(Duration::from_millis(100))
    );
    tokio::time::advance(Duration::from_millis(100)).await;
    assert_eq!(admitted_of(&limiter, &keys, 2).await, 1);
}

#[tokio::test(start_paused = true)]
async fn clones_of_the_local_limiter_share_one_budget() {
    let first = Limiter::connect(None).await.unwrap();
    let second = first.clone();
    let keys = [(account(), quota(1.0, 5))];
    let mut admitted = 0;
    for _ in 0..5 {
        admitted += admitted_of(&first, &keys, 1).await + admitted_of(&second, &keys, 1).await;
    }
    assert_eq!(admitted, 5);
}

#[tokio::test(start_paused = true)]
async fn the_local_limiter_consumes_none_of_the_keys_of_a_refused_check() {
    let limiter = Limiter::connect(None).await.unwrap();
    let tenant = (tenant_voice(), quota(10.0, 5));
    let carrier = (account(), quota(1.0, 1));
    assert_eq!(
        admitted_of(&limiter, std::slice::from_ref(&carrier), 1).await,
        1
    );
    assert_eq!(
        limiter.check(&[tenant.clone(), carrier]).await.unwrap(),
        Admission::Wait(Duration::from_secs(1))
    );
    assert_eq!(admitted_of(&limiter, &[tenant], 6).await, 5);
}

#[tokio::test]
async fn invalid_quotas_are_refused() {
    for (rate, burst) in [(0.0, 5), (10.0, 0), (-1.0, 1), (f64::NAN, 1)] {
        let outcome = Quota::new(rate, burst);
        assert!(
            matches!(outcome, Err(LimitError::InvalidQuota(_))),
            "{rate}/s burst {burst}: {outcome:?}"
        );
    }
}

#[tokio::test]
async fn a_malformed_url_is_a_config_error_that_does_not_show_the_password() {
    for url in [
        "redis://:secret@127.0.0.1:notaport",
        "redis://:secret@",
        "http://:secret@127.0.0.1:6379",
        "secret",
    ] {
        match Limiter::connect(Some(url)).await {
            Err(LimitError::Config(message)) => {
                assert!(!message.contains("secret"), "{url}: {message}")
            }
            other => panic!("{url}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn no_url_or_a_blank_one_gives_the_local_limiter() {
    for url in [None, Some(""), Some("  ")] {
        let limiter = Limiter::connect(url).await.unwrap();
        assert!(matches!(limiter, Limiter::Local(_)), "{url:?}");
        assert!(limiter.ping().await.is_ok());
    }
}
