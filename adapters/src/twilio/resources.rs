//! Request parameters and response resources for the Calls and Messages endpoints.
//!
//! Responses are parsed leniently: unknown fields are ignored, optional fields may be null or
//! absent, and unrecognised status words map to `Unknown`, because Twilio adds fields and values
//! without notice and the carrier simulator sends only a subset.

use std::fmt;

use serde::{Deserialize, Deserializer};

/// Call progress events to be told about (`StatusCallbackEvent`, one form field per value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusCallbackEvent {
    Initiated,
    Ringing,
    /// Reported as `CallStatus=in-progress`.
    Answered,
    /// Reported with the terminal status: completed, busy, no-answer, failed or canceled.
    Completed,
}

impl StatusCallbackEvent {
    pub const ALL: [Self; 4] = [
        Self::Initiated,
        Self::Ringing,
        Self::Answered,
        Self::Completed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Initiated => "initiated",
            Self::Ringing => "ringing",
            Self::Answered => "answered",
            Self::Completed => "completed",
        }
    }
}

/// Parameters for `POST Calls.json`. Give `url` or `twiml` (Twilio ignores `twiml` if both).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateCall {
    pub to: String,
    pub from: String,
    pub url: Option<String>,
    pub twiml: Option<String>,
    /// Always POSTed to. Put a correlation id in its query so a callback can settle an
    /// [`super::TwilioError::UnknownOutcome`]. Omitted from the request when empty.
    pub status_callback: String,
    pub status_callback_events: Vec<StatusCallbackEvent>,
    /// `"Enable"` or `"DetectMessageEnd"`.
    pub machine_detection: Option<String>,
    /// Ring time in seconds (Twilio: default 60, max 600).
    pub timeout_seconds: Option<u32>,
}

impl CreateCall {
    pub(crate) fn form_fields(&self) -> Vec<(&'static str, String)> {
        let mut f = vec![("To", self.to.clone()), ("From", self.from.clone())];
        if let Some(url) = &self.url {
            f.push(("Url", url.clone()));
            f.push(("Method", "POST".into()));
        }
        if let Some(twiml) = &self.twiml {
            f.push(("Twiml", twiml.clone()));
        }
        if !self.status_callback.is_empty() {
            f.push(("StatusCallback", self.status_callback.clone()));
            f.push(("StatusCallbackMethod", "POST".into()));
            for event in &self.status_callback_events {
                f.push(("StatusCallbackEvent", event.as_str().into()));
            }
        }
        if let Some(amd) = &self.machine_detection {
            f.push(("MachineDetection", amd.clone()));
        }
        if let Some(secs) = self.timeout_seconds {
            f.push(("Timeout", secs.to_string()));
        }
        f
    }
}

/// `Status` for `POST Calls/{Sid}.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HangupStatus {
    /// Ends the call whatever its state, including an answered one.
    Completed,
    /// Only affects a call still queued or ringing; no effect once answered.
    Canceled,
}

impl HangupStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Canceled => "canceled",
        }
    }
}

/// Parameters for `POST Messages.json`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct CreateMessage {
    pub to: String,
    pub from: String,
    pub body: String,
    /// Delivery-status callback URL; omitted from the request when empty.
    pub status_callback: String,
}

impl CreateMessage {
    pub(crate) fn form_fields(&self) -> Vec<(&'static str, String)> {
        let mut f = vec![
            ("To", self.to.clone()),
            ("From", self.from.clone()),
            ("Body", self.body.clone()),
        ];
        if !self.status_callback.is_empty() {
            f.push(("StatusCallback", self.status_callback.clone()));
        }
        f
    }
}

// Message text is lead content: keep it out of logs and panics.
impl fmt::Debug for CreateMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreateMessage")
            .field("to", &self.to)
            .field("from", &self.from)
            .field(
                "body",
                &format_args!("<{} chars>", self.body.chars().count()),
            )
            .field("status_callback", &self.status_callback)
            .finish()
    }
}

/// Call status as reported by the REST resource; unrecognised values become `Unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CallStatus {
    Queued,
    Initiated,
    Ringing,
    InProgress,
    Completed,
    Busy,
    Failed,
    NoAnswer,
    Canceled,
    #[serde(other)]
    Unknown,
}

/// Message status; unrecognised values become `Unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    Queued,
    Sending,
    Sent,
    Failed,
    Delivered,
    Undelivered,
    Receiving,
    Received,
    Accepted,
    Scheduled,
    Read,
    PartiallyDelivered,
    Canceled,
    #[serde(other)]
    Unknown,
}

