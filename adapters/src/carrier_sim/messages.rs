//! Outbound SMS: validating a create, the queued → sent → delivered plan and its callbacks, and
//! the lead's (maybe) reply POSTed to the inbound webhook.

use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::Rng;
use serde_json::{json, Value};
use tokio::time::Instant;

use super::calls::API_VERSION;
use super::config::{is_http_url, SimConfig};
use super::scheduler::Job;
use super::server::{form_first, ApiError};
use super::state::{is_e164, pick, query_value, rng_for, stretch, Scheduled, State};
use super::stats::{MessageView, SimStats};
use super::webhook::{after_jitter, Outgoing, Pipe};

/// Twilio's default opt-out and opt-in keywords (single-word, case-insensitive).
const OPT_OUT: [&str; 6] = ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"];
const OPT_IN: [&str; 3] = ["START", "YES", "UNSTOP"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MsgState {
    Queued,
    Sent,
    Delivered,
    Undelivered,
    Failed,
    Received,
}

impl MsgState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Undelivered => "undelivered",
            Self::Failed => "failed",
            Self::Received => "received",
        }
    }

    fn rank(self) -> u8 {
        match self {
            Self::Queued => 0,
            Self::Sent => 1,
            _ => 2,
        }
    }

    fn is_terminal(self) -> bool {
        self.rank() == 2
    }
}

/// A validated `POST Messages.json`.
#[derive(Debug, Clone)]
pub(crate) struct NewMessage {
    pub to: String,
    pub from: String,
    body: String,
    status_callback: Option<String>,
}

impl NewMessage {
    pub fn parse(form: &[(String, String)], config: &SimConfig) -> Result<Self, ApiError> {
        let to = match form_first(form, "To") {
            None | Some("") => return Err(ApiError::bad(21604, "A 'To' phone number is required")),
            Some(to) if !is_e164(to) => {
                return Err(ApiError::bad(
                    21211,
                    format!("Invalid 'To' Phone Number: {to}"),
                ))
            }
            Some(to) => to.to_string(),
        };
        let from = match form_first(form, "From") {
            None | Some("") => {
                return Err(ApiError::bad(21603, "A 'From' phone number is required"))
            }
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
                21408,
                format!("Permission to send an SMS has not been enabled for the region of {to}"),
            ));
        }
        let body = form_first(form, "Body").unwrap_or_default().to_string();
        if body.is_empty() {
            return Err(ApiError::bad(21602, "Message body is required"));
        }
        if body.chars().count() > 1600 {
            return Err(ApiError::bad(
                21617,
                "The concatenated message body exceeds the 1600 character limit",
            ));
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
        Ok(Self {
            to,
            from,
            body,
            status_callback,
        })
    }
}

pub(crate) struct Message {
    pub sid: String,
    to: String,
    from: String,
    body: String,
    status: MsgState,
    inbound: bool,
    /// The fate drawn at create: delivered, undelivered or failed.
    fate: MsgState,
    error_code: Option<u32>,
    callback: Option<String>,
    effect: Option<String>,
    rng: StdRng,
    pipe: Pipe,
    /// The lead's answer, drawn when the message is delivered.
    reply: Option<String>,
    created: DateTime<Utc>,
    updated: DateTime<Utc>,
    sent: Option<DateTime<Utc>>,
}

