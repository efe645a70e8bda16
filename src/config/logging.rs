//! The two log variables. `main` reads them before anything else (the settings themselves are
//! logged about), but a bad value is refused like a bad setting rather than falling back to the
//! default filter unnoticed.

use std::collections::BTreeMap;

use tracing_subscriber::EnvFilter;

use super::ConfigError;

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The filter from NEURONX_LOG (`default` when unset or empty) and the format from
/// NEURONX_LOG_FORMAT (`text` when unset or empty).
pub fn log_settings(
    env: &BTreeMap<String, String>,
    default: &str,
) -> Result<(EnvFilter, LogFormat), ConfigError> {
    let filter = match env.get("NEURONX_LOG").filter(|v| !v.is_empty()) {
        Some(value) => EnvFilter::builder()
            .parse(value)
            .map_err(|e| ConfigError::LogFilter {
                value: value.clone(),
                message: e.to_string(),
            })?,
        // The defaults are constants of `main`; a lossy parse cannot hide a user's mistake.
        None => EnvFilter::builder().parse_lossy(default),
    };
    let format = match env.get("NEURONX_LOG_FORMAT").map(String::as_str) {
        None | Some("" | "text") => LogFormat::Text,
        Some("json") => LogFormat::Json,
        Some(other) => {
            return Err(ConfigError::LogFormat {
                value: other.to_owned(),
            })
        }
    };
    Ok((filter, format))
}
