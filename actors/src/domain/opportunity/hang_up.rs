//! Hanging up what must stop: the opportunity's live call (`Opportunity::live_call`), ringing
//! or bridged, when the lead opts out, the number goes on the do-not-call list, the
//! opportunity closes, or an operator pauses it with hang-up.
//!
//! Why a second field beside `active_call`: `active_call` is the cadence's call, cleared as
//! soon as the call reports `answered` (the lead picked up, before any rep does), so it no
//! longer names a call that is still bridged to a rep. `live_call` is kept until the call
//! reports its end: a missed outcome (reported at the call's terminal status), or
//! `CallEnded`, which the call sends when it ends after reporting an answer. The call actor
//! decides what a hang-up means for its state (at once with a provider sid, owed until the
//! dial returns one, ignored once terminal); the opportunity asks once per call.

use serde_json::json;
use uuid::Uuid;

use super::{OppEffect, OppTimer, Step};
use crate::domain::compliance::Channel;
use crate::domain::timeline::{Cause, TimelineKind};

impl Step<'_> {
    /// Asks the live call, if any, to hang up; once per call.
    pub(super) fn hang_up_live_call(&mut self, cause: Cause, reason: String) {
        let Some(live) = self.opp.live_call.as_mut().filter(|l| !l.hang_up_asked) else {
            return;
        };
        live.hang_up_asked = true;
        let call_id = live.call_id;
        let text = format!("hanging up the call: {reason}");
        let data = json!({ "call_id": call_id, "reason": reason });
        self.event(TimelineKind::HangUp, cause, text, data);
        self.effects.push(OppEffect::HangUpCall { call_id, reason });
    }

    /// The lead called in: that call is the one to hang up from now on, unless the cadence's own
    /// call is still live (a lead calling back while being dialled: the dial is what the
    /// opportunity owns and tracks to its end; the inbound call ends with its flow).
    pub(super) fn inbound_live(&mut self, call_id: Uuid) {
        if self.opp.live_call.is_none() {
            self.opp.live_call = Some(super::LiveCall {
                call_id,
                hang_up_asked: false,
            });
        }
    }

    /// The call reported its end: nothing of it is live any more.
    pub(super) fn call_ended(&mut self, call_id: Uuid) {
        if self
            .opp
            .live_call
            .as_ref()
            .is_some_and(|l| l.call_id == call_id)
        {
            self.opp.live_call = None;
        }
    }

    /// The number went on the tenant's do-not-call list. The dispatcher refuses every later
    /// dial and marketing text to it; recording both channels here stops the cadence now
    /// rather than at the next refused effect (an operator moving the opportunity back to
    /// contacting clears them, and the dispatcher checks the list again). The call in progress
    /// is hung up and forgotten by the cadence, so its end is no missed call.
    pub(super) fn number_on_dnc(&mut self, by: String) {
        let new: Vec<Channel> = [Channel::Voice, Channel::Sms]
            .into_iter()
            .filter(|c| !self.opp.dnc_channels.contains(c))
            .collect();
        let live = self
            .opp
            .live_call
            .as_ref()
            .is_some_and(|l| !l.hang_up_asked);
        if new.is_empty() && !live {
            return; // a repeated entry changes nothing
        }
        if !new.is_empty() {
            self.opp.dnc_channels.extend(new.iter().copied());
            let text = format!("{by} put the number on the do-not-call list");
            let data = json!({ "channels": new, "decision": "deny", "source": "dnc_list",
                "by": by });
            self.event(
                TimelineKind::ComplianceBlocked,
                Cause::Operator(by.clone()),
                text,
                data,
            );
            self.opp.active_call = None;
            self.clear(OppTimer::RetryCall);
            self.clear(OppTimer::SendSms);
        }
        let text = "the number was put on the do-not-call list".to_owned();
        self.hang_up_live_call(Cause::Operator(by), text);
    }
}
