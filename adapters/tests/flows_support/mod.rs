//! The TwiML app of `carrier_sim_flows`: serves a document per path, receives every status
//! callback, and records each request with whether its `X-Twilio-Signature` checks out (with the
//! crate's own validator). Plus the polling helpers, which wait with a deadline, never a sleep.
#![allow(clippy::unwrap_used)]
// Shared by two test crates, each of which uses only part of it.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::Router;
use neuronx_adapters::carrier_sim::{
    self, CallDetail, CallOutcome, CalleeMix, Delivery, FlowConfig, OutcomeMix, ReplyMix,
    SimConfig, SimHandle, SimStats, Timing,
};
use neuronx_adapters::twilio::{
    signature, ClientConfig, CreateCall, StatusCallbackEvent, TwilioClient, TwilioCredentials,
};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub const SID: &str = "AC0123456789abcdef0123456789abcdef";
pub const TOKEN: &str = "flow-test-token";
pub const OURS: &str = "+15005550001";
pub const LEAD: &str = "+15551234567";

// ---------------------------------------------------------------------------------------------
// The test's TwiML app: answers each path from a table, records every request.

pub type Params = Vec<(String, String)>;

#[derive(Debug, Clone)]
pub struct Req {
    pub path: String,
    pub method: Method,
    pub params: Params,
    pub valid: bool,
}

impl Req {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn seq(&self) -> u64 {
        self.get("SequenceNumber").unwrap().parse().unwrap()
    }
}

#[derive(Clone)]
pub struct AppState {
    base: String,
    requests: Arc<Mutex<Vec<Req>>>,
    /// Path → (HTTP status, body). Unlisted paths answer 200 with an empty body (callbacks).
    routes: Arc<Mutex<HashMap<String, (u16, String)>>>,
}

pub struct App {
    pub base: String,
    state: AppState,
    task: JoinHandle<()>,
}

impl App {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = AppState {
            base: base.clone(),
            requests: Arc::default(),
            routes: Arc::default(),
        };
        let app = Router::new().fallback(serve).with_state(state.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { base, state, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn twiml(&self, path: &str, body: &str) {
        self.answer(path, 200, body);
    }

    pub fn answer(&self, path: &str, status: u16, body: &str) {
        self.state
            .routes
            .lock()
            .unwrap()
            .insert(path.to_string(), (status, body.to_string()));
    }

    pub fn requests(&self, path: &str) -> Vec<Req> {
        let all = self.state.requests.lock().unwrap().clone();
        let reqs: Vec<Req> = all.into_iter().filter(|r| r.path == path).collect();
        assert!(reqs.iter().all(|r| r.valid), "bad signature in {reqs:#?}");
        reqs
    }

    /// Requests to `path` whose `key` is `value`.
    pub fn requests_with(&self, path: &str, key: &str, value: &str) -> Vec<Req> {
        self.requests(path)
            .into_iter()
            .filter(|r| r.get(key) == Some(value))
            .collect()
    }

    /// Polls until `n` requests to `path` carry `key=value`.
    pub async fn wait_for(&self, path: &str, key: &str, value: &str, n: usize) -> Vec<Req> {
        eventually(
            &format!("{n} requests to {path} with {key}={value}"),
            || {
                let reqs = self.requests_with(path, key, value);
                (reqs.len() >= n).then_some(reqs)
            },
        )
        .await
    }
}

impl Drop for App {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn serve(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str());
    let url = format!("{}{}", state.base, path_and_query);
    // A POST signs its form parameters; a GET signs its full URL alone.
    let get = method == Method::GET;
    let params: Params = if get {
        serde_urlencoded::from_str(uri.query().unwrap_or_default()).unwrap()
    } else {
        serde_urlencoded::from_bytes(&body).unwrap()
    };
    let signed: &[(String, String)] = if get { &[] } else { &params };
    let sig = headers
        .get("X-Twilio-Signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let valid = signature::validate(TOKEN, &url, signed, sig);
    state.requests.lock().unwrap().push(Req {
        path: uri.path().to_string(),
        method,
        params,
        valid,
    });
    let route = state.routes.lock().unwrap().get(uri.path()).cloned();
    match route {
        Some((status, body)) => (StatusCode::from_u16(status).unwrap(), body),
        None => (StatusCode::OK, String::new()),
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// Polls `probe` until it gives a value, or fails after 10 s (the machine may be busy).
pub async fn eventually<T>(what: &str, probe: impl Fn() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

pub fn config(outcome: CallOutcome) -> SimConfig {
    SimConfig {
        account_sid: SID.into(),
        auth_token: TOKEN.into(),
        outcome_mix: OutcomeMix::all(outcome),
        timing: Timing::fast(),
        flow: FlowConfig::fast(),
        reply_mix: ReplyMix {
            probability: 0.0,
            ..ReplyMix::default()
        },
        delivery: Delivery {
            max_retries: 3,
            backoff_ms: 5,
            timeout_ms: 2000,
        },
        seed: 7,
        ..SimConfig::default()
    }
}

pub async fn start(config: SimConfig) -> SimHandle {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    carrier_sim::start(config, listener).await.unwrap()
}

pub fn client(sim: &SimHandle) -> TwilioClient {
    let creds = TwilioCredentials {
        account_sid: SID.into(),
        auth_token: TOKEN.into(),
    };
    let guard =
        neuronx_adapters::outbound::OutboundGuard::from_allow_list(&["127.0.0.0/8"]).unwrap();
    TwilioClient::new(&sim.base_url, creds, ClientConfig::default(), &guard).unwrap()
}

/// A call to the lead that fetches its TwiML from `/answer` and reports every status to
/// `/status`.
pub fn url_call(app: &App) -> CreateCall {
    CreateCall {
        to: LEAD.into(),
        from: OURS.into(),
        url: Some(app.url("/answer")),
        status_callback: app.url("/status"),
        status_callback_events: StatusCallbackEvent::ALL.to_vec(),
        ..CreateCall::default()
    }
}

/// Waits until the call has ended and its flow has finished.
pub async fn finished(sim: &SimHandle, sid: &str) -> CallDetail {
    eventually(&format!("call {sid} to finish"), || {
        sim.call_detail(sid)
            .filter(|d| d.status == "completed" && d.flow_end.is_some())
    })
    .await
}

pub async fn stats_when(sim: &SimHandle, what: &str, done: impl Fn(&SimStats) -> bool) -> SimStats {
    eventually(what, || Some(sim.stats()).filter(|s| done(s))).await
}

pub fn count(map: &BTreeMap<String, u64>, key: &str) -> u64 {
    map.get(key).copied().unwrap_or(0)
}

pub fn ringing(ring_ms: u64, talk_ms: u64) -> CalleeMix {
    CalleeMix {
        ring_ms,
        talk_ms,
        ..CalleeMix::always_answer()
    }
}
