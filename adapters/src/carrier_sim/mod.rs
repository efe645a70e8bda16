//! A Twilio-compatible carrier simulator on loopback, for the demo, tests and benchmarks.
//!
//! It serves the 2010-04-01 REST endpoints our [`crate::twilio::TwilioClient`] uses
//! (`Calls.json`, `Calls/{Sid}.json`, `Messages.json`, `Messages/{Sid}.json`, plus list GETs
//! filtered by `To`), checks Basic auth and the parameters Twilio checks, and plays each call
//! and message out on a timeline drawn from a seeded generator: status callbacks with Twilio's
//! parameters and a valid `X-Twilio-Signature`, optional deliberate disorder (swapped or
//! duplicated callbacks), retries of failed webhook deliveries, and lead replies POSTed to an
//! inbound-SMS URL. Lookup v2 (`GET /v2/PhoneNumbers/{E164}`) answers a line type per number from
//! [`LookupConfig`] (default mobile) and counts the lookups it served.
//!
//! The generator of the n-th call (or message) to a number is derived from `(seed, number, n)`,
//! so a run replays the same way whatever order concurrent creates arrive in.
//!
//! Answered calls run their TwiML (the create's `Url`, fetched and signed like every webhook, or
//! its inline `Twiml`): Say, Play, Pause, Gather (digits per number from [`FlowConfig`]),
//! Record, Hangup, Redirect, Reject, and `<Dial>` with child legs answering by a
//! [`CalleeMix`], whispers, bridging, `<Number>` status callbacks and the Dial `action`
//! (see `flow` and `dial`).
//!
//! Introspection, unauthenticated and answered to loopback peers only: `GET /sim/stats`
//! ([`SimStats`], including `creates_per_effect` — keyed by the `effect` query parameter of
//! each create's `StatusCallback` URL — and `duplicate_creates`), `GET /sim/calls`,
//! `GET /sim/calls/{sid}` ([`CallDetail`]: a call's flow and legs), `GET /sim/messages`; and
//! for tests, `PUT`/`DELETE /sim/callees/{number}` and `/sim/digits/{number}` (see `admin`).
//!
//! One scheduler task owns every pending step and the webhook deliveries in flight; the server
//! and scheduler tasks belong to the [`SimHandle`] and stop with it.

mod admin;
mod call_request;
mod calls;
mod config;
mod dial;
mod faults;
mod fetch;
mod flow;
mod flow_config;
mod legs;
mod lookup;
mod messages;
mod recordings;
mod scheduler;
mod server;
mod state;
mod stats;
mod status;
mod twiml;
mod views;
mod webhook;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

pub use config::{
    CallOutcome, Delivery, Disorder, LookupConfig, MessageMix, OutcomeMix, ReplyMix, RestFaults,
    SimConfig, Timing,
};
pub use flow_config::{CalleeMix, FlowConfig, HangupSide};
pub use recordings::MEDIA as RECORDING_MEDIA;
pub use stats::{CallView, MessageView, SimStats};
pub use views::{
    CallDetail, DialCallStatus, DialView, DocPurpose, DocumentView, FlowEnd, VerbKind,
};

use state::{Shared, State};

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("invalid simulator config: {0}")]
    Config(String),
    #[error("simulator listener: {0}")]
    Io(#[from] std::io::Error),
    #[error("could not build the webhook http client: {0}")]
    Http(String),
}

/// A running simulator. Dropping it aborts its tasks; [`SimHandle::shutdown`] stops them
/// gracefully.
pub struct SimHandle {
    pub addr: SocketAddr,
    /// `http://{addr}`: the base URL for [`crate::twilio::TwilioClient::new`].
    pub base_url: String,
    shared: Arc<Shared>,
    server: Option<JoinHandle<()>>,
    scheduler: Option<JoinHandle<()>>,
    stop_server: Option<oneshot::Sender<()>>,
    stop_scheduler: Option<oneshot::Sender<()>>,
}

impl std::fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHandle")
            .field("addr", &self.addr)
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

