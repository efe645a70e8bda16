//! The opportunity actor: hosts one sales opportunity's state machine on the durable runtime.
//! Its calls are child actors on the same shard; its SMS and escalation notices leave through
//! the outbox.

use chrono::{DateTime, Utc};
use neuronx_supervision::{
    ActorKey, ActorKind, Applied, Changes, Entity, KeyType, Lookup, OutboxHold, Rejected, Summary,
    TenantId,
};
use uuid::Uuid;

use std::sync::Arc;

use crate::call;
use crate::convert::{rejected, timeline, timers, to_json};
use crate::domain::call::CallInput;
use crate::domain::compliance;
use crate::domain::opportunity::{
    self as rules, OppEffect, OppInput, OppReply, OppTimer, Opportunity, Rejection,
};
use crate::effects::{Effect, LeadEmail, NoticeEmail, NoticeSms, NotifyEffect, SmsEffect};
use crate::playbooks::Playbooks;

pub const KIND: ActorKind = ActorKind("opportunity");

/// An opportunity is found by its contact's phone number (E.164): an inbound text or call from
/// that number reaches the newest opportunity with it.
pub const PHONE_LOOKUP: KeyType = KeyType("phone");

/// Opportunity ids derive from the tenant and the caller's external id, so creating the same
/// lead twice lands on the same actor and is idempotent without a lookup table.
pub fn id_for(tenant: TenantId, external_id: &str) -> Uuid {
    Uuid::new_v5(&tenant.0, format!("opportunity:{external_id}").as_bytes())
}

pub fn key(tenant: TenantId, id: Uuid) -> ActorKey {
    ActorKey::root(tenant, KIND, id)
}

pub struct OpportunityEntity {
    playbooks: Playbooks,
    compliance: Arc<compliance::Rules>,
}

impl OpportunityEntity {
    pub fn new(playbooks: Playbooks, compliance: Arc<compliance::Rules>) -> Self {
        Self {
            playbooks,
            compliance,
        }
    }
}

fn code(r: &Rejection) -> &'static str {
    match r {
        Rejection::NotFound => "not_found",
        Rejection::AlreadyPaused => "already_paused",
        Rejection::NotPaused => "not_paused",
        Rejection::Paused { .. } => "paused",
        Rejection::Terminal { .. } => "terminal_stage",
        Rejection::IllegalTransition { .. } => "illegal_transition",
        Rejection::InvalidField { .. } => "invalid_field",
        Rejection::PlaybookMismatch { .. } => "playbook_mismatch",
        Rejection::UnknownValue { .. } => "unknown_value",
        Rejection::OptedOut { .. } => "opted_out",
        Rejection::CallLive { .. } => "call_live",
        Rejection::CallRefused { .. } => "call_refused",
        Rejection::SmsRefused { .. } => "sms_refused",
        Rejection::EmailRefused { .. } => "email_refused",
        Rejection::NotTakenOver => "not_taken_over",
    }
}

impl Entity for OpportunityEntity {
    type State = Opportunity;
    type Input = OppInput;

    fn kind(&self) -> ActorKind {
        KIND
    }

