//! The operator control plane's data: roles and their policy, teams, principals, scoped API
//! keys and the audit log. Plain queries on the engine's pool (like `tenant_data`), every one
//! scoped to its tenant; the HTTP layer (`http::access`, `http::audit`) and the CLI sit on top.

pub mod access;
pub mod audit;
pub mod binding;
pub mod cli;
pub mod dead_letters;
pub mod idempotency;
pub mod keys;
pub mod magic;
pub mod numbers;
pub mod principals;
pub mod reps;
pub mod roles;
pub mod scope;
pub mod sessions;
pub mod tx;

use neuronx_supervision::StoreError;
use uuid::Uuid;

pub use roles::{allows, Action, Role};
pub use scope::Scope;
pub use tx::Tx;

/// Runs `$body` on whichever backend `$store` is. Inside it, `$db` is the pool, `$id` turns a
/// UUID into that backend's column type (UUID on PostgreSQL, TEXT on SQLite) and `$json` a JSON
/// value into its JSON column type (JSONB, TEXT). The body is compiled once per backend, so one
/// SQL text serves both; UUIDs and JSON are read back as `CAST(.. AS TEXT)` on both.
macro_rules! on_db {
    ($store:expr, |$db:ident, $id:ident, $json:ident| $body:expr) => {
        match $store {
            neuronx_supervision::Store::Postgres(pg) => {
                let $db = pg.pool();
                #[allow(unused_variables)]
                let $id = |u: uuid::Uuid| u;
                #[allow(unused_variables)]
                let $json = |v: &serde_json::Value| v.clone();
                $body
            }
            neuronx_supervision::Store::Sqlite(lite) => {
                let $db = lite.pool();
                #[allow(unused_variables)]
                let $id = |u: uuid::Uuid| u.to_string();
                #[allow(unused_variables)]
                let $json = |v: &serde_json::Value| v.to_string();
                $body
            }
        }
    };
}
pub(crate) use on_db;

/// Failures callers tell apart: the HTTP layer maps each to its status, the CLI to a message.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("invalid {field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{what} {name:?} already exists")]
    Exists { what: &'static str, name: String },
    #[error("role {role} may not {what}")]
    Forbidden { role: Role, what: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for ControlError {
    fn from(e: sqlx::Error) -> Self {
        ControlError::Store(StoreError::Db(e))
    }
}

impl ControlError {
    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        ControlError::Invalid {
            field,
            message: message.into(),
        }
    }
}

pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

pub(crate) fn parse_uuid(text: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(text).map_err(|_| StoreError::Corrupt(format!("not a uuid: {text:?}")))
}

pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A display name for teams, principals and keys: trimmed, 1 to 100 characters, no control
/// characters (they end up in HTML, logs and CSV exports).
pub(crate) fn clean_name(field: &'static str, raw: &str) -> Result<String, ControlError> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ControlError::invalid(field, "must be 1 to 100 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(ControlError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(name.to_owned())
}
