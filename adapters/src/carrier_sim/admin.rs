//! The `/sim/*` routes about call flows (loopback peers only, like the other `/sim/*` routes):
//!
//! * `GET /sim/calls/{sid}`: [`CallDetail`] of a call (or of one `<Dial>` leg) with its legs.
//! * `PUT /sim/callees/{number}` with a [`CalleeMix`] JSON body (missing fields take their
//!   defaults): how `number` answers when dialled; `DELETE` goes back to the configuration.
//! * `PUT /sim/digits/{number}` with a JSON array of strings (`["1"]`): what `number` presses
//!   at its legs' successive `<Gather>`s; `DELETE` goes back to the configuration.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::flow_config::{valid_digits, CalleeMix};
use super::legs;
use super::server::refuse_remote;
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
