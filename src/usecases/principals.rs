//! Deactivating and reactivating a principal, audited (ADR 0042). The control plane's part
//! (inactive, keys revoked, sessions ended, rep offline) is one transaction with its audit
//! entry; the principal's open opportunities are then reassigned one by one through the reassign
//! path (`commands::run`), so each gets its timeline entry and its own `reassign` audit entry.
//! Deactivating again finishes what a crash between the two left: the commit is a no-op and
//! the opportunities still held are reassigned.

use neuronx_actors::domain::opportunity::OppInput;
use neuronx_supervision::EngineHandle;
use serde::Serialize;
use uuid::Uuid;

use super::commands::{acting_as, run};
use super::views::Applied;
use super::{authorize, Error};
use crate::control::access::{self, Principal};
use crate::control::audit::AuditAction;
use crate::control::keys::Identity;
use crate::control::principals::{self, Revoked};
use crate::control::{Action, Scope};

/// One of the principal's open opportunities and where it went.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Reassigned {
    pub opportunity: Uuid,
    /// The new assignee: the next active operator of the opportunity's team, or `unassigned`.
    pub to: String,
    /// `applied`, `accepted` (durable, applied by the instance that holds it) or `rejected`.
    pub outcome: String,
    /// Why it was not applied, when it was not.
    pub error: Option<String>,
}

/// What a deactivation did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Deactivation {
    pub principal: Principal,
    #[serde(flatten)]
    pub revoked: Revoked,
    pub reassigned: Vec<Reassigned>,
}

/// The principal `name` as `who` may change it: in reach (a team-limited admin: its team's) and
/// no higher than `who` may grant. Another team's is not found.
async fn target(engine: &EngineHandle, who: &Identity, name: &str) -> Result<Principal, Error> {
    let tenant = authorize(who, Action::ManageAccess)?;
    let p = access::find_principal(engine.store(), tenant, name)
        .await?
        .filter(|p| Scope::of(who).reaches(p.team_id))
        .ok_or(Error::NotFound("principal"))?;
    if !who.role.can_grant(p.role) {
        return Err(Error::Forbidden(format!(
            "role {} may not change a principal with role {}",
            who.role, p.role
        )));
    }
    Ok(p)
}

/// Deactivates `name`: one transaction marks it inactive, revokes its keys, ends its sessions
/// and sets its rep offline, with its `principal_deactivate` entry; then each of its open
/// opportunities is reassigned by its team's rules. Nobody deactivates themselves (they would
/// lock themselves out mid-request).
pub async fn deactivate(
    engine: &EngineHandle,
    who: &Identity,
    name: &str,
    reason: Option<&str>,
) -> Result<Deactivation, Error> {
    let p = target(engine, who, name).await?;
    if who.principal.as_deref() == Some(p.name.as_str()) {
        return Err(Error::invalid(
            "name",
            "a principal cannot deactivate itself: ask another admin",
        ));
    }
    if let Some(r) = reason {
        crate::input::check("reason", r, crate::input::Lines::Many, 0, 2000)?;
    }
    let store = engine.store();
    let revoked = principals::deactivate_logged(store, who, &p, reason).await?;
    let reassigned = reassign_all(engine, who, &p).await?;
    Ok(Deactivation {
        principal: principals::by_id(store, who.tenant, p.id).await?,
        revoked,
        reassigned,
    })
}

/// Reassigns every open opportunity of `p` (now inactive), each through the reassign path.
async fn reassign_all(
    engine: &EngineHandle,
    who: &Identity,
    p: &Principal,
) -> Result<Vec<Reassigned>, Error> {
    let store = engine.store();
    let tenant = who.tenant;
    let by = acting_as(who, None)?;
    let reason = principals::reassign_reason(p);
    let mut done = Vec::new();
    for held in principals::open_opportunities_of(store, tenant, &p.name).await? {
        let team = held.team.or(p.team_id);
        let to = principals::successor(store, tenant, team).await?;
        let input = OppInput::Reassign {
            assignee: to.clone(),
            by: by.clone(),
            reason: reason.clone(),
        };
        let (outcome, error) =
            match run(engine, who, held.opportunity, AuditAction::Reassign, input).await {
                Ok(Applied::Done(_)) => ("applied", None),
                Ok(Applied::Accepted(_)) => ("accepted", None),
                Err(e) => ("rejected", Some(e.to_string())),
            };
        if let Some(e) = &error {
            tracing::warn!(opportunity = %held.opportunity, principal = %p.name, error = %e, "reassignment after a deactivation refused");
        }
        done.push(Reassigned {
            opportunity: held.opportunity,
            to,
            outcome: outcome.to_owned(),
            error,
        });
    }
    Ok(done)
}

/// Activates `name` again. Its keys stay revoked and its rep offline: it signs in by a new
/// link or key, and sets itself available.
pub async fn activate(
    engine: &EngineHandle,
    who: &Identity,
    name: &str,
) -> Result<Principal, Error> {
    let p = target(engine, who, name).await?;
    let store = engine.store();
    principals::activate_logged(store, who, &p).await?;
    Ok(principals::by_id(store, who.tenant, p.id).await?)
}
