//! Errors from the Twilio REST client.
//!
//! The variants are split by what the caller is allowed to conclude. Most importantly,
//! [`TwilioError::UnknownOutcome`] is distinct from every other failure: for a create it means
//! the provider may have acted (a lead may be ringing right now), so the caller must reconcile
//! through the status callback or a fetch instead of trying again.

use std::time::Duration;

use serde::Deserialize;

/// A failure talking to Twilio (or a Twilio-compatible carrier simulator).
#[derive(Debug, thiserror::Error)]
pub enum TwilioError {
    /// Twilio answered with a 4xx other than 429; the request was rejected and had no effect.
    #[error("twilio rejected the request with http {status}: {message} (code {code:?})")]
    Api {
        status: u16,
        /// Twilio's numeric error code (e.g. 21211 invalid `To`), when the body carried one.
        code: Option<u32>,
        message: String,
        more_info: Option<String>,
    },
    /// HTTP 429 on every attempt. The request had no effect.
    #[error("twilio rate limited the request (retry after {retry_after:?})")]
    RateLimited { retry_after: Option<Duration> },
    /// A 5xx after retries were exhausted, where the status proves nothing was done: any 5xx on
    /// a fetch or hangup, or 503 on a create. Other 5xx on a create surface as `UnknownOutcome`.
    #[error("twilio answered with server error http {0}")]
    Server(u16),
    /// A fetch or hangup timed out on every attempt.
    #[error("request to twilio timed out")]
    Timeout,
    /// The request never reached the server (DNS, refused, TLS handshake, connect timeout).
    /// On a create this proves nothing was created.
    #[error("could not connect to twilio: {0}")]
    Connect(String),
    /// A fetch or hangup broke after it was sent (e.g. the connection was reset mid-response),
    /// on every attempt.
    #[error("transport failure talking to twilio: {0}")]
    Transport(String),
    /// A create that waited to be retried (after a 429 or a 503, which prove nothing was done)
    /// was no longer wanted when its turn came: the caller's check said so, and nothing was
    /// sent again.
    #[error("withdrawn before its retry: the effect no longer stands")]
    Withdrawn,
    /// The base URL or a SID would not make a valid request URL.
    #[error("invalid twilio url: {0}")]
    InvalidUrl(String),
    /// The HTTP client could not be built (e.g. the TLS backend failed to initialise).
    #[error("could not build the http client: {0}")]
    Setup(String),
    /// A successful answer whose body we could not read as the expected resource. On a create
    /// this is reported as `UnknownOutcome` instead, because the resource does exist.
    #[error("could not decode twilio response: {0}")]
    Decode(String),
    /// A create may or may not have taken effect: it timed out after being sent, the connection
    /// broke mid-response, the server answered 500/502/504, or a 2xx body was unreadable. It was
    /// deliberately not retried; the caller must reconcile (status callback or fetch) before
    /// creating again, or it risks dialling or texting the lead twice.
    #[error("outcome of the create request is unknown: {0}")]
    UnknownOutcome(String),
}

impl TwilioError {
    /// Twilio's numeric error code, when the provider sent one.
    pub fn code(&self) -> Option<u32> {
        match self {
            Self::Api { code, .. } => *code,
            Self::RateLimited { .. } => Some(20429),
            _ => None,
        }
    }

    /// True when the provider may have acted on a create; see the variant's docs.
    pub fn is_unknown_outcome(&self) -> bool {
        matches!(self, Self::UnknownOutcome(_))
    }

    /// True for "resource not found" (HTTP 404 / Twilio 20404).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            Self::Api { status: 404, .. }
                | Self::Api {
                    code: Some(20404),
                    ..
                }
        )
    }
}

/// Twilio's JSON error body: `{"code": 21211, "message": "...", "more_info": "...", "status": 400}`.
#[derive(Debug, Deserialize)]
pub(crate) struct ErrorBody {
    #[serde(default)]
    pub code: Option<u32>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub more_info: Option<String>,
}

/// Builds an [`TwilioError::Api`] from a rejected response, tolerating non-JSON bodies (a proxy
/// or simulator may answer with plain text).
pub(crate) fn api_error(status: u16, body: &[u8]) -> TwilioError {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(parsed) => TwilioError::Api {
            status,
            code: parsed.code,
            message: parsed.message.unwrap_or_else(|| format!("http {status}")),
            more_info: parsed.more_info,
        },
        Err(_) => TwilioError::Api {
            status,
            code: None,
            message: snippet(body),
            more_info: None,
        },
    }
}

/// The start of a body for an error message; bounded so a large HTML page cannot flood logs.
fn snippet(body: &[u8]) -> String {
    const MAX: usize = 200;
    let text = String::from_utf8_lossy(body);
    let trimmed = text.trim();
    if trimmed.chars().count() <= MAX {
        trimmed.to_string()
    } else {
        let mut s: String = trimmed.chars().take(MAX).collect();
        s.push('…');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_twilio_error_json() {
        let body = br#"{"code": 21211, "message": "Invalid 'To' Phone Number", "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}"#;
        match api_error(400, body) {
            TwilioError::Api {
                status,
                code,
                message,
                more_info,
            } => {
                assert_eq!(status, 400);
                assert_eq!(code, Some(21211));
                assert_eq!(message, "Invalid 'To' Phone Number");
                assert_eq!(
                    more_info.as_deref(),
                    Some("https://www.twilio.com/docs/errors/21211")
                );
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn tolerates_plain_text_errors() {
        let err = api_error(404, b"not here");
        assert!(err.is_not_found());
        assert_eq!(err.code(), None);
        assert!(err.to_string().contains("not here"));
    }
}
