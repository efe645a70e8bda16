//! Twilio's webhooks as a use case: verify the signature (against the URL Twilio saw: the
//! public URL, the path and the query) before anything is written, route the callback to its
//! actor, and make it durable in the inbox (deduplicated by CallSid+SequenceNumber or
//! MessageSid+status). The HTTP layer only maps the outcome to a status.

use std::sync::Arc;

use neuronx_actors::domain::call::{AnsweredBy, CallInput, CallStatus};
use neuronx_actors::domain::opportunity::OppInput;
use neuronx_actors::{call as call_actor, opportunity as opp};
use neuronx_adapters::twilio::signature;
use neuronx_supervision::{ActorKey, EngineHandle, SubmitOutcome, TenantId};
use serde_json::Value;
use uuid::Uuid;

use crate::control::reps;
use crate::secrets::Keyring;
use crate::tenant_data;

mod routing;

use routing::inbound_opportunity;
pub(crate) use routing::{live_opportunity_of, number_team};

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

pub(crate) fn to_value<T: serde::Serialize>(v: &T) -> Result<Value, Refusal> {
    serde_json::to_value(v).map_err(|_| Refusal::Unencodable)
}
