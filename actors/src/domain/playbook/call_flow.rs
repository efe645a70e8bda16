//! What the call flow says once a call is answered: to the lead while reps are rung, to the
//! rep before the lead is put through (the whisper), to a lead nobody could take, and to a
//! voicemail. A playbook's `[call_flow]` table; every field has a default.

use serde::{Deserialize, Serialize};

/// Who the provider rings first on a cadence call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectMode {
    /// Dial the lead (with answering-machine detection); a person is bridged to the team's reps.
    #[default]
    LeadFirst,
    /// Ring one free rep of the team first (`agent_whisper`, press 1), then dial the lead; a
    /// rep who passes or misses hands the lead to the next attempt with the next rep. No rep
    /// free: that attempt dials the lead first.
    AgentFirst,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallFlow {
    /// Who is rung first on the cadence's calls (click to call always rings the rep first).
    #[serde(default)]
    pub connect: ConnectMode,
    /// Said to the lead who answers, before the reps are rung. `{name}` is the lead's name.
    /// Absent: the lead hears ringing only.
    #[serde(default = "defaults::connecting_message")]
    pub connecting_message: Option<String>,
    /// Said to the rep who picks up, before the lead is put through.
    #[serde(default = "defaults::whisper")]
    pub whisper: String,
    /// Agent first (click to call): said to the rep who picks up, who presses 1 to have the
    /// lead dialled. Any other key, or none within 8 s, passes.
    #[serde(default = "defaults::agent_whisper")]
    pub agent_whisper: String,
    /// Said to a lead nobody could take (no rep free, or every rep missed), before hanging up.
    #[serde(default = "defaults::unattended_message")]
    pub unattended_message: String,
    /// Texted to that lead (through the compliance gate, with the lead's sms consent).
    /// Absent: no text; the escalation still goes out.
    #[serde(default = "defaults::callback_sms")]
    pub callback_sms: Option<String>,
    /// Left on a voicemail when the playbook stays on the line for one (`voicemail = true`).
    #[serde(default = "defaults::voicemail_message")]
    pub voicemail_message: Option<String>,
    /// An https audio file played instead of `voicemail_message`.
    #[serde(default)]
    pub voicemail_audio_url: Option<String>,
    /// Record the conversation (both sides, from the moment the lead and the rep are
    /// connected). The recording's sid and duration are kept with the call; the audio stays
    /// with the carrier and is fetched on demand.
    #[serde(default)]
    pub record: bool,
    /// Said to the lead before anyone is connected on a recorded call, where the lead's state
    /// requires every party's consent (the rules file's `[recording]` table) or cannot be told.
    #[serde(default = "defaults::recording_notice")]
    pub recording_notice: String,
    /// Said to a lead who called one of the tenant's numbers, while the reps are rung (an
    /// inbound call, ADR 0050). `{name}` is the lead's name ("there" for an unknown caller).
    /// Absent: the caller hears ringing only.
    #[serde(default = "defaults::inbound_greeting")]
    pub inbound_greeting: Option<String>,
    /// Said to the rep who picks up an inbound call. `{name}`: the lead's name, or "an unknown
    /// caller".
    #[serde(default = "defaults::inbound_whisper")]
    pub inbound_whisper: String,
    /// Said to a caller nobody could take, before hanging up.
    #[serde(default = "defaults::inbound_unattended_message")]
    pub inbound_unattended_message: String,
    /// Texted to a known caller nobody could take (through the compliance gate, with the
    /// lead's sms consent). Absent: no text; the escalation still goes out.
    #[serde(default = "defaults::inbound_callback_sms")]
    pub inbound_callback_sms: Option<String>,
}