/// The fields of a Call resource we use. Unknown fields are ignored; optional ones may be null.
/// Twilio dates are RFC 2822 strings and are kept verbatim.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CallResource {
    pub sid: String,
    pub status: CallStatus,
    #[serde(default)]
    pub account_sid: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub from: Option<String>,
    /// `outbound-api`, `outbound-dial` or `inbound`.
    #[serde(default)]
    pub direction: Option<String>,
    /// Set when machine detection ran (`human`, `machine_start`, …).
    #[serde(default)]
    pub answered_by: Option<String>,
    #[serde(default)]
    pub parent_call_sid: Option<String>,
    /// Seconds, as Twilio's string (lenient about numbers from simulators).
    #[serde(default, deserialize_with = "lenient_string")]
    pub duration: Option<String>,
    #[serde(default)]
    pub date_created: Option<String>,
    #[serde(default)]
    pub date_updated: Option<String>,
    #[serde(default)]
    pub start_time: Option<String>,
    #[serde(default)]
    pub end_time: Option<String>,
}

/// The fields of a Message resource we use. `Debug` omits the body text.
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub struct MessageResource {
    pub sid: String,
    pub status: MessageStatus,
    #[serde(default)]
    pub account_sid: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub direction: Option<String>,
    /// Set on `failed` / `undelivered` (e.g. 30003, 21610).
    #[serde(default, deserialize_with = "lenient_code")]
    pub error_code: Option<u32>,
    #[serde(default)]
    pub error_message: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub num_segments: Option<String>,
    #[serde(default)]
    pub messaging_service_sid: Option<String>,
    #[serde(default)]
    pub date_created: Option<String>,
    #[serde(default)]
    pub date_sent: Option<String>,
    #[serde(default)]
    pub date_updated: Option<String>,
}

/// One page of `GET Messages.json` (only the items are read; paging is not followed).
#[derive(Debug, Clone, Deserialize)]
pub struct MessagePage {
    #[serde(default)]
    pub messages: Vec<MessageResource>,
}

impl fmt::Debug for MessageResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageResource")
            .field("sid", &self.sid)
            .field("status", &self.status)
            .field("to", &self.to)
            .field("from", &self.from)
            .field("direction", &self.direction)
            .field("error_code", &self.error_code)
            .field("date_created", &self.date_created)
            .finish_non_exhaustive()
    }
}

/// Accepts a string, a number or null (Twilio sends strings; simulators often send numbers).
fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        Some(serde_json::Value::String(s)) => Some(s),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

/// Accepts a number, a numeric string or null.
fn lenient_code<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        Some(serde_json::Value::Number(n)) => n.as_u64().and_then(|v| u32::try_from(v).ok()),
        Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_statuses_and_fields_are_tolerated() {
        let json = r#"{"sid":"CA1","status":"teleported","duration":"12","extra":{"a":1}}"#;
        let call: Result<CallResource, _> = serde_json::from_str(json);
        assert!(matches!(call, Ok(ref c) if c.status == CallStatus::Unknown
            && c.duration.as_deref() == Some("12")));
        let json = r#"{"sid":"SM1","status":"partially_delivered","error_code":"30007"}"#;
        let msg: Result<MessageResource, _> = serde_json::from_str(json);
        assert!(
            matches!(msg, Ok(ref m) if m.status == MessageStatus::PartiallyDelivered
            && m.error_code == Some(30007))
        );
        let json = r#"{"sid":"CA1","status":"no-answer"}"#;
        let call: Result<CallResource, _> = serde_json::from_str(json);
        assert!(matches!(call, Ok(ref c) if c.status == CallStatus::NoAnswer));
    }

    #[test]
    fn message_text_is_not_in_debug() {
        let req = CreateMessage {
            to: "+1".into(),
            from: "+2".into(),
            body: "secret offer".into(),
            status_callback: String::new(),
        };
        assert!(!format!("{req:?}").contains("secret"));
        assert_eq!(req.form_fields().len(), 3, "empty callback is omitted");
    }

    #[test]
    fn call_form_without_callback_omits_callback_fields() {
        let req = CreateCall {
            to: "+1".into(),
            from: "+2".into(),
            twiml: Some("<Response/>".into()),
            status_callback_events: vec![StatusCallbackEvent::Completed],
            ..CreateCall::default()
        };
        let names: Vec<&str> = req.form_fields().iter().map(|(k, _)| *k).collect();
        assert_eq!(names, ["To", "From", "Twiml"]);
    }
}
