//! What the sales actors ask of the outside world, as typed requests. The runtime keeps an
//! effect as a channel name and a JSON payload (it knows nothing of sales); these types are
//! the one definition both ends use: the actor hosts build them, the effect handlers read them
//! back and match them exhaustively, so an operation a handler cannot run is a compile error
//! there, not a string that falls through to "unknown operation".
//!
//! The JSON shapes are the ones already in outboxes (`{"op": "dial", ...}` for voice, no tag
//! for a text or a notice), so rows written before these types existed read back unchanged.

use neuronx_supervision::EffectRequest;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::convert::to_json;
use crate::domain::call::Agent;
use crate::domain::compliance::Purpose;

named_enum! {
    /// Which handler runs an effect.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    pub enum EffectChannel {
        Voice = "voice",
        Sms = "sms",
        Notify = "notify",
        /// A text to a person (a rep) about a lead.
        NotifySms = "notify_sms",
        /// An email to a person (a rep) about a lead.
        Email = "email",
        /// An email to the lead (the playbook's), with the unsubscribe footer and headers.
        LeadEmail = "lead_email",
    }
}

/// A phone call's requests to the carrier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum VoiceEffect {
    /// Place the call; the carrier's answer comes back as `Dialed`, `DialFailed` or
    /// `DialUnknown`.
    Dial {
        to: String,
        call_id: Uuid,
        opportunity_id: Uuid,
        machine_detection: bool,
        ring_timeout_seconds: u32,
        /// Agent first: dial this rep, whose flow dials `to` once they accept.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent: Option<Agent>,
    },
    Hangup {
        provider_sid: String,
        call_id: Uuid,
    },
    /// Read the call from the carrier; the result comes back as `Fetched`.
    Fetch {
        provider_sid: String,
        call_id: Uuid,
    },
    /// Agent first by the playbook: offer the call to one free rep of the opportunity's team;
    /// the answer comes back as `RepPicked` (none free: `agent` absent). No carrier request.
    PickRep {
        call_id: Uuid,
        opportunity_id: Uuid,
    },
}

/// A text to a lead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SmsEffect {
    pub to: String,
    pub body: String,
    pub opportunity_id: Uuid,
    /// Decides the do-not-call check at dispatch: marketing only, never an opt-out
    /// confirmation or a help reply. Rows from before it was recorded were marketing.
    #[serde(default = "marketing")]
    pub purpose: Purpose,
    /// The person who wrote it by hand; absent for the playbook's texts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

fn marketing() -> Purpose {
    Purpose::Marketing
}

/// A notice that an opportunity was escalated to a queue. Its handler finds whom to tell and
/// answers them as `OppInput::NotifyPeople`; the opportunity then asks for one `NoticeSms` and
/// one `NoticeEmail` per person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotifyEffect {
    pub queue: String,
    pub reason: String,
    pub opportunity_id: Uuid,
    /// The opportunity's assignee when it escalated: told first when it is a rep. Rows from
    /// before it was recorded have none.
    #[serde(default)]
    pub assignee: Option<String>,
    /// A lead's reply rather than an escalation: people are told only when nobody is on call
    /// (after hours: the assignee, else every rep of the team, away or out of working hours).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub after_hours_only: bool,
}

/// A text to a person about a lead (an escalation's notice): not marketing and not to the lead,
/// so no compliance gate, but never to a number on the tenant's do-not-call list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoticeSms {
    pub to: String,
    /// The principal told.
    pub recipient: String,
    /// The lead's name.
    pub lead: String,
    pub reason: String,
    pub opportunity_id: Uuid,
}

/// An email to a person about a lead (an escalation's notice), through the tenant's SMTP server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoticeEmail {
    pub to: String,
    /// The principal told.
    pub recipient: String,
    /// The lead's name.
    pub lead: String,
    pub reason: String,
    pub opportunity_id: Uuid,
}

/// An email to the lead, through the tenant's SMTP server. The dispatcher adds the footer
/// (the tenant's postal address, the unsubscribe link) and the RFC 8058 headers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeadEmail {
    /// Names this email in the follow-ups and the thread.
    pub email_id: Uuid,
    pub to: String,
    /// The lead's name.
    pub name: String,
    pub subject: String,
    pub body: String,
    pub opportunity_id: Uuid,
}

