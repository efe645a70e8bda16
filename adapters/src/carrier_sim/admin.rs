//! The `/sim/*` routes about call flows (loopback peers only, like the other `/sim/*` routes):
//!
//! * `GET /sim/calls/{sid}`: [`CallDetail`] of a call (or of one `<Dial>` leg) with its legs.
//! * `PUT /sim/callees/{number}` with a [`CalleeMix`] JSON body (missing fields take their
//!   defaults): how `number` answers when dialled; `DELETE` goes back to the configuration.
//! * `PUT /sim/digits/{number}` with a JSON array of strings (`["1"]`): what `number` presses
//!   at its legs' successive `<Gather>`s; `DELETE` goes back to the configuration.
//! * `POST /sim/inbound-calls` with an [`InboundCall`] JSON body: a lead calls `to` from
//!   `from`, and the simulator asks `url` (the number's voice URL) what to do, signed, then runs
//!   the TwiML like any answered call's (`<Dial>` legs ring by their callee mix, the action is
//!   posted signed). Answers 201 with the call's resource; `GET /sim/calls/{sid}` shows its run.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::config::is_http_url;
use super::flow_config::{valid_digits, CalleeMix};
use super::legs;
use super::server::refuse_remote;
use super::state::is_e164;
use super::state::Shared;
use super::views::CallDetail;

pub(crate) async fn call_detail(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(sid): Path<String>,
) -> Response {
    if let Some(refused) = refuse_remote(peer) {
        return refused;
    }
    let detail: Option<CallDetail> = legs::detail(&shared.lock(), &sid);
    match detail {
        Some(detail) => Json(detail).into_response(),
        None => (StatusCode::NOT_FOUND, "no such call").into_response(),
    }
}

pub(crate) async fn put_callee(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(number): Path<String>,
    Json(mix): Json<CalleeMix>,
) -> Response {
    if let Some(refused) = refuse_remote(peer) {
        return refused;
    }
    if let Err(e) = mix.validate("callee") {
        return (StatusCode::BAD_REQUEST, e).into_response();
    }
    shared.lock().callees.insert(number, mix);
    StatusCode::NO_CONTENT.into_response()
}

pub(crate) async fn delete_callee(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(number): Path<String>,
) -> Response {
    if let Some(refused) = refuse_remote(peer) {
        return refused;
    }
    shared.lock().callees.remove(&number);
    StatusCode::NO_CONTENT.into_response()
}

pub(crate) async fn put_digits(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(number): Path<String>,
    Json(digits): Json<Vec<String>>,
) -> Response {
    if let Some(refused) = refuse_remote(peer) {
        return refused;
    }
    if let Some(bad) = digits.iter().find(|d| !valid_digits(d)) {
        return (
            StatusCode::BAD_REQUEST,
            format!("{bad:?} is not 0-9, * or #"),
        )
            .into_response();
    }
    shared.lock().digits.insert(number, digits);
    StatusCode::NO_CONTENT.into_response()
}

pub(crate) async fn delete_digits(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(number): Path<String>,
) -> Response {
    if let Some(refused) = refuse_remote(peer) {
        return refused;
    }
    shared.lock().digits.remove(&number);
    StatusCode::NO_CONTENT.into_response()
}

/// `POST /sim/inbound-calls`: who calls which number, and the number's voice URL.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct InboundCall {
    /// The caller, E.164 (or `anonymous`, as Twilio sends a withheld caller id).
    pub from: String,
    /// The number called, E.164.
    pub to: String,
    /// Where the number's incoming calls are sent (Twilio's "A call comes in" webhook).
    pub url: String,
}

pub(crate) async fn inbound_call(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Json(call): Json<InboundCall>,
) -> Response {
    if let Some(refused) = refuse_remote(peer) {
        return refused;
    }
    if !is_e164(&call.to) {
        return (StatusCode::BAD_REQUEST, "to must be an E.164 number").into_response();
    }
    if call.from.is_empty() || call.from.len() > 32 || call.from.chars().any(char::is_control) {
        return (StatusCode::BAD_REQUEST, "from must be a caller id").into_response();
    }
    if !is_http_url(&call.url) {
        return (StatusCode::BAD_REQUEST, "url must be an http(s) url").into_response();
    }
    let now = tokio::time::Instant::now();
    let (json, jobs) = super::calls::inbound(
        &mut shared.lock(),
        &shared.config,
        call.from,
        call.to,
        call.url,
        now,
    );
    shared.schedule(jobs);
    (StatusCode::CREATED, Json(json)).into_response()
}
