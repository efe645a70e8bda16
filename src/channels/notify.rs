//! Escalation notices to people. `notify` finds whom to tell (`notifications::recipients`) and
//! answers the opportunity `NotifyPeople`; the opportunity then asks for one `notify_sms` and
//! one `email` effect per person, run here, each once:
//!
//! | channel | what it does | failures |
//! |---|---|---|
//! | `notify_sms` | the do-not-call check (no compliance gate: an employee is not a lead), the tenant's send limit, then the text through its Twilio account (loopback without one) | as the lead's texts: refused recorded, unknown never resent |
//! | `email` | the tenant's SMTP server, the password opened from the keyring | 5xx: recorded, not retried; no connection or 4xx: back to the outbox after a pause, up to `EMAIL_ATTEMPTS` claims; written without an answer: `unknown`, never resent |

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use neuronx_actors::domain::opportunity::{NoticeChannel, OppInput};
use neuronx_actors::effects::{FromPayload, NoticeEmail, NoticeSms, NotifyEffect};
use neuronx_adapters::loopback;
use neuronx_adapters::smtp::{self, Email, SmtpError};
use neuronx_supervision::{EffectCall, EffectFuture, EffectHandler, EffectOutcome, EffectStatus};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{malformed, undecided, Context};
use crate::notifications::{audience, compose, console_link};
use crate::send_limits::SendKind;
use crate::tenant_data;
use crate::twilio_channel;

/// Claims of one email before a server that keeps failing (no connection, 4xx) is given up on.
pub const EMAIL_ATTEMPTS: i32 = 10;

/// Per SMTP step (connect, each command, the message).
pub(super) const SMTP_TIMEOUT: Duration = Duration::from_secs(10);

/// The pause before an email that found its server failing goes back to the outbox: 200 ms,
/// doubling per claim, at most 5 s (within the dispatcher's 10 s stop, so a stopping instance
/// still records it).
pub(super) fn backoff(attempt: i32) -> Duration {
    let doublings = u32::try_from(attempt.saturating_sub(1)).unwrap_or(0).min(5);
    Duration::from_millis(200u64 << doublings).min(Duration::from_secs(5))
}

fn done(result: Value, followup: Option<Value>) -> EffectOutcome {
    EffectOutcome {
        status: EffectStatus::Done,
        result,
        followup,
    }
}

/// A notice that will not arrive, told to its opportunity (a `notified` entry with the error).
fn failed(result: Value, recipient: &str, via: NoticeChannel, reason: String) -> EffectOutcome {
    let input = OppInput::NoticeFailed {
        recipient: recipient.to_owned(),
        via,
        reason,
    };
    done(result, serde_json::to_value(input).ok())
}

/// Finds whom an escalation tells and hands them to the opportunity.
pub(super) struct Notify {
    pub(super) ctx: Context,
}

impl EffectHandler for Notify {
    fn execute(&self, call: EffectCall) -> EffectFuture {
        let ctx = self.ctx.clone();
        Box::pin(async move {
            let notice = match NotifyEffect::from_payload(&call.payload) {
                Ok(notice) => notice,
                Err(e) => return malformed(e),
            };
            let tenant = call.key.tenant;
            let now = ctx.clock.now();
            let audience = match audience(
                &ctx.store,
                tenant,
                notice.opportunity_id,
                notice.assignee.as_deref(),
                now,
            )
            .await
            {
                Ok(audience) => audience,
                Err(e) => return undecided(e.to_string()),
            };
            // In hours someone sees a reply on the console; nobody is texted.
            if notice.after_hours_only && audience.on_call {
                return done(json!({"skipped": "someone is on call"}), None);
            }
            let people = audience.recipients;
            let names: Vec<&str> = people.iter().map(|p| p.name.as_str()).collect();
            tracing::info!(key = %call.key, queue = %notice.queue, recipients = ?names, "escalation notice");
            let result = json!({"queue": notice.queue, "recipients": names});
            let input = OppInput::NotifyPeople {
                queue: notice.queue,
                reason: notice.reason,
                recipients: people,
            };
            done(result, serde_json::to_value(input).ok())
        })
    }
}

/// A notice by SMS to one person.
pub(super) struct NoticeSmsHandler {
    pub(super) sent: AtomicU64,
    pub(super) ctx: Context,
}

impl EffectHandler for NoticeSmsHandler {
    fn execute(&self, call: EffectCall) -> EffectFuture {
        let sid = loopback::sms_sid(self.sent.fetch_add(1, Ordering::Relaxed));
        let ctx = self.ctx.clone();
        Box::pin(async move {
            let notice = match NoticeSms::from_payload(&call.payload) {
                Ok(notice) => notice,
                Err(e) => return malformed(e),
            };
            // Not marketing and not to the lead, so no gate; but a number on the list is never
            // texted, whoever's it is.
            match ctx.precheck(&call, &notice.to, None).await {
                Ok(check) if check.on_dnc => {
                    let reason = "the number is on the do-not-call list".to_owned();
                    let result = json!({"blocked": "do-not-call"});
                    return failed(result, &notice.recipient, NoticeChannel::Sms, reason);
                }
                Ok(_) => {}
                Err(e) => return undecided(e),
            }
            let tenant = Context::tenant(&call);
            let account = match ctx.account(tenant).await {
                Ok(account) => account,
                Err(e) => return undecided(e),
            };
            if let Err(later) = ctx
                .limits
                .admit(SendKind::Text, tenant, None, &call.lease, &call.standing)
                .await
            {
                return later;
            }
            let link = console_link(&ctx.public_url, notice.opportunity_id);
            let text = compose(&notice.recipient, &notice.lead, &notice.reason, &link).sms;
            let outcome = match account {
                Some(account) => {
                    twilio_channel::notice_sms(&account, &call, &notice.to, &text).await
                }
                None => return done(json!({"message_sid": sid}), None),
            };
            // A text the carrier refused will not arrive: the opportunity says so.
            match outcome.result.get("error").and_then(Value::as_str) {
                Some(error) if outcome.status == EffectStatus::Done => {
                    let reason = error.to_owned();
                    failed(
                        outcome.result,
                        &notice.recipient,
                        NoticeChannel::Sms,
                        reason,
                    )
                }
                _ => outcome,
            }
        })
    }
}

