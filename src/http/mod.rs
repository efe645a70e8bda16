//! The HTTP API (axum): routes, shared state, and the server actor that runs it under the
//! engine's supervision tree.

mod access;
mod audit;
pub mod auth;
mod channels;
mod commands;
mod error;
mod extract;
mod opportunities;
mod ops;
pub mod server;
mod webhooks;
mod why;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use neuronx_actors::domain::playbook::Playbook;
use neuronx_supervision::EngineHandle;

pub use error::ApiError;

#[derive(Clone)]
pub struct AppState {
    pub engine: EngineHandle,
    pub playbooks: Arc<BTreeMap<String, Playbook>>,
    pub default_playbook: String,
    pub keyring: Arc<crate::secrets::Keyring>,
    /// The URL Twilio uses to reach this instance: webhook signatures are computed over it.
    pub public_url: String,
    /// Webhook requests by route and outcome.
    pub webhooks: prometheus::IntCounterVec,
    /// Opened Twilio auth tokens by tenant, for webhook signatures: without it every callback
    /// would read and unseal the credentials. Short-lived, and cleared when they change.
    pub tokens: TokenCache,
    /// The effect handlers' account cache, cleared here when credentials change.
    pub accounts: crate::channels::AccountCache,
    /// Failed authentications per client address, to refuse guessers (429).
    pub auth_failures: auth::AuthLimiter,
}

pub type TokenCache = moka::sync::Cache<neuronx_supervision::TenantId, Arc<str>>;

pub fn token_cache() -> TokenCache {
    moka::sync::Cache::builder()
        .max_capacity(100_000)
        .time_to_live(std::time::Duration::from_secs(60))
        .build()
}

pub fn router(state: AppState) -> Router {
    use commands as c;
    use opportunities as o;
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/v1/opportunities", post(o::create).get(o::list))
        .route("/v1/opportunities/{id}", get(o::get))
        .route("/v1/opportunities/{id}/timeline", get(o::timeline))
        .route("/v1/opportunities/{id}/pause", post(c::pause))
        .route("/v1/opportunities/{id}/resume", post(c::resume))
        .route("/v1/opportunities/{id}/reassign", post(c::reassign))
        .route("/v1/opportunities/{id}/escalate", post(c::escalate))
        .route(
            "/v1/opportunities/{id}/timers/{name}/cancel",
            post(c::cancel_timer),
        )
        .route("/v1/bulk/pause", post(c::bulk_pause))
        .route("/v1/bulk/resume", post(c::bulk_resume))
        .route("/v1/calls/{id}", get(ops::get_call))
        .route("/v1/dead-letters", get(ops::dead_letters))
        .route("/v1/dead-letters/{id}/retry", post(ops::retry_dead_letter))
        .route(
            "/v1/dead-letters/{id}/discard",
            post(ops::discard_dead_letter),
        )
        .route(
            "/v1/teams",
            post(access::create_team).get(access::list_teams),
        )
        .route(
            "/v1/principals",
            post(access::create_principal).get(access::list_principals),
        )
        .route("/v1/keys", post(access::create_key).get(access::list_keys))
        .route("/v1/keys/{id}", axum::routing::delete(access::revoke_key))
        .route("/v1/audit", get(audit::list))
        .route(
            "/v1/channels/twilio",
            axum::routing::put(channels::put_twilio).get(channels::get_twilio),
        )
        .route("/v1/dnc", post(channels::add_dnc))
        .route(
            "/v1/dnc/{phone}",
            axum::routing::delete(channels::remove_dnc),
        )
        .route(
            "/webhooks/twilio/{tenant_id}/voice/status",
            post(webhooks::voice_status_route),
        )
        .route(
            "/webhooks/twilio/{tenant_id}/sms/status",
            post(webhooks::sms_status_route),
        )
        .route(
            "/webhooks/twilio/{tenant_id}/sms/inbound",
            post(webhooks::sms_inbound_route),
        )
        .fallback(|| async { ApiError::NotFound("route") })
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024))
        .with_state(state)
}
