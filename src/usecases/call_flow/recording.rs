//! Recording in the call flow: whether a recorded call must first tell the lead (the rules
//! file's `[recording]` table, by the lead's state), the `<Dial record>` that records the
//! bridge, and the carrier's recording callback, which reaches the call as `Recorded`. Only the
//! sid and the length are kept; the audio is read on demand by sid from the tenant's account
//! (`usecases::recordings`), never from the `RecordingUrl` the callback carries.

use neuronx_actors::domain::call::{CallInput, RecordingMeta};
use neuronx_actors::domain::compliance::{RecordingConsent, Rules};
use neuronx_actors::domain::playbook::Playbook;
use neuronx_adapters::twilio::twiml::{DialRecording, Response};

use super::{durable, Known};
use crate::usecases::webhooks::{param, query_param, Refusal, Verifier};

/// How the call's consent is named in the callback URL and on the record.
fn label(consent: &RecordingConsent) -> &'static str {
    match consent {
        RecordingConsent::OneParty { .. } => "one_party",
        RecordingConsent::AllParty { .. } => "all_party",
        RecordingConsent::Unknown => "unknown",
    }
}

/// The notice the lead hears before anyone is connected, when the playbook records and the
/// lead's state requires it (or cannot be told).
pub(super) fn notice(pb: &Playbook, rules: &Rules, lead_phone: &str) -> Option<String> {
    let consent = rules.recording_consent(lead_phone);
    (pb.call_flow.record && consent.needs_notice()).then(|| pb.call_flow.recording_notice.clone())
}

/// The `<Dial record>` of a recorded playbook's dial.
pub(super) fn dial_recording(
    v: &Verifier<'_>,
    k: &Known,
    pb: &Playbook,
    rules: &Rules,
) -> Option<DialRecording> {
    if !pb.call_flow.record {
        return None;
    }
    // A call exists only for a lead with a phone (the gate denies the others).
    let consent = rules.recording_consent(k.opp.contact.phone.as_deref().unwrap_or_default());
    Some(DialRecording {
        status_callback: format!(
            "{}/webhooks/twilio/{}/voice/recording?call={}&opp={}&consent={}",
            v.public_url,
            k.tenant.0,
            k.call_id,
            k.opp.id,
            label(&consent)
        ),
    })
}

/// The lead's leg of an agent-first dial, before it is connected: the notice.
pub(super) fn notice_doc(pb: &Playbook) -> Response {
    Response::new().say(pb.call_flow.recording_notice.clone())
}

/// The carrier's recording callback: a completed recording goes on the call's record.
pub(super) async fn recorded(
    v: &Verifier<'_>,
    k: &Known,
    query: Option<&str>,
    params: &[(String, String)],
) -> Result<Response, Refusal> {
    // `call_flow::required` refused a missing or malformed sid before the call was looked up.
    let sid = param(params, "RecordingSid").ok_or(Refusal::MissingRecordingSid)?;
    // `absent` (nothing was recorded) and progress statuses add nothing to keep.
    if param(params, "RecordingStatus").is_some_and(|s| s != "completed") {
        return Ok(Response::new());
    }
    let duration = param(params, "RecordingDuration")
        .and_then(|d| d.parse::<u32>().ok())
        .unwrap_or(0);
    let consent = match query_param(query, "consent").as_deref() {
        Some(c @ ("one_party" | "all_party")) => c.to_owned(),
        _ => "unknown".to_owned(),
    };
    let recording = RecordingMeta {
        sid: sid.to_owned(),
        duration_seconds: duration,
        consent,
    };
    let input = CallInput::Recorded { recording };
    durable(v, k, &input, format!("flow:{sid}:recorded")).await?;
    Ok(Response::new())
}