mod defaults {
    pub fn connecting_message() -> Option<String> {
        Some("Thanks for taking our call. Please hold while we connect you with our team.".into())
    }
    pub fn whisper() -> String {
        "New lead {name}. Connecting now.".into()
    }
    pub fn agent_whisper() -> String {
        "Call to lead {name}. Press 1 to connect.".into()
    }
    pub fn unattended_message() -> String {
        "Thanks for taking our call. Everyone on our team is busy right now; \
         someone will call you back shortly. Goodbye."
            .into()
    }
    pub fn callback_sms() -> Option<String> {
        Some(
            "Hi {name}, thanks for picking up. Someone from our team will call you back shortly."
                .into(),
        )
    }
    pub fn recording_notice() -> String {
        "This call is recorded for quality and training.".into()
    }
    pub fn inbound_greeting() -> Option<String> {
        Some("Thanks for calling. Please hold while we connect you with our team.".into())
    }
    pub fn inbound_whisper() -> String {
        "Incoming call from {name}. Connecting now.".into()
    }
    pub fn inbound_unattended_message() -> String {
        "Thanks for calling. Everyone on our team is busy right now; \
         someone will call you back shortly. Goodbye."
            .into()
    }
    pub fn inbound_callback_sms() -> Option<String> {
        Some(
            "Hi {name}, thanks for calling. Someone from our team will call you back shortly."
                .into(),
        )
    }
    pub fn voicemail_message() -> Option<String> {
        Some("Hi {name}, we tried to reach you about your request. Please call us back, or reply to our text.".into())
    }
}

impl Default for CallFlow {
    fn default() -> Self {
        Self {
            connect: ConnectMode::default(),
            connecting_message: defaults::connecting_message(),
            whisper: defaults::whisper(),
            agent_whisper: defaults::agent_whisper(),
            unattended_message: defaults::unattended_message(),
            callback_sms: defaults::callback_sms(),
            voicemail_message: defaults::voicemail_message(),
            voicemail_audio_url: None,
            record: false,
            recording_notice: defaults::recording_notice(),
            inbound_greeting: defaults::inbound_greeting(),
            inbound_whisper: defaults::inbound_whisper(),
            inbound_unattended_message: defaults::inbound_unattended_message(),
            inbound_callback_sms: defaults::inbound_callback_sms(),
        }
    }
}

/// `template` with `{name}` replaced; an empty name reads "there" ("Hi there,", not "Hi ,").
pub fn fill(template: &str, name: &str) -> String {
    let name = name.trim();
    let name = if name.is_empty() { "there" } else { name };
    template.replace("{name}", name)
}

impl CallFlow {
    /// The field that is wrong and why, if any.
    pub fn problem(&self) -> Option<(&'static str, &'static str)> {
        if self.whisper.trim().is_empty() {
            return Some(("call_flow.whisper", "must not be empty"));
        }
        if self.agent_whisper.trim().is_empty() {
            return Some(("call_flow.agent_whisper", "must not be empty"));
        }
        if self.record && self.recording_notice.trim().is_empty() {
            return Some((
                "call_flow.recording_notice",
                "must not be empty when record = true",
            ));
        }
        if self.unattended_message.trim().is_empty() {
            return Some(("call_flow.unattended_message", "must not be empty"));
        }
        if self.inbound_whisper.trim().is_empty() {
            return Some(("call_flow.inbound_whisper", "must not be empty"));
        }
        if self.inbound_unattended_message.trim().is_empty() {
            return Some(("call_flow.inbound_unattended_message", "must not be empty"));
        }
        if let Some(url) = &self.voicemail_audio_url {
            // Played by the carrier from the public internet: only an absolute https URL works.
            let ok = url.starts_with("https://")
                && url.len() > "https://".len()
                && !url.chars().any(|c| c.is_whitespace() || c.is_control());
            if !ok {
                return Some(("call_flow.voicemail_audio_url", "must be an https URL"));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_names_the_lead_or_says_there() {
        assert_eq!(fill("Hi {name}!", "Ana"), "Hi Ana!");
        assert_eq!(fill("Hi {name}!", "  "), "Hi there!");
    }

    #[test]
    fn problems_name_the_field() {
        let bad_url = CallFlow {
            voicemail_audio_url: Some("http://x/a.mp3".into()),
            ..CallFlow::default()
        };
        assert_eq!(
            bad_url.problem().unwrap().0,
            "call_flow.voicemail_audio_url"
        );
        let no_whisper = CallFlow {
            whisper: " ".into(),
            ..CallFlow::default()
        };
        assert_eq!(no_whisper.problem().unwrap().0, "call_flow.whisper");
        assert_eq!(CallFlow::default().problem(), None);
    }
}
