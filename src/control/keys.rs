//! Scoped API keys: a role, optionally a team (then only that team's opportunities exist for
//! it) and a principal (whose name the audit log records). Shown once; only the SHA-256 is
//! stored, found by its visible prefix and compared in constant time.

use chrono::{DateTime, Utc};
use neuronx_supervision::{Store, TenantId};
use serde::Serialize;
use subtle::ConstantTimeEq;

use super::access::{self, Team};
use super::tx::{on_tx, Tx};
use super::{clean_name, now_ms, on_db, parse_uuid, ControlError, Role, Scope};
use crate::tenants::{hash_key, new_key, KEY_TAG};

/// `last_used_at` is written at most this often per key, so a busy key costs no write per
/// request.
const LAST_USED_RESOLUTION_MS: i64 = 60_000;

/// Who a request is from, once its key checked out.
#[derive(Debug, Clone)]
pub struct Identity {
    pub tenant: TenantId,
    /// The key's visible prefix (`nxk_<prefix>`); safe to log and to show.
    pub key_prefix: String,
    pub role: Role,
    pub team: Option<Team>,
    pub principal: Option<String>,
}

impl Identity {
    /// How the audit log and the timeline name the caller: the principal if the key has one,
    /// else the key's visible prefix.
    pub fn actor_name(&self) -> String {
        match &self.principal {
            Some(p) => p.clone(),
            None => self.key_label(),
        }
    }

    /// How the audit log names the key itself: its visible prefix (`nxk_<prefix>`), or `cli`
    /// for the command line and `magic_link` for a session a magic link opened, which use no
    /// key.
    pub fn key_label(&self) -> String {
        if [CLI_KEY, MAGIC_LINK_KEY, UNSUBSCRIBE_LINK_KEY].contains(&self.key_prefix.as_str()) {
            self.key_prefix.clone()
        } else {
            format!("{KEY_TAG}_{}", self.key_prefix)
        }
    }
}

/// The key prefix of the command line's identity: it presents no key.
pub const CLI_KEY: &str = "cli";

/// The key prefix of a console session opened by a magic link (`control::magic`): it presents
/// no key either, and the audit log names it so.
pub const MAGIC_LINK_KEY: &str = "magic_link";

/// What the audit log names for a lead's one-click unsubscribe: no key, the signed link.
pub const UNSUBSCRIBE_LINK_KEY: &str = "unsubscribe_link";

/// A key as listed: never the secret, never its hash.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct KeyView {
    pub id: String,
    pub prefix: String,
    pub name: String,
    pub role: Role,
    pub team: Option<String>,
    pub principal: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

pub struct NewKey<'a> {
    pub name: &'a str,
    pub role: Role,
    pub team: Option<&'a str>,
    pub principal: Option<&'a str>,
    pub expires_at: Option<DateTime<Utc>>,
}

