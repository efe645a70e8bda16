//! Click to call: a rep calls the lead now, agent first. The same compliance gate as every
//! cadence call decides; a call the gate would defer is refused with its reason rather than
//! queued, because the rep asked for now, not for later.

use super::{validate_e164, Rejection, Step};
use crate::domain::call::Agent;
use crate::domain::compliance::{Channel, Decision, Purpose};
use crate::domain::timeline::Cause;

impl Step<'_> {
    pub(super) fn call_now(&mut self, agent: Agent, by: String) -> Result<(), Rejection> {
        const ACTION: &str = "calling the lead";
        if agent.rep.trim().is_empty() {
            return Err(Rejection::InvalidField {
                field: "rep",
                reason: "must not be empty".to_owned(),
            });
        }
        validate_e164(&agent.phone).map_err(|e| Rejection::InvalidField {
            field: "rep.phone",
            reason: e.to_string(),
        })?;
        self.open_for(ACTION)?;
        if let Some(call_id) =
            self.opp
                .active_call
                .or(self.opp.live_call.as_ref().map(|l| l.call_id))
        {
            return Err(Rejection::CallLive { call_id });
        }
        match self.gate(Channel::Voice, Purpose::Marketing) {
            Decision::Allow => {
                self.place_call_with(Some(agent), Cause::Operator(by));
                Ok(())
            }
            refused => Err(Rejection::CallRefused {
                reason: refused.describe(),
            }),
        }
    }
}
