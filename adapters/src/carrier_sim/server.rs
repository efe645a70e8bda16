//! The HTTP side: Twilio's 2010-04-01 Calls and Messages endpoints (Basic auth, form bodies,
//! Twilio-style JSON errors), Lookup v2 (in `lookup`), and the simulator's own `/sim/*`
//! introspection routes.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::{json, Value};
use subtle::ConstantTimeEq;
use tokio::time::Instant;

use super::call_request::NewCall;
use super::calls;
use super::faults::{self, Fault};
use super::messages::{self, NewMessage};
use super::state::Shared;

type Form = Vec<(String, String)>;

/// A refusal in Twilio's JSON shape: `{"code", "message", "more_info", "status"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: u32,
    message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: u32, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad(code: u32, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code,
            message: message.into(),
        }
    }

    fn unauthorized() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            code: 20003,
            message: "Authenticate".into(),
        }
    }

    pub(crate) fn not_found(what: &str) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            code: 20404,
            message: format!("The requested resource {what} was not found"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(json!({
            "code": self.code,
            "message": self.message,
            "more_info": format!("https://www.twilio.com/docs/errors/{}", self.code),
            "status": self.status.as_u16(),
        }));
        if self.status == StatusCode::UNAUTHORIZED {
            (
                self.status,
                [(WWW_AUTHENTICATE, "Basic realm=\"Twilio API\"")],
                body,
            )
                .into_response()
        } else {
            (self.status, body).into_response()
        }
    }
}

/// The first value of form field `name`.
pub(crate) fn form_first<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Every value of a repeated form field, in order.
pub(crate) fn form_all<'a>(
    form: &'a [(String, String)],
    name: &'a str,
) -> impl Iterator<Item = &'a str> + 'a {
    form.iter()
        .filter(move |(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            "/2010-04-01/Accounts/{account}/Calls.json",
            get(list_calls).post(create_call),
        )
        .route(
            "/2010-04-01/Accounts/{account}/Calls/{file}",
            get(fetch_call).post(update_call),
        )
        .route(
            "/2010-04-01/Accounts/{account}/Messages.json",
            get(list_messages).post(create_message),
        )
        .route(
            "/2010-04-01/Accounts/{account}/Messages/{file}",
            get(fetch_message),
        )
        .route(
            "/2010-04-01/Accounts/{account}/Recordings/{file}",
            get(super::recordings::fetch),
        )
        .route("/v2/PhoneNumbers/{number}", get(super::lookup::lookup))
        .route("/sim/stats", get(sim_stats))
        .route("/sim/calls", get(sim_calls))
        .route("/sim/messages", get(sim_messages))
        .route("/sim/calls/{sid}", get(super::admin::call_detail))
        .route("/sim/inbound-calls", post(super::admin::inbound_call))
        .route(
            "/sim/callees/{number}",
            put(super::admin::put_callee).delete(super::admin::delete_callee),
        )
        .route(
            "/sim/digits/{number}",
            put(super::admin::put_digits).delete(super::admin::delete_digits),
        )
        .fallback(|| async { ApiError::not_found("path").into_response() })
        .with_state(shared)
}

pub(crate) fn respond(shared: &Shared, result: Result<Response, ApiError>) -> Response {
    match result {
        Ok(response) => response,
        Err(e) => {
            shared.bump(|s| s.rejected_requests += 1);
            e.into_response()
        }
    }
}

/// Basic auth must be the configured account SID and auth token, and the path's account the
/// same SID.
fn authorize(shared: &Shared, headers: &HeaderMap, account: &str) -> Result<(), ApiError> {
    check_basic(shared, headers)?;
    if account != shared.config.account_sid {
        return Err(ApiError::not_found(&format!("/Accounts/{account}")));
    }
    Ok(())
}

/// Basic auth must be the configured account SID and auth token (Lookup has no account in its
/// path, so this is all it checks).
pub(crate) fn check_basic(shared: &Shared, headers: &HeaderMap) -> Result<(), ApiError> {
    let credentials = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("basic").then_some(rest.trim())
        })
        .and_then(|encoded| BASE64.decode(encoded).ok())
        .and_then(|raw| String::from_utf8(raw).ok())
        .ok_or_else(ApiError::unauthorized)?;
    let (user, password) = credentials
        .split_once(':')
        .ok_or_else(ApiError::unauthorized)?;
    let config = &shared.config;
    let user_ok = user.as_bytes().ct_eq(config.account_sid.as_bytes());
    let password_ok = password.as_bytes().ct_eq(config.auth_token.as_bytes());
    if !bool::from(user_ok & password_ok) {
        return Err(ApiError::unauthorized());
    }
    Ok(())
}

/// The `rest_faults` drawn for one create (after its request passed the checks), counted.
fn drawn_fault(shared: &Shared) -> Option<Fault> {
    let fault = shared.faults.draw(&shared.config.rest_faults)?;
    shared.bump(|s| *s.rest_faults.entry(fault.name().to_owned()).or_insert(0) += 1);
    Some(fault)
}

fn parse_form(body: &[u8]) -> Result<Form, ApiError> {
    serde_urlencoded::from_bytes::<Form>(body)
        .map_err(|e| ApiError::bad(20001, format!("unreadable form body: {e}")))
}

fn strip_json(file: &str) -> &str {
    file.strip_suffix(".json").unwrap_or(file)
}

