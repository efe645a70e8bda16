//! Calls — outbound ones created over REST and the child legs their `<Dial>`s place: drawing the
//! outcome, the timed status plan, and the status callbacks each step fires. (The create's
//! checks are in `call_request`, TwiML execution in `flow`.)

use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio::time::Instant;

use super::call_request::{FlowSource, NewCall};
use super::config::{CallOutcome, SimConfig};
use super::legs::FlowLog;
use super::scheduler::Job;
use super::state::{pick, rng_for, stretch, Scheduled, State};
use super::stats::{CallView, SimStats};
use super::twiml::Method;
use super::webhook::{after_jitter, Outgoing, Pipe};

pub(crate) use super::status::CallState;

mod inbound;

pub(crate) use inbound::inbound;

pub(crate) const API_VERSION: &str = "2010-04-01";

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
    /// Turns on one `StatusCallbackEvent` by name; false for an unknown name.
    pub fn set(&mut self, event: &str) -> bool {
        match event {
            "initiated" => self.initiated = true,
            "ringing" => self.ringing = true,
            "answered" => self.answered = true,
            "completed" => self.completed = true,
            _ => return false,
        }
        true
    }

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

pub(crate) struct Call {
    pub sid: String,
    pub to: String,
    pub from: String,
    pub status: CallState,
    outcome: CallOutcome,
    amd: Option<Amd>,
    pub answered_by: Option<&'static str>,
    callback: Option<String>,
    callback_method: Method,
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
    pub duration_secs: Option<u64>,
    /// The call whose `<Dial>` placed this leg; `None` for calls created over REST.
    pub parent: Option<String>,
    /// A lead called one of the account's numbers (`POST /sim/inbound-calls`): direction
    /// `inbound`, answered at once by the number's voice URL.
    pub inbound: bool,
    /// What runs at answer (REST calls only; a leg's whisper belongs to its `<Number>`).
    pub flow: Option<FlowSource>,
    /// Flips to true when the call reaches a terminal status, however it got there (REST
    /// hang-up, the lead hanging up, the flow ending): the flow and dial tasks watch it.
    pub ended: watch::Sender<bool>,
    /// What its TwiML did, for `GET /sim/calls/{sid}`.
    pub log: FlowLog,
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
    *stats.calls_per_from.entry(req.from.clone()).or_insert(0) += 1;
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
    let mut call = Call {
        amd: req.amd,
        callback: req.status_callback,
        events: req.events,
        effect,
        flow: req.source,
        ..Call::new(
            sid.clone(),
            req.to,
            req.from,
            CallState::Queued,
            outcome,
            rng,
        )
    };
    let mut plan = plan(&mut call, config, req.timeout_secs);
    if matches!(call.flow, Some(FlowSource::Url { .. })) {
        // A fetched document decides when the call ends (its flow completes it), not the
        // answer mix's talk time. The draws above still happened, so the generator stays in step.
        plan.retain(|(_, status)| *status != CallState::Completed);
    }
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
        // Child legs and inbound calls have their own counters so `call_outcomes` still sums
        // to `calls`.
        let outcomes = if call.parent.is_some() {
            &mut stats.dial_leg_outcomes
        } else if call.inbound {
            &mut stats.inbound_call_outcomes
        } else {
            &mut stats.call_outcomes
        };
        *outcomes.entry(to.as_str().into()).or_insert(0) += 1;
        call.ended.send_replace(true);
    }
    // The answered call's TwiML starts now, alongside its `answered` callback.
    let flow_job = (to == CallState::InProgress && call.flow.is_some()).then(|| {
        (
            now,
            Job::Flow {
                sid: call.sid.clone(),
            },
        )
    });
    let mut jobs = callbacks(call, to, config, stats, now, wall);
    jobs.extend(flow_job);
    jobs
}

