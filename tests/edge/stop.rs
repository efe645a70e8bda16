//! The stop: `/readyz` 503 first, then in-flight requests drained; an open console feed ends
//! at once.

use std::time::{Duration, Instant};

use reqwest::{header, StatusCode};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::common::{self, eventually, Backend, TestApp};
use super::{addr, browser, read_to_close, sign_in};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_turns_readyz_503_first_then_drains_in_flight_requests() {
    let mut t = TestApp::spawn_with(Backend::Sqlite, |s| s.server.drain_delay_ms = 2000).await;
    let (status, _) = t.request(reqwest::Method::GET, "/readyz", None, None).await;
    assert_eq!(status, StatusCode::OK);
    // A create whose body is half sent when the signal comes.
    let body = serde_json::to_string(&common::lead("in-flight", 300)).unwrap();
    let (first, rest) = body.split_at(body.len() / 2);
    let mut in_flight = TcpStream::connect(addr(&t)).await.unwrap();
    let head = format!(
        "POST /v1/opportunities HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{first}",
        t.key,
        body.len()
    );
    in_flight.write_all(head.as_bytes()).await.unwrap();
    let (signal, signalled) = tokio::sync::oneshot::channel::<()>();
    let app = t.app.take().unwrap();
    let running = tokio::spawn(app.run_until(async move {
        let _ = signalled.await;
    }));
    let signal_at = Instant::now();
    signal.send(()).unwrap();
    // Not ready at once, while still answering...
    eventually(
        Duration::from_millis(1800),
        "/readyz to answer 503",
        || async {
            let (status, body) = t.request(reqwest::Method::GET, "/readyz", None, None).await;
            (status == StatusCode::SERVICE_UNAVAILABLE && body["draining"] == true).then_some(())
        },
    )
    .await;
    // ...then the listener closes after the drain delay...
    let closed_after = eventually(Duration::from_secs(3), "the listener to close", || async {
        TcpStream::connect(addr(&t))
            .await
            .is_err()
            .then(|| signal_at.elapsed())
    })
    .await;
    assert!(
        closed_after >= Duration::from_millis(1900),
        "{closed_after:?}"
    );
    // ...and the request in flight still completes.
    in_flight.write_all(rest.as_bytes()).await.unwrap();
    let answer = read_to_close(&mut in_flight, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("the instance stops")
        .unwrap()
        .unwrap();
    eprintln!(
        "edge: signal → listener closed {closed_after:?}, stopped {:?}",
        signal_at.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_console_feed_does_not_hold_up_shutdown() {
    let t = TestApp::spawn(Backend::Sqlite).await;
    let cookie = sign_in(&t, &t.key).await;
    let mut feed = browser()
        .get(format!("{}/console/events", t.base))
        .header(header::COOKIE, cookie)
        .send()
        .await
        .unwrap();
    let first = feed.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("event: ready"));
    let started = Instant::now();
    let stopping = tokio::spawn(t.stop());
    // The feed ends (rather than being cut after the drain timeout)...
    let ended = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            match feed.chunk().await {
                Ok(Some(_)) => continue,
                Ok(None) => break true,
                Err(_) => break false,
            }
        }
    })
    .await
    .expect("the feed ends within 3 s");
    assert!(ended, "the feed ended cleanly");
    // ...and the whole stop is quick.
    tokio::time::timeout(Duration::from_secs(5), stopping)
        .await
        .expect("shutdown within 5 s")
        .unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "{took:?}");
    eprintln!("edge: shutdown with an open console feed took {took:?}");
}
