//! An opportunity's conversation with its lead (`/v1/opportunities/{id}/messages`): the
//! thread, both directions, with each outbound text's delivery status; a text a person sends
//! by hand; and handing a taken-over conversation back (`commands::Command::HandBack`).
//!
//! The thread is not a copy: it is read from what each transition already committed. The
//! opportunity's timeline has every text in order — `effect_sent` (`data.effect = send_sms`)
//! for each outbound one, written with its outbox row in one transaction, and `replied` for
//! each inbound one. A text's fate is its outbox row (found by the key its transition gave it,
//! `{actor}/{version}/{i}`): still queued, canceled, refused or blocked at dispatch, or
//! accepted by the carrier with a `message_sid`; the carrier's later statuses are the timeline's
//! `message_status` entries with that sid. Emails to the lead are `effect_sent` entries too
//! (`data.effect = send_email`, with `email_id`); their fate is the `lead_email` outbox row and
//! then the `email_status` or `email_bounced` entry naming that `email_id`. The lead's emails
//! are `replied` entries with `data.channel = email` (ADR 0052). Nothing is written outside a
//! transition to build it.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use neuronx_actors::domain::opportunity::{OppInput, MAX_TEXT_CHARS};
use neuronx_actors::domain::playbook::{MAX_BODY_CHARS, MAX_SUBJECT_CHARS};
use neuronx_actors::effects::EffectChannel;
use neuronx_actors::opportunity as opp;
use neuronx_supervision::store::{EffectRecord, OutboxStatus, TimelineRow};
use neuronx_supervision::{EngineHandle, TenantId};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::commands::{acting_as, run_once};
use super::opportunities::page_bounds;
use super::views::{ms_to_time, Applied, Page};
use super::{authorize, visible, Error};
use crate::control::audit::AuditAction;
use crate::control::keys::Identity;
use crate::control::Action;
use crate::input::{self, Lines};

/// How much of one opportunity's timeline a thread reads, oldest first: far more than any
/// lead's conversation, and a bound on what one request costs.
const MAX_ENTRIES: i64 = 20_000;
const CHUNK: i64 = 1_000;
/// How many effects one transition may write before its texts: a text's outbox row is one of
/// its transition's first few effects (a text and an escalation notice at most, today).
const EFFECTS_PER_TRANSITION: usize = 8;

/// Which channel a message went by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MessageChannel {
    Sms,
    /// The playbook's emails to the lead, and the lead's emails to us (replies, ADR 0052).
    Email,
}

impl MessageChannel {
    /// The outbox channel its outbound messages leave by.
    fn outbox(self) -> &'static str {
        match self {
            MessageChannel::Sms => EffectChannel::Sms,
            MessageChannel::Email => EffectChannel::LeadEmail,
        }
        .as_str()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// From us to the lead.
    Outbound,
    /// From the lead to us.
    Inbound,
}

/// Where a message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Not yet sent by the carrier: waiting in our outbox (or held by a pause), or accepted by
    /// the carrier and not yet reported sent.
    Queued,
    /// The carrier reported it sent.
    Sent,
    /// The carrier reported it delivered to the handset.
    Delivered,
    /// The carrier reported it failed or undelivered (`error_code` says why), or it was refused
    /// before it left: the carrier answered an error, the number is on the do-not-call list,
    /// or the line takes no texts (`error`).
    Failed,
    /// Never sent: the opportunity closed or the lead opted out while it waited.
    Canceled,
    /// The request reached the carrier and no answer came back; it is never resent blindly.
    Unknown,
    /// An inbound message, received.
    Received,
    /// An email the lead's mail server refused for good (a hard bounce): the address is marked
    /// invalid.
    Bounced,
}

