//! The carrier simulator over real HTTP both ways: our Twilio client drives its REST API, and a
//! small axum receiver records every webhook and checks its `X-Twilio-Signature`.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::Router;
use neuronx_adapters::carrier_sim::{
    self, CallOutcome, Delivery, Disorder, OutcomeMix, ReplyMix, SimConfig, SimHandle, SimStats,
    Timing,
};
use neuronx_adapters::twilio::{
    signature, CallStatus, ClientConfig, CreateCall, CreateMessage, HangupStatus, MessageStatus,
    StatusCallbackEvent, TwilioClient, TwilioCredentials, TwilioError,
};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;

const SID: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "sim-test-token";
const OURS: &str = "+15005550001";
const LEAD: &str = "+15551234567";

// ---------------------------------------------------------------------------------------------
// Webhook receiver

#[derive(Debug, Clone)]
struct Hook {
    path: String,
    params: Vec<(String, String)>,
    signature: String,
    valid: bool,
}

impl Hook {
    fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn seq(&self) -> u64 {
        self.get("SequenceNumber").unwrap().parse().unwrap()
    }
}

#[derive(Clone)]
struct RecvState {
    base: String,
    hooks: Arc<Mutex<Vec<Hook>>>,
    /// Requests to `/flaky` answered 500 before it starts accepting.
    flaky_failures: Arc<AtomicU32>,
}

struct Receiver {
    base: String,
    state: RecvState,
    task: JoinHandle<()>,
}

impl Receiver {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = RecvState {
            base: base.clone(),
            hooks: Arc::default(),
            flaky_failures: Arc::new(AtomicU32::new(0)),
        };
        let app = Router::new().fallback(record).with_state(state.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { base, state, task }
    }

    fn hooks(&self) -> Vec<Hook> {
        self.state.hooks.lock().unwrap().clone()
    }

    /// Hooks whose parameter `key` equals `value`.
    fn hooks_with(&self, key: &str, value: &str) -> Vec<Hook> {
        self.hooks()
            .into_iter()
            .filter(|h| h.get(key) == Some(value))
            .collect()
    }