/// Any effect, with its channel.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Voice(VoiceEffect),
    Sms(SmsEffect),
    Notify(NotifyEffect),
    NotifySms(NoticeSms),
    Email(NoticeEmail),
    LeadEmail(LeadEmail),
}

impl Effect {
    pub fn channel(&self) -> EffectChannel {
        match self {
            Effect::Voice(_) => EffectChannel::Voice,
            Effect::Sms(_) => EffectChannel::Sms,
            Effect::Notify(_) => EffectChannel::Notify,
            Effect::NotifySms(_) => EffectChannel::NotifySms,
            Effect::Email(_) => EffectChannel::Email,
            Effect::LeadEmail(_) => EffectChannel::LeadEmail,
        }
    }

    /// The runtime's form: the channel's name and the payload.
    pub fn into_request(self) -> EffectRequest {
        let channel = self.channel().as_str().to_owned();
        let payload = match &self {
            Effect::Voice(v) => to_json(v),
            Effect::Sms(s) => to_json(s),
            Effect::Notify(n) => to_json(n),
            Effect::NotifySms(n) => to_json(n),
            Effect::Email(n) => to_json(n),
            Effect::LeadEmail(e) => to_json(e),
        };
        EffectRequest { channel, payload }
    }
}

/// A stored payload that is not the effect its channel expects (written by something other
/// than these types, or corrupted): never guessed at, reported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed {channel} effect: {reason}")]
pub struct MalformedEffect {
    pub channel: EffectChannel,
    pub reason: String,
}

/// Reading an effect back from its outbox payload.
pub trait FromPayload: Sized {
    const CHANNEL: EffectChannel;

    fn from_payload(payload: &Value) -> Result<Self, MalformedEffect>;
}

macro_rules! from_payload {
    ($ty:ty, $channel:expr) => {
        impl FromPayload for $ty {
            const CHANNEL: EffectChannel = $channel;

            fn from_payload(payload: &Value) -> Result<Self, MalformedEffect> {
                <$ty>::deserialize(payload).map_err(|e| MalformedEffect {
                    channel: $channel,
                    reason: e.to_string(),
                })
            }
        }
    };
}

from_payload!(VoiceEffect, EffectChannel::Voice);
from_payload!(SmsEffect, EffectChannel::Sms);
from_payload!(NotifyEffect, EffectChannel::Notify);
from_payload!(NoticeSms, EffectChannel::NotifySms);
from_payload!(NoticeEmail, EffectChannel::Email);
from_payload!(LeadEmail, EffectChannel::LeadEmail);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn payloads_written_before_the_types_read_back() {
        let call = Uuid::from_u128(1);
        let opp = Uuid::from_u128(2);
        let dial = json!({"op": "dial", "to": "+14155550100", "call_id": call,
                          "opportunity_id": opp, "machine_detection": true,
                          "ring_timeout_seconds": 25});
        assert_eq!(
            VoiceEffect::from_payload(&dial),
            Ok(VoiceEffect::Dial {
                to: "+14155550100".into(),
                call_id: call,
                opportunity_id: opp,
                machine_detection: true,
                ring_timeout_seconds: 25,
                agent: None,
            })
        );
        let text = json!({"to": "+14155550100", "body": "hi", "opportunity_id": opp});
        let sms = SmsEffect::from_payload(&text).unwrap();
        assert_eq!(sms.purpose, Purpose::Marketing, "no purpose was marketing");
        let bad = VoiceEffect::from_payload(&json!({"op": "teleport"})).unwrap_err();
        assert_eq!(bad.channel, EffectChannel::Voice);
    }

    #[test]
    fn a_request_round_trips_through_its_channel() {
        let effect = Effect::Sms(SmsEffect {
            to: "+14155550100".into(),
            body: "STOP received".into(),
            opportunity_id: Uuid::from_u128(3),
            purpose: Purpose::OptOutConfirmation,
            by: None,
        });
        let req = effect.clone().into_request();
        assert_eq!(req.channel, "sms");
        assert_eq!(req.payload["purpose"], "opt_out_confirmation");
        assert_eq!(
            SmsEffect::from_payload(&req.payload).map(Effect::Sms),
            Ok(effect)
        );
    }
}
