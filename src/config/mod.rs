//! Settings: the embedded default, then an optional `--config` file, then `NEURONX_*`
//! environment variables (layering in `load`, rules in `validate`). Loaded and validated once
//! at start; apart from the log variables read by `main` before anything else (`logging`),
//! nothing else reads the environment.

mod load;
mod logging;
mod validate;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};
use neuronx_actors::domain::compliance::Rules;
use neuronx_actors::domain::playbook::Playbook;
use neuronx_adapters::limits::Quota;
use neuronx_supervision::{Clock, EngineConfig};
use serde::Deserialize;

pub use load::{env_name, keys, ConfigError, ENV_PREFIX, SHORT_NAMES};
pub use logging::{log_settings, LogFormat};

pub const DEFAULT_CONFIG: &str = include_str!("../../config/default.toml");
const BUILTIN_COMPLIANCE: &str = include_str!("../../config/compliance.toml");
const BUILTIN_PLAYBOOKS: [(&str, &str); 2] = [
    (
        "speed-to-lead",
        include_str!("../../config/playbooks/speed-to-lead.toml"),
    ),
    ("demo", include_str!("../../config/playbooks/demo.toml")),
];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub engine: EngineSettings,
    pub playbooks: PlaybookSettings,
    pub channels: ChannelSettings,
    pub secrets: SecretSettings,
    pub compliance: ComplianceSettings,
    pub limits: LimitSettings,
    pub outbound: OutboundSettings,
}

/// Where tenant-supplied hosts (a Twilio-compatible `base_url`, and later SMTP, GoHighLevel and
/// webhook URLs) may lead: public addresses, plus these networks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboundSettings {
    /// Networks (`127.0.0.0/8`) or addresses let through in spite of the private, loopback,
    /// link-local and metadata ranges. NEURONX_OUTBOUND_ALLOW, comma-separated.
    pub allow: Vec<String>,
}

impl LimitSettings {
    /// The voice, SMS and carrier-account quotas, each validated and named in its error.
    pub fn quotas(&self) -> anyhow::Result<[Quota; 3]> {
        let quota = |name: &str, rate: f64, burst: u32| {
            Quota::new(rate, burst).map_err(|e| anyhow::anyhow!("limits.{name}: {e}"))
        };
        Ok([
            quota("voice", self.voice_per_second, self.voice_burst)?,
            quota("sms", self.sms_per_second, self.sms_burst)?,
            quota(
                "account_calls",
                self.account_calls_per_second,
                self.account_calls_burst,
            )?,
        ])
    }
}

