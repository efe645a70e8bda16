//! The end of a `<Dial>` of reps and of each rep's leg: a conversation, the next round, or the
//! callback promise; and the rep freed as soon as their own leg ends.

use neuronx_actors::domain::call::{CallInput, UnattendedReason};
use neuronx_actors::domain::playbook::Playbook;
use neuronx_adapters::twilio::twiml::Response;
use neuronx_supervision::TenantId;
use uuid::Uuid;

use super::{agent, dial_result, durable, own_call_ended, ring_next, Known, MAX_ROUNDS};
use crate::control::reps;
use crate::usecases::webhooks::{param, query_param, Refusal, Verifier};

/// A dial of reps ended. Connected: the call is over when the conversation is. Missed: the
/// next reps, or the callback promise.
pub(super) async fn ended(
    v: &Verifier<'_>,
    k: &Known,
    pb: &Playbook,
    query: Option<&str>,
    params: &[(String, String)],
) -> Result<Response, Refusal> {
    let call_sid = param(params, "CallSid").ok_or(Refusal::MissingCallSid)?;
    let (status, bridged) = dial_result(params)?;
    if query_param(query, "mode").as_deref() == Some("agent") {
        let ended = agent::dial_ended(v, k, call_sid, status, bridged, params).await?;
        let now = v.engine.config().clock.now();
        reps::call_ended(v.engine.store(), k.tenant, k.call_id, now)
            .await
            .map_err(|_| Refusal::StoreUnavailable)?;
        return Ok(ended);
    }
    let leg_sid = param(params, "DialCallSid").map(str::to_owned);
    let talk_seconds = param(params, "DialCallDuration").and_then(|s| s.parse::<u32>().ok());
    let round = query_param(query, "round")
        .and_then(|r| r.parse::<u32>().ok())
        .unwrap_or(MAX_ROUNDS);
    let rung: Vec<String> = query_param(query, "reps")
        .and_then(|r| serde_json::from_str(&r).ok())
        .unwrap_or_default();
    let input = CallInput::DialEnded {
        status,
        bridged,
        leg_sid,
        talk_seconds,
        reps: rung,
    };
    durable(v, k, &input, format!("flow:{call_sid}:dial:{round}")).await?;
    let now = v.engine.config().clock.now();
    reps::call_ended(v.engine.store(), k.tenant, k.call_id, now)
        .await
        .map_err(|_| Refusal::StoreUnavailable)?;
    if bridged {
        return Ok(Response::new().hangup());
    }
    let reason = UnattendedReason::RepsMissed;
    // The parent (the lead's call) had ended: its `CallStatus` rides along with the dial's result.
    if own_call_ended(params) {
        // The lead hung up (or was hung up on) while the reps rang; the carrier still asks
        // the action. Ringing more reps would hold them for a call that no longer exists: the
        // lead is owed a callback instead.
        let input = CallInput::Unattended { reason };
        durable(v, k, &input, format!("flow:{call_sid}:unattended")).await?;
        return Ok(Response::new().hangup());
    }
    ring_next(v, k, pb, call_sid, round + 1, Response::new(), reason).await
}

/// A rep's leg moved; ended, the rep is free for the next call at once, not when the whole dial
/// reports (a simultaneous dial's losers would otherwise look busy through the winner's
/// conversation). Neither the call nor its opportunity is read: the update is scoped to the
/// tenant and the call, so a call that is not ours matches no leg.
pub(super) async fn leg(
    v: &Verifier<'_>,
    tenant: TenantId,
    query: Option<&str>,
    params: &[(String, String)],
) -> Result<Response, Refusal> {
    let Some(call_id) = query_param(query, "call").and_then(|s| Uuid::parse_str(&s).ok()) else {
        return Ok(Response::new().hangup());
    };
    param(params, "CallStatus").ok_or(Refusal::MissingCallStatus)?;
    if let (true, Some(rep)) = (own_call_ended(params), query_param(query, "rep")) {
        let now = v.engine.config().clock.now();
        reps::leg_ended(v.engine.store(), tenant, call_id, &rep, now)
            .await
            .map_err(|_| Refusal::StoreUnavailable)?;
    }
    Ok(Response::new())
}
