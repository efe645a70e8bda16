//! Deliberate failures of the create endpoints (`POST Calls.json`, `POST Messages.json`), for
//! fault drills: refusals that prove nothing was done (429, 503), a 500 that the caller cannot
//! tell from one sent after the carrier acted, and a create that is done and whose answer is cut
//! short (the caller cannot tell what was made, as after a timeout: an unknown outcome).
//!
//! Each create draws once from a generator seeded with the simulator's seed, in the order the
//! creates arrive.

use std::sync::Mutex;

use axum::body::Body;
use axum::http::header::{CONTENT_TYPE, RETRY_AFTER};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::server::ApiError;

/// Chances (each 0..=1, drawn in this order) that a create fails on purpose. Default none.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RestFaults {
    /// 429 with `Retry-After: 1`, before anything is done.
    pub rate_limited: f64,
    /// 503, before anything is done.
    pub unavailable: f64,
    /// 500, before anything is done (the caller cannot know that it was before).
    pub server_error: f64,
    /// The create is done, then its answer stops short mid-JSON (unreadable).
    pub cut_after_create: f64,
}

/// What a create draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    RateLimited,
    Unavailable,
    ServerError,
    CutAfterCreate,
}

impl Fault {
    /// The `rest_faults` counter's key.
    pub fn name(self) -> &'static str {
        match self {
            Fault::RateLimited => "rate_limited",
            Fault::Unavailable => "unavailable",
            Fault::ServerError => "server_error",
            Fault::CutAfterCreate => "cut_after_create",
        }
    }

    /// The answer of a fault drawn before the create.
    pub fn refusal(self) -> Response {
        let status = match self {
            Fault::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Fault::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Fault::ServerError | Fault::CutAfterCreate => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let mut response =
            ApiError::new(status, 20500, "simulated failure (rest_faults)").into_response();
        if self == Fault::RateLimited {
            response
                .headers_mut()
                .insert(RETRY_AFTER, axum::http::HeaderValue::from_static("1"));
        }
        response
    }
}

impl RestFaults {
    pub(crate) fn validate(&self) -> Result<(), String> {
        for (name, p) in [
            ("rest_faults.rate_limited", self.rate_limited),
            ("rest_faults.unavailable", self.unavailable),
            ("rest_faults.server_error", self.server_error),
            ("rest_faults.cut_after_create", self.cut_after_create),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(format!("{name} must be within 0..=1, got {p}"));
            }
        }
        Ok(())
    }

    fn any(&self) -> bool {
        self.rate_limited + self.unavailable + self.server_error + self.cut_after_create > 0.0
    }
}

/// The generator the draws share.
pub(crate) struct Draws(Mutex<StdRng>);

impl Draws {
    pub fn new(seed: u64) -> Self {
        Self(Mutex::new(StdRng::seed_from_u64(seed ^ 0x5e57_fa17)))
    }

    /// The fault this create meets, if any.
    pub fn draw(&self, faults: &RestFaults) -> Option<Fault> {
        if !faults.any() {
            return None;
        }
        let mut rng = self.0.lock().unwrap_or_else(|e| e.into_inner());
        [
            (Fault::RateLimited, faults.rate_limited),
            (Fault::Unavailable, faults.unavailable),
            (Fault::ServerError, faults.server_error),
            (Fault::CutAfterCreate, faults.cut_after_create),
        ]
        .into_iter()
        .find(|(_, p)| *p > 0.0 && rng.gen_bool(*p))
        .map(|(f, _)| f)
    }
}

/// A 201 whose body stops short mid-JSON: the carrier acted, and the caller cannot read which
/// resource it made, which leaves it where a timeout would (an unknown outcome). (A connection
/// closed mid-body would be closer to a timeout, but hyper's server has no way to be told to do
/// it: a `Content-Length` larger than the body trips its debug assertion.)
pub(crate) fn cut_answer() -> Response {
    let mut response = (StatusCode::CREATED, Body::from("{\"sid\":")).into_response();
    response.headers_mut().insert(
        CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    response
}