    fn apply(
        &self,
        key: &ActorKey,
        state: Option<&Opportunity>,
        input: OppInput,
        now: DateTime<Utc>,
    ) -> Result<Applied<Opportunity>, Rejected> {
        let creating = match &input {
            OppInput::Create { playbook, .. } => Some(playbook.as_str()),
            _ => None,
        };
        let playbook = self
            .playbooks
            .resolve(state.map(|s| s.playbook.as_str()), creating)?;
        let hold = match &input {
            OppInput::Pause { .. } => Some(OutboxHold::Hold),
            OppInput::Resume { .. } => Some(OutboxHold::Release),
            _ => None,
        };
        let d = rules::apply(state, input, now, playbook, &self.compliance)
            .map_err(|r| rejected(code(&r), r))?;
        if d.reply == OppReply::AlreadyExists {
            return Ok(Applied {
                state: None,
                changes: Changes {
                    reply: to_json(&d.reply),
                    ..Changes::default()
                },
            });
        }
        // Closing cancels whatever the group had queued; only the transition that closes does it,
        // so a later input cannot cancel the last message the closing one sent (a confirmation).
        let closing = d.state.stage.is_terminal() && !state.is_some_and(|s| s.stage.is_terminal());
        let outbox = if closing {
            Some(OutboxHold::Cancel)
        } else {
            hold
        };
        let mut changes = Changes {
            timers: timers(d.timers, OppTimer::as_str, |timer| OppInput::TimerFired {
                timer,
            }),
            timeline: timeline(d.timeline),
            outbox,
            reply: to_json(&d.reply),
            ..Changes::default()
        };
        // Indexed by the transition that creates it, in its commit: never a created opportunity
        // whose number finds nothing (its STOP dropped as from an unknown sender). A repeated
        // create of an existing one answered above and indexes nothing, so another number
        // cannot route to it.
        // A lead reached by email only has no number to index: no text or call can name it.
        if let (None, Some(phone)) = (state, &d.state.contact.phone) {
            changes.lookups.push(Lookup {
                key_type: PHONE_LOOKUP,
                key: phone.clone(),
            });
        }
        for effect in d.effects {
            match effect {
                OppEffect::StartCall {
                    call_id,
                    to,
                    attempt,
                    agent,
                } => {
                    let place = CallInput::Place {
                        call_id,
                        opportunity_id: key.id,
                        to,
                        attempt,
                        playbook: d.state.playbook.clone(),
                        agent,
                    };
                    changes
                        .sends
                        .push((call::key(key, call_id), to_json(&place)));
                }
                // The purpose travels with the text: the dispatcher's do-not-call check applies
                // to marketing only, never to the opt-out confirmation or a help reply.
                OppEffect::SendSms {
                    to,
                    body,
                    purpose,
                    by,
                } => changes.effects.push(
                    Effect::Sms(SmsEffect {
                        to,
                        body,
                        opportunity_id: key.id,
                        purpose,
                        by,
                    })
                    .into_request(),
                ),
                // Skip mode: the live opportunity learns of the duplicate in this same commit.
                OppEffect::NoteReturn {
                    opportunity_id,
                    external_id,
                } => {
                    let note = OppInput::ContactReturned {
                        external_id,
                        skipped_as: Some(key.id),
                    };
                    changes
                        .sends
                        .push((self::key(key.tenant, opportunity_id), to_json(&note)));
                }
                // The reverse of the call's reports: an input to the call on the same shard.
                OppEffect::HangUpCall { call_id, reason } => {
                    let hang_up = CallInput::HangUp { reason };
                    changes
                        .sends
                        .push((call::key(key, call_id), to_json(&hang_up)));
                }
                OppEffect::NotifyEscalation { queue, reason } => changes.effects.push(
                    Effect::Notify(NotifyEffect {
                        queue,
                        reason,
                        opportunity_id: key.id,
                        assignee: Some(d.state.assignee.clone()),
                        after_hours_only: false,
                    })
                    .into_request(),
                ),
                // The dispatcher tells people only when nobody is on call to see the reply.
                OppEffect::NotifyReply { queue, reason } => changes.effects.push(
                    Effect::Notify(NotifyEffect {
                        queue,
                        reason,
                        opportunity_id: key.id,
                        assignee: Some(d.state.assignee.clone()),
                        after_hours_only: true,
                    })
                    .into_request(),
                ),
                // One effect per person and channel: each leaves, and is retried, on its own.
                OppEffect::NotifySms {
                    to,
                    recipient,
                    lead,
                    reason,
                } => changes.effects.push(
                    Effect::NotifySms(NoticeSms {
                        to,
                        recipient,
                        lead,
                        reason,
                        opportunity_id: key.id,
                    })
                    .into_request(),
                ),
                OppEffect::SendEmail {
                    email_id,
                    to,
                    name,
                    subject,
                    body,
                    step: _,
                } => changes.effects.push(
                    Effect::LeadEmail(LeadEmail {
                        email_id,
                        to,
                        name,
                        subject,
                        body,
                        opportunity_id: key.id,
                    })
                    .into_request(),
                ),
                OppEffect::NotifyEmail {
                    to,
                    recipient,
                    lead,
                    reason,
                } => changes.effects.push(
                    Effect::Email(NoticeEmail {
                        to,
                        recipient,
                        lead,
                        reason,
                        opportunity_id: key.id,
                    })
                    .into_request(),
                ),
            }
        }
        Ok(Applied {
            state: Some(d.state),
            changes,
        })
    }

    fn summary(&self, state: &Opportunity) -> Summary {
        Summary {
            status: state.stage.as_str().to_owned(),
            paused: state.paused,
        }
    }
}
