//! Agent first (click to call): the provider rang the rep first. The rep hears who they are
//! about to call and presses 1; only then is the lead dialled, from the call the rep is on
//! (the lead sees the tenant's number: a `<Dial>` without `callerId` shows the parent call's
//! `From`). Any other key, or none, passes, and the lead is never dialled.

use neuronx_actors::domain::call::{CallInput, DialStatus};
use neuronx_actors::domain::playbook::{fill, Playbook};
use neuronx_adapters::twilio::twiml::{Dial, Gather, Number, Response};

use super::{durable, recording, urlencoded, Flow, Known};
use crate::control::reps;
use crate::usecases::webhooks::{param, query_param, Refusal, Verifier};

/// How long the rep has to press a key after the prompt.
const ACCEPT_TIMEOUT_SECONDS: u32 = 8;

fn rep_of(query: Option<&str>) -> Option<String> {
    query_param(query, "rep").filter(|r| !r.trim().is_empty())
}

/// The rep picked up: they now count as on a call, and hear the lead's name and the prompt.
pub(super) async fn answered(
    v: &Verifier<'_>,
    k: &Known,
    pb: &Playbook,
    query: Option<&str>,
) -> Result<Response, Refusal> {
    let Some(rep) = rep_of(query) else {
        return Ok(Response::new().hangup());
    };
    if let Some(closed) = cannot_call(k) {
        return Ok(Response::new().say(closed).hangup());
    }
    let now = v.engine.config().clock.now();
    reps::engage(v.engine.store(), k.tenant, k.call_id, &rep, now)
        .await
        .map_err(|_| Refusal::StoreUnavailable)?;
    let action = format!(
        "{}/agent/accept?call={}&opp={}&rep={}",
        base(v, k),
        k.call_id,
        k.opp.id,
        urlencoded(&rep)
    );
    Ok(Response::new()
        .gather(Gather {
            action,
            num_digits: 1,
            timeout_seconds: ACCEPT_TIMEOUT_SECONDS,
            prompt: fill(&pb.call_flow.agent_whisper, &k.opp.contact.name),
        })
        .say("No key was pressed. Goodbye.")
        .hangup())
}

/// The rep pressed a key: 1 dials the lead, anything else passes.
pub(super) async fn accepted(
    v: &Verifier<'_>,
    k: &Known,
    flow: &Flow<'_>,
    pb: &Playbook,
    query: Option<&str>,
    params: &[(String, String)],
) -> Result<Response, Refusal> {
    let leg_sid = param(params, "CallSid").ok_or(Refusal::MissingCallSid)?;
    let Some(rep) = rep_of(query) else {
        return Ok(Response::new().hangup());
    };
    if param(params, "Digits").map(str::trim) != Some("1") {
        return Ok(Response::new()
            .say("The call was passed. Goodbye.")
            .hangup());
    }
    // The lead may have opted out or closed in the seconds the rep's phone rang.
    if let Some(closed) = cannot_call(k) {
        return Ok(Response::new().say(closed).hangup());
    }
    let input = CallInput::RepAnswered {
        rep: rep.clone(),
        leg_sid: leg_sid.to_owned(),
    };
    durable(v, k, &input, format!("flow:{leg_sid}:answered")).await?;
    let reps = serde_json::to_string(&[rep.as_str()]).map_err(|_| Refusal::Unencodable)?;
    let action = format!(
        "{}/dial?call={}&opp={}&round=1&mode=agent&reps={}",
        base(v, k),
        k.call_id,
        k.opp.id,
        urlencoded(&reps)
    );
    // A recorded call tells the lead before connecting, where the lead's state requires it:
    // agent first the lead's own leg says it (`voice/notice`), so the rep does not hear it.
    // A call exists only for a lead with a phone (the gate denies the others).
    let lead = k.opp.contact.phone.clone().unwrap_or_default();
    let notice = recording::notice(pb, flow.rules, &lead)
        .map(|_| format!("{}/notice?call={}&opp={}", base(v, k), k.call_id, k.opp.id));
    Ok(Response::new().dial(Dial {
        action,
        timeout_seconds: u32::try_from(pb.ring_timeout_seconds).unwrap_or(u32::MAX),
        caller_id: None,
        numbers: vec![Number {
            number: lead,
            url: notice,
            status_callback: None,
        }],
        record: k.record.clone(),
    }))
}

/// The dial to the lead ended: the call actor records the conversation or the miss (and
/// reports it to the opportunity); the rep is told and the call ends.
pub(super) async fn dial_ended(
    v: &Verifier<'_>,
    k: &Known,
    call_sid: &str,
    status: DialStatus,
    bridged: bool,
    params: &[(String, String)],
) -> Result<Response, Refusal> {
    let input = CallInput::DialEnded {
        status,
        bridged,
        leg_sid: param(params, "DialCallSid").map(str::to_owned),
        talk_seconds: param(params, "DialCallDuration").and_then(|s| s.parse::<u32>().ok()),
        // The rep is the call's own leg (the call knows it), not one this dial rang.
        reps: Vec::new(),
    };
    durable(v, k, &input, format!("flow:{call_sid}:dial:agent")).await?;
    if bridged {
        return Ok(Response::new().hangup());
    }
    let said = match status {
        DialStatus::Busy => "The lead's line is busy. Goodbye.",
        _ => "The lead did not answer. Goodbye.",
    };
    Ok(Response::new().say(said).hangup())
}

fn cannot_call(k: &Known) -> Option<&'static str> {
    (k.opp.opted_out || k.opp.stage.is_terminal())
        .then_some("This lead can no longer be called. Goodbye.")
}

fn base(v: &Verifier<'_>, k: &Known) -> String {
    format!("{}/webhooks/twilio/{}/voice", v.public_url, k.tenant.0)
}
