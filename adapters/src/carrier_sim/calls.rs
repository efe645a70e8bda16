//! Outbound calls: validating a create, drawing the outcome, the timed status plan, and the
//! status callbacks each step fires.

use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use serde_json::{json, Value};
use tokio::time::Instant;

use super::config::is_http_url;
use super::config::{CallOutcome, SimConfig};
use super::scheduler::Job;
use super::server::{form_all, form_first, ApiError};
use super::state::{is_e164, pick, query_value, rng_for, stretch, Scheduled, State};
use super::stats::{CallView, SimStats};
use super::webhook::{after_jitter, Outgoing, Pipe};

pub(crate) const API_VERSION: &str = "2010-04-01";

/// A call's status, in Twilio's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallState {
    Queued,
    Initiated,
    Ringing,
    InProgress,
    Completed,
    Busy,
    NoAnswer,
    Failed,
    Canceled,
}

impl CallState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Initiated => "initiated",
            Self::Ringing => "ringing",
            Self::InProgress => "in-progress",
            Self::Completed => "completed",
            Self::Busy => "busy",
            Self::NoAnswer => "no-answer",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
        }
    }

    fn rank(self) -> u8 {
        match self {
            Self::Queued => 0,
            Self::Initiated => 1,
            Self::Ringing => 2,
            Self::InProgress => 3,
            _ => 4,
        }
    }

    pub fn is_terminal(self) -> bool {
        self.rank() == 4
    }

    fn sip_code(self) -> &'static str {
        match self {
            Self::Busy => "486",
            Self::NoAnswer | Self::Canceled => "487",
            Self::Failed => "404",
            _ => "200",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Amd {
    Enable,
    DetectMessageEnd,
}

/// The `StatusCallbackEvent`s asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Events {
    initiated: bool,
    ringing: bool,
    answered: bool,
    completed: bool,
}

impl Events {
    fn wants(self, status: CallState) -> bool {
        match status {
            CallState::Queued => false,
            CallState::Initiated => self.initiated,
            CallState::Ringing => self.ringing,
            CallState::InProgress => self.answered,
            _ => self.completed,
        }
    }
}

/// A validated `POST Calls.json`.
#[derive(Debug, Clone)]
pub(crate) struct NewCall {
    pub to: String,
    pub from: String,
    pub status_callback: Option<String>,
    events: Events,
    amd: Option<Amd>,
    timeout_secs: Option<u32>,
}

