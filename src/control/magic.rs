//! Magic links: a rep signs in to the console as itself by a link sent to its email (issue #14,
//! ADR 0042). A link carries a random 256-bit token; only its SHA-256 is stored, with the
//! principal it signs in, for 15 minutes and one use. Consuming it opens a console session
//! tied to the principal (`sessions::open_for_principal`) in the same transaction, with its
//! `session_open` audit entry. Requests are limited per address (five per 15 minutes), counted
//! whether or not the address belongs to anyone, so the limit's answer reveals nothing either.

use neuronx_supervision::{Store, TenantId};
use uuid::Uuid;

use super::access::Team;
use super::audit::{self, AuditAction, Entry, Outcome};
use super::keys::{Identity, MAGIC_LINK_KEY};
use super::sessions::{self, random_hex};
use super::tx::{on_tx, Tx};
use super::{now_ms, on_db, parse_uuid, ControlError, Role};
use crate::tenants::hash_key;

/// How long a link works after it was sent.
pub const LINK_TTL_MS: i64 = 15 * 60 * 1000;

/// Links asked for one address within `WINDOW_MS`, at most.
pub const LINKS_PER_WINDOW: i64 = 5;

/// The window of the per-address limit.
pub const WINDOW_MS: i64 = 15 * 60 * 1000;

/// The longest address the form takes (RFC 5321's path limit).
pub const MAX_EMAIL_CHARS: usize = 254;

/// The tenant a sign-in form names: its id, or its name when exactly one tenant has it.
pub async fn resolve_tenant(store: &Store, raw: &str) -> Result<Option<TenantId>, ControlError> {
    let raw = raw.trim();
    if raw.is_empty() || raw.chars().count() > 100 || raw.chars().any(char::is_control) {
        return Ok(None);
    }
    if let Ok(id) = Uuid::parse_str(raw) {
        let sql = "SELECT CAST(id AS TEXT) FROM tenants WHERE id = $1";
        let found: Option<String> = on_db!(store, |db, id_of, _json| sqlx::query_scalar(sql)
            .bind(id_of(id))
            .fetch_optional(db)
            .await?);
        return Ok(found.map(|_| TenantId(id)));
    }
    let sql = "SELECT CAST(id AS TEXT) FROM tenants WHERE name = $1 LIMIT 2";
    let found: Vec<String> = on_db!(store, |db, _id, _json| sqlx::query_scalar(sql)
        .bind(raw)
        .fetch_all(db)
        .await?);
    match found.as_slice() {
        [one] => Ok(Some(TenantId(parse_uuid(one)?))),
        _ => Ok(None),
    }
}

/// Counts a request for a link to `email` within `scope` (the tenant's id, or the tenant as
/// typed) and answers whether it is within the limit. Every request counts, matched or not;
/// requests older than the window are dropped on the way.
pub async fn admit(store: &Store, scope: &str, email: &str) -> Result<bool, ControlError> {
    let now = now_ms();
    let email = email.to_lowercase();
    let mut tx = Tx::begin(store).await?;
    let prune = "DELETE FROM magic_link_requests WHERE at < $1";
    on_tx!(&mut tx, |db, _id, _json| sqlx::query(prune)
        .bind(now - WINDOW_MS)
        .execute(&mut *db)
        .await?
        .rows_affected());
    let count = "SELECT COUNT(*) FROM magic_link_requests
                 WHERE scope = $1 AND email = $2 AND at >= $3";
    let seen: i64 = on_tx!(&mut tx, |db, _id, _json| sqlx::query_scalar(count)
        .bind(scope)
        .bind(&email)
        .bind(now - WINDOW_MS)
        .fetch_one(&mut *db)
        .await?);
    if seen >= LINKS_PER_WINDOW {
        return Ok(false);
    }
    let add = "INSERT INTO magic_link_requests (scope, email, at) VALUES ($1, $2, $3)";
    on_tx!(&mut tx, |db, _id, _json| sqlx::query(add)
        .bind(scope)
        .bind(&email)
        .bind(now)
        .execute(&mut *db)
        .await?
        .rows_affected());
    tx.commit().await?;
    Ok(true)
}