    /// Polls until `n` hooks match, or fails after 5 s.
    async fn wait_for(&self, key: &str, value: &str, n: usize) -> Vec<Hook> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let hooks = self.hooks_with(key, value);
            if hooks.len() >= n {
                assert!(hooks.iter().all(|h| h.valid), "bad signature in {hooks:#?}");
                return hooks;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {n} hooks with {key}={value}; got {hooks:#?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn record(
    State(state): State<RecvState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str());
    let url = format!("{}{}", state.base, path_and_query);
    let params: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap();
    let signature = headers
        .get("X-Twilio-Signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let valid = signature::validate(TOKEN, &url, &params, &signature);
    if uri.path() == "/flaky"
        && state
            .flaky_failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    state.hooks.lock().unwrap().push(Hook {
        path: uri.path().to_string(),
        params,
        signature,
        valid,
    });
    StatusCode::OK
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn config(outcome: CallOutcome) -> SimConfig {
    SimConfig {
        account_sid: SID.into(),
        auth_token: TOKEN.into(),
        outcome_mix: OutcomeMix::all(outcome),
        timing: Timing::fast(),
        reply_mix: ReplyMix {
            probability: 0.0,
            ..ReplyMix::default()
        },
        delivery: Delivery {
            max_retries: 3,
            backoff_ms: 5,
            timeout_ms: 2000,
        },
        seed: 42,
        ..SimConfig::default()
    }
}

async fn start(config: SimConfig) -> SimHandle {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    carrier_sim::start(config, listener).await.unwrap()
}

fn client(sim: &SimHandle, token: &str) -> TwilioClient {
    let creds = TwilioCredentials {
        account_sid: SID.into(),
        auth_token: token.into(),
    };
    TwilioClient::new(&sim.base_url, creds, ClientConfig::default(), &loopback()).unwrap()
}

fn call_to(to: &str, callback: String) -> CreateCall {
    CreateCall {
        to: to.into(),
        from: OURS.into(),
        twiml: Some("<Response><Pause length=\"1\"/></Response>".into()),
        status_callback: callback,
        status_callback_events: StatusCallbackEvent::ALL.to_vec(),
        ..CreateCall::default()
    }
}

/// Hooks sorted by `SequenceNumber`, with their statuses.
fn by_seq(mut hooks: Vec<Hook>) -> (Vec<u64>, Vec<String>) {
    hooks.sort_by_key(Hook::seq);
    let seqs = hooks.iter().map(Hook::seq).collect();
    let statuses = hooks
        .iter()
        .map(|h| h.get("CallStatus").unwrap().to_string())
        .collect();
    (seqs, statuses)
}

/// Polls the simulator until `done` holds for its stats, or fails after 5 s.
async fn wait_stats(sim: &SimHandle, what: &str, done: impl Fn(&SimStats) -> bool) -> SimStats {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let stats = sim.stats();
        if done(&stats) {
            return stats;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {stats:#?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Calls

#[tokio::test]
async fn answered_call_reports_every_event_in_sequence() {
    let recv = Receiver::start().await;
    let sim = start(config(CallOutcome::Human)).await;
    let twilio = client(&sim, TOKEN);
    let mut req = call_to(
        LEAD,
        format!("{}/twilio/voice/status?effect=dial-1", recv.base),
    );
    req.machine_detection = Some("Enable".into());
    let created = twilio.create_call(&req).await.unwrap();
    assert_eq!(created.status, CallStatus::Queued);
    assert!(created.sid.starts_with("CA") && created.sid.len() == 34);
    assert_eq!(created.to.as_deref(), Some(LEAD));

    let hooks = recv.wait_for("CallSid", &created.sid, 4).await;
    let (seqs, statuses) = by_seq(hooks.clone());
    assert_eq!(seqs, [0, 1, 2, 3]);
    assert_eq!(
        statuses,
        ["initiated", "ringing", "in-progress", "completed"]
    );
    for h in &hooks {
        assert_eq!(h.path, "/twilio/voice/status");
        assert_eq!(h.get("AccountSid"), Some(SID));
        assert_eq!(h.get("From"), Some(OURS));
        assert_eq!(h.get("To"), Some(LEAD));
        assert_eq!(h.get("Direction"), Some("outbound-api"));
        assert_eq!(h.get("ApiVersion"), Some("2010-04-01"));
        assert_eq!(h.get("CallbackSource"), Some("call-progress-events"));
        assert!(h.get("Timestamp").unwrap().ends_with("+0000"));
        let terminal = h.get("CallStatus") == Some("completed");
        assert_eq!(h.get("CallDuration").is_some(), terminal, "{h:?}");
        let answered = matches!(h.get("CallStatus"), Some("in-progress" | "completed"));
        assert_eq!(h.get("AnsweredBy"), answered.then_some("human"), "{h:?}");
    }

    let fetched = twilio.fetch_call(&created.sid).await.unwrap();
    assert_eq!(fetched.status, CallStatus::Completed);
    assert_eq!(fetched.answered_by.as_deref(), Some("human"));
    assert!(fetched.duration.is_some() && fetched.end_time.is_some());
    let stats = sim.stats();
    assert_eq!(stats.callbacks_sent, 4);
    assert_eq!(stats.call_outcomes.get("completed"), Some(&1));
    sim.shutdown().await;
}

#[tokio::test]
async fn voicemail_is_reported_as_machine_end_beep() {
    let recv = Receiver::start().await;
    let sim = start(config(CallOutcome::Voicemail)).await;
    let twilio = client(&sim, TOKEN);
    let mut req = call_to(LEAD, format!("{}/cb", recv.base));
    req.machine_detection = Some("DetectMessageEnd".into());
    let sid = twilio.create_call(&req).await.unwrap().sid;
    let hooks = recv.wait_for("CallSid", &sid, 4).await;
    let last = hooks.iter().max_by_key(|h| h.seq()).unwrap();
    assert_eq!(last.get("CallStatus"), Some("completed"));
    assert_eq!(last.get("AnsweredBy"), Some("machine_end_beep"));
    sim.shutdown().await;
}

#[tokio::test]
async fn unanswered_call_ends_no_answer() {
    let recv = Receiver::start().await;
    let sim = start(config(CallOutcome::NoAnswer)).await;
    let twilio = client(&sim, TOKEN);
    let mut req = call_to(LEAD, format!("{}/cb", recv.base));
    req.machine_detection = Some("Enable".into());
    let sid = twilio.create_call(&req).await.unwrap().sid;
    let hooks = recv.wait_for("CallSid", &sid, 3).await;
    let (seqs, statuses) = by_seq(hooks.clone());
    assert_eq!(seqs, [0, 1, 2]);
    assert_eq!(statuses, ["initiated", "ringing", "no-answer"]);
    assert!(hooks.iter().all(|h| h.get("AnsweredBy").is_none()));
    let last = hooks.iter().max_by_key(|h| h.seq()).unwrap();
    assert_eq!(last.get("CallDuration"), Some("0"));
    assert_eq!(last.get("SipResponseCode"), Some("487"));
    let fetched = twilio.fetch_call(&sid).await.unwrap();
    assert_eq!(fetched.status, CallStatus::NoAnswer);
    sim.shutdown().await;
}

#[tokio::test]
async fn busy_call_ends_busy_and_only_completed_by_default() {
    let recv = Receiver::start().await;
    let sim = start(config(CallOutcome::Busy)).await;
    let twilio = client(&sim, TOKEN);
    let sid = twilio
        .create_call(&call_to(LEAD, format!("{}/cb", recv.base)))
        .await
        .unwrap()
        .sid;
    let (seqs, statuses) = by_seq(recv.wait_for("CallSid", &sid, 2).await);
    assert_eq!(seqs, [0, 1]);
    assert_eq!(statuses, ["initiated", "busy"]);

    // No StatusCallbackEvent: Twilio sends only the terminal callback, as SequenceNumber 0.
    let mut req = call_to("+15551230002", format!("{}/cb", recv.base));
    req.status_callback_events.clear();
    let sid = twilio.create_call(&req).await.unwrap().sid;
    let (seqs, statuses) = by_seq(recv.wait_for("CallSid", &sid, 1).await);
    assert_eq!((seqs, statuses), (vec![0], vec!["busy".to_string()]));
    wait_stats(&sim, "callbacks", |s| s.callbacks_delivered == 3).await;
    assert_eq!(recv.hooks_with("CallSid", &sid).len(), 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn hangup_while_ringing_cancels_and_while_talking_completes() {
    let recv = Receiver::start().await;
    let mut cfg = config(CallOutcome::Human);
    cfg.timing.answer_ms = 60_000;
    cfg.timing.no_answer_ms = 120_000;
    let sim = start(cfg).await;
    let twilio = client(&sim, TOKEN);
    let sid = twilio
        .create_call(&call_to(LEAD, format!("{}/cb", recv.base)))
        .await
        .unwrap()
        .sid;
    recv.wait_for("CallStatus", "ringing", 1).await;
    let hung = twilio
        .hangup_call(&sid, HangupStatus::Canceled)
        .await
        .unwrap();
    assert_eq!(hung.status, CallStatus::Canceled);
    let (seqs, statuses) = by_seq(recv.wait_for("CallSid", &sid, 3).await);
    assert_eq!(seqs, [0, 1, 2]);
    assert_eq!(statuses, ["initiated", "ringing", "canceled"]);
    // A repeated hangup is harmless and fires nothing new.
    let again = twilio
        .hangup_call(&sid, HangupStatus::Completed)
        .await
        .unwrap();
    assert_eq!(again.status, CallStatus::Canceled);

    sim.shutdown().await;
    let mut cfg = config(CallOutcome::Human);
    cfg.timing.talk_ms = 60_000;
    let sim = start(cfg).await;
    let twilio = client(&sim, TOKEN);
    let sid = twilio
        .create_call(&call_to(LEAD, format!("{}/cb2", recv.base)))
        .await
        .unwrap()
        .sid;
    let answered = recv.wait_for("CallSid", &sid, 3).await;
    assert!(answered
        .iter()
        .any(|h| h.get("CallStatus") == Some("in-progress")));
    // `canceled` does not touch an answered call; `completed` ends it.
    let same = twilio
        .hangup_call(&sid, HangupStatus::Canceled)
        .await
        .unwrap();
    assert_eq!(same.status, CallStatus::InProgress);
    let ended = twilio
        .hangup_call(&sid, HangupStatus::Completed)
        .await
        .unwrap();
    assert_eq!(ended.status, CallStatus::Completed);
    let (seqs, statuses) = by_seq(recv.wait_for("CallSid", &sid, 4).await);
    assert_eq!(seqs, [0, 1, 2, 3]);
    assert_eq!(
        statuses,
        ["initiated", "ringing", "in-progress", "completed"]
    );
    assert_eq!(sim.stats().hangups, 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn bad_auth_is_401_and_bad_number_is_21211() {
    let sim = start(config(CallOutcome::Human)).await;
    let req = call_to(LEAD, String::new());
    match client(&sim, "wrong-token").create_call(&req).await {
        Err(TwilioError::Api { status, code, .. }) => {
            assert_eq!((status, code), (401, Some(20003)));
        }
        other => panic!("expected 401, got {other:?}"),
    }
    let twilio = client(&sim, TOKEN);
    for bad in ["5551234567", "+0123", "+1555123456789012", "client:bob"] {
        match twilio.create_call(&call_to(bad, String::new())).await {
            Err(e @ TwilioError::Api { status: 400, .. }) => assert_eq!(e.code(), Some(21211)),
            other => panic!("expected 21211 for {bad}, got {other:?}"),
        }
    }
    let msg = CreateMessage {
        to: "not-a-number".into(),
        from: OURS.into(),
        body: "hi".into(),
        status_callback: String::new(),
    };
    let err = twilio.create_message(&msg).await.unwrap_err();
    assert_eq!(err.code(), Some(21211));
    let err = twilio
        .fetch_call("CA00000000000000000000000000000000")
        .await
        .unwrap_err();
    assert!(err.is_not_found());
    let stats = sim.stats();
    assert_eq!(stats.calls, 0);
    assert_eq!(stats.rejected_requests, 7);
    sim.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Messages

#[tokio::test]
async fn message_delivery_then_signed_stop_reply_and_opt_out() {
    let recv = Receiver::start().await;
    let mut cfg = config(CallOutcome::Human);
    let inbound_url = format!("{}/twilio/sms/inbound?tenant=acme", recv.base);
    cfg.inbound_sms_url = Some(inbound_url);
    cfg.reply_mix = ReplyMix {
        probability: 1.0,
        yes: 0,
        stop: 1,
        help: 0,
        free_text: 0,
        free_text_bodies: Vec::new(),
    };
    let sim = start(cfg).await;
    let twilio = client(&sim, TOKEN);
    let msg = CreateMessage {
        to: LEAD.into(),
        from: OURS.into(),
        body: "Hi! Still interested in a quote?".into(),
        status_callback: format!("{}/twilio/sms/status?effect=sms-1", recv.base),
    };
    let created = twilio.create_message(&msg).await.unwrap();
    assert_eq!(created.status, MessageStatus::Queued);
    assert!(created.sid.starts_with("SM") && created.sid.len() == 34);

    let hooks = recv.wait_for("MessageSid", &created.sid, 3).await;
    let mut statuses: Vec<&str> = hooks
        .iter()
        .map(|h| h.get("MessageStatus").unwrap())
        .collect();
    statuses.sort_by_key(|s| ["queued", "sent", "delivered"].iter().position(|x| x == s));
    assert_eq!(statuses, ["queued", "sent", "delivered"]);
    for h in &hooks {
        assert_eq!(h.get("SmsSid"), Some(created.sid.as_str()));
        assert_eq!(h.get("SmsStatus"), h.get("MessageStatus"));
        assert_eq!((h.get("From"), h.get("To")), (Some(OURS), Some(LEAD)));
        assert_eq!(h.get("AccountSid"), Some(SID));
    }

    let replies = recv.wait_for("Body", "STOP", 1).await;
    assert_eq!(replies.len(), 1);
    let reply = &replies[0];
    assert_eq!(reply.path, "/twilio/sms/inbound");
    assert!(
        reply.valid,
        "inbound signature must cover the exact url with its query"
    );
    assert_eq!(
        (reply.get("From"), reply.get("To")),
        (Some(LEAD), Some(OURS))
    );
    assert_eq!(reply.get("NumMedia"), Some("0"));
    let reply_sid = reply.get("MessageSid").unwrap();
    assert!(reply_sid.starts_with("SM") && reply_sid != created.sid);
    assert_eq!(reply.get("SmsSid"), Some(reply_sid));

    let fetched = twilio.fetch_message(&created.sid).await.unwrap();
    assert_eq!(fetched.status, MessageStatus::Delivered);
    // The lead said STOP: the carrier refuses further texts from this sender.
    let err = twilio.create_message(&msg).await.unwrap_err();
    assert_eq!(err.code(), Some(21610));
    let stats = sim.stats();
    assert_eq!(
        (stats.messages, stats.replies, stats.blocked_opted_out),
        (1, 1, 1)
    );
    assert_eq!(stats.messages_per_number.get(LEAD), Some(&1));
    assert_eq!(sim.messages().len(), 2, "ours and the lead's reply");
    sim.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Disorder, retries, stats

#[tokio::test]
async fn duplicate_probability_one_sends_every_callback_twice() {
    let recv = Receiver::start().await;
    let mut cfg = config(CallOutcome::Human);
    cfg.disorder = Disorder {
        swap_probability: 0.0,
        duplicate_probability: 1.0,
    };
    let sim = start(cfg).await;
    let sid = client(&sim, TOKEN)
        .create_call(&call_to(LEAD, format!("{}/cb", recv.base)))
        .await
        .unwrap()
        .sid;
    let hooks = recv.wait_for("CallSid", &sid, 8).await;
    let mut copies: BTreeMap<u64, Vec<Hook>> = BTreeMap::new();
    for h in hooks {
        copies.entry(h.seq()).or_default().push(h);
    }
    assert_eq!(copies.keys().copied().collect::<Vec<_>>(), [0, 1, 2, 3]);
    for pair in copies.values() {
        assert_eq!(pair.len(), 2);
        assert_eq!(pair[0].params, pair[1].params);
        assert_eq!(pair[0].signature, pair[1].signature);
    }
    let stats = wait_stats(&sim, "deliveries", |s| s.callbacks_delivered == 8).await;
    assert_eq!((stats.duplicates_sent, stats.callbacks_sent), (4, 8));
    sim.shutdown().await;
}

#[tokio::test]
async fn swap_probability_one_delivers_pairs_out_of_order() {
    let recv = Receiver::start().await;
    let mut cfg = config(CallOutcome::Human);
    cfg.disorder.swap_probability = 1.0;
    let sim = start(cfg).await;
    let sid = client(&sim, TOKEN)
        .create_call(&call_to(LEAD, format!("{}/cb", recv.base)))
        .await
        .unwrap()
        .sid;
    let hooks = recv.wait_for("CallSid", &sid, 4).await;
    let arrival: Vec<u64> = hooks.iter().map(Hook::seq).collect();
    let at = |seq: u64| arrival.iter().position(|s| *s == seq).unwrap();
    assert!(at(1) < at(0) && at(3) < at(2), "arrival order {arrival:?}");
    assert_eq!(sim.stats().reordered, 2);
    sim.shutdown().await;
}

#[tokio::test]
async fn failed_deliveries_are_retried_and_counted() {
    let recv = Receiver::start().await;
    recv.state.flaky_failures.store(2, Ordering::SeqCst);
    let sim = start(config(CallOutcome::Busy)).await;
    let mut req = call_to(LEAD, format!("{}/flaky", recv.base));
    req.status_callback_events = vec![StatusCallbackEvent::Completed];
    let sid = client(&sim, TOKEN).create_call(&req).await.unwrap().sid;
    recv.wait_for("CallSid", &sid, 1).await;
    let stats = wait_stats(&sim, "delivery", |s| s.callbacks_delivered == 1).await;
    assert_eq!(stats.callback_retries, 2);
    assert_eq!(stats.callback_attempts, 3);
    assert_eq!((stats.callbacks_sent, stats.callback_failures), (1, 0));
    sim.shutdown().await;
}

#[tokio::test]
async fn stats_count_calls_per_number_and_duplicate_effects() {
    let recv = Receiver::start().await;
    let sim = start(config(CallOutcome::NoAnswer)).await;
    let twilio = client(&sim, TOKEN);
    let same = format!("{}/cb?effect=opp-7%3Adial%3A1", recv.base);
    let other = format!("{}/cb?effect=opp-8%3Adial%3A1", recv.base);
    twilio
        .create_call(&call_to(LEAD, same.clone()))
        .await
        .unwrap();
    twilio.create_call(&call_to(LEAD, same)).await.unwrap();
    // Another of the account's numbers as caller id: accepted, counted apart.
    let from_pool = CreateCall {
        from: "+15125550100".into(),
        ..call_to("+15559876543", other)
    };
    twilio.create_call(&from_pool).await.unwrap();

    let over_http: SimStats = reqwest::get(format!("{}/sim/stats", sim.base_url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(over_http.calls, 3);
    assert_eq!(over_http.calls_per_number.get(LEAD), Some(&2));
    assert_eq!(over_http.calls_per_number.get("+15559876543"), Some(&1));
    assert_eq!(over_http.calls_per_from.get(OURS), Some(&2));
    assert_eq!(over_http.calls_per_from.get("+15125550100"), Some(&1));
    assert_eq!(over_http.creates_per_effect.get("opp-7:dial:1"), Some(&2));
    assert_eq!(over_http.creates_per_effect.get("opp-8:dial:1"), Some(&1));
    assert_eq!(over_http.duplicate_creates, 1);

    let listed: Vec<carrier_sim::CallView> = reqwest::get(format!("{}/sim/calls", sim.base_url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[0].effect.as_deref(), Some("opp-7:dial:1"));
    wait_stats(&sim, "all calls ended", |s| {
        s.call_outcomes.get("no-answer") == Some(&3)
    })
    .await;
    sim.shutdown().await;
}

#[tokio::test]
async fn same_seed_replays_the_same_outcomes() {
    let mut outcomes = Vec::new();
    for _ in 0..2 {
        let mut cfg = config(CallOutcome::Human);
        cfg.outcome_mix = OutcomeMix::default();
        let sim = start(cfg).await;
        let twilio = client(&sim, TOKEN);
        for i in 0..8 {
            let to = format!("+1555000{i:04}");
            twilio
                .create_call(&call_to(&to, String::new()))
                .await
                .unwrap();
        }
        outcomes.push(
            sim.calls()
                .into_iter()
                .map(|c| (c.to, c.outcome))
                .collect::<Vec<_>>(),
        );
        sim.shutdown().await;
    }
    assert_eq!(outcomes[0], outcomes[1]);
}

/// The simulator runs on loopback, which tenant hosts may reach only where allowed.
fn loopback() -> neuronx_adapters::outbound::OutboundGuard {
    neuronx_adapters::outbound::OutboundGuard::from_allow_list(&["127.0.0.0/8"]).unwrap()
}

// ---------------------------------------------------------------------------------------------
// REST faults (`rest_faults`), as the fault simulation draws them

#[tokio::test]
async fn rest_faults_refuse_or_cut_creates_as_drawn() {
    let recv = Receiver::start().await;
    let callback = format!("{}/cb?effect=opp-9%3Adial%3A1", recv.base);
    let with = |faults: carrier_sim::RestFaults| SimConfig {
        rest_faults: faults,
        ..config(CallOutcome::Busy)
    };

    // 503 and 429 prove nothing was done: the client retries, and gives up with nothing made.
    let sim = start(with(carrier_sim::RestFaults {
        unavailable: 1.0,
        ..Default::default()
    }))
    .await;
    let err = client(&sim, TOKEN)
        .create_call(&call_to(LEAD, callback.clone()))
        .await
        .unwrap_err();
    assert!(
        !matches!(err, TwilioError::UnknownOutcome(_)),
        "503: {err:?}"
    );
    let stats = sim.stats();
    assert_eq!(stats.calls, 0);
    assert_eq!(stats.rest_faults.get("unavailable"), Some(&4), "{stats:?}");
    sim.shutdown().await;

    // A 500 may come after the carrier acted: an unknown outcome, not retried (here nothing
    // was made).
    let sim = start(with(carrier_sim::RestFaults {
        server_error: 1.0,
        ..Default::default()
    }))
    .await;
    let err = client(&sim, TOKEN)
        .create_call(&call_to(LEAD, callback.clone()))
        .await
        .unwrap_err();
    assert!(
        matches!(err, TwilioError::UnknownOutcome(_)),
        "500: {err:?}"
    );
    assert_eq!(sim.stats().calls, 0);
    sim.shutdown().await;

    // The call is made and its answer cut off: unknown to the client, made at the carrier.
    let sim = start(with(carrier_sim::RestFaults {
        cut_after_create: 1.0,
        ..Default::default()
    }))
    .await;
    let err = client(&sim, TOKEN)
        .create_call(&call_to(LEAD, callback))
        .await
        .unwrap_err();
    assert!(
        matches!(err, TwilioError::UnknownOutcome(_)),
        "cut: {err:?}"
    );
    let stats = sim.stats();
    assert_eq!(stats.calls, 1);
    assert_eq!(stats.creates_per_effect.get("opp-9:dial:1"), Some(&1));
    sim.shutdown().await;
}
