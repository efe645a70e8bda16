//! Inbound calls (ADR 0050): a lead calls one of the tenant's numbers and Twilio asks
//! `voice/inbound` what to do. Verified like every webhook before anything is read or written;
//! then routed by the number reached (`To`: the pool's team, or tenant-wide) and by the caller
//! (`From`: their live opportunity, the cadence holder first).
//!
//! A known caller gets a call actor of its own (created, durably, before the answer), and from
//! there the call is the lead-first flow's: the assignee rung first, then the number's team by
//! its strategy, the whisper, the dial's result as a `conversation` on the timeline, and the
//! callback path when nobody takes it. Nothing is ever dialled to the lead: the lead called us,
//! so calling hours, do-not-call and voice consent (which govern calls we place) do not apply.
//!
//! An unknown caller (no live opportunity has the number, or the caller id is withheld) is
//! still put through to the number's team, whose reps hear "an unknown caller"; with no
//! opportunity there is no timeline, so the call is counted (`neuronx_webhooks_total`,
//! `outcome`) and logged, and its dial's result is logged with the rep and the talk time.

use neuronx_actors::domain::call::{CallInput, UnattendedReason};
use neuronx_actors::domain::opportunity::validate_e164;
use neuronx_actors::domain::playbook::fill;
use neuronx_actors::{call as call_actor, opportunity as opp};
use neuronx_adapters::twilio::twiml::Response;
use neuronx_supervision::{SubmitOutcome, TenantId};
use tracing::Instrument;
use uuid::Uuid;

use super::{
    dial_result, load_opportunity, playbook, recording, ring_next, urlencoded, Flow, FlowHook,
    Known, Rung, MAX_ROUNDS,
};
use crate::control::reps;
use crate::control::tx::Tx;
use crate::usecases::webhooks::{
    live_opportunity_of, number_team, param, query_param, to_value, verified, Delivery, Refusal,
    Verifier,
};

/// What the reps of an unknown caller's call hear the caller named as.
const UNKNOWN_CALLER: &str = "an unknown caller";

/// Said to a caller who reached a number that is none of this tenant's (Twilio still expects
/// TwiML, and a caller deserves a sentence rather than silence).
const NOT_IN_SERVICE: &str =
    "Sorry, this number cannot take your call right now. Please try again later. Goodbye.";

/// Caller ids Twilio sends when the caller withheld theirs: an unknown caller, not bad input.
const WITHHELD: [&str; 5] = ["anonymous", "restricted", "unknown", "private", "blocked"];

/// An inbound call's part of a flow request (`inbound=1`, and `team=` when the number reached
/// is a team's), carried in the URLs we answer, which Twilio signs back to us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Inbound {
    /// The number's team; `None`: a tenant-wide number (the opportunity's team rings).
    pub team: Option<Uuid>,
}

impl Inbound {
    pub(super) fn of(query: Option<&str>) -> Option<Self> {
        query_param(query, "inbound")?;
        let team = query_param(query, "team").and_then(|t| Uuid::parse_str(&t).ok());
        Some(Self { team })
    }

    pub(super) fn query(&self) -> String {
        match self.team {
            Some(team) => format!("&inbound=1&team={team}"),
            None => "&inbound=1".to_owned(),
        }
    }
}

/// How an inbound call was routed: the metric's `outcome` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboundOutcome {
    /// A known caller: their opportunity's call flow.
    Routed,
    /// No live opportunity has the caller's number (or it was withheld): the team's reps.
    UnknownCaller,
    /// `To` is none of the tenant's numbers: told so and hung up on; nothing written.
    UnknownNumber,
    /// The first request of a call with a greeting: greeted, then sent back (`ring=1`) for
    /// the ringing, which is counted by how it was routed.
    Greeted,
}

impl InboundOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            InboundOutcome::Routed => "routed",
            InboundOutcome::UnknownCaller => "unknown_caller",
            InboundOutcome::UnknownNumber => "unknown_number",
            InboundOutcome::Greeted => "greeted",
        }
    }
}

/// The TwiML an inbound call gets, and how it was routed.
pub struct InboundAnswer {
    pub doc: Response,
    pub outcome: InboundOutcome,
}

/// What an inbound request names, checked: every field refused by name before anything is read.
struct Request<'a> {
    call_sid: &'a str,
    /// `None`: a withheld caller id.
    from: Option<String>,
    to: String,
}

