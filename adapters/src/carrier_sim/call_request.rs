//! `POST Calls.json`: the checks Twilio makes on a create, and what the call will execute.

use super::calls::{Amd, Events};
use super::config::{is_http_url, SimConfig};
use super::server::{form_all, form_first, ApiError};
use super::state::{is_e164, query_value};
use super::twiml::Method;

/// What a call executes once answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FlowSource {
    /// `Url` (+ `Method`): fetched at answer, signed like every webhook.
    Url { url: String, method: Method },
    /// Inline `Twiml`: executed at answer. The call keeps the answer mix's timeline (the lead
    /// hangs up after `talk_ms`/`voicemail_ms`) and a document that simply runs out of verbs does
    /// not end it early, so the engine's `<Pause>` placeholder plays exactly as before.
    Inline(String),
}

/// `ApplicationSid` overrides `Url` (and is not simulated), and Twilio takes `Url` over `Twiml`
/// when both are given.
fn flow_source(form: &[(String, String)]) -> Result<Option<FlowSource>, ApiError> {
    if form_first(form, "ApplicationSid").is_some_and(|a| !a.is_empty()) {
        return Ok(None);
    }
    let method = match form_first(form, "Method") {
        None | Some("") => Method::Post,
        Some(m) if m.eq_ignore_ascii_case("GET") || m.eq_ignore_ascii_case("POST") => {
            Method::parse(Some(m))
        }
        Some(m) => return Err(ApiError::bad(21205, format!("Invalid Method: {m}"))),
    };
    if let Some(url) = form_first(form, "Url").filter(|u| !u.is_empty()) {
        return Ok(Some(FlowSource::Url {
            url: url.to_string(),
            method,
        }));
    }
    Ok(form_first(form, "Twiml")
        .filter(|t| !t.is_empty())
        .map(|t| FlowSource::Inline(t.to_string())))
}

/// A validated `POST Calls.json`.
#[derive(Debug, Clone)]
pub(crate) struct NewCall {
    pub to: String,
    pub from: String,
    pub status_callback: Option<String>,
    pub events: Events,
    pub amd: Option<Amd>,
    pub timeout_secs: Option<u32>,
    /// The TwiML to run at answer; `None` with `ApplicationSid` (not simulated: the call just
    /// plays out its answer mix, as before).
    pub source: Option<FlowSource>,
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
            if !events.set(event) {
                return Err(ApiError::bad(
                    21626,
                    format!("Invalid StatusCallbackEvent: {event}"),
                ));
            }
        }
        if !any {
            // "If no status_callback_event is specified, we will send the completed status."
            events.set("completed");
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
        let source = flow_source(form)?;
        Ok(Self {
            to,
            from,
            status_callback,
            events,
            amd,
            timeout_secs,
            source,
        })
    }

    pub fn effect(&self) -> Option<String> {
        self.status_callback
            .as_deref()
            .and_then(|url| query_value(url, "effect"))
    }
}
