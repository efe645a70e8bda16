//! Stopping shard hosts off the manager's handler. The manager is the only actor that renews
//! leases: a host stuck behind a database stall (a commit waiting on a row lock, a hung
//! connection) must never hold up a renewal, or every other shard's lease runs out and the
//! instances trade shards. So hosts are taken out of the manager's state at once and stopped
//! here, all together, each with a short grace and then killed.

use std::sync::Arc;
use std::time::Duration;

use ractor::{ActorRef, RactorErr};
use tokio::task::JoinSet;

use crate::key::{Epoch, ShardId};
use crate::protocol::ShardHostMsg;
use crate::runtime::Runtime;

/// How long a host may take to finish its in-flight transitions (a stop is seen between
/// messages) before it is killed. Short: what it has not committed is still in the store for
/// the next owner, and a commit it loses to the kill is rolled back or fenced by its epoch.
pub(super) const GRACE: Duration = Duration::from_secs(2);

/// How long to wait for a killed host to be gone. A kill aborts the actor's future, so this
/// only bounds the scheduler's delay.
const KILL_WAIT: Duration = Duration::from_secs(1);

/// Stops every host concurrently and returns how many had to be killed.
pub(super) async fn stop_hosts(hosts: Vec<ActorRef<ShardHostMsg>>, reason: &'static str) -> usize {
    let mut stops = JoinSet::new();
    for host in hosts {
        stops.spawn(async move {
            match host.stop_and_wait(Some(reason.into()), Some(GRACE)).await {
                Err(RactorErr::Timeout) => {}
                // Stopped, or already gone.
                _ => return false,
            }
            // A killed actor runs no `post_stop`, so the host would not stop its actors: kill
            // them first (an actor waiting on a commit would otherwise outlive its host).
            for actor in host.get_children() {
                actor.kill();
            }
            let _ = host.kill_and_wait(Some(KILL_WAIT)).await;
            true
        });
    }
    let mut killed = 0;
    while let Some(done) = stops.join_next().await {
        if done.unwrap_or(false) {
            killed += 1;
        }
    }
    killed
}

/// Stops hosts that were given up (rebalance) and only then releases their leases: the next
/// owner claims a shard whose host has stopped, so its in-flight commits landed under the old
/// epoch first. A kill cannot undo a commit already sent: that one either lands before the
/// release or is refused once the next claim moves the epoch (commits check it under
/// `FOR KEY SHARE`, which a claim's `FOR UPDATE` waits for). The release names each epoch, so
/// a lease that expired and was claimed again meanwhile (by anyone) is left alone.
pub(super) async fn stop_then_release(
    rt: Arc<Runtime>,
    hosts: Vec<ActorRef<ShardHostMsg>>,
    give: Vec<(ShardId, Epoch)>,
) {
    let killed = stop_hosts(hosts, "rebalancing").await;
    if killed > 0 {
        tracing::warn!(killed, "shard hosts did not stop within the grace: killed");
    }
    match rt.store.release_shards(&rt.config.instance_id, &give).await {
        Ok(()) => tracing::info!(released = give.len(), "shards released to rebalance"),
        Err(e) => {
            tracing::warn!(error = %e, "releasing surplus shards failed; they expire by themselves")
        }
    }
}

/// Stops hosts whose leases are gone or about to be (lost, expired, shutting down).
pub(super) async fn stop_dropped(hosts: Vec<ActorRef<ShardHostMsg>>, reason: &'static str) {
    let killed = stop_hosts(hosts, reason).await;
    if killed > 0 {
        tracing::warn!(
            killed,
            reason,
            "shard hosts did not stop within the grace: killed"
        );
    }
}
