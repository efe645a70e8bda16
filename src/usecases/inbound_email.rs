//! Inbound email (ADR 0052): the tenant's relay posts each message it receives (Mailgun's
//! route `forward()` to `/webhooks/mailgun/{tenant}/mime`). Here it is verified before
//! anything is written, read, routed to its opportunity and made durable:
//!
//! | the message | what is written (one transaction) | the opportunity's input |
//! |---|---|---|
//! | a reply (to a reply address, else from a lead's address) | its inbox row | `EmailReceived` |
//! | subject `unsubscribe` to a reply address (`List-Unsubscribe`'s `mailto:`) | suppression + inbox | `EmailUnsubscribed` (mailto) |
//! | a delivery status notification, failed for good, the address's fault | suppression + inbox | `EmailReturned` |
//! | a complaint (marked as spam) | suppression + inbox | `EmailUnsubscribed` (complaint) |
//! | an automatic answer, a delay notice, a sender-side failure | nothing | — |
//! | from nobody we know | nothing (a report about an address nobody holds: the suppression) | — |
//!
//! A reply address names its opportunity (`crate::inbound_email`); mail without one goes to
//! the opportunity holding the sender's address (ADR 0046). The suppression is tenant-wide,
//! like an unsubscribe link's, and commits with the input, so a crash leaves both or neither.

use chrono::{DateTime, Utc};
use neuronx_actors::domain::compliance::{classify_refusal, Refusal as SmtpRefusal};
use neuronx_actors::domain::opportunity::{OppInput, UnsubscribeVia};
use neuronx_actors::opportunity as opp;
use neuronx_adapters::inbound_mail::{self, InboundMail, MailError, Report};
use neuronx_supervision::{EngineHandle, TenantId};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::control::Tx;
use crate::inbound_email;
use crate::lead_email::{self, Suppression};
use crate::secrets::Keyring;

pub mod settings;

/// How old a signed post may be: Mailgun retries a failed post for 8 hours, signing each
/// attempt; older is a replay. A replay inside the window is a duplicate of its first post
/// (the inbox dedupes on the message's id).
const MAX_AGE_SECONDS: i64 = 9 * 3600;
/// How far ahead of our clock a timestamp may be (the relay's clock, ours, a little skew).
const MAX_AHEAD_SECONDS: i64 = 300;

/// Why a post was not taken, as its metric label and its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailRefusal {
    UnknownTenant,
    /// The tenant set up no inbound email: there is no key to check the post with.
    NotConfigured,
    MissingSignature,
    BadSignature,
    /// Signed too long ago (or too far ahead): a replay, not a delivery.
    StaleTimestamp,
    SealedKeyUnreadable,
    /// Verified, but without `body-mime` (the route's URL must end in `mime`).
    MissingMessage,
    /// Verified, but the message is not MIME that can be read.
    UnreadableMessage,
    /// Verified, but the message has no From address.
    MissingFrom,
    StoreUnavailable,
    Unencodable,
}

impl MailRefusal {
    pub fn as_str(self) -> &'static str {
        match self {
            MailRefusal::UnknownTenant => "unknown_tenant",
            MailRefusal::NotConfigured => "not_configured",
            MailRefusal::MissingSignature => "missing_signature",
            MailRefusal::BadSignature => "bad_signature",
            MailRefusal::StaleTimestamp => "stale_timestamp",
            MailRefusal::SealedKeyUnreadable => "sealed_key_unreadable",
            MailRefusal::MissingMessage => "missing_message",
            MailRefusal::UnreadableMessage => "unreadable_message",
            MailRefusal::MissingFrom => "missing_from",
            MailRefusal::StoreUnavailable => "unavailable",
            MailRefusal::Unencodable => "unencodable",
        }
    }

    /// The form field (or message header) at fault, when one is.
    pub fn field(self) -> Option<&'static str> {
        match self {
            MailRefusal::MissingSignature | MailRefusal::BadSignature => Some("signature"),
            MailRefusal::StaleTimestamp => Some("timestamp"),
            MailRefusal::MissingMessage | MailRefusal::UnreadableMessage => Some("body-mime"),
            MailRefusal::MissingFrom => Some("From"),
            _ => None,
        }
    }
}

/// What became of a verified post.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailOutcome {
    /// A reply, on its opportunity's thread.
    Reply,
    /// An unsubscribe by email.
    Unsubscribe,
    /// A late bounce: the address is marked invalid.
    Bounce,
    /// A complaint: the lead is unsubscribed.
    Complaint,
    /// Seen before (a relay retry): nothing new.
    Duplicate,
    /// Read and deliberately not acted on (an automatic answer, a delay notice).
    Ignored,
    /// From or about nobody we know: answered, counted, nothing written.
    Unknown,
}

