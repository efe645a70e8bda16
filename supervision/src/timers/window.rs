//! The timers the timer service holds in memory, in two queues: those it reads as an overdue
//! backlog (a takeover, an outage) and the rest, due in the coming window or set by a commit
//! since. Firing takes the second first, so a backlog, however long it takes to drain, never
//! makes a timer late that comes due meanwhile (issue #13, items 5 and 6).

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::Value;

use crate::key::{ActorKey, ShardId};

/// Where a timer waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Queue {
    /// Due in the coming window, or set by a commit: fires when due.
    OnTime,
    /// Read as overdue: fires as room allows, oldest first.
    Backlog,
}

type Slot = (i64, ActorKey, String);

/// A timer taken from the window to fire.
pub(super) struct Due {
    pub at: i64,
    pub key: ActorKey,
    pub name: String,
    pub shard: ShardId,
    pub input: Value,
}

#[derive(Default)]
pub(super) struct Window {
    on_time: BTreeMap<Slot, (ShardId, Value)>,
    backlog: BTreeMap<Slot, (ShardId, Value)>,
    index: HashMap<(ActorKey, String), (i64, Queue)>,
}

impl Window {
    fn queue(&mut self, queue: Queue) -> &mut BTreeMap<Slot, (ShardId, Value)> {
        match queue {
            Queue::OnTime => &mut self.on_time,
            Queue::Backlog => &mut self.backlog,
        }
    }

    fn queue_ref(&self, queue: Queue) -> &BTreeMap<Slot, (ShardId, Value)> {
        match queue {
            Queue::OnTime => &self.on_time,
            Queue::Backlog => &self.backlog,
        }
    }

    /// Holds a timer, replacing what was held of it. A timer held already for the same time
    /// stays in its queue: a backlog slice that reads a timer of the coming window once it is
    /// due must not put it behind the backlog.
    pub fn insert(
        &mut self,
        key: ActorKey,
        name: String,
        at: i64,
        shard: ShardId,
        input: Value,
        queue: Queue,
    ) {
        let queue = match self.index.get(&(key, name.clone())) {
            Some((held_at, held_in)) if *held_at == at => *held_in,
            _ => queue,
        };
        self.remove(&key, &name);
        self.index.insert((key, name.clone()), (at, queue));
        self.queue(queue).insert((at, key, name), (shard, input));
    }

    pub fn remove(&mut self, key: &ActorKey, name: &str) {
        if let Some((at, queue)) = self.index.remove(&(*key, name.to_owned())) {
            self.queue(queue).remove(&(at, *key, name.to_owned()));
        }
    }

    /// Keeps only the timers of `owned` shards.
    pub fn retain_shards(&mut self, owned: &HashSet<ShardId>) {
        self.on_time.retain(|_, (shard, _)| owned.contains(shard));
        self.backlog.retain(|_, (shard, _)| owned.contains(shard));
        let mut index = std::mem::take(&mut self.index);
        index.retain(|(key, name), (at, queue)| {
            self.queue_ref(*queue)
                .contains_key(&(*at, *key, name.clone()))
        });
        self.index = index;
    }

    /// The earliest time any held timer is due.
    pub fn earliest(&self) -> Option<i64> {
        let first = |q: &BTreeMap<Slot, _>| q.first_key_value().map(|((at, _, _), _)| *at);
        match (first(&self.on_time), first(&self.backlog)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether the earliest timer of `queue` is due at `now`.
    pub fn is_due(&self, queue: Queue, now: i64) -> bool {
        self.queue_ref(queue)
            .first_key_value()
            .is_some_and(|((at, _, _), _)| *at <= now)
    }

    /// Takes the earliest timer of `queue` if it is due at `now`.
    pub fn pop_due(&mut self, queue: Queue, now: i64) -> Option<Due> {
        let entry = self.queue(queue).first_entry()?;
        if entry.key().0 > now {
            return None;
        }
        let ((at, key, name), (shard, input)) = entry.remove_entry();
        self.index.remove(&(key, name.clone()));
        Some(Due {
            at,
            key,
            name,
            shard,
            input,
        })
    }

    /// Timers held of the backlog.
    pub fn backlog_len(&self) -> usize {
        self.backlog.len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::key::{ActorKind, TenantId};
    use serde_json::json;
    use uuid::Uuid;

    fn key() -> ActorKey {
        ActorKey::root(TenantId(Uuid::new_v4()), ActorKind("t"), Uuid::new_v4())
    }

    #[test]
    fn on_time_timers_are_taken_before_an_older_backlog() {
        let mut w = Window::default();
        let (old, fresh) = (key(), key());
        w.insert(old, "a".into(), 10, ShardId(0), json!(1), Queue::Backlog);
        w.insert(fresh, "b".into(), 50, ShardId(0), json!(2), Queue::OnTime);
        assert_eq!(w.earliest(), Some(10));
        assert!(w.pop_due(Queue::OnTime, 49).is_none(), "not due yet");
        assert_eq!(w.pop_due(Queue::OnTime, 60).unwrap().key, fresh);
        assert_eq!(w.pop_due(Queue::Backlog, 60).unwrap().key, old);
        assert_eq!(w.earliest(), None);
    }

    #[test]
    fn a_backlog_read_leaves_a_held_timer_in_its_queue_and_a_change_moves_it() {
        let mut w = Window::default();
        let k = key();
        w.insert(k, "a".into(), 50, ShardId(0), json!(1), Queue::OnTime);
        // A backlog slice reads it once it is due: it stays on time.
        w.insert(k, "a".into(), 50, ShardId(0), json!(1), Queue::Backlog);
        assert_eq!(w.backlog_len(), 0);
        assert!(w.pop_due(Queue::OnTime, 50).is_some());
        // Moved to another time by a backlog read (the row changed): it goes there.
        w.insert(k, "a".into(), 50, ShardId(0), json!(1), Queue::OnTime);
        w.insert(k, "a".into(), 40, ShardId(0), json!(1), Queue::Backlog);
        assert_eq!(w.backlog_len(), 1);
        assert!(
            w.pop_due(Queue::OnTime, 100).is_none(),
            "held once, not twice"
        );
        w.remove(&k, "a");
        assert_eq!(w.earliest(), None);
    }

    #[test]
    fn losing_a_shard_drops_its_timers_from_both_queues() {
        let mut w = Window::default();
        let (a, b) = (key(), key());
        w.insert(a, "x".into(), 1, ShardId(1), json!(1), Queue::Backlog);
        w.insert(b, "x".into(), 2, ShardId(2), json!(1), Queue::OnTime);
        w.retain_shards(&HashSet::from([ShardId(2)]));
        assert_eq!(w.backlog_len(), 0);
        assert_eq!(w.earliest(), Some(2));
        // The index let go of the dropped one: inserting it again holds it once.
        w.insert(a, "x".into(), 1, ShardId(2), json!(1), Queue::OnTime);
        assert_eq!(w.pop_due(Queue::OnTime, 5).unwrap().at, 1);
        assert_eq!(w.pop_due(Queue::OnTime, 5).unwrap().at, 2);
        assert!(w.pop_due(Queue::OnTime, 5).is_none());
    }
}
