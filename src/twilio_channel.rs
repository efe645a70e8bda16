//! Voice and SMS through a tenant's Twilio-compatible account, when one is configured.
//!
//! Status callbacks point at our webhooks with the call (or opportunity) and the effect's
//! idempotency key in the query, so a callback finds its actor and the carrier simulator can
//! count creates per effect. A create whose outcome is unknown is never sent again: the call
//! actor waits for a callback and its watchdog reconciles by fetching.

use neuronx_actors::domain::call::CallInput;
use neuronx_actors::domain::compliance::Channel;
use neuronx_actors::domain::opportunity::{LineFound, LineType, OppInput};
use neuronx_actors::effects::{SmsEffect, VoiceEffect};
use neuronx_adapters::twilio::{
    ClientConfig, CreateCall, CreateMessage, HangupStatus, StatusCallbackEvent, TwilioClient,
    TwilioCredentials, TwilioError, DEFAULT_BASE_URL,
};
use neuronx_supervision::{EffectCall, EffectOutcome, EffectStatus, Store, TenantId};
use serde_json::{json, Value};

use crate::control::numbers::{self, CallerId, ChosenBy};
use crate::secrets::Keyring;
use crate::tenant_data::{self, StoredCredentials};
use neuronx_adapters::outbound::OutboundGuard;

mod fetch;
pub mod line_types;

pub use fetch::fetch;

/// What a Twilio effect needs: the tenant's account and where our webhooks live.
pub struct Account {
    pub client: TwilioClient,
    pub from: String,
    pub tenant: TenantId,
    /// The tenant asked for the line type of a number before its first marketing text.
    pub line_type_lookup: bool,
}

/// The tenant's account, if it configured one; errors mean "cannot tell now".
pub async fn account(
    store: &Store,
    keyring: &Keyring,
    guard: &OutboundGuard,
    tenant: TenantId,
) -> Result<Option<Account>, String> {
    let Some(StoredCredentials {
        account_sid,
        from_number,
        base_url,
        sealed,
        line_type_lookup,
    }) = tenant_data::get_credentials(store, tenant, "twilio")
        .await
        .map_err(|e| e.to_string())?
    else {
        return Ok(None);
    };
    let auth_token = keyring.open(&sealed).map_err(|e| e.to_string())?;
    let base = base_url.as_deref().unwrap_or(DEFAULT_BASE_URL);
    let client = TwilioClient::new(
        base,
        TwilioCredentials {
            account_sid,
            auth_token,
        },
        ClientConfig::default(),
        guard,
    )
    .map_err(|e| e.to_string())?;
    Ok(Some(Account {
        client,
        from: from_number,
        tenant,
        line_type_lookup,
    }))
}

/// The number a lead's dial or text goes from (local presence, ADR 0043): its opportunity's
/// team's pool, else the tenant-wide numbers, else the account's `from`; in the lead's area
/// code, else its state, else any. Read in the effect's own flow, before anything is sent:
/// `Err` (the pool cannot be read now) sends nothing and the effect is tried again.
pub async fn caller_id(
    store: &Store,
    account: &Account,
    opportunity: uuid::Uuid,
    lead: &str,
) -> Result<CallerId, String> {
    let (team, pool) = numbers::pool_for(store, account.tenant, opportunity)
        .await
        .map_err(|e| e.to_string())?;
    Ok(numbers::choose(lead, team, &pool, &account.from))
}

/// `outcome` with the caller id it went (or would have gone) from in its result, so the attempt
/// records which number the lead saw (`from`, and `caller_id`: why that one).
fn with_caller_id(mut outcome: EffectOutcome, caller: &CallerId) -> EffectOutcome {
    if let Value::Object(map) = &mut outcome.result {
        map.insert("from".into(), Value::String(caller.from.clone()));
        map.insert("caller_id".into(), Value::String(caller.by.as_str().into()));
    }
    outcome
}

/// The line type of `phone`, from the tenant's cache or else the carrier's lookup (kept when it
/// answers). `Err` only when the cache cannot be read: nothing was sent or paid, the effect is
/// tried again. A failed lookup is `Unknown` with its reason (logged without the account's
/// secrets), never an error: a lookup never holds a text back.
pub async fn line_type(store: &Store, account: &Account, phone: &str) -> Result<LineFound, String> {
    let tenant = account.tenant;
    let known = line_types::cached(store, tenant, phone)
        .await
        .map_err(|e| e.to_string())?;
    if let Some((line_type, carrier)) = known {
        return Ok(LineFound {
            line_type,
            carrier,
            lookup_error: None,
            text_withheld: false,
        });
    }
    match account.client.lookup_line_type(phone).await {
        Ok(answer) => {
            let found = line_types::found(&answer);
            let carrier = found.carrier.as_deref();
            if let Err(e) =
                line_types::remember(store, tenant, phone, found.line_type, carrier).await
            {
                tracing::warn!(%tenant, error = %e, "line type not kept; the next text asks again");
            }
            Ok(found)
        }
        Err(e) => {
            // The error's text is the carrier's answer or the transport's: the token travels in
            // a header and no error carries it.
            tracing::warn!(%tenant, error = %e, "line type lookup failed; treated as unknown");
            Ok(LineFound {
                line_type: LineType::Unknown,
                carrier: None,
                lookup_error: Some(e.to_string()),
                text_withheld: false,
            })
        }
    }
}

