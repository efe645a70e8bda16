//! Admission: a shard host keeps at most its share of the instance's resident cap alive at
//! once, busy actors included (issue #13, item 6). An actor whose work arrives when the host is
//! full waits, with its inputs queued in memory and nothing spawned, until an actor finishes and
//! is passivated; a caller waiting on an input goes to the front. Before, every actor with work
//! was spawned at once: a takeover of a shard with a large backlog (its inbox read a thousand
//! rows at a time, every overdue timer fired) spawned them all, and the cap could only passivate
//! idle ones.
//!
//! What waits in memory is bounded too: a host reads at most one inbox page of rows it does not
//! know at a time, and the timer service delivers an overdue backlog in slices.
//!
//! Room goes to tenants in turn: one tenant's import of thousands of leads waiting here does not
//! hold another tenant's lead behind all of them (`Awaiting`).

use ractor::{ActorProcessingErr, ActorRef};

use super::{ShardHost, State};
use crate::key::ActorKey;
use crate::lanes::Lanes;
use crate::protocol::ShardHostMsg;

/// Actors waiting for room, one lane per tenant, served a tenant at a time in turn.
#[derive(Debug, Default)]
pub(super) struct Awaiting(Lanes<ActorKey>);

impl Awaiting {
    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(super) fn push_back(&mut self, key: ActorKey) {
        self.0.push(Some(key.tenant), key);
    }

    /// Moves `key`, if it waits, to the front of its tenant's queue.
    pub(super) fn hurry(&mut self, key: ActorKey) {
        self.0.hurry(Some(key.tenant), |k| *k == key);
    }

    /// The next actor to activate: the front of the queue of the tenant whose turn it is.
    pub(super) fn pop(&mut self) -> Option<ActorKey> {
        self.0.pop()
    }
}

impl ShardHost {
    /// Whether `key` may get an actor now. If not, it joins the queue of actors waiting for
    /// room (once), and idle actors are passivated to make some.
    pub(super) fn admit(&self, state: &mut State, key: ActorKey) -> bool {
        let budget = self.rt.resident_budget();
        if state.cells.len() < budget {
            return true;
        }
        self.make_room(state, budget);
        if let Some(r) = state.residents.get_mut(&key) {
            if !r.awaiting {
                r.awaiting = true;
                state.awaiting.push_back(key);
                self.rt.metrics.awaiting_activation.inc();
            }
        }
        false
    }

    /// Activates waiting actors while there is room; called when an actor finishes an input or
    /// its cell goes away.
    pub(super) async fn activate_awaiting(
        &self,
        myself: &ActorRef<ShardHostMsg>,
        state: &mut State,
    ) -> Result<(), ActorProcessingErr> {
        let budget = self.rt.resident_budget();
        if state.awaiting.is_empty() {
            return Ok(());
        }
        if state.cells.len() >= budget {
            self.make_room(state, budget);
        }
        while state.cells.len() < budget {
            let Some(key) = state.awaiting.pop() else {
                break;
            };
            self.rt.metrics.awaiting_activation.dec();
            let Some(r) = state.residents.get_mut(&key) else {
                continue;
            };
            r.awaiting = false;
            if r.actor.is_some() || (r.queue.is_empty() && r.inflight.is_none()) {
                continue;
            }
            self.ensure_actor(myself, state, key).await?;
            self.pump(state, key);
        }
        Ok(())
    }

    /// Passivates idle actors (least recently used first) so that actors waiting for room get
    /// some; their cells leave when their terminations arrive, which activates the next ones.
    fn make_room(&self, state: &mut State, budget: usize) {
        let wanted = state.awaiting.len().max(1).min(budget / 4 + 1);
        self.passivate_oldest(state, budget.saturating_sub(wanted));
    }
}

/// Moves `key`, if it waits for room, to the front of its tenant's queue.
pub(super) fn hurry(state: &mut State, key: ActorKey) {
    state.awaiting.hurry(key);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{ActorKind, TenantId};
    use uuid::Uuid;

    fn key(tenant: TenantId) -> ActorKey {
        ActorKey::root(tenant, ActorKind("t"), Uuid::new_v4())
    }

    #[test]
    fn tenants_take_turns_whatever_each_has_waiting() {
        let (a, b) = (TenantId(Uuid::new_v4()), TenantId(Uuid::new_v4()));
        let mut w = Awaiting::default();
        let flood: Vec<ActorKey> = (0..100).map(|_| key(a)).collect();
        for k in &flood {
            w.push_back(*k);
        }
        let late = key(b);
        w.push_back(late);
        assert_eq!(w.len(), 101);
        assert_eq!(w.pop(), Some(flood[0]));
        assert_eq!(
            w.pop(),
            Some(late),
            "the other tenant's only actor goes next"
        );
        assert_eq!(w.pop(), Some(flood[1]));
        let mut rest = 0;
        while w.pop().is_some() {
            rest += 1;
        }
        assert_eq!(rest, 98);
        assert!(w.is_empty());
    }

    #[test]
    fn a_hurried_actor_leads_its_tenants_queue() {
        let a = TenantId(Uuid::new_v4());
        let mut w = Awaiting::default();
        let keys: Vec<ActorKey> = (0..5).map(|_| key(a)).collect();
        for k in &keys {
            w.push_back(*k);
        }
        w.hurry(keys[3]);
        assert_eq!(w.pop(), Some(keys[3]));
        assert_eq!(w.pop(), Some(keys[0]));
    }
}
