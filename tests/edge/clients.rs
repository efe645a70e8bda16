//! Who the client is: `X-Forwarded-For` from trusted proxies only, and the failed-key limit
//! that never locks out a right key.

use std::net::IpAddr;

use reqwest::{Client, StatusCode};

use super::common::{Backend, TestApp};
use super::sign_in;

async fn with_forwarded(t: &TestApp, from: IpAddr, forwarded: &str, key: &str) -> StatusCode {
    Client::builder()
        .local_address(from)
        .build()
        .unwrap()
        .get(format!("{}/v1/opportunities", t.base))
        .bearer_auth(key)
        .header("x-forwarded-for", forwarded)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_clients_count_apart_only_behind_trusted_proxies() {
    let t = TestApp::spawn_with(Backend::Sqlite, |s| {
        s.server.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;
    let proxy: IpAddr = "127.0.0.1".parse().unwrap();
    let stranger: IpAddr = "127.0.0.2".parse().unwrap();
    let bad = "nxk_0123456789ab_wrong";
    // Client A guesses through the trusted proxy until it is refused...
    for _ in 0..10 {
        let status = with_forwarded(&t, proxy, "198.51.100.1, 203.0.113.7", bad).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        with_forwarded(&t, proxy, "203.0.113.7", bad).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // ...while client B behind the same proxy is not.
    assert_eq!(
        with_forwarded(&t, proxy, "203.0.113.8", bad).await,
        StatusCode::UNAUTHORIZED
    );
    // An untrusted peer's header is ignored: claiming to be A does not make it A, and new
    // made-up addresses do not get it a fresh budget.
    assert_eq!(
        with_forwarded(&t, stranger, "203.0.113.7", bad).await,
        StatusCode::UNAUTHORIZED
    );
    for i in 0..9 {
        let made_up = format!("192.0.2.{i}");
        assert_eq!(
            with_forwarded(&t, stranger, &made_up, bad).await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        with_forwarded(&t, stranger, "192.0.2.99", bad).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_right_key_is_not_locked_out_by_its_addresses_failures() {
    let t = TestApp::spawn(Backend::Sqlite).await;
    for _ in 0..10 {
        let (status, _) = t
            .request(
                reqwest::Method::GET,
                "/v1/opportunities",
                Some("nxk_0123456789ab_x"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, _) = t
        .request(
            reqwest::Method::GET,
            "/v1/opportunities",
            Some("nxk_0123456789ab_x"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let (status, body) = t.get("/v1/opportunities").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    sign_in(&t, &t.key).await;
    t.stop().await;
}
