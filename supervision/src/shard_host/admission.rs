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

use ractor::{ActorProcessingErr, ActorRef};

use super::{ShardHost, State};
use crate::key::ActorKey;
use crate::protocol::ShardHostMsg;

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
            let Some(key) = state.awaiting.pop_front() else {
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

/// Moves `key`, if it waits for room, to the front of the queue.
pub(super) fn hurry(state: &mut State, key: ActorKey) {
    if let Some(at) = state.awaiting.iter().position(|k| *k == key) {
        if at > 0 {
            state.awaiting.remove(at);
            state.awaiting.push_front(key);
        }
    }
}