impl NewCall {
    /// Checks the form the way Twilio does (the checks our client can trip).
    pub fn parse(form: &[(String, String)], config: &SimConfig) -> Result<Self, ApiError> {
        let to = match form_first(form, "To") {
            None | Some("") => return Err(ApiError::bad(21201, "No 'To' number is specified")),
            Some(to) if !is_e164(to) => {
                return Err(ApiError::bad(
                    21211,
                    format!("Invalid 'To' Phone Number: {to}"),
                ))
            }
            Some(to) => to.to_string(),
        };
        let from = match form_first(form, "From") {
            None | Some("") => return Err(ApiError::bad(21213, "No 'From' number is specified")),
            Some(from) if !is_e164(from) => {
                return Err(ApiError::bad(
                    21212,
                    format!("Invalid 'From' Phone Number: {from}"),
                ))
            }
            Some(from) => from.to_string(),
        };
        if !to.starts_with(&config.lead_numbers_from) {
            return Err(ApiError::bad(
                21215,
                format!("Account not authorized to call {to}: geo permissions"),
            ));
        }
        let has_url = form_first(form, "Url").is_some_and(|u| !u.is_empty());
        let has_twiml = form_first(form, "Twiml").is_some_and(|t| !t.is_empty());
        let has_app = form_first(form, "ApplicationSid").is_some_and(|a| !a.is_empty());
        if !has_url && !has_twiml && !has_app {
            return Err(ApiError::bad(
                21205,
                "Url, Twiml or ApplicationSid is required",
            ));
        }
        if let Some(url) = form_first(form, "Url").filter(|u| !u.is_empty()) {
            if !is_http_url(url) {
                return Err(ApiError::bad(
                    21205,
                    format!("Url is not a valid URL: {url}"),
                ));
            }
        }
        let status_callback = match form_first(form, "StatusCallback") {
            None | Some("") => None,
            Some(url) if is_http_url(url) => Some(url.to_string()),
            Some(url) => {
                return Err(ApiError::bad(
                    21609,
                    format!("Invalid StatusCallback url: {url}"),
                ))
            }
        };
        if let Some(method) = form_first(form, "StatusCallbackMethod") {
            if !method.eq_ignore_ascii_case("POST") {
                return Err(ApiError::bad(
                    20001,
                    "the simulator only sends StatusCallbackMethod=POST",
                ));
            }
        }
        let mut events = Events::default();
        let mut any = false;
        for event in form_all(form, "StatusCallbackEvent") {
            any = true;
            match event {
                "initiated" => events.initiated = true,
                "ringing" => events.ringing = true,
                "answered" => events.answered = true,
                "completed" => events.completed = true,
                other => {
                    return Err(ApiError::bad(
                        21626,
                        format!("Invalid StatusCallbackEvent: {other}"),
                    ))
                }
            }
        }
        if !any {
            // "If no status_callback_event is specified, we will send the completed status."
            events.completed = true;
        }
        let amd = match form_first(form, "MachineDetection") {
            None | Some("") => None,
            Some(v) if v.eq_ignore_ascii_case("Enable") => Some(Amd::Enable),
            Some(v) if v.eq_ignore_ascii_case("DetectMessageEnd") => Some(Amd::DetectMessageEnd),
            Some(v) => {
                return Err(ApiError::bad(
                    20001,
                    format!("Invalid MachineDetection: {v}"),
                ))
            }
        };
        // SendDigits switches machine detection off.
        let amd = amd.filter(|_| form_first(form, "SendDigits").is_none());
        let timeout_secs = match form_first(form, "Timeout") {
            None | Some("") => None,
            Some(v) => match v.parse::<u32>() {
                Ok(secs) if (1..=600).contains(&secs) => Some(secs),
                _ => {
                    return Err(ApiError::bad(
                        20001,
                        format!("Timeout must be 1..=600 seconds, got {v}"),
                    ))
                }
            },
        };
        Ok(Self {
            to,
            from,
            status_callback,
            events,
            amd,
            timeout_secs,
        })
    }

    pub fn effect(&self) -> Option<String> {
        self.status_callback
            .as_deref()
            .and_then(|url| query_value(url, "effect"))
    }
}

pub(crate) struct Call {
    pub sid: String,
    pub to: String,
    pub from: String,
    pub status: CallState,
    outcome: CallOutcome,
    amd: Option<Amd>,
    answered_by: Option<&'static str>,
    callback: Option<String>,
    events: Events,
    effect: Option<String>,
    /// The next `SequenceNumber`.
    seq: u64,
    rng: StdRng,
    pipe: Pipe,
    created: DateTime<Utc>,
    updated: DateTime<Utc>,
    start_time: Option<DateTime<Utc>>,
    end_time: Option<DateTime<Utc>>,
    answered_at: Option<Instant>,
    duration_secs: Option<u64>,
}

