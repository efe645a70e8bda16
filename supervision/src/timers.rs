//! The timer service: holds the timers of owned shards that fall due within a window, sleeps
//! exactly until the next one, and delivers each firing to its actor's shard host.
//!
//! The store is the truth. Memory holds only `[now, horizon)`; a periodic indexed query refills
//! it, and commits that set or clear timers update it at once. A firing is consumed in the
//! transaction of the transition it causes, so delivering one twice is harmless (the second
//! commit is stale), while losing one is impossible (the row stays until consumed).
//!
//! Harmless is not free: a stale commit costs a transition and rolls back to a savepoint of a
//! group commit. So the service remembers the firings it handed to a shard host until their
//! row is seen gone or their timer changes, and a refill does not deliver them again (issue
//! #13, item 5; ADR 0006).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef};
use serde_json::Value;

use crate::clock::Clock;
use crate::entity::TimerChange;
use crate::key::{ActorKey, ShardId};
use crate::kinds::{resolve_key, Kinds};
use crate::protocol::{ShardHostMsg, TimerMsg, Work};
use crate::runtime::Runtime;
use crate::store::Consumed;

pub struct Args;

type Slot = (i64, ActorKey, String);

pub struct State {
    owned: HashSet<ShardId>,
    due: BTreeMap<Slot, (ShardId, Value)>,
    index: HashMap<(ActorKey, String), i64>,
    /// Timers due before this are all in memory.
    horizon_end: i64,
    generation: u64,
    armed_for: Option<i64>,
    /// Firings handed to a shard host whose row may still be in the store: a refill reads
    /// them again until their transition commits, and must not deliver them twice.
    in_flight: HashMap<(ActorKey, String), InFlight>,
}

/// A firing delivered and not yet known to be over.
struct InFlight {
    due_at: i64,
    shard: ShardId,
    /// The host it went to: a host that restarted since dropped its queue, firing included.
    host: ActorId,
    since: Instant,
}

/// A firing whose row outlives this in a live host was lost some other way (a dead letter
/// whose write failed): the next refill delivers it again. Far longer than a transition waits
/// in its host's queue even under a backlog, so it never duplicates a firing still queued.
const IN_FLIGHT_PATIENCE: Duration = Duration::from_secs(300);

pub struct TimerService {
    rt: Arc<Runtime>,
    kinds: Kinds,
}

impl TimerService {
    pub fn new(rt: Arc<Runtime>, kinds: Kinds) -> Self {
        Self { rt, kinds }
    }
}

/// The most timers of the coming window one refill reads.
const REFILL_LIMIT: i64 = 200_000;
/// The most overdue timers one refill reads (an outage's backlog, a takeover): a larger
/// backlog is read in slices, the next one as soon as this pause has passed, so the service
/// never stops for seconds to read and deliver it all while the coming timers wait, and at
/// most this many backlog firings are in flight at once (the ones in flight are still rows, so
/// they count toward the next slice).
const BACKLOG_SLICE: i64 = 10_000;
const BACKLOG_PAUSE: Duration = Duration::from_millis(200);

impl Actor for TimerService {
    type Msg = TimerMsg;
    type State = State;
    type Arguments = Args;

