//! Who may use a tenant, and how: teams, principals and API keys, each change audited. A key's
//! secret is in the create answer only; lists never carry it.

use serde::Serialize;
use serde_json::Value;

use super::audit::rfc3339;
use super::{authorize, Error};
use crate::control::access::{self, NewPrincipal, Principal, PrincipalKind, Team};
use crate::control::audit::{self, AuditAction, Entry, Outcome};
use crate::control::keys::{self, Identity, KeyView, NewKey};
use crate::control::{Action, Role, Scope, Tx};
use neuronx_supervision::EngineHandle;

fn json<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

fn parse_role(field: &'static str, raw: &str) -> Result<Role, Error> {
    raw.parse()
        .map_err(|e: crate::control::roles::UnknownRole| Error::invalid(field, e.to_string()))
}

pub async fn create_team(engine: &EngineHandle, who: &Identity, name: &str) -> Result<Team, Error> {
    let tenant = authorize(who, Action::ManageAccess)?;
    let mut tx = Tx::begin(engine.store()).await?;
    let team = access::create_team(&mut tx, tenant, name).await?;
    let view = json(&team);
    audit::commit(
        tx,
        who,
        Entry::created(AuditAction::TeamCreate, "team", team.id.to_string(), view),
    )
    .await?;
    Ok(team)
}

pub async fn list_teams(engine: &EngineHandle, who: &Identity) -> Result<Vec<Team>, Error> {
    let tenant = authorize(who, Action::Read)?;
    Ok(access::list_teams(engine.store(), tenant).await?)
}

/// A principal as asked for: its role and kind as the caller wrote them.
pub struct PrincipalFields<'a> {
    pub name: &'a str,
    pub role: &'a str,
    pub kind: Option<&'a str>,
    pub team: Option<&'a str>,
}

/// A new user or service account. Nobody creates one above their own power, and a
/// team-limited admin creates in its own team only.
pub async fn create_principal(
    engine: &EngineHandle,
    who: &Identity,
    f: PrincipalFields<'_>,
) -> Result<Principal, Error> {
    let tenant = authorize(who, Action::ManageAccess)?;
    let role = parse_role("role", f.role)?;
    if !who.role.can_grant(role) {
        return Err(Error::Forbidden(format!(
            "role {} may not create a principal with role {role}",
            who.role
        )));
    }
    let kind: PrincipalKind = f.kind.unwrap_or("user").parse()?;
    let team = crate::control::scope::requested_team(who, "team", f.team)?;
    let mut tx = Tx::begin(engine.store()).await?;
    let p = access::create_principal(
        engine.store(),
        &mut tx,
        tenant,
        &NewPrincipal {
            name: f.name,
            kind,
            role,
            team,
        },
    )
    .await?;
    let view = json(&p);
    audit::commit(
        tx,
        who,
        Entry::created(
            AuditAction::PrincipalCreate,
            "principal",
            p.id.to_string(),
            view,
        ),
    )
    .await?;
    Ok(p)
}

/// The tenant's principals, by name; only one team's when `team` is given.
pub async fn list_principals(
    engine: &EngineHandle,
    who: &Identity,
    team: Option<&str>,
) -> Result<Vec<Principal>, Error> {
    let tenant = authorize(who, Action::Read)?;
    let store = engine.store();
    let team = match team {
        Some(name) => Some(access::require_team(store, tenant, "team", name).await?.id),
        None => None,
    };
    Ok(access::list_principals(store, tenant, team).await?)
}

/// A key as asked for.
pub struct KeyFields<'a> {
    pub name: &'a str,
    pub role: &'a str,
    pub team: Option<&'a str>,
    pub principal: Option<&'a str>,
    /// RFC 3339; the key stops working then.
    pub expires_at: Option<&'a str>,
}

/// A new key: its view and its secret, shown this once.
pub async fn create_key(
    engine: &EngineHandle,
    who: &Identity,
    f: KeyFields<'_>,
) -> Result<(KeyView, String), Error> {
    authorize(who, Action::ManageAccess)?;
    let role = parse_role("role", f.role)?;
    let expires_at = rfc3339("expires_at", f.expires_at)?;
    let mut tx = Tx::begin(engine.store()).await?;
    let (view, secret) = keys::create(
        engine.store(),
        &mut tx,
        who,
        &NewKey {
            name: f.name,
            role,
            team: f.team,
            principal: f.principal,
            expires_at,
        },
    )
    .await?;
    audit::commit(
        tx,
        who,
        Entry::created(AuditAction::KeyCreate, "key", view.id.clone(), json(&view)),
    )
    .await?;
    Ok((view, secret))
}

/// The keys the caller reaches (a team-limited admin: its team's), never their secrets.
pub async fn list_keys(engine: &EngineHandle, who: &Identity) -> Result<Vec<KeyView>, Error> {
    let tenant = authorize(who, Action::ManageAccess)?;
    Ok(keys::list(engine.store(), tenant, Scope::of(who)).await?)
}

/// Revokes a key the caller reaches and could have granted; it stays listed with
/// `revoked_at`.
pub async fn revoke_key(engine: &EngineHandle, who: &Identity, id: &str) -> Result<KeyView, Error> {
    let tenant = authorize(who, Action::ManageAccess)?;
    let store = engine.store();
    let scope = Scope::of(who);
    let before = keys::get(store, tenant, id, scope).await?;
    if !who.role.can_grant(before.role) {
        return Err(Error::Forbidden(format!(
            "role {} may not revoke a key with role {}",
            who.role, before.role
        )));
    }
    let mut tx = Tx::begin(engine.store()).await?;
    let after = keys::revoke(&mut tx, tenant, &before, scope).await?;
    audit::commit(
        tx,
        who,
        Entry {
            action: AuditAction::KeyRevoke,
            target_kind: "key",
            target_id: after.id.clone(),
            reason: None,
            outcome: Outcome::Applied,
            before: Some(json(&before)),
            after: Some(json(&after)),
        },
    )
    .await?;
    Ok(after)
}
