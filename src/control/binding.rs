//! Which team a new opportunity is bound to, and who gets it (ADR 0023). The binding is claimed
//! before the round-robin turn is taken, so only the create that made the binding takes a turn,
//! and a create that lost a race to another team's learns nothing of it.

use neuronx_actors::opportunity as opp;
use neuronx_supervision::Store;
use uuid::Uuid;

use super::access::{self, Team};
use super::keys::Identity;
use super::{ControlError, Scope};

/// The team and assignee a create carries into its transition.
pub struct Binding {
    pub team: Option<Team>,
    pub assignee: Option<String>,
}

/// Binds opportunity `id` (derived from its external id) for a create by `who`. A repeat of an
/// opportunity `who` cannot reach (another team's, or the tenant's own unbound one for a team
/// key) is not found, exactly like any id of another team.
pub async fn bind_new(
    store: &Store,
    who: &Identity,
    id: Uuid,
    team: Option<&str>,
    assignee: Option<&str>,
) -> Result<Binding, ControlError> {
    let tenant = who.tenant;
    let scope = Scope::of(who);
    let team = match super::scope::requested_team(who, "team", team)? {
        // A team key's own team is in its identity already.
        Some(_) if who.team.is_some() => who.team.clone(),
        Some(name) => Some(access::require_team(store, tenant, "team", name).await?),
        None => None,
    };
    if let (Some(team), Some(a)) = (&team, assignee) {
        access::require_member(store, tenant, team, "assignee", a).await?;
    }
    let explicit = assignee.map(|a| a.trim().to_owned());
    if store.actor_exists(tenant, opp::KIND.as_str(), id).await? {
        // A repeated create binds nothing and takes nobody's turn.
        let holder = access::team_of(store, tenant, id).await?;
        if !scope.reaches(holder) {
            return Err(ControlError::NotFound("opportunity"));
        }
        return Ok(Binding {
            team,
            assignee: explicit,
        });
    }
    let Some(team) = team else {
        return Ok(Binding {
            team: None,
            assignee: explicit,
        });
    };
    // Bound before the opportunity exists, so no instant shows it outside its team.
    if !access::bind_opportunity(store, tenant, id, team.id).await? {
        // Another create of the same external id bound it first.
        let holder = access::team_of(store, tenant, id).await?;
        if holder != Some(team.id) {
            return Err(match scope {
                Scope::Team(_) => ControlError::NotFound("opportunity"),
                Scope::Tenant => ControlError::Exists {
                    what: "opportunity (bound to another team)",
                    name: id.to_string(),
                },
            });
        }
        return Ok(Binding {
            team: Some(team),
            assignee: explicit,
        });
    }
    let assignee = match explicit {
        Some(a) => Some(a),
        None => access::next_assignee(store, tenant, team.id).await?,
    };
    Ok(Binding {
        team: Some(team),
        assignee,
    })
}
