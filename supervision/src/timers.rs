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

mod window;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef};

use crate::clock::Clock;
use crate::entity::TimerChange;
use crate::key::{ActorKey, ShardId};
use crate::kinds::{resolve_key, Kinds};
use crate::protocol::{ShardHostMsg, TimerMsg, Work};
use crate::runtime::Runtime;
use crate::store::{Consumed, TimerCursor, TimerRow};
use window::{Due, Queue, Window};

pub struct Args;

pub struct State {
    owned: HashSet<ShardId>,
    window: Window,
    /// Timers due before this are all in memory.
    horizon_end: i64,
    generation: u64,
    armed_for: Option<i64>,
    /// Firings handed to a shard host whose row may still be in the store: a refill reads
    /// them again until their transition commits, and must not deliver them twice.
    in_flight: HashMap<(ActorKey, String), InFlight>,
    /// Where the next slice of an overdue backlog starts: set while the last overdue read was
    /// cut at its limit.
    backlog: Option<TimerCursor>,
    /// A `Backlog` read is asked for or under way.
    backlog_reading: bool,
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

    fn backlog_slice(&self) -> i64 {
        let bound = self.rt.config.waiting_bound();
        bound.clamp(*BACKLOG_SLICE.start(), *BACKLOG_SLICE.end()) as i64
    }
}

/// The most timers of the coming window one refill reads.
const REFILL_LIMIT: i64 = 200_000;
/// The most overdue timers one read takes (an outage's backlog, a takeover): the firings that
/// may be in flight at once (`EngineConfig::waiting_bound`), within these bounds. A larger
/// backlog is read in slices, each after the last row of the one before (`Backlog`), the next one
/// when fewer than half a slice of those read are left to fire. So memory holds at most one
/// and a half slices of the backlog, the service never stops for seconds to read it all while
/// the coming timers wait, and no slice reads again the rows of firings still in flight.
const BACKLOG_SLICE: std::ops::RangeInclusive<usize> = 16..=10_000;
/// A pause before the due timers are looked at again while the hosts are behind, and before a
/// failed backlog read is tried again.
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
            window: Window::default(),
            horizon_end: 0,
            generation: 0,
            armed_for: None,
            in_flight: HashMap::new(),
            backlog: None,
            backlog_reading: false,
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
                state.window.retain_shards(&owned);
                state.in_flight.retain(|_, f| owned.contains(&f.shard));
                if gained {
                    self.refill(state).await;
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
                                state
                                    .window
                                    .insert(key, name, at, shard, input, Queue::OnTime);
                            } else {
                                state.window.remove(&key, &name);
                            }
                        }
                        TimerChange::Clear { name } => state.window.remove(&key, &name),
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
                // Room for the next firing held back by the bound: at once, not at the pause's
                // end (a small bound paced by pauses drained a backlog at bound / 200 ms).
                if state.in_flight.remove(&(key, name)).is_some() && !self.rt.overloaded() {
                    self.fire_due(state);
                }
            }
            TimerMsg::Refill => self.refill(state).await,
            TimerMsg::Backlog => {
                state.backlog_reading = false;
                self.read_backlog(&myself, state).await;
            }
        }
        self.more_backlog(&myself, state);
        arm(&myself, state, &self.rt.config.clock);
        Ok(())
    }
}

/// Where the next read starts, when `rows` is a read cut at `limit`.
fn cut_at(rows: &[TimerRow], limit: i64) -> Option<TimerCursor> {
    match rows.last() {
        Some(last) if rows.len() as i64 == limit => Some(last.cursor()),
        _ => None,
    }
}

/// Wakes again after `BACKLOG_PAUSE` for the due timers held back. Marked armed for the
/// earliest, so that `arm` leaves the pause alone until an earlier timer comes.
fn hold_back(myself: &ActorRef<TimerMsg>, state: &mut State) {
    let Some(next) = state.window.earliest() else {
        return;
    };
    state.generation += 1;
    state.armed_for = Some(next);
    let generation = state.generation;
    myself.send_after(BACKLOG_PAUSE, move || TimerMsg::Wake(generation));
}

/// Sleeps until the earliest timer; a new earliest re-arms with a new generation.
fn arm(myself: &ActorRef<TimerMsg>, state: &mut State, clock: &Clock) {
    let Some(next) = state.window.earliest() else {
        state.armed_for = None;
        return;
    };
    if state.armed_for == Some(next) {
        return;
    }
    state.generation += 1;
    state.armed_for = Some(next);
    let generation = state.generation;
    // Waits on the runtime's clock, not on tokio's: on a simulated clock a test fires the timer
    // by moving the clock, without the real wait. A superseded waiter wakes to a stale
    // generation and is ignored.
    let (clock, myself, at) = (clock.clone(), myself.clone(), next);
    tokio::spawn(async move {
        clock.sleep_until(at).await;
        let _ = myself.cast(TimerMsg::Wake(generation));
    });
}

