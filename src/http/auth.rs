//! Who is calling: the `Authorization: Bearer <key>` of a `/v1` request, its role and team,
//! and the per-client limit on failed attempts.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use neuronx_supervision::TenantId;
use uuid::Uuid;

use super::error::ApiError;
use super::AppState;
use crate::control::keys::{self, Identity};
use crate::control::{Action, Scope};

/// Failed attempts a client may make per window before every attempt from it is refused.
/// Generous for a mistyped key, useless for guessing one (a key has 256 bits of secret).
const MAX_AUTH_FAILURES: u32 = 10;
const FAILURE_WINDOW: Duration = Duration::from_secs(60);

/// Failed authentications by client address, in memory: each instance limits on its own,
/// which bounds a guesser to `MAX_AUTH_FAILURES` × instances per window (ADR 0022).
#[derive(Clone)]
pub struct AuthLimiter {
    failures: moka::sync::Cache<IpAddr, Arc<AtomicU32>>,
}

impl Default for AuthLimiter {
    fn default() -> Self {
        Self {
            failures: moka::sync::Cache::builder()
                .max_capacity(100_000)
                // A fixed window from the first failure: the entry expires and the count with it.
                .time_to_live(FAILURE_WINDOW)
                .build(),
        }
    }
}

impl AuthLimiter {
    fn blocked(&self, client: IpAddr) -> bool {
        self.failures
            .get(&client)
            .is_some_and(|n| n.load(Ordering::Relaxed) >= MAX_AUTH_FAILURES)
    }

    fn failed(&self, client: IpAddr) {
        self.failures
            .get_with(client, || Arc::new(AtomicU32::new(0)))
            .fetch_add(1, Ordering::Relaxed);
    }
}

/// A request extension: the identity a middleware already authenticated for this request.
#[derive(Clone)]
pub struct Authenticated(pub Identity);

/// The authenticated caller of a `/v1` request.
pub struct Caller(pub Identity);

impl Caller {
    /// The caller's tenant, if its role allows `action`; else 403 naming both. Checked before
    /// any object is looked up, so a refusal says nothing about whether the object exists.
    pub fn require(&self, action: Action) -> Result<TenantId, ApiError> {
        Ok(crate::usecases::authorize(&self.0, action)?)
    }

    pub fn scope(&self) -> Scope {
        Scope::of(&self.0)
    }

    /// Whether the caller may see this opportunity: a team-scoped key sees only its team's.
    /// The caller must already have checked that the opportunity exists in its tenant.
    pub async fn sees(&self, state: &AppState, opportunity: Uuid) -> Result<bool, ApiError> {
        Ok(crate::usecases::sees(&state.engine, &self.0, opportunity).await?)
    }
}

/// The client's address: as the server resolved it through trusted proxies
/// (`forwarded::Client`), else the socket's peer.
pub(crate) fn client_address(parts: &Parts) -> IpAddr {
    if let Some(super::forwarded::Client(ip)) = parts.extensions.get() {
        return *ip;
    }
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]))
}

/// The bearer token of a request, if it has one.
pub fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// Checks a presented key, counting failures per client. Shared by the API and the console's
/// sign-in. A right key is let through even when its address is over the failure limit: the
/// address may be shared (a NAT, an untrusted proxy) and the limit is there to slow guessers,
/// not to lock out the others behind it (ADR 0032). A wrong key from a blocked address answers
/// 429 and is not counted again.
pub async fn check_key(
    state: &AppState,
    client: IpAddr,
    presented: &str,
) -> Result<Identity, ApiError> {
    match keys::authenticate(state.engine.store(), presented).await? {
        Some(identity) => Ok(identity),
        None if state.auth_failures.blocked(client) => Err(ApiError::RateLimited {
            retry_after_secs: FAILURE_WINDOW.as_secs(),
        }),
        None => {
            state.auth_failures.failed(client);
            // The visible prefix only, and only when it is one: a secret pasted in the wrong
            // place must not reach a log either.
            let prefix = presented
                .strip_prefix("nxk_")
                .and_then(|rest| rest.get(..12))
                .filter(|p| p.bytes().all(|b| b.is_ascii_hexdigit()))
                .unwrap_or("malformed");
            tracing::info!(%client, key_prefix = %prefix, "authentication failed");
            Err(ApiError::Unauthorized)
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // A middleware that authenticated the request already (`idempotency`) left who it is
        // here: the key is not looked up twice. Clients cannot set extensions.
        let identity = match parts.extensions.get::<Authenticated>() {
            Some(Authenticated(identity)) => identity.clone(),
            None => {
                let client = client_address(parts);
                let key = bearer(parts).ok_or(ApiError::Unauthorized)?;
                check_key(state, client, key).await?
            }
        };
        // The access log line (`edge::access_span`) names the tenant once it is known.
        tracing::Span::current().record("tenant", tracing::field::display(identity.tenant));
        Ok(Caller(identity))
    }
}

/// The client's address, for handlers that check keys themselves (the console's sign-in).
pub struct ClientAddr(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(client_address(parts)))
    }
}
