//! Recordings of bridged `<Dial record>` conversations, as Twilio keeps them: a `RE…` sid per
//! recording, its metadata at `Recordings/{Sid}.json` and its audio at `Recordings/{Sid}.mp3`
//! (both behind the account's Basic auth), and a signed `recordingStatusCallback` once it is
//! `completed`. The audio is a few fixed bytes: what is checked is who may fetch it and how.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::server::{check_basic, respond, ApiError};
use super::state::Shared;

/// What a recording's media answers: an MP3 frame header and silence.
pub const MEDIA: &[u8] = b"ID3\x04\x00\x00\x00\x00\x00\x00\xff\xfb\x90\x00neuronx-sim-recording";

/// One recording kept by the simulator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Recording {
    pub sid: String,
    /// The parent call the `<Dial>` ran on.
    pub call_sid: String,
    pub duration_secs: u64,
}

/// Keeps a new recording of `call_sid`'s bridge and answers its sid.
pub(crate) fn keep(shared: &Shared, call_sid: &str, duration_secs: u64) -> Recording {
    let mut state = shared.lock();
    let sid = state.new_sid("RE");
    let rec = Recording {
        sid: sid.clone(),
        call_sid: call_sid.to_string(),
        duration_secs,
    };
    state.recordings.insert(sid, rec.clone());
    state.stats.recordings += 1;
    rec
}

/// The URL Twilio reports for a recording (on its own API host, as Twilio does; never fetched
/// by a careful client, which builds the URL from the sid and its own account's host).
pub(crate) fn url(account: &str, sid: &str) -> String {
    format!("https://api.twilio.com/2010-04-01/Accounts/{account}/Recordings/{sid}")
}

/// The parameters of a recording callback (and of a recorded `<Dial>`'s action).
pub(crate) fn params(account: &str, rec: &Recording) -> Vec<(String, String)> {
    vec![
        ("RecordingSid".into(), rec.sid.clone()),
        ("RecordingUrl".into(), url(account, &rec.sid)),
        ("RecordingDuration".into(), rec.duration_secs.to_string()),
    ]
}

/// The `recordingStatusCallback`'s own parameters besides the call's.
pub(crate) fn status_params(account: &str, rec: &Recording) -> Vec<(String, String)> {
    let mut p = params(account, rec);
    p.extend([
        ("RecordingStatus".into(), "completed".into()),
        ("RecordingChannels".into(), "2".into()),
        ("RecordingSource".into(), "DialVerb".into()),
        ("RecordingTrack".into(), "both".into()),
    ]);
    p
}

/// `GET /2010-04-01/Accounts/{account}/Recordings/{Sid}.json` (metadata) or `.mp3` (media).
pub(crate) async fn fetch(
    State(shared): State<Arc<Shared>>,
    Path((account, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let result = (|| {
        check_basic(&shared, &headers)?;
        if account != shared.config.account_sid {
            return Err(ApiError::not_found(&account));
        }
        let (sid, media) = match (file.strip_suffix(".json"), file.strip_suffix(".mp3")) {
            (Some(sid), _) => (sid, false),
            (None, Some(sid)) => (sid, true),
            _ => (file.as_str(), true),
        };
        let rec = shared
            .lock()
            .recordings
            .get(sid)
            .cloned()
            .ok_or_else(|| ApiError::not_found(sid))?;
        if media {
            shared.bump(|s| s.recording_fetches += 1);
            return Ok(([(header::CONTENT_TYPE, "audio/mpeg")], MEDIA).into_response());
        }
        Ok(Json(json!({
            "sid": rec.sid,
            "account_sid": account,
            "call_sid": rec.call_sid,
            "duration": rec.duration_secs.to_string(),
            "channels": 2,
            "status": "completed",
            "source": "DialVerb",
            "uri": format!("/2010-04-01/Accounts/{account}/Recordings/{}.json", rec.sid),
        }))
        .into_response())
    })();
    respond(&shared, result)
}
