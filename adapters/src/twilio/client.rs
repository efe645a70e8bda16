//! REST client for Twilio's 2010-04-01 Calls and Messages resources (or a compatible carrier
//! simulator). Form-encoded requests, HTTP Basic auth, bounded retries.
//!
//! Retry rules live in [`super::retry`]: creates are repeated only when the failed attempt
//! provably did nothing (connect failure, 429, 503); anything that may have dialled or texted
//! the lead ends in [`TwilioError::UnknownOutcome`] without a second attempt.

use std::fmt;
use std::future::Future;
use std::time::{Duration, SystemTime};

use reqwest::header::{ACCEPT, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use tracing::{instrument, warn};

use super::error::{api_error, TwilioError};
use super::resources::{
    CallResource, CreateCall, CreateMessage, HangupStatus, MessagePage, MessageResource,
};
use super::retry::{self, Failure, OpKind, Verdict};
use crate::outbound::OutboundGuard;

/// Twilio's production API host.
pub const DEFAULT_BASE_URL: &str = "https://api.twilio.com";
/// Twilio's Lookup API host, used when the base URL is Twilio's own; any other base URL (the
/// carrier simulator, a test double) serves Lookup under itself.
pub const DEFAULT_LOOKUP_URL: &str = "https://lookups.twilio.com";
const API_VERSION: &str = "2010-04-01";

/// Account SID and auth token, used as the Basic-auth user and password.
#[derive(Clone, PartialEq, Eq)]
pub struct TwilioCredentials {
    pub account_sid: String,
    pub auth_token: String,
}

// Hand-written so the token can never reach a log line through `{:?}`.
impl fmt::Debug for TwilioCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwilioCredentials")
            .field("account_sid", &self.account_sid)
            .field("auth_token", &"<redacted>")
            .finish()
    }
}

/// Timeouts and retry budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// Whole-request deadline (connect + send + full response), per attempt.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Extra attempts after the first, for failures that are safe to repeat.
    pub max_retries: u32,
    pub backoff_base: Duration,
    /// Cap on any single wait, including one asked for by `Retry-After`.
    pub backoff_max: Duration,
    /// Whole-request deadline of a line-type lookup, tried once: the text waiting on it goes
    /// out anyway when it fails, so a slow lookup must not hold it long.
    pub lookup_timeout: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(3),
            max_retries: 3,
            backoff_base: Duration::from_millis(200),
            backoff_max: Duration::from_secs(5),
            lookup_timeout: Duration::from_secs(3),
        }
    }
}

/// A Twilio REST client bound to one account. Cheap to clone (the connection pool is shared).
#[derive(Debug, Clone)]
pub struct TwilioClient {
    pub(super) http: reqwest::Client,
    /// `{base}/2010-04-01/Accounts/{AccountSid}`, without a trailing slash.
    pub(super) account_root: String,
    /// Where `/v2/PhoneNumbers/…` is served, without a trailing slash.
    pub(super) lookup_root: String,
    pub(super) credentials: TwilioCredentials,
    pub(super) config: ClientConfig,
}

/// How one attempt ended.
enum Attempt<T> {
    /// Final: success, or an error that retrying cannot change.
    Done(Result<T, TwilioError>),
    Failed {
        failure: Failure,
        error: TwilioError,
        retry_after: Option<Duration>,
    },
}

