//! What a shard host does when one of its actors fails: restart it after a backoff, set aside
//! an input that keeps failing (dead letters), and quarantine an actor that fails past its
//! restart limit instead of failing the host and every neighbour on its shard (ADR 0007).
//!
//! Infrastructure failures (the database or the network) never count: they back off without
//! limit and dead-letter nothing, so an outage quarantines nobody.

use std::time::Instant;

use ractor::{ActorId, ActorProcessingErr, ActorRef};

use super::{Resident, ShardHost, State};
use crate::key::ActorKey;
use crate::protocol::{DeliveryError, ShardHostMsg, Work};
use crate::restart::{FailureKind, RestartDecision, RestartTracker};
use crate::store::{Consumed, DeadLetter};

/// An actor set aside until `until`: every input it is given meanwhile goes to the dead letters
/// with `reason`. Then it gets a fresh start (its inputs may have been fixed, or retried by an
/// operator).
#[derive(Debug, Clone)]
pub(super) struct Quarantine {
    until: Instant,
    reason: String,
}

/// The quarantine's reason while it lasts; lifts an expired one (with a fresh restart allowance).
pub(super) fn still_quarantined(r: &mut Resident) -> Option<String> {
    let q = r.quarantine.as_ref()?;
    if q.until > Instant::now() {
        return Some(q.reason.clone());
    }
    r.quarantine = None;
    r.restarts = RestartTracker::default();
    None
}

/// Whether the resident must be kept (with no actor and nothing queued) for its quarantine.
pub(super) fn held_for_quarantine(r: &Resident) -> bool {
    r.quarantine
        .as_ref()
        .is_some_and(|q| q.until > Instant::now())
}

impl ShardHost {
    pub(super) async fn on_failure(
        &self,
        myself: &ActorRef<ShardHostMsg>,
        state: &mut State,
        key: ActorKey,
        failed: ActorId,
        kind: FailureKind,
        error: String,
    ) -> Result<(), ActorProcessingErr> {
        let policy = self.rt.config.restart;
        let max_strikes = self.rt.config.max_strikes;
        let Some(r) = state.residents.get_mut(&key) else {
            return Ok(());
        };
        if r.actor.as_ref().map(|a| a.get_id()) != Some(failed) {
            return Ok(());
        }
        r.actor = None;
        // Its last commit may have landed unheard of (a lost answer): the next actor re-arms.
        r.rearm = true;
        let decision = r.restarts.on_actor_failure(&policy, kind, Instant::now());
        if let Some(work) = r.inflight.take() {
            if kind == FailureKind::Actor {
                r.strikes += 1;
            }
            if r.strikes >= max_strikes {
                r.strikes = 0;
                self.bury(state, key, work, error.clone(), max_strikes as i32)
                    .await;
            } else {
                r.queue.push_front(work);
                self.rt.metrics.inbox_depth.inc();
            }
        }
        match decision {
            RestartDecision::Restart { after } => {
                myself.send_after(after, move || ShardHostMsg::Respawn(key));
                Ok(())
            }
            RestartDecision::GiveUp => {
                self.quarantine(state, key, &error).await;
                Ok(())
            }
        }
    }

    /// Sets the actor aside for the restart window and dead-letters what it had pending.
    async fn quarantine(&self, state: &mut State, key: ActorKey, error: &str) {
        let policy = self.rt.config.restart;
        let reason = format!(
            "actor quarantined after more than {} failures in {} s: {error}",
            policy.max_restarts,
            policy.within.as_secs()
        );
        let Some(r) = state.residents.get_mut(&key) else {
            return;
        };
        r.quarantine = Some(Quarantine {
            until: Instant::now() + policy.within,
            reason: reason.clone(),
        });
        let pending: Vec<Work> = r
            .inflight
            .take()
            .into_iter()
            .chain(r.queue.drain(..))
            .collect();
        self.rt.metrics.quarantined_actors.inc();
        self.rt
            .metrics
            .inbox_depth
            .sub(pending.len().min(i64::MAX as usize) as i64);
        tracing::error!(%key, pending = pending.len(), %reason, "actor quarantined");
        for work in pending {
            self.bury(state, key, work, reason.clone(), 0).await;
        }
    }

    /// Moves one input to the dead letters (fenced, consuming it) and answers its waiting
    /// callers with the error. A failed write leaves the input where it was: the next poll
    /// brings it back.
    pub(super) async fn bury(
        &self,
        state: &mut State,
        key: ActorKey,
        work: Work,
        error: String,
        attempts: i32,
    ) {
        let letter = DeadLetter {
            key,
            shard: state.shard,
            epoch: state.epoch,
            consumed: work.consumed.clone(),
            input: work.input.clone(),
            error: error.clone(),
            attempts,
            now_ms: self.rt.config.clock.now_ms(),
        };
        if let Consumed::Inbox { id } = work.consumed {
            state.known_inbox.remove(&id);
            for reply in state.waiting.remove(&id).unwrap_or_default() {
                let _ = reply.send(Err(DeliveryError::Failed(error.clone())));
            }
        }
        match self.rt.store.dead_letter(&letter).await {
            Ok(true) => {
                self.rt.metrics.dead_letters.inc();
                tracing::warn!(%key, %error, "input moved to dead letters");
            }
            Ok(false) => tracing::warn!(%key, "dead letter skipped: input gone or shard lost"),
            Err(e) => tracing::warn!(%key, error = %e, "dead letter write failed"),
        }
    }
}
