//! Twilio's webhooks as a use case: verify the signature (against the URL Twilio saw: the
//! public URL, the path and the query) before anything is written, route the callback to its
//! actor, and make it durable in the inbox (deduplicated by CallSid+SequenceNumber or
//! MessageSid+status). The HTTP layer only maps the outcome to a status.

use std::sync::Arc;

use neuronx_actors::domain::call::{AnsweredBy, CallInput, CallStatus};
use neuronx_actors::domain::opportunity::{OppInput, Stage};
use neuronx_actors::{call as call_actor, opportunity as opp};
use neuronx_adapters::twilio::signature;
use neuronx_supervision::{ActorKey, EngineHandle, SubmitOutcome, TenantId};
use serde_json::Value;
use uuid::Uuid;

use crate::control::access;
use crate::control::numbers::{self, Reached};
use crate::control::reps;
use crate::secrets::Keyring;
use crate::tenant_data;

/// Which webhook a request came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    VoiceStatus,
    SmsStatus,
    SmsInbound,
}

impl Hook {
    pub fn label(self) -> &'static str {
        match self {
            Hook::VoiceStatus => "voice_status",
            Hook::SmsStatus => "sms_status",
            Hook::SmsInbound => "sms_inbound",
        }
    }
}

/// Why a webhook request was not taken, as its metric label and its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    UnknownTenant,
    MissingSignature,
    BadForm,
    NulInForm,
    NoCredentials,
    SealedTokenUnreadable,
    BadSignature,
    MissingCallSid,
    /// A `CallSid` that is not `CA` and 32 hex digits (an inbound call's: it names the call).
    BadCallSid,
    MissingCallStatus,
    BadCallStatus,
    MissingMessageSid,
    MissingMessageStatus,
    MissingFrom,
    /// An inbound call from something that is neither an E.164 number nor a withheld caller id.
    BadFrom,
    /// An inbound call to something that is not an E.164 number.
    BadTo,
    /// An inbound text without `To`, for a tenant that lists its numbers.
    MissingTo,
    /// An inbound text to a number that is none of the tenant's (not in its pool, not its
    /// account's `from`): nothing is written.
    UnknownTo,
    MissingDialCallStatus,
    BadDialCallStatus,
    MissingRecordingSid,
    BadRecordingSid,
    /// Ours, not the caller's: the database could not answer. 503 makes Twilio retry.
    StoreUnavailable,
    Unencodable,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::UnknownTenant => "unknown_tenant",
            Refusal::MissingSignature => "missing_signature",
            Refusal::BadForm => "bad_form",
            Refusal::NulInForm => "nul_in_form",
            Refusal::NoCredentials => "no_credentials",
            Refusal::SealedTokenUnreadable => "sealed_token_unreadable",
            Refusal::BadSignature => "bad_signature",
            Refusal::MissingCallSid => "missing_call_sid",
            Refusal::BadCallSid => "bad_call_sid",
            Refusal::MissingCallStatus => "missing_call_status",
            Refusal::BadCallStatus => "bad_call_status",
            Refusal::MissingMessageSid => "missing_message_sid",
            Refusal::MissingMessageStatus => "missing_message_status",
            Refusal::MissingFrom => "missing_from",
            Refusal::BadFrom => "bad_from",
            Refusal::BadTo => "bad_to",
            Refusal::MissingTo => "missing_to",
            Refusal::UnknownTo => "unknown_to",
            Refusal::MissingDialCallStatus => "missing_dial_call_status",
            Refusal::BadDialCallStatus => "bad_dial_call_status",
            Refusal::MissingRecordingSid => "missing_recording_sid",
            Refusal::BadRecordingSid => "bad_recording_sid",
            Refusal::StoreUnavailable => "unavailable",
            Refusal::Unencodable => "unencodable",
        }
    }

    /// The form field at fault, when one is.
    pub fn field(self) -> Option<&'static str> {
        match self {
            Refusal::MissingTo | Refusal::UnknownTo | Refusal::BadTo => Some("To"),
            Refusal::MissingFrom | Refusal::BadFrom => Some("From"),
            Refusal::MissingCallSid | Refusal::BadCallSid => Some("CallSid"),
            _ => None,
        }
    }
}

/// What became of a verified webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// Made durable for its actor.
    Accepted,
    /// Seen before (a carrier retry): nothing new.
    Duplicate,
    /// For a call or sender nobody knows: answered, counted, nothing written.
    Unknown,
}

impl Received {
    pub fn as_str(self) -> &'static str {
        match self {
            Received::Accepted => "accepted",
            Received::Duplicate => "duplicate",
            Received::Unknown => "unknown",
        }
    }
}