impl TwilioClient {
    /// `base_url` is [`DEFAULT_BASE_URL`] in production, or e.g. `http://127.0.0.1:8080` for the
    /// carrier simulator; a path prefix is allowed. The base URL is the tenant's to choose, so
    /// it and every address its host resolves to pass `guard` (loopback only where the
    /// configuration allows it).
    pub fn new(
        base_url: &str,
        credentials: TwilioCredentials,
        config: ClientConfig,
        guard: &OutboundGuard,
    ) -> Result<Self, TwilioError> {
        let parsed = guard
            .check_url(base_url)
            .map_err(|e| TwilioError::InvalidUrl(format!("{base_url}: {e}")))?;
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(TwilioError::InvalidUrl(format!(
                "{base_url}: base url must not carry a query or fragment"
            )));
        }
        check_sid(&credentials.account_sid)?;
        // The guard's builder never follows redirects: a redirected POST would silently become
        // a GET (or be replayed), and a 3xx could lead inside; 3xx is an error.
        let http = guard
            .client_builder()
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .user_agent(concat!("neuronx/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| TwilioError::Setup(error_chain(&e)))?;
        let base = base_url.trim_end_matches('/');
        let account_root = format!("{base}/{API_VERSION}/Accounts/{}", credentials.account_sid);
        let lookup_root = if base == DEFAULT_BASE_URL {
            DEFAULT_LOOKUP_URL.to_owned()
        } else {
            base.to_owned()
        };
        Ok(Self {
            http,
            account_root,
            lookup_root,
            credentials,
            config,
        })
    }

    pub fn account_sid(&self) -> &str {
        &self.credentials.account_sid
    }

    /// Places an outbound call. Never retried once the request may have reached Twilio: on
    /// [`TwilioError::UnknownOutcome`] the caller must reconcile before dialling again.
    #[instrument(skip_all, fields(op = "create_call"))]
    pub async fn create_call(&self, req: &CreateCall) -> Result<CallResource, TwilioError> {
        self.create_call_while(req, always).await
    }

    /// [`Self::create_call`], asking `still_wanted` before each retry: a dial that waited out a
    /// 429 while its lead opted out is [`TwilioError::Withdrawn`], not placed.
    #[instrument(skip_all, fields(op = "create_call"))]
    pub async fn create_call_while<W, F>(
        &self,
        req: &CreateCall,
        still_wanted: W,
    ) -> Result<CallResource, TwilioError>
    where
        W: FnMut() -> F,
        F: Future<Output = bool>,
    {
        let form = encode(&req.form_fields())?;
        let url = format!("{}/Calls.json", self.account_root);
        self.execute_while(
            "create_call",
            OpKind::Create,
            Method::POST,
            &url,
            Some(form),
            still_wanted,
        )
        .await
    }

    /// Ends a call: `Completed` hangs up even an answered call; `Canceled` only stops a call that
    /// is still queued or ringing. Idempotent, so retried on transient failures.
    #[instrument(skip_all, fields(op = "hangup_call", sid = %sid))]
    pub async fn hangup_call(
        &self,
        sid: &str,
        status: HangupStatus,
    ) -> Result<CallResource, TwilioError> {
        check_sid(sid)?;
        let form = encode(&[("Status", status.as_str().to_string())])?;
        let url = format!("{}/Calls/{sid}.json", self.account_root);
        self.execute(
            "hangup_call",
            OpKind::Idempotent,
            Method::POST,
            &url,
            Some(form),
        )
        .await
    }

    #[instrument(skip_all, fields(op = "fetch_call", sid = %sid))]
    pub async fn fetch_call(&self, sid: &str) -> Result<CallResource, TwilioError> {
        check_sid(sid)?;
        let url = format!("{}/Calls/{sid}.json", self.account_root);
        self.execute("fetch_call", OpKind::Idempotent, Method::GET, &url, None)
            .await
    }

    /// Sends an SMS. Same no-duplicate rule as [`Self::create_call`].
    #[instrument(skip_all, fields(op = "create_message"))]
    pub async fn create_message(
        &self,
        req: &CreateMessage,
    ) -> Result<MessageResource, TwilioError> {
        self.create_message_while(req, always).await
    }

    /// [`Self::create_message`], asking `still_wanted` before each retry.
    #[instrument(skip_all, fields(op = "create_message"))]
    pub async fn create_message_while<W, F>(
        &self,
        req: &CreateMessage,
        still_wanted: W,
    ) -> Result<MessageResource, TwilioError>
    where
        W: FnMut() -> F,
        F: Future<Output = bool>,
    {
        let form = encode(&req.form_fields())?;
        let url = format!("{}/Messages.json", self.account_root);
        self.execute_while(
            "create_message",
            OpKind::Create,
            Method::POST,
            &url,
            Some(form),
            still_wanted,
        )
        .await
    }

    /// The newest messages (at most 20) from `from` to `to`, newest first: how a text whose
    /// create had an unknown outcome is looked for (Twilio's create takes no idempotency key).
    #[instrument(skip_all, fields(op = "list_messages"))]
    pub async fn list_messages(
        &self,
        to: &str,
        from: &str,
    ) -> Result<Vec<MessageResource>, TwilioError> {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("To", to)
            .append_pair("From", from)
            .append_pair("PageSize", "20")
            .finish();
        let url = format!("{}/Messages.json?{query}", self.account_root);
        let page: MessagePage = self
            .execute("list_messages", OpKind::Idempotent, Method::GET, &url, None)
            .await?;
        Ok(page.messages)
    }

    #[instrument(skip_all, fields(op = "fetch_message", sid = %sid))]
    pub async fn fetch_message(&self, sid: &str) -> Result<MessageResource, TwilioError> {
        check_sid(sid)?;
        let url = format!("{}/Messages/{sid}.json", self.account_root);
        self.execute("fetch_message", OpKind::Idempotent, Method::GET, &url, None)
            .await
    }

    async fn execute<T: DeserializeOwned>(
        &self,
        op: &'static str,
        kind: OpKind,
        method: Method,
        url: &str,
        form: Option<String>,
    ) -> Result<T, TwilioError> {
        self.execute_while(op, kind, method, url, form, always)
            .await
    }

    async fn execute_while<T, W, F>(
        &self,
        op: &'static str,
        kind: OpKind,
        method: Method,
        url: &str,
        form: Option<String>,
        mut still_wanted: W,
    ) -> Result<T, TwilioError>
    where
        T: DeserializeOwned,
        W: FnMut() -> F,
        F: Future<Output = bool>,
    {
        let mut attempt: u32 = 0;
        loop {
            let (failure, error, retry_after) =
                match self.attempt(kind, method.clone(), url, form.clone()).await {
                    Attempt::Done(result) => return result,
                    Attempt::Failed {
                        failure,
                        error,
                        retry_after,
                    } => (failure, error, retry_after),
                };
            match retry::classify(kind, failure) {
                Verdict::GiveUp => return Err(error),
                Verdict::Unknown => {
                    warn!(
                        op,
                        attempt,
                        ?failure,
                        "create outcome unknown; not retrying"
                    );
                    return Err(TwilioError::UnknownOutcome(format!("{op}: {error}")));
                }
                Verdict::Retry if attempt < self.config.max_retries => {
                    let wait = retry::delay(
                        attempt,
                        self.config.backoff_base,
                        self.config.backoff_max,
                        retry_after,
                        &mut rand::thread_rng(),
                    );
                    warn!(
                        op,
                        attempt,
                        ?failure,
                        wait_ms = wait.as_millis() as u64,
                        "retrying"
                    );
                    tokio::time::sleep(wait).await;
                    // The wait may have outlived the reason for the request (a pause, an
                    // opt-out): ask before repeating a create.
                    if kind == OpKind::Create && !still_wanted().await {
                        warn!(op, attempt, "withdrawn while waiting to retry");
                        return Err(TwilioError::Withdrawn);
                    }
                    attempt += 1;
                }
                Verdict::Retry => return Err(error),
            }
        }
    }

    async fn attempt<T: DeserializeOwned>(
        &self,
        kind: OpKind,
        method: Method,
        url: &str,
        form: Option<String>,
    ) -> Attempt<T> {
        let mut request = self
            .http
            .request(method, url)
            .basic_auth(
                &self.credentials.account_sid,
                Some(&self.credentials.auth_token),
            )
            .header(ACCEPT, "application/json");
        if let Some(body) = form {
            request = request
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(body);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => return transport_failure(&e),
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| retry::parse_retry_after(v, SystemTime::now()));
        // Read the whole body before judging: a reset mid-body is itself an ambiguous outcome.
        let body = match response.bytes().await {
            Ok(body) => body,
            Err(e) => return transport_failure(&e),
        };
        if status.is_success() {
            return Attempt::Done(serde_json::from_slice::<T>(&body).map_err(|e| {
                let detail = format!("http {} with an undecodable body: {e}", status.as_u16());
                match kind {
                    // The resource exists but we cannot tell which it is: the caller must reconcile.
                    OpKind::Create => TwilioError::UnknownOutcome(detail),
                    OpKind::Idempotent => TwilioError::Decode(detail),
                }
            }));
        }
        let code = status.as_u16();
        let error = if status == StatusCode::TOO_MANY_REQUESTS {
            TwilioError::RateLimited { retry_after }
        } else if status.is_server_error() {
            TwilioError::Server(code)
        } else {
            api_error(code, &body)
        };
        Attempt::Failed {
            failure: Failure::Status(code),
            error,
            retry_after,
        }
    }
}

/// Maps a reqwest error onto what it proves about whether the request reached the server.
fn transport_failure<T>(e: &reqwest::Error) -> Attempt<T> {
    // Checked first: a connect timeout is also a timeout, but it proves nothing was sent.
    let (failure, error) = if e.is_connect() {
        (Failure::Connect, TwilioError::Connect(error_chain(e)))
    } else if e.is_timeout() {
        (Failure::TimedOut, TwilioError::Timeout)
    } else {
        (Failure::Interrupted, TwilioError::Transport(error_chain(e)))
    };
    Attempt::Failed {
        failure,
        error,
        retry_after: None,
    }
}

/// An error and its sources on one line; reqwest's top-level message alone is rarely useful.
pub(super) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

fn encode(fields: &[(&str, String)]) -> Result<String, TwilioError> {
    serde_urlencoded::to_string(fields)
        .map_err(|e| TwilioError::Setup(format!("could not encode form: {e}")))
}

/// SIDs are interpolated into URL paths, so anything but a plain token is refused rather than
/// escaped: a `/` or `..` in a SID is a bug upstream, never a real Twilio identifier.
fn check_sid(sid: &str) -> Result<(), TwilioError> {
    let ok = !sid.is_empty()
        && sid.len() <= 64
        && sid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(TwilioError::InvalidUrl(format!("not a valid sid: {sid:?}")))
    }
}