/// The outcome of a text withheld because the line takes none; the opportunity records why.
pub fn withheld(found: LineFound) -> EffectOutcome {
    let result = json!({"withheld": format!("the number is a {}", found.line_type)});
    let found = LineFound {
        text_withheld: true,
        ..found
    };
    done(result, input(&OppInput::LineTypeFound(found)))
}

/// `outcome` with the line type reported to the opportunity (a text's own outcome carries no
/// input).
pub fn with_line_type(mut outcome: EffectOutcome, found: LineFound) -> EffectOutcome {
    outcome.followup = input(&OppInput::LineTypeFound(found));
    outcome
}

fn done(result: Value, followup: Option<Value>) -> EffectOutcome {
    EffectOutcome {
        status: EffectStatus::Done,
        result,
        followup,
    }
}

fn input<T: serde::Serialize>(v: &T) -> Option<Value> {
    serde_json::to_value(v).ok()
}

fn callback(public_url: &str, account: &Account, route: &str, query: &[(&str, String)]) -> String {
    let query = serde_urlencoded::to_string(query).unwrap_or_default();
    format!(
        "{public_url}/webhooks/twilio/{}/{route}?{query}",
        account.tenant
    )
}

/// Runs a voice effect through the account; a dial goes from `caller` (`None`: the account's
/// `from`), recorded in its result.
pub async fn voice(
    account: &Account,
    public_url: &str,
    call: &EffectCall,
    op: &VoiceEffect,
    caller: Option<&CallerId>,
) -> EffectOutcome {
    match op {
        VoiceEffect::Dial {
            to,
            call_id,
            opportunity_id,
            machine_detection,
            ring_timeout_seconds,
            agent,
        } => {
            let status_callback = callback(
                public_url,
                account,
                "voice/status",
                &[
                    ("call", call_id.to_string()),
                    ("opp", opportunity_id.to_string()),
                    ("effect", call.idem_key.clone()),
                ],
            );
            // Twilio asks this URL what the answered call does (the call flow: voicemail for a
            // machine, the team's reps for a person; `usecases::call_flow`), with `AnsweredBy`.
            // Agent first, the rep's phone rings and its answer is asked to accept the lead.
            let mut ids = vec![
                ("call", call_id.to_string()),
                ("opp", opportunity_id.to_string()),
            ];
            let (dialled, hook) = match agent {
                None => (to.clone(), "voice/answer"),
                Some(a) => {
                    ids.push(("rep", a.rep.clone()));
                    (a.phone.clone(), "voice/agent")
                }
            };
            let answer = callback(public_url, account, hook, &ids);
            let account_from = CallerId {
                from: account.from.clone(),
                by: ChosenBy::Account,
            };
            // The number chosen for the lead: agent first the rep's phone shows it, and the
            // lead's `<Dial>` (without `callerId`) shows the call's `From` to the lead too.
            let caller = caller.unwrap_or(&account_from);
            let request = CreateCall {
                to: dialled,
                from: caller.from.clone(),
                url: Some(answer),
                status_callback,
                status_callback_events: StatusCallbackEvent::ALL.to_vec(),
                machine_detection: machine_detection.then(|| "Enable".into()),
                timeout_seconds: Some(*ring_timeout_seconds),
                ..CreateCall::default()
            };
            let outcome = match account
                .client
                .create_call_while(&request, || call.standing.holds())
                .await
            {
                Err(TwilioError::Withdrawn) => withdrawn(),
                Ok(c) => done(
                    json!({"call_sid": c.sid}),
                    input(&CallInput::Dialed {
                        provider_sid: c.sid,
                    }),
                ),
                Err(TwilioError::UnknownOutcome(reason)) => EffectOutcome {
                    status: EffectStatus::Unknown,
                    result: json!({"unknown_outcome": reason}),
                    followup: input(&CallInput::DialUnknown { reason }),
                },
                Err(e) => done(
                    json!({"error": e.to_string()}),
                    input(&CallInput::DialFailed {
                        reason: e.to_string(),
                    }),
                ),
            };
            with_caller_id(outcome, caller)
        }
        VoiceEffect::Hangup { provider_sid, .. } => {
            match account
                .client
                .hangup_call(provider_sid, HangupStatus::Completed)
                .await
            {
                Ok(c) => done(json!({"hung_up": c.sid}), None),
                Err(e) => done(json!({"error": e.to_string()}), None),
            }
        }
        // Answered by the dispatcher before any channel (`channels::pick_rep`).
        VoiceEffect::PickRep { .. } => {
            done(json!({"error": "pick_rep is not a carrier request"}), None)
        }
        // The dispatcher sends it through `fetch`, which can also free the call's reps.
        VoiceEffect::Fetch { provider_sid, .. } => fetch::read(account, provider_sid).await.0,
    }
}