async fn create_call(
    State(shared): State<Arc<Shared>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = (|| {
        authorize(&shared, &headers, &account)?;
        let form = parse_form(&body)?;
        let req = NewCall::parse(&form, &shared.config)?;
        let fault = drawn_fault(&shared);
        if let Some(refused) = fault.filter(|f| *f != Fault::CutAfterCreate) {
            return Ok(refused.refusal());
        }
        let (json, jobs) = calls::create(&mut shared.lock(), &shared.config, req, Instant::now());
        shared.schedule(jobs);
        if fault.is_some() {
            return Ok(faults::cut_answer());
        }
        Ok((StatusCode::CREATED, Json(json)).into_response())
    })();
    respond(&shared, result)
}

async fn fetch_call(
    State(shared): State<Arc<Shared>>,
    Path((account, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let result = (|| {
        authorize(&shared, &headers, &account)?;
        let sid = strip_json(&file);
        let state = shared.lock();
        let call = state
            .calls
            .get(sid)
            .ok_or_else(|| ApiError::not_found(sid))?;
        Ok(Json(call.resource(&shared.config.account_sid)).into_response())
    })();
    respond(&shared, result)
}

/// `Status=completed|canceled` hangs up; anything else (a redirect) is accepted and ignored.
async fn update_call(
    State(shared): State<Arc<Shared>>,
    Path((account, file)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = (|| {
        authorize(&shared, &headers, &account)?;
        let form = parse_form(&body)?;
        let completed = match form_first(&form, "Status") {
            None => None,
            Some("completed") => Some(true),
            Some("canceled") => Some(false),
            Some(other) => {
                return Err(ApiError::bad(
                    20001,
                    format!("Status must be completed or canceled, got {other}"),
                ))
            }
        };
        let sid = strip_json(&file);
        let mut guard = shared.lock();
        let state = &mut *guard;
        let call = state
            .calls
            .get_mut(sid)
            .ok_or_else(|| ApiError::not_found(sid))?;
        let jobs = match completed {
            Some(completed) => calls::hangup(
                call,
                completed,
                &shared.config,
                &mut state.stats,
                Instant::now(),
            ),
            None => Vec::new(),
        };
        let json = call.resource(&shared.config.account_sid);
        drop(guard);
        shared.schedule(jobs);
        Ok(Json(json).into_response())
    })();
    respond(&shared, result)
}

async fn list_calls(
    State(shared): State<Arc<Shared>>,
    Path(account): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let result = (|| {
        authorize(&shared, &headers, &account)?;
        let state = shared.lock();
        let to = query.get("To");
        let calls: Vec<Value> = state
            .call_order
            .iter()
            .rev()
            .filter_map(|sid| state.calls.get(sid))
            .filter(|c| to.is_none_or(|to| &c.to == to))
            .map(|c| c.resource(&shared.config.account_sid))
            .collect();
        Ok(Json(page("calls", calls)).into_response())
    })();
    respond(&shared, result)
}

async fn create_message(
    State(shared): State<Arc<Shared>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = (|| {
        authorize(&shared, &headers, &account)?;
        let form = parse_form(&body)?;
        let req = NewMessage::parse(&form, &shared.config)?;
        let fault = drawn_fault(&shared);
        if let Some(refused) = fault.filter(|f| *f != Fault::CutAfterCreate) {
            return Ok(refused.refusal());
        }
        let (json, jobs) =
            messages::create(&mut shared.lock(), &shared.config, req, Instant::now())?;
        shared.schedule(jobs);
        if fault.is_some() {
            return Ok(faults::cut_answer());
        }
        Ok((StatusCode::CREATED, Json(json)).into_response())
    })();
    respond(&shared, result)
}

async fn fetch_message(
    State(shared): State<Arc<Shared>>,
    Path((account, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let result = (|| {
        authorize(&shared, &headers, &account)?;
        let sid = strip_json(&file);
        let state = shared.lock();
        let msg = state
            .messages
            .get(sid)
            .ok_or_else(|| ApiError::not_found(sid))?;
        Ok(Json(msg.resource(&shared.config.account_sid)).into_response())
    })();
    respond(&shared, result)
}

async fn list_messages(
    State(shared): State<Arc<Shared>>,
    Path(account): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let result = (|| {
        authorize(&shared, &headers, &account)?;
        let state = shared.lock();
        let to = query.get("To");
        let from = query.get("From");
        let messages: Vec<Value> = state
            .message_order
            .iter()
            .rev()
            .filter_map(|sid| state.messages.get(sid))
            .filter(|m| to.is_none_or(|to| m.is_to(to)))
            .filter(|m| from.is_none_or(|from| m.is_from(from)))
            .map(|m| m.resource(&shared.config.account_sid))
            .collect();
        Ok(Json(page("messages", messages)).into_response())
    })();
    respond(&shared, result)
}

/// A single-page Twilio list envelope.
fn page(key: &str, items: Vec<Value>) -> Value {
    let mut envelope = json!({
        "page": 0,
        "page_size": items.len(),
        "start": 0,
        "end": items.len().saturating_sub(1),
        "next_page_uri": null,
        "previous_page_uri": null,
    });
    envelope[key] = Value::Array(items);
    envelope
}

/// The `/sim/*` routes carry no auth, so they answer loopback peers only.
pub(crate) fn refuse_remote(peer: SocketAddr) -> Option<Response> {
    (!peer.ip().is_loopback()).then(|| (StatusCode::FORBIDDEN, "loopback only").into_response())
}

async fn sim_stats(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Response {
    if let Some(refused) = refuse_remote(peer) {
        return refused;
    }
    let stats = shared.lock().stats.clone();
    Json(stats).into_response()
}

async fn sim_calls(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Response {
    if let Some(refused) = refuse_remote(peer) {
        return refused;
    }
    Json(super::call_views(&shared.lock())).into_response()
}

async fn sim_messages(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Response {
    if let Some(refused) = refuse_remote(peer) {
        return refused;
    }
    Json(super::message_views(&shared.lock())).into_response()
}
