//! The shared limiter: GCRA in a Lua script on Redis, so every instance draws on the same
//! budget and reads the same clock (Redis's `TIME`; instances' clocks drift).
//!
//! Fail closed: any error or a slow answer is [`LimitError::Unavailable`], never an admission.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Script};

use super::{Admission, LimitError, LimitKey, Quota};

/// Prepended to every key so ours stay apart from anything else in the same Redis.
pub const KEY_PREFIX: &str = "nx:rl:";

/// Upper bound on one call to Redis, connecting included. A send waiting on a limit is already
/// late; a hung Redis must not hold it longer than this before the caller is told to retry.
pub const CALL_TIMEOUT: Duration = Duration::from_millis(500);

/// GCRA state in Redis. Cloning is cheap and shares the connection.
#[derive(Clone)]
pub struct RedisLimiter {
    conn: ConnectionManager,
    script: Arc<Script>,
    /// The URL with any password masked, for logs and `Debug`.
    redacted_url: Arc<str>,
}

impl std::fmt::Debug for RedisLimiter {
    // By hand: the connection manager's `Debug` prints the client's connection info, password
    // included.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLimiter")
            .field("url", &self.redacted_url)
            .finish_non_exhaustive()
    }
}

impl RedisLimiter {
    /// Parses `url` and prepares the connection without waiting for it: an unreachable Redis at
    /// start is not fatal, checks just fail until it answers. A malformed URL is an error.
    pub fn new(url: &str) -> Result<Self, LimitError> {
        let redacted_url = redact(url);
        let config_error = |e: redis::RedisError| {
            LimitError::Config(scrub(
                &format!("redis url {redacted_url} is not usable: {e}"),
                url,
            ))
        };
        let client = Client::open(url).map_err(config_error)?;
        // Few, short reconnect attempts: a check never waits longer than CALL_TIMEOUT anyway,
        // and once the attempts are spent the next call starts a fresh round, so the limiter
        // recovers by itself whenever Redis is back.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CALL_TIMEOUT))
            .set_response_timeout(Some(CALL_TIMEOUT))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(250));
        let conn = ConnectionManager::new_lazy_with_config(client, config).map_err(config_error)?;
        Ok(Self {
            conn,
            script: Arc::new(Script::new(include_str!("gcra.lua"))),
            redacted_url: redacted_url.into(),
        })
    }

    /// See [`super::Limiter::check`].
    pub async fn check(&self, keys: &[(LimitKey, Quota)]) -> Result<Admission, LimitError> {
        if keys.is_empty() {
            return Ok(Admission::Admitted);
        }
        let mut invocation = self.script.prepare_invoke();
        for (key, quota) in keys {
            let cell = quota.cell();
            invocation
                .key(format!("{KEY_PREFIX}{}", key.as_str()))
                .arg(cell.interval_us)
                .arg(cell.tolerance_us);
        }
        // EVALSHA, and on NOSCRIPT (a restarted or flushed Redis) SCRIPT LOAD then EVALSHA again.
        let mut conn = self.conn.clone();
        let wait_us: u64 = bounded(invocation.invoke_async(&mut conn)).await?;
        Ok(if wait_us == 0 {
            Admission::Admitted
        } else {
            Admission::Wait(Duration::from_micros(wait_us))
        })
    }

    /// See [`super::Limiter::ping`].
    pub async fn ping(&self) -> Result<(), LimitError> {
        let mut conn = self.conn.clone();
        let _pong: String = bounded(redis::cmd("PING").query_async(&mut conn)).await?;
        Ok(())
    }

    pub fn redacted_url(&self) -> &str {
        &self.redacted_url
    }
}

/// Runs one Redis call under [`CALL_TIMEOUT`]. A timeout may hide a script that did run: the
/// caller then waits although the budget was spent, which errs on the side of sending less.
async fn bounded<T>(
    call: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Result<T, LimitError> {
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(LimitError::Unavailable(format!("redis: {e}"))),
        Err(_) => Err(LimitError::Unavailable(format!(
            "redis did not answer within {} ms",
            CALL_TIMEOUT.as_millis()
        ))),
    }
}

/// The URL with its password replaced, or a placeholder when it does not even parse (then we
/// cannot tell which part is the password, so none of it is shown).
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() && parsed.set_password(Some("***")).is_err() {
                return "<unparseable url>".to_owned();
            }
            parsed.to_string()
        }
        Err(e) => format!("<unparseable url: {e}>"),
    }
}

/// Belt and braces over `redact`: removes the password from any message that might echo the
/// URL (the redis crate's own error texts included).
fn scrub(message: &str, url: &str) -> String {
    let password = match url::Url::parse(url) {
        Ok(parsed) => parsed.password().map(str::to_owned),
        // Unparseable: take whatever sits between the first ':' of the userinfo and the '@'.
        Err(_) => url
            .split_once("://")
            .and_then(|(_, rest)| rest.rsplit_once('@'))
            .and_then(|(userinfo, _)| userinfo.split_once(':'))
            .map(|(_, password)| password.to_owned()),
    };
    match password {
        Some(password) if !password.is_empty() => message.replace(&password, "***"),
        _ => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_masks_the_password_and_keeps_the_rest() {
        let shown = redact("redis://user:hunter2@cache.internal:6380/2");
        assert_eq!(shown, "redis://user:***@cache.internal:6380/2");
    }

    #[test]
    fn an_unparseable_url_is_not_echoed() {
        let shown = redact("redis://:hunter2@host:notaport");
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn scrub_removes_the_password_even_from_an_unparseable_url() {
        let url = "redis://:hunter2@host:notaport";
        assert_eq!(
            scrub(&format!("bad {url}"), url),
            "bad redis://:***@host:notaport"
        );
    }
}
