//! The call actor: one phone call, a child of its opportunity on the same shard. It follows the
//! provider's status callbacks, guards the ring with timers and reports the outcome back.

use chrono::{DateTime, Utc};
use neuronx_supervision::{ActorKey, ActorKind, Applied, Changes, Entity, Rejected, Summary};
use serde_json::json;
use uuid::Uuid;

use crate::convert::{rejected, timeline, timers, to_json};
use crate::domain::call::{self as rules, Call, CallEffect, CallInput, CallTimer, Rejection};
use crate::domain::opportunity::OppInput;
use crate::effects::{Effect, VoiceEffect};
use crate::opportunity;
use crate::playbooks::Playbooks;

pub const KIND: ActorKind = ActorKind("call");

/// A call lives in its opportunity's group, so both are always on the same shard.
pub fn key(opportunity: &ActorKey, call_id: Uuid) -> ActorKey {
    ActorKey::child(opportunity, KIND, call_id)
}

pub struct CallEntity {
    playbooks: Playbooks,
}

impl CallEntity {
    pub fn new(playbooks: Playbooks) -> Self {
        Self { playbooks }
    }
}

fn code(r: &Rejection) -> &'static str {
    match r {
        Rejection::NotFound => "not_found",
        Rejection::UnknownValue { .. } => "unknown_value",
        #[allow(unreachable_patterns)]
        _ => "rejected",
    }
}

impl Entity for CallEntity {
    type State = Call;
    type Input = CallInput;

    fn kind(&self) -> ActorKind {
        KIND
    }

    fn apply(
        &self,
        key: &ActorKey,
        state: Option<&Call>,
        input: CallInput,
        now: DateTime<Utc>,
    ) -> Result<Applied<Call>, Rejected> {
        let creating = match &input {
            CallInput::Place { playbook, .. } | CallInput::Inbound { playbook, .. } => {
                Some(playbook.as_str())
            }
            _ => None,
        };
        let playbook = self
            .playbooks
            .resolve(state.map(|c| c.playbook.as_str()), creating)?;
        let d = rules::apply(state, input, now, playbook).map_err(|r| rejected(code(&r), r))?;
        if state == Some(&d.state)
            && d.effects.is_empty()
            && d.timers.is_empty()
            && d.timeline.is_empty()
        {
            // A duplicate or out-of-date callback: nothing to record.
            return Ok(Applied {
                state: None,
                changes: Changes::default(),
            });
        }
        let mut changes = Changes {
            timers: timers(d.timers, CallTimer::as_str, |timer| CallInput::TimerFired {
                timer,
            }),
            timeline: timeline(d.timeline),
            reply: json!({"status": d.state.status}),
            ..Changes::default()
        };
        for effect in d.effects {
            match effect {
                CallEffect::Dial {
                    to,
                    machine_detection,
                    ring_timeout_seconds,
                    agent,
                } => changes.effects.push(
                    Effect::Voice(VoiceEffect::Dial {
                        to,
                        call_id: key.id,
                        opportunity_id: d.state.opportunity_id,
                        machine_detection,
                        ring_timeout_seconds,
                        agent,
                    })
                    .into_request(),
                ),
                CallEffect::Fetch { provider_sid } => changes.effects.push(
                    Effect::Voice(VoiceEffect::Fetch {
                        provider_sid,
                        call_id: key.id,
                    })
                    .into_request(),
                ),
                CallEffect::Hangup { provider_sid } => changes.effects.push(
                    Effect::Voice(VoiceEffect::Hangup {
                        provider_sid,
                        call_id: key.id,
                    })
                    .into_request(),
                ),
                CallEffect::PickRep => changes.effects.push(
                    Effect::Voice(VoiceEffect::PickRep {
                        call_id: key.id,
                        opportunity_id: d.state.opportunity_id,
                    })
                    .into_request(),
                ),
                CallEffect::Conversation {
                    opportunity_id,
                    rep,
                    talk_seconds,
                } => {
                    let parent = ActorKey::root(key.tenant, opportunity::KIND, opportunity_id);
                    changes.sends.push((
                        parent,
                        to_json(&OppInput::CallConnected {
                            call_id: key.id,
                            rep,
                            talk_seconds,
                        }),
                    ));
                }
                CallEffect::Unattended {
                    opportunity_id,
                    reason,
                    inbound,
                } => {
                    let parent = ActorKey::root(key.tenant, opportunity::KIND, opportunity_id);
                    changes.sends.push((
                        parent,
                        to_json(&OppInput::CallUnattended {
                            call_id: key.id,
                            reason,
                            inbound,
                        }),
                    ));
                }
                CallEffect::Ended { opportunity_id } => {
                    let parent = ActorKey::root(key.tenant, opportunity::KIND, opportunity_id);
                    let ended = OppInput::CallEnded { call_id: key.id };
                    changes.sends.push((parent, to_json(&ended)));
                }
                CallEffect::Live { opportunity_id } => {
                    let parent = ActorKey::root(key.tenant, opportunity::KIND, opportunity_id);
                    let live = OppInput::InboundLive { call_id: key.id };
                    changes.sends.push((parent, to_json(&live)));
                }
                CallEffect::Report {
                    opportunity_id,
                    result,
                } => {
                    let parent = ActorKey::root(key.tenant, opportunity::KIND, opportunity_id);
                    changes.sends.push((
                        parent,
                        to_json(&OppInput::CallFinished {
                            call_id: key.id,
                            result,
                        }),
                    ));
                }
            }
        }
        Ok(Applied {
            state: Some(d.state),
            changes,
        })
    }

    fn summary(&self, state: &Call) -> Summary {
        Summary {
            status: state.status.as_str().to_owned(),
            paused: false,
        }
    }
}
