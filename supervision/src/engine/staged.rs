//! Inputs written inside a caller's own transaction: the call flow records the reps it offered
//! a call and the `RepsRung` input that tells the call actor in one commit, instead of a commit
//! for the offer and a group commit for the input after it (one fewer wait on the answer a
//! carrier is holding a lead's call for, and no offer left recorded without its input).

use serde_json::Value;

use super::{EngineHandle, SubmitError};
use crate::key::{ActorKey, ShardId};
use crate::store::{InTx, Inserted};

/// An input written in a caller's transaction, to hand to its owner once that commits.
#[derive(Debug)]
#[must_use = "hand it to `EngineHandle::deliver` after the commit"]
pub struct Staged {
    key: ActorKey,
    shard: ShardId,
    id: i64,
    local: bool,
    input: Value,
}

impl EngineHandle {
    /// Writes `input` for `key` in the caller's open transaction (on this engine's store): it
    /// is durable if, and only if, that transaction commits. `None`: `dedupe` was seen before,
    /// nothing was written. After the commit, [`EngineHandle::deliver`] hands it over at once;
    /// an instance that dies between the two leaves it to the inbox's safety-net read, and an
    /// owner elsewhere is woken by the commit itself (PostgreSQL's NOTIFY is transactional).
    pub async fn enqueue_in(
        &self,
        conn: InTx<'_>,
        key: ActorKey,
        input: Value,
        dedupe: Option<String>,
    ) -> Result<Option<Staged>, SubmitError> {
        let (item, local) = self.new_input(key, &input, dedupe, false);
        let shard = item.shard;
        let inserted = self
            .rt
            .store
            .insert_inbox_in(conn, std::slice::from_ref(&item))
            .await
            .map_err(|e| SubmitError::Unavailable(e.to_string()))?;
        Ok(match inserted.into_iter().next() {
            Some(Inserted::New { id, .. }) => Some(Staged {
                key,
                shard,
                id,
                local,
                input,
            }),
            _ => None,
        })
    }

    /// Hands a staged input to its owner here, after its transaction committed (an owner on
    /// another instance was woken by the commit).
    pub fn deliver(&self, staged: Staged) {
        if staged.local {
            self.deliver_here(staged.key, staged.shard, staged.id, staged.input);
        }
    }
}
