//! Which opportunity an inbound text or call from a lead is for: by the number it reached
//! (`To`, the tenant's pool) and the sender (`From`, their opportunities with the cadence
//! holder first). ADR 0043 for texts, ADR 0050 for calls.

use neuronx_actors::domain::opportunity::Stage;
use neuronx_actors::opportunity as opp;
use neuronx_supervision::{EngineHandle, TenantId};
use uuid::Uuid;

use super::Refusal;
use crate::control::access;
use crate::control::numbers::{self, Reached};
use crate::tenant_data;

/// How many of a sender's opportunities (newest first) an inbound text looks through for the
/// one of the team whose number it reached.
const SENDER_OPPORTUNITIES: i64 = 20;

/// The opportunity an inbound text from `from` to `to` is for (ADR 0043). A tenant that lists
/// no numbers: the sender's newest, `To` unchecked (as before pools). Otherwise `To` must be a
/// pool number or the account's `from`, else the text is refused and nothing is written; a
/// team's number prefers the sender's newest live opportunity of that team, and anything else
/// (a tenant-wide number, the account's, no such opportunity) takes the sender's newest. Only
/// this tenant's rows are read: another tenant's number is just not ours.
pub(super) async fn inbound_opportunity(
    engine: &EngineHandle,
    tenant: TenantId,
    from: &str,
    to: Option<&str>,
) -> Result<Option<Uuid>, Refusal> {
    let store = engine.store();
    let unavailable = |_| Refusal::StoreUnavailable;
    let newest = || async {
        tenant_data::opportunity_of_phone(store, tenant, from)
            .await
            .map_err(unavailable)
    };
    let to = to.map(str::trim).filter(|t| !t.is_empty());
    let reached = match to {
        Some(to) => numbers::reached(store, tenant, to)
            .await
            .map_err(unavailable)?,
        // No number is empty: this asks only whether the tenant lists any.
        None if numbers::reached(store, tenant, "")
            .await
            .map_err(unavailable)?
            == Reached::NoPool =>
        {
            Reached::NoPool
        }
        None => return Err(Refusal::MissingTo),
    };
    let team = match reached {
        Reached::NoPool | Reached::Pool(None) => return newest().await,
        Reached::Pool(Some(team)) => team,
        Reached::NotListed => {
            if is_account_number(engine, tenant, to.unwrap_or_default()).await? {
                return newest().await;
            }
            return Err(Refusal::UnknownTo);
        }
    };
    let senders = senders(engine, tenant, from).await?;
    if senders.len() <= 1 {
        return Ok(senders.first().copied());
    }
    let live = live_ones(engine, tenant, &senders).await?;
    Ok(first_of_team(engine, tenant, &live, team)
        .await?
        .or_else(|| senders.first().copied()))
}

/// Of `ids`, those whose opportunity is live (not closed), in order.
async fn live_ones(
    engine: &EngineHandle,
    tenant: TenantId,
    ids: &[Uuid],
) -> Result<Vec<Uuid>, Refusal> {
    let keys: Vec<(TenantId, Uuid)> = ids.iter().map(|id| (tenant, *id)).collect();
    let statuses = engine
        .store()
        .actor_statuses(opp::KIND, &keys)
        .await
        .map_err(|_| Refusal::StoreUnavailable)?;
    Ok(ids
        .iter()
        .zip(statuses)
        .filter(|(_, status)| {
            status
                .as_ref()
                .is_some_and(|(stage, _)| !stage.parse::<Stage>().is_ok_and(|s| s.is_terminal()))
        })
        .map(|(id, _)| *id)
        .collect())
}

/// The first of `ids` bound to `team`.
async fn first_of_team(
    engine: &EngineHandle,
    tenant: TenantId,
    ids: &[Uuid],
    team: Uuid,
) -> Result<Option<Uuid>, Refusal> {
    for id in ids {
        let bound = access::team_of(engine.store(), tenant, *id)
            .await
            .map_err(|_| Refusal::StoreUnavailable)?;
        if bound == Some(team) {
            return Ok(Some(*id));
        }
    }
    Ok(None)
}

/// Whether `to` is the account's own `from_number` (a number no pool lists, still ours).
async fn is_account_number(
    engine: &EngineHandle,
    tenant: TenantId,
    to: &str,
) -> Result<bool, Refusal> {
    let account = tenant_data::get_credentials(engine.store(), tenant, "twilio")
        .await
        .map_err(|_| Refusal::StoreUnavailable)?;
    Ok(account.is_some_and(|a| a.from_number == to))
}

/// A sender's opportunities, newest first, except the number's cadence holder first (ADR
/// 0046): a skipped duplicate is newer but silent, and a lead that joined by email handed its
/// phone to the holder.
async fn senders(
    engine: &EngineHandle,
    tenant: TenantId,
    from: &str,
) -> Result<Vec<Uuid>, Refusal> {
    let store = engine.store();
    let unavailable = |_| Refusal::StoreUnavailable;
    let mut senders = store
        .find(
            tenant,
            opp::KIND,
            opp::PHONE_LOOKUP,
            from,
            SENDER_OPPORTUNITIES,
        )
        .await
        .map_err(unavailable)?;
    let holder = crate::contacts::holder_of(store, tenant, from)
        .await
        .map_err(unavailable)?;
    // The holder first; it may not list this number at all when it got the claim from a lead
    // of the same person that joined it by email (a second phone).
    // A claim whose create never reached the engine (a crash) names no opportunity: skipped.
    if let Some(h) = holder {
        let listed = senders.contains(&h);
        if listed
            || store
                .actor_exists(tenant, opp::KIND.as_str(), h)
                .await
                .map_err(unavailable)?
        {
            senders.retain(|s| *s != h);
            senders.insert(0, h);
        }
    }
    Ok(senders)
}

/// The live (not closed) opportunity a call from `from` is for (ADR 0050): of the sender's
/// live opportunities (the cadence holder first, then newest first), the first bound to
/// `team` (the number's), else the first. `None`: no live opportunity has that number.
pub(crate) async fn live_opportunity_of(
    engine: &EngineHandle,
    tenant: TenantId,
    from: &str,
    team: Option<Uuid>,
) -> Result<Option<Uuid>, Refusal> {
    let senders = senders(engine, tenant, from).await?;
    if senders.is_empty() {
        return Ok(None);
    }
    let live = live_ones(engine, tenant, &senders).await?;
    let in_team = match team {
        Some(team) => first_of_team(engine, tenant, &live, team).await?,
        None => None,
    };
    Ok(in_team.or_else(|| live.first().copied()))
}

/// Which team's number `to` is (`Some(None)`: a tenant-wide one, or the account's own
/// `from`), or `None` when it is none of this tenant's numbers (ADR 0050).
pub(crate) async fn number_team(
    engine: &EngineHandle,
    tenant: TenantId,
    to: &str,
) -> Result<Option<Option<Uuid>>, Refusal> {
    match numbers::reached(engine.store(), tenant, to)
        .await
        .map_err(|_| Refusal::StoreUnavailable)?
    {
        Reached::Pool(team) => Ok(Some(team)),
        Reached::NoPool | Reached::NotListed => {
            Ok(is_account_number(engine, tenant, to).await?.then_some(None))
        }
    }
}
