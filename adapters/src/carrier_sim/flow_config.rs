//! Configuration of TwiML execution: how long verbs take, how dialled numbers (`<Dial><Number>`)
//! answer, and which digits each number presses at a `<Gather>`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How the simulator plays TwiML. Every field has a default; see the field docs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FlowConfig {
    /// Simulated milliseconds per TwiML second: `<Pause length>`, `<Gather timeout>`,
    /// `<Record maxLength>`, `<Dial timeout>` and `<Dial timeLimit>` are in seconds and run this
    /// much faster or slower than real time. Default 100 (ten times real speed, like the rest of
    /// the simulator's compressed timeline).
    pub second_ms: u64,
    /// Time one `<Say>` takes per loop. Default 5.
    pub say_ms: u64,
    /// Time one `<Play>` takes per loop. Default 5.
    pub play_ms: u64,
    /// Seconds a `<Record>` records (capped by its `maxLength`); reported as `RecordingDuration`.
    /// Default 3.
    pub record_secs: u64,
    /// How a dialled number answers when `callees` has no entry for it.
    pub callee: CalleeMix,
    /// Per dialled number (E.164) answer mix, overriding `callee`. Default empty. Tests can also
    /// set one at run time: `PUT /sim/callees/{number}` or [`super::SimHandle::set_callee`].
    pub callees: BTreeMap<String, CalleeMix>,
    /// Digits a number presses, per `<Gather>` on one of its legs: the n-th `<Gather>` executed on
    /// a leg to that number gets the n-th entry; `""` or no entry means nothing is pressed (the
    /// Gather times out and falls through). Applies to the lead (the call's `To`) and to dialled
    /// numbers alike. Default empty: nobody presses anything. Also `PUT /sim/digits/{number}`.
    pub digits: BTreeMap<String, Vec<String>>,
    /// Who hangs up when a bridged conversation's talk time is over. Default the lead.
    pub bridge_hangup: HangupSide,
    /// TwiML documents one leg may run (fetches, redirects, actions) before the simulator gives up
    /// on it as a loop and ends it as an application error. Default 25.
    pub max_documents: u32,
}

impl Default for FlowConfig {
    fn default() -> Self {
        Self {
            second_ms: 100,
            say_ms: 5,
            play_ms: 5,
            record_secs: 3,
            callee: CalleeMix::default(),
            callees: BTreeMap::new(),
            digits: BTreeMap::new(),
            bridge_hangup: HangupSide::Lead,
            max_documents: 25,
        }
    }
}

impl FlowConfig {
    /// Short timings for tests: a TwiML second is 10 ms, speech 1 ms, callees answer after 20 ms
    /// and talk 50 ms.
    pub fn fast() -> Self {
        Self {
            second_ms: 10,
            say_ms: 1,
            play_ms: 1,
            callee: CalleeMix {
                ring_ms: 20,
                talk_ms: 50,
                ..CalleeMix::default()
            },
            ..Self::default()
        }
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        self.callee.validate("flow.callee")?;
        for (number, mix) in &self.callees {
            mix.validate(&format!("flow.callees[{number}]"))?;
        }
        for (number, digits) in &self.digits {
            for d in digits {
                if !valid_digits(d) {
                    return Err(format!("flow.digits[{number}]: {d:?} is not 0-9, * or #"));
                }
            }
        }
        if self.max_documents == 0 {
            return Err("flow.max_documents must be at least 1".into());
        }
        Ok(())
    }
}

/// DTMF keys a caller can press.
pub(crate) fn valid_digits(digits: &str) -> bool {
    digits
        .bytes()
        .all(|b| b.is_ascii_digit() || b == b'*' || b == b'#')
}

/// How a number dialled by `<Dial>` answers: relative weights of the four fates (at least one
/// must be > 0), and its delays. Delays are stretched by `timing.spread_pct` like the others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CalleeMix {
    /// Default 90.
    pub answer: u32,
    /// Default 4.
    pub busy: u32,
    /// Rings until the Dial's `timeout`. Default 4.
    pub no_answer: u32,
    /// Default 2.
    pub failed: u32,
    /// `ringing` → answered. Default 200. At or past the Dial's `timeout` the leg is `no-answer`.
    pub ring_ms: u64,
    /// Length of a bridged conversation (capped by the Dial's `timeLimit`). Default 2000.
    pub talk_ms: u64,
}

impl Default for CalleeMix {
    fn default() -> Self {
        Self {
            answer: 90,
            busy: 4,
            no_answer: 4,
            failed: 2,
            ring_ms: 200,
            talk_ms: 2000,
        }
    }
}

/// The fate of one dialled leg, drawn from a [`CalleeMix`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CalleeFate {
    Answer,
    Busy,
    NoAnswer,
    Failed,
}

impl CalleeMix {
    /// Every leg answers (after the default `ring_ms`, talking the default `talk_ms`).
    pub fn always_answer() -> Self {
        Self::only(1, 0, 0, 0)
    }

    /// Every leg is busy.
    pub fn always_busy() -> Self {
        Self::only(0, 1, 0, 0)
    }

    /// Every leg rings until the Dial's `timeout`: `no-answer`.
    pub fn never_answer() -> Self {
        Self::only(0, 0, 1, 0)
    }

    /// Every leg fails (unroutable).
    pub fn always_fail() -> Self {
        Self::only(0, 0, 0, 1)
    }

    fn only(answer: u32, busy: u32, no_answer: u32, failed: u32) -> Self {
        Self {
            answer,
            busy,
            no_answer,
            failed,
            ..Self::default()
        }
    }

    pub(crate) fn weighted(&self) -> [(CalleeFate, u32); 4] {
        [
            (CalleeFate::Answer, self.answer),
            (CalleeFate::Busy, self.busy),
            (CalleeFate::NoAnswer, self.no_answer),
            (CalleeFate::Failed, self.failed),
        ]
    }

    pub(crate) fn validate(&self, name: &str) -> Result<(), String> {
        if self.weighted().iter().all(|(_, w)| *w == 0) {
            return Err(format!("{name}: every weight is 0"));
        }
        Ok(())
    }
}

/// Which party ends a bridged conversation when its talk time is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HangupSide {
    /// The lead (the parent call) hangs up: both legs complete; the Dial `action` is still
    /// requested, as Twilio does, and its answer ignored.
    Lead,
    /// The dialled party hangs up: the child completes, the parent goes on with the Dial
    /// `action`'s answer (or the next verb).
    Callee,
}
