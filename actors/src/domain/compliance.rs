//! The compliance gate: every outbound call or text asks [`check`] first.
//!
//! Pure like the rest of the domain: no IO, no clock, no randomness. The host
//! passes `now`, what it knows about the contact and this channel's recent
//! attempts, and gets back a [`Decision`]: allow, defer to the next instant
//! the rules permit, or deny outright. The rules (calling windows, day
//! restrictions, frequency caps per state) are data in
//! `config/compliance.toml`, loaded with [`Rules::from_toml`].
//!
//! What the gate encodes (reference/domain.md §2.5, §4):
//!
//! * Marketing contact needs channel consent, no opt-out, not on a
//!   do-not-call list, and a known time zone; otherwise it is denied. An
//!   unknown zone denies texts as well as calls: the federal window covers
//!   marketing texts (§4.1 C1) and §4.3 says not to auto-contact when the
//!   location is unknown.
//! * The calling window is evaluated in the called party's local time: the
//!   contact's own IANA zone when valid and every zone the area code spans
//!   (the window must hold in all of them, §4.3, and when the two disagree
//!   the deferral names the stricter zone), intersected with the state's
//!   rules. The state comes from the area code only; a contact's
//!   postal state is not modelled yet.
//! * Outside the window, or over a frequency cap, the decision is a deferral
//!   to the earliest instant at which every rule holds, computed in UTC
//!   against the zone's real offsets, so DST gaps and overlaps are handled:
//!   a window start inside a skipped hour opens at the first valid instant,
//!   and a repeated hour opens at its first occurrence inside the window.
//! * After an opt-out, exactly one confirmation text may go out, at any hour
//!   (FCC 24-24, §4.1 C12). A reply to HELP may go out at any hour to a
//!   contact who has not opted out (it answers their own message); after an
//!   opt-out nothing but the confirmation is sent (§4.2 `revoked`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{
    DateTime, Datelike, MappedLocalTime, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeDelta,
    TimeZone, Timelike, Utc, Weekday,
};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::area_codes;

/// Frequency caps count attempts over this rolling window.
pub const CAP_WINDOW_HOURS: u32 = 24;

/// How far ahead the gate looks for a permitted instant before giving up and
/// denying (only a misconfiguration can close every day for two weeks).
pub const SEARCH_HORIZON_DAYS: u32 = 14;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ComplianceError {
    #[error("compliance rules are not valid toml: {0}")]
    Parse(String),
    #[error("invalid compliance rule {field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("unknown {kind} {value:?}; expected one of {expected}")]
    UnknownValue {
        kind: &'static str,
        value: String,
        expected: String,
    },
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> ComplianceError {
    ComplianceError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

named_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    pub enum Channel {
        Voice = "voice",
        Sms = "sms",
    }
}
parse_by_name!(Channel, "channel", ComplianceError);

named_enum! {
    /// What an outbound message is for; decides which rules apply.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    pub enum Purpose {
        /// Any sales contact: cadence calls, follow-up texts. Every rule applies.
        Marketing = "marketing",
        /// The single text confirming an opt-out. SMS only.
        OptOutConfirmation = "opt_out_confirmation",
        /// The answer to a HELP/INFO reply. SMS only.
        HelpReply = "help_reply",
    }
}
parse_by_name!(Purpose, "purpose", ComplianceError);

mod email;
mod keywords;
mod recording;
mod rules;
mod schedule;
mod zones;

pub use email::*;
pub use keywords::*;
pub use recording::*;
pub use rules::*;
use schedule::*;
pub use zones::*;

// ---------------------------------------------------------------------------
// The gate
// ---------------------------------------------------------------------------

// The gate
// ---------------------------------------------------------------------------

