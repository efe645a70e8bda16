//! A call's recordings, read from the carrier by sid: the metadata, and the audio. The sid must
//! be one the call's own record holds (the carrier's callback put it there, checked), and the
//! request goes to the tenant's own account host with its own credentials: a `RecordingUrl`
//! from a callback is never followed. Listening is an operator's act, not a viewer's.

use neuronx_adapters::twilio::{RecordingResource, TwilioError};
use neuronx_supervision::EngineHandle;
use serde::Serialize;

use super::ops::get_call;
use super::{authorize, Error};
use crate::control::keys::Identity;
use crate::control::Action;
use crate::secrets::Keyring;
use crate::twilio_channel;
use neuronx_adapters::outbound::OutboundGuard;

/// What the carrier says of one recording.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RecordingDetail {
    pub sid: String,
    pub call_id: uuid::Uuid,
    /// As the call recorded it (`all_party`, `one_party`, `unknown`).
    pub consent: String,
    /// Seconds, as the carrier reports it now (null while it is still processing).
    #[schema(required = true)]
    pub duration_seconds: Option<u32>,
    #[schema(required = true)]
    pub channels: Option<u32>,
    /// The carrier's status (`completed`, `processing`, `deleted`, …).
    #[schema(required = true)]
    pub status: Option<String>,
}

/// What a fetch needs besides the engine: the tenant's sealed credentials and where a
/// tenant-set carrier host may lead.
pub struct Carrier<'a> {
    pub keyring: &'a Keyring,
    pub guard: &'a OutboundGuard,
}

/// The recording `sid` of call `call_id`, with the carrier's metadata.
pub async fn detail(
    engine: &EngineHandle,
    carrier: &Carrier<'_>,
    who: &Identity,
    call_id: &str,
    sid: &str,
) -> Result<RecordingDetail, Error> {
    let (call, consent) = owned(engine, who, call_id, sid).await?;
    let account = account(engine, carrier, who).await?;
    let found: RecordingResource = account
        .client
        .fetch_recording(sid)
        .await
        .map_err(carrier_error)?;
    Ok(RecordingDetail {
        sid: found.sid,
        call_id: call,
        consent,
        duration_seconds: found.duration.and_then(|d| d.parse::<u32>().ok()),
        channels: found.channels,
        status: found.status,
    })
}

/// The recording's audio (MP3).
pub async fn media(
    engine: &EngineHandle,
    carrier: &Carrier<'_>,
    who: &Identity,
    call_id: &str,
    sid: &str,
) -> Result<Vec<u8>, Error> {
    owned(engine, who, call_id, sid).await?;
    let account = account(engine, carrier, who).await?;
    let audio = account.client.fetch_recording_media(sid).await;
    audio.map_err(carrier_error)
}

/// The call (visible to the caller, who may operate) and the consent of its recording `sid`.
async fn owned(
    engine: &EngineHandle,
    who: &Identity,
    call_id: &str,
    sid: &str,
) -> Result<(uuid::Uuid, String), Error> {
    let call = get_call(engine, who, call_id).await?;
    authorize(who, Action::Operate)?;
    let rec = call
        .recordings
        .into_iter()
        .find(|r| r.sid == sid)
        .ok_or(Error::NotFound("recording"))?;
    Ok((call.id, rec.consent))
}

async fn account(
    engine: &EngineHandle,
    carrier: &Carrier<'_>,
    who: &Identity,
) -> Result<twilio_channel::Account, Error> {
    let found = twilio_channel::account(engine.store(), carrier.keyring, carrier.guard, who.tenant)
        .await
        .map_err(Error::Unavailable)?;
    found.ok_or_else(|| Error::Conflict {
        code: "no_twilio_account".into(),
        message: "the tenant has no Twilio account configured (PUT /v1/channels/twilio)".into(),
    })
}

/// The carrier's refusal, by who must act: gone there is not found here; the rest is passing.
fn carrier_error(e: TwilioError) -> Error {
    match e {
        TwilioError::Api { status: 404, .. } => Error::NotFound("recording"),
        other => Error::Unavailable(format!("the carrier did not answer: {other}")),
    }
}
