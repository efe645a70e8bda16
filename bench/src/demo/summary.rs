//! The demo's summary: what the carrier simulator counted, and what the runtime's tables say
//! (the opportunities' and their calls' timelines, read directly as ADR 0034 allows).

use std::collections::BTreeMap;

use std::collections::HashSet;

use crate::mail_sink::ReceivedMail;
use neuronx_adapters::carrier_sim::{MessageView, SimStats};
use neuronx_supervision::store::{ActorRow, ListQuery, TimelineRow};
use neuronx_supervision::{Store, TenantId};

#[derive(Default, Debug)]
pub struct Summary {
    pub leads: u32,
    /// Reps the demo gave the tenant (available, one call at a time).
    pub reps: u32,
    pub calls: u64,
    /// Calls that ended `completed`: answered by a person or a machine.
    pub answered: u64,
    /// Conversations the carrier bridged between a lead and a rep (its `bridged_calls`).
    pub bridged: u64,
    /// Calls leads placed to the tenant's number (the simulator's `inbound_calls`).
    pub calls_from_leads: u64,
    /// Leads that talked to a rep: opportunities with a `conversation` entry of event
    /// `conversation`.
    pub talked_to_rep: u64,
    /// Leads who answered and whom no rep took: opportunities with a `conversation` entry of
    /// event `unattended` (each got the callback text, where allowed, and was escalated).
    pub unattended: u64,
    /// Texts to leads (the simulator's outbound messages to a number no rep has).
    pub sms: u64,
    /// Texts to reps: escalation notices.
    pub rep_sms: u64,
    /// Replies from leads.
    pub replies: u64,
    /// Emails to leads (the playbook's templates), as the demo's SMTP server received them.
    pub lead_emails: u64,
    /// Emails to reps: escalation notices.
    pub rep_emails: u64,
    /// Leads' email replies on their threads: `replied` entries with `channel = email`.
    pub email_replies: u64,
    /// Email replies the demo's mail relay posted and NeuronX took (each should be on a thread).
    pub email_replies_posted: u64,
    /// `sla_escalated` entries: SLA breaches and unattended leads alike.
    pub escalations: u64,
    pub compliance_blocks: u64,
    pub opted_out: u64,
    pub duplicate_sends: u64,
    pub speed_to_lead_p50_ms: i64,
    pub speed_to_lead_p99_ms: i64,
    /// From an opportunity's creation to a rep on the line (its call's `rep_answered` entry),
    /// over the leads that talked to a rep; 0 when none did.
    pub time_to_rep_p50_ms: i64,
    pub time_to_rep_p90_ms: i64,
    pub stages: BTreeMap<String, u64>,
}

async fn all_opportunities(store: &Store, tenant: TenantId) -> anyhow::Result<Vec<ActorRow>> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_actors(&ListQuery {
                tenant,
                kind: "opportunity".into(),
                status: None,
                paused: None,
                after,
                limit: 500,
            })
            .await?;
        after = page.last().map(|r| (r.created_at_ms, r.key.id));
        let done = page.len() < 500;
        out.extend(page);
        if done {
            return Ok(out);
        }
    }
}

fn percentile(sorted: &[i64], q: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// The call an opportunity's entry names (`data.call_id`).
fn call_of(entry: &TimelineRow) -> Option<uuid::Uuid> {
    entry
        .data
        .get("call_id")
        .and_then(|v| v.as_str())
        .and_then(|c| uuid::Uuid::parse_str(c).ok())
}

/// The `event` of a `conversation` entry (`None` for other kinds).
fn conversation_event(entry: &TimelineRow) -> Option<&str> {
    (entry.kind == "conversation")
        .then(|| entry.data.get("event").and_then(|v| v.as_str()))
        .flatten()
}

/// Speed to lead of one opportunity: from its creation to the carrier accepting its first call
/// (the first call's `provider_sid` on the call's timeline). `None` if no call went out.
pub async fn speed_to_lead(
    store: &Store,
    tenant: TenantId,
    row: &ActorRow,
    timeline: &[TimelineRow],
) -> anyhow::Result<Option<i64>> {
    let Some(call_id) = timeline
        .iter()
        .find(|e| e.kind == "call_placed")
        .and_then(call_of)
    else {
        return Ok(None);
    };
    let call_timeline = store.timeline(tenant, "call", call_id, 0, 50).await?;
    Ok(call_timeline
        .iter()
        .find(|e| e.data.get("provider_sid").is_some_and(|v| v.is_string()))
        .map(|accepted| accepted.at_ms - row.created_at_ms))
}

/// From an opportunity's creation to a rep on the line: the `rep_answered` entry of the call
/// its lead talked on (its `conversation` entry names it). `None` if the lead talked to no rep.
async fn time_to_rep(
    store: &Store,
    tenant: TenantId,
    row: &ActorRow,
    timeline: &[TimelineRow],
) -> anyhow::Result<Option<i64>> {
    let Some(call_id) = timeline
        .iter()
        .find(|e| conversation_event(e) == Some("conversation"))
        .and_then(call_of)
    else {
        return Ok(None);
    };
    let call_timeline = store.timeline(tenant, "call", call_id, 0, 100).await?;
    Ok(call_timeline
        .iter()
        .find(|e| conversation_event(e) == Some("rep_answered"))
        .map(|answered| answered.at_ms - row.created_at_ms))
}

/// The carrier's texts, split by whom they were between: the simulator draws replies to every
/// text it delivers, so a rep's phone answers escalation notices as a lead would.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Texts {
    pub to_leads: u64,
    pub to_reps: u64,
    pub lead_replies: u64,
}