/// Whom a link signs in: an active user whose rep email is the address (compared without
/// case), with the identity its session will have.
#[derive(Debug, Clone)]
pub struct Signer {
    pub principal: Uuid,
    pub name: String,
    /// The address as stored on the rep.
    pub email: String,
    pub identity: Identity,
}

type SignerRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
);

const SIGNER_SQL: &str = "SELECT CAST(p.id AS TEXT), p.name, p.role, r.email,
           CAST(p.team_id AS TEXT), t.name
    FROM reps r JOIN principals p ON p.tenant_id = r.tenant_id AND p.id = r.principal_id
    LEFT JOIN teams t ON t.id = p.team_id
    WHERE r.tenant_id = $1 AND LOWER(r.email) = LOWER($2) AND p.deactivated_at IS NULL
      AND p.kind = 'user'
    LIMIT 2";

fn signer_of(tenant: TenantId, row: SignerRow) -> Result<Signer, ControlError> {
    let (id, name, role, email, team_id, team_name) = row;
    let role: Role = role.parse().map_err(|e: super::roles::UnknownRole| {
        neuronx_supervision::StoreError::Corrupt(e.to_string())
    })?;
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
    Ok(Signer {
        principal: parse_uuid(&id)?,
        identity: Identity {
            tenant,
            key_prefix: MAGIC_LINK_KEY.to_owned(),
            role,
            team,
            principal: Some(name.clone()),
        },
        name,
        email,
    })
}

/// The active user whose rep has the address `email`, if exactly one has: an address two
/// people share signs in neither (the operator fixes the data; a link must name one person).
pub async fn find_signer(
    store: &Store,
    tenant: TenantId,
    email: &str,
) -> Result<Option<Signer>, ControlError> {
    let rows: Vec<SignerRow> = on_db!(store, |db, id, _json| sqlx::query_as(SIGNER_SQL)
        .bind(id(tenant.0))
        .bind(email.trim())
        .fetch_all(db)
        .await?);
    if rows.len() > 1 {
        tracing::warn!(%tenant, "two active reps share a sign-in address: no link sent");
        return Ok(None);
    }
    rows.into_iter()
        .next()
        .map(|r| signer_of(tenant, r))
        .transpose()
}

/// Stores a new link for `signer` and commits it (before anything is sent): answers the token,
/// which only the email will carry.
pub async fn issue(store: &Store, signer: &Signer) -> Result<String, ControlError> {
    let token = random_hex();
    let now = now_ms();
    let sql = "INSERT INTO magic_links (hash, tenant_id, principal_id, expires_at, created_at)
               VALUES ($1, $2, $3, $4, $5)";
    on_db!(store, |db, id, _json| sqlx::query(sql)
        .bind(hash_key(&token))
        .bind(id(signer.identity.tenant.0))
        .bind(id(signer.principal))
        .bind(now + LINK_TTL_MS)
        .bind(now)
        .execute(db)
        .await?
        .rows_affected());
    Ok(token)
}

/// Why a link opens nothing. The page says which: the token is the caller's own secret, and
/// "already used" tells a person to ask for another (an attacker holding a used token learns
/// nothing it can use).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("this sign-in link is not valid: ask for a new one")]
    Unknown,
    #[error("this sign-in link has expired (links last 15 minutes): ask for a new one")]
    Expired,
    #[error("this sign-in link was already used (each works once): ask for a new one")]
    Used,
}

/// An opened session: the cookie's token and whom it signs in.
pub struct Opened {
    pub token: String,
    pub identity: Identity,
}

type LinkRow = (String, String, i64, Option<i64>, Option<i64>);

