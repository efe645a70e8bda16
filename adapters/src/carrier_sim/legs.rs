//! `<Dial>` legs: placing one (its own CallSid, `ParentCallSid`, a fate drawn from the callee
//! answer mix), ending one the way Twilio reports it, plus the per-call flow log and the lookups
//! of per-number settings that flows need.

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::calls::{self, Call, CallState, Events};
use super::config::{CallOutcome, SimConfig};
use super::flow_config::{CalleeFate, CalleeMix};
use super::state::{is_e164, pick, rng_for, stretch, Scheduled, Shared, State};
use super::twiml::{DialNumber, Method, VerbKind};
use super::views::{CallDetail, DialView, DocumentView, FlowEnd};

/// What a call's TwiML did (see [`CallDetail`] for the meaning of each field).
#[derive(Debug, Default, Clone)]
pub(crate) struct FlowLog {
    pub documents: Vec<DocumentView>,
    pub verbs: Vec<VerbKind>,
    pub said: Vec<String>,
    pub digits: Vec<String>,
    pub sent_digits: Option<String>,
    pub children: Vec<String>,
    pub dials: Vec<DialView>,
    pub bridged_to: Option<String>,
    pub talk_secs: u64,
    pub end: Option<FlowEnd>,
}

/// The answer mix of `number`: set at run time, else configured for it, else the default.
pub(crate) fn callee_mix(state: &State, config: &SimConfig, number: &str) -> CalleeMix {
    state
        .callees
        .get(number)
        .or_else(|| config.flow.callees.get(number))
        .unwrap_or(&config.flow.callee)
        .clone()
}

/// What `number` presses at the `nth` (0-based) `<Gather>` of one leg; `None`: nothing.
pub(crate) fn digits_for(
    state: &State,
    config: &SimConfig,
    number: &str,
    nth: usize,
) -> Option<String> {
    state
        .digits
        .get(number)
        .or_else(|| config.flow.digits.get(number))
        .and_then(|list| list.get(nth))
        .filter(|d| !d.is_empty())
        .cloned()
}

/// `target` made absolute against the document it came from, as Twilio resolves relative
/// `action`/`url` attributes. `None` if that gives no http(s) URL (e.g. a relative URL in inline
/// TwiML, which has no address of its own).
pub(crate) fn resolve(base: Option<&str>, target: &str) -> Option<String> {
    let joined = match reqwest::Url::parse(target) {
        Ok(url) => url,
        Err(_) => reqwest::Url::parse(base?).ok()?.join(target).ok()?,
    };
    matches!(joined.scheme(), "http" | "https").then(|| joined.to_string())
}

/// A leg just placed, with the delays its fate was drawn with.
pub(crate) struct Placed {
    pub sid: String,
    pub to: String,
    pub fate: CalleeFate,
    /// `initiated` → `ringing`.
    pub ring_after: Duration,
    /// `ringing` → answered.
    pub answer_after: Duration,
    /// `initiated` → `busy` / `failed`.
    pub reject_after: Duration,
    pub talk: Duration,
    pub ended: watch::Receiver<bool>,
}

/// Registers a leg of `parent` to `number`, draws its fate and moves it to `initiated`. Returns
/// `None` if the parent is gone (it never is: calls are never removed).
pub(crate) fn place(
    shared: &Shared,
    parent_sid: &str,
    number: &DialNumber,
    caller_id: Option<&str>,
    status_callback: Option<String>,
) -> Option<(Placed, Scheduled)> {
    let config = &shared.config;
    let mut guard = shared.lock();
    let state = &mut *guard;
    let parent_from = state.calls.get(parent_sid)?.from.clone();
    let nth = state
        .legs_per_number
        .entry(number.number.clone())
        .or_insert(0);
    let mut rng = rng_for(config.seed, "leg", &number.number, *nth);
    *nth += 1;
    let mix = callee_mix(state, config, &number.number);
    let drawn = pick(&mut rng, &mix.weighted()).unwrap_or(CalleeFate::NoAnswer);
    // An unroutable number fails, as Twilio's 13224 does, whatever the mix says.
    let fate = if is_e164(&number.number) {
        drawn
    } else {
        CalleeFate::Failed
    };
    let t = &config.timing;
    let ring_after = stretch(&mut rng, t.initiated_ms, t.spread_pct);
    let answer_after = stretch(&mut rng, mix.ring_ms, t.spread_pct);
    let reject_after = match fate {
        CalleeFate::Busy => stretch(&mut rng, t.busy_ms, t.spread_pct),
        _ => stretch(&mut rng, t.failed_ms, t.spread_pct),
    };
    let talk = stretch(&mut rng, mix.talk_ms, t.spread_pct);
    let outcome = match fate {
        CalleeFate::Answer => CallOutcome::Human,
        CalleeFate::Busy => CallOutcome::Busy,
        CalleeFate::NoAnswer => CallOutcome::NoAnswer,
        CalleeFate::Failed => CallOutcome::Failed,
    };
    let mut events = Events::default();
    for word in &number.status_callback_events {
        // Twilio refuses unknown words when the document is validated; a simulator just skips.
        events.set(word);
    }
    let sid = state.new_sid("CA");
    let from = caller_id.map_or(parent_from, str::to_string);
    let mut leg = Call::leg(
        sid.clone(),
        parent_sid.to_string(),
        number.number.clone(),
        from,
        outcome,
        status_callback.map(|url| (url, number.status_callback_method)),
        events,
        rng,
    );
    let ended = leg.ended.subscribe();
    state.stats.dial_legs += 1;
    let jobs = calls::advance(
        &mut leg,
        CallState::Initiated,
        config,
        &mut state.stats,
        Instant::now(),
    );
    if let Some(parent) = state.calls.get_mut(parent_sid) {
        parent.log.children.push(sid.clone());
    }
    state.calls.insert(sid.clone(), leg);
    let placed = Placed {
        sid,
        to: number.number.clone(),
        fate,
        ring_after,
        answer_after,
        reject_after,
        talk,
        ended,
    };
    Some((placed, jobs))
}

