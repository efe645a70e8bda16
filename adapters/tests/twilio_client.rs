//! The Twilio REST client against real HTTP servers (wiremock, plus one raw TCP server for a
//! connection that dies mid-request). Focus: what goes on the wire, and that a create is never
//! sent twice when its outcome is unknown.

use std::time::{Duration, Instant};

use base64::Engine as _;
use neuronx_adapters::twilio::{
    CallStatus, ClientConfig, CreateCall, CreateMessage, HangupStatus, MessageStatus,
    StatusCallbackEvent, TwilioClient, TwilioCredentials, TwilioError,
};
use tokio::io::AsyncReadExt;
use wiremock::matchers::{basic_auth, header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const SID: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "test-auth-token";
const CALL_SID: &str = "CA11111111111111111111111111111111";
const MSG_SID: &str = "SM22222222222222222222222222222222";

fn calls_path() -> String {
    format!("/2010-04-01/Accounts/{SID}/Calls.json")
}

fn call_path() -> String {
    format!("/2010-04-01/Accounts/{SID}/Calls/{CALL_SID}.json")
}

fn config() -> ClientConfig {
    ClientConfig {
        timeout: Duration::from_millis(400),
        connect_timeout: Duration::from_millis(400),
        max_retries: 3,
        backoff_base: Duration::from_millis(5),
        backoff_max: Duration::from_millis(50),
        lookup_timeout: Duration::from_millis(400),
    }
}

fn client_for(base: &str, config: ClientConfig) -> TwilioClient {
    let creds = TwilioCredentials {
        account_sid: SID.into(),
        auth_token: TOKEN.into(),
    };
    // wiremock listens on loopback, which tenant hosts may reach only where allowed.
    let loopback = neuronx_adapters::outbound::OutboundGuard::from_allow_list(&["127.0.0.0/8"])
        .expect("allow-list");
    match TwilioClient::new(base, creds, config, &loopback) {
        Ok(c) => c,
        Err(e) => panic!("client: {e}"),
    }
}

fn call_json(status: &str) -> serde_json::Value {
    serde_json::json!({
        "sid": CALL_SID,
        "account_sid": SID,
        "status": status,
        "to": "+15005550006",
        "from": "+15005550001",
        "direction": "outbound-api",
        "answered_by": null,
        "duration": null,
        "date_created": "Tue, 31 Aug 2010 20:36:28 +0000",
        "subresource_uris": { "notifications": "/x" },
        "some_future_field": 42
    })
}

fn request() -> CreateCall {
    CreateCall {
        to: "+15005550006".into(),
        from: "+15005550001".into(),
        url: Some("https://neuronx.example/twiml/greet".into()),
        twiml: None,
        status_callback: "https://neuronx.example/hooks/call?attempt=a1".into(),
        status_callback_events: StatusCallbackEvent::ALL.to_vec(),
        machine_detection: Some("DetectMessageEnd".into()),
        timeout_seconds: Some(25),
    }
}

fn form(req: &Request) -> Vec<(String, String)> {
    match serde_urlencoded::from_bytes(&req.body) {
        Ok(f) => f,
        Err(e) => panic!("form body: {e}"),
    }
}

fn values<'a>(form: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    form.iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

async fn received(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.unwrap_or_default()
}

#[tokio::test]
async fn create_call_sends_form_auth_and_parses_response() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(calls_path()))
        .and(basic_auth(SID, TOKEN))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(header("accept", "application/json"))
        .respond_with(ResponseTemplate::new(201).set_body_json(call_json("queued")))
        .expect(1)
        .mount(&server)
        .await;

    let client = client_for(&server.uri(), config());
    let call = client.create_call(&request()).await;
    let call = match call {
        Ok(c) => c,
        Err(e) => panic!("create_call: {e}"),
    };
    assert_eq!(call.sid, CALL_SID);
    assert_eq!(call.status, CallStatus::Queued);
    assert_eq!(call.direction.as_deref(), Some("outbound-api"));
    assert_eq!(call.answered_by, None);

    let reqs = received(&server).await;
    assert_eq!(reqs.len(), 1);
    let expected_auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{SID}:{TOKEN}"))
    );
    let auth = reqs[0].headers.get("authorization").map(|v| v.as_bytes());
    assert_eq!(auth, Some(expected_auth.as_bytes()));

    let f = form(&reqs[0]);
    assert_eq!(values(&f, "To"), ["+15005550006"]);
    assert_eq!(values(&f, "From"), ["+15005550001"]);
    assert_eq!(values(&f, "Url"), ["https://neuronx.example/twiml/greet"]);
    assert_eq!(
        values(&f, "StatusCallback"),
        ["https://neuronx.example/hooks/call?attempt=a1"]
    );
    assert_eq!(values(&f, "StatusCallbackMethod"), ["POST"]);
    assert_eq!(
        values(&f, "StatusCallbackEvent"),
        ["initiated", "ringing", "answered", "completed"]
    );
    assert_eq!(values(&f, "MachineDetection"), ["DetectMessageEnd"]);
    assert_eq!(values(&f, "Timeout"), ["25"]);
    assert!(values(&f, "Twiml").is_empty());
}