fn request(params: &[(String, String)]) -> Result<Request<'_>, Refusal> {
    let call_sid = param(params, "CallSid").ok_or(Refusal::MissingCallSid)?;
    let sid_ok = call_sid.len() == 34
        && call_sid.starts_with("CA")
        && call_sid[2..].bytes().all(|b| b.is_ascii_hexdigit());
    if !sid_ok {
        return Err(Refusal::BadCallSid);
    }
    let to = param(params, "To").ok_or(Refusal::MissingTo)?.trim();
    validate_e164(to).map_err(|_| Refusal::BadTo)?;
    let from = param(params, "From").ok_or(Refusal::MissingFrom)?.trim();
    let from = if WITHHELD.iter().any(|w| from.eq_ignore_ascii_case(w)) {
        None
    } else {
        validate_e164(from).map_err(|_| Refusal::BadFrom)?;
        Some(from.to_owned())
    };
    Ok(Request {
        call_sid,
        from,
        to: to.to_owned(),
    })
}

/// The call actor's id for the provider's call `call_sid`: derived, so a retried request names
/// the same call.
fn call_id_of(tenant: TenantId, call_sid: &str) -> Uuid {
    Uuid::new_v5(&tenant.0, format!("inbound-call:{call_sid}").as_bytes())
}

/// Verifies and routes one inbound call; answers the TwiML that greets the caller and rings the
/// reps (or says why nobody will).
pub async fn inbound_call(
    v: &Verifier<'_>,
    flow: &Flow<'_>,
    d: Delivery<'_>,
) -> Result<InboundAnswer, Refusal> {
    let (tenant, params) = verified(v, &d).await?;
    let req = request(&params)?;
    // The second request of a call: the caller heard the greeting and is still on the line.
    let greeted = query_param(d.query, "ring").as_deref() == Some("1");
    let span = tracing::info_span!("inbound_call", tenant = %tenant.0, call_sid = req.call_sid,
        to = %req.to, greeted);
    route(v, flow, tenant, &req, greeted).instrument(span).await
}

/// The first request of a call with something to say: the greeting, then back to
/// `voice/inbound` (`ring=1`) for the ringing. Nothing is offered to a rep, nor any call
/// recorded, until the caller has heard it: a caller who hangs up during the greeting leaves
/// nothing behind (no request would ever free a rep offered to them). `None`: ring now.
fn greet_first(
    v: &Verifier<'_>,
    tenant: TenantId,
    greeted: bool,
    greeting: Response,
) -> Option<InboundAnswer> {
    if greeted || greeting.0.is_empty() {
        return None;
    }
    let url = format!(
        "{}/webhooks/twilio/{}/voice/inbound?ring=1",
        v.public_url, tenant.0
    );
    Some(InboundAnswer {
        doc: greeting.redirect(url),
        outcome: InboundOutcome::Greeted,
    })
}

async fn route(
    v: &Verifier<'_>,
    flow: &Flow<'_>,
    tenant: TenantId,
    req: &Request<'_>,
    greeted: bool,
) -> Result<InboundAnswer, Refusal> {
    let Some(team) = number_team(v.engine, tenant, &req.to).await? else {
        tracing::info!("inbound call to a number that is not the tenant's");
        return Ok(InboundAnswer {
            doc: Response::new().say(NOT_IN_SERVICE).hangup(),
            outcome: InboundOutcome::UnknownNumber,
        });
    };
    let opportunity = match &req.from {
        Some(from) => match live_opportunity_of(v.engine, tenant, from, team).await? {
            Some(id) => load_opportunity(v, tenant, id, None).await?,
            None => None,
        },
        None => None,
    };
    let Some((opportunity, opp_team)) = opportunity else {
        if let Some(first) = greet_first(v, tenant, greeted, greeting(flow)) {
            return Ok(first);
        }
        tracing::info!(from = ?req.from, team = ?team, "inbound call from an unknown caller");
        let doc = ring_unknown(v, flow, tenant, team, req, 1, Response::new()).await?;
        return Ok(InboundAnswer {
            doc,
            outcome: InboundOutcome::UnknownCaller,
        });
    };
    let Some(pb) = playbook(flow, Some(&opportunity.playbook)) else {
        return Ok(InboundAnswer {
            doc: Response::new().hangup(),
            outcome: InboundOutcome::Routed,
        });
    };
    // The number calling (a known caller was found by it): the lead's own phone may be unset,
    // as a lead may come with an email alone.
    let caller = req
        .from
        .clone()
        .or_else(|| opportunity.contact.phone.clone())
        .unwrap_or_default();
    let mut greeting = Response::new();
    if let Some(text) = recording::notice(pb, flow.rules, &caller) {
        greeting = greeting.say(text);
    }
    if let Some(text) = &pb.call_flow.inbound_greeting {
        greeting = greeting.say(fill(text, &opportunity.contact.name));
    }
    if let Some(first) = greet_first(v, tenant, greeted, greeting) {
        return Ok(first);
    }
    let call_id = call_id_of(tenant, req.call_sid);
    let key = call_actor::key(&opp::key(tenant, opportunity.id), call_id);
    tracing::info!(opp = %opportunity.id, call = %call_id, "inbound call from a known caller");
    let input = CallInput::Inbound {
        call_id,
        opportunity_id: opportunity.id,
        from: caller.clone(),
        to: req.to.clone(),
        provider_sid: req.call_sid.to_owned(),
        playbook: pb.name.clone(),
    };
    // Applied before answering (waited for, within the reply timeout), so the whisper and
    // the dial's action find the call; durable in any case before anyone is rung.
    let dedupe = format!("inbound-call:{}", req.call_sid);
    match v.engine.submit(key, to_value(&input)?, Some(dedupe)).await {
        Ok(SubmitOutcome::Rejected(r)) => {
            tracing::warn!(rejected = ?r, "inbound call refused by its call actor");
            return Err(Refusal::StoreUnavailable);
        }
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(error = %e, "inbound call not made durable");
            return Err(Refusal::StoreUnavailable);
        }
    }
    let mut known = Known {
        tenant,
        call_id,
        key,
        opp: opportunity,
        team: opp_team,
        record: None,
        inbound: Some(Inbound { team }),
    };
    known.record = recording::dial_recording(v, &known, pb, flow.rules);
    let reason = UnattendedReason::NoRepAvailable;
    let doc = ring_next(v, &known, pb, req.call_sid, 1, Response::new(), reason).await?;
    Ok(InboundAnswer {
        doc,
        outcome: InboundOutcome::Routed,
    })
}