/// Everything the gate needs about one outbound message.
#[derive(Debug, Clone, Copy)]
pub struct GateInput<'a> {
    pub channel: Channel,
    pub purpose: Purpose,
    /// E.164.
    pub phone: &'a str,
    /// The contact's IANA zone, if the CRM has one.
    pub contact_timezone: Option<&'a str>,
    pub consent_voice: bool,
    pub consent_sms: bool,
    /// Consent revoked (any channel of the tenant).
    pub opted_out: bool,
    /// Whether the one opt-out confirmation text has already gone out.
    pub opt_out_confirmation_sent: bool,
    /// On the national registry (without an exemption) or the internal list.
    pub on_dnc: bool,
    /// This channel's attempts to this lead; older ones are ignored.
    pub recent_attempts: &'a [DateTime<Utc>],
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    Allow,
    /// Not now; ask again at `until`, the earliest instant every rule permits.
    Defer {
        until: DateTime<Utc>,
        reason: BlockReason,
    },
    /// Not without a change of facts (consent, opt-out, DNC, time zone).
    Deny {
        reason: BlockReason,
    },
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow)
    }

    pub fn reason(&self) -> Option<&BlockReason> {
        match self {
            Decision::Allow => None,
            Decision::Defer { reason, .. } | Decision::Deny { reason } => Some(reason),
        }
    }

    /// An operator-readable sentence.
    pub fn describe(&self) -> String {
        match self {
            Decision::Allow => "allowed".to_owned(),
            Decision::Defer { reason, .. } => format!("deferred: {}", reason.describe()),
            Decision::Deny { reason } => format!("denied: {}", reason.describe()),
        }
    }
}

/// Why a day has no calling window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClosedDay {
    Sunday,
    Holiday,
    /// The applicable windows do not overlap on that day.
    NoWindow,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockReason {
    NoConsent(Channel),
    /// The lead came with an email and no phone: nothing to call or text.
    NoPhone,
    OptedOut,
    DoNotCall,
    UnknownTimeZone,
    /// Local time in `zone` is outside the day's window. `state` names the
    /// state rules that applied with the federal default, if any.
    OutsideCallingHours {
        zone: String,
        local_time: NaiveDateTime,
        window: Window,
        state: Option<String>,
        retry_local: NaiveDateTime,
    },
    /// The local day allows no contact at all.
    ClosedDay {
        zone: String,
        local_time: NaiveDateTime,
        day: ClosedDay,
        state: Option<String>,
        retry_local: NaiveDateTime,
    },
    /// `attempts` in the last `window_hours` already reach `max`.
    FrequencyCap {
        channel: Channel,
        max: u32,
        window_hours: u32,
        attempts: u32,
        state: Option<String>,
        zone: String,
        retry_local: NaiveDateTime,
    },
    /// No permitted instant within the search horizon.
    NoPermittedTime {
        horizon_days: u32,
    },
    /// The purpose only exists on another channel.
    WrongChannel {
        purpose: Purpose,
        channel: Channel,
    },
    /// An opt-out confirmation for a contact who has not opted out.
    NotOptedOut,
    ConfirmationAlreadySent,
}

impl BlockReason {
    /// An operator-readable sentence, e.g. "outside calling hours in
    /// America/New_York (21:14 local; allowed 08:00–21:00); retry at 08:00
    /// local on Tue 2026-03-10".
    pub fn describe(&self) -> String {
        let under = |state: &Option<String>| match state {
            Some(code) => format!(" under {code} rules"),
            None => String::new(),
        };
        match self {
            BlockReason::NoPhone => "the contact has no phone number (reached by email only)".to_owned(),
            BlockReason::NoConsent(channel) => {
                format!("no {} consent on record for this contact", channel_word(*channel))
            }
            BlockReason::OptedOut => {
                "the contact has opted out; only the one opt-out confirmation text may be sent"
                    .to_owned()
            }
            BlockReason::DoNotCall => "the number is on a do-not-call list".to_owned(),
            BlockReason::UnknownTimeZone => "the contact's time zone is unknown (no valid contact \
                 time zone and no known US or Canadian area code); not contacting automatically"
                .to_owned(),
            BlockReason::OutsideCallingHours {
                zone,
                local_time,
                window,
                state,
                retry_local,
            } => format!(
                "outside calling hours in {zone} ({} local; allowed {window}{}); {}",
                hhmm(local_time.time()),
                under(state),
                retry_text(Some(*local_time), *retry_local)
            ),
            BlockReason::ClosedDay {
                zone,
                local_time,
                day,
                state,
                retry_local,
            } => {
                let what = match day {
                    ClosedDay::Sunday => "no contact on Sundays",
                    ClosedDay::Holiday => "no contact on holidays",
                    ClosedDay::NoWindow => "no permitted calling hours that day",
                };
                format!(
                    "{what}{} in {zone} (it is {} local); {}",
                    under(state),
                    local_time.format("%a %Y-%m-%d %H:%M"),
                    retry_text(Some(*local_time), *retry_local)
                )
            }
            BlockReason::FrequencyCap {
                channel,
                max,
                window_hours,
                attempts,
                state,
                zone,
                retry_local,
            } => format!(
                "frequency cap reached: {attempts} {} attempts in the last {window_hours} h \
                 (max {max}{}); {} in {zone}",
                channel_word(*channel),
                under(state),
                retry_text(None, *retry_local)
            ),
            BlockReason::NoPermittedTime { horizon_days } => format!(
                "no permitted contact time in the next {horizon_days} days under the configured rules"
            ),
            BlockReason::WrongChannel { purpose, channel } => format!(
                "a {} cannot be sent by {}; it is a text",
                purpose.as_str().replace('_', " "),
                channel_word(*channel)
            ),
            BlockReason::NotOptedOut => {
                "the contact has not opted out, so there is no opt-out to confirm".to_owned()
            }
            BlockReason::ConfirmationAlreadySent => {
                "the opt-out confirmation was already sent; nothing more may be sent".to_owned()
            }
        }
    }
}