/// A text made since this long before its attempt began counts as the attempt's own (the
/// provider's clock and ours may disagree by this much).
const TEXT_CLOCK_SLACK: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// A text whose create had an unknown outcome is looked for: the newest texts from our number to
/// the lead with the same body, made since the attempt began. Found, it was sent: recorded with
/// its sid like any other (its delivery status reaches the timeline). Not found, or the lookup
/// failed: still unknown and never sent again, since the provider's list may lag its creates
/// and a lead must not get a text twice.
async fn settle_unknown_text(
    account: &Account,
    request: &CreateMessage,
    started: chrono::DateTime<chrono::Utc>,
    reason: String,
) -> EffectOutcome {
    let since = started - TEXT_CLOCK_SLACK;
    let lookup = match account
        .client
        .list_messages(&request.to, &request.from)
        .await
    {
        Ok(found) => {
            let ours = found.into_iter().find(|m| {
                m.body.as_deref() == Some(request.body.as_str())
                    && m.date_created
                        .as_deref()
                        .and_then(|d| chrono::DateTime::parse_from_rfc2822(d).ok())
                        .is_some_and(|at| at >= since)
            });
            if let Some(m) = ours {
                tracing::info!(sid = %m.sid, "a text with an unknown outcome was found sent");
                return done(json!({"message_sid": m.sid, "found_after": reason}), None);
            }
            "not_found".to_owned()
        }
        Err(e) => format!("failed: {e}"),
    };
    EffectOutcome {
        status: EffectStatus::Unknown,
        result: json!({"unknown_outcome": reason, "lookup": lookup}),
        followup: None,
    }
}

/// Sends an SMS through the account from `caller`, recorded in its result. An unknown outcome
/// is looked up (`settle_unknown_text`), never resent.
pub async fn sms(
    account: &Account,
    public_url: &str,
    call: &EffectCall,
    text: &SmsEffect,
    caller: &CallerId,
) -> EffectOutcome {
    with_caller_id(
        send_sms(account, public_url, call, text, caller).await,
        caller,
    )
}

async fn send_sms(
    account: &Account,
    public_url: &str,
    call: &EffectCall,
    text: &SmsEffect,
    caller: &CallerId,
) -> EffectOutcome {
    let started = chrono::Utc::now();
    let request = CreateMessage {
        to: text.to.clone(),
        from: caller.from.clone(),
        body: text.body.clone(),
        status_callback: callback(
            public_url,
            account,
            "sms/status",
            &[
                ("opp", text.opportunity_id.to_string()),
                ("effect", call.idem_key.clone()),
            ],
        ),
    };
    match account
        .client
        .create_message_while(&request, || call.standing.holds())
        .await
    {
        Err(TwilioError::Withdrawn) => withdrawn(),
        Ok(m) => done(json!({"message_sid": m.sid}), None),
        Err(TwilioError::UnknownOutcome(reason)) => {
            settle_unknown_text(account, &request, started, reason).await
        }
        // Nothing was sent: the opportunity is told (its timeline shows it, and a refused
        // opt-out confirmation is not counted as sent).
        Err(e) => {
            let code = match &e {
                TwilioError::Api { code, .. } => *code,
                _ => None,
            };
            let refused = OppInput::SmsRefused {
                purpose: text.purpose,
                code,
                reason: e.to_string(),
            };
            // The code is kept with the effect too: the thread shows it on the refused text.
            done(
                json!({"error": e.to_string(), "code": code}),
                input(&refused),
            )
        }
    }
}

/// Sends a notice to a person (not the lead) through the account: no delivery callback, since
/// the lead's timeline tracks the lead's texts only. An unknown outcome is recorded, never
/// resent.
pub async fn notice_sms(
    account: &Account,
    call: &EffectCall,
    to: &str,
    body: &str,
) -> EffectOutcome {
    let request = CreateMessage {
        to: to.to_owned(),
        from: account.from.clone(),
        body: body.to_owned(),
        status_callback: String::new(),
    };
    match account
        .client
        .create_message_while(&request, || call.standing.holds())
        .await
    {
        Err(TwilioError::Withdrawn) => withdrawn(),
        Ok(m) => done(json!({"message_sid": m.sid}), None),
        Err(TwilioError::UnknownOutcome(reason)) => EffectOutcome {
            status: EffectStatus::Unknown,
            result: json!({"unknown_outcome": reason}),
            followup: None,
        },
        Err(e) => done(json!({"error": e.to_string()}), None),
    }
}

/// A send that waited to be retried and was paused or canceled meanwhile: back to the outbox
/// unsent, where the pause holds it or the cancel ends it.
fn withdrawn() -> EffectOutcome {
    EffectOutcome {
        status: EffectStatus::RetryLater,
        result: json!({"not_sent": "withdrawn while it waited to be retried"}),
        followup: None,
    }
}

/// The follow-up for an effect refused at dispatch because the number is on the tenant's
/// do-not-call list.
pub fn blocked_by_dnc(channel: Channel) -> EffectOutcome {
    let reason = "the number is on the tenant's do-not-call list".to_owned();
    done(
        json!({"blocked": reason}),
        input(&OppInput::EffectBlocked { channel, reason }),
    )
}
