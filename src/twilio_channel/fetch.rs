//! The watchdog's read of a call from the carrier (`VoiceEffect::Fetch`): its status comes back
//! to the call as `CallInput::Fetched`, and a call the carrier reports ended has its rep legs
//! ended too.

use neuronx_actors::domain::call::{AnsweredBy, CallInput, CallStatus};
use neuronx_adapters::twilio::CallResource;
use neuronx_supervision::{EffectOutcome, Store, TenantId};
use serde_json::json;

use super::{done, input, Account};

/// Reads call `call_id` (`sid` at the carrier) for its watchdog. A call the carrier reports
/// ended also has every rep leg of it ended: the watchdog asks exactly when no callback came
/// that would have (an inbound caller who hung up during the greeting leaves reps offered but
/// never rung; an outbound call whose `completed` callback was lost). That update is
/// idempotent, so a retry after a crash changes nothing twice; failing, the effect is put back
/// (`Err`) before anything is reported.
pub async fn fetch(
    store: &Store,
    account: &Account,
    tenant: TenantId,
    call_id: uuid::Uuid,
    sid: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<EffectOutcome, String> {
    let (outcome, status) = read(account, sid).await;
    if status.is_some_and(CallStatus::is_terminal) {
        crate::control::reps::call_ended(store, tenant, call_id, now)
            .await
            .map_err(|e| format!("freeing the call's reps: {e}"))?;
    }
    Ok(outcome)
}

/// The carrier's record of call `sid` as the effect's outcome, with its status when it had one
/// we know. No answer, or a status we do not know: no follow-up, and the watchdog asks again or
/// gives up on its next firing.
pub(super) async fn read(account: &Account, sid: &str) -> (EffectOutcome, Option<CallStatus>) {
    match account.client.fetch_call(sid).await {
        Ok(c) => {
            let status = status_of(&c);
            let followup = status.and_then(|status| {
                input(&CallInput::Fetched {
                    status,
                    answered_by: c
                        .answered_by
                        .as_deref()
                        .and_then(|a| a.parse::<AnsweredBy>().ok()),
                    provider_sid: c.sid.clone(),
                })
            });
            (done(json!({"fetched": c.sid}), followup), status)
        }
        Err(e) => (done(json!({"error": e.to_string()}), None), None),
    }
}

fn status_of(c: &CallResource) -> Option<CallStatus> {
    use neuronx_adapters::twilio::CallStatus as Rest;
    Some(match c.status {
        Rest::Queued => CallStatus::Queued,
        Rest::Initiated => CallStatus::Initiated,
        Rest::Ringing => CallStatus::Ringing,
        Rest::InProgress => CallStatus::InProgress,
        Rest::Completed => CallStatus::Completed,
        Rest::Busy => CallStatus::Busy,
        Rest::Failed => CallStatus::Failed,
        Rest::NoAnswer => CallStatus::NoAnswer,
        Rest::Canceled => CallStatus::Canceled,
        Rest::Unknown => return None,
    })
}