/// Uses the link whose token is `token`, once: marks it used and opens a session for its
/// principal in one transaction, with the `session_open` audit entry. A principal deactivated
/// since the link was sent is refused like an unknown link.
pub async fn consume(
    store: &Store,
    token: &str,
) -> Result<Result<Opened, LinkError>, ControlError> {
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(Err(LinkError::Unknown));
    }
    let hash = hash_key(&token.to_ascii_lowercase());
    let now = now_ms();
    let mut tx = Tx::begin(store).await?;
    // The UPDATE takes the row: two requests with one token cannot both find it unused.
    let mark = "UPDATE magic_links SET used_at = $2 WHERE hash = $1 AND used_at IS NULL";
    let marked = on_tx!(&mut tx, |db, _id, _json| sqlx::query(mark)
        .bind(&hash)
        .bind(now)
        .execute(&mut *db)
        .await?
        .rows_affected());
    let read = "SELECT CAST(l.tenant_id AS TEXT), CAST(l.principal_id AS TEXT), l.expires_at,
                       l.used_at, p.deactivated_at
                FROM magic_links l JOIN principals p ON p.id = l.principal_id
                WHERE l.hash = $1";
    let row: Option<LinkRow> = on_tx!(&mut tx, |db, _id, _json| sqlx::query_as(read)
        .bind(&hash)
        .fetch_optional(&mut *db)
        .await?);
    let Some((tenant, principal, expires_at, _, deactivated)) = row else {
        return Ok(Err(LinkError::Unknown));
    };
    if marked == 0 {
        return Ok(Err(LinkError::Used));
    }
    if deactivated.is_some() {
        tx.commit().await?;
        return Ok(Err(LinkError::Unknown));
    }
    if expires_at <= now {
        // Spent either way: an expired link never works later.
        tx.commit().await?;
        return Ok(Err(LinkError::Expired));
    }
    let tenant = TenantId(parse_uuid(&tenant)?);
    let principal = parse_uuid(&principal)?;
    let who = "SELECT CAST(p.id AS TEXT), p.name, p.role, '', CAST(p.team_id AS TEXT), t.name
               FROM principals p LEFT JOIN teams t ON t.id = p.team_id
               WHERE p.tenant_id = $1 AND p.id = $2";
    let row: SignerRow = on_tx!(&mut tx, |db, id, _json| sqlx::query_as(who)
        .bind(id(tenant.0))
        .bind(id(principal))
        .fetch_one(&mut *db)
        .await?);
    let signer = signer_of(tenant, row)?;
    let (token, _csrf) = sessions::open_for_principal(&mut tx, tenant, principal).await?;
    let after = serde_json::json!({
        "principal": signer.name,
        "role": signer.identity.role,
        "team": signer.identity.team.as_ref().map(|t| t.name.clone()),
        "via": "magic_link",
    });
    audit::commit(
        tx,
        &signer.identity,
        Entry::created(
            AuditAction::SessionOpen,
            "principal",
            principal.to_string(),
            after,
        ),
    )
    .await?;
    Ok(Ok(Opened {
        token,
        identity: signer.identity,
    }))
}

/// Logs a link as being sent (pending), to be settled with the mail server's answer.
pub async fn log_sending(store: &Store, signer: &Signer) -> Result<audit::Pending, ControlError> {
    audit::begin(
        store,
        &signer.identity,
        Entry {
            action: AuditAction::MagicLinkSent,
            target_kind: "principal",
            target_id: signer.principal.to_string(),
            reason: None,
            outcome: Outcome::Pending,
            before: None,
            after: None,
        },
    )
    .await
}

/// Whether an address as typed is one the form takes: the reason why not, named for the page.
pub fn check_email(raw: &str) -> Result<String, String> {
    let email = raw.trim();
    if email.is_empty() {
        return Err("email is required".into());
    }
    if email.chars().count() > MAX_EMAIL_CHARS {
        return Err(format!(
            "email must be at most {MAX_EMAIL_CHARS} characters"
        ));
    }
    neuronx_adapters::smtp::parse_address(email).map_err(|e| format!("email: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_takes_addresses_and_names_what_is_wrong() {
        assert_eq!(
            check_email(" ana@acme.test ").as_deref(),
            Ok("ana@acme.test")
        );
        assert_eq!(check_email("  ").unwrap_err(), "email is required");
        let long = format!("{}@acme.test", "a".repeat(300));
        assert!(check_email(&long).unwrap_err().contains("at most 254"));
        assert!(check_email("ana@").unwrap_err().starts_with("email:"));
    }
}
