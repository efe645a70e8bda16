//! The call flow's webhooks (TwiML served by NeuronX): Twilio asks what an answered call
//! does, what a rep hears, and what follows a dial. Verified like every webhook; the use case
//! (`usecases::call_flow`) decides, and the answer is its TwiML.

use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::webhooks::{delivery, refuse, verifier};
use super::AppState;
use crate::usecases::call_flow::{self, Flow, FlowHook};

async fn handle(
    state: AppState,
    hook: FlowHook,
    tenant_id: String,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let flow = Flow {
        playbooks: &state.playbooks,
        default_playbook: &state.default_playbook,
        rules: &state.compliance,
    };
    let d = delivery(&tenant_id, &uri, &headers, &body);
    match call_flow::handle(&verifier(&state), &flow, hook, d).await {
        Ok(doc) => {
            state
                .webhooks
                .with_label_values(&[hook.label(), "accepted"])
                .inc();
            let xml = doc.render();
            (StatusCode::OK, [(header::CONTENT_TYPE, "text/xml")], xml).into_response()
        }
        Err(why) => refuse(hook.label(), why, &state),
    }
}

macro_rules! flow_route {
    ($name:ident, $hook:expr) => {
        pub async fn $name(
            State(state): State<AppState>,
            Path(tenant_id): Path<String>,
            OriginalUri(uri): OriginalUri,
            headers: HeaderMap,
            body: Bytes,
        ) -> Response {
            handle(state, $hook, tenant_id, uri, headers, body).await
        }
    };
}

flow_route!(answer_route, FlowHook::Answer);
flow_route!(whisper_route, FlowHook::Whisper);
flow_route!(dial_route, FlowHook::DialEnded);
flow_route!(leg_route, FlowHook::Leg);
flow_route!(agent_route, FlowHook::Agent);
flow_route!(agent_accept_route, FlowHook::AgentAccept);
flow_route!(notice_route, FlowHook::Notice);
flow_route!(recording_route, FlowHook::Recording);

/// `voice/inbound`: a lead called one of the tenant's numbers (Twilio's incoming-call
/// webhook). Counted by how it was routed (`routed`, `unknown_caller`, `unknown_number`).
pub async fn inbound_route(
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    const LABEL: &str = "voice_inbound";
    let flow = Flow {
        playbooks: &state.playbooks,
        default_playbook: &state.default_playbook,
        rules: &state.compliance,
    };
    let d = delivery(&tenant_id, &uri, &headers, &body);
    match call_flow::inbound_call(&verifier(&state), &flow, d).await {
        Ok(answer) => {
            state
                .webhooks
                .with_label_values(&[LABEL, answer.outcome.as_str()])
                .inc();
            let xml = answer.doc.render();
            (StatusCode::OK, [(header::CONTENT_TYPE, "text/xml")], xml).into_response()
        }
        Err(why) => refuse(LABEL, why, &state),
    }
}
