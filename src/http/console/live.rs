//! The console's live feed and its one static asset.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use futures_util::{Stream, StreamExt};

use super::super::AppState;
use super::Operator;
use crate::control::sessions;

/// How often the feed looks for changes, and how long one connection lasts (the browser's
/// EventSource reconnects by itself, and a reconnect rechecks the session).
const POLL: Duration = Duration::from_millis(500);
const LIFETIME: Duration = Duration::from_secs(600);
/// The session is looked up again every this many polls (2 s).
const RECHECK_EVERY: u32 = 4;

/// `GET /console/events`: `ready` once the baseline is read, then a `changed` event whenever
/// any of the tenant's opportunities changes.
/// Polling one aggregate per tenant keeps this simple and bounded: one small query per open
/// console every 500 ms, and no hook into the engine's commit path.
pub async fn events(
    State(state): State<AppState>,
    op: Operator,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let tenant = op.identity.tenant;
    let token = op.token;
    // The feed ends when the server stops, so that an open console does not hold the drain
    // up (the browser reconnects, to another instance).
    let stopping = state.edge.lifecycle.stopping();
    let deadline = tokio::time::Instant::now() + LIFETIME;
    let seed = (state, None::<(i64, i64)>, 0u32);
    let stream = futures_util::stream::unfold(seed, move |(state, mut last, mut polls)| {
        let token = token.clone();
        async move {
            loop {
                if tokio::time::Instant::now() >= deadline {
                    return None;
                }
                polls = polls.wrapping_add(1);
                // A revoked or expired key (or a signed-out session) ends the feed within
                // RECHECK_EVERY polls, not at the end of its lifetime.
                if polls % RECHECK_EVERY == 0
                    && !matches!(
                        sessions::find(state.engine.store(), &token).await,
                        Ok(Some(_))
                    )
                {
                    return None;
                }
                let now = sessions::fingerprint(state.engine.store(), tenant)
                    .await
                    .ok();
                if now.is_some() && now != last {
                    // The first reading is the baseline: `ready` says changes count from here.
                    let name = if last.is_none() { "ready" } else { "changed" };
                    last = now;
                    let event = Event::default().event(name).data("opportunities");
                    return Some((Ok(event), (state, last, polls)));
                }
                tokio::time::sleep(POLL).await;
            }
        }
    });
    let stream = stream.take_until(stopping.cancelled_owned());
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// htmx, vendored (`assets/htmx.min.js`, 0BSD): no CDN, no build step.
pub async fn htmx() -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, "application/javascript"),
            (CACHE_CONTROL, "public, max-age=86400"),
        ],
        include_str!("../../../assets/htmx.min.js"),
    )
}