fn time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// Creates a key; returns its view and the secret, which is never shown again. `granter` is
/// whoever asks (the owner, from the CLI): nobody hands out more than they may, a team-limited
/// granter mints keys for its own team only, and a key may act only for a principal the granter
/// reaches and could have created.
/// The key is written inside `tx` (the caller records it in the audit log in the same
/// transaction); the principal and team it names are read from `store`.
pub async fn create(
    store: &Store,
    tx: &mut Tx,
    granter: &Identity,
    new: &NewKey<'_>,
) -> Result<(KeyView, String), ControlError> {
    let tenant = granter.tenant;
    if !granter.role.can_grant(new.role) {
        return Err(ControlError::Forbidden {
            role: granter.role,
            what: format!("create a key with role {}", new.role),
        });
    }
    let name = clean_name("name", new.name)?;
    let now = now_ms();
    if let Some(at) = new.expires_at {
        if at.timestamp_millis() <= now {
            return Err(ControlError::invalid("expires_at", "must be in the future"));
        }
    }
    let scope = Scope::of(granter);
    let principal = match new.principal {
        Some(p) => Some(
            access::find_principal(store, tenant, p)
                .await?
                // Another team's principal is not there for a team-limited granter.
                .filter(|found| scope.reaches(found.team_id))
                .ok_or_else(|| {
                    ControlError::invalid("principal", format!("no principal named {:?}", p.trim()))
                })?,
        ),
        None => None,
    };
    let requested = super::scope::requested_team(granter, "team", new.team)?;
    let team_name = match (&principal, requested) {
        (Some(p), requested) if p.team.is_some() => {
            let theirs = p.team.as_deref().unwrap_or_default();
            match requested {
                Some(t) if t.trim() != theirs => {
                    return Err(ControlError::invalid(
                        "team",
                        format!(
                            "principal {} is in team {theirs:?}; a key acting for it must be too",
                            p.name
                        ),
                    ))
                }
                _ => Some(theirs.to_owned()),
            }
        }
        (_, requested) => requested.map(str::to_owned),
    };
    let team = match team_name {
        Some(t) => Some(access::require_team(store, tenant, "team", &t).await?),
        None => None,
    };
    if let Some(p) = &principal {
        // A deactivated principal's keys never authenticate: minting one would only mislead.
        if !p.active {
            return Err(ControlError::invalid(
                "principal",
                format!("principal {} is deactivated", p.name),
            ));
        }
        // Acting for a principal is acting with its role: an admin may not mint a key that
        // the audit log would show as an owner's.
        if !granter.role.can_grant(p.role) {
            return Err(ControlError::Forbidden {
                role: granter.role,
                what: format!("create a key acting for principal {} ({})", p.name, p.role),
            });
        }
        // A key acts for its principal: it may not do more than the principal may.
        if p.role != new.role && !p.role.can_grant(new.role) {
            return Err(ControlError::invalid(
                "role",
                format!(
                    "principal {} is {}; its key cannot be {}",
                    p.name, p.role, new.role
                ),
            ));
        }
    }
    let (prefix, secret) = new_key();
    let sql = "INSERT INTO api_keys (prefix, tenant_id, hash, created_at, name, role, team_id,
                                     principal_id, expires_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
    on_tx!(tx, |db, id, _json| sqlx::query(sql)
        .bind(&prefix)
        .bind(id(tenant.0))
        .bind(hash_key(&secret))
        .bind(now)
        .bind(&name)
        .bind(new.role.as_str())
        .bind(team.as_ref().map(|t| id(t.id)))
        .bind(principal.as_ref().map(|p| id(p.id)))
        .bind(new.expires_at.map(|t| t.timestamp_millis()))
        .execute(db)
        .await?
        .rows_affected());
    let view = KeyView {
        id: prefix.clone(),
        prefix: format!("{KEY_TAG}_{prefix}"),
        name,
        role: new.role,
        team: team.map(|t| t.name),
        principal: principal.map(|p| p.name),
        created_at: time(now),
        last_used_at: None,
        expires_at: new.expires_at,
        revoked_at: None,
    };
    Ok((view, secret))
}

type KeyRow = (
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

const SELECT_KEYS: &str = "SELECT k.prefix, k.name, k.role, t.name, p.name, k.created_at,
        k.last_used_at, k.expires_at, k.revoked_at
    FROM api_keys k LEFT JOIN teams t ON t.id = k.team_id
    LEFT JOIN principals p ON p.id = k.principal_id";

fn key_view(r: KeyRow) -> Result<KeyView, ControlError> {
    let (prefix, name, role, team, principal, created, used, expires, revoked) = r;
    Ok(KeyView {
        prefix: format!("{KEY_TAG}_{prefix}"),
        id: prefix,
        name,
        role: role.parse().map_err(|e: super::roles::UnknownRole| {
            neuronx_supervision::StoreError::Corrupt(e.to_string())
        })?,
        team,
        principal,
        created_at: time(created),
        last_used_at: used.map(time),
        expires_at: expires.map(time),
        revoked_at: revoked.map(time),
    })
}

/// The keys `scope` reaches: a team-limited caller sees its team's keys only.
pub async fn list(
    store: &Store,
    tenant: TenantId,
    scope: Scope,
) -> Result<Vec<KeyView>, ControlError> {
    let sql = format!(
        "{SELECT_KEYS} WHERE k.tenant_id = $1 AND ($2 IS NULL OR k.team_id = $2)
         ORDER BY k.created_at, k.prefix"
    );
    let rows: Vec<KeyRow> = on_db!(store, |db, id, _json| sqlx::query_as(&sql)
        .bind(id(tenant.0))
        .bind(scope.team().map(id))
        .fetch_all(db)
        .await?);
    rows.into_iter().map(key_view).collect()
}

/// A key id is its 12 hex digits, with or without `nxk_`; anything else names no key.
fn key_id(raw: &str) -> Result<&str, ControlError> {
    let id = raw.strip_prefix("nxk_").unwrap_or(raw);
    if id.len() == 12 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(id)
    } else {
        Err(ControlError::NotFound("key"))
    }
}