/// What verifying a signature needs: the tenants' sealed tokens, a short-lived cache of the
/// opened ones, and the public URL Twilio signed.
pub struct Verifier<'a> {
    pub engine: &'a EngineHandle,
    pub keyring: &'a Keyring,
    pub tokens: &'a moka::sync::Cache<TenantId, Arc<str>>,
    pub public_url: &'a str,
}

/// One webhook request as it arrived.
pub struct Delivery<'a> {
    pub tenant_id: &'a str,
    /// The request's path and query, exactly as received (the signature covers them).
    pub path_and_query: &'a str,
    pub query: Option<&'a str>,
    pub signature: Option<&'a str>,
    pub body: &'a [u8],
}

/// Verifies, routes and makes durable one webhook request.
pub async fn receive(v: &Verifier<'_>, hook: Hook, d: Delivery<'_>) -> Result<Received, Refusal> {
    let (tenant, params) = verified(v, &d).await?;
    let routed = match hook {
        Hook::VoiceStatus => voice_status(v.engine, tenant, d.query, &params).await,
        Hook::SmsStatus => sms_status(tenant, d.query, &params),
        Hook::SmsInbound => sms_inbound(v.engine, tenant, &params).await,
    };
    let Some((key, input, dedupe)) = routed? else {
        return Ok(Received::Unknown);
    };
    match v.engine.enqueue(key, input, Some(dedupe)).await {
        Ok(SubmitOutcome::Duplicate) => Ok(Received::Duplicate),
        Ok(_) => Ok(Received::Accepted),
        Err(e) => {
            tracing::warn!(error = %e, "webhook not made durable");
            Err(Refusal::StoreUnavailable)
        }
    }
}

pub(crate) fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

pub(crate) fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query?).ok()?;
    pairs.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// Checks the signature over the form; answers the tenant and the form's fields.
pub(crate) async fn verified(
    v: &Verifier<'_>,
    d: &Delivery<'_>,
) -> Result<(TenantId, Vec<(String, String)>), Refusal> {
    let tenant = Uuid::parse_str(d.tenant_id)
        .map(TenantId)
        .map_err(|_| Refusal::UnknownTenant)?;
    let header = d.signature.ok_or(Refusal::MissingSignature)?;
    let params: Vec<(String, String)> =
        serde_urlencoded::from_bytes(d.body).map_err(|_| Refusal::BadForm)?;
    // NUL cannot be stored (PostgreSQL text and JSON refuse it); a signed request carrying one
    // is still refused by name rather than failing its write on every retry.
    if params
        .iter()
        .any(|(k, v)| k.contains('\0') || v.contains('\0'))
    {
        return Err(Refusal::NulInForm);
    }
    let url = format!("{}{}", v.public_url, d.path_and_query);
    if let Some(token) = v.tokens.get(&tenant) {
        if signature::validate(&token, &url, &params, header) {
            return Ok((tenant, params));
        }
        // The token may have changed on another instance: check against the stored one.
        v.tokens.invalidate(&tenant);
    }
    let creds = tenant_data::get_credentials(v.engine.store(), tenant, "twilio")
        .await
        .map_err(|_| Refusal::StoreUnavailable)?
        .ok_or(Refusal::NoCredentials)?;
    let token: Arc<str> = v
        .keyring
        .open(&creds.sealed)
        .map_err(|_| Refusal::SealedTokenUnreadable)?
        .into();
    v.tokens.insert(tenant, token.clone());
    if !signature::validate(&token, &url, &params, header) {
        return Err(Refusal::BadSignature);
    }
    Ok((tenant, params))
}

type Routed = Result<Option<(ActorKey, Value, String)>, Refusal>;

