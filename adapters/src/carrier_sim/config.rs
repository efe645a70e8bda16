//! Simulator configuration. Every struct has defaults and reads from TOML or JSON with
//! `#[serde(default)]`, so a config file only names what it changes; unknown keys are refused so
//! a typo does not silently fall back to a default.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use super::faults::RestFaults;
pub use super::flow_config::FlowConfig;
pub use super::lookup::LookupConfig;

/// What happens to an outbound call, before any hangup request changes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CallOutcome {
    /// A person answers (`AnsweredBy=human` with machine detection).
    Human,
    /// Voicemail answers (`AnsweredBy=machine_end_beep` with `DetectMessageEnd`,
    /// `machine_start` with `Enable`); the call still ends `completed`.
    Voicemail,
    /// Rings until the ring timeout, ends `no-answer`.
    NoAnswer,
    Busy,
    Failed,
}

impl CallOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Human => "human",
            Self::Voicemail => "voicemail",
            Self::NoAnswer => "no-answer",
            Self::Busy => "busy",
            Self::Failed => "failed",
        }
    }
}

/// Top-level configuration; see the field docs for defaults.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimConfig {
    /// Basic-auth user and the account in every path. Default `ACfeedface…` (34 chars).
    pub account_sid: String,
    /// Basic-auth password and the HMAC key of every webhook signature. Default `sim-auth-token`.
    pub auth_token: String,
    pub outcome_mix: OutcomeMix,
    pub message_mix: MessageMix,
    pub timing: Timing,
    pub reply_mix: ReplyMix,
    pub disorder: Disorder,
    pub delivery: Delivery,
    /// Seeds every per-call and per-message random choice. Default 1.
    pub seed: u64,
    /// Where lead replies to our texts are POSTed (signed against this exact URL). None: leads
    /// never reply.
    pub inbound_sms_url: Option<String>,
    /// E.164 prefix of the numbers this carrier reaches (its "geo permissions"): a `To` outside
    /// it is refused (21215 for calls, 21408 for messages). Default `+` (everywhere).
    pub lead_numbers_from: String,
    /// Forced outcome per `To` number, overriding `outcome_mix` (e.g. a demo lead who is always
    /// busy). Default empty.
    pub number_outcomes: BTreeMap<String, CallOutcome>,
    /// What Lookup v2 answers (line type per number, default mobile) and its drills.
    pub lookup: LookupConfig,
    /// Creates that fail on purpose (429, 503, 500, an answer cut off). Default none.
    pub rest_faults: RestFaults,
    /// TwiML execution: verb durations, how dialled numbers answer, digits pressed.
    pub flow: FlowConfig,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            account_sid: "ACfeedfacefeedfacefeedfacefeedface".into(),
            auth_token: "sim-auth-token".into(),
            outcome_mix: OutcomeMix::default(),
            message_mix: MessageMix::default(),
            timing: Timing::default(),
            reply_mix: ReplyMix::default(),
            disorder: Disorder::default(),
            delivery: Delivery::default(),
            seed: 1,
            inbound_sms_url: None,
            lead_numbers_from: "+".into(),
            number_outcomes: BTreeMap::new(),
            lookup: LookupConfig::default(),
            rest_faults: RestFaults::default(),
            flow: FlowConfig::default(),
        }
    }
}

// The token is a secret even in a simulator config: keep it out of `{:?}`.
impl fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimConfig")
            .field("account_sid", &self.account_sid)
            .field("auth_token", &"<redacted>")
            .field("outcome_mix", &self.outcome_mix)
            .field("message_mix", &self.message_mix)
            .field("timing", &self.timing)
            .field("reply_mix", &self.reply_mix)
            .field("disorder", &self.disorder)
            .field("delivery", &self.delivery)
            .field("seed", &self.seed)
            .field("inbound_sms_url", &self.inbound_sms_url)
            .field("lead_numbers_from", &self.lead_numbers_from)
            .field("number_outcomes", &self.number_outcomes)
            .field("lookup", &self.lookup)
            .field("rest_faults", &self.rest_faults)
            .field("flow", &self.flow)
            .finish()
    }
}

/// Relative weights of call outcomes (need not sum to anything; at least one must be > 0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutcomeMix {
    /// Default 50.
    pub answered: u32,
    /// Default 20.
    pub voicemail: u32,
    /// Default 20.
    pub no_answer: u32,
    /// Default 5.
    pub busy: u32,
    /// Default 5.
    pub failed: u32,
}

impl Default for OutcomeMix {
    fn default() -> Self {
        Self {
            answered: 50,
            voicemail: 20,
            no_answer: 20,
            busy: 5,
            failed: 5,
        }
    }
}