/// The check of a request nobody withdraws.
fn always() -> std::future::Ready<bool> {
    std::future::ready(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds() -> TwilioCredentials {
        TwilioCredentials {
            account_sid: "AC123".into(),
            auth_token: "super-secret-token".into(),
        }
    }

    #[test]
    fn debug_redacts_token() {
        let shown = format!("{:?}", creds());
        assert!(shown.contains("AC123"));
        assert!(!shown.contains("super-secret-token"));
        let client = TwilioClient::new(
            DEFAULT_BASE_URL,
            creds(),
            ClientConfig::default(),
            &OutboundGuard::default(),
        );
        let shown = format!("{client:?}");
        assert!(!shown.contains("super-secret-token"));
    }

    #[test]
    fn rejects_bad_base_urls_and_sids() {
        for bad in [
            "not a url",
            "ftp://x.example",
            "https://x.example/?a=b",
            "http://127.0.0.1:9",
            "http://169.254.169.254",
        ] {
            let r = TwilioClient::new(
                bad,
                creds(),
                ClientConfig::default(),
                &OutboundGuard::default(),
            );
            assert!(matches!(r, Err(TwilioError::InvalidUrl(_))), "{bad}");
        }
        let mut c = creds();
        c.account_sid = "AC1/../x".into();
        let r = TwilioClient::new(
            DEFAULT_BASE_URL,
            c,
            ClientConfig::default(),
            &OutboundGuard::default(),
        );
        assert!(matches!(r, Err(TwilioError::InvalidUrl(_))));
        assert!(check_sid("CA0123abcdef").is_ok());
        assert!(check_sid("").is_err());
        assert!(check_sid("CA1?x=1").is_err());
    }

    #[test]
    fn account_root_joins_cleanly() {
        let loopback = OutboundGuard::from_allow_list(&["127.0.0.0/8"]).unwrap();
        let client = TwilioClient::new(
            "http://127.0.0.1:9/sim/",
            creds(),
            ClientConfig::default(),
            &loopback,
        );
        assert!(matches!(
            client.map(|c| c.account_root),
            Ok(root) if root == "http://127.0.0.1:9/sim/2010-04-01/Accounts/AC123"
        ));
    }
}
