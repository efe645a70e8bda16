//! Fair queues for the group writers (issue #13, item 6).
//!
//! A group writer used to take its items in arrival order, so a tenant importing 50,000 leads
//! filled every batch and another tenant's one lead waited behind all of it at each write on
//! its way to a dial. Items now wait in one queue per lane (a tenant, or the shared lane for
//! items that belong to none), and a batch takes one item from each waiting lane in turn:
//! a lane with one item waiting is in the next batch, however long the others' queues are.
//! Inside a lane, arrival order is kept.
//!
//! Being in the next batch is not enough when that batch is a full one of the flood's items:
//! the quiet item is written only when the whole batch is (a group commit of 500 records), at
//! every writer on its way. So a batch that a lane of one or two items shares with a flood is
//! cut to its first round, one item of each lane: a small write that lands at once, followed
//! by a full batch of the flood. Never two such batches in a row, so however often quiet
//! items come, the flood keeps at least every other batch whole.

use std::collections::{HashMap, VecDeque};

use crate::key::TenantId;

/// A lane with at most this many items waiting is quiet (a neighbour's lead, not an import).
const QUIET: usize = 2;

/// Which queue an item waits in. `None` is the shared lane.
pub type Lane = Option<TenantId>;

/// Finds an item's lane. A plain function: the lane is a property of the item's type.
pub type LaneOf<I> = fn(&I) -> Lane;

/// The shared lane for every item: arrival order, as a plain queue.
pub fn one_lane<I>(_: &I) -> Lane {
    None
}

/// Queues per lane and the order in which lanes get their next turn.
#[derive(Debug)]
pub(crate) struct Lanes<J> {
    queues: HashMap<Lane, VecDeque<J>>,
    /// Every lane with something queued, once, in turn order.
    turns: VecDeque<Lane>,
    len: usize,
    /// The last batch was cut to its first round.
    cut_last: bool,
}

impl<J> Default for Lanes<J> {
    fn default() -> Self {
        Self {
            queues: HashMap::new(),
            turns: VecDeque::new(),
            len: 0,
            cut_last: false,
        }
    }
}

impl<J> Lanes<J> {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn push(&mut self, lane: Lane, job: J) {
        let queue = self.queues.entry(lane).or_default();
        if queue.is_empty() {
            // A lane that had nothing waiting goes to the back of the turns: it does not jump
            // ahead of lanes already waiting, nor wait behind their whole queues.
            self.turns.push_back(lane);
        }
        queue.push_back(job);
        self.len += 1;
    }

    /// Up to `max` items, one from each lane in turn, round after round. A lane that still
    /// has items keeps its place in the rotation after the batch, so the next batch starts
    /// with the lanes this one reached last.
    pub(crate) fn take(&mut self, max: usize) -> Vec<J> {
        std::iter::from_fn(|| self.pop()).take(max).collect()
    }

    /// A batch for a group writer: as `take`, but only the first round (one item of each
    /// lane) when a quiet lane (one or two items) waits beside enough others' items to fill
    /// half a batch, unless the last batch was cut so.
    pub(crate) fn take_batch(&mut self, max: usize) -> Vec<J> {
        let round = self.turns.len();
        let quiet = || self.queues.values().any(|q| q.len() <= QUIET);
        let cut = !self.cut_last && round > 1 && round < max && self.len >= max / 2 && quiet();
        self.cut_last = cut;
        self.take(if cut { round } else { max })
    }

    /// The next item: the front of the lane whose turn it is.
    pub(crate) fn pop(&mut self) -> Option<J> {
        while let Some(lane) = self.turns.pop_front() {
            let Some(queue) = self.queues.get_mut(&lane) else {
                continue;
            };
            let job = queue.pop_front();
            if queue.is_empty() {
                self.queues.remove(&lane);
            } else {
                self.turns.push_back(lane);
            }
            if job.is_some() {
                self.len -= 1;
                return job;
            }
        }
        None
    }