#[tokio::test]
async fn create_call_retries_after_429_and_creates_once() {
    let server = MockServer::start().await;
    let limited = serde_json::json!({"code": 20429, "message": "Too Many Requests", "status": 429});
    Mock::given(method("POST"))
        .and(path(calls_path()))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "0")
                .set_body_json(limited),
        )
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(calls_path()))
        .respond_with(ResponseTemplate::new(201).set_body_json(call_json("queued")))
        .expect(1)
        .mount(&server)
        .await;

    let client = client_for(&server.uri(), config());
    let call = client.create_call(&request()).await;
    assert!(matches!(call, Ok(ref c) if c.sid == CALL_SID), "{call:?}");
    assert_eq!(received(&server).await.len(), 2);
}

/// A create that waits out a 429 asks its caller before trying again: withdrawn meanwhile (the
/// lead opted out), it is not sent again; still wanted, it is.
#[tokio::test]
async fn a_create_withdrawn_while_it_waits_to_retry_is_not_sent_again() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(calls_path()))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "0"))
        .mount(&server)
        .await;
    let client = client_for(&server.uri(), config());
    let mut asked = 0;
    let call = client
        .create_call_while(&request(), || {
            asked += 1;
            std::future::ready(false)
        })
        .await;
    assert!(matches!(call, Err(TwilioError::Withdrawn)), "{call:?}");
    assert_eq!(asked, 1, "asked once, before the first retry");
    assert_eq!(received(&server).await.len(), 1, "never sent again");

    // Still wanted: retried up to the budget as before, asking before each retry.
    let mut asked = 0;
    let call = client
        .create_call_while(&request(), || {
            asked += 1;
            std::future::ready(true)
        })
        .await;
    assert!(
        matches!(call, Err(TwilioError::RateLimited { .. })),
        "{call:?}"
    );
    let retries = config().max_retries as usize;
    assert_eq!(asked, retries);
    assert_eq!(received(&server).await.len(), 1 + 1 + retries);
}

#[tokio::test]
async fn create_call_retries_503_twice_then_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(calls_path()))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(calls_path()))
        .respond_with(ResponseTemplate::new(201).set_body_json(call_json("queued")))
        .expect(1)
        .mount(&server)
        .await;

    let client = client_for(&server.uri(), config());
    let call = client.create_call(&request()).await;
    assert!(call.is_ok(), "{call:?}");
    assert_eq!(received(&server).await.len(), 3);
}

#[tokio::test]
async fn create_call_on_500_is_unknown_and_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(calls_path()))
        .respond_with(ResponseTemplate::new(500))
        .expect(1)
        .mount(&server)
        .await;

    let client = client_for(&server.uri(), config());
    let err = client.create_call(&request()).await;
    assert!(
        matches!(err, Err(TwilioError::UnknownOutcome(_))),
        "{err:?}"
    );
    assert_eq!(received(&server).await.len(), 1);
}

#[tokio::test]
async fn create_call_timeout_is_unknown_and_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(calls_path()))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(call_json("queued"))
                .set_delay(Duration::from_secs(3)),
        )
        .expect(1)
        .mount(&server)
        .await;

    let client = client_for(&server.uri(), config());
    let started = Instant::now();
    let err = client.create_call(&request()).await;
    assert!(
        matches!(err, Err(ref e) if e.is_unknown_outcome()),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(received(&server).await.len(), 1);
}

