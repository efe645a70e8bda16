//! Click to call: a rep calls one lead now, agent first. The rep's phone rings; when they
//! press 1 the lead is dialled and the two are connected. The opportunity's compliance gate
//! decides exactly as for a cadence call (consent, calling hours, caps, opt-out), so a rep
//! can never reach a lead the engine itself could not.

use neuronx_actors::domain::call::Agent;
use neuronx_actors::domain::opportunity::OppInput;
use neuronx_supervision::EngineHandle;

use super::commands::{acting_as, run};
use super::views::Applied;
use super::{authorize, visible, Error};
use crate::control::access;
use crate::control::audit::AuditAction;
use crate::control::keys::Identity;
use crate::control::reps::{self, RepStatus};
use crate::control::Action;
use crate::input::{self, Lines};

/// Rings `rep` (by default the caller's own principal) and, once they accept, the lead of
/// opportunity `id`.
pub async fn call_now(
    engine: &EngineHandle,
    who: &Identity,
    id: &str,
    rep: Option<String>,
) -> Result<Applied, Error> {
    let tenant = authorize(who, Action::Operate)?;
    let id = visible(engine, who, id).await?;
    let rep = match (rep, &who.principal) {
        (Some(named), Some(me)) if named.trim() != me => {
            return Err(Error::invalid(
                "rep",
                format!("this key acts as {me:?} and can only call as that rep"),
            ))
        }
        (Some(named), _) => named,
        (None, Some(me)) => me.clone(),
        (None, None) => {
            return Err(Error::invalid(
                "rep",
                "required: this key belongs to no principal, so name the rep who calls",
            ))
        }
    };
    input::check("rep", &rep, Lines::One, 1, 200)?;
    let rep = rep.trim().to_owned();
    let store = engine.store();
    let now = engine.config().clock.now();
    let Some(found) = reps::get_rep(store, tenant, &rep, now).await? else {
        return Err(Error::invalid(
            "rep",
            format!("{rep:?} is not a rep: give the principal a phone with PUT /v1/principals/{{name}}/rep"),
        ));
    };
    // A team's lead is called by that team's reps (and an unbound lead by anyone).
    if let Some(team) = access::team_of(store, tenant, id).await? {
        if found.team_id != Some(team) {
            return Err(Error::invalid(
                "rep",
                format!("{rep:?} is not a member of the opportunity's team"),
            ));
        }
    }
    if found.effective_status == RepStatus::Busy {
        return Err(Error::Conflict {
            code: "rep_busy".into(),
            message: format!(
                "{rep} is already on {} call(s), their limit; try when a call ends",
                found.live_calls
            ),
        });
    }
    let by = acting_as(who, None)?;
    let input = OppInput::CallNow {
        agent: Agent {
            rep,
            phone: found.phone,
        },
        by,
    };
    run(engine, who, id, AuditAction::CallNow, input).await
}
