//! The call flow as a use case: what NeuronX answers when Twilio asks what an answered call
//! should do (lead first: connect the lead to the team's reps), what a rep hears before the
//! lead is put through, and what happens when a rep's dial ends.
//!
//! Each request is verified like every webhook before anything is read or written. The reps
//! are chosen here, not in the call actor: their availability is state shared by every call
//! of the tenant (`control::reps`), which a pure transition cannot read. What was decided and
//! what the provider reported goes to the call actor as inputs, durable before the answer, so
//! the call's record (and the opportunity's fallback) never depends on this request alone
//! (ADR 0040).

use std::collections::BTreeMap;

use neuronx_actors::domain::call::{
    AnsweredBy, CallInput, CallStatus, DialStatus, UnattendedReason,
};
use neuronx_actors::domain::compliance::Rules;
use neuronx_actors::domain::opportunity::Opportunity;
use neuronx_actors::domain::playbook::{fill, Playbook};
use neuronx_actors::{call as call_actor, opportunity as opp};
use neuronx_adapters::twilio::twiml::{DialRecording, Response};
use neuronx_supervision::{ActorKey, TenantId};
use serde_json::Value;
use uuid::Uuid;

use super::webhooks::{param, query_param, to_value, verified, Delivery, Refusal, Verifier};
use crate::control::tx::Tx;
use crate::control::{access, reps};

/// Which request of the flow arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowHook {
    /// The lead's call was answered: what should it do.
    Answer,
    /// A rep picked up: what they hear before the lead is connected.
    Whisper,
    /// A `<Dial>` of reps ended.
    DialEnded,
    /// A rep's leg moved (answered, completed).
    Leg,
    /// Agent first: the rep's call was answered: the prompt to accept.
    Agent,
    /// Agent first: the rep pressed a key.
    AgentAccept,
    /// Agent first, a recorded call: the lead's leg answered; the recording notice.
    Notice,
    /// The carrier finished (or could not make) a recording of the conversation.
    Recording,
}

impl FlowHook {
    pub fn label(self) -> &'static str {
        match self {
            FlowHook::Answer => "voice_answer",
            FlowHook::Whisper => "voice_whisper",
            FlowHook::DialEnded => "voice_dial",
            FlowHook::Leg => "voice_leg",
            FlowHook::Agent => "voice_agent",
            FlowHook::AgentAccept => "voice_agent_accept",
            FlowHook::Notice => "voice_notice",
            FlowHook::Recording => "voice_recording",
        }
    }
}

mod agent;
mod dial;
mod inbound;
mod recording;
mod rung;

use rung::Rung;

pub use inbound::{inbound_call, InboundAnswer, InboundOutcome};

/// How many `<Dial>`s of reps one answered call may go through before the lead is told
/// someone will call back: a lead on hold past about a minute hangs up anyway.
const MAX_ROUNDS: u32 = 3;

/// What the flow needs besides the verifier.
pub struct Flow<'a> {
    pub playbooks: &'a BTreeMap<String, Playbook>,
    pub default_playbook: &'a str,
    /// The compliance rules: their `[recording]` table says which leads hear the notice.
    pub rules: &'a Rules,
}

/// The call a flow request names, with its opportunity as stored.
struct Known {
    tenant: TenantId,
    call_id: Uuid,
    key: ActorKey,
    opp: Opportunity,
    /// The team the opportunity is bound to (its reps are rung), if any.
    team: Option<Uuid>,
    /// The `<Dial record>` of this call's dials, when its playbook records.
    record: Option<DialRecording>,
    /// The lead called us (ADR 0050): rung by the number's team, assignee first.
    inbound: Option<inbound::Inbound>,
}