/// Starts serving on `listener` (bind it to loopback, e.g. `127.0.0.1:0`).
pub async fn start(config: SimConfig, listener: TcpListener) -> Result<SimHandle, SimError> {
    config.validate().map_err(SimError::Config)?;
    let addr = listener.local_addr()?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_millis(config.delivery.timeout_ms.max(1)))
        .connect_timeout(Duration::from_millis(config.delivery.timeout_ms.max(1)))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("TwilioProxy/1.1 (neuronx carrier simulator)")
        .build()
        .map_err(|e| SimError::Http(e.to_string()))?;
    let (jobs_tx, jobs_rx) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared::new(config, http, jobs_tx));

    let (stop_scheduler, scheduler_rx) = oneshot::channel();
    let scheduler = tokio::spawn(scheduler::run(shared.clone(), jobs_rx, scheduler_rx));

    let (stop_server, server_rx) = oneshot::channel::<()>();
    let app = server::router(shared.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let server = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = server_rx.await;
            })
            .await;
        if let Err(e) = served {
            tracing::warn!(error = %e, "carrier simulator server stopped");
        }
    });

    Ok(SimHandle {
        addr,
        base_url: format!("http://{addr}"),
        shared,
        server: Some(server),
        scheduler: Some(scheduler),
        stop_server: Some(stop_server),
        stop_scheduler: Some(stop_scheduler),
    })
}

impl SimHandle {
    pub fn account_sid(&self) -> &str {
        &self.shared.config.account_sid
    }

    pub fn auth_token(&self) -> &str {
        &self.shared.config.auth_token
    }

    pub fn config(&self) -> &SimConfig {
        &self.shared.config
    }

    /// A snapshot of the counters (the same JSON `GET /sim/stats` serves).
    pub fn stats(&self) -> SimStats {
        self.shared.lock().stats.clone()
    }

    /// Every call so far, oldest first.
    pub fn calls(&self) -> Vec<CallView> {
        call_views(&self.shared.lock())
    }

    /// A call's flow and its `<Dial>` legs (the same JSON `GET /sim/calls/{sid}` serves).
    pub fn call_detail(&self, sid: &str) -> Option<CallDetail> {
        legs::detail(&self.shared.lock(), sid)
    }

    /// From now on `number` answers dialled legs by `mix` (over `flow.callees`).
    pub fn set_callee(&self, number: &str, mix: CalleeMix) {
        self.shared.lock().callees.insert(number.to_string(), mix);
    }

    /// From now on `number` presses `digits[n]` at the n-th `<Gather>` of each of its legs (over
    /// `flow.digits`; `""` presses nothing).
    pub fn set_digits(&self, number: &str, digits: &[&str]) {
        let digits = digits.iter().map(|d| (*d).to_string()).collect();
        self.shared.lock().digits.insert(number.to_string(), digits);
    }

    /// Every message so far (ours and lead replies), oldest first.
    pub fn messages(&self) -> Vec<MessageView> {
        message_views(&self.shared.lock())
    }

    /// Stops scheduling (pending callbacks are dropped, deliveries in flight aborted), then
    /// stops the server, giving open connections a second to finish.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop_scheduler.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.scheduler.take() {
            let _ = task.await;
        }
        if let Some(stop) = self.stop_server.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.server.take() {
            if tokio::time::timeout(Duration::from_secs(1), &mut task)
                .await
                .is_err()
            {
                task.abort();
                let _ = task.await;
            }
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        for task in [self.scheduler.take(), self.server.take()]
            .into_iter()
            .flatten()
        {
            task.abort();
        }
    }
}

fn call_views(state: &State) -> Vec<CallView> {
    state
        .call_order
        .iter()
        .filter_map(|sid| state.calls.get(sid))
        .map(calls::Call::view)
        .collect()
}

fn message_views(state: &State) -> Vec<MessageView> {
    state
        .message_order
        .iter()
        .filter_map(|sid| state.messages.get(sid))
        .map(messages::Message::view)
        .collect()
}
