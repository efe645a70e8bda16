//! The HTTP API (axum): routes, shared state, and the server actor that runs it under the
//! engine's supervision tree.

mod access;
mod audit;
pub mod auth;
mod bulk;
mod channels;
mod cluster;
mod commands;
mod connections;
mod console;
pub mod edge;
mod error;
mod extract;
mod forwarded;
mod idempotency;
mod inbound_email;
mod messages;
mod numbers;
pub(crate) mod openapi;
mod opportunities;
mod ops;
mod principals;
mod recordings;
mod reps;
pub mod server;
mod settings;
mod unsubscribe;
mod voice;
mod webhooks;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use neuronx_actors::domain::playbook::Playbook;
use neuronx_supervision::EngineHandle;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use error::ApiError;

#[derive(Clone)]
pub struct AppState {
    pub engine: EngineHandle,
    pub playbooks: Arc<BTreeMap<String, Playbook>>,
    pub default_playbook: String,
    /// The compliance rules the engine's gate uses; the call flow reads their `[recording]`.
    pub compliance: Arc<neuronx_actors::domain::compliance::Rules>,
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
    /// Where tenant-supplied hosts may lead; checked when one is saved.
    pub guard: neuronx_adapters::outbound::OutboundGuard,
    /// Failed authentications per client address, to refuse guessers (429).
    pub auth_failures: auth::AuthLimiter,
    /// The HTTP edge's settings and the instance's stop signals (`edge`, `server`).
    pub edge: edge::Edge,
}

pub type TokenCache = moka::sync::Cache<neuronx_supervision::TenantId, Arc<str>>;

pub fn token_cache() -> TokenCache {
    moka::sync::Cache::builder()
        .max_capacity(100_000)
        .time_to_live(std::time::Duration::from_secs(60))
        .build()
}

/// The API's routes with their OpenAPI description, not yet given their state.
fn api() -> OpenApiRouter<AppState> {
    use commands as c;
    use opportunities as o;
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
        .routes(routes!(o::create, o::list))
        .routes(routes!(o::get))
        .routes(routes!(o::timeline))
        .routes(routes!(c::pause))
        .routes(routes!(c::resume))
        .routes(routes!(c::reassign))
        .routes(routes!(c::escalate))
        .routes(routes!(c::cancel_timer))
        .routes(routes!(c::set_stage))
        .routes(routes!(c::call_now))
        .routes(routes!(c::hand_back))
        .routes(routes!(messages::list_messages, messages::send_message))
        .routes(routes!(bulk::bulk_pause))
        .routes(routes!(bulk::bulk_resume))
        .routes(routes!(ops::get_call))
        .routes(routes!(recordings::get_recording))
        .routes(routes!(recordings::get_recording_media))
        .routes(routes!(ops::dead_letters))
        .routes(routes!(ops::retry_dead_letter))
        .routes(routes!(ops::discard_dead_letter))
        .routes(routes!(cluster::cluster))
        .routes(routes!(access::create_team, access::list_teams))
        .routes(routes!(access::create_principal, access::list_principals))
        .routes(routes!(access::create_key, access::list_keys))
        .routes(routes!(access::revoke_key))
        .routes(routes!(principals::deactivate))
        .routes(routes!(principals::activate))
        .routes(routes!(reps::set_rep))
        .routes(routes!(reps::set_status))
        .routes(routes!(reps::list_reps))
        .routes(routes!(reps::set_ringing))
        .routes(routes!(audit::list))
        .routes(routes!(channels::put_twilio, channels::get_twilio))
        .routes(routes!(channels::put_smtp, channels::get_smtp))
        .routes(routes!(
            inbound_email::put_inbound,
            inbound_email::get_inbound
        ))
        .routes(routes!(channels::add_dnc))
        .routes(routes!(channels::remove_dnc))
        .routes(routes!(numbers::put_number, numbers::remove_number))
        .routes(routes!(numbers::list_numbers))
        .routes(routes!(settings::get_settings, settings::put_settings))
}

/// The API's public pages: no key, so no `Idempotency-Key` either (a mail client's one-click
/// POST carries none, and one that did must not be asked for a key).
fn public() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(
        unsubscribe::get_unsubscribe,
        unsubscribe::post_unsubscribe
    ))
}

/// The OpenAPI document of the API (what `/openapi.json` serves).
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    api().merge(public()).into_openapi()
}

pub fn router(state: AppState) -> Router {
    let edge = state.edge.clone();
    let (api, mut doc) = api().split_for_parts();
    let (public, public_doc) = public().split_for_parts();
    doc.merge(public_doc);
    // Commands carrying an Idempotency-Key answer once per key (API routes only).
    let api = api
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            idempotency::idempotent,
        ))
        .merge(public);
    // Rendered once: the document is a constant of the build.
    let doc = Arc::new(doc.to_pretty_json().unwrap_or_else(|_| "{}".into()));
    let openapi_json = move || {
        let doc = doc.clone();
        async move {
            (
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                (*doc).clone(),
            )
        }
    };
    // Twilio's webhooks are Twilio's contract, authenticated by its signature: not part of the
    // API document.
    let router = api
        .route("/openapi.json", get(openapi_json))
        .merge(console::router())
        .route(
            "/webhooks/twilio/{tenant_id}/voice/status",
            post(webhooks::voice_status_route),
        )
        .route(
            "/webhooks/twilio/{tenant_id}/voice/answer",
            post(voice::answer_route),
        )
        .route(
            "/webhooks/twilio/{tenant_id}/voice/inbound",
            post(voice::inbound_route),
        )
        .route(
            "/webhooks/twilio/{tenant_id}/voice/whisper",
            post(voice::whisper_route),
        )
        .route(
            "/webhooks/twilio/{tenant_id}/voice/dial",
            post(voice::dial_route),
        )
        .route(
            "/webhooks/twilio/{tenant_id}/voice/leg",
            post(voice::leg_route),
        )
        .route(
            "/webhooks/twilio/{tenant_id}/voice/agent",
            post(voice::agent_route),
        )
        .route(
            "/webhooks/twilio/{tenant_id}/voice/notice",
            post(voice::notice_route),
        )
        .route(
            "/webhooks/twilio/{tenant_id}/voice/recording",
            post(voice::recording_route),
        )
        .route(
            "/webhooks/twilio/{tenant_id}/voice/agent/accept",
            post(voice::agent_accept_route),
        )
        .route(
            "/webhooks/twilio/{tenant_id}/sms/status",
            post(webhooks::sms_status_route),
        )
        .route(
            "/webhooks/twilio/{tenant_id}/sms/inbound",
            post(webhooks::sms_inbound_route),
        )
        // A relay posts whole messages: a larger limit than the API's, for this route only.
        .route(
            "/webhooks/mailgun/{tenant_id}/mime",
            post(inbound_email::mailgun_route).layer(axum::extract::DefaultBodyLimit::max(
                inbound_email::MAX_MAIL_BYTES,
            )),
        )
        .fallback(|| async { ApiError::NotFound("route") })
        // After every route: it applies to the routes registered before it.
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024))
        .with_state(state);
    edge::wrap(router, &edge)
}