/// Verifies one flow request and answers the TwiML that continues the call.
pub async fn handle(
    v: &Verifier<'_>,
    flow: &Flow<'_>,
    hook: FlowHook,
    d: Delivery<'_>,
) -> Result<Response, Refusal> {
    let (tenant, params) = verified(v, &d).await?;
    // A verified request missing a field is refused by name whatever call it names.
    required(hook, &params)?;
    if hook == FlowHook::Leg {
        // A rep's leg moved: only its own row changes, so nothing else is read (one follows
        // every answered call, issue #14), whoever the caller.
        return dial::leg(v, tenant, d.query, &params).await;
    }
    if inbound::is_unknown_caller(d.query) {
        return inbound::unknown_caller(v, flow, tenant, hook, d.query, &params).await;
    }
    let Some(mut known) = known(v, tenant, d.query).await? else {
        // Not a call of ours (or one since erased): never connect anyone on it.
        return Ok(Response::new().hangup());
    };
    let Some(pb) = playbook(flow, Some(&known.opp.playbook)) else {
        return Ok(Response::new().hangup());
    };
    known.record = recording::dial_recording(v, &known, pb, flow.rules);
    match hook {
        FlowHook::Answer => answer(v, &known, pb, flow.rules, &params).await,
        FlowHook::Whisper => whisper(v, &known, pb, d.query, &params).await,
        FlowHook::DialEnded => dial::ended(v, &known, pb, d.query, &params).await,
        // Answered above without reading the call; kept here so the match stays total.
        FlowHook::Leg => dial::leg(v, tenant, d.query, &params).await,
        FlowHook::Agent => agent::answered(v, &known, pb, d.query).await,
        FlowHook::AgentAccept => agent::accepted(v, &known, flow, pb, d.query, &params).await,
        FlowHook::Notice => Ok(recording::notice_doc(pb)),
        FlowHook::Recording => recording::recorded(v, &known, d.query, &params).await,
    }
}

/// The playbook named `name`, else the default one.
pub(super) fn playbook<'a>(flow: &'a Flow<'_>, name: Option<&str>) -> Option<&'a Playbook> {
    name.and_then(|n| flow.playbooks.get(n))
        .or_else(|| flow.playbooks.get(flow.default_playbook))
}

/// Opportunity `id`'s state and the team it is bound to, `None` when it does not exist (or
/// cannot be read as one), or when `call` is given and that call actor does not exist. One
/// round trip: this sits on the answer to a lead picking up (issue #14).
pub(super) async fn load_opportunity(
    v: &Verifier<'_>,
    tenant: TenantId,
    id: Uuid,
    call: Option<Uuid>,
) -> Result<Option<(Opportunity, Option<Uuid>)>, Refusal> {
    let call = call.map(|c| (call_actor::KIND.as_str(), c));
    let found = access::opportunity_with_team(v.engine.store(), tenant, id, call)
        .await
        .map_err(|_| Refusal::StoreUnavailable)?;
    Ok(found.and_then(|(state, team)| {
        let opp = serde_json::from_str::<Opportunity>(&state).ok()?;
        Some((opp, team))
    }))
}

/// A dial's result: its `DialCallStatus`, and whether it bridged (`DialBridged`, else a
/// `completed` dial).
pub(super) fn dial_result(params: &[(String, String)]) -> Result<(DialStatus, bool), Refusal> {
    let status: DialStatus = param(params, "DialCallStatus")
        .ok_or(Refusal::MissingDialCallStatus)?
        .parse()
        .map_err(|_| Refusal::BadDialCallStatus)?;
    let bridged = match param(params, "DialBridged") {
        Some(b) => b.eq_ignore_ascii_case("true"),
        None => status == DialStatus::Completed,
    };
    Ok((status, bridged))
}

/// Whether the request's own call had ended (`CallStatus` terminal) when the carrier sent it.
pub(super) fn own_call_ended(params: &[(String, String)]) -> bool {
    param(params, "CallStatus")
        .and_then(|s| s.parse::<CallStatus>().ok())
        .is_some_and(CallStatus::is_terminal)
}

fn required(hook: FlowHook, params: &[(String, String)]) -> Result<(), Refusal> {
    param(params, "CallSid").ok_or(Refusal::MissingCallSid)?;
    match hook {
        FlowHook::Answer
        | FlowHook::Whisper
        | FlowHook::Agent
        | FlowHook::AgentAccept
        | FlowHook::Notice => {}
        FlowHook::Recording => {
            let sid = param(params, "RecordingSid").ok_or(Refusal::MissingRecordingSid)?;
            if !neuronx_adapters::twilio::is_recording_sid(sid) {
                return Err(Refusal::BadRecordingSid);
            }
        }
        FlowHook::DialEnded => {
            param(params, "DialCallStatus")
                .ok_or(Refusal::MissingDialCallStatus)?
                .parse::<DialStatus>()
                .map_err(|_| Refusal::BadDialCallStatus)?;
        }
        FlowHook::Leg => {
            param(params, "CallStatus").ok_or(Refusal::MissingCallStatus)?;
        }
    }
    Ok(())
}