/// Registers the call, counts it, and returns its timed plan.
pub(crate) fn create(
    state: &mut State,
    config: &SimConfig,
    req: NewCall,
    now: Instant,
) -> (Value, Scheduled) {
    let effect = req.effect();
    let stats = &mut state.stats;
    stats.calls += 1;
    let nth = stats.calls_per_number.entry(req.to.clone()).or_insert(0);
    let mut rng = rng_for(config.seed, "call", &req.to, *nth);
    *nth += 1;
    stats.count_effect(effect.as_deref());
    let drawn = pick(&mut rng, &config.outcome_mix.weighted()).unwrap_or(CallOutcome::NoAnswer);
    let outcome = config
        .number_outcomes
        .get(&req.to)
        .copied()
        .unwrap_or(drawn);
    let sid = state.new_sid("CA");
    let wall = Utc::now();
    let mut call = Call {
        sid: sid.clone(),
        to: req.to,
        from: req.from,
        status: CallState::Queued,
        outcome,
        amd: req.amd,
        answered_by: None,
        callback: req.status_callback,
        events: req.events,
        effect,
        seq: 0,
        rng,
        pipe: Pipe::default(),
        created: wall,
        updated: wall,
        start_time: None,
        end_time: None,
        answered_at: None,
        duration_secs: None,
    };
    let plan = plan(&mut call, config, req.timeout_secs);
    let jobs = plan
        .into_iter()
        .map(|(after, status)| {
            let job = Job::Call {
                sid: sid.clone(),
                status,
            };
            (now + after, job)
        })
        .collect();
    let json = call.resource(&config.account_sid);
    state.calls.insert(sid.clone(), call);
    state.call_order.push(sid);
    (json, jobs)
}

/// When each status is reached, measured from the create.
fn plan(
    call: &mut Call,
    config: &SimConfig,
    timeout_secs: Option<u32>,
) -> Vec<(std::time::Duration, CallState)> {
    let t = &config.timing;
    let rng = &mut call.rng;
    let initiated = stretch(rng, t.initiated_ms, t.spread_pct);
    let ringing = initiated + stretch(rng, t.ring_ms, t.spread_pct);
    let mut ring_limit = stretch(rng, t.no_answer_ms, t.spread_pct);
    if let Some(secs) = timeout_secs {
        ring_limit = ring_limit.min(std::time::Duration::from_secs(u64::from(secs)));
    }
    let start = [
        (initiated, CallState::Initiated),
        (ringing, CallState::Ringing),
    ];
    match call.outcome {
        CallOutcome::Human | CallOutcome::Voicemail => {
            let wait = stretch(rng, t.answer_ms, t.spread_pct);
            if wait >= ring_limit {
                return [
                    start[0],
                    start[1],
                    (ringing + ring_limit, CallState::NoAnswer),
                ]
                .into();
            }
            let talk_ms = if call.outcome == CallOutcome::Human {
                t.talk_ms
            } else {
                t.voicemail_ms
            };
            let answered = ringing + wait;
            let ended = answered + stretch(rng, talk_ms, t.spread_pct);
            [
                start[0],
                start[1],
                (answered, CallState::InProgress),
                (ended, CallState::Completed),
            ]
            .into()
        }
        CallOutcome::NoAnswer => [
            start[0],
            start[1],
            (ringing + ring_limit, CallState::NoAnswer),
        ]
        .into(),
        CallOutcome::Busy => {
            let at = initiated + stretch(rng, t.busy_ms, t.spread_pct);
            [start[0], (at, CallState::Busy)].into()
        }
        CallOutcome::Failed => {
            let at = initiated + stretch(rng, t.failed_ms, t.spread_pct);
            [start[0], (at, CallState::Failed)].into()
        }
    }
}

/// Moves the call forward to `to` (never backwards, never out of a terminal status) and returns
/// the callback deliveries that fires.
pub(crate) fn advance(
    call: &mut Call,
    to: CallState,
    config: &SimConfig,
    stats: &mut SimStats,
    now: Instant,
) -> Scheduled {
    if call.status.is_terminal() || to.rank() <= call.status.rank() {
        return Vec::new();
    }
    let wall = Utc::now();
    call.status = to;
    call.updated = wall;
    if to == CallState::InProgress {
        call.start_time = Some(wall);
        call.answered_at = Some(now);
        call.answered_by = call.amd.map(|amd| match (call.outcome, amd) {
            (CallOutcome::Voicemail, Amd::DetectMessageEnd) => "machine_end_beep",
            (CallOutcome::Voicemail, Amd::Enable) => "machine_start",
            _ => "human",
        });
    }
    if to.is_terminal() {
        call.end_time = Some(wall);
        let talked = call.answered_at.map_or(0, |at| {
            let ms = now.saturating_duration_since(at).as_millis();
            u64::try_from(ms.div_ceil(1000)).unwrap_or(u64::MAX)
        });
        call.duration_secs = Some(talked);
        *stats.call_outcomes.entry(to.as_str().into()).or_insert(0) += 1;
    }
    let Some(url) = call.callback.clone() else {
        return Vec::new();
    };
    let outs = if call.events.wants(to) {
        let params = call.callback_params(&config.account_sid, wall);
        call.seq += 1;
        let out = Outgoing::signed(&config.auth_token, &url, params);
        call.pipe.push(
            out,
            to.is_terminal(),
            &config.disorder,
            &mut call.rng,
            stats,
        )
    } else if to.is_terminal() {
        call.pipe.flush()
    } else {
        Vec::new()
    };
    after_jitter(outs, config.timing.callback_jitter_ms, &mut call.rng, now)
}