fn channel_word(channel: Channel) -> &'static str {
    match channel {
        Channel::Voice => "voice",
        Channel::Sms => "SMS",
    }
}

/// "08:00" (or "09:15:27" off the minute) local, with " on Thu 2026-06-11"
/// unless `at` falls on the same local date as `reference`.
fn retry_text(reference: Option<NaiveDateTime>, at: NaiveDateTime) -> String {
    let time = if at.second() == 0 {
        at.format("%H:%M")
    } else {
        at.format("%H:%M:%S")
    };
    if reference.is_some_and(|r| r.date() == at.date()) {
        format!("retry at {time} local")
    } else {
        format!("retry at {time} local on {}", at.format("%a %Y-%m-%d"))
    }
}

/// The pre-flight check for one outbound call or text.
pub fn check(rules: &Rules, input: &GateInput<'_>) -> Decision {
    let deny = |reason| Decision::Deny { reason };
    match input.purpose {
        Purpose::OptOutConfirmation => {
            if input.channel != Channel::Sms {
                deny(BlockReason::WrongChannel {
                    purpose: input.purpose,
                    channel: input.channel,
                })
            } else if !input.opted_out {
                deny(BlockReason::NotOptedOut)
            } else if input.opt_out_confirmation_sent {
                deny(BlockReason::ConfirmationAlreadySent)
            } else {
                Decision::Allow
            }
        }
        Purpose::HelpReply => {
            if input.channel != Channel::Sms {
                deny(BlockReason::WrongChannel {
                    purpose: input.purpose,
                    channel: input.channel,
                })
            } else if input.opted_out {
                deny(BlockReason::OptedOut)
            } else {
                Decision::Allow
            }
        }
        Purpose::Marketing => marketing(rules, input),
    }
}

fn marketing(rules: &Rules, input: &GateInput<'_>) -> Decision {
    let deny = |reason| Decision::Deny { reason };
    let consent = match input.channel {
        Channel::Voice => input.consent_voice,
        Channel::Sms => input.consent_sms,
    };
    if input.opted_out {
        return deny(BlockReason::OptedOut);
    }
    if input.on_dnc {
        return deny(BlockReason::DoNotCall);
    }
    if !consent {
        return deny(BlockReason::NoConsent(input.channel));
    }
    let zones = resolve_zones(input.contact_timezone, input.phone);
    let state = state_of_phone(input.phone);
    let Some(schedule) = Schedule::new(rules, &zones, state, input) else {
        return deny(BlockReason::UnknownTimeZone);
    };
    let Some(violation) = schedule.violation(input.now) else {
        return Decision::Allow;
    };
    match schedule.next_allowed(input.now) {
        Some(until) => Decision::Defer {
            until,
            reason: schedule
                .binding(input.now, until)
                .unwrap_or(violation)
                .into_reason(until),
        },
        None => deny(BlockReason::NoPermittedTime {
            horizon_days: SEARCH_HORIZON_DAYS,
        }),
    }
}

#[cfg(test)]
#[path = "compliance_tests.rs"]
mod tests;