impl OutcomeMix {
    /// Every call gets `outcome`.
    pub fn all(outcome: CallOutcome) -> Self {
        let mut mix = Self {
            answered: 0,
            voicemail: 0,
            no_answer: 0,
            busy: 0,
            failed: 0,
        };
        match outcome {
            CallOutcome::Human => mix.answered = 1,
            CallOutcome::Voicemail => mix.voicemail = 1,
            CallOutcome::NoAnswer => mix.no_answer = 1,
            CallOutcome::Busy => mix.busy = 1,
            CallOutcome::Failed => mix.failed = 1,
        }
        mix
    }

    pub(crate) fn weighted(&self) -> [(CallOutcome, u32); 5] {
        [
            (CallOutcome::Human, self.answered),
            (CallOutcome::Voicemail, self.voicemail),
            (CallOutcome::NoAnswer, self.no_answer),
            (CallOutcome::Busy, self.busy),
            (CallOutcome::Failed, self.failed),
        ]
    }
}

/// Relative weights of outbound SMS fates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MessageMix {
    /// queued → sent → delivered. Default 95.
    pub delivered: u32,
    /// queued → sent → undelivered (ErrorCode 30003). Default 3.
    pub undelivered: u32,
    /// queued → failed (ErrorCode 30008). Default 2.
    pub failed: u32,
}

impl Default for MessageMix {
    fn default() -> Self {
        Self {
            delivered: 95,
            undelivered: 3,
            failed: 2,
        }
    }
}

/// Delays in milliseconds. Each delay is stretched by a random factor in
/// `[1 - spread, 1 + spread]` (`spread_pct` / 100) from the per-call generator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Timing {
    /// Create → `initiated`. Default 50.
    pub initiated_ms: u64,
    /// `initiated` → `ringing`. Default 500.
    pub ring_ms: u64,
    /// `ringing` → answered (`in-progress`). Default 2000. If this reaches the ring timeout the
    /// call ends `no-answer` instead.
    pub answer_ms: u64,
    /// Answered by a person → `completed` (the `CallDuration`). Default 8000.
    pub talk_ms: u64,
    /// Answered by voicemail → `completed`. Default 4000.
    pub voicemail_ms: u64,
    /// `ringing` → `no-answer`, capped by the request's `Timeout`. Default 6000.
    pub no_answer_ms: u64,
    /// `initiated` → `busy`. Default 300.
    pub busy_ms: u64,
    /// `initiated` → `failed`. Default 100.
    pub failed_ms: u64,
    /// Extra random delay of each webhook delivery, uniform in `0..=callback_jitter_ms`.
    /// Default 20.
    pub callback_jitter_ms: u64,
    /// Random stretch of every delay above, in percent. Default 20.
    pub spread_pct: u32,
    /// Message create → `sent`. Default 100.
    pub sms_sent_ms: u64,
    /// `sent` → `delivered` / `undelivered`. Default 400.
    pub sms_delivered_ms: u64,
    /// `delivered` → the lead's reply. Default 1500.
    pub reply_ms: u64,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            initiated_ms: 50,
            ring_ms: 500,
            answer_ms: 2000,
            talk_ms: 8000,
            voicemail_ms: 4000,
            no_answer_ms: 6000,
            busy_ms: 300,
            failed_ms: 100,
            callback_jitter_ms: 20,
            spread_pct: 20,
            sms_sent_ms: 100,
            sms_delivered_ms: 400,
            reply_ms: 1500,
        }
    }
}

impl Timing {
    /// Short, exact timings for tests: every step a few tens of ms, no spread, no jitter.
    pub fn fast() -> Self {
        Self {
            initiated_ms: 5,
            ring_ms: 20,
            answer_ms: 20,
            talk_ms: 30,
            voicemail_ms: 20,
            no_answer_ms: 40,
            busy_ms: 20,
            failed_ms: 10,
            callback_jitter_ms: 0,
            spread_pct: 0,
            sms_sent_ms: 10,
            sms_delivered_ms: 20,
            reply_ms: 20,
        }
    }
}

/// How leads answer our texts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReplyMix {
    /// Chance (0..=1) that a delivered text gets a reply. Default 0.3.
    pub probability: f64,
    /// Weight of `YES`. Default 5.
    pub yes: u32,
    /// Weight of `STOP`. Default 1.
    pub stop: u32,
    /// Weight of `HELP`. Default 1.
    pub help: u32,
    /// Weight of a free-text reply. Default 3.
    pub free_text: u32,
    /// Free-text bodies, one picked uniformly. Default `["Sounds good, call me tomorrow"]`.
    pub free_text_bodies: Vec<String>,
}

impl Default for ReplyMix {
    fn default() -> Self {
        Self {
            probability: 0.3,
            yes: 5,
            stop: 1,
            help: 1,
            free_text: 3,
            free_text_bodies: vec!["Sounds good, call me tomorrow".into()],
        }
    }
}

