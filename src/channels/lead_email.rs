//! `lead_email`: the playbook's email to a lead, through the tenant's SMTP server (ADR 0049).
//!
//! Before it sends, the handler reads what may have changed since the transition asked for it:
//! the opportunity (an unsubscribe or a bounce meanwhile: not sent), the tenant's postal
//! address (none: not sent, CAN-SPAM), the SMTP server and the keyring that signs the link.
//! Then it adds the footer, the RFC 8058 headers and, when the tenant receives email, the
//! reply address (`Reply-To`, and the `mailto:` of `List-Unsubscribe`), and sends once:
//!
//! | SMTP outcome | outbox | follow-up |
//! |---|---|---|
//! | accepted | `done` | `EmailAccepted` |
//! | RCPT TO refused 5xx, the address's fault (5.1.x, 5.2.1, bare 550) | `done` | `EmailBounced`: the address is marked invalid |
//! | any other 5xx (5.7.x policy, 5.2.2 full, the message) | `done` | `EmailNotSent` |
//! | no connection, 4xx | `RetryLater` after a pause, up to `EMAIL_ATTEMPTS` claims | then `EmailNotSent` (given up) |
//! | written without an answer | `unknown`, never resent | none |

use neuronx_actors::domain::compliance::{classify_refusal, Refusal};
use neuronx_actors::domain::opportunity::{EmailFailure, OppInput, Opportunity};
use neuronx_actors::effects::{FromPayload, LeadEmail};
use neuronx_actors::opportunity as opp;
use neuronx_adapters::smtp::{self, Email, SmtpError};
use neuronx_supervision::{EffectCall, EffectFuture, EffectHandler, EffectOutcome, EffectStatus};
use serde_json::{json, Value};
use uuid::Uuid;

use super::notify::{backoff, hello_name, message_id, EMAIL_ATTEMPTS, SMTP_TIMEOUT};
use super::{malformed, undecided, Context};
use crate::tenant_data;
use crate::{inbound_email, lead_email};

pub(super) struct LeadEmailHandler {
    pub(super) ctx: Context,
}

fn done(result: Value, input: Option<OppInput>) -> EffectOutcome {
    EffectOutcome {
        status: EffectStatus::Done,
        result,
        followup: input.and_then(|i| serde_json::to_value(i).ok()),
    }
}

fn not_sent(email_id: Uuid, why: EmailFailure, detail: String) -> EffectOutcome {
    let result = json!({"not_sent": why, "error": detail});
    let input = OppInput::EmailNotSent {
        email_id,
        why,
        detail,
    };
    done(result, Some(input))
}

/// Whether the lead may still be mailed at `to`: an unsubscribe or a bounce that came while
/// the email waited wins.
fn still_wanted(state: &Opportunity, to: &str) -> bool {
    !state.email.unsubscribed && state.email.bounced.as_deref() != Some(to)
}

