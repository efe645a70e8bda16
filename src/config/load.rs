//! Layering (figment): the embedded default, then the `--config` file, then the environment.
//! Every layer is a provider whose metadata names it, so an error points at the layer that set
//! the bad value: the default, the file by its path, or the environment variable by its name.
//!
//! The environment is the map `Settings::load` is given, not the process environment, so that
//! tests can inject it. Two spellings reach a key:
//! - `NEURONX_<SECTION>__<KEY>` for every key (`NEURONX_CHANNELS__LOOPBACK__RING_AFTER_MS`);
//! - the short names of [`SHORT_NAMES`], kept because scripts and documents use them. When both
//!   spellings of one key are set, the `__` form wins.
//!
//! A `NEURONX_*` variable without `__` that is not a short name is not configuration (the log
//! variables, the test suite's `NEURONX_TEST_*`) and is ignored. A `__` variable naming no key is
//! refused, so a typo does not silently leave the default in force. An empty variable is
//! ignored, as the short names always were.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use figment::value::{Dict, Map, Num, Value};
use figment::{Figment, Metadata, Profile, Provider, Source};

use super::{Settings, DEFAULT_CONFIG};

/// Every configuration variable starts with this.
pub const ENV_PREFIX: &str = "NEURONX_";

/// Short environment names and the key each sets. List keys take comma-separated entries here
/// as in the long form.
pub const SHORT_NAMES: [(&str, &str); 7] = [
    ("NEURONX_DATABASE_URL", "server.database_url"),
    ("NEURONX_LISTEN", "server.listen"),
    ("NEURONX_PUBLIC_URL", "server.public_url"),
    ("NEURONX_INSTANCE_ID", "server.instance_id"),
    ("NEURONX_REDIS_URL", "server.redis_url"),
    ("NEURONX_SECRET_KEYS", "secrets.keys"),
    ("NEURONX_OUTBOUND_ALLOW", "outbound.allow"),
];

const DEFAULT_ORIGIN: &str = "the embedded default configuration";

/// Why the configuration was refused; each names the key and the layer it came from.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading config file {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parsing {origin}: {message}")]
    Parse { origin: String, message: String },
    #[error("{key}: no such configuration key, in {origin}")]
    UnknownKey { key: String, origin: String },
    #[error("{key}: {message}, in {origin}")]
    Invalid {
        key: String,
        message: String,
        origin: String,
    },
    #[error("NEURONX_LOG: {value:?} is not a log filter ({message})")]
    LogFilter { value: String, message: String },
    #[error("NEURONX_LOG_FORMAT: {value:?} is neither \"json\" nor \"text\"")]
    LogFormat { value: String },
}

/// The environment variable that sets `key` in its long form: `engine.shard_count` →
/// `NEURONX_ENGINE__SHARD_COUNT`.
pub fn env_name(key: &str) -> String {
    format!("{ENV_PREFIX}{}", key.replace('.', "__").to_uppercase())
}

/// Every key the configuration has, dotted (`channels.loopback.ring_after_ms`), sorted. The
/// embedded default sets every key, so it is the schema.
pub fn keys() -> Result<Vec<String>, ConfigError> {
    fn walk(dict: &Dict, prefix: &str, out: &mut Vec<String>) {
        for (name, value) in dict {
            let key = format!("{prefix}{name}");
            match value {
                Value::Dict(_, inner) => walk(inner, &format!("{key}."), out),
                _ => out.push(key),
            }
        }
    }
    let mut out = Vec::new();
    walk(&defaults()?, "", &mut out);
    Ok(out)
}

/// One layer: its values, and its name for errors.
struct Layer {
    metadata: Metadata,
    data: Dict,
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        self.metadata.clone()
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.data.clone()))
    }
}

/// How an error names a layer: "config file ./c.toml", "environment variable NEURONX_LISTEN".
fn describe(md: &Metadata) -> String {
    match &md.source {
        // As the user wrote it, not relative to the working directory as figment shows it.
        Some(Source::File(path)) => format!("{} {}", md.name, path.display()),
        Some(source) => format!("{} {source}", md.name),
        None => md.name.to_string(),
    }
}

pub(super) fn defaults() -> Result<Dict, ConfigError> {
    toml::from_str(DEFAULT_CONFIG).map_err(|e| ConfigError::Parse {
        origin: DEFAULT_ORIGIN.into(),
        message: e.to_string(),
    })
}

pub(super) fn lookup<'a>(dict: &'a Dict, key: &str) -> Option<&'a Value> {
    let mut parts = key.split('.');
    let mut value = dict.get(parts.next()?)?;
    for part in parts {
        match value {
            Value::Dict(_, inner) => value = inner.get(part)?,
            _ => return None,
        }
    }
    Some(value)
}

/// The first key of `layer` the default does not have. Tables are compared key by key; a table
/// given a scalar (or the reverse) is left to extraction, which reports the wrong type.
fn unknown_key(schema: &Dict, layer: &Dict, prefix: &str) -> Option<String> {
    for (name, value) in layer {
        let key = format!("{prefix}{name}");
        match (schema.get(name), value) {
            (None, _) => return Some(key),
            (Some(Value::Dict(_, inner)), Value::Dict(_, given)) => {
                if let Some(found) = unknown_key(inner, given, &format!("{key}.")) {
                    return Some(found);
                }
            }
            _ => {}
        }
    }
    None
}

