//! The contact's line type, as the carrier's lookup told it. Numbering-plan metadata cannot
//! tell a US mobile from a landline (they share area codes and exchanges), so the type is only
//! ever learned from the carrier, through an input: the dispatcher looks it up before the first
//! marketing text, when the tenant enabled it, and reports it (`OppInput::LineTypeFound`).
//!
//! A landline cannot receive texts (Twilio 21614 / 30006): once the type is known to be one,
//! marketing texts are skipped with a timeline reason and the cadence goes on by voice.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{OppTimer, Step};
use crate::domain::timeline::{Cause, TimelineKind};

named_enum! {
    /// Line Type Intelligence's types, in this API's spelling.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    pub enum LineType {
        Mobile = "mobile",
        Landline = "landline",
        FixedVoip = "fixed_voip",
        NonFixedVoip = "non_fixed_voip",
        Personal = "personal",
        TollFree = "toll_free",
        Premium = "premium",
        SharedCost = "shared_cost",
        Uan = "uan",
        Voicemail = "voicemail",
        Pager = "pager",
        /// The carrier had no answer, or the lookup failed: texts go out as before.
        Unknown = "unknown",
    }
}

impl LineType {
    /// Whether a marketing text may be sent to a line of this type. Only a landline is known
    /// not to take texts; every other type (unknown included) is texted as before a lookup.
    pub fn takes_texts(self) -> bool {
        self != LineType::Landline
    }
}

/// What the dispatcher learned of the line, as `OppInput::LineTypeFound` carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineFound {
    pub line_type: LineType,
    #[serde(default)]
    pub carrier: Option<String>,
    /// The lookup failed (the type is then `Unknown`): why, without secrets.
    #[serde(default)]
    pub lookup_error: Option<String>,
    /// The text whose dispatch asked for the lookup was not sent (the line takes no texts).
    #[serde(default)]
    pub text_withheld: bool,
}

impl Step<'_> {
    /// Records the line type; a line that takes no texts drops any deferred text, and a text
    /// the dispatcher withheld is explained. Reporting a type already known changes nothing.
    pub(super) fn line_type_found(&mut self, found: LineFound) {
        let t = found.line_type;
        let changed = self.opp.line_type != Some(t);
        self.opp.line_type = Some(t);
        let data = json!({ "line_type": t, "carrier": found.carrier,
            "lookup_error": found.lookup_error, "source": "carrier_lookup" });
        if let Some(error) = &found.lookup_error {
            if changed {
                let text = format!(
                    "line type lookup failed ({error}); treated as unknown, texts go out as before"
                );
                self.event(TimelineKind::LineType, Cause::Channel, text, data);
            }
        } else if changed {
            let carrier = found
                .carrier
                .as_deref()
                .map(|c| format!(" ({c})"))
                .unwrap_or_default();
            let text = format!("the carrier's lookup says the number is {t}{carrier}");
            self.event(TimelineKind::LineType, Cause::Channel, text, data);
        }
        if t.takes_texts() {
            return;
        }
        if self.opp.pending_sms.is_some() {
            self.clear(OppTimer::SendSms);
        }
        if found.text_withheld {
            self.sms_skipped(t, "the text was not sent");
        }
    }

    /// A marketing text is not sent because the line takes none; voice goes on.
    pub(super) fn sms_skipped(&mut self, t: LineType, what: &str) {
        let text =
            format!("{what}: the number is a {t}, which takes no texts; contact goes on by voice");
        let data = json!({ "channel": "sms", "line_type": t });
        self.event(TimelineKind::SmsSkipped, Cause::System, text, data);
    }
}
