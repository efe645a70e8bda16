//! Helpers of TwiML execution: one signed fetch of a document, and racing a wait against the
//! end of the leg it is for.

use std::future::Future;

use tokio::sync::watch;

use super::state::Shared;
use super::webhook::Outgoing;

/// `fut`'s output, or `None` if the leg ends first.
pub(crate) async fn until_ended<F: Future>(
    ended: &mut watch::Receiver<bool>,
    fut: F,
) -> Option<F::Output> {
    tokio::select! {
        biased;
        // An error means the call is gone, which ends the flow just the same.
        _ = ended.wait_for(|v| *v) => None,
        out = fut => Some(out),
    }
}

/// One attempt (Twilio does not retry a TwiML fetch that got an answer): the HTTP status and
/// the body, or why there is no usable body.
pub(crate) async fn fetch_text(
    shared: &Shared,
    out: &Outgoing,
) -> (Option<u16>, Result<String, String>) {
    let request = match out.request(&shared.http) {
        Ok(r) => r,
        Err(e) => return (None, Err(e)),
    };
    match request.send().await {
        Err(e) => (None, Err(format!("fetch failed: {e}"))),
        Ok(response) => {
            let status = response.status();
            let code = Some(status.as_u16());
            if !status.is_success() {
                return (code, Err(format!("answered HTTP {}", status.as_u16())));
            }
            match response.text().await {
                Ok(text) => (code, Ok(text)),
                Err(e) => (code, Err(format!("body unreadable: {e}"))),
            }
        }
    }
}