    /// Moves the first item of `lane` that `is` picks to the front of that lane.
    pub(crate) fn hurry(&mut self, lane: Lane, is: impl Fn(&J) -> bool) {
        if let Some(queue) = self.queues.get_mut(&lane) {
            if let Some(at) = queue.iter().position(is) {
                if let Some(job) = queue.remove(at) {
                    queue.push_front(job);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn tenant(n: u128) -> Lane {
        Some(TenantId(Uuid::from_u128(n)))
    }

    /// A thousand items of tenant 1 ("a"), then one of tenant 2 ("b").
    fn flood_beside_one() -> Lanes<(&'static str, i32)> {
        let mut lanes = Lanes::default();
        for i in 0..1_000 {
            lanes.push(tenant(1), ("a", i));
        }
        lanes.push(tenant(2), ("b", 0));
        lanes
    }

    #[test]
    fn one_item_of_a_quiet_lane_is_in_the_next_batch() {
        let mut lanes = flood_beside_one();
        let batch = lanes.take(10);
        assert_eq!(batch.len(), 10);
        assert!(batch.contains(&("b", 0)), "{batch:?}");
        // A's items keep their order.
        let a: Vec<_> = batch
            .iter()
            .filter(|(t, _)| *t == "a")
            .map(|j| j.1)
            .collect();
        assert_eq!(a, (0..9).collect::<Vec<_>>());
        assert_eq!(lanes.len(), 991);
    }

    #[test]
    fn lanes_take_turns_across_batches() {
        let mut lanes = Lanes::default();
        for i in 0..4 {
            lanes.push(tenant(1), (1, i));
            lanes.push(tenant(2), (2, i));
            lanes.push(None, (0, i));
        }
        // Three lanes, batches of two: the third lane opens the second batch.
        assert_eq!(lanes.take(2), vec![(1, 0), (2, 0)]);
        assert_eq!(lanes.take(2), vec![(0, 0), (1, 1)]);
        assert_eq!(lanes.take(5), vec![(2, 1), (0, 1), (1, 2), (2, 2), (0, 2)]);
        assert_eq!(lanes.take(100), vec![(1, 3), (2, 3), (0, 3)]);
        assert!(lanes.is_empty());
        assert!(lanes.take(3).is_empty());
    }

    #[test]
    fn a_quiet_lane_beside_a_flood_is_written_in_a_small_batch_then_the_flood_in_a_full_one() {
        let mut lanes = flood_beside_one();
        assert_eq!(lanes.take_batch(500), vec![("a", 0), ("b", 0)]);
        let full = lanes.take_batch(500);
        assert_eq!(full.len(), 500);
        assert!(full.iter().all(|(t, _)| *t == "a"));
    }

    #[test]
    fn quiet_items_arriving_all_the_time_leave_the_flood_every_other_batch_whole() {
        let mut lanes = Lanes::default();
        for i in 0..5_000 {
            lanes.push(tenant(1), ("a", i));
        }
        let mut sizes = Vec::new();
        for i in 0..6 {
            lanes.push(tenant(2), ("b", i));
            sizes.push(lanes.take_batch(500).len());
        }
        assert_eq!(sizes, vec![2, 500, 2, 500, 2, 500]);
    }

    #[test]
    fn floods_of_two_lanes_and_small_backlogs_take_whole_batches() {
        let mut lanes = Lanes::default();
        for i in 0..1_000 {
            lanes.push(tenant(1), i);
            lanes.push(tenant(2), i);
        }
        assert_eq!(lanes.take_batch(500).len(), 500, "no quiet lane");
        let mut lanes = Lanes::default();
        for i in 0..100 {
            lanes.push(tenant(1), i);
        }
        lanes.push(tenant(2), 0);
        assert_eq!(
            lanes.take_batch(500).len(),
            101,
            "too little to be worth a cut"
        );
    }

    #[test]
    fn a_single_lane_is_a_plain_queue() {
        let mut lanes = Lanes::default();
        for i in 0..7 {
            lanes.push(None, i);
        }
        assert_eq!(lanes.take(3), vec![0, 1, 2]);
        lanes.push(None, 7);
        assert_eq!(lanes.take(10), vec![3, 4, 5, 6, 7]);
    }

    #[test]
    fn a_hurried_item_leads_its_lane_and_only_its_lane() {
        let mut lanes = Lanes::default();
        for i in 0..5 {
            lanes.push(tenant(1), i);
        }
        lanes.push(tenant(2), 50);
        lanes.hurry(tenant(1), |i| *i == 3);
        lanes.hurry(tenant(2), |i| *i == 3);
        assert_eq!(lanes.take(4), vec![3, 50, 0, 1]);
    }
}
