//! The send-limit gate in front of every dial and text: per tenant and channel, and the carrier
//! account's calls per second, shared by every instance through Redis (ADR 0015).
//!
//! An effect waits here for its turn, up to `limits.max_wait_ms`, and then goes back to the
//! outbox unsent. When Redis cannot be asked it waits too: sending over a limit is worse than
//! sending late, and inputs keep being accepted meanwhile.

use std::time::Duration;

use neuronx_adapters::limits::{Admission, LimitKey, Limiter, Quota};
use neuronx_supervision::{EffectOutcome, EffectStatus, LeaseCheck, Standing, TenantId};
use serde_json::json;

use crate::config::LimitSettings;

/// How long to wait before asking an unavailable Redis again.
const RETRY_UNAVAILABLE: Duration = Duration::from_millis(250);

pub struct SendLimits {
    limiter: Limiter,
    voice: Quota,
    sms: Quota,
    account_calls: Quota,
    max_wait: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendKind {
    Dial,
    Text,
}

impl SendLimits {
    pub fn new(limiter: Limiter, s: &LimitSettings) -> anyhow::Result<Self> {
        let [voice, sms, account_calls] = s.quotas()?;
        Ok(Self {
            limiter,
            voice,
            sms,
            account_calls,
            max_wait: Duration::from_millis(s.max_wait_ms),
        })
    }

    /// Waits for this send's turn. `Err` carries the outcome to return instead of sending: the
    /// effect goes back to the outbox, unsent.
    pub async fn admit(
        &self,
        kind: SendKind,
        tenant: TenantId,
        account_sid: Option<&str>,
        lease: &LeaseCheck,
        standing: &Standing,
    ) -> Result<(), EffectOutcome> {
        let mut keys = Vec::with_capacity(2);
        match kind {
            SendKind::Dial => {
                keys.push((LimitKey::tenant_channel(tenant.0, "voice"), self.voice));
                if let Some(sid) = account_sid {
                    keys.push((LimitKey::account_calls(sid), self.account_calls));
                }
            }
            SendKind::Text => keys.push((LimitKey::tenant_channel(tenant.0, "sms"), self.sms)),
        }
        let deadline = tokio::time::Instant::now() + self.max_wait;
        let mut unavailable = None;
        let mut waited = false;
        loop {
            let pause = match self.limiter.check(&keys).await {
                // A send that waited for its turn may have been withdrawn meanwhile (a pause,
                // an opt-out): it goes back to the outbox, where the hold applies.
                Ok(Admission::Admitted) if waited && !standing.holds().await => {
                    return Err(not_sent("withdrawn while it waited for its turn"))
                }
                Ok(Admission::Admitted) if lease.valid() => return Ok(()),
                // Waiting outlived the lease (a freeze, a lost database): whoever owns the
                // shard now sends it. The slot taken is lost, which errs towards sending less.
                Ok(Admission::Admitted) => return Err(not_sent("the lease was not renewed")),
                Ok(Admission::Wait(d)) => d,
                Err(e) => {
                    if unavailable.is_none() {
                        tracing::warn!(error = %e, "send limits unavailable: sends wait");
                    }
                    unavailable = Some(e.to_string());
                    RETRY_UNAVAILABLE
                }
            };
            if tokio::time::Instant::now() + pause > deadline {
                return Err(waiting(&match unavailable {
                    Some(e) => format!("send limits unavailable: {e}"),
                    None => "send limit reached".to_owned(),
                }));
            }
            tokio::time::sleep(pause).await;
            waited = true;
        }
    }
}

fn not_sent(reason: &str) -> EffectOutcome {
    EffectOutcome {
        status: EffectStatus::RetryLater,
        result: json!({ "not_sent": reason }),
        followup: None,
    }
}

/// What an outbox row turned back unsent is waiting for, in its result's `waiting_on`: the
/// console's "texts waiting on the send limit" counts rows marked so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitingOn {
    /// The limit was reached, or the limiter (Redis) could not be asked.
    SendLimit,
}

impl WaitingOn {
    pub fn as_str(self) -> &'static str {
        match self {
            WaitingOn::SendLimit => "send_limit",
        }
    }
}

fn waiting(reason: &str) -> EffectOutcome {
    EffectOutcome {
        status: EffectStatus::RetryLater,
        result: json!({ "not_sent": reason, "waiting_on": WaitingOn::SendLimit.as_str() }),
        followup: None,
    }
}