/// The default playbook's greeting, for a caller we cannot name.
fn greeting(flow: &Flow<'_>) -> Response {
    let text = playbook(flow, None).and_then(|pb| pb.call_flow.inbound_greeting.as_deref());
    match text {
        Some(text) => Response::new().say(fill(text, "")),
        None => Response::new(),
    }
}

/// Round 1 of a known caller's inbound call rings the lead's assignee alone, when they can take
/// it: the person the lead knows. `None`: ring by the team's strategy instead.
pub(super) async fn assignee_first(
    tx: &mut Tx,
    k: &Known,
    team: Option<Uuid>,
    round: u32,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Option<reps::Offer>, Refusal> {
    if k.inbound.is_none() || round != 1 || k.opp.assignee.trim().is_empty() {
        return Ok(None);
    }
    let offer = reps::offer_named_in(tx, k.tenant, team, &k.opp.assignee, k.call_id, now)
        .await
        .map_err(|_| Refusal::StoreUnavailable)?;
    Ok((!offer.reps.is_empty()).then_some(offer))
}

pub(super) fn is_unknown_caller(query: Option<&str>) -> bool {
    query_param(query, "caller").as_deref() == Some("unknown")
}

/// Offers an unknown caller's call to the team's next reps (round `round`), or tells the caller
/// someone will call back: there is no opportunity to escalate, so it is logged.
async fn ring_unknown(
    v: &Verifier<'_>,
    flow: &Flow<'_>,
    tenant: TenantId,
    team: Option<Uuid>,
    req: &Request<'_>,
    round: u32,
    doc: Response,
) -> Result<Response, Refusal> {
    let call_id = call_id_of(tenant, req.call_sid);
    let offered = if round > MAX_ROUNDS {
        None
    } else {
        let now = v.engine.config().clock.now();
        let offer = reps::offer(v.engine.store(), tenant, team, call_id, now)
            .await
            .map_err(|_| Refusal::StoreUnavailable)?;
        (!offer.reps.is_empty()).then_some(offer)
    };
    let Some(offer) = offered else {
        tracing::warn!(from = ?req.from, round, "an unknown caller reached nobody; no opportunity to call back from");
        let said = playbook(flow, None).map_or(NOT_IN_SERVICE, |pb| {
            pb.call_flow.inbound_unattended_message.as_str()
        });
        return Ok(doc.say(said).hangup());
    };
    let mut ids = format!("caller=unknown&call={call_id}&sid={}", req.call_sid);
    if let Some(team) = team {
        ids.push_str(&format!("&team={team}"));
    }
    if let Some(from) = &req.from {
        ids.push_str(&format!("&from={}", urlencoded(from)));
    }
    let rung = Rung {
        ids: &ids,
        round,
        offer: &offer,
        caller_id: req.from.clone(),
        record: None,
    };
    Ok(doc.dial(rung.dial(v, tenant)?))
}

/// The flow's later requests for an unknown caller's call (`caller=unknown`): no call actor,
/// only the whisper and the dial's end (the next round to ring).
pub(super) async fn unknown_caller(
    v: &Verifier<'_>,
    flow: &Flow<'_>,
    tenant: TenantId,
    hook: FlowHook,
    query: Option<&str>,
    params: &[(String, String)],
) -> Result<Response, Refusal> {
    let (Some(call_id), Some(call_sid)) = (
        query_param(query, "call").and_then(|c| Uuid::parse_str(&c).ok()),
        query_param(query, "sid"),
    ) else {
        return Ok(Response::new().hangup());
    };
    let store = v.engine.store();
    let now = v.engine.config().clock.now();
    let unavailable = |_| Refusal::StoreUnavailable;
    match hook {
        FlowHook::Whisper => {
            let said = playbook(flow, None).map_or("Incoming call.".to_owned(), |pb| {
                fill(&pb.call_flow.inbound_whisper, UNKNOWN_CALLER)
            });
            Ok(Response::new().say(said))
        }
        FlowHook::DialEnded => {
            let (status, bridged) = dial_result(params)?;
            reps::call_ended(store, tenant, call_id, now)
                .await
                .map_err(unavailable)?;
            let rung = query_param(query, "reps").unwrap_or_default();
            let talk = param(params, "DialCallDuration").unwrap_or("0");
            if bridged {
                tracing::info!(call_sid, reps = %rung, talk_seconds = talk,
                    "an unknown caller talked with a rep");
                return Ok(Response::new().hangup());
            }
            tracing::info!(call_sid, reps = %rung, dial_status = %status,
                "an unknown caller's reps missed the call");
            let round = query_param(query, "round")
                .and_then(|r| r.parse::<u32>().ok())
                .unwrap_or(MAX_ROUNDS);
            let team = query_param(query, "team").and_then(|t| Uuid::parse_str(&t).ok());
            let req = Request {
                call_sid: &call_sid,
                from: query_param(query, "from"),
                to: String::new(),
            };
            ring_unknown(v, flow, tenant, team, &req, round + 1, Response::new()).await
        }
        // The agent-first and recording hooks never name an unknown caller's call; a leg's
        // callback is answered before (`call_flow::handle`), whoever the caller.
        _ => Ok(Response::new().hangup()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const SID: &str = "CA0123456789abcdef0123456789abcdef";

    #[test]
    fn each_field_of_an_inbound_call_is_refused_by_name() {
        let ok = [
            ("CallSid", SID),
            ("From", "+14155550101"),
            ("To", "+14155550000"),
        ];
        let r = request(&form(&ok)).map(|r| (r.from, r.to));
        assert_eq!(r, Ok((Some("+14155550101".into()), "+14155550000".into())));
        let cases: [(&[(&str, &str)], Refusal); 7] = [
            (
                &[("From", "+14155550101"), ("To", "+14155550000")],
                Refusal::MissingCallSid,
            ),
            (
                &[
                    ("CallSid", "CA1"),
                    ("From", "+14155550101"),
                    ("To", "+14155550000"),
                ],
                Refusal::BadCallSid,
            ),
            (
                &[("CallSid", SID), ("From", "+14155550101")],
                Refusal::MissingTo,
            ),
            (
                &[
                    ("CallSid", SID),
                    ("From", "+14155550101"),
                    ("To", "garbage"),
                ],
                Refusal::BadTo,
            ),
            (
                &[("CallSid", SID), ("To", "+14155550000")],
                Refusal::MissingFrom,
            ),
            (
                &[("CallSid", SID), ("From", "+1555"), ("To", "+14155550000")],
                Refusal::BadFrom,
            ),
            (
                &[
                    ("CallSid", SID),
                    ("From", "'; drop"),
                    ("To", "+14155550000"),
                ],
                Refusal::BadFrom,
            ),
        ];
        for (pairs, why) in cases {
            assert_eq!(request(&form(pairs)).map(|_| ()), Err(why), "{pairs:?}");
        }
    }

    #[test]
    fn a_withheld_caller_id_is_an_unknown_caller() {
        for withheld in ["anonymous", "Restricted", "unknown"] {
            let pairs = [("CallSid", SID), ("From", withheld), ("To", "+14155550000")];
            assert_eq!(request(&form(&pairs)).map(|r| r.from), Ok(None));
        }
    }

    #[test]
    fn a_retried_request_names_the_same_call() {
        let tenant = TenantId(Uuid::from_u128(1));
        assert_eq!(call_id_of(tenant, SID), call_id_of(tenant, SID));
        assert_ne!(
            call_id_of(tenant, SID),
            call_id_of(TenantId(Uuid::from_u128(2)), SID)
        );
    }
}