impl EffectHandler for LeadEmailHandler {
    fn execute(&self, call: EffectCall) -> EffectFuture {
        let ctx = self.ctx.clone();
        Box::pin(async move {
            let email = match LeadEmail::from_payload(&call.payload) {
                Ok(email) => email,
                Err(e) => return malformed(e),
            };
            let tenant = Context::tenant(&call);
            let id = email.email_id;
            let store = &ctx.store;
            match store
                .get_actor(tenant, opp::KIND.as_str(), email.opportunity_id)
                .await
            {
                Ok(Some(row)) => match serde_json::from_value::<Opportunity>(row.state) {
                    Ok(state) if !still_wanted(&state, &email.to) => {
                        let why = EmailFailure::Suppressed;
                        return not_sent(id, why, why.describe().to_owned());
                    }
                    Ok(_) => {}
                    Err(e) => return undecided(e.to_string()),
                },
                Ok(None) => return undecided("the opportunity is missing".to_owned()),
                Err(e) => return undecided(e.to_string()),
            }
            // An unsubscribe or a bounce on any of the tenant's leads binds this one too.
            match lead_email::is_suppressed(store, tenant, &email.to).await {
                Ok(true) => {
                    let why = EmailFailure::Suppressed;
                    return not_sent(id, why, why.describe().to_owned());
                }
                Ok(false) => {}
                Err(e) => return undecided(e.to_string()),
            }
            let postal = match lead_email::postal_address(store, tenant).await {
                Ok(Some(postal)) => postal,
                Ok(None) => {
                    let why = EmailFailure::NoPostalAddress;
                    return not_sent(id, why, why.describe().to_owned());
                }
                Err(e) => return undecided(e.to_string()),
            };
            let stored = match tenant_data::get_smtp(store, tenant).await {
                Ok(Some(stored)) => stored,
                Ok(None) => {
                    let why = EmailFailure::NoSmtpServer;
                    return not_sent(id, why, why.describe().to_owned());
                }
                Err(e) => return undecided(e.to_string()),
            };
            let token =
                match lead_email::token(&ctx.keyring, tenant, email.opportunity_id, &email.to) {
                    Ok(token) => token,
                    Err(e) => return not_sent(id, EmailFailure::NoSigningKey, e.to_string()),
                };
            let server = match stored.server(&ctx.keyring, SMTP_TIMEOUT) {
                Ok(server) => server,
                Err(e) => return undecided(e.to_string()),
            };
            // With a reply domain, the lead's answer comes back to the thread (ADR 0052).
            let reply_to = match inbound_email::get(store, tenant).await {
                Ok(inbound) => inbound.and_then(|i| i.reply_domain).and_then(|domain| {
                    inbound_email::reply_address(
                        &ctx.keyring,
                        tenant,
                        email.opportunity_id,
                        &domain,
                    )
                    .ok()
                }),
                Err(e) => return undecided(e.to_string()),
            };
            let url = lead_email::unsubscribe_url(&ctx.public_url, &token);
            let mailto = reply_to.as_deref().map(inbound_email::unsubscribe_mailto);
            let mut headers = lead_email::unsubscribe_headers(&url, mailto.as_deref());
            if let Some(reply_to) = reply_to {
                headers.push(("Reply-To".to_owned(), reply_to));
            }
            let hello = hello_name(&ctx.public_url);
            let message = Email {
                from: stored.from_email,
                from_name: stored.from_name,
                to: email.to.clone(),
                to_name: Some(email.name.clone()).filter(|n| !n.trim().is_empty()),
                subject: email.subject,
                body: lead_email::with_footer(&email.body, &postal, &url),
                message_id: message_id(&call.idem_key, &hello),
                headers,
            };
            match smtp::send(&server, &ctx.guard, &hello, &message).await {
                Ok(answer) => {
                    let result = json!({"sent": email.to, "answer": answer});
                    done(
                        result,
                        Some(OppInput::EmailAccepted {
                            email_id: id,
                            answer,
                        }),
                    )
                }
                Err(SmtpError::RecipientRefused { code, reason }) => {
                    match classify_refusal(code, &reason) {
                        Refusal::HardBounce => {
                            tracing::info!(key = %call.key, code, "lead email bounced");
                            // No lead of the tenant is emailed at it again. Written before the
                            // bounce is reported: a crash between them sends nothing twice.
                            if let Err(e) = lead_email::suppress(
                                store,
                                tenant,
                                &email.to,
                                lead_email::Suppression::Bounced,
                            )
                            .await
                            {
                                tracing::warn!(key = %call.key, error = %e, "bounce not remembered for the tenant");
                            }
                            let result = json!({"error": reason, "code": code, "bounced": true});
                            let input = OppInput::EmailBounced {
                                email_id: id,
                                address: email.to,
                                code,
                                reason,
                            };
                            done(result, Some(input))
                        }
                        Refusal::Soft => not_sent(id, EmailFailure::MailboxFull, reason),
                        Refusal::SenderSide => not_sent(id, EmailFailure::Refused, reason),
                    }
                }
                Err(SmtpError::Permanent(reason)) => {
                    tracing::warn!(key = %call.key, %reason, "lead email refused");
                    not_sent(id, EmailFailure::Refused, reason)
                }
                Err(SmtpError::Unknown(reason)) => EffectOutcome {
                    status: EffectStatus::Unknown,
                    result: json!({"unknown_outcome": reason}),
                    followup: None,
                },
                Err(SmtpError::Transient(reason)) if call.attempt >= EMAIL_ATTEMPTS => {
                    tracing::warn!(key = %call.key, %reason, "lead email given up");
                    not_sent(id, EmailFailure::GaveUp, reason)
                }
                Err(SmtpError::Transient(reason)) => {
                    tracing::info!(key = %call.key, attempt = call.attempt, %reason, "lead email not sent; tried again");
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