impl Texts {
    pub fn count(messages: &[MessageView], rep_phones: &HashSet<String>) -> Self {
        let mut t = Self::default();
        for m in messages {
            match (
                m.direction.as_str(),
                rep_phones.contains(&m.to),
                rep_phones.contains(&m.from),
            ) {
                ("inbound", _, false) => t.lead_replies += 1,
                ("inbound", _, true) => {}
                (_, true, _) => t.to_reps += 1,
                (_, false, _) => t.to_leads += 1,
            }
        }
        t
    }
}

/// The demo's SMTP server's messages, split by recipient: a rep's address or a lead's; and the
/// ones received again (a `Message-ID` seen before: the engine names one intended message by
/// one id, so a second copy is a duplicate send).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Emails {
    pub to_leads: u64,
    pub to_reps: u64,
    pub duplicates: u64,
}

impl Emails {
    pub fn count(mail: &[ReceivedMail], rep_emails: &HashSet<String>) -> Self {
        let mut e = Self::default();
        let mut ids = HashSet::new();
        for m in mail {
            if let Some(id) = m.header("message-id") {
                e.duplicates += u64::from(!ids.insert(id));
            }
            for to in &m.to {
                if rep_emails.contains(to) {
                    e.to_reps += 1;
                } else {
                    e.to_leads += 1;
                }
            }
        }
        e
    }
}

pub(super) async fn summarize(
    store: &Store,
    tenant: TenantId,
    leads: u32,
    reps: u32,
    stats: &SimStats,
    texts: Texts,
    emails: Emails,
) -> anyhow::Result<Summary> {
    let mut s = Summary {
        leads,
        reps,
        calls: stats.calls,
        answered: stats.call_outcomes.get("completed").copied().unwrap_or(0),
        bridged: stats.bridged_calls,
        calls_from_leads: stats.inbound_calls,
        sms: texts.to_leads,
        rep_sms: texts.to_reps,
        replies: texts.lead_replies,
        lead_emails: emails.to_leads,
        rep_emails: emails.to_reps,
        duplicate_sends: stats.duplicate_creates + emails.duplicates,
        ..Summary::default()
    };
    let (mut speed, mut to_rep) = (Vec::new(), Vec::new());
    for row in all_opportunities(store, tenant).await? {
        *s.stages.entry(row.status.clone()).or_default() += 1;
        let timeline = store
            .timeline(tenant, "opportunity", row.key.id, 0, 1000)
            .await?;
        let (mut talked, mut unattended) = (false, false);
        for e in &timeline {
            match e.kind.as_str() {
                "sla_escalated" => s.escalations += 1,
                "compliance_blocked" => s.compliance_blocks += 1,
                "opted_out" => s.opted_out += 1,
                "replied" if e.data["channel"] == "email" => s.email_replies += 1,
                _ => {}
            }
            match conversation_event(e) {
                Some("conversation") => talked = true,
                Some("unattended") => unattended = true,
                _ => {}
            }
        }
        s.talked_to_rep += u64::from(talked);
        s.unattended += u64::from(unattended);
        if let Some(ms) = speed_to_lead(store, tenant, &row, &timeline).await? {
            speed.push(ms);
        }
        if let Some(ms) = time_to_rep(store, tenant, &row, &timeline).await? {
            to_rep.push(ms);
        }
    }
    speed.sort_unstable();
    s.speed_to_lead_p50_ms = percentile(&speed, 0.5);
    s.speed_to_lead_p99_ms = percentile(&speed, 0.99);
    to_rep.sort_unstable();
    s.time_to_rep_p50_ms = percentile(&to_rep, 0.5);
    s.time_to_rep_p90_ms = percentile(&to_rep, 0.9);
    Ok(s)
}

