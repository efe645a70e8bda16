//! The rules a loaded configuration must meet. Each refusal names one key, so that the loader
//! can say which layer (the default, the file or an environment variable) set the bad value.

use super::Settings;

/// A rule broken by the value of `key`.
#[derive(Debug)]
pub(super) struct Invalid {
    pub key: &'static str,
    pub message: String,
}

fn refuse(key: &'static str, message: impl Into<String>) -> Result<(), Invalid> {
    Err(Invalid {
        key,
        message: message.into(),
    })
}

fn positive(key: &'static str, value: u64) -> Result<(), Invalid> {
    if value == 0 {
        return refuse(key, "must be positive");
    }
    Ok(())
}

impl Settings {
    pub(super) fn check(&self) -> Result<(), Invalid> {
        let e = &self.engine;
        if e.shard_count == 0 || e.shard_count > 65_536 {
            refuse(
                "engine.shard_count",
                format!("must be between 1 and 65536, got {}", e.shard_count),
            )?;
        }
        if e.lease_renew_ms == 0 || e.lease_renew_ms.saturating_mul(2) > e.lease_ttl_ms {
            refuse(
                "engine.lease_renew_ms",
                format!(
                    "must be positive and at most half of engine.lease_ttl_ms ({}), got {}",
                    e.lease_ttl_ms, e.lease_renew_ms
                ),
            )?;
        }
        // usize to u64 is lossless on every target this builds for.
        positive("engine.commit_max_batch", e.commit_max_batch as u64)?;
        positive("engine.commit_workers", e.commit_workers as u64)?;
        positive("engine.effect_concurrency", e.effect_concurrency as u64)?;
        positive("engine.max_resident_actors", e.max_resident_actors as u64)?;
        positive("engine.max_strikes", u64::from(e.max_strikes))?;
        positive("engine.reply_timeout_ms", e.reply_timeout_ms)?;
        positive("engine.dedupe_retention_hours", e.dedupe_retention_hours)?;
        // Each of these is halved into a period, which must not be zero.
        for (key, value) in [
            ("engine.passivate_after_ms", e.passivate_after_ms),
            ("engine.timer_horizon_ms", e.timer_horizon_ms),
        ] {
            if value < 2 {
                refuse(key, format!("must be at least 2, got {value}"))?;
            }
        }
        positive("engine.poll_interval_ms", e.poll_interval_ms)?;
        positive("engine.orphan_after_ms", e.orphan_after_ms)?;
        if e.clock_skew_ms.unsigned_abs() > 3_600_000 {
            refuse(
                "engine.clock_skew_ms",
                format!("must be within an hour either way, got {}", e.clock_skew_ms),
            )?;
        }

        let l = &self.limits;
        for (rate_key, burst_key, rate, burst) in [
            (
                "limits.voice_per_second",
                "limits.voice_burst",
                l.voice_per_second,
                l.voice_burst,
            ),
            (
                "limits.sms_per_second",
                "limits.sms_burst",
                l.sms_per_second,
                l.sms_burst,
            ),
            (
                "limits.account_calls_per_second",
                "limits.account_calls_burst",
                l.account_calls_per_second,
                l.account_calls_burst,
            ),
        ] {
            if let Err(err) = neuronx_adapters::limits::Quota::new(rate, burst) {
                // A zero burst is the burst's fault; every other refusal is about the rate.
                let key = if burst == 0 { burst_key } else { rate_key };
                refuse(key, err.to_string())?;
            }
        }
        positive("limits.max_wait_ms", l.max_wait_ms)?;

        if let Err(err) =
            neuronx_adapters::outbound::OutboundGuard::from_allow_list(&self.outbound.allow)
        {
            refuse("outbound.allow", err)?;
        }
        let s = &self.server;
        if let Err(err) = neuronx_adapters::outbound::parse_networks(&s.trusted_proxies) {
            refuse("server.trusted_proxies", err)?;
        }
        positive(
            "server.max_http_connections",
            u64::from(s.max_http_connections),
        )?;
        positive("server.header_timeout_ms", s.header_timeout_ms)?;
        positive("server.body_timeout_ms", s.body_timeout_ms)?;
        positive("server.request_timeout_ms", s.request_timeout_ms)?;
        positive("server.drain_timeout_ms", s.drain_timeout_ms)?;
        let db = &self.server.database_url;
        if !(db.starts_with("postgres://")
            || db.starts_with("postgresql://")
            || db.starts_with("sqlite:"))
        {
            // The URL may hold a password: only its scheme is shown.
            let scheme = db.split_once(':').map_or(db.as_str(), |(s, _)| s);
            refuse(
                "server.database_url",
                format!(
                    "must start with postgres://, postgresql:// or sqlite: (got scheme {scheme:?})"
                ),
            )?;
        }
        check_public_url(&self.server.public_url).or_else(|m| refuse("server.public_url", m))?;
        Ok(())
    }
}

/// Webhook signatures are checked against `public_url` + path, and callback URLs start with
/// it, so it must be an absolute http(s) base that a path can be appended to.
fn check_public_url(raw: &str) -> Result<(), String> {
    let url = url::Url::parse(raw).map_err(|e| format!("{raw:?} is not an absolute URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{raw:?} must start with http:// or https://"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{raw:?} has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "{raw:?} must not have a query or a fragment (paths are appended to it)"
        ));
    }
    Ok(())
}
