//! Settings: the embedded default, then an optional `--config` file, then `NEURONX_*`
//! environment variables. Loaded and validated once at start; apart from the log filter read
//! by `main` before anything else, nothing else reads the environment.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};
use neuronx_actors::domain::compliance::Rules;
use neuronx_actors::domain::playbook::Playbook;
use neuronx_adapters::limits::Quota;
use neuronx_supervision::EngineConfig;
use serde::Deserialize;

pub const DEFAULT_CONFIG: &str = include_str!("../config/default.toml");
const BUILTIN_COMPLIANCE: &str = include_str!("../config/compliance.toml");
const BUILTIN_PLAYBOOKS: [(&str, &str); 2] = [
    (
        "speed-to-lead",
        include_str!("../config/playbooks/speed-to-lead.toml"),
    ),
    ("demo", include_str!("../config/playbooks/demo.toml")),
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
    pub max_connections: u32,
    pub redis_url: String,
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

/// Merges `over` into `base`, key by key, recursively.
fn merge(base: &mut toml::Value, over: toml::Value) {
    match (base, over) {
        (toml::Value::Table(b), toml::Value::Table(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

impl Settings {
    /// Loads the layered settings. `env` is passed in (not read here) so tests can inject it.
    pub fn load(file: Option<&Path>, env: &BTreeMap<String, String>) -> anyhow::Result<Self> {
        let mut value: toml::Value =
            toml::from_str(DEFAULT_CONFIG).context("the embedded default configuration")?;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading config file {}", path.display()))?;
            let over: toml::Value = toml::from_str(&text)
                .with_context(|| format!("parsing config file {}", path.display()))?;
            merge(&mut value, over);
        }
        let mut settings: Settings = value
            .try_into()
            .context("invalid configuration (see docs/configuration.md)")?;
        let s = &mut settings.server;
        for (var, slot) in [
            ("NEURONX_DATABASE_URL", &mut s.database_url),
            ("NEURONX_LISTEN", &mut s.listen),
            ("NEURONX_PUBLIC_URL", &mut s.public_url),
            ("NEURONX_INSTANCE_ID", &mut s.instance_id),
            ("NEURONX_REDIS_URL", &mut s.redis_url),
        ] {
            if let Some(v) = env.get(var).filter(|v| !v.is_empty()) {
                *slot = v.clone();
            }
        }
        if let Some(keys) = env.get("NEURONX_SECRET_KEYS").filter(|v| !v.is_empty()) {
            settings.secrets.keys = keys.split(',').map(str::to_owned).collect();
        }
        if let Some(nets) = env.get("NEURONX_OUTBOUND_ALLOW").filter(|v| !v.is_empty()) {
            settings.outbound.allow = nets.split(',').map(|n| n.trim().to_owned()).collect();
        }
        if settings.server.instance_id.is_empty() {
            let host = env
                .get("HOSTNAME")
                .cloned()
                .unwrap_or_else(|| "neuronx".into());
            settings.server.instance_id = format!("{host}-{}", std::process::id());
        }
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> anyhow::Result<()> {
        let e = &self.engine;
        if e.shard_count == 0 || e.shard_count > 65_536 {
            bail!("engine.shard_count must be between 1 and 65536");
        }
        if e.lease_renew_ms == 0 || e.lease_renew_ms * 2 > e.lease_ttl_ms {
            bail!("engine.lease_renew_ms must be positive and at most half of engine.lease_ttl_ms");
        }
        if e.commit_max_batch == 0 || e.commit_workers == 0 || e.effect_concurrency == 0 {
            bail!(
                "engine.commit_max_batch, commit_workers and effect_concurrency must be positive"
            );
        }
        if e.max_resident_actors == 0 {
            bail!("engine.max_resident_actors must be positive");
        }
        if e.max_strikes == 0 {
            bail!("engine.max_strikes must be positive");
        }
        if e.reply_timeout_ms == 0 || e.dedupe_retention_hours == 0 {
            bail!("engine.reply_timeout_ms and engine.dedupe_retention_hours must be positive");
        }
        if e.passivate_after_ms < 2
            || e.timer_horizon_ms < 2
            || e.poll_interval_ms == 0
            || e.orphan_after_ms == 0
        {
            bail!("engine durations must be positive");
        }
        let l = &self.limits;
        l.quotas()?;
        if l.max_wait_ms == 0 {
            bail!("limits.max_wait_ms must be positive");
        }
        self.outbound_guard()?;
        let db = &self.server.database_url;
        if !(db.starts_with("postgres://")
            || db.starts_with("postgresql://")
            || db.starts_with("sqlite:"))
        {
            bail!("server.database_url must start with postgres:// or sqlite: (got {db:?})");
        }
        Ok(())
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
mod tests {
    use super::*;

    #[test]
    fn the_embedded_default_loads_and_defaults_to_sqlite() {
        let s = Settings::load(None, &BTreeMap::new()).unwrap();
        assert_eq!(s.server.database_url, "sqlite://neuronx.db");
        assert_eq!(s.engine.shard_count, 256);
        assert!(s.playbooks().unwrap().contains_key("speed-to-lead"));
        assert!(s.compliance_rules().unwrap().state("FL").is_some());
    }

    #[test]
    fn environment_overrides_the_file() {
        let env = BTreeMap::from([(
            "NEURONX_DATABASE_URL".to_string(),
            "postgres://x@localhost/db".to_string(),
        )]);
        let s = Settings::load(None, &env).unwrap();
        assert_eq!(s.server.database_url, "postgres://x@localhost/db");
    }

    #[test]
    fn an_unknown_key_is_refused_with_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[engine]\nshard_cont = 3\n").unwrap();
        let err = format!(
            "{:#}",
            Settings::load(Some(&path), &BTreeMap::new()).unwrap_err()
        );
        assert!(err.contains("shard_cont"), "{err}");
    }
}