/// Deliberate webhook misbehaviour, as real carriers do now and then.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Disorder {
    /// Chance (0..=1) that a non-final webhook is held back and sent right after the next one
    /// for the same call or message. Default 0.
    pub swap_probability: f64,
    /// Chance (0..=1) that a webhook is sent twice (same parameters, same signature). Default 0.
    pub duplicate_probability: f64,
}

/// Webhook delivery: Twilio retries a callback that failed (non-2xx or connection error).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Delivery {
    /// Extra attempts after the first. Default 3.
    pub max_retries: u32,
    /// Wait before retry n (1-based) is `backoff_ms * 2^(n-1)`. Default 100.
    pub backoff_ms: u64,
    /// Per-attempt deadline. Default 5000.
    pub timeout_ms: u64,
}

impl Default for Delivery {
    fn default() -> Self {
        Self {
            max_retries: 3,
            backoff_ms: 100,
            timeout_ms: 5000,
        }
    }
}

pub(crate) fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

impl SimConfig {
    /// Checks what serde cannot: weights, probabilities, URLs, credentials.
    pub fn validate(&self) -> Result<(), String> {
        let sid_ok = self.account_sid.len() >= 3
            && self.account_sid.len() <= 64
            && self.account_sid.starts_with("AC")
            && self.account_sid.bytes().all(|b| b.is_ascii_alphanumeric());
        if !sid_ok {
            return Err(format!(
                "account_sid {:?} must be AC followed by letters/digits",
                self.account_sid
            ));
        }
        if self.auth_token.is_empty() {
            return Err("auth_token must not be empty".into());
        }
        if self.outcome_mix.weighted().iter().all(|(_, w)| *w == 0) {
            return Err("outcome_mix: every weight is 0".into());
        }
        let m = &self.message_mix;
        if m.delivered == 0 && m.undelivered == 0 && m.failed == 0 {
            return Err("message_mix: every weight is 0".into());
        }
        let r = &self.reply_mix;
        for (name, p) in [
            ("reply_mix.probability", r.probability),
            ("disorder.swap_probability", self.disorder.swap_probability),
            (
                "disorder.duplicate_probability",
                self.disorder.duplicate_probability,
            ),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(format!("{name} must be within 0..=1, got {p}"));
            }
        }
        if r.probability > 0.0 && r.yes == 0 && r.stop == 0 && r.help == 0 && r.free_text == 0 {
            return Err("reply_mix: every weight is 0".into());
        }
        if r.free_text > 0 && r.free_text_bodies.is_empty() {
            return Err("reply_mix.free_text_bodies is empty but free_text weight > 0".into());
        }
        if self.timing.spread_pct > 90 {
            return Err("timing.spread_pct must be at most 90".into());
        }
        if let Some(url) = &self.inbound_sms_url {
            if !is_http_url(url) {
                return Err(format!("inbound_sms_url {url:?} is not an http(s) url"));
            }
        }
        if !self.lead_numbers_from.starts_with('+') {
            return Err("lead_numbers_from must start with '+'".into());
        }
        self.rest_faults.validate()?;
        self.flow.validate()?;
        self.lookup.validate()
    }
}

pub(crate) fn is_http_url(url: &str) -> bool {
    reqwest::Url::parse(url)
        .map(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_json_keeps_defaults() {
        let cfg: SimConfig = serde_json::from_str(
            r#"{"seed": 7, "outcome_mix": {"busy": 100}, "timing": {"ring_ms": 5}}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cfg.seed, 7);
        assert_eq!(cfg.outcome_mix.busy, 100);
        assert_eq!(cfg.outcome_mix.answered, 50);
        assert_eq!(cfg.timing.ring_ms, 5);
        assert_eq!(cfg.timing.talk_ms, 8000);
        assert!(cfg.validate().is_ok());
        assert!(serde_json::from_str::<SimConfig>(r#"{"sede": 7}"#).is_err());
        assert!(!format!("{cfg:?}").contains("sim-auth-token"));
    }

    #[test]
    fn validation_catches_nonsense() {
        let mut cfg = SimConfig {
            outcome_mix: OutcomeMix::all(CallOutcome::Human),
            ..SimConfig::default()
        };
        assert!(cfg.validate().is_ok());
        cfg.outcome_mix.answered = 0;
        assert!(cfg.validate().is_err());
        let cfg = SimConfig {
            disorder: Disorder {
                swap_probability: 1.5,
                duplicate_probability: 0.0,
            },
            ..SimConfig::default()
        };
        assert!(cfg.validate().is_err());
        let cfg = SimConfig {
            inbound_sms_url: Some("ftp://x".into()),
            ..SimConfig::default()
        };
        assert!(cfg.validate().is_err());
    }
}