/// One message of the thread.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MessageView {
    /// The timeline entry that records it; a page's `next_cursor` is the last one's.
    pub id: i64,
    pub at: DateTime<Utc>,
    pub channel: MessageChannel,
    pub direction: Direction,
    pub body: String,
    /// An email's subject; null for a text.
    #[schema(required = true)]
    pub subject: Option<String>,
    /// Who wrote it: `playbook`, `operator:<name>` (a person, by hand), or `contact` (the lead).
    pub by: String,
    /// A person wrote it by hand (and took the conversation over).
    pub human: bool,
    /// An outbound text's purpose: `marketing`, `opt_out_confirmation` or `help_reply`.
    #[schema(required = true)]
    pub purpose: Option<String>,
    pub status: DeliveryStatus,
    /// The carrier's own word for the status (`queued`, `sent`, `delivered`, `undelivered`,
    /// `failed`), when it reported one.
    #[schema(required = true)]
    pub carrier_status: Option<String>,
    /// When the carrier last reported on an outbound text (null until it has); an inbound
    /// text's arrival.
    #[schema(required = true)]
    pub status_at: Option<DateTime<Utc>>,
    /// The carrier's error code of a failed text (Twilio's `ErrorCode`, e.g. 30003).
    #[schema(required = true)]
    pub error_code: Option<u32>,
    /// Why a text failed or was not sent, in words.
    #[schema(required = true)]
    pub error: Option<String>,
    /// The carrier's id of an outbound text it accepted.
    #[schema(required = true)]
    pub message_sid: Option<String>,
    /// The number an outbound text was sent from, once the carrier accepted it; the address an
    /// inbound email came from.
    #[schema(required = true)]
    pub from: Option<String>,
}

/// A carrier's report on one text, from a `message_status` entry.
struct Reported {
    status: String,
    rank: u8,
    at_ms: i64,
    error_code: Option<u32>,
}

/// The carrier's statuses in the order they happen; callbacks may arrive out of order, so the
/// furthest one wins (a late `sent` does not undo `delivered`).
fn rank(status: &str) -> u8 {
    match status {
        "sent" => 1,
        "delivered" | "undelivered" | "failed" => 2,
        _ => 0,
    }
}

/// A page of the opportunity's thread, oldest first.
pub async fn list(
    engine: &EngineHandle,
    who: &Identity,
    id: &str,
    limit: Option<&str>,
    cursor: Option<&str>,
) -> Result<Page<MessageView>, Error> {
    let tenant = authorize(who, Action::Read)?;
    let (limit, after) = page_bounds(limit, cursor)?;
    let id = visible(engine, who, id).await?;
    let entries = timeline(engine, tenant, id).await?;
    let reports = reports(&entries);
    let mail = email_reports(&entries);
    let messages: Vec<&TimelineRow> = entries
        .iter()
        .filter(|e| is_outbound(e) || e.kind == "replied")
        .collect();
    let start = messages.partition_point(|e| e.id <= after);
    let end = messages.len().min(start + limit as usize);
    let page = &messages[start..end];
    let effects = effects_of(engine, tenant, id, &entries, page).await?;
    let items = page
        .iter()
        .map(|e| match channel_of(e) {
            Some(MessageChannel::Email) => email_view(e, effects.get(&e.id), &mail),
            _ => view(e, effects.get(&e.id), &reports),
        })
        .collect();
    let next_cursor = (end < messages.len())
        .then(|| page.last().map(|e| e.id.to_string()))
        .flatten();
    Ok(Page { items, next_cursor })
}

/// The furthest status the carrier reported for each text, by `message_sid`.
fn reports(entries: &[TimelineRow]) -> HashMap<String, Reported> {
    let mut reports: HashMap<String, Reported> = HashMap::new();
    for e in entries.iter().filter(|e| e.kind == "message_status") {
        let (Some(sid), Some(status)) = (e.data["message_sid"].as_str(), e.data["status"].as_str())
        else {
            continue; // a refusal names no sid: its text's outbox row tells it
        };
        let new = Reported {
            status: status.to_owned(),
            rank: rank(status),
            at_ms: e.at_ms,
            error_code: code(&e.data["error_code"]),
        };
        if reports.get(sid).is_none_or(|old| old.rank < new.rank) {
            reports.insert(sid.to_owned(), new);
        }
    }
    reports
}

async fn timeline(
    engine: &EngineHandle,
    tenant: TenantId,
    id: Uuid,
) -> Result<Vec<TimelineRow>, Error> {
    let mut entries = Vec::new();
    let mut after = 0;
    while (entries.len() as i64) < MAX_ENTRIES {
        let chunk = engine
            .store()
            .timeline(tenant, opp::KIND.as_str(), id, after, CHUNK)
            .await?;
        let full = chunk.len() as i64 == CHUNK;
        after = chunk.last().map_or(after, |e| e.id);
        entries.extend(chunk);
        if !full {
            break;
        }
    }
    Ok(entries)
}

