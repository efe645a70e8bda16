//! One `<Dial>` of the reps an offer picked, as the flow answers it (lead first, inbound calls
//! of known and unknown callers alike).

use neuronx_adapters::twilio::twiml::{Dial, DialRecording, Number};
use neuronx_supervision::TenantId;

use super::urlencoded;
use crate::control::reps;
use crate::usecases::webhooks::{Refusal, Verifier};

/// One `<Dial>` of offered reps: each `<Number>` with its whisper and leg callback, the
/// action naming the round and the reps rung (all under `ids`, the call's query).
pub(super) struct Rung<'a> {
    pub ids: &'a str,
    pub round: u32,
    pub offer: &'a reps::Offer,
    pub caller_id: Option<String>,
    pub record: Option<DialRecording>,
}

impl Rung<'_> {
    pub(super) fn dial(self, v: &Verifier<'_>, tenant: TenantId) -> Result<Dial, Refusal> {
        let base = format!("{}/webhooks/twilio/{}/voice", v.public_url, tenant.0);
        let ids = self.ids;
        let names: Vec<&str> = self.offer.reps.iter().map(|r| r.name.as_str()).collect();
        let numbers = self
            .offer
            .reps
            .iter()
            .map(|r| {
                let rep = urlencoded(&r.name);
                Number {
                    number: r.phone.clone(),
                    url: Some(format!("{base}/whisper?{ids}&rep={rep}")),
                    status_callback: Some(format!("{base}/leg?{ids}&rep={rep}")),
                }
            })
            .collect();
        // JSON, so that a name holding a comma stays one name.
        let reps = urlencoded(&serde_json::to_string(&names).map_err(|_| Refusal::Unencodable)?);
        let round = self.round;
        Ok(Dial {
            action: format!("{base}/dial?{ids}&round={round}&reps={reps}"),
            timeout_seconds: self.offer.ring_timeout_seconds,
            caller_id: self.caller_id,
            numbers,
            record: self.record,
        })
    }
}
