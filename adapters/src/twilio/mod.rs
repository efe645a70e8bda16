//! Twilio-compatible carrier adapter: a REST client for calls, messages and line-type lookups,
//! and validation of the `X-Twilio-Signature` header on the webhooks Twilio sends us.
//!
//! The client talks to `https://api.twilio.com` or to any server speaking the same 2010-04-01
//! API (our carrier simulator, test doubles). Two rules shape it:
//!
//! * Creates are never blindly repeated. A create that may have reached the provider without a
//!   clear answer fails with [`TwilioError::UnknownOutcome`]; the caller settles it from the
//!   status callback (or a fetch) rather than dialling or texting the lead a second time.
//! * Secrets and message text stay out of logs: credential and message types redact themselves
//!   in `Debug`.

mod client;
mod error;
mod lookup;
mod recordings;
mod resources;
pub mod retry;
pub mod signature;
pub mod twiml;

pub use client::{
    ClientConfig, TwilioClient, TwilioCredentials, DEFAULT_BASE_URL, DEFAULT_LOOKUP_URL,
};
pub use error::TwilioError;
pub use lookup::{LineType, LineTypeLookup};
pub use recordings::{is_recording_sid, RecordingResource, MAX_MEDIA_BYTES};
pub use resources::{
    CallResource, CallStatus, CreateCall, CreateMessage, HangupStatus, MessageResource,
    MessageStatus, StatusCallbackEvent,
};