async fn known(
    v: &Verifier<'_>,
    tenant: TenantId,
    query: Option<&str>,
) -> Result<Option<Known>, Refusal> {
    let (Some(call_id), Some(opp_id)) = (
        query_param(query, "call").and_then(|s| Uuid::parse_str(&s).ok()),
        query_param(query, "opp").and_then(|s| Uuid::parse_str(&s).ok()),
    ) else {
        return Ok(None);
    };
    let inbound = inbound::Inbound::of(query);
    // An inbound call's actor was created (durably) before its first document was answered,
    // but may not be applied yet: its later inputs wait behind that one in the inbox.
    let call = match inbound {
        Some(_) => None,
        None => Some(call_id),
    };
    let Some((opp, team)) = load_opportunity(v, tenant, opp_id, call).await? else {
        return Ok(None);
    };
    let key = call_actor::key(&opp::key(tenant, opp_id), call_id);
    Ok(Some(Known {
        tenant,
        call_id,
        key,
        opp,
        team,
        record: None,
        inbound,
    }))
}

/// The lead answered. A machine gets the playbook's voicemail (or is hung up on); a person
/// hears the connecting message while the first reps ring.
async fn answer(
    v: &Verifier<'_>,
    k: &Known,
    pb: &Playbook,
    rules: &Rules,
    params: &[(String, String)],
) -> Result<Response, Refusal> {
    // The lead opted out or the opportunity closed while the call rang: nobody is put
    // through, and nothing is left on a voicemail.
    if k.opp.opted_out || k.opp.stage.is_terminal() {
        return Ok(Response::new().hangup());
    }
    let by = param(params, "AnsweredBy").and_then(|s| s.parse::<AnsweredBy>().ok());
    if by.is_some_and(AnsweredBy::is_machine) {
        return Ok(voicemail(pb, &k.opp.contact.name));
    }
    let call_sid = param(params, "CallSid").ok_or(Refusal::MissingCallSid)?;
    let mut doc = Response::new();
    // A recorded call tells the lead first, where the lead's state requires it.
    // A call exists only for a lead with a phone (the gate denies the others).
    let lead = k.opp.contact.phone.as_deref().unwrap_or_default();
    if let Some(text) = recording::notice(pb, rules, lead) {
        doc = doc.say(text);
    }
    if let Some(text) = &pb.call_flow.connecting_message {
        doc = doc.say(fill(text, &k.opp.contact.name));
    }
    ring_next(v, k, pb, call_sid, 1, doc, UnattendedReason::NoRepAvailable).await
}

fn voicemail(pb: &Playbook, name: &str) -> Response {
    let flow = &pb.call_flow;
    match (
        pb.voicemail,
        &flow.voicemail_audio_url,
        &flow.voicemail_message,
    ) {
        (true, Some(url), _) => Response::new().play(url.clone()).hangup(),
        (true, None, Some(text)) => Response::new().say(fill(text, name)).hangup(),
        _ => Response::new().hangup(),
    }
}

/// Offers the call to the next reps and dials them, or tells the lead someone will call
/// back. Round `round` of at most `MAX_ROUNDS`.
async fn ring_next(
    v: &Verifier<'_>,
    k: &Known,
    pb: &Playbook,
    call_sid: &str,
    round: u32,
    doc: Response,
    none_left: UnattendedReason,
) -> Result<Response, Refusal> {
    let store = v.engine.store();
    let now = v.engine.config().clock.now();
    let unavailable = |_| Refusal::StoreUnavailable;
    // The number's team rings an inbound call; the opportunity's team any other. Both were
    // read before the transaction: a request must never hold one connection while it waits
    // for a second, or a burst of them takes the whole pool and waits on itself.
    let team = k.inbound.as_ref().and_then(|i| i.team).or(k.team);
    // The offer and the `RepsRung` input that records it commit together: never a rep held
    // for a call whose actor was not told, nor a second commit to wait for (ADR 0040). Its
    // statements are keyed reads and writes of a few rows: planned once (ADR 0051).
    let mut tx = Tx::begin_generic(store).await.map_err(unavailable)?;
    let offered = if round > MAX_ROUNDS {
        None
    } else {
        let offer = match inbound::assignee_first(&mut tx, k, team, round, now).await? {
            Some(offer) => offer,
            None => reps::offer_in(&mut tx, k.tenant, team, k.call_id, now)
                .await
                .map_err(|_| Refusal::StoreUnavailable)?,
        };
        (!offer.reps.is_empty()).then_some(offer)
    };
    let Some(offer) = offered else {
        drop(tx); // nothing was written: rolled back
        let input = CallInput::Unattended { reason: none_left };
        let dedupe = format!("flow:{call_sid}:unattended");
        durable(v, k, &input, dedupe).await?;
        let said = match k.inbound {
            Some(_) => &pb.call_flow.inbound_unattended_message,
            None => &pb.call_flow.unattended_message,
        };
        return Ok(doc.say(fill(said, &k.opp.contact.name)).hangup());
    };
    let names: Vec<String> = offer.reps.iter().map(|r| r.name.clone()).collect();
    let input = to_value(&CallInput::RepsRung { reps: names })?;
    let dedupe = format!("flow:{call_sid}:rung:{round}");
    let staged = v
        .engine
        .enqueue_in(tx.conn(), k.key, input, Some(dedupe))
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, call = %k.call_id, "reps rung not made durable");
            Refusal::StoreUnavailable
        })?;
    tx.commit().await.map_err(unavailable)?;
    if let Some(staged) = staged {
        v.engine.deliver(staged);
    }
    let mut ids = format!("call={}&opp={}", k.call_id, k.opp.id);
    if let Some(inbound) = &k.inbound {
        ids.push_str(&inbound.query());
    }
    let rung = Rung {
        ids: &ids,
        round,
        offer: &offer,
        // The rep's phone shows the lead's number (the parent call's To, or the caller's
        // From, which Twilio accepts as a caller id), so they know who is waiting.
        caller_id: k.opp.contact.phone.clone(),
        record: k.record.clone(),
    };
    Ok(doc.dial(rung.dial(v, k.tenant)?))
}