/// The summary's rows, label and value, in the order printed.
fn rows(s: &Summary) -> Vec<(&'static str, String)> {
    let ms = |v: i64| format!("{v} ms");
    vec![
        ("leads", s.leads.to_string()),
        ("reps", s.reps.to_string()),
        ("calls placed", s.calls.to_string()),
        ("calls connected", s.answered.to_string()),
        ("calls from leads", s.calls_from_leads.to_string()),
        ("conversations bridged", s.bridged.to_string()),
        ("leads talked to a rep", s.talked_to_rep.to_string()),
        ("answered, nobody free", s.unattended.to_string()),
        ("SMS to leads", s.sms.to_string()),
        ("replies", s.replies.to_string()),
        ("SMS to reps (notices)", s.rep_sms.to_string()),
        ("emails to leads", s.lead_emails.to_string()),
        ("emails to reps", s.rep_emails.to_string()),
        ("email replies", s.email_replies.to_string()),
        ("opt-outs (STOP)", s.opted_out.to_string()),
        ("escalations", s.escalations.to_string()),
        ("compliance blocks", s.compliance_blocks.to_string()),
        ("duplicate sends", s.duplicate_sends.to_string()),
        ("speed to lead p50", ms(s.speed_to_lead_p50_ms)),
        ("speed to lead p99", ms(s.speed_to_lead_p99_ms)),
        ("lead to a rep p50", ms(s.time_to_rep_p50_ms)),
        ("lead to a rep p90", ms(s.time_to_rep_p90_ms)),
    ]
}

pub fn print(s: &Summary) {
    println!("┌───────────────────────┬──────────┐");
    for (k, v) in rows(s) {
        println!("│ {k:<21} │ {v:>8} │");
    }
    println!("└───────────────────────┴──────────┘");
    let stages: Vec<String> = s.stages.iter().map(|(k, v)| format!("{k} {v}")).collect();
    println!("stages: {}", stages.join(", "));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_the_nearest_rank() {
        assert_eq!(percentile(&[], 0.5), 0);
        let v: Vec<i64> = (1..=10).collect();
        assert_eq!(percentile(&v, 0.5), 6);
        assert_eq!(percentile(&v, 0.9), 9);
        assert_eq!(percentile(&v, 0.99), 10);
    }

    #[test]
    fn texts_are_told_apart_by_the_reps_numbers() {
        let m = |direction: &str, from: &str, to: &str| MessageView {
            sid: "SM1".into(),
            to: to.into(),
            from: from.into(),
            status: "delivered".into(),
            direction: direction.into(),
            fate: "delivered".into(),
            error_code: None,
            body_chars: 5,
            effect: None,
            date_created: String::new(),
        };
        let (ours, lead, rep) = ("+14155550000", "+12125550100", "+16465550101");
        let reps: HashSet<String> = [rep.to_owned()].into();
        let messages = [
            m("outbound-api", ours, lead),
            m("outbound-api", ours, lead),
            m("outbound-api", ours, rep),
            m("inbound", lead, ours),
            m("inbound", rep, ours),
        ];
        let t = Texts::count(&messages, &reps);
        let want = Texts {
            to_leads: 2,
            to_reps: 1,
            lead_replies: 1,
        };
        assert_eq!(t, want);
    }

    #[test]
    fn emails_are_told_apart_by_the_reps_addresses() {
        let m = |to: &[&str], id: &str| ReceivedMail {
            from: "hello@demo-agency.test".into(),
            to: to.iter().map(|t| (*t).to_owned()).collect(),
            data: format!("Subject: hi\r\nMessage-ID: <{id}>\r\n\r\nbody\r\n"),
        };
        let reps: HashSet<String> = ["rep-01@demo-agency.test".to_owned()].into();
        let mail = [
            m(&["lead-1@example.com"], "1@x"),
            m(&["rep-01@demo-agency.test"], "2@x"),
            m(&["lead-2@example.com", "rep-01@demo-agency.test"], "3@x"),
            m(&["lead-1@example.com"], "1@x"),
        ];
        let want = Emails {
            to_leads: 3,
            to_reps: 2,
            duplicates: 1,
        };
        assert_eq!(Emails::count(&mail, &reps), want);
    }

    #[test]
    fn every_label_fits_its_column() {
        let s = Summary {
            time_to_rep_p90_ms: 99_999,
            ..Summary::default()
        };
        for (k, v) in rows(&s) {
            assert!(k.chars().count() <= 21, "{k}");
            assert!(v.chars().count() <= 8, "{k}: {v}");
        }
    }
}
