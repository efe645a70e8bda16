//! Playbooks: the per-tenant cadence and SLA rules, kept as data (TOML files
//! under `config/playbooks/`) so that tuning a cadence never needs a deploy.

use serde::{Deserialize, Serialize};

/// All durations are whole seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Playbook {
    pub name: String,
    /// The lead must be reached (a person answers or the lead replies)
    /// within this, else the opportunity escalates.
    #[serde(default = "defaults::first_touch_sla_seconds")]
    pub first_touch_sla_seconds: u64,
    /// After an inbound reply a human must respond within this.
    #[serde(default = "defaults::response_sla_seconds")]
    pub response_sla_seconds: u64,
    /// A lead who answered and reached nobody is owed a callback: a rep must talk with them
    /// within this, else the opportunity escalates again (and its people are told again).
    #[serde(default = "defaults::callback_sla_seconds")]
    pub callback_sla_seconds: u64,
    /// Call attempts before the opportunity becomes `unreachable`.
    #[serde(default = "defaults::max_attempts")]
    pub max_attempts: u32,
    /// Wait before the next attempt after no-answer/busy/failed/machine.
    #[serde(default = "defaults::retry_delay_seconds")]
    pub retry_delay_seconds: u64,
    #[serde(default = "defaults::ring_timeout_seconds")]
    pub ring_timeout_seconds: u64,
    /// If a call has no terminal status by then, the call actor stops waiting.
    #[serde(default = "defaults::call_watchdog_seconds")]
    pub call_watchdog_seconds: u64,
    #[serde(default = "defaults::escalation_queue")]
    pub escalation_queue: String,
    /// Follow-up SMS body after a missed call; `{name}` is replaced by the
    /// contact's name. `None` disables the follow-up.
    #[serde(default = "defaults::sms_after_missed_call")]
    pub sms_after_missed_call: Option<String>,
    /// Whether to stay on the line for voicemail; when false a call answered
    /// by a machine is hung up.
    #[serde(default)]
    pub voicemail: bool,
    /// The one text confirming an opt-out (STOP), sent at most once ever.
    #[serde(default = "defaults::opt_out_confirmation")]
    pub opt_out_confirmation: String,
    /// The answer to a HELP/INFO text.
    #[serde(default = "defaults::help_reply")]
    pub help_reply: String,
    /// What an answered call says and texts (`[call_flow]`).
    #[serde(default)]
    pub call_flow: CallFlow,
    /// When a person takes a lead's conversation over by texting it by hand, the automatic
    /// texts always stop; with this the cadence's calls stop too, until it is handed back.
    #[serde(default)]
    pub takeover_stops_calls: bool,
    /// The emails to the lead (`[email]`): none unless the playbook names them.
    #[serde(default)]
    pub email: EmailSteps,
}

mod call_flow;
mod email;

pub use call_flow::{fill, CallFlow, ConnectMode};
pub use email::{
    EmailStep, EmailSteps, EmailTemplate, LeadFields, Rendered, MAX_BODY_CHARS, MAX_SUBJECT_CHARS,
};

