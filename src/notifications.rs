//! Notices to people (issue #14, "Notifications to people"): whom an escalation tells, and
//! what the SMS and the email say. The effect handlers (`channels`) call these; the fan-out
//! itself is the opportunity's (`OppInput::NotifyPeople`), so every message is an outbox
//! effect of its own.

use chrono::{DateTime, Utc};
use neuronx_actors::domain::opportunity::Recipient;
use neuronx_actors::domain::text::one_line;
use neuronx_supervision::{Store, TenantId};
use uuid::Uuid;

use crate::control::access;
use crate::control::reps::{self, Rep, RepStatus};
use crate::control::ControlError;

/// Whom a notice about `opportunity` goes to, and whether someone is on call to see the lead
/// anyway, from one read of its people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audience {
    pub recipients: Vec<Recipient>,
    /// The assignee when that is an active rep, else any active rep of the team, is
    /// `available` and in working hours now. A lead's reply is told only when nobody is.
    pub on_call: bool,
}

/// Whom an escalation of `opportunity` tells: its assignee when that is a rep; else its team's
/// reps (the tenant's when it has no team) who are `available` and in working hours now; else,
/// when none is on call, the team's other reps, so someone hears of the lead waiting; at most
/// `MAX_NOTIFIED` of them (`on_call`).
pub async fn audience(
    store: &Store,
    tenant: TenantId,
    opportunity: Uuid,
    assignee: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Audience, ControlError> {
    if let Some(name) = assignee {
        // A deactivated assignee is told nothing (its leads are being reassigned).
        if let Some(rep) = reps::get_rep(store, tenant, name, now)
            .await?
            .filter(|r| r.active)
        {
            return Ok(Audience {
                on_call: is_on_call(&rep),
                recipients: vec![recipient(rep)],
            });
        }
    }
    let team = access::team_of(store, tenant, opportunity).await?;
    let mut all = reps::list_reps(store, tenant, team, now).await?;
    // Nobody deactivated is told, even when nobody is on call.
    all.retain(|r| r.active);
    Ok(Audience {
        on_call: all.iter().any(is_on_call),
        recipients: on_call(all).into_iter().map(recipient).collect(),
    })
}

fn is_on_call(rep: &Rep) -> bool {
    rep.status == RepStatus::Available && rep.in_hours
}

/// At most this many reps are told of one escalation: enough that someone acts, few enough
/// that a busy hour does not text the whole floor about every lead (the demo's 12 reps got
/// about 900 texts for 145 escalations before the cap).
pub const MAX_NOTIFIED: usize = 3;

/// The reps on call among `all`, or all of them when none is; of those, the `MAX_NOTIFIED`
/// most likely to act now: reps not on a call first, then the one offered a call longest ago
/// (never offered first), then by name.
fn on_call(all: Vec<Rep>) -> Vec<Rep> {
    let (on, off): (Vec<Rep>, Vec<Rep>) = all.into_iter().partition(is_on_call);
    let mut chosen = if on.is_empty() { off } else { on };
    chosen.sort_by(|a, b| {
        let busy = |r: &Rep| r.effective_status == RepStatus::Busy;
        busy(a)
            .cmp(&busy(b))
            .then(a.last_offered_at.cmp(&b.last_offered_at))
            .then_with(|| a.name.cmp(&b.name))
    });
    chosen.truncate(MAX_NOTIFIED);
    chosen
}

fn recipient(rep: Rep) -> Recipient {
    Recipient {
        name: rep.name,
        phone: Some(rep.phone),
        email: rep.email,
    }
}

/// Where the opportunity is opened in the console.
pub fn console_link(public_url: &str, opportunity: Uuid) -> String {
    format!(
        "{}/console/opportunities/{opportunity}",
        public_url.trim_end_matches('/')
    )
}

/// What a notice says, by SMS and by email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub sms: String,
    pub subject: String,
    pub body: String,
}