/// Registers the message, fires its `queued` callback and returns the timed plan. Refuses a
/// lead who opted out of this sender (21610), as Twilio does.
pub(crate) fn create(
    state: &mut State,
    config: &SimConfig,
    req: NewMessage,
    now: Instant,
) -> Result<(Value, Scheduled), ApiError> {
    if state
        .opted_out
        .contains(&(req.to.clone(), req.from.clone()))
    {
        state.stats.blocked_opted_out += 1;
        return Err(ApiError::bad(
            21610,
            "Attempt to send to unsubscribed recipient",
        ));
    }
    let effect = req
        .status_callback
        .as_deref()
        .and_then(|url| query_value(url, "effect"));
    let stats = &mut state.stats;
    stats.messages += 1;
    *stats.messages_per_from.entry(req.from.clone()).or_insert(0) += 1;
    let nth = stats.messages_per_number.entry(req.to.clone()).or_insert(0);
    let mut rng = rng_for(config.seed, "sms", &req.to, *nth);
    *nth += 1;
    stats.count_effect(effect.as_deref());
    let m = &config.message_mix;
    let fate = pick(
        &mut rng,
        &[
            (MsgState::Delivered, m.delivered),
            (MsgState::Undelivered, m.undelivered),
            (MsgState::Failed, m.failed),
        ],
    )
    .unwrap_or(MsgState::Delivered);
    let sid = state.new_sid("SM");
    let wall = Utc::now();
    let mut msg = Message {
        sid: sid.clone(),
        to: req.to,
        from: req.from,
        body: req.body,
        status: MsgState::Queued,
        inbound: false,
        fate,
        error_code: None,
        callback: req.status_callback,
        effect,
        rng,
        pipe: Pipe::default(),
        reply: None,
        created: wall,
        updated: wall,
        sent: None,
    };
    let t = &config.timing;
    let sent_at = now + stretch(&mut msg.rng, t.sms_sent_ms, t.spread_pct);
    let mut jobs: Scheduled = if fate == MsgState::Failed {
        vec![(sent_at, step(&sid, MsgState::Failed))]
    } else {
        let done_at = sent_at + stretch(&mut msg.rng, t.sms_delivered_ms, t.spread_pct);
        vec![
            (sent_at, step(&sid, MsgState::Sent)),
            (done_at, step(&sid, fate)),
        ]
    };
    // Twilio skips the initial status; we report `queued` too, which the engine must tolerate.
    jobs.extend(emit(&mut msg, config, &mut state.stats, wall, now));
    let json = msg.resource(&config.account_sid);
    state.messages.insert(sid.clone(), msg);
    state.message_order.push(sid);
    Ok((json, jobs))
}

fn step(sid: &str, status: MsgState) -> Job {
    Job::Message {
        sid: sid.to_string(),
        status,
    }
}

/// Moves the message forward to `to` and returns the callback (and maybe reply) it causes.
pub(crate) fn advance(
    msg: &mut Message,
    to: MsgState,
    config: &SimConfig,
    stats: &mut SimStats,
    now: Instant,
) -> Scheduled {
    if msg.status.is_terminal() || to.rank() <= msg.status.rank() {
        return Vec::new();
    }
    let wall = Utc::now();
    msg.status = to;
    msg.updated = wall;
    match to {
        MsgState::Sent => msg.sent = Some(wall),
        MsgState::Undelivered => msg.error_code = Some(30003),
        MsgState::Failed => msg.error_code = Some(30008),
        _ => {}
    }
    let mut jobs = emit(msg, config, stats, wall, now);
    if to == MsgState::Delivered {
        let r = &config.reply_mix;
        let replies = msg.rng.gen_bool(r.probability);
        let kind = pick(
            &mut msg.rng,
            &[(0u8, r.yes), (1, r.stop), (2, r.help), (3, r.free_text)],
        );
        let body = match kind {
            Some(0) => "YES".to_string(),
            Some(1) => "STOP".to_string(),
            Some(2) => "HELP".to_string(),
            _ if r.free_text_bodies.is_empty() => "OK".to_string(),
            _ => {
                let i = msg.rng.gen_range(0..r.free_text_bodies.len());
                r.free_text_bodies[i].clone()
            }
        };
        if replies && config.inbound_sms_url.is_some() {
            msg.reply = Some(body);
            let at = now
                + stretch(
                    &mut msg.rng,
                    config.timing.reply_ms,
                    config.timing.spread_pct,
                );
            jobs.push((
                at,
                Job::Reply {
                    sid: msg.sid.clone(),
                },
            ));
        }
    }
    jobs
}

/// The status callback for the message's current status, through its disorder pipe.
fn emit(
    msg: &mut Message,
    config: &SimConfig,
    stats: &mut SimStats,
    wall: DateTime<Utc>,
    now: Instant,
) -> Scheduled {
    let Some(url) = msg.callback.clone() else {
        return Vec::new();
    };
    let status = msg.status.as_str().to_string();
    let mut params = vec![
        ("AccountSid".to_string(), config.account_sid.clone()),
        ("ApiVersion".to_string(), API_VERSION.to_string()),
        ("From".to_string(), msg.from.clone()),
        ("MessageSid".to_string(), msg.sid.clone()),
        ("MessageStatus".to_string(), status.clone()),
        ("SmsSid".to_string(), msg.sid.clone()),
        ("SmsStatus".to_string(), status),
        ("To".to_string(), msg.to.clone()),
    ];
    if let Some(code) = msg.error_code {
        params.push(("ErrorCode".to_string(), code.to_string()));
    }
    if msg.status == MsgState::Delivered || msg.status == MsgState::Undelivered {
        params.push((
            "RawDlrDoneDate".to_string(),
            wall.format("%y%m%d%H%M").to_string(),
        ));
    }
    let out = Outgoing::signed(&config.auth_token, &url, params);
    let last = msg.status.is_terminal();
    let outs = msg
        .pipe
        .push(out, last, &config.disorder, &mut msg.rng, stats);
    after_jitter(outs, config.timing.callback_jitter_ms, &mut msg.rng, now)
}