mod defaults {
    pub fn first_touch_sla_seconds() -> u64 {
        300
    }
    pub fn callback_sla_seconds() -> u64 {
        900
    }
    pub fn response_sla_seconds() -> u64 {
        120
    }
    pub fn max_attempts() -> u32 {
        6
    }
    pub fn retry_delay_seconds() -> u64 {
        600
    }
    pub fn ring_timeout_seconds() -> u64 {
        30
    }
    pub fn call_watchdog_seconds() -> u64 {
        300
    }
    pub fn escalation_queue() -> String {
        "escalations".to_owned()
    }
    pub fn sms_after_missed_call() -> Option<String> {
        Some("Hi {name}, we just tried to call you. Reply here or call us back.".to_owned())
    }
    pub fn opt_out_confirmation() -> String {
        "You are unsubscribed and will receive no more messages. Reply START to resubscribe."
            .to_owned()
    }
    pub fn help_reply() -> String {
        "Reply STOP to unsubscribe. Msg&data rates may apply.".to_owned()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlaybookError {
    #[error("playbook is not valid toml: {0}")]
    Parse(String),
    #[error("invalid playbook field {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
}

impl Playbook {
    /// A playbook with every default and the given name.
    pub fn with_defaults(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            first_touch_sla_seconds: defaults::first_touch_sla_seconds(),
            response_sla_seconds: defaults::response_sla_seconds(),
            callback_sla_seconds: defaults::callback_sla_seconds(),
            max_attempts: defaults::max_attempts(),
            retry_delay_seconds: defaults::retry_delay_seconds(),
            ring_timeout_seconds: defaults::ring_timeout_seconds(),
            call_watchdog_seconds: defaults::call_watchdog_seconds(),
            escalation_queue: defaults::escalation_queue(),
            sms_after_missed_call: defaults::sms_after_missed_call(),
            voicemail: false,
            opt_out_confirmation: defaults::opt_out_confirmation(),
            help_reply: defaults::help_reply(),
            call_flow: CallFlow::default(),
            takeover_stops_calls: false,
            email: EmailSteps::default(),
        }
    }

    pub fn from_toml(text: &str) -> Result<Playbook, PlaybookError> {
        // toml's message already names the unknown or mistyped field.
        let playbook: Playbook =
            toml::from_str(text).map_err(|e| PlaybookError::Parse(e.message().to_owned()))?;
        playbook.validate()?;
        Ok(playbook)
    }

    pub fn validate(&self) -> Result<(), PlaybookError> {
        let invalid = |field, reason: &str| {
            Err(PlaybookError::Invalid {
                field,
                reason: reason.to_owned(),
            })
        };
        if self.name.trim().is_empty() {
            return invalid("name", "must not be empty");
        }
        if self.callback_sla_seconds < 1 {
            return invalid("callback_sla_seconds", "must be at least 1");
        }
        if self.max_attempts < 1 {
            return invalid("max_attempts", "must be at least 1");
        }
        if self.ring_timeout_seconds >= self.call_watchdog_seconds {
            return invalid(
                "ring_timeout_seconds",
                "must be less than call_watchdog_seconds",
            );
        }
        if self.escalation_queue.trim().is_empty() {
            return invalid("escalation_queue", "must not be empty");
        }
        if self.opt_out_confirmation.trim().is_empty() {
            return invalid("opt_out_confirmation", "must not be empty");
        }
        if self.help_reply.trim().is_empty() {
            return invalid("help_reply", "must not be empty");
        }
        if let Some((field, reason)) = self.call_flow.problem() {
            return invalid(field, reason);
        }
        if let Some((field, reason)) = self.email.problem() {
            return Err(PlaybookError::Invalid { field, reason });
        }
        Ok(())
    }

    /// The missed-call follow-up body for `name`, if the playbook has one.
    /// An empty name reads "Hi there" rather than "Hi ,".
    pub fn missed_call_sms(&self, name: &str) -> Option<String> {
        self.sms_after_missed_call
            .as_deref()
            .map(|template| fill(template, name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEED_TO_LEAD: &str = include_str!("../../../config/playbooks/speed-to-lead.toml");
    const DEMO: &str = include_str!("../../../config/playbooks/demo.toml");

    #[test]
    fn shipped_speed_to_lead_equals_the_defaults() {
        let pb = Playbook::from_toml(SPEED_TO_LEAD).unwrap();
        assert_eq!(pb, Playbook::with_defaults("speed-to-lead"));
        assert_eq!(Playbook::from_toml("name = \"speed-to-lead\"").unwrap(), pb);
    }

    #[test]
    fn shipped_demo_is_fast() {
        let pb = Playbook::from_toml(DEMO).unwrap();
        assert_eq!(pb.name, "demo");
        assert_eq!(
            (
                pb.first_touch_sla_seconds,
                pb.response_sla_seconds,
                pb.max_attempts,
                pb.retry_delay_seconds,
                pb.ring_timeout_seconds,
                pb.call_watchdog_seconds
            ),
            (20, 10, 2, 5, 5, 20)
        );
    }

    #[test]
    fn unknown_fields_are_rejected_by_name() {
        let err = Playbook::from_toml("name = \"x\"\nmax_atempts = 3").unwrap_err();
        assert!(err.to_string().contains("max_atempts"), "{err}");
    }

    #[test]
    fn missing_name_is_rejected() {
        let err = Playbook::from_toml("max_attempts = 3").unwrap_err();
        assert!(err.to_string().contains("name"), "{err}");
    }

    #[test]
    fn validation_names_the_field() {
        let cases = [
            ("name = \" \"", "name"),
            ("name = \"x\"\nmax_attempts = 0", "max_attempts"),
            (
                "name = \"x\"\nring_timeout_seconds = 30\ncall_watchdog_seconds = 30",
                "ring_timeout_seconds",
            ),
            ("name = \"x\"\nescalation_queue = \"\"", "escalation_queue"),
            (
                "name = \"x\"\nopt_out_confirmation = \" \"",
                "opt_out_confirmation",
            ),
            ("name = \"x\"\nhelp_reply = \"\"", "help_reply"),
        ];
        for (text, field) in cases {
            match Playbook::from_toml(text) {
                Err(PlaybookError::Invalid { field: f, .. }) => assert_eq!(f, field, "{text}"),
                other => panic!("{text}: expected invalid {field}, got {other:?}"),
            }
        }
    }

    #[test]
    fn missed_call_sms_substitutes_the_name() {
        let pb = Playbook::with_defaults("x");
        assert_eq!(
            pb.missed_call_sms("Ana").unwrap(),
            "Hi Ana, we just tried to call you. Reply here or call us back."
        );
        assert!(pb.missed_call_sms("").unwrap().starts_with("Hi there,"));
        let silent = Playbook {
            sms_after_missed_call: None,
            ..pb
        };
        assert_eq!(silent.missed_call_sms("Ana"), None);
    }

    #[test]
    fn email_steps_read_from_toml_and_bad_ones_are_named() {
        let text = "name = \"x\"\n[email.first_touch]\nsubject = \"Hi {{ first_name }}\"\n\
                    body = \"Hello {{ name }}\"\n";
        let pb = Playbook::from_toml(text).unwrap();
        let first = pb.email.template(EmailStep::FirstTouch).unwrap();
        assert_eq!(first.subject, "Hi {{ first_name }}");
        assert_eq!(pb.email.template(EmailStep::AfterMissedCall), None);
        assert_eq!(Playbook::with_defaults("x").email, EmailSteps::default());
        let unknown = Playbook::from_toml(
            "name = \"x\"\n[email.first_touch]\nsubject = \"s\"\n\
                                           body = \"b\"\nbcc = \"x\"\n",
        )
        .unwrap_err();
        assert!(unknown.to_string().contains("bcc"), "{unknown}");
        let typo = "name = \"x\"\n[email.after_missed_call]\nsubject = \"s\"\n\
                    body = \"Hi {{ nmae }}\"\n";
        match Playbook::from_toml(typo) {
            Err(PlaybookError::Invalid { field, reason }) => {
                assert_eq!(field, "email.after_missed_call");
                assert!(reason.contains("undefined"), "{reason}");
            }
            other => panic!("expected invalid email.after_missed_call, got {other:?}"),
        }
    }

    #[test]
    fn compliance_texts_default_and_can_be_tuned() {
        let pb = Playbook::from_toml("name = \"x\"").unwrap();
        assert_eq!(
            pb.opt_out_confirmation,
            "You are unsubscribed and will receive no more messages. Reply START to resubscribe."
        );
        assert_eq!(
            pb.help_reply,
            "Reply STOP to unsubscribe. Msg&data rates may apply."
        );
        let tuned =
            Playbook::from_toml("name = \"x\"\nhelp_reply = \"Acme: call 555. STOP to end.\"")
                .unwrap();
        assert_eq!(tuned.help_reply, "Acme: call 555. STOP to end.");
    }
}
