//! Hanging up a call that must stop, and telling the opportunity when a call it was told was
//! answered has ended.
//!
//! The opportunity asks (`CallInput::HangUp`) when its lead opts out, its number goes on the
//! do-not-call list, it closes, or an operator pauses it with hang-up. A call with a provider
//! sid hangs up at once (`Status=completed` ends the lead's leg and every rep leg dialled from
//! it); a call whose dial is still in flight records the hang-up as owed and sends it as soon
//! as the provider names the call (`Dialed` or a callback carrying the sid). A terminal call
//! ignores the request. The provider's own terminal callback then ends the call as usual.

use serde_json::json;

use super::progress::Step;
use super::{CallEffect, CallStatus, HangUpAsked};
use crate::domain::opportunity::CallResult;
use crate::domain::timeline::{Cause, TimelineEvent, TimelineKind};

impl Step<'_> {
    pub(super) fn hang_up(&mut self, reason: String) {
        if self.call.status.is_terminal() || self.call.hang_up.is_some() {
            return; // nothing live, or asked already
        }
        let sid = self.call.provider_sid.clone();
        self.call.hang_up = Some(HangUpAsked {
            reason: reason.clone(),
            sent: sid.is_some(),
        });
        let status = self.call.status;
        let text = match &sid {
            Some(_) => format!("hanging up the call ({status}): {reason}"),
            None => format!(
                "hang-up owed ({reason}): the dial is in flight, so the call is hung up as soon \
                 as the provider names it"
            ),
        };
        let data = json!({ "reason": reason, "status": status, "provider_sid": sid,
            "sent": sid.is_some() });
        self.hang_up_event(text, data);
        if let Some(provider_sid) = sid {
            self.effects.push(CallEffect::Hangup { provider_sid });
        }
    }

    /// Sends a hang-up that was asked before the provider's sid was known.
    pub(super) fn send_owed_hang_up(&mut self) {
        let Some(sid) = self.call.provider_sid.clone() else {
            return;
        };
        let Some(asked) = self.call.hang_up.as_mut().filter(|h| !h.sent) else {
            return;
        };
        asked.sent = true;
        let reason = asked.reason.clone();
        let text = format!("hanging up the call now that the provider named it: {reason}");
        let data = json!({ "reason": reason, "status": self.call.status, "provider_sid": sid,
            "sent": true });
        self.hang_up_event(text, data);
        self.effects.push(CallEffect::Hangup { provider_sid: sid });
    }

    /// A callback says the provider's call is still going although we closed it locally (the
    /// ring timeout or the watchdog ended it before any callback named it, so nothing could be
    /// hung up then). The sid is recorded and the leg hung up, once; the call stays closed.
    pub(super) fn late_live_callback(&mut self, status: CallStatus, sid: Option<String>) {
        if self.call.provider_sid.is_some() {
            return; // it was hung up when it closed, or when `Dialed` named it
        }
        let Some(sid) = sid.filter(|s| !s.trim().is_empty()) else {
            return;
        };
        self.call.provider_sid = Some(sid.clone());
        let closed = self.call.status;
        let reason =
            format!("the provider reports the call {status} after it was closed as {closed}");
        self.call.hang_up = Some(HangUpAsked {
            reason: reason.clone(),
            sent: true,
        });
        let text = format!("hanging up: {reason}");
        let data = json!({ "reason": reason, "status": closed, "provider_status": status,
            "provider_sid": sid, "sent": true });
        self.hang_up_event(text, data);
        self.effects.push(CallEffect::Hangup { provider_sid: sid });
    }

    /// Reports the outcome of a call that just became terminal. A call already reported
    /// answered (at the answer, before it ended), or answered only now, also tells the
    /// opportunity it ended: until then the opportunity keeps it as its live call.
    pub(super) fn report_end(&mut self, result: CallResult) {
        let reported_before = self.call.reported;
        self.report(result);
        if reported_before || result == CallResult::Answered {
            self.effects.push(CallEffect::Ended {
                opportunity_id: self.call.opportunity_id,
            });
        }
    }

    fn hang_up_event(&mut self, text: String, data: serde_json::Value) {
        self.timeline.push(TimelineEvent::new(
            TimelineKind::HangUp,
            Cause::System,
            text,
            data,
        ));
    }
}