impl TimerService {
    /// Delivers the due firings: every timer due on time while fewer firings than half the
    /// resident cap are in flight, then the backlog's, oldest first, while fewer than half
    /// that are. Each firing may wake an actor, and firings past what the hosts can run would
    /// only wait in memory (a takeover's 200,000 overdue timers); the backlog's smaller share
    /// keeps room for the timers that come due while it drains. False when a bound stopped it.
    fn fire_due(&self, state: &mut State) -> bool {
        let now = self.rt.config.clock.now_ms();
        let bound = self.rt.config.waiting_bound();
        for (queue, bound) in [(Queue::OnTime, bound), (Queue::Backlog, bound.div_ceil(2))] {
            while state.window.is_due(queue, now) {
                if state.in_flight.len() >= bound {
                    return false;
                }
                if let Some(due) = state.window.pop_due(queue, now) {
                    self.deliver(state, due);
                }
            }
        }
        true
    }

    /// Hands a firing to its shard's host and remembers it in flight.
    fn deliver(&self, state: &mut State, due: Due) {
        // No host here (the shard is being handed over): the row waits in the store for
        // whoever holds the shard, or for our next refill.
        let Some(host) = self.rt.host_of(due.shard) else {
            return;
        };
        let work = Work {
            consumed: Consumed::Timer {
                name: due.name.clone(),
                due_at_ms: due.at,
            },
            input: due.input,
            reply: false,
        };
        if host
            .cast(ShardHostMsg::Deliver(due.key, work, None))
            .is_ok()
        {
            let flight = InFlight {
                due_at: due.at,
                shard: due.shard,
                host: host.get_id(),
                since: Instant::now(),
            };
            state.in_flight.insert((due.key, due.name), flight);
        }
    }

    async fn refill(&self, state: &mut State) {
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
        let slice = self.backlog_slice();
        let read = async {
            let overdue = store
                .timers_due_before(&shards, &kinds, i64::MIN..now, slice)
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
        let rows_read = overdue.len() + coming.len();
        self.rt.metrics.timer_rows_read.inc_by(rows_read as u64);
        // From the start again: rows past the last cursor that are in memory already are
        // read once more by the next slice, and put back in place.
        state.backlog = cut_at(&overdue, slice);
        self.settle_in_flight(state, &overdue, &coming);
        // Cut at the limit: later timers of the window are read by the next refill.
        state.horizon_end = cut_at(&coming, REFILL_LIMIT).map_or(until, |c| c.due_at_ms);
        self.hold(state, overdue, Queue::Backlog);
        self.hold(state, coming, Queue::OnTime);
    }

    /// Puts read rows in memory in `queue`, but not those whose firing is in flight.
    fn hold(&self, state: &mut State, rows: Vec<TimerRow>, queue: Queue) {
        for row in rows {
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
            state
                .window
                .insert(key, row.name, row.due_at_ms, row.shard, row.input, queue);
        }
    }

    /// Asks for the next slice of the backlog when fewer than half a slice of the overdue
    /// timers read are left in memory (the rest fired or in flight).
    fn more_backlog(&self, myself: &ActorRef<TimerMsg>, state: &mut State) {
        if state.backlog.is_none() || state.backlog_reading {
            return;
        }
        let low = (self.backlog_slice() / 2) as usize;
        if state.window.backlog_len() < low && myself.cast(TimerMsg::Backlog).is_ok() {
            state.backlog_reading = true;
        }
    }

    /// Reads the slice of the overdue backlog after the last one. Only reads: a firing's row
    /// before the cursor is judged by the next full refill, not here.
    async fn read_backlog(&self, myself: &ActorRef<TimerMsg>, state: &mut State) {
        let Some(after) = state.backlog.clone() else {
            return;
        };
        let shards: Vec<ShardId> = state.owned.iter().copied().collect();
        let kinds = self.kinds.registered();
        // Due up to and including now: a timer due this very millisecond is not left between
        // this slice and the coming window.
        let until = self.rt.config.clock.now_ms() + 1;
        let slice = self.backlog_slice();
        let read = self
            .rt
            .store
            .timers_due_after(&shards, &kinds, &after, until, slice);
        match read.await {
            Ok(rows) => {
                self.rt.metrics.timer_rows_read.inc_by(rows.len() as u64);
                state.backlog = cut_at(&rows, slice);
                self.hold(state, rows, Queue::Backlog);
            }
            Err(e) => {
                tracing::warn!(error = %e, "timer backlog read failed");
                state.backlog_reading = true;
                myself.send_after(BACKLOG_PAUSE, || TimerMsg::Backlog);
            }
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
        // Past the cut (where the backlog's next slice starts, set from `overdue`), a row's
        // absence says nothing.
        let judged_before = state.backlog.as_ref().map_or(i64::MAX, |c| c.due_at_ms);
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