async fn voice_status(
    engine: &EngineHandle,
    tenant: TenantId,
    query: Option<&str>,
    params: &[(String, String)],
) -> Routed {
    let call_sid = param(params, "CallSid").ok_or(Refusal::MissingCallSid)?;
    let status: CallStatus = param(params, "CallStatus")
        .ok_or(Refusal::MissingCallStatus)?
        .parse()
        .map_err(|_| Refusal::BadCallStatus)?;
    let sequence = param(params, "SequenceNumber").and_then(|s| s.parse::<u64>().ok());
    let answered_by = param(params, "AnsweredBy").and_then(|s| s.parse::<AnsweredBy>().ok());
    let (Some(call_id), Some(opp_id)) = (
        query_param(query, "call").and_then(|s| Uuid::parse_str(&s).ok()),
        query_param(query, "opp").and_then(|s| Uuid::parse_str(&s).ok()),
    ) else {
        return Ok(None);
    };
    let known = engine
        .store()
        .actor_exists(tenant, call_actor::KIND.as_str(), call_id)
        .await
        .map_err(|_| Refusal::StoreUnavailable)?;
    if !known {
        return Ok(None);
    }
    if status.is_terminal() {
        // The call is over, so is every rep's part in it (agent first the call is the rep's
        // own leg; lead first their legs report too, and this settles any that did not).
        let now = engine.config().clock.now();
        reps::call_ended(engine.store(), tenant, call_id, now)
            .await
            .map_err(|_| Refusal::StoreUnavailable)?;
    }
    let key = call_actor::key(&opp::key(tenant, opp_id), call_id);
    let dedupe = match sequence {
        Some(seq) => format!("voice:{call_sid}:{seq}"),
        None => format!("voice:{call_sid}:{}", status.as_str()),
    };
    let input = CallInput::Status {
        status,
        sequence,
        answered_by,
        provider_sid: Some(call_sid.to_owned()),
    };
    Ok(Some((key, to_value(&input)?, dedupe)))
}

fn sms_status(tenant: TenantId, query: Option<&str>, params: &[(String, String)]) -> Routed {
    let sid = param(params, "MessageSid")
        .or_else(|| param(params, "SmsSid"))
        .ok_or(Refusal::MissingMessageSid)?;
    let status = param(params, "MessageStatus")
        .or_else(|| param(params, "SmsStatus"))
        .ok_or(Refusal::MissingMessageStatus)?;
    let Some(opp_id) = query_param(query, "opp").and_then(|s| Uuid::parse_str(&s).ok()) else {
        return Ok(None);
    };
    // The carrier's reason for a failure (Twilio's `ErrorCode`, a number); anything else is
    // not a code and is left out rather than refused: the status itself is still worth having.
    let error_code = param(params, "ErrorCode").and_then(|c| c.trim().parse::<u32>().ok());
    let input = OppInput::MessageStatus {
        message_sid: sid.to_owned(),
        status: status.to_owned(),
        error_code,
    };
    Ok(Some((
        opp::key(tenant, opp_id),
        to_value(&input)?,
        format!("sms:{sid}:{status}"),
    )))
}

async fn sms_inbound(
    engine: &EngineHandle,
    tenant: TenantId,
    params: &[(String, String)],
) -> Routed {
    let sid = param(params, "MessageSid")
        .or_else(|| param(params, "SmsSid"))
        .ok_or(Refusal::MissingMessageSid)?;
    let from = param(params, "From").ok_or(Refusal::MissingFrom)?;
    let body = param(params, "Body").unwrap_or("");
    let Some(opp_id) = inbound_opportunity(engine, tenant, from, param(params, "To")).await? else {
        return Ok(None);
    };
    let input = OppInput::Replied {
        body: body.to_owned(),
    };
    Ok(Some((
        opp::key(tenant, opp_id),
        to_value(&input)?,
        format!("inbound:{sid}"),
    )))
}

/// How many of a sender's opportunities (newest first) an inbound text looks through for the
/// one of the team whose number it reached.
const SENDER_OPPORTUNITIES: i64 = 20;

/// The opportunity an inbound text from `from` to `to` is for (ADR 0043). A tenant that lists
/// no numbers: the sender's newest, `To` unchecked (as before pools). Otherwise `To` must be a
/// pool number or the account's `from`, else the text is refused and nothing is written; a
/// team's number prefers the sender's newest live opportunity of that team, and anything else
/// (a tenant-wide number, the account's, no such opportunity) takes the sender's newest. Only
/// this tenant's rows are read: another tenant's number is just not ours.
async fn inbound_opportunity(
    engine: &EngineHandle,
    tenant: TenantId,
    from: &str,
    to: Option<&str>,
) -> Result<Option<Uuid>, Refusal> {
    let store = engine.store();
    let unavailable = |_| Refusal::StoreUnavailable;
    let newest = || async {
        tenant_data::opportunity_of_phone(store, tenant, from)
            .await
            .map_err(unavailable)
    };
    let to = to.map(str::trim).filter(|t| !t.is_empty());
    let reached = match to {
        Some(to) => numbers::reached(store, tenant, to)
            .await
            .map_err(unavailable)?,
        // No number is empty: this asks only whether the tenant lists any.
        None if numbers::reached(store, tenant, "")
            .await
            .map_err(unavailable)?
            == Reached::NoPool =>
        {
            Reached::NoPool
        }
        None => return Err(Refusal::MissingTo),
    };
    let team = match reached {
        Reached::NoPool | Reached::Pool(None) => return newest().await,
        Reached::Pool(Some(team)) => team,
        Reached::NotListed => {
            let account = tenant_data::get_credentials(store, tenant, "twilio")
                .await
                .map_err(unavailable)?;
            if account.is_some_and(|a| Some(a.from_number.as_str()) == to) {
                return newest().await;
            }
            return Err(Refusal::UnknownTo);
        }
    };
    let senders = senders(engine, tenant, from).await?;
    if senders.len() <= 1 {
        return Ok(senders.first().copied());
    }
    let keys: Vec<(TenantId, Uuid)> = senders.iter().map(|id| (tenant, *id)).collect();
    let statuses = store
        .actor_statuses(opp::KIND, &keys)
        .await
        .map_err(unavailable)?;
    for (id, status) in senders.iter().zip(statuses) {
        let live =
            status.is_some_and(|(stage, _)| !stage.parse::<Stage>().is_ok_and(|s| s.is_terminal()));
        if !live {
            continue;
        }
        let bound = access::team_of(store, tenant, *id)
            .await
            .map_err(|_| Refusal::StoreUnavailable)?;
        if bound == Some(team) {
            return Ok(Some(*id));
        }
    }
    Ok(senders.first().copied())
}

