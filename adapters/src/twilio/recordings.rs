//! Call recordings, read by their sid from the account's own API host: metadata
//! (`Recordings/{Sid}.json`) and audio (`Recordings/{Sid}.mp3`). Never from a `RecordingUrl` a
//! callback carried: a URL from a request is the requester's to choose, and fetching it with
//! the account's credentials would hand them to whoever forged it.

use reqwest::header::ACCEPT;
use serde::{Deserialize, Serialize};
use tracing::instrument;

use super::client::TwilioClient;
use super::error::{api_error, TwilioError};
use super::lookup::transport;

/// The most audio bytes read for one recording (about 2 h of mono MP3 at 32 kbit/s): a
/// recording larger than this is refused rather than held in memory.
pub const MAX_MEDIA_BYTES: usize = 32 * 1024 * 1024;

/// A recording's metadata as Twilio answers it (the fields we read).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingResource {
    pub sid: String,
    #[serde(default)]
    pub call_sid: Option<String>,
    /// Seconds, as a string (Twilio's own type); `-1` while still processing.
    #[serde(default)]
    pub duration: Option<String>,
    #[serde(default)]
    pub channels: Option<u32>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
}

/// `RE` and 32 hexadecimal digits: anything else never reaches a URL.
pub fn is_recording_sid(sid: &str) -> bool {
    sid.len() == 34 && sid.starts_with("RE") && sid[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

impl TwilioClient {
    #[instrument(skip_all, fields(op = "fetch_recording", sid = %sid))]
    pub async fn fetch_recording(&self, sid: &str) -> Result<RecordingResource, TwilioError> {
        let body = self
            .recording_bytes(sid, "json", "application/json")
            .await?;
        serde_json::from_slice(&body)
            .map_err(|e| TwilioError::Decode(format!("recording answer: {e}")))
    }

    /// The recording's audio as MP3, at most [`MAX_MEDIA_BYTES`].
    #[instrument(skip_all, fields(op = "fetch_recording_media", sid = %sid))]
    pub async fn fetch_recording_media(&self, sid: &str) -> Result<Vec<u8>, TwilioError> {
        self.recording_bytes(sid, "mp3", "audio/mpeg").await
    }

    async fn recording_bytes(
        &self,
        sid: &str,
        extension: &str,
        accept: &str,
    ) -> Result<Vec<u8>, TwilioError> {
        if !is_recording_sid(sid) {
            return Err(TwilioError::InvalidUrl(format!(
                "not a recording sid: {sid:?}"
            )));
        }
        let url = format!("{}/Recordings/{sid}.{extension}", self.account_root);
        let mut response = self
            .http
            .get(&url)
            .timeout(self.config.timeout)
            .basic_auth(
                &self.credentials.account_sid,
                Some(&self.credentials.auth_token),
            )
            .header(ACCEPT, accept)
            .send()
            .await
            .map_err(|e| transport(&e))?;
        let status = response.status();
        if status.as_u16() == 429 {
            return Err(TwilioError::RateLimited { retry_after: None });
        }
        if status.is_server_error() {
            return Err(TwilioError::Server(status.as_u16()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| transport(&e))? {
            if body.len() + chunk.len() > MAX_MEDIA_BYTES {
                return Err(TwilioError::Decode(format!(
                    "recording larger than {MAX_MEDIA_BYTES} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            return Err(api_error(status.as_u16(), &body));
        }
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_recording_sid_reaches_a_url() {
        assert!(is_recording_sid("RE0123456789abcdef0123456789abcdef"));
        for bad in [
            "",
            "RE123",
            "CA0123456789abcdef0123456789abcdef",
            "RE0123456789abcdef0123456789abcde/",
            "RE0123456789abcdef0123456789abcdeg",
            "RE../../Calls/CA1234567890abcdef01234567",
        ] {
            assert!(!is_recording_sid(bad), "{bad}");
        }
    }
}