/// The notice to `recipient` that lead `lead` was escalated for `reason`, with the console link.
/// The SMS stays short (the reason cut to 120 characters); the email carries it whole.
pub fn compose(recipient: &str, lead: &str, reason: &str, link: &str) -> Notice {
    let lead = match one_line(lead, 80) {
        name if name.is_empty() => "a lead".to_owned(),
        name => name,
    };
    let sms = format!(
        "NeuronX: {lead} needs a person: {}. {link}",
        one_line(reason, 120)
    );
    let subject = format!("Lead waiting: {lead}");
    let body = format!(
        "Hello {},\r\n\r\n{lead} needs a person.\r\n\r\nWhy: {}\r\n\r\nOpen the opportunity: {link}\r\n\r\n-- NeuronX\r\n",
        one_line(recipient, 80),
        one_line(reason, 2_000),
    );
    Notice { sms, subject, body }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINK: &str = "https://nx.example.com/console/opportunities/0000";

    #[test]
    fn a_notice_names_the_lead_the_reason_and_the_link() {
        let n = compose("ana", "Ana Lima", "first-touch SLA breached", LINK);
        assert_eq!(
            n.sms,
            format!("NeuronX: Ana Lima needs a person: first-touch SLA breached. {LINK}")
        );
        assert_eq!(n.subject, "Lead waiting: Ana Lima");
        assert!(n.body.starts_with("Hello ana,"), "{}", n.body);
        assert!(
            n.body.contains("Why: first-touch SLA breached"),
            "{}",
            n.body
        );
        assert!(n.body.contains(&format!("Open the opportunity: {LINK}")));
    }

    #[test]
    fn hostile_or_long_text_stays_on_one_line_and_short() {
        let n = compose(
            "bo\r\nBcc: x@y",
            "Eve\r\nBcc: all@acme.test",
            &"x".repeat(500),
            LINK,
        );
        assert!(
            !n.subject.contains('\n') && !n.subject.contains('\r'),
            "{}",
            n.subject
        );
        assert_eq!(n.subject, "Lead waiting: Eve Bcc: all@acme.test");
        assert!(n.body.starts_with("Hello bo Bcc: x@y,\r\n"), "{}", n.body);
        // The SMS cuts the reason; the email keeps it.
        assert!(
            n.sms.contains(&format!("{}…", "x".repeat(119))),
            "{}",
            n.sms
        );
        assert!(n.sms.chars().count() < 260, "{}", n.sms.len());
        assert!(n.body.contains(&"x".repeat(500)));
        assert_eq!(
            compose("a", " \t", "r", LINK).subject,
            "Lead waiting: a lead"
        );
    }

    #[test]
    fn the_link_is_the_consoles_route() {
        let id = Uuid::from_u128(7);
        assert_eq!(
            console_link("https://nx.example.com/", id),
            format!("https://nx.example.com/console/opportunities/{id}")
        );
    }

    fn rep(name: &str, status: RepStatus, in_hours: bool) -> Rep {
        Rep {
            name: name.into(),
            team: None,
            phone: "+14155550100".into(),
            time_zone: "UTC".into(),
            working_hours: None,
            status,
            effective_status: status,
            max_calls: 1,
            email: None,
            live_calls: 0,
            in_hours,
            last_offered_at: None,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
            principal_id: Uuid::nil(),
            team_id: None,
            active: true,
        }
    }

    #[test]
    fn on_call_reps_are_told_else_everyone() {
        let names = |reps: Vec<Rep>| -> Vec<String> { reps.into_iter().map(|r| r.name).collect() };
        let all = vec![
            rep("ana", RepStatus::Available, true),
            rep("bo", RepStatus::Available, false),
            rep("cy", RepStatus::Away, true),
        ];
        assert_eq!(names(on_call(all)), ["ana"]);
        let nobody = vec![
            rep("bo", RepStatus::Available, false),
            rep("cy", RepStatus::Offline, true),
        ];
        assert_eq!(names(on_call(nobody)), ["bo", "cy"]);
        assert!(on_call(vec![]).is_empty());
    }

    #[test]
    fn at_most_three_are_told_the_free_and_longest_idle_first() {
        let names = |reps: Vec<Rep>| -> Vec<String> { reps.into_iter().map(|r| r.name).collect() };
        let at = |s: i64| DateTime::<Utc>::from_timestamp(s, 0);
        let mut busy = rep("ana", RepStatus::Available, true);
        busy.effective_status = RepStatus::Busy;
        let mut recent = rep("bo", RepStatus::Available, true);
        recent.last_offered_at = at(200);
        let mut older = rep("cy", RepStatus::Available, true);
        older.last_offered_at = at(100);
        let never = rep("dee", RepStatus::Available, true);
        let eve = rep("eve", RepStatus::Available, true);
        let told = on_call(vec![busy, recent, older, never, eve]);
        assert_eq!(names(told), ["dee", "eve", "cy"]);
    }
}
