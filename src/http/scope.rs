//! Team scope: which team a new opportunity binds to (and who gets it, in turn), and whether a
//! caller may see an opportunity at all (ADR 0023).

use neuronx_actors::opportunity as opp;
use uuid::Uuid;

use super::auth::Caller;
use super::error::ApiError;
use super::opportunities::parse_id;
use super::AppState;
use crate::control::access;

/// The team a new opportunity binds to and who it is assigned to: a team-scoped key creates in
/// its own team only; without an assignee, the team's operators take turns.
pub(super) async fn bind_team(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    team: Option<&str>,
    assignee: Option<&str>,
) -> Result<(Option<access::Team>, Option<String>), ApiError> {
    let store = state.engine.store();
    let tenant = caller.0.tenant;
    let team = match (team, &caller.0.team) {
        (None, own) => own.clone(),
        (Some(name), Some(own)) if name.trim() != own.name => {
            return Err(ApiError::invalid(
                "team",
                format!("this key creates opportunities in team {:?} only", own.name),
            ))
        }
        (Some(name), _) => Some(access::require_team(store, tenant, "team", name).await?),
    };
    let Some(team) = team else {
        return Ok((None, assignee.map(str::to_owned)));
    };
    let exists = store.actor_exists(tenant, opp::KIND.as_str(), id).await?;
    let assignee = match assignee {
        Some(a) => {
            super::commands::check_member(state, tenant, &team, "assignee", a).await?;
            Some(a.trim().to_owned())
        }
        // A repeated create must not take another operator's turn.
        None if exists => None,
        None => access::next_assignee(store, tenant, team.id).await?,
    };
    // Only a new opportunity binds: a repeated external id must not pull an existing one into
    // the caller's team. Bound before the opportunity exists, so no instant shows it outside
    // its team; the first binding wins.
    if !exists {
        access::bind_opportunity(store, tenant, id, team.id).await?;
    }
    Ok((Some(team), assignee))
}

/// The opportunity `id` names, if it exists for this caller: in its tenant and, for a
/// team-scoped key, in its team. Anything else is 404, never 403, so ids cannot be probed.
pub(super) async fn visible(state: &AppState, caller: &Caller, id: &str) -> Result<Uuid, ApiError> {
    let id = parse_id(id)?;
    let exists = state
        .engine
        .store()
        .actor_exists(caller.0.tenant, opp::KIND.as_str(), id)
        .await?;
    if !exists || !caller.sees(state, id).await? {
        return Err(ApiError::NotFound("opportunity"));
    }
    Ok(id)
}
