//! The one task that owns every timed step: call and message status changes, lead replies,
//! webhook deliveries and the TwiML flows of answered calls. Deliveries (which may wait on
//! retries) and flows (which wait on their verbs and legs) run in a `JoinSet` owned by this task,
//! so stopping it aborts them all; nothing is detached.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::calls::{self, CallState};
use super::flow;
use super::messages::{self, MsgState};
use super::state::{Scheduled, Shared};
use super::webhook::{self, Outgoing};

#[derive(Debug)]
pub(crate) enum Job {
    Call {
        sid: String,
        status: CallState,
    },
    Message {
        sid: String,
        status: MsgState,
    },
    Reply {
        sid: String,
    },
    /// The TwiML of a call that has just been answered.
    Flow {
        sid: String,
    },
    /// Webhooks to send one after another.
    Deliver(Vec<Outgoing>),
}

struct Pending {
    due: Instant,
    /// Insertion order: equal instants run first-in, first-out.
    order: u64,
    job: Job,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.order) == (other.due, other.order)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.due, self.order).cmp(&(other.due, other.order))
    }
}

#[derive(Default)]
struct Queue {
    heap: BinaryHeap<Reverse<Pending>>,
    order: u64,
}

impl Queue {
    fn push_all(&mut self, jobs: Scheduled) {
        for (due, job) in jobs {
            self.order += 1;
            self.heap.push(Reverse(Pending {
                due,
                order: self.order,
                job,
            }));
        }
    }

    fn pop_due(&mut self, now: Instant) -> Option<Job> {
        if self.heap.peek().is_some_and(|Reverse(p)| p.due <= now) {
            self.heap.pop().map(|Reverse(p)| p.job)
        } else {
            None
        }
    }
}

/// Runs until `stop` fires (or its sender is dropped); then aborts in-flight deliveries.
pub(crate) async fn run(
    shared: Arc<Shared>,
    mut jobs: mpsc::UnboundedReceiver<Scheduled>,
    mut stop: oneshot::Receiver<()>,
) {
    let mut queue = Queue::default();
    let mut deliveries: JoinSet<()> = JoinSet::new();
    loop {
        let next_due = queue.heap.peek().map(|Reverse(p)| p.due);
        tokio::select! {
            _ = &mut stop => break,
            received = jobs.recv() => match received {
                Some(batch) => queue.push_all(batch),
                None => break,
            },
            _ = sleep_until(next_due) => {
                let now = Instant::now();
                while let Some(job) = queue.pop_due(now) {
                    let follow_up = fire(&shared, job, now, &mut deliveries);
                    queue.push_all(follow_up);
                }
            }
            Some(_) = deliveries.join_next(), if !deliveries.is_empty() => {}
        }
    }
    deliveries.shutdown().await;
}

fn fire(shared: &Arc<Shared>, job: Job, now: Instant, deliveries: &mut JoinSet<()>) -> Scheduled {
    let config = &shared.config;
    match job {
        Job::Deliver(items) => {
            deliveries.spawn(webhook::deliver(shared.clone(), items));
            Vec::new()
        }
        Job::Flow { sid } => {
            deliveries.spawn(flow::run(shared.clone(), sid));
            Vec::new()
        }
        Job::Call { sid, status } => {
            let mut guard = shared.lock();
            let state = &mut *guard;
            match state.calls.get_mut(&sid) {
                Some(call) => calls::advance(call, status, config, &mut state.stats, now),
                None => Vec::new(),
            }
        }
        Job::Message { sid, status } => {
            let mut guard = shared.lock();
            let state = &mut *guard;
            match state.messages.get_mut(&sid) {
                Some(msg) => messages::advance(msg, status, config, &mut state.stats, now),
                None => Vec::new(),
            }
        }
        Job::Reply { sid } => messages::reply(&mut shared.lock(), config, &sid, now),
    }
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}
