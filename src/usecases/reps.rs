//! Reps and their availability: a user's phone, zone, hours and most calls at once (admins),
//! its status (admins, and the rep itself), the list of reps, and how a team rings them. Every
//! change is audited in its own transaction.

use serde::Serialize;
use serde_json::Value;

use super::{authorize, Error};
use crate::control::access::{self, Principal, Team};
use crate::control::audit::{self, AuditAction, Entry, Outcome};
use crate::control::keys::Identity;
use crate::control::reps::{self, Rep, RepProfile, RepStatus, RingStrategy, WorkingHours};
use crate::control::{Action, Scope, Tx};
use neuronx_supervision::EngineHandle;

fn json<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// A rep's profile as asked for.
pub struct ProfileFields<'a> {
    pub phone: &'a str,
    pub time_zone: &'a str,
    pub working_hours: Option<HoursFields<'a>>,
    /// Default 1.
    pub max_calls: Option<i64>,
    /// Where escalation notices reach the rep by email; none: SMS only.
    pub email: Option<&'a str>,
}

pub struct HoursFields<'a> {
    pub days: &'a [String],
    pub from: &'a str,
    pub to: &'a str,
}

/// The principal `name` names, if the caller reaches it: in its tenant and, for a team-limited
/// key, in its team. Anything else is not found, never forbidden, so names cannot be probed.
async fn reached(engine: &EngineHandle, who: &Identity, name: &str) -> Result<Principal, Error> {
    access::find_principal(engine.store(), who.tenant, name)
        .await?
        .filter(|p| Scope::of(who).reaches(p.team_id))
        .ok_or(Error::NotFound("principal"))
}

/// Makes user `name` a rep, or changes its profile; its status is kept (a new rep is
/// `offline` until it says otherwise). For whoever manages principals.
pub async fn set_profile(
    engine: &EngineHandle,
    who: &Identity,
    name: &str,
    f: ProfileFields<'_>,
) -> Result<Rep, Error> {
    let tenant = authorize(who, Action::ManageAccess)?;
    let hours = f
        .working_hours
        .map(|h| WorkingHours::new(h.days, h.from, h.to))
        .transpose()?;
    let profile = RepProfile::new(f.phone, f.time_zone, hours, f.max_calls)?.with_email(f.email)?;
    let principal = reached(engine, who, name).await?;
    let mut tx = Tx::begin(engine.store()).await?;
    let (before, after) = reps::set_profile(&mut tx, tenant, &principal.name, &profile).await?;
    audit::commit(
        tx,
        who,
        Entry {
            action: AuditAction::RepUpdate,
            target_kind: "rep",
            target_id: principal.id.to_string(),
            reason: None,
            outcome: Outcome::Applied,
            before: before.as_ref().map(json),
            after: Some(json(&after)),
        },
    )
    .await?;
    Ok(after)
}

/// Sets rep `name`'s status: `available`, `away` or `offline` (`busy` is derived). Whoever
/// manages principals may set anyone's in reach; a key or console session acting for the rep
/// itself may set its own, whatever its role, since a rep says when it takes calls.
pub async fn set_status(
    engine: &EngineHandle,
    who: &Identity,
    name: &str,
    status: &str,
) -> Result<Rep, Error> {
    let own = who.principal.as_deref() == Some(name.trim());
    let tenant = authorize(
        who,
        if own {
            Action::Read
        } else {
            Action::ManageAccess
        },
    )?;
    let status: RepStatus = status.parse()?;
    let principal = reached(engine, who, name).await?;
    let mut tx = Tx::begin(engine.store()).await?;
    let (before, after) = reps::set_status(&mut tx, tenant, &principal.name, status).await?;
    audit::commit(
        tx,
        who,
        Entry {
            action: AuditAction::RepStatus,
            target_kind: "rep",
            target_id: principal.id.to_string(),
            reason: None,
            outcome: Outcome::Applied,
            before: Some(json(&before)),
            after: Some(json(&after)),
        },
    )
    .await?;
    Ok(after)
}

/// The reps the caller reaches (a team-limited key: its team's), or one team's, with what
/// each is doing now.
pub async fn list_reps(
    engine: &EngineHandle,
    who: &Identity,
    team: Option<&str>,
) -> Result<Vec<Rep>, Error> {
    let tenant = authorize(who, Action::Read)?;
    let store = engine.store();
    let team = match crate::control::scope::requested_team(who, "team", team)? {
        Some(name) => Some(access::require_team(store, tenant, "team", name).await?.id),
        None => None,
    };
    // The engine's clock (the database's time), as every decision about a rep's hours reads.
    let now = engine.config().clock.now();
    Ok(reps::list_reps(store, tenant, team, now).await?)
}

/// Sets how team `name` rings its reps. A team-limited admin sets its own team's only.
pub async fn set_ringing(
    engine: &EngineHandle,
    who: &Identity,
    name: &str,
    strategy: &str,
    ring_timeout_seconds: i64,
) -> Result<Team, Error> {
    let tenant = authorize(who, Action::ManageAccess)?;
    let strategy: RingStrategy = strategy.parse()?;
    let timeout = u32::try_from(ring_timeout_seconds)
        .ok()
        .filter(|s| reps::RING_TIMEOUT_SECONDS.contains(s))
        .ok_or_else(|| Error::invalid("ring_timeout_seconds", "must be 5 to 120"))?;
    let team = access::find_team(engine.store(), tenant, name)
        .await?
        .filter(|t| Scope::of(who).reaches(Some(t.id)))
        .ok_or(Error::NotFound("team"))?;
    let mut tx = Tx::begin(engine.store()).await?;
    let (before, after) = reps::set_ringing(&mut tx, tenant, &team.name, strategy, timeout).await?;
    audit::commit(
        tx,
        who,
        Entry {
            action: AuditAction::TeamRinging,
            target_kind: "team",
            target_id: after.id.to_string(),
            reason: None,
            outcome: Outcome::Applied,
            before: Some(json(&before)),
            after: Some(json(&after)),
        },
    )
    .await?;
    Ok(after)
}
