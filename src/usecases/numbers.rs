//! The tenant's numbers: add, move or relabel one and remove one (tenant-wide admins, as for
//! the carrier account they belong to), and list them (a team-limited key: its team's and the
//! tenant-wide ones). Every change is audited in its own transaction.

use serde::Serialize;
use serde_json::Value;

use super::{authorize, Error};
use crate::control::access;
use crate::control::audit::{self, AuditAction, Entry, Outcome};
use crate::control::keys::Identity;
use crate::control::numbers::{self, Number, NumberSpec};
use crate::control::{Action, Scope, Tx};
use neuronx_supervision::EngineHandle;

fn json<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// Puts `number` in the pool of `team` (none: tenant-wide) with `label`, or moves or relabels
/// it. Answers the number and whether it is new.
pub async fn put_number(
    engine: &EngineHandle,
    who: &Identity,
    number: &str,
    team: Option<&str>,
    label: Option<&str>,
) -> Result<(Number, bool), Error> {
    let tenant = authorize(who, Action::ManageChannels)?;
    let spec = NumberSpec::new(number, label)?;
    let store = engine.store();
    let team = match team {
        Some(name) => Some(access::require_team(store, tenant, "team", name).await?.id),
        None => None,
    };
    let mut tx = Tx::begin(store).await?;
    let (before, after) = numbers::put_number(&mut tx, tenant, &spec, team).await?;
    let added = before.is_none();
    audit::commit(
        tx,
        who,
        Entry {
            action: AuditAction::NumberPut,
            target_kind: "number",
            target_id: after.number.clone(),
            reason: None,
            outcome: Outcome::Applied,
            before: before.as_ref().map(json),
            after: Some(json(&after)),
        },
    )
    .await?;
    Ok((after, added))
}

/// Removes `number` from the pool; not found when it is not the tenant's. Dials and texts
/// choose among the numbers left from their next attempt on.
pub async fn remove_number(
    engine: &EngineHandle,
    who: &Identity,
    number: &str,
) -> Result<Number, Error> {
    let tenant = authorize(who, Action::ManageChannels)?;
    // A malformed number names nothing of ours: not found, as for any other.
    let number = numbers::parse_number(number).map_err(|_| Error::NotFound("number"))?;
    let mut tx = Tx::begin(engine.store()).await?;
    let before = numbers::remove_number(&mut tx, tenant, &number).await?;
    audit::commit(
        tx,
        who,
        Entry {
            action: AuditAction::NumberRemove,
            target_kind: "number",
            target_id: before.number.clone(),
            reason: None,
            outcome: Outcome::Applied,
            before: Some(json(&before)),
            after: None,
        },
    )
    .await?;
    Ok(before)
}

/// The numbers the caller reaches: the tenant's, or for a team-limited key its team's and the
/// tenant-wide ones (the numbers its opportunities may be called from).
pub async fn list_numbers(engine: &EngineHandle, who: &Identity) -> Result<Vec<Number>, Error> {
    let tenant = authorize(who, Action::Read)?;
    let team = Scope::of(who).team();
    Ok(numbers::list_numbers(engine.store(), tenant, team).await?)
}