#[tokio::test]
async fn create_message_reset_mid_request_is_unknown_and_not_retried() {
    // A server that accepts, reads the request, then hangs up without answering.
    let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
        Ok(l) => l,
        Err(e) => panic!("bind: {e}"),
    };
    let base = match listener.local_addr() {
        Ok(a) => format!("http://{a}"),
        Err(e) => panic!("addr: {e}"),
    };
    let accepted = tokio::spawn(async move {
        let mut count = 0u32;
        while let Ok(Ok((mut sock, _))) =
            tokio::time::timeout(Duration::from_millis(800), listener.accept()).await
        {
            count += 1;
            let mut buf = [0u8; 4096];
            let _ = sock.read(&mut buf).await;
            drop(sock);
        }
        count
    });

    let client = client_for(&base, config());
    let msg = CreateMessage {
        to: "+15005550006".into(),
        from: "+15005550001".into(),
        body: "hello".into(),
        status_callback: String::new(),
    };
    let err = client.create_message(&msg).await;
    assert!(
        matches!(err, Err(TwilioError::UnknownOutcome(_))),
        "{err:?}"
    );
    assert_eq!(accepted.await.ok(), Some(1));
}

#[tokio::test]
async fn create_retries_connect_failures_then_reports_connect() {
    // Reserve a port, then free it so nothing listens there.
    let port = match std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
        Ok(a) => a.port(),
        Err(e) => panic!("bind: {e}"),
    };
    let client = client_for(&format!("http://127.0.0.1:{port}"), config());
    let err = client.create_call(&request()).await;
    assert!(matches!(err, Err(TwilioError::Connect(_))), "{err:?}");
}

#[tokio::test]
async fn persistent_429_gives_rate_limited_after_budget() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(calls_path()))
        .respond_with(ResponseTemplate::new(429))
        .expect(4)
        .mount(&server)
        .await;

    let client = client_for(&server.uri(), config());
    let err = client.create_call(&request()).await;
    assert!(
        matches!(err, Err(TwilioError::RateLimited { .. })),
        "{err:?}"
    );
    assert_eq!(received(&server).await.len(), 4);
}

#[tokio::test]
async fn retry_after_is_honoured_up_to_backoff_max() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(call_path()))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "30"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(call_path()))
        .respond_with(ResponseTemplate::new(200).set_body_json(call_json("ringing")))
        .mount(&server)
        .await;

    let mut cfg = config();
    cfg.backoff_base = Duration::from_millis(1);
    cfg.backoff_max = Duration::from_millis(300);
    let client = client_for(&server.uri(), cfg);
    let started = Instant::now();
    let call = client.fetch_call(CALL_SID).await;
    let elapsed = started.elapsed();
    assert!(
        matches!(call, Ok(ref c) if c.status == CallStatus::Ringing),
        "{call:?}"
    );
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
}

#[tokio::test]
async fn fetch_call_retries_500_then_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(call_path()))
        .and(basic_auth(SID, TOKEN))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    let mut done = call_json("completed");
    done["answered_by"] = "machine_end_beep".into();
    done["duration"] = 49.into(); // simulators may send numbers
    Mock::given(method("GET"))
        .and(path(call_path()))
        .respond_with(ResponseTemplate::new(200).set_body_json(done))
        .expect(1)
        .mount(&server)
        .await;

    let client = client_for(&server.uri(), config());
    let call = match client.fetch_call(CALL_SID).await {
        Ok(c) => c,
        Err(e) => panic!("fetch_call: {e}"),
    };
    assert_eq!(call.status, CallStatus::Completed);
    assert_eq!(call.answered_by.as_deref(), Some("machine_end_beep"));
    assert_eq!(call.duration.as_deref(), Some("49"));
}

#[tokio::test]
async fn fetch_call_timeouts_are_retried_then_reported() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(call_path()))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(2)))
        .expect(2)
        .mount(&server)
        .await;

    let mut cfg = config();
    cfg.timeout = Duration::from_millis(200);
    cfg.max_retries = 1;
    let client = client_for(&server.uri(), cfg);
    let err = client.fetch_call(CALL_SID).await;
    assert!(matches!(err, Err(TwilioError::Timeout)), "{err:?}");
    assert_eq!(received(&server).await.len(), 2);
}