/// The status callback `to` fires, if it was asked for.
fn callbacks(
    call: &mut Call,
    to: CallState,
    config: &SimConfig,
    stats: &mut SimStats,
    now: Instant,
    wall: DateTime<Utc>,
) -> Scheduled {
    let Some(url) = call.callback.clone() else {
        return Vec::new();
    };
    let outs = if call.events.wants(to) {
        let params = call.callback_params(&config.account_sid, wall);
        call.seq += 1;
        let out = Outgoing::signed_with(call.callback_method, &config.auth_token, &url, params);
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
    /// A child leg of a `<Dial>`: Twilio starts those at `initiated` (never queued), so the
    /// caller advances it there at once. Not counted in `calls` nor listed by `/sim/calls`.
    #[allow(clippy::too_many_arguments)]
    pub fn leg(
        sid: String,
        parent: String,
        to: String,
        from: String,
        outcome: CallOutcome,
        callback: Option<(String, Method)>,
        events: Events,
        rng: StdRng,
    ) -> Self {
        let (callback, callback_method) = match callback {
            Some((url, method)) => (Some(url), method),
            None => (None, Method::Post),
        };
        Self {
            callback,
            callback_method,
            events,
            parent: Some(parent),
            ..Self::new(sid, to, from, CallState::Queued, outcome, rng)
        }
    }

    /// A call as the carrier makes it, with nothing yet: what every kind of call starts from.
    pub(crate) fn new(
        sid: String,
        to: String,
        from: String,
        status: CallState,
        outcome: CallOutcome,
        rng: StdRng,
    ) -> Self {
        let wall = Utc::now();
        Self {
            sid,
            to,
            from,
            status,
            outcome,
            amd: None,
            answered_by: None,
            callback: None,
            callback_method: Method::Post,
            events: Events::default(),
            effect: None,
            seq: 0,
            rng,
            pipe: Pipe::default(),
            created: wall,
            updated: wall,
            start_time: None,
            end_time: None,
            answered_at: None,
            duration_secs: None,
            parent: None,
            inbound: false,
            flow: None,
            ended: watch::channel(false).0,
            log: FlowLog::default(),
        }
    }

    pub fn direction(&self) -> &'static str {
        if self.parent.is_some() {
            "outbound-dial"
        } else if self.inbound {
            "inbound"
        } else {
            "outbound-api"
        }
    }

    /// Answered by a machine (with machine detection on): what the voicemail counters look at.
    pub fn machine_answered(&self) -> bool {
        self.answered_by.is_some_and(|by| by.starts_with("machine"))
    }

    /// The parameters of every TwiML request about this call (Twilio's "request parameters").
    pub fn request_params(&self, account_sid: &str) -> Vec<(String, String)> {
        let mut p: Vec<(&str, String)> = vec![
            ("AccountSid", account_sid.to_string()),
            ("ApiVersion", API_VERSION.to_string()),
            ("CallSid", self.sid.clone()),
            ("CallStatus", self.status.as_str().to_string()),
            ("Called", self.to.clone()),
            ("Caller", self.from.clone()),
            ("Direction", self.direction().to_string()),
            ("From", self.from.clone()),
            ("To", self.to.clone()),
        ];
        if let Some(by) = self.answered_by {
            p.push(("AnsweredBy", by.to_string()));
        }
        if let Some(parent) = &self.parent {
            p.push(("ParentCallSid", parent.clone()));
        }
        p.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }

    fn callback_params(&self, account_sid: &str, wall: DateTime<Utc>) -> Vec<(String, String)> {
        let mut p: Vec<(&str, String)> = vec![
            ("AccountSid", account_sid.to_string()),
            ("ApiVersion", API_VERSION.to_string()),
            ("CallSid", self.sid.clone()),
            ("CallStatus", self.status.as_str().to_string()),
            ("CallbackSource", "call-progress-events".to_string()),
            ("Called", self.to.clone()),
            ("Caller", self.from.clone()),
            ("Direction", self.direction().to_string()),
            ("From", self.from.clone()),
            ("SequenceNumber", self.seq.to_string()),
            ("Timestamp", wall.to_rfc2822()),
            ("To", self.to.clone()),
        ];
        if let Some(by) = self.answered_by {
            p.push(("AnsweredBy", by.to_string()));
        }
        if let Some(parent) = &self.parent {
            p.push(("ParentCallSid", parent.clone()));
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
            "direction": self.direction(),
            "answered_by": self.answered_by,
            "duration": self.duration_secs.map(|d| d.to_string()),
            "parent_call_sid": self.parent,
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

    /// When the carrier created the call, Unix milliseconds.
    pub fn created_ms(&self) -> i64 {
        self.created.timestamp_millis()
    }

    /// When it was answered, Unix milliseconds.
    pub fn answered_ms(&self) -> Option<i64> {
        self.start_time.map(|t| t.timestamp_millis())
    }

    /// When it ended, Unix milliseconds.
    pub fn ended_ms(&self) -> Option<i64> {
        self.end_time.map(|t| t.timestamp_millis())
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