/// Send limits (ADR 0015): shared through Redis when `server.redis_url` is set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitSettings {
    pub voice_per_second: f64,
    pub voice_burst: u32,
    pub sms_per_second: f64,
    pub sms_burst: u32,
    pub account_calls_per_second: f64,
    pub account_calls_burst: u32,
    pub max_wait_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComplianceSettings {
    /// A rules file replacing the built-in `config/compliance.toml`; empty for the built-in.
    pub rules_file: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretSettings {
    /// `id:base64` 32-byte keys; the first seals, all open. Prefer NEURONX_SECRET_KEYS.
    pub keys: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub listen: String,
    pub public_url: String,
    pub database_url: String,
    pub instance_id: String,
    /// The database pool's size.
    pub max_connections: u32,
    pub redis_url: String,
    /// Networks whose `X-Forwarded-For` is believed (`http::forwarded`).
    pub trusted_proxies: Vec<String>,
    pub max_http_connections: u32,
    pub header_timeout_ms: u64,
    pub body_timeout_ms: u64,
    pub request_timeout_ms: u64,
    pub drain_delay_ms: u64,
    pub drain_timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineSettings {
    pub shard_count: u32,
    pub lease_ttl_ms: u64,
    pub lease_renew_ms: u64,
    pub passivate_after_ms: u64,
    pub max_resident_actors: usize,
    pub commit_max_batch: usize,
    pub commit_workers: usize,
    pub timer_horizon_ms: u64,
    pub poll_interval_ms: u64,
    pub max_strikes: u32,
    pub reply_timeout_ms: u64,
    pub effect_concurrency: usize,
    pub orphan_after_ms: u64,
    pub dedupe_retention_hours: u64,
    /// For fault drills only: this instance reads its wall clock this far off (the engine's
    /// clock corrects it against the database's, which is what a drill shows).
    pub clock_skew_ms: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaybookSettings {
    pub default: String,
    pub dir: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelSettings {
    pub loopback: LoopbackSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoopbackSettings {
    pub ring_after_ms: u64,
    pub no_answer_after_ms: u64,
}

impl Settings {
    /// Loads the layered settings. `env` is passed in (not read here) so tests can inject it.
    /// A refusal is a [`ConfigError`] naming the key and the layer that set it.
    pub fn load(file: Option<&Path>, env: &BTreeMap<String, String>) -> anyhow::Result<Self> {
        Ok(load::load(file, env)?)
    }

    pub fn engine_config(&self) -> EngineConfig {
        let e = &self.engine;
        EngineConfig {
            instance_id: self.server.instance_id.clone(),
            shard_count: e.shard_count,
            lease_ttl: Duration::from_millis(e.lease_ttl_ms),
            lease_renew: Duration::from_millis(e.lease_renew_ms),
            passivate_after: Duration::from_millis(e.passivate_after_ms),
            max_resident_actors: e.max_resident_actors,
            commit_max_batch: e.commit_max_batch,
            commit_workers: e.commit_workers,
            timer_horizon: Duration::from_millis(e.timer_horizon_ms),
            outbox_batch: 256,
            effect_concurrency: e.effect_concurrency,
            orphan_after: Duration::from_millis(e.orphan_after_ms),
            poll_interval: Duration::from_millis(e.poll_interval_ms),
            restart: Default::default(),
            max_strikes: e.max_strikes,
            dedupe_retention: Duration::from_secs(e.dedupe_retention_hours * 3600),
            reply_timeout: Duration::from_millis(e.reply_timeout_ms),
            force_claim: self.is_sqlite(),
            // Set from the limiter actually built (`App::start`).
            shared_limits: false,
            clock: if e.clock_skew_ms == 0 {
                Clock::system()
            } else {
                Clock::skewed(e.clock_skew_ms)
            },
        }
    }

    /// The calling-hours and frequency rules: the built-in table or `compliance.rules_file`.
    pub fn compliance_rules(&self) -> anyhow::Result<Rules> {
        let (text, from) = if self.compliance.rules_file.is_empty() {
            (
                BUILTIN_COMPLIANCE.to_owned(),
                "the built-in compliance rules".to_owned(),
            )
        } else {
            let path = &self.compliance.rules_file;
            (
                std::fs::read_to_string(path)
                    .with_context(|| format!("reading compliance.rules_file {path}"))?,
                format!("compliance rules {path}"),
            )
        };
        Rules::from_toml(&text).with_context(|| from)
    }

    pub fn keyring(&self) -> anyhow::Result<crate::secrets::Keyring> {
        Ok(crate::secrets::Keyring::parse(
            self.secrets.keys.iter().map(String::as_str),
        )?)
    }

    /// The guard every tenant-supplied host passes, from `outbound.allow`.
    pub fn outbound_guard(&self) -> anyhow::Result<neuronx_adapters::outbound::OutboundGuard> {
        neuronx_adapters::outbound::OutboundGuard::from_allow_list(&self.outbound.allow)
            .map_err(|e| anyhow::anyhow!("outbound.allow: {e}"))
    }

    /// `server.trusted_proxies` parsed; the error names the entry.
    pub fn trusted_proxies(&self) -> anyhow::Result<Vec<ipnet::IpNet>> {
        neuronx_adapters::outbound::parse_networks(&self.server.trusted_proxies)
            .map_err(|e| anyhow::anyhow!("server.trusted_proxies: {e}"))
    }

    pub fn is_sqlite(&self) -> bool {
        self.server.database_url.starts_with("sqlite:")
    }

    /// The built-in playbooks plus those in `playbooks.dir`; the default must exist.
    pub fn playbooks(&self) -> anyhow::Result<BTreeMap<String, Playbook>> {
        let mut out = BTreeMap::new();
        for (name, text) in BUILTIN_PLAYBOOKS {
            let p =
                Playbook::from_toml(text).with_context(|| format!("built-in playbook {name}"))?;
            out.insert(p.name.clone(), p);
        }
        if !self.playbooks.dir.is_empty() {
            let dir = Path::new(&self.playbooks.dir);
            let entries = std::fs::read_dir(dir)
                .with_context(|| format!("reading playbooks.dir {}", dir.display()))?;
            for entry in entries {
                let path = entry?.path();
                if path.extension().and_then(|e| e.to_str()) != Some("toml") {
                    continue;
                }
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("reading playbook {}", path.display()))?;
                let p = Playbook::from_toml(&text)
                    .with_context(|| format!("playbook {}", path.display()))?;
                out.insert(p.name.clone(), p);
            }
        }
        if !out.contains_key(&self.playbooks.default) {
            bail!(
                "playbooks.default is {:?} but no such playbook exists",
                self.playbooks.default
            );
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