/// One key `scope` reaches; another team's or another tenant's is not found.
pub async fn get(
    store: &Store,
    tenant: TenantId,
    prefix: &str,
    scope: Scope,
) -> Result<KeyView, ControlError> {
    let prefix = key_id(prefix)?;
    let sql = format!(
        "{SELECT_KEYS} WHERE k.tenant_id = $1 AND k.prefix = $2 AND ($3 IS NULL OR k.team_id = $3)"
    );
    let row: Option<KeyRow> = on_db!(store, |db, id, _json| sqlx::query_as(&sql)
        .bind(id(tenant.0))
        .bind(prefix)
        .bind(scope.team().map(id))
        .fetch_optional(db)
        .await?);
    row.map(key_view)
        .transpose()?
        .ok_or(ControlError::NotFound("key"))
}

/// Revokes `key` (as read by `get` with the same `scope`) inside `tx`, and answers it revoked.
/// Revoking twice keeps the first time.
pub async fn revoke(
    tx: &mut Tx,
    tenant: TenantId,
    key: &KeyView,
    scope: Scope,
) -> Result<KeyView, ControlError> {
    let now = now_ms();
    let sql = "UPDATE api_keys SET revoked_at = $3
               WHERE tenant_id = $1 AND prefix = $2 AND revoked_at IS NULL
                 AND ($4 IS NULL OR team_id = $4)";
    let changed = on_tx!(tx, |db, id, _json| sqlx::query(sql)
        .bind(id(tenant.0))
        .bind(&key.id)
        .bind(now)
        .bind(scope.team().map(id))
        .execute(db)
        .await?
        .rows_affected());
    let mut after = key.clone();
    if changed == 1 {
        after.revoked_at = Some(time(now));
    }
    Ok(after)
}

type AuthRow = (
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    i64,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

/// The identity behind a presented key, or `None` for any malformed, unknown, wrong, revoked
/// or expired key, or a key of a deactivated principal: the caller cannot tell which, so a guess learns nothing.
pub async fn authenticate(
    store: &Store,
    presented: &str,
) -> Result<Option<Identity>, ControlError> {
    let mut parts = presented.splitn(3, '_');
    let (Some(KEY_TAG), Some(prefix), Some(_)) = (parts.next(), parts.next(), parts.next()) else {
        return Ok(None);
    };
    if prefix.len() != 12 || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let sql = "SELECT CAST(k.tenant_id AS TEXT), k.hash, k.role, CAST(k.team_id AS TEXT), t.name,
                      COALESCE(t.created_at, 0), p.name, k.last_used_at, k.expires_at,
                      COALESCE(k.revoked_at, p.deactivated_at)
               FROM api_keys k LEFT JOIN teams t ON t.id = k.team_id
               LEFT JOIN principals p ON p.id = k.principal_id
               WHERE k.prefix = $1";
    let row: Option<AuthRow> = on_db!(store, |db, id, _json| sqlx::query_as(sql)
        .bind(prefix)
        .fetch_optional(db)
        .await?);
    let Some((tenant, hash, role, team_id, team_name, team_at, principal, used, expires, revoked)) =
        row
    else {
        return Ok(None);
    };
    let matches: bool = hash_key(presented).as_bytes().ct_eq(hash.as_bytes()).into();
    let now = now_ms();
    if !matches || revoked.is_some() || expires.is_some_and(|e| e <= now) {
        return Ok(None);
    }
    let tenant = TenantId(parse_uuid(&tenant)?);
    if used.is_none_or(|u| u < now - LAST_USED_RESOLUTION_MS) {
        touch(store, prefix, now).await?;
    }
    let team = match (team_id, team_name) {
        (Some(id), Some(name)) => Some(Team {
            id: parse_uuid(&id)?,
            name,
            created_at: time(team_at),
            // Not read for a caller's identity: only the team's id and name are used.
            ring_strategy: Default::default(),
            ring_timeout_seconds: super::reps::DEFAULT_RING_TIMEOUT_SECONDS,
        }),
        _ => None,
    };
    Ok(Some(Identity {
        tenant,
        key_prefix: prefix.to_owned(),
        role: role.parse().map_err(|e: super::roles::UnknownRole| {
            neuronx_supervision::StoreError::Corrupt(e.to_string())
        })?,
        team,
        principal,
    }))
}

/// Records a use. Conditional, so concurrent requests of one key write at most once per
/// resolution window.
async fn touch(store: &Store, prefix: &str, now: i64) -> Result<(), ControlError> {
    let sql = "UPDATE api_keys SET last_used_at = $2
               WHERE prefix = $1 AND (last_used_at IS NULL OR last_used_at < $3)";
    on_db!(store, |db, id, _json| sqlx::query(sql)
        .bind(prefix)
        .bind(now)
        .bind(now - LAST_USED_RESOLUTION_MS)
        .execute(db)
        .await?
        .rows_affected());
    Ok(())
}