impl MailOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            MailOutcome::Reply => "reply",
            MailOutcome::Unsubscribe => "unsubscribe",
            MailOutcome::Bounce => "bounce",
            MailOutcome::Complaint => "complaint",
            MailOutcome::Duplicate => "duplicate",
            MailOutcome::Ignored => "ignored",
            MailOutcome::Unknown => "unknown",
        }
    }
}

/// What receiving needs.
pub struct MailContext<'a> {
    pub engine: &'a EngineHandle,
    pub keyring: &'a Keyring,
}

/// The post's fields as the relay sent them (form or multipart).
pub type Fields = [(String, String)];

fn field<'a>(fields: &'a Fields, name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Verifies, reads, routes and makes durable one post.
pub async fn receive(
    cx: &MailContext<'_>,
    tenant_id: &str,
    fields: &Fields,
) -> Result<MailOutcome, MailRefusal> {
    let tenant = Uuid::parse_str(tenant_id)
        .map(TenantId)
        .map_err(|_| MailRefusal::UnknownTenant)?;
    verify(cx, tenant, fields).await?;
    let raw = field(fields, "body-mime").ok_or(MailRefusal::MissingMessage)?;
    let mail = inbound_mail::read(raw.as_bytes()).map_err(|e| match e {
        MailError::NoFrom => MailRefusal::MissingFrom,
        MailError::Unreadable => MailRefusal::UnreadableMessage,
    })?;
    // The relay's envelope recipient: the reply address when the lead answered one of ours.
    let recipients = field(fields, "recipient").unwrap_or_default();
    let named = recipients
        .split(',')
        .find_map(|r| inbound_email::opportunity_of(cx.keyring, tenant, r.trim()));
    let Some((input, suppress, outcome)) = decide(&mail, named) else {
        return Ok(MailOutcome::Ignored);
    };
    let address = suppress.map(|(a, _)| a.to_owned());
    let routed = route(cx, tenant, &mail, named, address.as_deref()).await?;
    if routed.is_none() && suppress.is_none() {
        return Ok(MailOutcome::Unknown);
    }
    let dedupe = match &mail.message_id {
        Some(id) => format!("email:{id}"),
        None => format!("email:{}", hex::encode(Sha256::digest(raw.as_bytes()))),
    };
    let input = serde_json::to_value(&input).map_err(|_| MailRefusal::Unencodable)?;
    let unavailable = |e: &dyn std::fmt::Display| {
        tracing::warn!(error = %e, "inbound email not made durable");
        MailRefusal::StoreUnavailable
    };
    let store = cx.engine.store();
    let mut tx = Tx::begin(store).await.map_err(|e| unavailable(&e))?;
    if let Some((address, why)) = suppress {
        lead_email::suppress_in(&mut tx, tenant, address, why)
            .await
            .map_err(|e| unavailable(&e))?;
    }
    // A report about an address no opportunity holds still closes it for the tenant: the
    // suppression is the part the law asks for; there is just nobody to tell.
    let Some(routed) = routed else {
        tx.commit().await.map_err(|e| unavailable(&e))?;
        return Ok(outcome);
    };
    let key = opp::key(tenant, routed);
    let staged = cx
        .engine
        .enqueue_in(tx.conn(), key, input, Some(dedupe))
        .await
        .map_err(|e| unavailable(&e))?;
    tx.commit().await.map_err(|e| unavailable(&e))?;
    let Some(staged) = staged else {
        return Ok(MailOutcome::Duplicate);
    };
    cx.engine.deliver(staged);
    tracing::info!(opportunity = %routed, outcome = outcome.as_str(), "inbound email");
    Ok(outcome)
}

/// The relay's signature over `timestamp ‖ token`, under the tenant's key; the timestamp
/// within the window of the engine's clock.
async fn verify(
    cx: &MailContext<'_>,
    tenant: TenantId,
    fields: &Fields,
) -> Result<(), MailRefusal> {
    let (Some(timestamp), Some(token), Some(signature)) = (
        field(fields, "timestamp"),
        field(fields, "token"),
        field(fields, "signature"),
    ) else {
        return Err(MailRefusal::MissingSignature);
    };
    let settings = inbound_email::get(cx.engine.store(), tenant)
        .await
        .map_err(|_| MailRefusal::StoreUnavailable)?
        .ok_or(MailRefusal::NotConfigured)?;
    let key = cx
        .keyring
        .open(&settings.sealed)
        .map_err(|_| MailRefusal::SealedKeyUnreadable)?;
    if !inbound_mail::signature_valid(&key, timestamp, token, signature) {
        return Err(MailRefusal::BadSignature);
    }
    let now = cx.engine.config().clock.now();
    let signed = timestamp
        .trim()
        .parse::<i64>()
        .ok()
        .and_then(|s| DateTime::<Utc>::from_timestamp(s, 0))
        .ok_or(MailRefusal::StaleTimestamp)?;
    let age = (now - signed).num_seconds();
    if !(-MAX_AHEAD_SECONDS..=MAX_AGE_SECONDS).contains(&age) {
        return Err(MailRefusal::StaleTimestamp);
    }
    Ok(())
}