/// The lead answers message `sid`: records the inbound message, tracks STOP/START, and POSTs
/// the signed inbound webhook.
pub(crate) fn reply(state: &mut State, config: &SimConfig, sid: &str, now: Instant) -> Scheduled {
    let Some(url) = config.inbound_sms_url.clone() else {
        return Vec::new();
    };
    let Some(original) = state.messages.get_mut(sid) else {
        return Vec::new();
    };
    let Some(body) = original.reply.take() else {
        return Vec::new();
    };
    let lead = original.to.clone();
    let ours = original.from.clone();
    let inbound_sid = state.new_sid("SM");
    let keyword = body.trim().to_ascii_uppercase();
    if OPT_OUT.contains(&keyword.as_str()) {
        state.opted_out.insert((lead.clone(), ours.clone()));
    } else if OPT_IN.contains(&keyword.as_str()) {
        state.opted_out.remove(&(lead.clone(), ours.clone()));
    }
    state.stats.replies += 1;
    let params: Vec<(String, String)> = [
        ("AccountSid", config.account_sid.as_str()),
        ("ApiVersion", API_VERSION),
        ("Body", body.as_str()),
        ("From", lead.as_str()),
        ("MessageSid", inbound_sid.as_str()),
        ("NumMedia", "0"),
        ("NumSegments", "1"),
        ("SmsMessageSid", inbound_sid.as_str()),
        ("SmsSid", inbound_sid.as_str()),
        ("SmsStatus", "received"),
        ("To", ours.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let out = Outgoing::signed(&config.auth_token, &url, params);
    let wall = Utc::now();
    let Some(original) = state.messages.get_mut(sid) else {
        return Vec::new();
    };
    // The original's generator decides duplicates and jitter, so the run stays reproducible.
    let mut pipe = Pipe::default();
    let outs = pipe.push(
        out,
        true,
        &config.disorder,
        &mut original.rng,
        &mut state.stats,
    );
    let jobs = after_jitter(
        outs,
        config.timing.callback_jitter_ms,
        &mut original.rng,
        now,
    );
    let inbound = Message {
        sid: inbound_sid.clone(),
        to: ours,
        from: lead,
        body,
        status: MsgState::Received,
        inbound: true,
        fate: MsgState::Received,
        error_code: None,
        callback: None,
        effect: None,
        rng: rng_for(config.seed, "inbound", &inbound_sid, 0),
        pipe: Pipe::default(),
        reply: None,
        created: wall,
        updated: wall,
        sent: Some(wall),
    };
    state.messages.insert(inbound_sid.clone(), inbound);
    state.message_order.push(inbound_sid);
    jobs
}

impl Message {
    pub fn resource(&self, account_sid: &str) -> Value {
        json!({
            "sid": self.sid,
            "account_sid": account_sid,
            "to": self.to,
            "from": self.from,
            "body": self.body,
            "status": self.status.as_str(),
            "direction": if self.inbound { "inbound" } else { "outbound-api" },
            "error_code": self.error_code,
            "error_message": self.error_code.map(|c| match c {
                30003 => "Unreachable destination handset",
                _ => "Unknown error",
            }),
            "num_segments": "1",
            "num_media": "0",
            "messaging_service_sid": null,
            "price": null,
            "price_unit": "USD",
            "date_created": self.created.to_rfc2822(),
            "date_sent": self.sent.map(|t| t.to_rfc2822()),
            "date_updated": self.updated.to_rfc2822(),
            "api_version": API_VERSION,
            "uri": format!("/{API_VERSION}/Accounts/{account_sid}/Messages/{}.json", self.sid),
        })
    }

    pub fn view(&self) -> MessageView {
        MessageView {
            sid: self.sid.clone(),
            to: self.to.clone(),
            from: self.from.clone(),
            status: self.status.as_str().into(),
            direction: if self.inbound {
                "inbound"
            } else {
                "outbound-api"
            }
            .into(),
            fate: self.fate.as_str().into(),
            error_code: self.error_code,
            body_chars: self.body.chars().count(),
            effect: self.effect.clone(),
            date_created: self.created.to_rfc2822(),
        }
    }

    pub fn is_to(&self, number: &str) -> bool {
        self.to == number
    }

    pub fn is_from(&self, number: &str) -> bool {
        self.from == number
    }
}
