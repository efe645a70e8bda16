//! Outgoing webhooks: signing, deliberate disorder (swaps and duplicates) and delivery with
//! retries.

use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::Rng;
use reqwest::header::CONTENT_TYPE;
use tokio::time::Instant;
use tracing::{debug, warn};

use super::config::{ms, Disorder};
use super::scheduler::Job;
use super::state::{Scheduled, Shared};
use super::stats::SimStats;
use super::twiml::Method;
use crate::twilio::signature;

/// One signed webhook: a form POST, or a GET with the parameters in its query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Outgoing {
    /// For a GET, already carrying the parameters in its query.
    pub url: String,
    /// The form body (empty for a GET).
    pub params: Vec<(String, String)>,
    pub signature: String,
    pub method: Method,
    /// Send a second, identical copy right after the first.
    pub duplicate: bool,
}

impl Outgoing {
    pub fn signed(auth_token: &str, url: &str, params: Vec<(String, String)>) -> Self {
        let signature = signature::compute(auth_token, url, &params);
        Self {
            url: url.to_string(),
            params,
            signature,
            method: Method::Post,
            duplicate: false,
        }
    }

    /// Twilio signs a GET over its full URL (query included) with no body parameters.
    pub fn signed_with(
        method: Method,
        auth_token: &str,
        url: &str,
        params: Vec<(String, String)>,
    ) -> Self {
        match method {
            Method::Post => Self::signed(auth_token, url, params),
            Method::Get => {
                let url = with_query(url, &params);
                let mut out = Self::signed(auth_token, &url, Vec::new());
                out.method = Method::Get;
                out
            }
        }
    }

    /// The request, signed; the caller sends it.
    pub fn request(&self, http: &reqwest::Client) -> Result<reqwest::RequestBuilder, String> {
        let builder = match self.method {
            Method::Get => http.get(&self.url),
            Method::Post => {
                let body = serde_urlencoded::to_string(&self.params).map_err(|e| e.to_string())?;
                http.post(&self.url)
                    .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(body)
            }
        };
        Ok(builder.header("X-Twilio-Signature", &self.signature))
    }
}

/// `url` with `params` appended to its query (for GET webhooks).
fn with_query(url: &str, params: &[(String, String)]) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) => {
            parsed.query_pairs_mut().extend_pairs(params);
            parsed.to_string()
        }
        // Unparsable URLs fail when sent; keep them as they are.
        Err(_) => url.to_string(),
    }
}

/// The webhook stream of one call or message: holds back a webhook chosen to be swapped until
/// the next one is ready.
#[derive(Debug, Default)]
pub(crate) struct Pipe {
    held: Option<Outgoing>,
}

impl Pipe {
    /// Applies disorder to `out`; returns what to send now, in order. `last` marks the final
    /// webhook of the stream, which is never held and flushes any held one after itself.
    pub fn push(
        &mut self,
        mut out: Outgoing,
        last: bool,
        disorder: &Disorder,
        rng: &mut StdRng,
        stats: &mut SimStats,
    ) -> Vec<Outgoing> {
        // Both draws always happen, so the rest of the stream does not depend on the config.
        let dup = rng.gen_bool(disorder.duplicate_probability);
        let swap = rng.gen_bool(disorder.swap_probability);
        out.duplicate = dup;
        if let Some(held) = self.held.take() {
            stats.reordered += 1;
            vec![out, held]
        } else if swap && !last {
            self.held = Some(out);
            Vec::new()
        } else {
            vec![out]
        }
    }

    /// The stream ended without a final webhook of its own: release what is held.
    pub fn flush(&mut self) -> Vec<Outgoing> {
        self.held.take().into_iter().collect()
    }
}

/// Schedules `outs` after a random jitter, or nothing when empty.
pub(crate) fn after_jitter(
    outs: Vec<Outgoing>,
    jitter_ms: u64,
    rng: &mut StdRng,
    now: Instant,
) -> Scheduled {
    if outs.is_empty() {
        return Vec::new();
    }
    let jitter = rng.gen_range(0..=jitter_ms);
    vec![(now + ms(jitter), Job::Deliver(outs))]
}

/// Sends `items` one after another (so a swap really arrives swapped).
pub(crate) async fn deliver(shared: Arc<Shared>, items: Vec<Outgoing>) {
    for item in &items {
        send(&shared, item).await;
        if item.duplicate {
            shared.bump(|s| s.duplicates_sent += 1);
            send(&shared, item).await;
        }
    }
}

async fn send(shared: &Shared, item: &Outgoing) {
    let request = match item.request(&shared.http) {
        Ok(request) => request,
        Err(e) => {
            warn!(url = %item.url, error = %e, "could not encode webhook");
            shared.bump(|s| s.callback_failures += 1);
            return;
        }
    };
    shared.bump(|s| s.callbacks_sent += 1);
    let delivery = &shared.config.delivery;
    for attempt in 0..=delivery.max_retries {
        if attempt > 0 {
            let factor = 1u64 << attempt.min(16);
            tokio::time::sleep(Duration::from_millis(
                delivery.backoff_ms.saturating_mul(factor / 2),
            ))
            .await;
            shared.bump(|s| s.callback_retries += 1);
        }
        shared.bump(|s| s.callback_attempts += 1);
        // Bodies here are plain strings, so the builder always clones.
        let Some(attempt_request) = request.try_clone() else {
            break;
        };
        let result = attempt_request.send().await;
        match result {
            Ok(response) if response.status().is_success() => {
                shared.bump(|s| s.callbacks_delivered += 1);
                return;
            }
            Ok(response) => {
                debug!(url = %item.url, status = response.status().as_u16(), attempt, "webhook refused");
            }
            Err(e) => {
                debug!(url = %item.url, error = %e, attempt, "webhook failed");
            }
        }
    }
    warn!(url = %item.url, "webhook abandoned after retries");
    shared.bump(|s| s.callback_failures += 1);
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    fn out(n: u32) -> Outgoing {
        Outgoing::signed("t", "http://x/cb", vec![("N".into(), n.to_string())])
    }

    #[test]
    fn swap_holds_until_next_and_final_flushes() {
        let always = Disorder {
            swap_probability: 1.0,
            duplicate_probability: 0.0,
        };
        let mut rng = StdRng::seed_from_u64(1);
        let mut stats = SimStats::default();
        let mut pipe = Pipe::default();
        assert!(pipe
            .push(out(0), false, &always, &mut rng, &mut stats)
            .is_empty());
        let sent = pipe.push(out(1), false, &always, &mut rng, &mut stats);
        assert_eq!(sent, vec![out(1), out(0)]);
        assert!(pipe
            .push(out(2), false, &always, &mut rng, &mut stats)
            .is_empty());
        let sent = pipe.push(out(3), true, &always, &mut rng, &mut stats);
        assert_eq!(sent, vec![out(3), out(2)]);
        assert_eq!(stats.reordered, 2);
        assert!(pipe.flush().is_empty());
    }

    #[test]
    fn signature_covers_url_and_params() {
        let o = out(7);
        assert!(signature::validate(
            "t",
            "http://x/cb",
            &o.params,
            &o.signature
        ));
        assert!(!signature::validate(
            "t",
            "http://x/cb?y",
            &o.params,
            &o.signature
        ));
    }
}