/// The channel of an outbound message's entry; `None` for any other entry.
fn channel_of(e: &TimelineRow) -> Option<MessageChannel> {
    if e.kind != "effect_sent" {
        return None;
    }
    match e.data["effect"].as_str() {
        Some("send_sms") => Some(MessageChannel::Sms),
        Some("send_email") => Some(MessageChannel::Email),
        _ => None,
    }
}

fn is_outbound(e: &TimelineRow) -> bool {
    channel_of(e).is_some()
}

fn code(v: &Value) -> Option<u32> {
    v.as_u64().and_then(|c| u32::try_from(c).ok())
}

/// The outbox rows of the page's outbound texts, by timeline entry id. A transition's texts
/// are its `effect_sent` entries and its `sms` effects, both in the order it emitted them, so
/// the n-th of one is the n-th of the other.
async fn effects_of(
    engine: &EngineHandle,
    tenant: TenantId,
    id: Uuid,
    entries: &[TimelineRow],
    page: &[&TimelineRow],
) -> Result<HashMap<i64, EffectRecord>, Error> {
    let actor = opp::key(tenant, id).to_string();
    let mut versions: Vec<i64> = page
        .iter()
        .filter(|e| is_outbound(e))
        .map(|e| e.version)
        .collect();
    versions.dedup();
    let keys: Vec<String> = versions
        .iter()
        .flat_map(|v| (0..EFFECTS_PER_TRANSITION).map(move |i| (*v, i)))
        .map(|(v, i)| format!("{actor}/{v}/{i}"))
        .collect();
    let mut texts: HashMap<(i64, &str), Vec<(usize, EffectRecord)>> = HashMap::new();
    for effect in engine.store().effects_named(tenant, &keys).await? {
        let channel = [MessageChannel::Sms, MessageChannel::Email]
            .into_iter()
            .map(MessageChannel::outbox)
            .find(|c| *c == effect.channel);
        let Some(channel) = channel else {
            continue;
        };
        let mut parts = effect.idem_key.rsplitn(3, '/');
        let (Some(i), Some(v)) = (parts.next(), parts.next()) else {
            continue;
        };
        if let (Ok(i), Ok(v)) = (i.parse::<usize>(), v.parse::<i64>()) {
            texts.entry((v, channel)).or_default().push((i, effect));
        }
    }
    let mut found = HashMap::new();
    for ((version, channel), mut rows) in texts {
        rows.sort_by_key(|(i, _)| *i);
        let sent = entries.iter().filter(|e| {
            e.version == version && channel_of(e).map(MessageChannel::outbox) == Some(channel)
        });
        for (entry, (_, effect)) in sent.zip(rows) {
            found.insert(entry.id, effect);
        }
    }
    Ok(found)
}

fn view(
    e: &TimelineRow,
    effect: Option<&EffectRecord>,
    reports: &HashMap<String, Reported>,
) -> MessageView {
    let text = |k: &str| e.data[k].as_str().map(str::to_owned);
    let mut m = MessageView {
        id: e.id,
        at: ms_to_time(e.at_ms),
        channel: MessageChannel::Sms,
        direction: Direction::Inbound,
        body: text("body").unwrap_or_default(),
        subject: None,
        by: e.cause.clone(),
        human: false,
        purpose: None,
        status: DeliveryStatus::Received,
        carrier_status: None,
        status_at: Some(ms_to_time(e.at_ms)),
        error_code: None,
        error: None,
        message_sid: None,
        from: None,
    };
    if !is_outbound(e) {
        // An inbound email: its subject, and the address it came from.
        if e.data["channel"] == "email" {
            m.channel = MessageChannel::Email;
            m.subject = text("subject");
            m.from = text("from");
        }
        return m;
    }
    m.direction = Direction::Outbound;
    m.human = e.cause.starts_with("operator:");
    m.purpose = text("purpose");
    m.status_at = None;
    let Some(effect) = effect else {
        // Written with the entry, so always there; were it not, its fate is not ours to guess.
        m.status = DeliveryStatus::Unknown;
        return m;
    };
    m.status = match effect.status {
        OutboxStatus::Pending | OutboxStatus::Held | OutboxStatus::Inflight => {
            DeliveryStatus::Queued
        }
        OutboxStatus::Canceled => DeliveryStatus::Canceled,
        OutboxStatus::Unknown => DeliveryStatus::Unknown,
        OutboxStatus::Done => DeliveryStatus::Queued,
    };
    if effect.status != OutboxStatus::Done {
        return m;
    }
    let result = effect.result.clone().unwrap_or(Value::Null);
    m.from = result["from"].as_str().map(str::to_owned);
    let word = |k: &str| result[k].as_str().map(str::to_owned);
    if let Some(sid) = word("message_sid") {
        if let Some(r) = reports.get(&sid) {
            m.status = match r.status.as_str() {
                "sent" => DeliveryStatus::Sent,
                "delivered" => DeliveryStatus::Delivered,
                _ => DeliveryStatus::Failed,
            };
            m.carrier_status = Some(r.status.clone());
            m.status_at = Some(ms_to_time(r.at_ms));
            m.error_code = r.error_code;
        }
        m.message_sid = Some(sid);
    } else if let Some(error) = word("error") {
        m.status = DeliveryStatus::Failed;
        m.error_code = code(&result["code"]);
        m.error = Some(error);
    } else if let Some(why) = word("blocked").or_else(|| word("withheld")) {
        m.status = DeliveryStatus::Failed;
        m.error = Some(why);
    } else {
        m.status = DeliveryStatus::Unknown;
    }
    m
}