/// A rep picked up: recorded, then told who is waiting. An empty whisper document would
/// also connect them; saying the lead's name is what makes the first second useful.
async fn whisper(
    v: &Verifier<'_>,
    k: &Known,
    pb: &Playbook,
    query: Option<&str>,
    params: &[(String, String)],
) -> Result<Response, Refusal> {
    let leg_sid = param(params, "CallSid").ok_or(Refusal::MissingCallSid)?;
    let Some(rep) = query_param(query, "rep").filter(|r| !r.trim().is_empty()) else {
        return Ok(Response::new().hangup());
    };
    let input = CallInput::RepAnswered {
        rep,
        leg_sid: leg_sid.to_owned(),
    };
    durable(v, k, &input, format!("flow:{leg_sid}:answered")).await?;
    let said = match k.inbound {
        Some(_) => &pb.call_flow.inbound_whisper,
        None => &pb.call_flow.whisper,
    };
    Ok(Response::new().say(fill(said, &k.opp.contact.name)))
}

async fn durable(
    v: &Verifier<'_>,
    k: &Known,
    input: &CallInput,
    dedupe: String,
) -> Result<(), Refusal> {
    let value: Value = to_value(input)?;
    match v.engine.enqueue(k.key, value, Some(dedupe)).await {
        Ok(_) => Ok(()),
        Err(e) => {
            tracing::warn!(error = %e, call = %k.call_id, "call flow input not made durable");
            Err(Refusal::StoreUnavailable)
        }
    }
}

fn urlencoded(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use neuronx_adapters::twilio::twiml::Verb;

    #[test]
    fn a_machine_gets_the_playbooks_voicemail_or_a_hang_up() {
        let mut pb = Playbook::with_defaults("x");
        assert_eq!(voicemail(&pb, "Ana").0, [Verb::Hangup]);
        pb.voicemail = true;
        let said = voicemail(&pb, "Ana");
        assert!(matches!(&said.0[..], [Verb::Say(t), Verb::Hangup] if t.starts_with("Hi Ana,")));
        pb.call_flow.voicemail_audio_url = Some("https://cdn.example.com/vm.mp3".into());
        let played = voicemail(&pb, "Ana");
        assert_eq!(
            played.0,
            [
                Verb::Play("https://cdn.example.com/vm.mp3".into()),
                Verb::Hangup
            ]
        );
        pb.call_flow.voicemail_audio_url = None;
        pb.call_flow.voicemail_message = None;
        assert_eq!(voicemail(&pb, "Ana").0, [Verb::Hangup]);
    }

    #[test]
    fn a_request_missing_what_its_hook_needs_is_refused_by_name() {
        let form = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let sid = form(&[("CallSid", "CA1")]);
        assert_eq!(required(FlowHook::Answer, &sid), Ok(()));
        assert_eq!(
            required(FlowHook::Answer, &[]),
            Err(Refusal::MissingCallSid)
        );
        assert_eq!(
            required(FlowHook::DialEnded, &sid),
            Err(Refusal::MissingDialCallStatus)
        );
        let bad = form(&[("CallSid", "CA1"), ("DialCallStatus", "exploded")]);
        assert_eq!(
            required(FlowHook::DialEnded, &bad),
            Err(Refusal::BadDialCallStatus)
        );
        let ok = form(&[("CallSid", "CA1"), ("DialCallStatus", "no-answer")]);
        assert_eq!(required(FlowHook::DialEnded, &ok), Ok(()));
        assert_eq!(
            required(FlowHook::Leg, &sid),
            Err(Refusal::MissingCallStatus)
        );
    }
}
