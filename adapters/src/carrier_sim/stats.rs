//! Counters served at `GET /sim/stats` and by [`super::SimHandle::stats`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What the simulator has seen and done since it started. Also the JSON of `GET /sim/stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SimStats {
    /// Calls created (accepted creates only).
    pub calls: u64,
    /// Outbound messages created (accepted creates only).
    pub messages: u64,
    /// Lead replies generated (and POSTed to `inbound_sms_url`).
    pub replies: u64,
    /// Hangup requests that ended a live call.
    pub hangups: u64,
    /// REST requests answered with a 4xx (auth, validation, not found, opted out).
    pub rejected_requests: u64,
    /// Message creates refused with 21610 because the lead had replied STOP.
    pub blocked_opted_out: u64,
    /// Webhook requests issued (each copy of a duplicate counts; retries do not).
    pub callbacks_sent: u64,
    /// Webhook requests that got a 2xx.
    pub callbacks_delivered: u64,
    /// HTTP attempts, including retries.
    pub callback_attempts: u64,
    /// Attempts after the first (non-2xx or connection error before).
    pub callback_retries: u64,
    /// Webhook requests abandoned after every retry failed.
    pub callback_failures: u64,
    /// Second copies sent on purpose (`disorder.duplicate_probability`).
    pub duplicates_sent: u64,
    /// Webhooks sent after the one that followed them (`disorder.swap_probability`).
    pub reordered: u64,
    /// Terminal status of each call (`completed`, `no-answer`, …) → count.
    pub call_outcomes: BTreeMap<String, u64>,
    /// `To` number → calls created.
    pub calls_per_number: BTreeMap<String, u64>,
    /// `To` number → outbound messages created.
    pub messages_per_number: BTreeMap<String, u64>,
    /// `From` number (the caller id) → calls created. Any E.164 `From` is accepted, as Twilio
    /// accepts any number of the account: a tenant with a pool dials from several.
    pub calls_per_from: BTreeMap<String, u64>,
    /// `From` number → outbound messages created.
    pub messages_per_from: BTreeMap<String, u64>,
    /// The `effect` query parameter of a create's `StatusCallback` → accepted creates carrying
    /// it (calls and messages together).
    pub creates_per_effect: BTreeMap<String, u64>,
    /// Effect keys created more than once: each is a lead dialled or texted twice for one
    /// intended effect. Must stay 0.
    pub duplicate_creates: u64,
    /// Creates failed on purpose (`rest_faults`), by fault: `rate_limited`, `unavailable`,
    /// `server_error`, `cut_after_create` (that one created the call or message).
    pub rest_faults: BTreeMap<String, u64>,
    /// Lookup v2 requests that passed auth (each one billed by Twilio).
    pub lookups: u64,
    /// Number looked up → lookups of it.
    pub lookups_per_number: BTreeMap<String, u64>,
    /// TwiML documents requested over HTTP (the create's `Url`, whispers, Gather/Record/Dial
    /// actions, redirects), whatever came back.
    pub twiml_fetches: u64,
    /// Application errors: a fetch that failed (connection, non-2xx), a document that did not
    /// parse (inline ones too), an unknown verb, a verb not allowed where it was, a redirect loop.
    pub twiml_errors: u64,
    /// Verb (`say`, `play`, `pause`, `gather`, `dial`, `record`, `hangup`, `redirect`, `reject`)
    /// → times executed, on calls and dialled legs alike.
    pub verbs_executed: BTreeMap<String, u64>,
    /// Child legs placed by `<Dial>`.
    pub dial_legs: u64,
    /// Terminal status of each dialled leg → count (kept apart from `call_outcomes`).
    pub dial_leg_outcomes: BTreeMap<String, u64>,
    /// Whisper documents (`<Number url>`) requested for answered legs.
    pub whispers: u64,
    /// Whispers that declined (ended with `<Hangup/>`, `<Reject/>` or an error).
    pub whisper_declines: u64,
    /// `<Gather>`s that got digits (and posted them to their action).
    pub gathers_with_digits: u64,
    /// Conversations bridged by `<Dial>`.
    pub bridged_calls: u64,
    /// Seconds bridged, summed (each conversation rounded up to a whole second).
    pub talk_seconds: u64,
    /// Recordings kept (bridges of a `<Dial record>`).
    #[serde(default)]
    pub recordings: u64,
    /// Recording media fetched (`Recordings/{Sid}.mp3`).
    #[serde(default)]
    pub recording_fetches: u64,
    /// `DialCallStatus` of every finished `<Dial>` → count.
    pub dial_outcomes: BTreeMap<String, u64>,
    /// `<Say>`/`<Play>` executed on a call whose `AnsweredBy` is a machine (a voicemail drop).
    pub voicemail_plays: u64,
    /// Calls leads placed to the account's numbers (`POST /sim/inbound-calls`).
    #[serde(default)]
    pub inbound_calls: u64,
    /// Terminal status of each inbound call → count (kept apart from `call_outcomes`).
    #[serde(default)]
    pub inbound_call_outcomes: BTreeMap<String, u64>,
}

impl SimStats {
    pub(crate) fn count_effect(&mut self, effect: Option<&str>) {
        if let Some(key) = effect {
            let n = self.creates_per_effect.entry(key.to_string()).or_insert(0);
            *n += 1;
            if *n == 2 {
                self.duplicate_creates += 1;
            }
        }
    }
}

/// One call, as listed by `GET /sim/calls`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallView {
    pub sid: String,
    pub to: String,
    pub from: String,
    pub status: String,
    /// The outcome the simulator drew (a hangup may have cut it short).
    pub outcome: String,
    pub answered_by: Option<String>,
    pub effect: Option<String>,
    /// Status callbacks fired so far (the next `SequenceNumber`).
    pub callbacks: u64,
    pub date_created: String,
}

/// One message, as listed by `GET /sim/messages`. The body is left out (lead content).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageView {
    pub sid: String,
    pub to: String,
    pub from: String,
    pub status: String,
    /// `outbound-api` for ours, `inbound` for lead replies.
    pub direction: String,
    /// The fate drawn at create (`delivered`, `undelivered`, `failed`; `received` for replies).
    pub fate: String,
    pub error_code: Option<u32>,
    pub body_chars: usize,
    pub effect: Option<String>,
    pub date_created: String,
}
