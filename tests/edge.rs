#![allow(clippy::unwrap_used)]
//! The HTTP edge (ADR 0032): header, body and request timeouts; the connection limit under
//! idle connections; request ids; the access log; compression; the console's security headers;
//! clients behind trusted proxies and the failed-key limit; 405 in JSON; and the stop: `/readyz`
//! 503 first, in-flight requests drained, console feeds ended at once. Edge behaviour does not
//! depend on the store: SQLite only. Connection-level behaviour, request ids and the access log
//! are here; `edge/answers.rs`, `edge/clients.rs` and `edge/stop.rs` hold the rest.

#[path = "edge/answers.rs"]
mod answers;
#[path = "edge/clients.rs"]
mod clients;
mod common;
#[path = "common/logs.rs"]
mod logs;
#[path = "edge/stop.rs"]
mod stop;

use std::time::{Duration, Instant};

use common::{eventually, Backend, TestApp};
use reqwest::{header, redirect, Client, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn addr(t: &TestApp) -> String {
    t.base.trim_start_matches("http://").to_owned()
}

fn browser() -> Client {
    Client::builder()
        .redirect(redirect::Policy::none())
        .build()
        .unwrap()
}

/// Signs in to the console with `key`; returns the session cookie.
async fn sign_in(t: &TestApp, key: &str) -> String {
    let resp = browser()
        .post(format!("{}/console/login", t.base))
        .form(&[("api_key", key)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let set = resp.headers()[header::SET_COOKIE].to_str().unwrap();
    set.split(';').next().unwrap().to_owned()
}

/// Reads until the server closes the connection (EOF or reset); what it sent, if anything.
async fn read_to_close(stream: &mut TcpStream, within: Duration) -> Option<String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(String::from_utf8_lossy(&got).into_owned()),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_header_is_cut_off_at_the_header_timeout() {
    let t = TestApp::spawn_with(Backend::Sqlite, |s| s.server.header_timeout_ms = 500).await;
    let mut stream = TcpStream::connect(addr(&t)).await.unwrap();
    let started = Instant::now();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\n")
        .await
        .unwrap();
    // One header line every 100 ms: always sending, never done.
    let trickle = async {
        for i in 0.. {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if stream
                .write_all(format!("X-Slow-{i}: 1\r\n").as_bytes())
                .await
                .is_err()
            {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(3), trickle).await;
    let closed = read_to_close(&mut stream, Duration::from_millis(500)).await;
    let took = started.elapsed();
    assert!(
        closed.is_some(),
        "the connection is still open after {took:?}"
    );
    assert!(
        took < Duration::from_millis(2500),
        "closed only after {took:?}"
    );
    eprintln!("edge: trickled header cut off after {took:?} (header timeout 500 ms)");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_and_a_slow_request_are_cut_off() {
    let t = TestApp::spawn_with(Backend::Sqlite, |s| {
        s.server.body_timeout_ms = 300;
        s.server.request_timeout_ms = 1000;
    })
    .await;
    let head = format!(
        "POST /v1/opportunities HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{",
        t.key
    );
    // A body that stops: answered once the body timeout passes.
    let mut stream = TcpStream::connect(addr(&t)).await.unwrap();
    let started = Instant::now();
    stream.write_all(head.as_bytes()).await.unwrap();
    let answer = read_to_close(&mut stream, Duration::from_secs(3)).await;
    let took = started.elapsed();
    let answer = answer.unwrap_or_else(|| panic!("no answer to a stalled body after {took:?}"));
    assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");
    assert!(took < Duration::from_millis(1500), "{took:?}");
    // A body sent a byte every 100 ms never stalls for 300 ms, but the request as a whole
    // must be answered within 1 s: 408.
    let mut stream = TcpStream::connect(addr(&t)).await.unwrap();
    let started = Instant::now();
    stream.write_all(head.as_bytes()).await.unwrap();
    let trickle = async {
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if stream.write_all(b" ").await.is_err() {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_millis(1500), trickle).await;
    let answer = read_to_close(&mut stream, Duration::from_secs(2))
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(3));
    t.stop().await;
}

fn open_files_limit() -> usize {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|n| n.parse().ok())
        .unwrap_or(usize::MAX)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_past_the_limit_do_not_starve_new_ones() {
    const IDLE: usize = 1_100;
    // Client and server ends both live in this process.
    assert!(
        open_files_limit() >= 4 * IDLE,
        "this test needs `ulimit -n` of at least {}",
        4 * IDLE
    );
    // The default limit, 1,024 connections.
    let t = TestApp::spawn(Backend::Sqlite).await;
    let mut idle = Vec::with_capacity(IDLE);
    let mut buf = [0u8; 512];
    for i in 0..IDLE {
        let mut stream = TcpStream::connect(addr(&t)).await.unwrap();
        // A third are keep-alive connections after one request, a third never sent anything,
        // a third sent the start of their headers.
        if i % 3 == 2 {
            stream
                .write_all(b"GET /healthz HTTP/1.1\r\n")
                .await
                .unwrap();
        }
        if i % 3 == 0 {
            stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .unwrap();
            let n = stream.read(&mut buf).await.unwrap();
            assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "request {i}");
        }
        idle.push(stream);
    }
    let started = Instant::now();
    let answer = tokio::time::timeout(
        Duration::from_secs(2),
        reqwest::get(format!("{}/healthz", t.base)),
    )
    .await;
    let took = started.elapsed();
    let resp = answer
        .unwrap_or_else(|_| {
            panic!("/healthz did not answer within 2 s beside {IDLE} idle connections")
        })
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    eprintln!("edge: /healthz answered in {took:?} beside {IDLE} idle connections");
    // The server made room by closing the connections idle the longest.
    let closed = eventually(Duration::from_secs(5), "idle connections closed", || {
        let closed = idle
            .iter()
            .filter(|s| !matches!(s.try_read(&mut [0u8; 1]), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock))
            .count();
        async move { (closed > IDLE - 1024).then_some(closed) }
    })
    .await;
    eprintln!("edge: {closed} of {IDLE} idle connections closed by the server");
    drop(idle);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_are_echoed_or_generated() {
    let t = TestApp::spawn(Backend::Sqlite).await;
    let get = |id: Option<&str>| {
        let mut req = t.client.get(format!("{}/healthz", t.base));
        if let Some(id) = id {
            req = req.header("x-request-id", id);
        }
        async move {
            let resp = req.send().await.unwrap();
            resp.headers()["x-request-id"].to_str().unwrap().to_owned()
        }
    };
    assert_eq!(get(Some("lb-7f3a.42")).await, "lb-7f3a.42");
    let generated = get(None).await;
    assert!(uuid::Uuid::parse_str(&generated).is_ok(), "{generated}");
    let long = "x".repeat(129);
    for unusable in ["two words", long.as_str()] {
        let replaced = get(Some(unusable)).await;
        assert!(
            uuid::Uuid::parse_str(&replaced).is_ok(),
            "{unusable:?} → {replaced}"
        );
    }
    // Errors carry it too.
    let resp = t
        .client
        .get(format!("{}/v1/opportunities", t.base))
        .header("x-request-id", "no-key-1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.headers()["x-request-id"], "no-key-1");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_has_an_access_log_line() {
    let logs = logs::capture("info");
    let t = TestApp::spawn(Backend::Sqlite).await;
    let id = t.create("lead-1", 300).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let resp = t
        .client
        .get(format!("{}/v1/opportunities/{id}", t.base))
        .bearer_auth(&t.key)
        .header("x-request-id", "edge-log-1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let access_line = |request_id: &'static str| {
        let logs = logs.clone();
        eventually(Duration::from_secs(2), "the access line", move || {
            let text = logs.text();
            let line = text
                .lines()
                .find(|l| l.contains(request_id) && l.contains("request answered"))
                .map(str::to_owned);
            async move { line }
        })
    };
    let line = access_line("request_id=edge-log-1").await;
    for part in [
        "route=/v1/opportunities/{id}",
        "method=GET",
        &format!("tenant={}", t.tenant),
        "status=200",
        "latency_ms=",
    ] {
        assert!(line.contains(part), "{part} missing from: {line}");
    }
    // The route's template, not the path: ids stay out of the access log.
    assert!(!line.contains(&id), "{line}");
    // A console page names its operator's tenant too.
    let cookie = sign_in(&t, &t.key).await;
    let resp = browser()
        .get(format!("{}/console/opportunities/{id}", t.base))
        .header(header::COOKIE, cookie)
        .header("x-request-id", "edge-log-2")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let line = access_line("request_id=edge-log-2").await;
    assert!(line.contains("route=/console/opportunities/{id}"), "{line}");
    assert!(line.contains(&format!("tenant={}", t.tenant)), "{line}");
    t.stop().await;
}