/// A sender's opportunities, newest first, except the number's cadence holder first (ADR
/// 0046): a skipped duplicate is newer but silent.
async fn senders(
    engine: &EngineHandle,
    tenant: TenantId,
    from: &str,
) -> Result<Vec<Uuid>, Refusal> {
    let store = engine.store();
    let unavailable = |_| Refusal::StoreUnavailable;
    let mut senders = store
        .find(
            tenant,
            opp::KIND,
            opp::PHONE_LOOKUP,
            from,
            SENDER_OPPORTUNITIES,
        )
        .await
        .map_err(unavailable)?;
    let holder = crate::contacts::holder_of(store, tenant, from)
        .await
        .map_err(unavailable)?;
    if let Some(at) = holder.and_then(|h| senders.iter().position(|s| *s == h)) {
        let h = senders.remove(at);
        senders.insert(0, h);
    }
    Ok(senders)
}

/// The live (not closed) opportunity a call from `from` is for (ADR 0050): of the sender's
/// live opportunities (the cadence holder first, then newest first), the first bound to
/// `team` (the number's), else the first. `None`: no live opportunity has that number.
pub(crate) async fn live_opportunity_of(
    engine: &EngineHandle,
    tenant: TenantId,
    from: &str,
    team: Option<Uuid>,
) -> Result<Option<Uuid>, Refusal> {
    let store = engine.store();
    let senders = senders(engine, tenant, from).await?;
    if senders.is_empty() {
        return Ok(None);
    }
    let keys: Vec<(TenantId, Uuid)> = senders.iter().map(|id| (tenant, *id)).collect();
    let statuses = store
        .actor_statuses(opp::KIND, &keys)
        .await
        .map_err(|_| Refusal::StoreUnavailable)?;
    let live: Vec<Uuid> = senders
        .iter()
        .zip(statuses)
        .filter(|(_, status)| {
            status
                .as_ref()
                .is_some_and(|(stage, _)| !stage.parse::<Stage>().is_ok_and(|s| s.is_terminal()))
        })
        .map(|(id, _)| *id)
        .collect();
    let Some(team) = team else {
        return Ok(live.first().copied());
    };
    for id in &live {
        let bound = access::team_of(store, tenant, *id)
            .await
            .map_err(|_| Refusal::StoreUnavailable)?;
        if bound == Some(team) {
            return Ok(Some(*id));
        }
    }
    Ok(live.first().copied())
}

/// Which team's number `to` is (`Some(None)`: a tenant-wide one, or the account's own
/// `from`), or `None` when it is none of this tenant's numbers (ADR 0050).
pub(crate) async fn number_team(
    engine: &EngineHandle,
    tenant: TenantId,
    to: &str,
) -> Result<Option<Option<Uuid>>, Refusal> {
    let store = engine.store();
    let unavailable = |_| Refusal::StoreUnavailable;
    match numbers::reached(store, tenant, to)
        .await
        .map_err(unavailable)?
    {
        Reached::Pool(team) => Ok(Some(team)),
        Reached::NoPool | Reached::NotListed => {
            let account = tenant_data::get_credentials(store, tenant, "twilio")
                .await
                .map_err(unavailable)?;
            Ok(account.is_some_and(|a| a.from_number == to).then_some(None))
        }
    }
}

pub(crate) fn to_value<T: serde::Serialize>(v: &T) -> Result<Value, Refusal> {
    serde_json::to_value(v).map_err(|_| Refusal::Unencodable)
}