    async fn pre_start(
        &self,
        myself: ActorRef<TimerMsg>,
        _args: Args,
    ) -> Result<State, ActorProcessingErr> {
        myself.send_interval(self.rt.config.timer_horizon / 2, || TimerMsg::Refill);
        let clock = self.rt.config.clock.clone();
        if clock.is_simulated() {
            // A moved clock may bring timers beyond the window into it: read them at once
            // rather than at the next real-time refill.
            let me = myself.clone();
            tokio::spawn(async move {
                loop {
                    clock.moved().await;
                    if me.cast(TimerMsg::Refill).is_err() {
                        break;
                    }
                }
            });
        }
        Ok(State {
            owned: HashSet::new(),
            due: BTreeMap::new(),
            index: HashMap::new(),
            horizon_end: 0,
            generation: 0,
            armed_for: None,
            in_flight: HashMap::new(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<TimerMsg>,
        msg: TimerMsg,
        state: &mut State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            TimerMsg::Owned(shards) => {
                let now: HashSet<ShardId> = shards.into_iter().collect();
                let gained = now.difference(&state.owned).count() > 0;
                state.owned = now;
                let owned = state.owned.clone();
                state.due.retain(|_, (shard, _)| owned.contains(shard));
                let due = &state.due;
                state
                    .index
                    .retain(|(key, name), at| due.contains_key(&(*at, *key, name.clone())));
                state.in_flight.retain(|_, f| owned.contains(&f.shard));
                if gained {
                    self.refill(&myself, state).await;
                }
            }
            TimerMsg::Changed(key, shard, changes) => {
                for change in changes {
                    // A commit set or cleared this timer: a firing of it still in flight is
                    // stale now, or handed back (applied before its time): either way it is
                    // not ours to guard any more, and a set one is held again below.
                    let name = match &change {
                        TimerChange::Set { name, .. } | TimerChange::Clear { name } => name,
                    };
                    state.in_flight.remove(&(key, name.clone()));
                    match change {
                        TimerChange::Set {
                            name,
                            due_at,
                            input,
                        } => {
                            let at = due_at.timestamp_millis();
                            if at < state.horizon_end && state.owned.contains(&shard) {
                                insert(state, key, name, at, shard, input);
                            } else {
                                remove(state, &key, &name);
                            }
                        }
                        TimerChange::Clear { name } => remove(state, &key, &name),
                    }
                }
            }
            TimerMsg::Wake(generation) => {
                if generation != state.generation {
                    return Ok(());
                }
                state.armed_for = None;
                if self.rt.overloaded() {
                    // The firings wait here (their rows in the store) while the hosts are
                    // behind: each would join the actors already waiting for room. Looked at
                    // again after a pause, not at once: the earliest is already due.
                    self.rt.metrics.firings_held_back.inc();
                    hold_back(&myself, state);
                } else if !self.fire_due(state) {
                    // At the bound of firings in flight: room comes as hosts report theirs
                    // over (`Over`).
                    self.rt.metrics.firings_held_back.inc();
                    hold_back(&myself, state);
                }
            }
            TimerMsg::Over(key, name) => {
                state.in_flight.remove(&(key, name));
            }
            TimerMsg::Refill => self.refill(&myself, state).await,
        }
        arm(&myself, state, &self.rt.config.clock);
        Ok(())
    }
}

fn insert(state: &mut State, key: ActorKey, name: String, at: i64, shard: ShardId, input: Value) {
    remove(state, &key, &name);
    state.index.insert((key, name.clone()), at);
    state.due.insert((at, key, name), (shard, input));
}

fn remove(state: &mut State, key: &ActorKey, name: &str) {
    if let Some(at) = state.index.remove(&(*key, name.to_owned())) {
        state.due.remove(&(at, *key, name.to_owned()));
    }
}

/// Wakes again after `BACKLOG_PAUSE` for the due timers held back. Marked armed for the
/// earliest, so that `arm` leaves the pause alone until an earlier timer comes.
fn hold_back(myself: &ActorRef<TimerMsg>, state: &mut State) {
    let Some(((next, _, _), _)) = state.due.first_key_value() else {
        return;
    };
    state.generation += 1;
    state.armed_for = Some(*next);
    let generation = state.generation;
    myself.send_after(BACKLOG_PAUSE, move || TimerMsg::Wake(generation));
}

/// Sleeps until the earliest timer; a new earliest re-arms with a new generation.
fn arm(myself: &ActorRef<TimerMsg>, state: &mut State, clock: &Clock) {
    let Some(((next, _, _), _)) = state.due.first_key_value() else {
        state.armed_for = None;
        return;
    };
    if state.armed_for == Some(*next) {
        return;
    }
    state.generation += 1;
    state.armed_for = Some(*next);
    let generation = state.generation;
    // Waits on the runtime's clock, not on tokio's: on a simulated clock a test fires the timer
    // by moving the clock, without the real wait. A superseded waiter wakes to a stale
    // generation and is ignored.
    let (clock, myself, at) = (clock.clone(), myself.clone(), *next);
    tokio::spawn(async move {
        clock.sleep_until(at).await;
        let _ = myself.cast(TimerMsg::Wake(generation));
    });
}

impl TimerService {
    /// Delivers the due firings, at most half the resident cap in flight at once: each may
    /// wake an actor, and firings past what the hosts can run would only wait in memory (a
    /// takeover's 200,000 overdue timers). False when that bound stopped it.
    fn fire_due(&self, state: &mut State) -> bool {
        let now = self.rt.config.clock.now_ms();
        let bound = self.rt.config.waiting_bound();
        while let Some(entry) = state.due.first_entry() {
            if entry.key().0 > now {
                break;
            }
            if state.in_flight.len() >= bound {
                return false;
            }
            let ((at, key, name), (shard, input)) = entry.remove_entry();
            state.index.remove(&(key, name.clone()));
            // No host here (the shard is being handed over): the row waits in the store for
            // whoever holds the shard, or for our next refill.
            let Some(host) = self.rt.host_of(shard) else {
                continue;
            };
            let work = Work {
                consumed: Consumed::Timer {
                    name: name.clone(),
                    due_at_ms: at,
                },
                input,
                reply: false,
            };
            if host.cast(ShardHostMsg::Deliver(key, work, None)).is_ok() {
                let flight = InFlight {
                    due_at: at,
                    shard,
                    host: host.get_id(),
                    since: Instant::now(),
                };
                state.in_flight.insert((key, name), flight);
            }
        }
        true
    }

    async fn refill(&self, myself: &ActorRef<TimerMsg>, state: &mut State) {
        if state.owned.is_empty() {
            return;
        }
        let horizon = self.rt.config.timer_horizon.as_millis() as i64;
        let now = self.rt.config.clock.now_ms();
        let until = now + horizon;
        let shards: Vec<ShardId> = state.owned.iter().copied().collect();
        let kinds = self.kinds.registered();
        // Two reads, each with its own limit: the overdue backlog (however large) cannot push
        // the timers of the coming window out of memory, and those keep firing on time while
        // the backlog drains.
        let store = &self.rt.store;
        let read = async {
            let overdue = store
                .timers_due_before(&shards, &kinds, i64::MIN..now, BACKLOG_SLICE)
                .await?;
            let coming = store
                .timers_due_before(&shards, &kinds, now..until, REFILL_LIMIT)
                .await?;
            Ok::<_, crate::store::StoreError>((overdue, coming))
        };
        let (overdue, coming) = match read.await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "timer refill failed");
                return;
            }
        };
        self.settle_in_flight(state, &overdue, &coming);
        if overdue.len() as i64 == BACKLOG_SLICE {
            myself.send_after(BACKLOG_PAUSE, || TimerMsg::Refill);
        }
        state.horizon_end = match coming.last() {
            // Cut at the limit: later timers of the window are read by the next refill.
            Some(last) if coming.len() as i64 == REFILL_LIMIT => last.due_at_ms,
            _ => until,
        };
        for row in overdue.into_iter().chain(coming) {
            let Some(key) = resolve_key(&self.kinds, &row.key) else {
                continue;
            };
            if state
                .in_flight
                .get(&(key, row.name.clone()))
                .is_some_and(|f| f.due_at == row.due_at_ms)
            {
                continue;
            }
            insert(state, key, row.name, row.due_at_ms, row.shard, row.input);
        }
    }

    /// Forgets firings that are over (their row is gone, so their transition committed) and
    /// releases for delivery again those that were lost (their host restarted, or they waited
    /// past [`IN_FLIGHT_PATIENCE`]). `overdue` is what the refill read due before now, which
    /// is where every firing in flight is, unless the read was cut at its limit.
    fn settle_in_flight(
        &self,
        state: &mut State,
        overdue: &[crate::store::TimerRow],
        coming: &[crate::store::TimerRow],
    ) {
        if state.in_flight.is_empty() {
            return;
        }
        // Past a cut, a row's absence says nothing.
        let judged_before = match overdue.last() {
            Some(last) if overdue.len() as i64 == BACKLOG_SLICE => last.due_at_ms,
            _ => i64::MAX,
        };
        // A firing delivered in the very millisecond of this refill's `now` reads as coming.
        let still: HashSet<(ActorKey, String, i64)> = overdue
            .iter()
            .chain(coming)
            .filter_map(|r| {
                let key = resolve_key(&self.kinds, &r.key)?;
                Some((key, r.name.clone(), r.due_at_ms))
            })
            .collect();
        let rt = &self.rt;
        state.in_flight.retain(|(key, name), f| {
            if still.contains(&(*key, name.clone(), f.due_at)) {
                let same_host = rt.host_of(f.shard).map(|h| h.get_id()) == Some(f.host);
                let lost = !same_host || f.since.elapsed() > IN_FLIGHT_PATIENCE;
                if lost {
                    tracing::info!(%key, timer = %name, "timer firing lost in flight: delivering it again");
                }
                !lost
            } else {
                f.due_at >= judged_before
            }
        });
    }
}
