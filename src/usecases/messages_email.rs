//! The thread's emails: an email's fate is its `lead_email` outbox row until the dispatcher's
//! follow-up lands on the timeline (`email_status`: accepted or not sent; `email_bounced`),
//! naming the email by `email_id`.

use std::collections::HashMap;

use neuronx_supervision::store::{EffectRecord, OutboxStatus, TimelineRow};

use super::{DeliveryStatus, Direction, MessageChannel, MessageView};
use crate::usecases::views::ms_to_time;

/// What the timeline says of one email after it left the outbox.
pub(super) struct Mailed {
    status: DeliveryStatus,
    word: &'static str,
    at_ms: i64,
    error: Option<String>,
    code: Option<u32>,
}

/// The dispatcher's report on each email, by `email_id` (one each: an email is sent once).
pub(super) fn email_reports(entries: &[TimelineRow]) -> HashMap<String, Mailed> {
    let mut found = HashMap::new();
    for e in entries {
        let Some(id) = e.data["email_id"].as_str() else {
            continue;
        };
        let error = e.data["error"].as_str().map(str::to_owned);
        let (status, word) = match (e.kind.as_str(), e.data["event"].as_str()) {
            ("email_status", Some("sent")) => (DeliveryStatus::Sent, "accepted"),
            ("email_status", Some("failed")) => (DeliveryStatus::Failed, "not_sent"),
            ("email_bounced", _) => (DeliveryStatus::Bounced, "bounced"),
            _ => continue,
        };
        let code = e.data["code"].as_u64().and_then(|c| u32::try_from(c).ok());
        let mailed = Mailed {
            status,
            word,
            at_ms: e.at_ms,
            error: error.or_else(|| e.data["why"].as_str().map(str::to_owned)),
            code,
        };
        found.insert(id.to_owned(), mailed);
    }
    found
}

pub(super) fn email_view(
    e: &TimelineRow,
    effect: Option<&EffectRecord>,
    reports: &HashMap<String, Mailed>,
) -> MessageView {
    let text = |k: &str| e.data[k].as_str().map(str::to_owned);
    let mut m = MessageView {
        id: e.id,
        at: ms_to_time(e.at_ms),
        channel: MessageChannel::Email,
        direction: Direction::Outbound,
        body: text("body").unwrap_or_default(),
        subject: text("subject"),
        by: e.cause.clone(),
        // A person's email (`step = by_hand`) is on the timeline by its writer.
        human: e.cause.starts_with("operator:"),
        purpose: Some("marketing".to_owned()),
        status: DeliveryStatus::Unknown,
        carrier_status: None,
        status_at: None,
        error_code: None,
        error: None,
        message_sid: None,
        from: None,
    };
    if let Some(r) = text("email_id").and_then(|id| reports.get(&id)) {
        m.status = r.status;
        m.carrier_status = Some(r.word.to_owned());
        m.status_at = Some(ms_to_time(r.at_ms));
        m.error = r.error.clone();
        m.error_code = r.code;
        return m;
    }
    m.status = match effect.map(|e| e.status) {
        Some(OutboxStatus::Pending | OutboxStatus::Held | OutboxStatus::Inflight) => {
            DeliveryStatus::Queued
        }
        Some(OutboxStatus::Canceled) => DeliveryStatus::Canceled,
        // Finished, and its report not yet applied to the opportunity.
        Some(OutboxStatus::Done) => DeliveryStatus::Queued,
        Some(OutboxStatus::Unknown) | None => DeliveryStatus::Unknown,
    };
    m
}