/// The environment's text as the type the default has at that key, so that `64` is a number
/// for `engine.shard_count` but stays text for `server.instance_id`. Text that does not parse
/// is passed on as text: extraction then refuses it, naming the key and the variable.
fn typed(default: &Value, raw: &str) -> Value {
    let text = || Value::from(raw);
    match default {
        Value::Array(..) => Value::from(
            raw.split(',')
                .map(str::trim)
                .filter(|entry| !entry.is_empty())
                .map(str::to_owned)
                .collect::<Vec<_>>(),
        ),
        Value::Num(_, Num::F32(_) | Num::F64(_)) => raw
            .trim()
            .parse::<f64>()
            .map(Value::from)
            .unwrap_or_else(|_| text()),
        Value::Num(..) => raw
            .trim()
            .parse::<u64>()
            .map(Value::from)
            .or_else(|_| raw.trim().parse::<i64>().map(Value::from))
            .unwrap_or_else(|_| text()),
        Value::Bool(..) => raw
            .trim()
            .parse::<bool>()
            .map(Value::from)
            .unwrap_or_else(|_| text()),
        _ => text(),
    }
}

fn env_layer(schema: &Dict, var: &str, key: &str, raw: &str) -> Result<Layer, ConfigError> {
    let origin = || format!("environment variable {var}");
    let value = match lookup(schema, key) {
        None => {
            return Err(ConfigError::UnknownKey {
                key: key.into(),
                origin: origin(),
            })
        }
        Some(Value::Dict(_, inner)) => {
            let example = inner.keys().next().map_or(String::new(), |first| {
                format!(", e.g. {}", env_name(&format!("{key}.{first}")))
            });
            return Err(ConfigError::Invalid {
                key: key.into(),
                message: format!("is a section: set its keys one by one{example}"),
                origin: origin(),
            });
        }
        Some(default) => typed(default, raw),
    };
    // `channels.loopback.ring_after_ms = v` as nested tables, built from the leaf outwards.
    let mut parts = key.rsplit('.');
    let leaf = parts.next().unwrap_or(key);
    let mut data = Dict::from([(leaf.to_owned(), value)]);
    for part in parts {
        data = Dict::from([(part.to_owned(), Value::from(data))]);
    }
    Ok(Layer {
        metadata: Metadata::from("environment variable", Source::Custom(var.to_owned())),
        data,
    })
}

/// The environment's layers, short names first so that a `__` variable for the same key wins.
fn env_layers(schema: &Dict, env: &BTreeMap<String, String>) -> Result<Vec<Layer>, ConfigError> {
    let mut layers = Vec::new();
    for (var, key) in SHORT_NAMES {
        if let Some(raw) = env.get(var).filter(|v| !v.is_empty()) {
            layers.push(env_layer(schema, var, key, raw)?);
        }
    }
    for (var, raw) in env {
        let Some(rest) = var.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        if !rest.contains("__") || raw.is_empty() {
            continue;
        }
        let key = rest
            .split("__")
            .map(str::to_lowercase)
            .collect::<Vec<_>>()
            .join(".");
        layers.push(env_layer(schema, var, &key, raw)?);
    }
    Ok(layers)
}

fn from_figment(err: figment::Error) -> ConfigError {
    // figment may chain several errors; the first is enough to act on, and the next run
    // reports the following one.
    ConfigError::Invalid {
        key: err.path.join("."),
        message: err.kind.to_string(),
        origin: err
            .metadata
            .as_ref()
            .map_or_else(|| "the configuration".to_owned(), describe),
    }
}

pub(super) fn load(
    file: Option<&Path>,
    env: &BTreeMap<String, String>,
) -> Result<Settings, ConfigError> {
    let schema = defaults()?;
    let mut figment = Figment::new().merge(Layer {
        metadata: Metadata::named(DEFAULT_ORIGIN),
        data: schema.clone(),
    });
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let metadata = Metadata::from("config file", path);
        let data: Dict = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            origin: describe(&metadata),
            message: e.to_string().trim_end().to_owned(),
        })?;
        if let Some(key) = unknown_key(&schema, &data, "") {
            return Err(ConfigError::UnknownKey {
                key,
                origin: describe(&metadata),
            });
        }
        figment = figment.merge(Layer { metadata, data });
    }
    for layer in env_layers(&schema, env)? {
        figment = figment.merge(layer);
    }
    let mut settings: Settings = figment.extract().map_err(from_figment)?;
    if settings.server.instance_id.is_empty() {
        let host = env
            .get("HOSTNAME")
            .cloned()
            .unwrap_or_else(|| "neuronx".into());
        settings.server.instance_id = format!("{host}-{}", std::process::id());
    }
    settings.check().map_err(|invalid| ConfigError::Invalid {
        origin: figment
            .find_metadata(invalid.key)
            .map_or_else(|| "the configuration".to_owned(), describe),
        key: invalid.key.into(),
        message: invalid.message,
    })?;
    Ok(settings)
}
