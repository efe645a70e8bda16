//! The sales domain: pure state machines (`domain`), and the durable actors that host them on
//! the supervision runtime (`opportunity`, `call`).

pub mod call;
mod convert;
#[macro_use]
pub mod domain;
pub mod effects;
pub mod opportunity;
pub mod playbooks;

pub use playbooks::Playbooks;

use neuronx_supervision::Kinds;

/// Registers the sales actors with the runtime.
pub fn kinds(playbooks: Playbooks, compliance: std::sync::Arc<domain::compliance::Rules>) -> Kinds {
    let mut kinds = Kinds::default();
    kinds.register(opportunity::OpportunityEntity::new(
        playbooks.clone(),
        compliance,
    ));
    kinds.register(call::CallEntity::new(playbooks));
    kinds
}
