//! The timer service: holds the timers of owned shards that fall due within a window, sleeps
//! exactly until the next one, and delivers each firing to its actor's shard host.
//!
//! The store is the truth. Memory holds only `[now, horizon)`; a periodic indexed query refills
//! it, and commits that set or clear timers update it at once. A firing is consumed in the
//! transaction of the transition it causes, so delivering one twice is harmless (the second
//! commit is stale), while losing one is impossible (the row stays until consumed).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};
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
}

pub struct TimerService {
    rt: Arc<Runtime>,
    kinds: Kinds,
}

impl TimerService {
    pub fn new(rt: Arc<Runtime>, kinds: Kinds) -> Self {
        Self { rt, kinds }
    }
}

const REFILL_LIMIT: i64 = 200_000;

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
        Ok(State {
            owned: HashSet::new(),
            due: BTreeMap::new(),
            index: HashMap::new(),
            horizon_end: 0,
            generation: 0,
            armed_for: None,
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
                if gained {
                    self.refill(state).await;
                }
            }
            TimerMsg::Changed(key, shard, changes) => {
                for change in changes {
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
                self.fire_due(state);
            }
            TimerMsg::Refill => self.refill(state).await,
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
    let wait = (*next - clock.now_ms()).max(0) as u64;
    myself.send_after(Duration::from_millis(wait), move || {
        TimerMsg::Wake(generation)
    });
}

impl TimerService {
    fn fire_due(&self, state: &mut State) {
        let now = self.rt.config.clock.now_ms();
        while let Some(entry) = state.due.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let ((at, key, name), (shard, input)) = entry.remove_entry();
            state.index.remove(&(key, name.clone()));
            let work = Work {
                consumed: Consumed::Timer {
                    name,
                    due_at_ms: at,
                },
                input,
                reply: false,
            };
            self.rt.route(shard, ShardHostMsg::Deliver(key, work, None));
        }
    }

    async fn refill(&self, state: &mut State) {
        if state.owned.is_empty() {
            return;
        }
        let horizon = self.rt.config.timer_horizon.as_millis() as i64;
        let until = self.rt.config.clock.now_ms() + horizon;
        let shards: Vec<ShardId> = state.owned.iter().copied().collect();
        let rows = match self
            .rt
            .store
            .timers_due_before(&shards, until, REFILL_LIMIT)
            .await
        {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "timer refill failed");
                return;
            }
        };
        let truncated = rows.len() as i64 == REFILL_LIMIT;
        let last = rows.last().map(|r| r.due_at_ms);
        for row in rows {
            if let Some(key) = resolve_key(&self.kinds, &row.key) {
                insert(state, key, row.name, row.due_at_ms, row.shard, row.input);
            }
        }
        state.horizon_end = match (truncated, last) {
            (true, Some(last)) => last,
            _ => until,
        };
    }
}