type Decision<'m> = (OppInput, Option<(&'m str, Suppression)>, MailOutcome);

/// What the message asks of its opportunity, and which address (if any) the tenant must never
/// mail again; `None`: nothing to do.
fn decide(mail: &InboundMail, named: Option<Uuid>) -> Option<Decision<'_>> {
    let clean = |s: &str| s.replace('\0', "");
    match &mail.report {
        Some(
            report @ Report::Delivery {
                recipient,
                status,
                diagnostic,
                ..
            },
        ) => {
            if !report.is_permanent_failure() {
                return None; // delayed, relayed, delivered: nothing to do
            }
            let reason = clean(diagnostic.as_deref().unwrap_or(status));
            let code = reason
                .split_whitespace()
                .next()
                .and_then(|c| c.parse::<u16>().ok())
                .unwrap_or(0);
            // A policy refusal (5.7.x) or a full mailbox is not the address's fault.
            if classify_refusal(code, &format!("{status} {reason}")) != SmtpRefusal::HardBounce {
                return None;
            }
            let input = OppInput::EmailReturned {
                address: recipient.clone(),
                status: clean(status),
                reason,
            };
            Some((
                input,
                Some((recipient.as_str(), Suppression::Bounced)),
                MailOutcome::Bounce,
            ))
        }
        Some(Report::Complaint {
            recipient: Some(recipient),
            ..
        }) => {
            let input = OppInput::EmailUnsubscribed {
                address: recipient.clone(),
                via: UnsubscribeVia::Complaint,
            };
            let suppress = Some((recipient.as_str(), Suppression::Unsubscribed));
            Some((input, suppress, MailOutcome::Complaint))
        }
        Some(Report::Complaint {
            recipient: None, ..
        }) => None,
        None if mail.automatic => None,
        None if named.is_some()
            && mail
                .subject
                .trim()
                .eq_ignore_ascii_case(inbound_email::UNSUBSCRIBE_SUBJECT) =>
        {
            let input = OppInput::EmailUnsubscribed {
                address: mail.from.clone(),
                via: UnsubscribeVia::Mailto,
            };
            let suppress = Some((mail.from.as_str(), Suppression::Unsubscribed));
            Some((input, suppress, MailOutcome::Unsubscribe))
        }
        None => {
            let input = OppInput::EmailReceived {
                from: mail.from.clone(),
                subject: clean(&mail.subject),
                body: clean(&mail.text),
                message_id: mail.message_id.as_deref().map(clean),
            };
            Some((input, None, MailOutcome::Reply))
        }
    }
}

/// The opportunity a message is for: the one its reply address names (for a report, the
/// reply address of the message it reports on), else the one holding the address it is from
/// (a report: about). Only this tenant's rows are read.
async fn route(
    cx: &MailContext<'_>,
    tenant: TenantId,
    mail: &InboundMail,
    named: Option<Uuid>,
    about: Option<&str>,
) -> Result<Option<Uuid>, MailRefusal> {
    let reported = mail
        .original_reply_to
        .as_deref()
        .and_then(|r| inbound_email::opportunity_of(cx.keyring, tenant, r));
    let address = match &mail.report {
        Some(_) => about,
        None => Some(mail.from.as_str()),
    };
    let store = cx.engine.store();
    let unavailable = |_| MailRefusal::StoreUnavailable;
    let candidate = match (named.or(reported), address) {
        (Some(id), _) => Some(id),
        (None, Some(address)) => crate::contacts::holder_of_email(store, tenant, address)
            .await
            .map_err(unavailable)?,
        (None, None) => None,
    };
    let Some(id) = candidate else {
        return Ok(None);
    };
    // A claim whose create never reached the engine (a crash) names no opportunity.
    let exists = store
        .actor_exists(tenant, opp::KIND.as_str(), id)
        .await
        .map_err(unavailable)?;
    Ok(exists.then_some(id))
}
