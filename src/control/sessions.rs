//! Console sessions: signing in with an API key, or following a magic link sent by email
//! (`control::magic`), opens one. The browser holds a random token in an HttpOnly cookie; only
//! its SHA-256 is stored, with what it was opened with and the session's CSRF token. A session
//! opened with a key lasts while the key works (revoking or expiring it ends the session); one
//! opened by a magic link belongs to its principal, with the principal's role and team, and
//! lasts while the principal is active (deactivating it ends the session). ADR 0042.

use neuronx_supervision::{Store, TenantId};
use rand::RngCore;

use uuid::Uuid;

use super::access::Team;
use super::keys::{Identity, MAGIC_LINK_KEY};
use super::tx::{on_tx, Tx};
use super::{now_ms, on_db, parse_uuid, ControlError};
use crate::tenants::hash_key;

/// How long a console session lasts without signing in again.
pub const SESSION_TTL_MS: i64 = 12 * 3600 * 1000;

pub(crate) fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// An open session: who, and the token forms must echo.
pub struct Session {
    pub identity: Identity,
    pub csrf: String,
}

/// Opens a session for an authenticated key; returns the cookie's token and the CSRF token.
pub async fn open(store: &Store, who: &Identity) -> Result<(String, String), ControlError> {
    let (token, csrf) = (random_hex(), random_hex());
    let now = now_ms();
    let sql =
        "INSERT INTO console_sessions (hash, tenant_id, key_prefix, csrf, expires_at, created_at)
               VALUES ($1, $2, $3, $4, $5, $6)";
    on_db!(store, |db, id, _json| sqlx::query(sql)
        .bind(hash_key(&token))
        .bind(id(who.tenant.0))
        .bind(&who.key_prefix)
        .bind(&csrf)
        .bind(now + SESSION_TTL_MS)
        .bind(now)
        .execute(db)
        .await?
        .rows_affected());
    Ok((token, csrf))
}

/// Opens a session for `principal` inside `tx` (the magic link's consumption, in the same
/// transaction); returns the cookie's token and the CSRF token.
pub(crate) async fn open_for_principal(
    tx: &mut Tx,
    tenant: TenantId,
    principal: Uuid,
) -> Result<(String, String), ControlError> {
    let (token, csrf) = (random_hex(), random_hex());
    let now = now_ms();
    let sql =
        "INSERT INTO console_sessions (hash, tenant_id, principal_id, csrf, expires_at, created_at)
               VALUES ($1, $2, $3, $4, $5, $6)";
    on_tx!(tx, |db, id, _json| sqlx::query(sql)
        .bind(hash_key(&token))
        .bind(id(tenant.0))
        .bind(id(principal))
        .bind(&csrf)
        .bind(now + SESSION_TTL_MS)
        .bind(now)
        .execute(db)
        .await?
        .rows_affected());
    Ok((token, csrf))
}

/// Ends every session of `principal` inside `tx`: those its magic links opened and those opened
/// with any of its keys. Answers how many ended.
pub(crate) async fn close_all_of(
    tx: &mut Tx,
    tenant: TenantId,
    principal: Uuid,
) -> Result<u64, ControlError> {
    let sql = "DELETE FROM console_sessions
               WHERE tenant_id = $1 AND (principal_id = $2 OR key_prefix IN
                   (SELECT prefix FROM api_keys WHERE tenant_id = $1 AND principal_id = $2))";
    Ok(on_tx!(tx, |db, id, _json| sqlx::query(sql)
        .bind(id(tenant.0))
        .bind(id(principal))
        .execute(db)
        .await?
        .rows_affected()))
}

type Row = (
    String,
    String,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// The session a cookie's token opens, if it is live and what opened it still stands: its key
/// works, or its principal is active.
pub async fn find(store: &Store, token: &str) -> Result<Option<Session>, ControlError> {
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let now = now_ms();
    // A key session: the key's role, team and principal. A principal's session: the
    // principal's own. Either way the principal (if any) must be active.
    let sql = "SELECT CAST(s.tenant_id AS TEXT), s.csrf, s.key_prefix,
                      COALESCE(k.role, sp.role), CAST(COALESCE(k.team_id, sp.team_id) AS TEXT),
                      t.name, COALESCE(kp.name, sp.name)
               FROM console_sessions s
               LEFT JOIN api_keys k ON k.prefix = s.key_prefix
               LEFT JOIN principals kp ON kp.id = k.principal_id
               LEFT JOIN principals sp ON sp.id = s.principal_id
               LEFT JOIN teams t ON t.id = COALESCE(k.team_id, sp.team_id)
               WHERE s.hash = $1 AND s.expires_at > $2
                 AND ((s.key_prefix IS NOT NULL AND k.revoked_at IS NULL
                       AND (k.expires_at IS NULL OR k.expires_at > $2)
                       AND kp.deactivated_at IS NULL)
                   OR (s.key_prefix IS NULL AND sp.id IS NOT NULL
                       AND sp.deactivated_at IS NULL))";
    let row: Option<Row> = on_db!(store, |db, id, _json| sqlx::query_as(sql)
        .bind(hash_key(token))
        .bind(now)
        .fetch_optional(db)
        .await?);
    let Some((tenant, csrf, prefix, role, team_id, team_name, principal)) = row else {
        return Ok(None);
    };
    let team = match (team_id, team_name) {
        (Some(id), Some(name)) => Some(Team {
            id: parse_uuid(&id)?,
            name,
            created_at: chrono::DateTime::default(),
            // Not read for a caller's identity: only the team's id and name are used.
            ring_strategy: Default::default(),
            ring_timeout_seconds: super::reps::DEFAULT_RING_TIMEOUT_SECONDS,
        }),
        _ => None,
    };
    Ok(Some(Session {
        identity: Identity {
            tenant: TenantId(parse_uuid(&tenant)?),
            // A magic link's session presents no key: the audit log names how it signed in.
            key_prefix: prefix.unwrap_or_else(|| MAGIC_LINK_KEY.to_owned()),
            role: role.parse().map_err(|e: super::roles::UnknownRole| {
                neuronx_supervision::StoreError::Corrupt(e.to_string())
            })?,
            team,
            principal,
        },
        csrf,
    }))
}

/// Ends a session (signing out); also drops sessions that have expired.
pub async fn close(store: &Store, token: &str) -> Result<(), ControlError> {
    let sql = "DELETE FROM console_sessions WHERE hash = $1 OR expires_at < $2";
    on_db!(store, |db, id, _json| sqlx::query(sql)
        .bind(hash_key(token))
        .bind(now_ms())
        .execute(db)
        .await?
        .rows_affected());
    Ok(())
}

/// The last timeline entry of an opportunity: the console's "last event" column.
pub async fn last_event(
    store: &Store,
    tenant: TenantId,
    opportunity: uuid::Uuid,
) -> Result<Option<(String, String, i64)>, ControlError> {
    Ok(store
        .last_timeline_entry(tenant, "opportunity", opportunity)
        .await?
        .map(|r| (r.kind, r.reason, r.at_ms)))
}

/// A value that changes whenever any of the tenant's opportunities changes (a transition bumps
/// its version), so the console's live feed can tell when to refresh.
pub async fn fingerprint(store: &Store, tenant: TenantId) -> Result<(i64, i64), ControlError> {
    Ok(store.kind_fingerprint(tenant, "opportunity").await?)
}
