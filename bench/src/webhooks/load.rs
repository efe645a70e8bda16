//! The load generator: callbacks signed beforehand, sent with a fixed concurrency, timed.

use super::*;

/// One callback, ready to send: everything that costs CPU on the client is done beforehand.
pub(super) struct Prepared {
    /// Path and query, e.g. `/webhooks/twilio/{tenant}/voice/status?call=..&opp=..`.
    pub(super) path_and_query: String,
    pub(super) body: Bytes,
    pub(super) signature: String,
}

/// The result of one load run.
pub(super) struct LoadRun {
    pub(super) elapsed: Duration,
    /// Latency of every answered request, in microseconds, sorted.
    pub(super) latencies_us: Vec<u32>,
    pub(super) ok: u64,
    pub(super) non_200: u64,
    pub(super) errors: u64,
}

impl LoadRun {
    pub(super) fn percentile_ms(&self, q: f64) -> f64 {
        let n = self.latencies_us.len();
        if n == 0 {
            return 0.0;
        }
        let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
        f64::from(self.latencies_us[rank - 1]) / 1000.0
    }

    pub(super) fn max_ms(&self) -> f64 {
        self.latencies_us
            .last()
            .map(|&us| f64::from(us) / 1000.0)
            .unwrap_or(0.0)
    }

    pub(super) fn ok_per_s(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Builds the N callbacks. Request `i` goes to call `i % K` with sequence number `i / K`, so
/// the first K requests initiate every call, the next K ring them, and so on; each
/// (CallSid, SequenceNumber) pair occurs once. Signatures are computed here, before any timing
/// starts, so the client's HMAC cost is not charged against the server.
pub(super) fn prepare(
    tenant: TenantId,
    public_url: &str,
    calls: &[(Uuid, Uuid)],
    requests: usize,
) -> anyhow::Result<Vec<Prepared>> {
    let mut out = Vec::with_capacity(requests);
    for i in 0..requests {
        let (call_id, opp_id) = calls[i % calls.len()];
        let sequence = i / calls.len();
        let status = STATUSES[sequence % STATUSES.len()];
        let path_and_query = format!(
            "/webhooks/twilio/{}/voice/status?call={call_id}&opp={opp_id}",
            tenant.0
        );
        let params: Vec<(String, String)> = [
            ("AccountSid", ACCOUNT_SID.to_owned()),
            ("ApiVersion", "2010-04-01".to_owned()),
            ("CallSid", call_sid(call_id)),
            ("CallStatus", status.to_owned()),
            ("CallbackSource", "call-progress-events".to_owned()),
            ("Called", "+14155551234".to_owned()),
            ("Caller", "+14155550000".to_owned()),
            ("Direction", "outbound-api".to_owned()),
            ("From", "+14155550000".to_owned()),
            ("SequenceNumber", sequence.to_string()),
            ("Timestamp", "Mon, 01 Jan 2024 12:00:00 +0000".to_owned()),
            ("To", "+14155551234".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let url = format!("{public_url}{path_and_query}");
        let signature = signature::compute(AUTH_TOKEN, &url, &params);
        let body = serde_urlencoded::to_string(&params).context("encoding a callback form")?;
        out.push(Prepared {
            path_and_query,
            body: Bytes::from(body),
            signature,
        });
    }
    Ok(out)
}

/// The provider sid the stub carrier gives a call, and the callbacks name.
pub(super) fn call_sid(call_id: Uuid) -> String {
    format!("CA{}", call_id.simple())
}

pub(super) fn client(concurrency: usize) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .timeout(REQUEST_TIMEOUT)
        .no_proxy()
        .build()
        .context("building the HTTP client")
}

/// C workers pull request indices from a shared counter and send each request to `base`
/// (`http://127.0.0.1:port`), reading every answer to its end so connections are reused.
pub(super) async fn drive(
    client: &reqwest::Client,
    base: &str,
    requests: &Arc<Vec<Prepared>>,
    concurrency: usize,
) -> anyhow::Result<LoadRun> {
    // URLs are built before timing starts too.
    let urls: Arc<Vec<String>> = Arc::new(
        requests
            .iter()
            .map(|r| format!("{base}{}", r.path_and_query))
            .collect(),
    );
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let client = client.clone();
        let requests = requests.clone();
        let urls = urls.clone();
        let next = next.clone();
        workers.spawn(async move {
            let mut latencies = Vec::with_capacity(requests.len() / concurrency.max(1) + 1);
            let (mut ok, mut non_200, mut errors) = (0u64, 0u64, 0u64);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let (Some(req), Some(url)) = (requests.get(i), urls.get(i)) else {
                    break;
                };
                let sent = Instant::now();
                let answer = client
                    .post(url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .header("x-twilio-signature", &req.signature)
                    .body(req.body.clone())
                    .send()
                    .await;
                let status = match answer {
                    Ok(resp) => {
                        let status = resp.status();
                        match resp.bytes().await {
                            Ok(_) => Some(status),
                            Err(_) => None,
                        }
                    }
                    Err(_) => None,
                };
                let us = u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX);
                match status {
                    Some(s) if s == reqwest::StatusCode::OK => {
                        ok += 1;
                        latencies.push(us);
                    }
                    Some(_) => {
                        non_200 += 1;
                        latencies.push(us);
                    }
                    None => errors += 1,
                }
            }
            (latencies, ok, non_200, errors)
        });
    }
    let mut run = LoadRun {
        elapsed: Duration::ZERO,
        latencies_us: Vec::with_capacity(requests.len()),
        ok: 0,
        non_200: 0,
        errors: 0,
    };
    let joined = tokio::time::timeout(RUN_DEADLINE, async {
        while let Some(done) = workers.join_next().await {
            let (latencies, ok, non_200, errors) = done.context("a load worker failed")?;
            run.latencies_us.extend(latencies);
            run.ok += ok;
            run.non_200 += non_200;
            run.errors += errors;
        }
        anyhow::Ok(())
    })
    .await;
    match joined {
        Ok(result) => result?,
        Err(_) => bail!("the load run did not finish within {RUN_DEADLINE:?}"),
    }
    run.elapsed = started.elapsed();
    run.latencies_us.sort_unstable();
    Ok(run)
}