/// `POST Calls/{Sid}.json` with `Status`: `canceled` stops a call not yet answered and leaves an
/// answered one alone; `completed` ends it either way (`canceled` if it was never answered).
pub(crate) fn hangup(
    call: &mut Call,
    completed: bool,
    config: &SimConfig,
    stats: &mut SimStats,
    now: Instant,
) -> Scheduled {
    let to = match call.status {
        s if s.is_terminal() => return Vec::new(),
        CallState::InProgress if completed => CallState::Completed,
        CallState::InProgress => return Vec::new(),
        _ => CallState::Canceled,
    };
    stats.hangups += 1;
    advance(call, to, config, stats, now)
}

impl Call {
    fn callback_params(&self, account_sid: &str, wall: DateTime<Utc>) -> Vec<(String, String)> {
        let mut p: Vec<(&str, String)> = vec![
            ("AccountSid", account_sid.to_string()),
            ("ApiVersion", API_VERSION.to_string()),
            ("CallSid", self.sid.clone()),
            ("CallStatus", self.status.as_str().to_string()),
            ("CallbackSource", "call-progress-events".to_string()),
            ("Called", self.to.clone()),
            ("Caller", self.from.clone()),
            ("Direction", "outbound-api".to_string()),
            ("From", self.from.clone()),
            ("SequenceNumber", self.seq.to_string()),
            ("Timestamp", wall.to_rfc2822()),
            ("To", self.to.clone()),
        ];
        if let Some(by) = self.answered_by {
            p.push(("AnsweredBy", by.to_string()));
        }
        if self.status.is_terminal() {
            let secs = self.duration_secs.unwrap_or(0);
            p.push(("CallDuration", secs.to_string()));
            p.push(("Duration", secs.div_ceil(60).to_string()));
            p.push(("SipResponseCode", self.status.sip_code().to_string()));
        }
        p.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }

    /// The REST resource, as Twilio returns it (the fields our client reads, and a few more).
    pub fn resource(&self, account_sid: &str) -> Value {
        json!({
            "sid": self.sid,
            "account_sid": account_sid,
            "to": self.to,
            "to_formatted": self.to,
            "from": self.from,
            "from_formatted": self.from,
            "status": self.status.as_str(),
            "direction": "outbound-api",
            "answered_by": self.answered_by,
            "duration": self.duration_secs.map(|d| d.to_string()),
            "parent_call_sid": null,
            "date_created": self.created.to_rfc2822(),
            "date_updated": self.updated.to_rfc2822(),
            "start_time": self.start_time.map(|t| t.to_rfc2822()),
            "end_time": self.end_time.map(|t| t.to_rfc2822()),
            "price": null,
            "price_unit": "USD",
            "queue_time": "0",
            "api_version": API_VERSION,
            "uri": format!("/{API_VERSION}/Accounts/{account_sid}/Calls/{}.json", self.sid),
        })
    }

    pub fn view(&self) -> CallView {
        CallView {
            sid: self.sid.clone(),
            to: self.to.clone(),
            from: self.from.clone(),
            status: self.status.as_str().into(),
            outcome: self.outcome.as_str().into(),
            answered_by: self.answered_by.map(str::to_string),
            effect: self.effect.clone(),
            callbacks: self.seq,
            date_created: self.created.to_rfc2822(),
        }
    }
}
