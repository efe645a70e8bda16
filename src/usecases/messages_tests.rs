//! The thread's mapping from what was committed to what callers see: a text's status from its
//! outbox row and the carrier's reports, and a reply.

use super::*;
use serde_json::json;

fn entry(id: i64, kind: &str, cause: &str, data: Value) -> TimelineRow {
    TimelineRow {
        id,
        version: id,
        at_ms: id * 1_000,
        kind: kind.into(),
        cause: cause.into(),
        reason: String::new(),
        data,
    }
}

fn text(by: &str) -> TimelineRow {
    let data = json!({"effect": "send_sms", "body": "hi", "purpose": "marketing"});
    entry(1, "effect_sent", by, data)
}

fn row(status: OutboxStatus, result: Option<Value>) -> EffectRecord {
    EffectRecord {
        idem_key: "t/opportunity/o/1/0".into(),
        channel: "sms".into(),
        status,
        result,
    }
}

/// The `message_status` entries of text `SM1`, in the order they arrived.
fn reported(list: &[(&str, i64, Option<u32>)]) -> HashMap<String, Reported> {
    let entries: Vec<TimelineRow> = list
        .iter()
        .map(|(status, at_ms, error_code)| {
            let mut data = json!({"message_sid": "SM1", "status": status});
            if let Some(c) = error_code {
                data["error_code"] = json!(c);
            }
            TimelineRow {
                at_ms: *at_ms,
                ..entry(*at_ms, "message_status", "channel", data)
            }
        })
        .collect();
    reports(&entries)
}

#[test]
fn a_texts_status_is_its_outbox_row_then_the_carriers_furthest_report() {
    let none = HashMap::new();
    let queued = view(
        &text("playbook"),
        Some(&row(OutboxStatus::Held, None)),
        &none,
    );
    assert_eq!(
        (queued.status, queued.human),
        (DeliveryStatus::Queued, false)
    );
    assert_eq!(queued.status_at, None);
    let canceled = view(
        &text("playbook"),
        Some(&row(OutboxStatus::Canceled, None)),
        &none,
    );
    assert_eq!(canceled.status, DeliveryStatus::Canceled);
    let lost = view(&text("playbook"), None, &none);
    assert_eq!(lost.status, DeliveryStatus::Unknown);

    let accepted = row(
        OutboxStatus::Done,
        Some(json!({"message_sid": "SM1", "from": "+14155550000"})),
    );
    let waiting = view(&text("operator:bo"), Some(&accepted), &none);
    assert_eq!(
        waiting.status,
        DeliveryStatus::Queued,
        "accepted, no report yet"
    );
    assert_eq!(waiting.message_sid.as_deref(), Some("SM1"));
    assert_eq!(waiting.from.as_deref(), Some("+14155550000"));
    assert!(waiting.human);
    // A late `sent` does not undo `delivered`.
    let reports = reported(&[("delivered", 9_000, None), ("sent", 10_000, None)]);
    let delivered = view(&text("playbook"), Some(&accepted), &reports);
    assert_eq!(delivered.status, DeliveryStatus::Delivered);
    assert_eq!(delivered.status_at, Some(ms_to_time(9_000)));
    let reports = reported(&[("sent", 5_000, None), ("undelivered", 9_000, Some(30003))]);
    let failed = view(&text("playbook"), Some(&accepted), &reports);
    assert_eq!(
        (
            failed.status,
            failed.carrier_status.as_deref(),
            failed.error_code
        ),
        (DeliveryStatus::Failed, Some("undelivered"), Some(30003))
    );
}

#[test]
fn a_text_refused_before_it_left_says_why() {
    let none = HashMap::new();
    let refused = row(
        OutboxStatus::Done,
        Some(json!({"error": "unsubscribed recipient", "code": 21610})),
    );
    let v = view(&text("playbook"), Some(&refused), &none);
    assert_eq!(
        (v.status, v.error_code, v.error.as_deref()),
        (
            DeliveryStatus::Failed,
            Some(21610),
            Some("unsubscribed recipient")
        )
    );
    let blocked = row(
        OutboxStatus::Done,
        Some(json!({"blocked": "the number is on the tenant's do-not-call list"})),
    );
    let v = view(&text("playbook"), Some(&blocked), &none);
    assert_eq!(v.status, DeliveryStatus::Failed);
    assert!(v.error.unwrap().contains("do-not-call"));
    let unknown = row(
        OutboxStatus::Unknown,
        Some(json!({"unknown_outcome": "timeout"})),
    );
    assert_eq!(
        view(&text("playbook"), Some(&unknown), &none).status,
        DeliveryStatus::Unknown
    );
}

#[test]
fn a_reply_is_received_from_the_contact() {
    let reply = entry(
        2,
        "replied",
        "contact",
        json!({"body": "yes", "keyword": null}),
    );
    let v = view(&reply, None, &HashMap::new());
    assert_eq!(
        (v.direction, v.status, v.body.as_str(), v.by.as_str()),
        (
            Direction::Inbound,
            DeliveryStatus::Received,
            "yes",
            "contact"
        )
    );
    assert_eq!(v.purpose, None);
    assert!(!is_outbound(&entry(
        3,
        "effect_sent",
        "playbook",
        json!({"effect": "notify"})
    )));
}
