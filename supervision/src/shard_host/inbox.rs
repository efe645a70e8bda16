//! A shard host's reads of its inbox (the safety net under in-process delivery) and the
//! passivation of idle actors.

use ractor::{ActorProcessingErr, ActorRef};

use super::{Resident, ShardHost, State};
use crate::committer::BatchError;
use crate::key::ActorKey;
use crate::kinds::resolve_key;
use crate::protocol::{PollScope, ShardHostMsg, Work};
use crate::store::InboxRow;

impl ShardHost {
    /// Starts a read of the shard's waiting inputs. The host does not wait for it: deliveries
    /// keep flowing while the query runs (every host polls at once, sharing one query that
    /// takes tens of milliseconds under load), and the rows come back as `Polled`.
    pub(super) fn poll_inbox(
        &self,
        myself: &ActorRef<ShardHostMsg>,
        state: &mut State,
        scope: PollScope,
    ) {
        if state.polling {
            // The running read covers stragglers; inputs it may have missed wait for the next.
            if !matches!(scope, PollScope::Stragglers) {
                state.poll_again = true;
            }
            return;
        }
        let before = match scope {
            PollScope::Everything => i64::MAX,
            PollScope::Woken => {
                state.woken = false;
                i64::MAX
            }
            PollScope::Stragglers => {
                // While this shard has work queued, inputs are flowing in-process and every
                // waiting row would be read again only to be skipped as known: under a backlog
                // that is most of the database's work. Stragglers wait for a quiet moment, but
                // not for ever: a shard that is never quiet would never read a missed row.
                let waited = state.stragglers_polled.elapsed();
                if !state.known_inbox.is_empty() && waited < self.rt.config.poll_interval * 10 {
                    return;
                }
                state.stragglers_polled = std::time::Instant::now();
                let grace = 2 * self.rt.config.poll_interval.as_millis() as i64;
                self.rt.config.clock.now_ms() - grace
            }
        };
        let (rt, me, shard) = (self.rt.clone(), myself.clone(), state.shard);
        state.polling = true;
        rt.metrics.inbox_polls_in_flight.inc();
        tokio::spawn(async move {
            let rows = rt.poll_inbox(shard, before).await;
            rt.metrics.inbox_polls_in_flight.dec();
            // Always answered, even with nothing, so the host knows the read has ended.
            let rows = rows.unwrap_or_else(|e| {
                // A closed batcher is the runtime shutting down, not a failure to report.
                match e {
                    BatchError::Closed => tracing::debug!(%shard, "inbox poll ended: stopping"),
                    BatchError::Store(_) => tracing::warn!(%shard, error = %e, "inbox poll failed"),
                }
                Vec::new()
            });
            let _ = me.cast(ShardHostMsg::Polled(rows));
        });
    }

    pub(super) async fn take_polled(
        &self,
        myself: &ActorRef<ShardHostMsg>,
        state: &mut State,
        rows: Vec<InboxRow>,
    ) -> Result<(), ActorProcessingErr> {
        state.polling = false;
        let page = self.rt.config.inbox_page();
        state.more_inbox = rows.len() >= page;
        for row in rows {
            // Known: delivered in process meanwhile, or read by an earlier poll.
            if state.known_inbox.contains(&row.id) {
                continue;
            }
            // Whatever the poll's scope, a host holding a page of inputs takes no more from the
            // store: the rest is read when it has worked through half of what it holds. (A
            // straggler or wake-up read used to add a page every time, and a takeover's hosts
            // grew to 150,000 waiting inputs.)
            if state.known_inbox.len() >= page {
                state.more_inbox = true;
                break;
            }
            let Some(key) = resolve_key(&self.kinds, &row.key) else {
                tracing::warn!(kind = %row.key.kind, "inbox row for an unknown kind");
                continue;
            };
            self.enqueue(myself, state, key, Work::from_row(row), None)
                .await?;
        }
        if std::mem::take(&mut state.poll_again) {
            self.poll_inbox(myself, state, PollScope::Woken);
        }
        Ok(())
    }

    /// Reads the next page of a backlog once the host holds at most half a page of inputs: the
    /// page is sized to what the host can run (`EngineConfig::inbox_page`), so the next one is
    /// read while the last of this one is applied, and never more than about a page waits in
    /// memory. Only a full page asks for the next: a short one read everything.
    pub(super) fn read_next_page(&self, myself: &ActorRef<ShardHostMsg>, state: &mut State) {
        let page = self.rt.config.inbox_page();
        if state.more_inbox && !state.polling && state.known_inbox.len() <= page / 2 {
            state.more_inbox = false;
            self.poll_inbox(myself, state, PollScope::Everything);
        }
    }

    /// Over its share of the resident actors, the host passivates its least recently used idle
    /// ones down to three quarters of the share, so the selection is paid once per many
    /// activations. Actors with work queued or in flight stay: a host whose actors are all busy
    /// may sit over its share until they finish. The cells are a cheap upper bound of the actors
    /// alive (a stopped one keeps its cell until its termination arrives).
    pub(super) fn keep_to_budget(&self, state: &mut State) {
        let budget = self.rt.resident_budget();
        if state.cells.len() > budget {
            self.passivate_oldest(state, budget - budget / 4);
        }
    }

    /// Stops the least recently used idle actors until at most `keep` are alive.
    pub(super) fn passivate_oldest(&self, state: &mut State, keep: usize) {
        // Counted from the residents, not the cells: a stopped actor keeps its cell until its
        // termination arrives, and counting it would passivate twice for it.
        let mut live = 0usize;
        let mut idle: Vec<(std::time::Instant, ActorKey)> = Vec::new();
        for (key, r) in state.residents.iter().filter(|(_, r)| r.actor.is_some()) {
            live += 1;
            if r.idle() {
                idle.push((r.last_active, *key));
            }
        }
        let excess = live.saturating_sub(keep).min(idle.len());
        if excess == 0 {
            return;
        }
        idle.select_nth_unstable(excess - 1);
        for (_, key) in &idle[..excess] {
            if let Some(actor) = state.residents.get_mut(key).and_then(|r| r.actor.take()) {
                actor.stop(Some("passivated: over the resident cap".into()));
            }
        }
        self.rt.metrics.early_passivations.inc_by(excess as u64);
        forget_passivated(state);
    }

    pub(super) fn sweep(&self, state: &mut State) {
        let idle_after = self.rt.config.passivate_after;
        for r in state.residents.values_mut() {
            if r.idle() && r.last_active.elapsed() >= idle_after {
                if let Some(actor) = r.actor.take() {
                    // Its state is in the store and its timers stay armed in the timer service.
                    actor.stop(Some("passivated".into()));
                }
            }
        }
        forget_passivated(state);
    }
}

impl Resident {
    /// Nothing in flight and nothing queued: the actor may be passivated.
    fn idle(&self) -> bool {
        self.inflight.is_none() && self.queue.is_empty()
    }
}

/// Drops the entries of actors stopped to passivate that have nothing queued.
fn forget_passivated(state: &mut State) {
    state.residents.retain(|_, r| {
        r.actor.is_some() || !r.queue.is_empty() || super::failures::held_for_quarantine(r)
    });
}
