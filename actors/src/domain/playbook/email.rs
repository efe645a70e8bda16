//! The playbook's emails to the lead (`[email]`): a first-touch email when the lead is created
//! and a follow-up after a missed call, each a MiniJinja template for the subject and the body,
//! rendered inside the transition with the lead's fields. The footer (the tenant's postal
//! address and the unsubscribe link) is not part of the template: the dispatcher adds it, so no
//! playbook can leave it out.

use minijinja::{Environment, UndefinedBehavior};
use serde::{Deserialize, Serialize};

/// Rendering steps a template may take: far more than any email needs, and a bound on what a
/// runaway loop in a playbook costs inside a transition.
const FUEL: u64 = 50_000;
/// A rendered subject longer than this is cut (RFC 5322 suggests 78 characters per line).
pub const MAX_SUBJECT_CHARS: usize = 200;
/// A rendered body longer than this is refused rather than sent.
pub const MAX_BODY_CHARS: usize = 20_000;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailSteps {
    /// Sent when the lead is created (with the lead's email consent and an address).
    #[serde(default)]
    pub first_touch: Option<EmailTemplate>,
    /// Sent after each missed cadence call, next to the follow-up text.
    #[serde(default)]
    pub after_missed_call: Option<EmailTemplate>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailTemplate {
    pub subject: String,
    pub body: String,
}

/// Which of the playbook's emails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmailStep {
    FirstTouch,
    AfterMissedCall,
    /// Not the playbook's: a person wrote it (`OppInput::WriteEmail`).
    ByHand,
}

impl EmailStep {
    pub fn as_str(self) -> &'static str {
        match self {
            EmailStep::FirstTouch => "first_touch",
            EmailStep::AfterMissedCall => "after_missed_call",
            EmailStep::ByHand => "by_hand",
        }
    }
}

/// What a template sees of the lead.
#[derive(Debug, Clone, Serialize)]
pub struct LeadFields<'a> {
    pub name: &'a str,
    /// The first word of the name ("there" when the name is empty).
    pub first_name: &'a str,
    pub email: &'a str,
    pub phone: &'a str,
    pub external_id: &'a str,
}

impl<'a> LeadFields<'a> {
    pub fn new(name: &'a str, email: &'a str, phone: &'a str, external_id: &'a str) -> Self {
        let first_name = name.split_whitespace().next().unwrap_or("there");
        Self {
            name,
            first_name,
            email,
            phone,
            external_id,
        }
    }
}

/// A subject and a body ready to send (before the footer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub body: String,
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    // A misspelt field fails the playbook's check instead of mailing an empty greeting.
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(FUEL));
    // Plain-text email: nothing is HTML-escaped.
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    env
}

impl EmailTemplate {
    /// Renders the subject (one line, cut to `MAX_SUBJECT_CHARS`) and the body.
    pub fn render(&self, lead: &LeadFields<'_>) -> Result<Rendered, String> {
        let env = environment();
        let subject = env
            .render_str(&self.subject, lead)
            .map_err(|e| format!("subject: {e}"))?;
        let body = env
            .render_str(&self.body, lead)
            .map_err(|e| format!("body: {e}"))?;
        // A line break in a subject would be a header injection; it is folded to spaces.
        let subject: String = subject
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            .take(MAX_SUBJECT_CHARS)
            .collect();
        if subject.is_empty() {
            return Err("subject: renders empty".into());
        }
        if body.trim().is_empty() {
            return Err("body: renders empty".into());
        }
        if body.chars().count() > MAX_BODY_CHARS {
            return Err(format!("body: longer than {MAX_BODY_CHARS} characters"));
        }
        Ok(Rendered { subject, body })
    }
}

impl EmailSteps {
    pub fn template(&self, step: EmailStep) -> Option<&EmailTemplate> {
        match step {
            EmailStep::FirstTouch => self.first_touch.as_ref(),
            EmailStep::AfterMissedCall => self.after_missed_call.as_ref(),
            EmailStep::ByHand => None,
        }
    }

    /// The first template that does not compile or render against a sample lead, with the
    /// field it is in and why: a playbook is checked when it is loaded, not at a lead's email.
    pub fn problem(&self) -> Option<(&'static str, String)> {
        let sample = LeadFields::new("Ana Lima", "ana@example.com", "+14155550100", "crm-1");
        let steps = [
            ("email.first_touch", &self.first_touch),
            ("email.after_missed_call", &self.after_missed_call),
        ];
        for (field, template) in steps {
            if let Some(t) = template {
                if let Err(e) = t.render(&sample) {
                    return Some((field, e));
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(subject: &str, body: &str) -> EmailTemplate {
        EmailTemplate {
            subject: subject.into(),
            body: body.into(),
        }
    }

    #[test]
    fn the_leads_fields_fill_the_subject_and_body() {
        let t = template(
            "Hi {{ first_name }}, about {{ external_id }}",
            "Dear {{ name }},\nwe will call {{ phone }}.\n{% if email %}({{ email }}){% endif %}",
        );
        let lead = LeadFields::new("Ana Lima", "ana@x.test", "+14155550100", "crm-7");
        let r = t.render(&lead).unwrap();
        assert_eq!(r.subject, "Hi Ana, about crm-7");
        assert_eq!(
            r.body,
            "Dear Ana Lima,\nwe will call +14155550100.\n(ana@x.test)"
        );
        let nameless = LeadFields::new("", "a@x.test", "+1", "e");
        assert_eq!(t.render(&nameless).unwrap().subject, "Hi there, about e");
    }

    #[test]
    fn a_subject_stays_one_line_and_nothing_is_escaped() {
        let t = template("a\r\nBcc: x@y.test {{ name }}", "<{{ name }}> & co");
        let lead = LeadFields::new("O'Brien <b>", "a@x.test", "+1", "e");
        let r = t.render(&lead).unwrap();
        assert_eq!(r.subject, "a Bcc: x@y.test O'Brien <b>");
        assert_eq!(r.body, "<O'Brien <b>> & co");
    }

    #[test]
    fn problems_name_the_template_and_the_error() {
        let bad_syntax = EmailSteps {
            first_touch: Some(template("{{ name ", "b")),
            after_missed_call: None,
        };
        let (field, why) = bad_syntax.problem().unwrap();
        assert_eq!(field, "email.first_touch");
        assert!(why.starts_with("subject:"), "{why}");
        let unknown = EmailSteps {
            first_touch: None,
            after_missed_call: Some(template("s", "Hi {{ nmae }}")),
        };
        let (field, why) = unknown.problem().unwrap();
        assert_eq!(field, "email.after_missed_call");
        assert!(why.contains("body") && why.contains("undefined"), "{why}");
        let runaway = EmailSteps {
            first_touch: Some(template("s", "{% for i in range(100000) %}x{% endfor %}")),
            after_missed_call: None,
        };
        assert!(runaway.problem().is_some());
        let empty = EmailSteps {
            first_touch: Some(template("{{ '' }}", "b")),
            after_missed_call: None,
        };
        assert!(empty.problem().unwrap().1.contains("empty"));
        assert_eq!(EmailSteps::default().problem(), None);
    }
}
