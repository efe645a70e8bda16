//! Agent first by the playbook (`call_flow.connect = "agent_first"`): a cadence call asks for
//! one free rep of its opportunity's team before anything is dialled. The offer is recorded
//! like the lead-first flow's (`reps::offer_one`, one transaction), so the rep counts as on a
//! call from now on and no other call takes the same free slot; the call's end frees it.

use neuronx_actors::domain::call::{Agent, CallInput};
use neuronx_supervision::{EffectCall, EffectOutcome, EffectStatus};
use serde_json::json;
use uuid::Uuid;

use super::{followup, undecided, Context};
use crate::control::{access, reps};

pub(super) async fn pick(
    ctx: &Context,
    call: &EffectCall,
    call_id: Uuid,
    opportunity_id: Uuid,
) -> EffectOutcome {
    let tenant = Context::tenant(call);
    let now = ctx.clock.now();
    let team = match access::team_of(&ctx.store, tenant, opportunity_id).await {
        Ok(team) => team,
        Err(e) => return undecided(e.to_string()),
    };
    let offer = match reps::offer_one(&ctx.store, tenant, team, call_id, now).await {
        Ok(offer) => offer,
        Err(e) => return undecided(e.to_string()),
    };
    let agent = offer.reps.into_iter().next().map(|r| Agent {
        rep: r.name,
        phone: r.phone,
    });
    tracing::info!(key = %call.key, rep = ?agent.as_ref().map(|a| &a.rep), "rep picked to ring first");
    EffectOutcome {
        status: EffectStatus::Done,
        result: json!({ "rep": agent.as_ref().map(|a| a.rep.clone()) }),
        followup: followup(&CallInput::RepPicked { agent }),
    }
}
