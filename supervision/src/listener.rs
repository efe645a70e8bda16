//! Wake-ups from other instances: an input made durable for a shard owned here by another
//! instance comes with a PostgreSQL NOTIFY carrying the shard number, and a commit that wrote
//! answers for callers waiting on other instances NOTIFYs `REPLY_CHANNEL`. The safety-net polls
//! cover anything missed (notifications sent while the connection was down are lost).

use std::sync::Arc;

use ractor::ActorRef;
use sqlx::postgres::PgListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::key::ShardId;
use crate::protocol::ManagerMsg;
use crate::store::{StoreError, REPLY_CHANNEL};

/// Forwards each inbox notification to the shard manager as a wake-up for its shard, and each
/// posted-answer notification to the callers waiting here (`replies`), until the manager stops
/// (the task ends when a cast fails) or the handle is aborted.
pub fn spawn(
    mut listener: PgListener,
    manager: ActorRef<ManagerMsg>,
    replies: Arc<Notify>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match listener.try_recv().await {
                Ok(Some(n)) if n.channel() == REPLY_CHANNEL => replies.notify_waiters(),
                Ok(Some(n)) => {
                    let Ok(shard) = n.payload().parse::<i32>() else {
                        tracing::warn!(payload = n.payload(), "unreadable inbox notification");
                        continue;
                    };
                    if manager
                        .cast(ManagerMsg::Wake(Some(ShardId(shard))))
                        .is_err()
                    {
                        return;
                    }
                }
                // The connection dropped and was re-established: whatever was notified in
                // between is lost, so every owned shard reads its inbox once.
                Ok(None) => {
                    replies.notify_waiters();
                    if manager.cast(ManagerMsg::Wake(None)).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %StoreError::from(e), "inbox listener: reconnecting");
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                }
            }
        }
    })
}
