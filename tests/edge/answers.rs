//! What answers carry: gzip when asked (not the console's feed), the console's security
//! headers, 405 and 404 in JSON.

use std::time::Duration;

use base64::Engine as _;
use reqwest::{header, StatusCode};
use serde_json::Value;
use sha2::Digest;

use super::common::{Backend, TestApp};
use super::{browser, sign_in};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_are_compressed_when_asked_but_not_the_console_feed() {
    let t = TestApp::spawn(Backend::Sqlite).await;
    let get = |path: &str, gzip: bool| {
        let mut req = browser().get(format!("{}{path}", t.base));
        if gzip {
            req = req.header(header::ACCEPT_ENCODING, "gzip");
        }
        req
    };
    let resp = get("/openapi.json", true).send().await.unwrap();
    assert_eq!(resp.headers()[header::CONTENT_ENCODING], "gzip");
    let bytes = resp.bytes().await.unwrap();
    assert_eq!(&bytes[..2], &[0x1f, 0x8b], "a gzip stream");
    let resp = get("/openapi.json", false).send().await.unwrap();
    assert!(resp.headers().get(header::CONTENT_ENCODING).is_none());
    // Server-sent events are passed through as they come.
    let cookie = sign_in(&t, &t.key).await;
    let mut feed = get("/console/events", true)
        .header(header::COOKIE, cookie)
        .send()
        .await
        .unwrap();
    assert!(feed.headers().get(header::CONTENT_ENCODING).is_none());
    let first = tokio::time::timeout(Duration::from_secs(5), feed.chunk())
        .await
        .expect("the first event arrives unbuffered")
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&first).contains("event: ready"));
    drop(feed);
    t.stop().await;
}

/// `'sha256-…'` of an inline block, as a Content-Security-Policy names it.
fn csp_hash(block: &str) -> String {
    let digest = sha2::Sha256::digest(block.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// The contents of every inline `<tag>` block (a `<script src=…>` is not inline).
fn inline_blocks<'a>(page: &'a str, tag: &str) -> Vec<&'a str> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    page.match_indices(&open)
        .filter_map(|(at, _)| {
            let body = &page[at + open.len()..];
            body.find(&close).map(|end| &body[..end])
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_pages_carry_security_headers() {
    let t = TestApp::spawn(Backend::Sqlite).await;
    let resp = browser()
        .get(format!("{}/console/login", t.base))
        .send()
        .await
        .unwrap();
    let h = resp.headers();
    assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(h[header::X_FRAME_OPTIONS], "DENY");
    assert_eq!(h[header::REFERRER_POLICY], "no-referrer");
    let csp = h[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    for directive in [
        "default-src 'none'",
        "frame-ancestors 'none'",
        "script-src 'self'",
    ] {
        assert!(csp.contains(directive), "{directive} missing from {csp}");
    }
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    // Every inline block a signed-in page serves is allowed by the policy.
    t.create("lead-1", 300).await;
    let cookie = sign_in(&t, &t.key).await;
    let page = browser()
        .get(format!("{}/console", t.base))
        .header(header::COOKIE, cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let blocks: Vec<&str> = ["script", "style"]
        .iter()
        .flat_map(|tag| inline_blocks(&page, tag))
        .collect();
    assert_eq!(
        blocks.len(),
        2,
        "one inline script and one style: {blocks:?}"
    );
    for block in blocks {
        let hash = csp_hash(block);
        assert!(
            csp.contains(&hash),
            "an inline block of the console changed: put {hash} in CONTENT_SECURITY_POLICY \
             (src/http/console/mod.rs) in place of the old one"
        );
    }
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_method_answers_405_in_json_with_allow() {
    let t = TestApp::spawn(Backend::Sqlite).await;
    let (status, body) = t
        .request(
            reqwest::Method::DELETE,
            "/v1/opportunities/abc/timeline",
            Some(&t.key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{body}");
    assert_eq!(body["error"], "method_not_allowed", "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("DELETE"),
        "{body}"
    );
    let resp = t
        .client
        .put(format!("{}/healthz", t.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    let allow = resp.headers()[header::ALLOW].to_str().unwrap().to_owned();
    assert!(allow.contains("GET"), "{allow}");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "method_not_allowed");
    let (status, body) = t.get("/v1/no-such-thing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "not_found", "{body}");
    t.stop().await;
}