#[tokio::test]
async fn bad_request_maps_to_api_error_with_code() {
    let server = MockServer::start().await;
    let body = serde_json::json!({
        "code": 21211,
        "message": "The 'To' number +1555 is not a valid phone number.",
        "more_info": "https://www.twilio.com/docs/errors/21211",
        "status": 400
    });
    Mock::given(method("POST"))
        .and(path(calls_path()))
        .respond_with(ResponseTemplate::new(400).set_body_json(body))
        .expect(1)
        .mount(&server)
        .await;

    let client = client_for(&server.uri(), config());
    match client.create_call(&request()).await {
        Err(TwilioError::Api {
            status,
            code,
            more_info,
            ..
        }) => {
            assert_eq!(status, 400);
            assert_eq!(code, Some(21211));
            assert_eq!(
                more_info.as_deref(),
                Some("https://www.twilio.com/docs/errors/21211")
            );
        }
        other => panic!("expected api error, got {other:?}"),
    }
    assert_eq!(received(&server).await.len(), 1);
}

#[tokio::test]
async fn fetch_of_missing_call_is_not_found_and_not_retried() {
    let server = MockServer::start().await;
    let body = serde_json::json!({"code": 20404, "message": "not found", "status": 404});
    Mock::given(method("GET"))
        .and(path(call_path()))
        .respond_with(ResponseTemplate::new(404).set_body_json(body))
        .expect(1)
        .mount(&server)
        .await;

    let client = client_for(&server.uri(), config());
    let err = client.fetch_call(CALL_SID).await;
    assert!(matches!(err, Err(ref e) if e.is_not_found()), "{err:?}");
}

#[tokio::test]
async fn hangup_posts_status_completed() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(call_path()))
        .and(basic_auth(SID, TOKEN))
        .respond_with(ResponseTemplate::new(200).set_body_json(call_json("completed")))
        .expect(1)
        .mount(&server)
        .await;

    let client = client_for(&server.uri(), config());
    let call = client.hangup_call(CALL_SID, HangupStatus::Completed).await;
    assert!(
        matches!(call, Ok(ref c) if c.status == CallStatus::Completed),
        "{call:?}"
    );
    let reqs = received(&server).await;
    assert_eq!(
        form(&reqs[0]),
        [("Status".to_string(), "completed".to_string())]
    );
}

#[tokio::test]
async fn create_and_fetch_message() {
    let server = MockServer::start().await;
    let messages = format!("/2010-04-01/Accounts/{SID}/Messages.json");
    let one = format!("/2010-04-01/Accounts/{SID}/Messages/{MSG_SID}.json");
    Mock::given(method("POST"))
        .and(path(messages))
        .and(basic_auth(SID, TOKEN))
        .respond_with(ResponseTemplate::new(201).set_body_json(serde_json::json!({
            "sid": MSG_SID, "status": "queued", "to": "+15005550006", "from": "+15005550001",
            "body": "Hi, it's NeuronX", "direction": "outbound-api", "error_code": null,
            "error_message": null, "num_segments": "1", "uri": "/ignored"
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(one))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "sid": MSG_SID, "status": "undelivered", "error_code": 30003,
            "error_message": "Unreachable destination handset", "body": "Hi, it's NeuronX"
        })))
        .expect(1)
        .mount(&server)
        .await;

    let client = client_for(&server.uri(), config());
    let req = CreateMessage {
        to: "+15005550006".into(),
        from: "+15005550001".into(),
        body: "Hi, it's NeuronX".into(),
        status_callback: "https://neuronx.example/hooks/sms?m=1".into(),
    };
    let created = match client.create_message(&req).await {
        Ok(m) => m,
        Err(e) => panic!("create_message: {e}"),
    };
    assert_eq!(created.sid, MSG_SID);
    assert_eq!(created.status, MessageStatus::Queued);
    assert_eq!(created.error_code, None);
    assert!(
        !format!("{created:?}").contains("NeuronX"),
        "body must not be in Debug"
    );

    let reqs = received(&server).await;
    let f = form(&reqs[0]);
    assert_eq!(values(&f, "To"), ["+15005550006"]);
    assert_eq!(values(&f, "From"), ["+15005550001"]);
    assert_eq!(values(&f, "Body"), ["Hi, it's NeuronX"]);
    assert_eq!(
        values(&f, "StatusCallback"),
        ["https://neuronx.example/hooks/sms?m=1"]
    );

    let fetched = match client.fetch_message(MSG_SID).await {
        Ok(m) => m,
        Err(e) => panic!("fetch_message: {e}"),
    };
    assert_eq!(fetched.status, MessageStatus::Undelivered);
    assert_eq!(fetched.error_code, Some(30003));
}
