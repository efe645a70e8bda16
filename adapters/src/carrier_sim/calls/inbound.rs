//! Inbound calls: a lead calls one of the account's numbers (`POST /sim/inbound-calls`).

use serde_json::Value;
use tokio::time::Instant;

use super::{advance, Call, CallState};
use crate::carrier_sim::call_request::FlowSource;
use crate::carrier_sim::config::{CallOutcome, SimConfig};
use crate::carrier_sim::state::{rng_for, Scheduled, State};
use crate::carrier_sim::twiml::Method;

/// A lead calls `to` (a number of the account) from `from`: the call rings, the number's voice
/// URL `url` is asked for TwiML at once (signed, `Direction=inbound`) and the flow runs it, as
/// Twilio does for an incoming call. Counted in `inbound_calls`, not in `calls` (our creates).
pub(crate) fn inbound(
    state: &mut State,
    config: &SimConfig,
    from: String,
    to: String,
    url: String,
    now: Instant,
) -> (Value, Scheduled) {
    let nth = state.stats.inbound_calls;
    state.stats.inbound_calls += 1;
    let rng = rng_for(config.seed, "inbound", &to, nth);
    let sid = state.new_sid("CA");
    let mut call = Call {
        inbound: true,
        flow: Some(FlowSource::Url {
            url,
            method: Method::Post,
        }),
        ..Call::new(
            sid.clone(),
            to,
            from,
            CallState::Ringing,
            CallOutcome::Human,
            rng,
        )
    };
    let jobs = advance(
        &mut call,
        CallState::InProgress,
        config,
        &mut state.stats,
        now,
    );
    let json = call.resource(&config.account_sid);
    state.calls.insert(sid.clone(), call);
    state.call_order.push(sid);
    (json, jobs)
}