/// A form's one-time id: the console's text form carries one, so submitting the same form twice
/// (a double click, a reload that posts again) sends one text. The API's callers have the
/// `Idempotency-Key` header for the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Once(String);

impl Once {
    pub fn parse(raw: String) -> Result<Self, Error> {
        let ok = (1..=64).contains(&raw.len())
            && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !ok {
            return Err(Error::invalid(
                "nonce",
                "1 to 64 letters, digits or dashes: the form's own id",
            ));
        }
        Ok(Self(raw))
    }

    /// The inbox dedupe key (the inbox keeps them per tenant, so the opportunity is in it), with
    /// the text's digest: the same form sent back with other words is another text.
    fn dedupe_key(&self, opportunity: Uuid, body: &str) -> String {
        let digest = Sha256::digest(body.as_bytes());
        let short: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        format!("message_send:{opportunity}:{}:{short}", self.0)
    }
}

/// Who writes a message by hand: the key's principal, else the `by` it names (refused by that
/// field's name).
fn writer(who: &Identity, by: Option<String>) -> Result<String, Error> {
    acting_as(who, by).map_err(|e| match e {
        Error::Invalid { field, message } if field == "operator" => Error::invalid("by", message),
        e => e,
    })
}

/// A person texts the lead by hand, through the opportunity's compliance gate; the first such
/// text takes the conversation over from the playbook. `by` names the person for keys of no
/// principal (a principal's key always writes as itself). With `once`, a repeat of the same
/// form is a no-op. Audited as `message_send`.
pub async fn send(
    engine: &EngineHandle,
    who: &Identity,
    id: &str,
    body: String,
    by: Option<String>,
    once: Option<Once>,
) -> Result<Applied, Error> {
    authorize(who, Action::Operate)?;
    let id = visible(engine, who, id).await?;
    input::check("body", &body, Lines::Many, 1, MAX_TEXT_CHARS)?;
    let by = writer(who, by)?;
    let body = body.trim().to_owned();
    let dedupe = once.as_ref().map(|o| o.dedupe_key(id, &body));
    let input = OppInput::SendText { body, by };
    run_once(engine, who, id, AuditAction::MessageSend, input, dedupe).await
}

/// A person emails the lead by hand, through the email gate; the first human message takes
/// the conversation over, as a text does. With `once`, a repeat of the same form is a no-op.
/// Audited as `message_send`.
pub async fn send_email(
    engine: &EngineHandle,
    who: &Identity,
    id: &str,
    subject: String,
    body: String,
    by: Option<String>,
    once: Option<Once>,
) -> Result<Applied, Error> {
    authorize(who, Action::Operate)?;
    let id = visible(engine, who, id).await?;
    input::check("subject", &subject, Lines::One, 1, MAX_SUBJECT_CHARS)?;
    input::check("body", &body, Lines::Many, 1, MAX_BODY_CHARS)?;
    let by = writer(who, by)?;
    let (subject, body) = (subject.trim().to_owned(), body.trim().to_owned());
    let dedupe = once
        .as_ref()
        .map(|o| o.dedupe_key(id, &format!("email\n{subject}\n{body}")));
    let input = OppInput::WriteEmail { subject, body, by };
    run_once(engine, who, id, AuditAction::MessageSend, input, dedupe).await
}

#[path = "messages_email.rs"]
mod email;

use email::{email_reports, email_view};

#[cfg(test)]
#[path = "messages_tests.rs"]
mod tests;
