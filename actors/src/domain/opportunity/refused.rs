//! A text the carrier refused (`OppInput::SmsRefused`): nothing was sent, so the timeline
//! says so, and a refused opt-out confirmation is not counted as the one confirmation owed.

use serde_json::json;

use super::Step;
use crate::domain::compliance::Purpose;
use crate::domain::timeline::{Cause, TimelineKind};

impl Step<'_> {
    pub(super) fn sms_refused(&mut self, purpose: Purpose, code: Option<u32>, reason: String) {
        let what = match code {
            Some(21610) => "the carrier refused the sms: the lead unsubscribed at the carrier",
            _ => "the carrier refused the sms",
        };
        let text = match code {
            Some(code) => format!("{what} ({purpose}, error {code})"),
            None => format!("{what} ({purpose})"),
        };
        let data = json!({ "status": "refused", "purpose": purpose, "code": code,
            "reason": reason });
        self.event(TimelineKind::MessageStatus, Cause::Channel, text, data);
        if purpose == Purpose::OptOutConfirmation {
            // Not sent: the gate may allow it again (the next STOP asks for it).
            self.opp.opt_out_confirmed = false;
        }
    }
}
