//! The shard manager's lease rounds: renew what is held, heartbeat, then release a surplus or
//! claim up to this instance's share; and what happens when the database does not answer.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ractor::{ActorProcessingErr, ActorRef};

use super::{held, stopping, ShardManager, State};
use crate::key::{Epoch, ShardId};
use crate::membership;
use crate::protocol::ManagerMsg;
use crate::runtime::ActWindow;

impl ShardManager {
    pub(super) async fn tick(
        &self,
        myself: &ActorRef<ManagerMsg>,
        state: &mut State,
    ) -> Result<(), ActorProcessingErr> {
        let cfg = &self.rt.config;
        let started = Instant::now();
        // A hung connection must not keep this actor past its deadline: bound every call.
        let budget = state
            .deadline
            .saturating_duration_since(started)
            .max(cfg.lease_renew);
        // Leases first: they are what safety rests on. Membership only steers the balance.
        let leases = held(state);
        if !leases.is_empty() {
            let renewal = tokio::time::timeout(
                budget,
                self.rt
                    .store
                    .renew_shards(&cfg.instance_id, &leases, cfg.lease_ttl),
            )
            .await;
            let renewed = match renewal {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => return self.unreachable(state, &e.to_string()).await,
                Err(_) => return self.unreachable(state, "lease renewal timed out").await,
            };
            let renewed: HashMap<ShardId, Epoch> =
                renewed.iter().map(|l| (l.shard, l.epoch)).collect();
            let lost: Vec<ShardId> = leases
                .iter()
                .filter(|(s, e)| renewed.get(s) != Some(e))
                .map(|(s, _)| *s)
                .collect();
            let mut stop = Vec::with_capacity(lost.len());
            for shard in &lost {
                tracing::warn!(%shard, "lease lost: stopping the shard host");
                if let Some(h) = state.hosts.remove(shard) {
                    state.cells.remove(&h.actor.get_id());
                    stop.push(h.actor);
                }
            }
            if !lost.is_empty() {
                self.announce(state);
                self.stop_in_background(state, stop, "lease lost");
            }
            self.extend_deadline(myself, state, started);
        }
        let membership = match tokio::time::timeout(
            budget.saturating_sub(started.elapsed()),
            self.rt
                .store
                .heartbeat(&cfg.instance_id, state.fresh, cfg.shared_limits),
        )
        .await
        {
            Ok(Ok(m)) => m,
            // Held leases were renewed above (or there are none): only the rebalance waits.
            Ok(Err(e)) => return self.unreachable(state, &e.to_string()).await,
            Err(_) => return self.unreachable(state, "heartbeat timed out").await,
        };
        state.fresh = false;
        if leases.is_empty() {
            self.extend_deadline(myself, state, started);
        }
        let target = if cfg.force_claim {
            cfg.shard_count
        } else {
            membership::target(
                cfg.shard_count,
                &membership,
                cfg.lease_ttl,
                &cfg.instance_id,
            )
        };
        let owned = state.hosts.len() as u32;
        if owned > target {
            self.release_surplus(state, (owned - target) as usize);
            Ok(())
        } else {
            self.claim(myself, state, started, (target - owned) as usize)
                .await
        }
    }

    /// The database did not answer: past the local deadline, stop acting on every shard (the
    /// leases may be another's by now). Claims resume by themselves once it answers again.
    async fn unreachable(&self, state: &mut State, error: &str) -> Result<(), ActorProcessingErr> {
        tracing::warn!(error, "heartbeat or lease renewal failed");
        self.drop_if_expired(state);
        Ok(())
    }

    /// Stops every host once the act window has closed. An exclusive engine's window never
    /// closes (`ActWindow::Always`, set in `extend_deadline`), so this never stops its hosts.
    pub(super) fn drop_if_expired(&self, state: &mut State) {
        if !self.rt.may_act() && !state.hosts.is_empty() {
            tracing::warn!("lease deadline passed without a renewal: stopping every shard host");
            self.drop_all(state);
        }
    }

    /// After a renewal (or, holding nothing, a heartbeat) that began at `started`: act until
    /// the safe window closes, and check again right then rather than at a later tick.
    fn extend_deadline(&self, myself: &ActorRef<ManagerMsg>, state: &mut State, started: Instant) {
        state.deadline = started + safe_window(self.rt.config.lease_ttl);
        // An exclusive engine (embedded SQLite, behind its file lock) has no deadline: nobody
        // else can take its shards, so a database busy with a long write only slows it down.
        // Dropping every host there turned an overload into a stall and a reload of every actor.
        if self.rt.config.force_claim {
            self.rt.set_act_window(ActWindow::Always);
            return;
        }
        self.rt.set_act_window(ActWindow::Until(state.deadline));
        myself.send_after(
            state.deadline.saturating_duration_since(Instant::now()),
            || ManagerMsg::Deadline,
        );
    }

    /// Gives shards back so instances that joined can take their share: the hosts leave the
    /// state at once (so this tick and the next count without them), then stop and only then
    /// release their leases, off this handler (`stopping::stop_then_release`).
    fn release_surplus(&self, state: &mut State, surplus: usize) {
        let mut leases = held(state);
        let keep = leases.len().saturating_sub(surplus);
        let give: Vec<(ShardId, Epoch)> = leases.split_off(keep);
        let mut hosts = Vec::with_capacity(give.len());
        for (shard, _) in &give {
            if let Some(h) = state.hosts.remove(shard) {
                state.cells.remove(&h.actor.get_id());
                hosts.push(h.actor);
            }
        }
        self.announce(state);
        tracing::info!(
            releasing = give.len(),
            owned = state.hosts.len(),
            "giving shards back to rebalance"
        );
        while state.stopping.try_join_next().is_some() {}
        state
            .stopping
            .spawn(stopping::stop_then_release(self.rt.clone(), hosts, give));
    }

    async fn claim(
        &self,
        myself: &ActorRef<ManagerMsg>,
        state: &mut State,
        started: Instant,
        wanted: usize,
    ) -> Result<(), ActorProcessingErr> {
        let cfg = &self.rt.config;
        let force = cfg.force_claim && state.first_claim;
        let candidates: Vec<ShardId> = if force {
            (0..cfg.shard_count as i32).map(ShardId).collect()
        } else if wanted == 0 {
            Vec::new()
        } else {
            match self.rt.store.free_shards().await {
                Ok(free) => free,
                Err(e) => {
                    tracing::warn!(error = %e, "reading free shards failed");
                    return Ok(());
                }
            }
        };
        let mut gained = 0;
        for shard in candidates {
            // Leave time to renew what is held; the rest is claimed on the next tick. The
            // embedded engine takes everything at once: nobody else may hold its shards.
            let late = started.elapsed() >= safe_window(cfg.lease_ttl) / 2;
            if gained >= wanted || (late && !force) {
                break;
            }
            if state.hosts.contains_key(&shard) {
                continue;
            }
            match self
                .rt
                .store
                .claim_shard(shard, &cfg.instance_id, cfg.lease_ttl, force)
                .await
            {
                Ok(Some(lease)) => {
                    self.spawn_host(myself, state, shard, lease.epoch).await?;
                    gained += 1;
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "shard claim failed");
                    break;
                }
            }
        }
        if gained > 0 {
            tracing::info!(gained, owned = state.hosts.len(), "shards claimed");
            self.announce(state);
        }
        state.first_claim = false;
        Ok(())
    }
}

/// How long after a renewal began this instance may still act: the lease TTL less a margin for
/// clock drift between this process and the database, and for the renewal's own latency.
fn safe_window(ttl: Duration) -> Duration {
    ttl.saturating_sub(ttl / 3)
}