/// A notice by email to one person, through the tenant's SMTP server.
pub(super) struct NoticeEmailHandler {
    pub(super) ctx: Context,
}

/// The name we give in EHLO: our public host.
pub(super) fn hello_name(public_url: &str) -> String {
    url::Url::parse(public_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| "localhost".into())
}

/// The same for every claim of one effect, so a mailbox that got it twice can tell.
pub(super) fn message_id(idem_key: &str, host: &str) -> String {
    let digest = hex::encode(Sha256::digest(idem_key.as_bytes()));
    format!("{}@{host}", &digest[..32])
}

impl EffectHandler for NoticeEmailHandler {
    fn execute(&self, call: EffectCall) -> EffectFuture {
        let ctx = self.ctx.clone();
        Box::pin(async move {
            let notice = match NoticeEmail::from_payload(&call.payload) {
                Ok(notice) => notice,
                Err(e) => return malformed(e),
            };
            let stored = match tenant_data::get_smtp(&ctx.store, Context::tenant(&call)).await {
                Ok(Some(stored)) => stored,
                Ok(None) => {
                    return done(json!({"not_sent": "the tenant has no smtp server"}), None)
                }
                Err(e) => return undecided(e.to_string()),
            };
            let server = match stored.server(&ctx.keyring, SMTP_TIMEOUT) {
                Ok(server) => server,
                Err(e) => return undecided(e.to_string()),
            };
            let link = console_link(&ctx.public_url, notice.opportunity_id);
            let text = compose(&notice.recipient, &notice.lead, &notice.reason, &link);
            let hello = hello_name(&ctx.public_url);
            let email = Email {
                from: stored.from_email,
                from_name: stored.from_name,
                to: notice.to.clone(),
                to_name: Some(notice.recipient.clone()),
                subject: text.subject,
                body: text.body,
                message_id: message_id(&call.idem_key, &hello),
                headers: Vec::new(),
            };
            match smtp::send(&server, &ctx.guard, &hello, &email).await {
                Ok(answer) => done(json!({"sent": notice.to, "answer": answer}), None),
                Err(e @ SmtpError::RecipientRefused { .. }) => {
                    let reason = e.to_string();
                    tracing::warn!(key = %call.key, recipient = %notice.recipient, %reason, "notice email refused");
                    let result = json!({"error": reason, "permanent": true});
                    failed(result, &notice.recipient, NoticeChannel::Email, reason)
                }
                Err(SmtpError::Permanent(reason)) => {
                    tracing::warn!(key = %call.key, recipient = %notice.recipient, %reason, "notice email refused");
                    let result = json!({"error": reason, "permanent": true});
                    failed(result, &notice.recipient, NoticeChannel::Email, reason)
                }
                Err(SmtpError::Unknown(reason)) => EffectOutcome {
                    status: EffectStatus::Unknown,
                    result: json!({"unknown_outcome": reason}),
                    followup: None,
                },
                Err(SmtpError::Transient(reason)) if call.attempt >= EMAIL_ATTEMPTS => {
                    tracing::warn!(key = %call.key, recipient = %notice.recipient, %reason, "notice email given up");
                    let result = json!({"error": reason, "gave_up_after": call.attempt});
                    failed(result, &notice.recipient, NoticeChannel::Email, reason)
                }
                Err(SmtpError::Transient(reason)) => {
                    tracing::info!(key = %call.key, attempt = call.attempt, %reason, "notice email not sent; tried again");
                    tokio::time::sleep(backoff(call.attempt)).await;
                    EffectOutcome {
                        status: EffectStatus::RetryLater,
                        result: json!({"not_sent": reason, "attempt": call.attempt}),
                        followup: None,
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pause_doubles_to_five_seconds() {
        let ms: Vec<u128> = (1..=8).map(|a| backoff(a).as_millis()).collect();
        assert_eq!(ms, [200, 400, 800, 1_600, 3_200, 5_000, 5_000, 5_000]);
        assert_eq!(backoff(0), Duration::from_millis(200));
    }

    #[test]
    fn a_message_id_is_stable_per_effect() {
        let a = message_id("t/opportunity/x/3/1", "nx.example.com");
        assert_eq!(a, message_id("t/opportunity/x/3/1", "nx.example.com"));
        assert_ne!(a, message_id("t/opportunity/x/3/2", "nx.example.com"));
        assert!(a.ends_with("@nx.example.com") && a.len() == 32 + 15, "{a}");
        assert_eq!(
            hello_name("https://nx.example.com:8443/x"),
            "nx.example.com"
        );
        assert_eq!(hello_name("not a url"), "localhost");
    }
}
