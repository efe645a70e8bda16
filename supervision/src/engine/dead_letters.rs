//! An operator's retry of a dead letter, for the engine's callers.

use serde_json::Value;

use super::{EngineHandle, SubmitError};
use crate::key::ActorKey;
use crate::store::{Inserted, Retried};

/// What became of a retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryOutcome {
    /// The input is back in the inbox and the letter is gone, in one transaction; the owner
    /// applies it (here now, or wherever the shard is held).
    Resubmitted,
    /// An earlier retry of this letter resubmitted its input already; the letter is gone now.
    AlreadyResubmitted,
    /// No such letter: someone handled it meanwhile.
    Gone,
}

impl EngineHandle {
    /// Puts dead letter `letter` of `key`'s tenant back: its `input` becomes durable in the inbox
    /// and the letter leaves the list atomically, so a crash cannot leave a letter listed whose
    /// input was resubmitted, nor drop one that was not. Deduplicated on the letter's id.
    pub async fn retry_dead_letter(
        &self,
        key: ActorKey,
        letter: i64,
        input: Value,
    ) -> Result<RetryOutcome, SubmitError> {
        let dedupe = format!("dead-letter-retry/{letter}");
        let (item, local) = self.new_input(key, &input, Some(dedupe), false);
        let shard = item.shard;
        let retry = self.rt.store.retry_dead_letter(key.tenant, letter, item);
        let retried = super::within_ingest_timeout(retry).await?;
        Ok(match retried {
            Retried::Resubmitted(Inserted::New { id, .. }) => {
                if local {
                    self.deliver_here(key, shard, id, input);
                }
                RetryOutcome::Resubmitted
            }
            Retried::Resubmitted(Inserted::Duplicate) => RetryOutcome::AlreadyResubmitted,
            Retried::Gone => RetryOutcome::Gone,
        })
    }
}
