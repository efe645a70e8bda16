//! Texts to leads (`sms`): the do-not-call list for marketing texts, the line type when the
//! tenant asked, the caller id from the team's pool, the shared send limit, then the carrier.

use std::sync::atomic::{AtomicU64, Ordering};

use neuronx_actors::domain::compliance::{Channel, Purpose};
use neuronx_actors::effects::{FromPayload, SmsEffect};
use neuronx_adapters::loopback;
use neuronx_supervision::{EffectCall, EffectFuture, EffectHandler, EffectOutcome, EffectStatus};
use serde_json::json;

use super::{malformed, undecided, Context};
use crate::control::numbers;
use crate::send_limits::SendKind;
use crate::twilio_channel;

pub(super) struct Sms {
    pub(super) sent: AtomicU64,
    pub(super) ctx: Context,
}

impl EffectHandler for Sms {
    fn execute(&self, call: EffectCall) -> EffectFuture {
        let sid = loopback::sms_sid(self.sent.fetch_add(1, Ordering::Relaxed));
        let ctx = self.ctx.clone();
        Box::pin(async move {
            let text = match SmsEffect::from_payload(&call.payload) {
                Ok(text) => text,
                Err(e) => return malformed(e),
            };
            // The opt-out confirmation and help replies go out whatever the list says.
            let marketing = match text.purpose {
                Purpose::Marketing => true,
                Purpose::OptOutConfirmation | Purpose::HelpReply => false,
            };
            if marketing {
                match ctx.precheck(&call, &text.to, None).await {
                    Ok(check) if check.on_dnc => {
                        return twilio_channel::blocked_by_dnc(Channel::Sms)
                    }
                    Ok(_) => {}
                    Err(e) => return undecided(e),
                }
            }
            let account = match ctx.account(Context::tenant(&call)).await {
                Ok(account) => account,
                Err(e) => return undecided(e),
            };
            // Before a marketing text, when the tenant asked: the line type, once per number
            // (ADR 0035). A landline is not texted; the opportunity learns either way.
            let mut line = None;
            if let Some(account) = account.as_ref().filter(|a| marketing && a.line_type_lookup) {
                match twilio_channel::line_type(&ctx.store, account, &text.to).await {
                    Ok(found) if !found.line_type.takes_texts() => {
                        return twilio_channel::withheld(found)
                    }
                    Ok(found) => line = Some(found),
                    Err(e) => return undecided(e),
                }
            }
            // The number the lead is texted from (ADR 0043), chosen before the text waits for
            // its turn and recorded in its result.
            let caller = match account.as_deref() {
                Some(account) => {
                    match twilio_channel::caller_id(
                        &ctx.store,
                        account,
                        text.opportunity_id,
                        &text.to,
                    )
                    .await
                    {
                        Ok(caller) => Some(caller),
                        Err(e) => return undecided(e),
                    }
                }
                None => None,
            };
            if let Err(later) = ctx
                .limits
                .admit(
                    SendKind::Text,
                    Context::tenant(&call),
                    None,
                    &call.lease,
                    &call.standing,
                )
                .await
            {
                return later;
            }
            let outcome = match account {
                Some(account) => {
                    let account_from = || numbers::CallerId {
                        from: account.from.clone(),
                        by: numbers::ChosenBy::Account,
                    };
                    let caller = caller.unwrap_or_else(account_from);
                    twilio_channel::sms(&account, &ctx.public_url, &call, &text, &caller).await
                }
                None => EffectOutcome {
                    status: EffectStatus::Done,
                    result: json!({"message_sid": sid}),
                    followup: None,
                },
            };
            match line {
                Some(found) => twilio_channel::with_line_type(outcome, found),
                None => outcome,
            }
        })
    }
}
