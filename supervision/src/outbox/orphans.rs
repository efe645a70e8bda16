//! Effects left `inflight` by an instance that stopped (a crash, `kill -9`, a freeze that lost
//! its lease) before recording their result. Nobody else would ever finish them: the row stays
//! claimed and the actor never hears how its dial or text went.
//!
//! When a dispatcher starts holding a shard it waits `orphan_after`, then records the shard's
//! effects claimed before that `unknown` and tells each actor through its handler's `orphaned`
//! input, in one write per effect: a compare-and-set on the row's claim, so if the claimer
//! finished in the meantime its result stands and the orphan record is refused instead. Waiting keeps it off effects the previous owner is still running (a shard handed over
//! by rebalancing moves while its effects are in flight): no effect runs that long, as every
//! provider request has a timeout well under it. An effect is never run again: the request may
//! have reached the provider, and sending twice is worse than asking.

use ractor::ActorRef;
use serde_json::json;

use super::{
    record, Dispatcher, EffectCall, EffectOutcome, EffectStatus, LeaseCheck, Standing, State,
};
use crate::key::{Epoch, ShardId};
use crate::kinds::resolve_key;
use crate::protocol::DispatcherMsg;

impl Dispatcher {
    /// Schedules the orphan check of the shards in `next` that were not in `before`.
    pub(super) fn watch_for_orphans(
        &self,
        myself: &ActorRef<DispatcherMsg>,
        before: &[(ShardId, Epoch)],
        next: &[(ShardId, Epoch)],
    ) {
        let gained: Vec<ShardId> = next
            .iter()
            .filter(|(s, _)| !before.iter().any(|(b, _)| b == s))
            .map(|(s, _)| *s)
            .collect();
        if !gained.is_empty() {
            let after = self.rt.config.orphan_after;
            myself.send_after(after, move || DispatcherMsg::Orphans(gained));
        }
    }

    /// Starts the check beside the dispatcher: it scans the outbox, and claims and completions
    /// must not wait behind it.
    pub(super) fn reclaim_orphans(&self, state: &mut State, shards: &[ShardId]) {
        // Only shards still held, at the epoch held now: the query is fenced by it.
        let held: Vec<(ShardId, Epoch)> = state
            .held
            .iter()
            .filter(|(s, _)| shards.contains(s))
            .copied()
            .collect();
        if held.is_empty() || !self.rt.may_act() {
            return;
        }
        let (rt, kinds, handlers) = (self.rt.clone(), self.kinds.clone(), self.handlers.clone());
        let completions = self.completions.clone();
        state.running.spawn(async move {
            let age = rt.config.orphan_after.as_millis() as i64;
            let rows = match rt.store.orphaned_effects(&held, age).await {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::warn!(error = %e, "orphaned effects not reclaimed");
                    return;
                }
            };
            for row in rows {
                let Some(key) = resolve_key(&kinds, &row.key) else {
                    continue;
                };
                tracing::warn!(%key, channel = %row.channel, idem_key = %row.idem_key,
                    "effect left in flight by a stopped instance: recorded unknown");
                let followup = handlers.get(&row.channel).and_then(|h| {
                    h.orphaned(&EffectCall {
                        key,
                        idem_key: row.idem_key.clone(),
                        payload: row.payload.clone(),
                        attempt: row.attempts,
                        lease: LeaseCheck::new(rt.lease_watch()),
                        standing: Standing::new(rt.store.clone(), row.id, row.attempts),
                    })
                });
                let outcome = EffectOutcome {
                    status: EffectStatus::Unknown,
                    result: json!({
                        "unknown_outcome": "claimed by an instance that stopped before recording the result"
                    }),
                    followup,
                };
                record(&rt, &completions, key, &row, outcome).await;
            }
        });
    }
}
