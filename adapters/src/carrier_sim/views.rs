//! What a call's TwiML did, served at `GET /sim/calls/{sid}` and by
//! [`super::SimHandle::call_detail`], so a test can assert a whole flow.

use serde::{Deserialize, Serialize};

pub use super::twiml::VerbKind;

/// One call (or one `<Dial>` leg) and everything its flow did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallDetail {
    pub sid: String,
    pub to: String,
    pub from: String,
    /// Twilio's status word (`in-progress`, `completed`, `canceled`, …).
    pub status: String,
    /// `outbound-api` for calls created over REST, `outbound-dial` for `<Dial>` legs.
    pub direction: String,
    pub parent_call_sid: Option<String>,
    pub answered_by: Option<String>,
    /// `CallDuration` once ended: answer to hang-up, whole flow included.
    pub duration_secs: Option<u64>,
    /// TwiML documents run on this leg, in order (the inline one first, if any).
    pub documents: Vec<DocumentView>,
    /// Verbs executed, in order (nested `<Gather>` prompts included).
    pub verbs: Vec<VerbKind>,
    /// What each `<Say>` executed said, in order.
    #[serde(default)]
    pub said: Vec<String>,
    /// Digits this leg's party pressed, one entry per `<Gather>` that got input.
    pub digits: Vec<String>,
    /// A leg's `<Number sendDigits>`, sent when it answered.
    pub sent_digits: Option<String>,
    /// The `<Dial>`s run on this call, in order.
    pub dials: Vec<DialView>,
    /// The number on the other side of a bridged conversation (for a leg, its parent's `To`).
    pub bridged_to: Option<String>,
    /// Seconds spent bridged, summed over this call's conversations.
    pub talk_secs: u64,
    /// How its TwiML ended; `None` while it runs or when there was none.
    pub flow_end: Option<FlowEnd>,
    /// The legs its `<Dial>`s placed, in the order they were placed (empty for a leg).
    pub children: Vec<CallDetail>,
    /// When the carrier created it (a leg: when its phone started ringing), Unix milliseconds.
    #[serde(default)]
    pub created_ms: i64,
    /// When it was answered, Unix milliseconds; `None` while ringing or never answered.
    #[serde(default)]
    pub answered_ms: Option<i64>,
    /// When it ended, Unix milliseconds; `None` while it rings or runs.
    #[serde(default)]
    pub ended_ms: Option<i64>,
}

/// One TwiML document a leg ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentView {
    pub purpose: DocPurpose,
    /// `None` for the inline `Twiml` of the create.
    pub url: Option<String>,
    /// `GET` or `POST`; `None` for the inline document.
    pub method: Option<String>,
    /// The HTTP status of the fetch; `None` when there was no answer (or no fetch).
    pub http_status: Option<u16>,
    /// Fetched (2xx) and parsed.
    pub ok: bool,
    /// Why it failed, when it did.
    pub error: Option<String>,
}

/// Why a document was requested.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DocPurpose {
    /// The create's `Twiml`.
    Inline,
    /// The create's `Url`, at answer.
    Url,
    /// A `<Number url>`, on the callee's leg.
    Whisper,
    GatherAction,
    RecordAction,
    Redirect,
    DialAction,
    /// A `<Dial recordingStatusCallback>`: the recording is complete.
    RecordingStatus,
}

/// One `<Dial>` as its `action` saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DialView {
    pub dial_call_status: DialCallStatus,
    pub dial_call_sid: Option<String>,
    pub dial_call_duration: Option<u64>,
    pub bridged: bool,
    /// The numbers it dialled, in document order.
    pub numbers: Vec<String>,
}

/// `DialCallStatus`, as posted to a `<Dial action>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DialCallStatus {
    /// The callee answered (bridged, or declined by its whisper: see `bridged`).
    Completed,
    Busy,
    NoAnswer,
    Failed,
    /// The parent hung up (or was hung up) before anyone answered.
    Canceled,
}

impl DialCallStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Busy => "busy",
            Self::NoAnswer => "no-answer",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
        }
    }
}

/// How a leg's TwiML ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FlowEnd {
    /// The document ran out of verbs (a whisper that ends this way bridges).
    Exhausted,
    /// `<Hangup/>` (a whisper that ends this way declines).
    Hangup,
    /// `<Reject/>`.
    Reject,
    /// An application error: a fetch that failed, a document that did not parse, an unknown
    /// verb, a verb not allowed there, too many documents. The call ends, as on Twilio.
    Error,
    /// The call ended under the flow: hung up over REST, by the lead, or by the other party.
    Ended,
}
