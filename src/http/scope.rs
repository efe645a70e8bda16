//! Team scope on the API: whether a caller may see an opportunity at all (ADR 0023; the rule
//! itself is `control::scope`).

use neuronx_actors::opportunity as opp;
use uuid::Uuid;

use super::auth::Caller;
use super::error::ApiError;
use super::opportunities::parse_id;
use super::AppState;

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