/// Moves a call (a leg or a parent) to `to` now and schedules its callbacks.
pub(crate) fn set_status(shared: &Shared, sid: &str, to: CallState) {
    let jobs = {
        let mut guard = shared.lock();
        let state = &mut *guard;
        match state.calls.get_mut(sid) {
            Some(call) => {
                calls::advance(call, to, &shared.config, &mut state.stats, Instant::now())
            }
            None => Vec::new(),
        }
    };
    shared.schedule(jobs);
}

/// Ends a leg that lost, or whose parent went away, the way Twilio reports it: answered legs
/// `completed`, ringing ones `canceled`, ones not reached yet `no-answer`.
pub(crate) fn stop(shared: &Shared, sid: &str) {
    let status = shared.lock().calls.get(sid).map(|c| c.status);
    let to = match status {
        Some(CallState::InProgress) => CallState::Completed,
        Some(CallState::Ringing) => CallState::Canceled,
        Some(s) if !s.is_terminal() => CallState::NoAnswer,
        _ => return,
    };
    set_status(shared, sid, to);
}

/// The flow view of one call and its legs.
pub(crate) fn detail(state: &State, sid: &str) -> Option<CallDetail> {
    let call = state.calls.get(sid)?;
    let children = call
        .log
        .children
        .iter()
        .filter_map(|child| detail(state, child))
        .collect();
    let log = &call.log;
    Some(CallDetail {
        sid: call.sid.clone(),
        to: call.to.clone(),
        from: call.from.clone(),
        status: call.status.as_str().into(),
        direction: call.direction().into(),
        parent_call_sid: call.parent.clone(),
        answered_by: call.answered_by.map(str::to_string),
        duration_secs: call.duration_secs,
        documents: log.documents.clone(),
        verbs: log.verbs.clone(),
        said: log.said.clone(),
        digits: log.digits.clone(),
        sent_digits: log.sent_digits.clone(),
        dials: log.dials.clone(),
        bridged_to: log.bridged_to.clone(),
        talk_secs: log.talk_secs,
        flow_end: log.end,
        children,
        created_ms: call.created_ms(),
        answered_ms: call.answered_ms(),
        ended_ms: call.ended_ms(),
    })
}

/// Records a document in a call's log.
pub(crate) fn log_document(shared: &Shared, sid: &str, doc: DocumentView) {
    if let Some(call) = shared.lock().calls.get_mut(sid) {
        call.log.documents.push(doc);
    }
}

/// `GET`/`POST` as a view string.
pub(crate) fn method_name(method: Method) -> Option<String> {
    Some(method.as_str().to_string())
}

/// The digits a Gather collects from `keys`, and whether input was complete (`numDigits`
/// reached or a `finishOnKey` pressed) rather than left to time out. A finish key only counts
/// after at least one digit, and is not part of `Digits`.
pub(crate) fn take_digits(
    keys: &str,
    num_digits: Option<usize>,
    finish_on_key: &str,
) -> (String, bool) {
    let mut digits = String::new();
    for key in keys.chars() {
        if finish_on_key.contains(key) {
            if digits.is_empty() {
                continue;
            }
            return (digits, true);
        }
        digits.push(key);
        if num_digits.is_some_and(|n| digits.len() >= n) {
            return (digits, true);
        }
    }
    (digits, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_stop_at_num_digits_or_finish_key() {
        assert_eq!(take_digits("123", Some(1), "#"), ("1".into(), true));
        assert_eq!(take_digits("12#3", None, "#"), ("12".into(), true));
        assert_eq!(take_digits("#5", Some(2), "#"), ("5".into(), false));
        assert_eq!(take_digits("42", None, ""), ("42".into(), false));
    }
}
