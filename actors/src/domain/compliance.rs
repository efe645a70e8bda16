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
//!   contact's own IANA zone when valid, else every zone the area code spans
//!   (the window must hold in all of them, §4.3), intersected with the
//!   state's rules. The state comes from the area code only; a contact's
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

// ---------------------------------------------------------------------------
// Keywords
// ---------------------------------------------------------------------------

named_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    pub enum Keyword {
        OptOut = "opt_out",
        OptIn = "opt_in",
        Help = "help",
    }
}

/// Twilio's default opt-out words, the FCC's per-se revocation words
/// (47 CFR 64.1200(a)(10), including the two-word "opt out") and ARRET for
/// French-speaking Canada (domain.md §2.5).
const OPT_OUT_WORDS: &[&str] = &[
    "STOP",
    "STOPALL",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "REVOKE",
    "OPTOUT",
    "OPT OUT",
    "ARRET",
    "ARRÊT",
];
const OPT_IN_WORDS: &[&str] = &["START", "YES", "UNSTOP"];
const HELP_WORDS: &[&str] = &["HELP", "INFO"];

/// Classifies an inbound text as a keyword when the whole message is one:
/// surrounding whitespace, punctuation and emoji are ignored, case does not
/// matter, and `-`/`_`/runs of spaces inside count as one space (so
/// "Opt-Out!" is an opt-out).
///
/// A keyword inside a sentence ("stop please", "I want to stop") is *not* a
/// keyword: this is Twilio's own single-word matching, so our state never
/// disagrees with the carrier-level block. Such messages may still be a
/// revocation in the FCC's "reasonable means" sense; [`mentions_opt_out`]
/// flags them for a human.
pub fn classify_reply(body: &str) -> Option<Keyword> {
    let text = normalize(body);
    let is = |words: &[&str]| words.contains(&text.as_str());
    if is(OPT_OUT_WORDS) {
        Some(Keyword::OptOut)
    } else if is(OPT_IN_WORDS) {
        Some(Keyword::OptIn)
    } else if is(HELP_WORDS) {
        Some(Keyword::Help)
    } else {
        None
    }
}

/// Whether a text that is not itself a keyword contains an opt-out word
/// ("please stop texting me"): domain.md §2.5 asks for human review of
/// those, since a reasonable revocation must be honoured however phrased.
pub fn mentions_opt_out(body: &str) -> bool {
    if classify_reply(body).is_some() {
        return false;
    }
    let words: Vec<String> = body
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_uppercase)
        .collect();
    words.iter().any(|w| OPT_OUT_WORDS.contains(&w.as_str()))
        || words
            .windows(2)
            .any(|pair| pair[0] == "OPT" && pair[1] == "OUT")
}

fn normalize(body: &str) -> String {
    body.trim_matches(|c: char| !c.is_alphanumeric())
        .split(|c: char| c.is_whitespace() || c == '-' || c == '_')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
        .to_uppercase()
}

// ---------------------------------------------------------------------------
// Rules
// ---------------------------------------------------------------------------

/// A local time-of-day window: contact is allowed from `start` (inclusive)
/// to `end` (exclusive), both whole minutes, `start < end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "WindowText", into = "WindowText")]
pub struct Window {
    start: NaiveTime,
    end: NaiveTime,
}

/// A window as written in configuration and JSON: `"HH:MM"` strings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WindowText {
    start: String,
    end: String,
}

impl Window {
    pub fn new(start: NaiveTime, end: NaiveTime) -> Result<Window, ComplianceError> {
        if start.second() != 0
            || start.nanosecond() != 0
            || end.second() != 0
            || end.nanosecond() != 0
        {
            return Err(invalid("window", "start and end must be whole minutes"));
        }
        if start >= end {
            return Err(invalid(
                "window",
                format!("start {} must be before end {}", hhmm(start), hhmm(end)),
            ));
        }
        Ok(Window { start, end })
    }

    /// A window from two `"HH:MM"` strings.
    pub fn parse(start: &str, end: &str) -> Result<Window, ComplianceError> {
        Window::from_text(start, end, "window")
    }

    fn from_text(start: &str, end: &str, field: &str) -> Result<Window, ComplianceError> {
        let start_time = parse_hhmm(start).map_err(|r| invalid(format!("{field}.start"), r))?;
        let end_time = parse_hhmm(end).map_err(|r| invalid(format!("{field}.end"), r))?;
        if start_time >= end_time {
            return Err(invalid(
                field,
                format!("start {start} must be before end {end}"),
            ));
        }
        Ok(Window {
            start: start_time,
            end: end_time,
        })
    }

    pub fn start(&self) -> NaiveTime {
        self.start
    }

    pub fn end(&self) -> NaiveTime {
        self.end
    }

    pub fn contains(&self, time: NaiveTime) -> bool {
        self.start <= time && time < self.end
    }

    /// The times inside both windows, if any.
    pub fn intersect(&self, other: &Window) -> Option<Window> {
        let start = self.start.max(other.start);
        let end = self.end.min(other.end);
        (start < end).then_some(Window { start, end })
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}–{}", hhmm(self.start), hhmm(self.end))
    }
}

impl TryFrom<WindowText> for Window {
    type Error = ComplianceError;

    fn try_from(text: WindowText) -> Result<Self, Self::Error> {
        Window::from_text(&text.start, &text.end, "window")
    }
}

impl From<Window> for WindowText {
    fn from(window: Window) -> Self {
        WindowText {
            start: hhmm(window.start),
            end: hhmm(window.end),
        }
    }
}

const fn hour(h: u32) -> NaiveTime {
    match NaiveTime::from_hms_opt(h, 0, 0) {
        Some(time) => time,
        None => NaiveTime::MIN,
    }
}

fn hhmm(time: NaiveTime) -> String {
    time.format("%H:%M").to_string()
}

/// Strict `HH:MM`, 00:00 to 23:59.
fn parse_hhmm(text: &str) -> Result<NaiveTime, String> {
    let bad = || format!("{text:?} is not a time of day in HH:MM form (00:00 to 23:59)");
    let bytes = text.as_bytes();
    let digits_at = |range: std::ops::Range<usize>| bytes[range].iter().all(u8::is_ascii_digit);
    if bytes.len() != 5 || bytes[2] != b':' || !digits_at(0..2) || !digits_at(3..5) {
        return Err(bad());
    }
    let hour = u32::from(bytes[0] - b'0') * 10 + u32::from(bytes[1] - b'0');
    let minute = u32::from(bytes[3] - b'0') * 10 + u32::from(bytes[4] - b'0');
    NaiveTime::from_hms_opt(hour, minute, 0).ok_or_else(bad)
}

/// One set of restrictions: the federal default, or one state's rules. The
/// gate applies the default and the called party's state together, so a
/// state only needs to say where it is stricter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSet {
    /// Where the rule comes from (statute, secondary source), for audit.
    pub source: String,
    /// Every day's window unless `saturday`/`sunday` override it. Required
    /// for the default; `None` for a state adds no time-of-day limit.
    pub window: Option<Window>,
    pub saturday: Option<Window>,
    pub sunday: Option<Window>,
    pub no_sunday: bool,
    /// No contact on the dates listed in [`Rules::holidays`].
    pub no_holidays: bool,
    /// Evaluate this rule set's windows and days in this fixed zone (as well
    /// as in the called party's), for statutes written against one zone,
    /// e.g. "8 a.m. to 8 p.m. Central Standard Time".
    pub window_zone: Option<Tz>,
    pub max_calls_per_24h: Option<u32>,
    pub max_sms_per_24h: Option<u32>,
}

impl RuleSet {
    /// Only a window, no other restriction.
    pub fn with_window(source: impl Into<String>, window: Window) -> RuleSet {
        RuleSet {
            source: source.into(),
            window: Some(window),
            saturday: None,
            sunday: None,
            no_sunday: false,
            no_holidays: false,
            window_zone: None,
            max_calls_per_24h: None,
            max_sms_per_24h: None,
        }
    }

    fn window_on(&self, weekday: Weekday) -> Option<Window> {
        match weekday {
            Weekday::Sat => self.saturday.or(self.window),
            Weekday::Sun => self.sunday.or(self.window),
            _ => self.window,
        }
    }

    fn cap(&self, channel: Channel) -> Option<u32> {
        match channel {
            Channel::Voice => self.max_calls_per_24h,
            Channel::Sms => self.max_sms_per_24h,
        }
    }
}

/// The whole rules table, as loaded from `config/compliance.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    /// Recorded with decisions so an audit can tell which table applied.
    pub version: String,
    pub default: RuleSet,
    /// Keyed by the two-letter code of `area_codes::state_of_area_code`.
    pub states: BTreeMap<String, RuleSet>,
    /// Local dates on which `no_holidays` rule sets forbid contact.
    pub holidays: BTreeSet<NaiveDate>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRules {
    version: String,
    #[serde(default)]
    holidays: Vec<String>,
    default: RawRuleSet,
    #[serde(default)]
    states: BTreeMap<String, RawRuleSet>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRuleSet {
    source: String,
    window: Option<WindowText>,
    saturday: Option<WindowText>,
    sunday: Option<WindowText>,
    #[serde(default)]
    no_sunday: bool,
    #[serde(default)]
    no_holidays: bool,
    window_zone: Option<String>,
    max_calls_per_24h: Option<u32>,
    max_sms_per_24h: Option<u32>,
}

impl RawRuleSet {
    fn validate(self, path: &str) -> Result<RuleSet, ComplianceError> {
        let window = |text: Option<WindowText>, name: &str| {
            text.map(|t| Window::from_text(&t.start, &t.end, &format!("{path}.{name}")))
                .transpose()
        };
        if self.source.trim().is_empty() {
            return Err(invalid(
                format!("{path}.source"),
                "must name the rule's source",
            ));
        }
        let rule = RuleSet {
            source: self.source,
            window: window(self.window, "window")?,
            saturday: window(self.saturday, "saturday")?,
            sunday: window(self.sunday, "sunday")?,
            no_sunday: self.no_sunday,
            no_holidays: self.no_holidays,
            window_zone: self
                .window_zone
                .map(|z| {
                    z.parse::<Tz>().map_err(|_| {
                        invalid(
                            format!("{path}.window_zone"),
                            format!("{z:?} is not an IANA time zone"),
                        )
                    })
                })
                .transpose()?,
            max_calls_per_24h: self.max_calls_per_24h,
            max_sms_per_24h: self.max_sms_per_24h,
        };
        if rule.no_sunday && rule.sunday.is_some() {
            return Err(invalid(
                format!("{path}.sunday"),
                "conflicts with no_sunday = true",
            ));
        }
        if rule.window_zone.is_some() && rule.window.is_none() {
            return Err(invalid(
                format!("{path}.window"),
                "is required when window_zone is set",
            ));
        }
        for (name, cap) in [
            ("max_calls_per_24h", rule.max_calls_per_24h),
            ("max_sms_per_24h", rule.max_sms_per_24h),
        ] {
            if cap == Some(0) {
                return Err(invalid(format!("{path}.{name}"), "must be at least 1"));
            }
        }
        Ok(rule)
    }
}

impl Rules {
    /// Only the federal window, 08:00–21:00 local (47 CFR 64.1200(c)(1)).
    pub fn federal_only() -> Rules {
        let window = Window {
            start: hour(8),
            end: hour(21),
        };
        Rules {
            version: "federal-only".to_owned(),
            default: RuleSet::with_window("47 CFR 64.1200(c)(1)", window),
            states: BTreeMap::new(),
            holidays: BTreeSet::new(),
        }
    }

    pub fn from_toml(text: &str) -> Result<Rules, ComplianceError> {
        // toml's message names unknown or mistyped keys and their location.
        let raw: RawRules =
            toml::from_str(text).map_err(|e| ComplianceError::Parse(e.to_string()))?;
        if raw.version.trim().is_empty() {
            return Err(invalid("version", "must not be empty"));
        }
        let default = raw.default.validate("default")?;
        if default.window.is_none() {
            return Err(invalid("default.window", "is required"));
        }
        let mut states = BTreeMap::new();
        for (code, rule) in raw.states {
            let path = format!("states.{code}");
            if !area_codes::is_known_region(&code) {
                return Err(invalid(
                    path,
                    "is not a two-letter state, territory or province code of the area-code table",
                ));
            }
            let rule = rule.validate(&path)?;
            states.insert(code, rule);
        }
        let mut holidays = BTreeSet::new();
        for (i, text) in raw.holidays.iter().enumerate() {
            let date = (text.len() == 10)
                .then(|| NaiveDate::parse_from_str(text, "%Y-%m-%d").ok())
                .flatten()
                .ok_or_else(|| {
                    invalid(
                        format!("holidays[{i}]"),
                        format!("{text:?} is not a date in YYYY-MM-DD form"),
                    )
                })?;
            holidays.insert(date);
        }
        Ok(Rules {
            version: raw.version,
            default,
            states,
            holidays,
        })
    }

    pub fn state(&self, code: &str) -> Option<&RuleSet> {
        self.states.get(code)
    }

    pub fn is_holiday(&self, date: NaiveDate) -> bool {
        self.holidays.contains(&date)
    }
}

// ---------------------------------------------------------------------------
// Time zone resolution
// ---------------------------------------------------------------------------

/// The called party's zone: the contact's IANA zone if it is a valid one
/// naming a place, else the zone of the majority of the phone's area code,
/// else `None`. UTC, GMT and the `Etc/` zones are treated as absent: CRMs
/// write them as placeholders, and trusting one would put an East-coast
/// lead's "08:00" at 03:00. So are the fixed-offset abbreviations EST, MST
/// and HST, which people write meaning "Eastern" and which would be an hour
/// off all summer.
pub fn resolve_zone(contact_timezone: Option<&str>, phone: &str) -> Option<Tz> {
    resolve_zones(contact_timezone, phone).into_iter().next()
}

/// Every zone the called party may be in: the contact's own zone alone when
/// valid, else all zones the area code spans (majority first), else none.
pub fn resolve_zones(contact_timezone: Option<&str>, phone: &str) -> Vec<Tz> {
    if let Some(zone) = contact_timezone.and_then(contact_zone) {
        return vec![zone];
    }
    let Some(npa) = area_codes::area_code(phone) else {
        return Vec::new();
    };
    area_codes::zone_of_area_code(npa)
        .into_iter()
        .chain(area_codes::other_zones_of_area_code(npa).iter().copied())
        .filter_map(|name| name.parse::<Tz>().ok())
        .collect()
}

fn contact_zone(name: &str) -> Option<Tz> {
    let zone: Tz = name.trim().parse().ok()?;
    let canonical = zone.name();
    let placeholder = canonical.starts_with("Etc/")
        || matches!(
            canonical,
            "UTC"
                | "UCT"
                | "GMT"
                | "GMT0"
                | "GMT+0"
                | "GMT-0"
                | "Greenwich"
                | "Universal"
                | "Zulu"
                | "Factory"
                | "EST"
                | "MST"
                | "HST"
        );
    (!placeholder).then_some(zone)
}

/// The state (or province) whose rules apply, from the phone's area code.
pub fn state_of_phone(phone: &str) -> Option<&'static str> {
    area_codes::area_code(phone).and_then(area_codes::state_of_area_code)
}

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
            reason: violation.into_reason(until),
        },
        None => deny(BlockReason::NoPermittedTime {
            horizon_days: SEARCH_HORIZON_DAYS,
        }),
    }
}

/// Rule sets that must all hold in one zone's local time.
struct Constraint<'r> {
    zone: Tz,
    sets: Vec<&'r RuleSet>,
    /// The state whose rules are among `sets`, for messages.
    state: Option<&'r str>,
}

struct Cap<'r> {
    max: u32,
    state: Option<&'r str>,
}

/// The rules of one contact, ready to evaluate at any instant.
struct Schedule<'r, 'a> {
    holidays: &'r BTreeSet<NaiveDate>,
    constraints: Vec<Constraint<'r>>,
    cap: Option<Cap<'r>>,
    channel: Channel,
    attempts: &'a [DateTime<Utc>],
}

enum Day {
    Open(Window),
    Closed(ClosedDay),
}

enum Violation {
    Hours {
        zone: Tz,
        local: NaiveDateTime,
        window: Window,
        state: Option<String>,
    },
    Closed {
        zone: Tz,
        local: NaiveDateTime,
        day: ClosedDay,
        state: Option<String>,
    },
    Cap {
        zone: Tz,
        max: u32,
        attempts: u32,
        state: Option<String>,
        channel: Channel,
    },
}

impl Violation {
    fn into_reason(self, until: DateTime<Utc>) -> BlockReason {
        let retry_in = |zone: Tz| until.with_timezone(&zone).naive_local();
        match self {
            Violation::Hours {
                zone,
                local,
                window,
                state,
            } => BlockReason::OutsideCallingHours {
                zone: zone.name().to_owned(),
                local_time: local,
                window,
                state,
                retry_local: retry_in(zone),
            },
            Violation::Closed {
                zone,
                local,
                day,
                state,
            } => BlockReason::ClosedDay {
                zone: zone.name().to_owned(),
                local_time: local,
                day,
                state,
                retry_local: retry_in(zone),
            },
            Violation::Cap {
                zone,
                max,
                attempts,
                state,
                channel,
            } => BlockReason::FrequencyCap {
                channel,
                max,
                window_hours: CAP_WINDOW_HOURS,
                attempts,
                state,
                zone: zone.name().to_owned(),
                retry_local: retry_in(zone),
            },
        }
    }
}

fn cap_window() -> TimeDelta {
    TimeDelta::hours(i64::from(CAP_WINDOW_HOURS))
}

impl<'r, 'a> Schedule<'r, 'a> {
    /// `None` when no zone is known.
    fn new(
        rules: &'r Rules,
        zones: &[Tz],
        state_code: Option<&'r str>,
        input: &GateInput<'a>,
    ) -> Option<Self> {
        if zones.is_empty() {
            return None;
        }
        let state = state_code.and_then(|code| rules.state(code).map(|rule| (code, rule)));
        let mut constraints: Vec<Constraint<'r>> = zones
            .iter()
            .map(|&zone| Constraint {
                zone,
                sets: std::iter::once(&rules.default)
                    .chain(state.map(|(_, rule)| rule))
                    .collect(),
                state: state.map(|(code, _)| code),
            })
            .collect();
        let labelled = std::iter::once((None, &rules.default))
            .chain(state.map(|(code, rule)| (Some(code), rule)));
        for (label, rule) in labelled {
            if let Some(zone) = rule.window_zone {
                constraints.push(Constraint {
                    zone,
                    sets: vec![rule],
                    state: label,
                });
            }
        }
        // The strictest cap of the default and the state's.
        let mut cap: Option<Cap<'r>> = rules
            .default
            .cap(input.channel)
            .map(|max| Cap { max, state: None });
        if let Some((code, rule)) = state {
            if let Some(max) = rule.cap(input.channel) {
                if cap.as_ref().is_none_or(|c| max <= c.max) {
                    cap = Some(Cap {
                        max,
                        state: Some(code),
                    });
                }
            }
        }
        Some(Schedule {
            holidays: &rules.holidays,
            constraints,
            cap,
            channel: input.channel,
            attempts: input.recent_attempts,
        })
    }

    /// The window of `date` in a constraint: every rule set's window for the
    /// weekday intersected, or why the day is closed.
    fn day(&self, constraint: &Constraint<'_>, date: NaiveDate) -> Day {
        let weekday = date.weekday();
        let holiday = self.holidays.contains(&date);
        let mut window: Option<Window> = None;
        for rule in &constraint.sets {
            if rule.no_holidays && holiday {
                return Day::Closed(ClosedDay::Holiday);
            }
            if rule.no_sunday && weekday == Weekday::Sun {
                return Day::Closed(ClosedDay::Sunday);
            }
            if let Some(w) = rule.window_on(weekday) {
                window = match window {
                    None => Some(w),
                    Some(acc) => match acc.intersect(&w) {
                        Some(both) => Some(both),
                        None => return Day::Closed(ClosedDay::NoWindow),
                    },
                };
            }
        }
        // Validation guarantees a window (the default's, or the one a
        // `window_zone` rule must have); without one, stay closed.
        window.map_or(Day::Closed(ClosedDay::NoWindow), Day::Open)
    }

    fn attempts_in_window(&self, at: DateTime<Utc>) -> u32 {
        let count = self
            .attempts
            .iter()
            .filter(|&&attempt| attempt + cap_window() > at)
            .count();
        u32::try_from(count).unwrap_or(u32::MAX)
    }

    /// The first rule broken at `at`, calling hours before caps.
    fn violation(&self, at: DateTime<Utc>) -> Option<Violation> {
        for constraint in &self.constraints {
            let local = at.with_timezone(&constraint.zone).naive_local();
            let state = constraint.state.map(str::to_owned);
            match self.day(constraint, local.date()) {
                Day::Closed(day) => {
                    return Some(Violation::Closed {
                        zone: constraint.zone,
                        local,
                        day,
                        state,
                    })
                }
                Day::Open(window) if !window.contains(local.time()) => {
                    return Some(Violation::Hours {
                        zone: constraint.zone,
                        local,
                        window,
                        state,
                    })
                }
                Day::Open(_) => {}
            }
        }
        let cap = self.cap.as_ref()?;
        let attempts = self.attempts_in_window(at);
        (attempts >= cap.max).then(|| Violation::Cap {
            zone: self.constraints.first().map_or(Tz::UTC, |c| c.zone),
            max: cap.max,
            attempts,
            state: cap.state.map(str::to_owned),
            channel: self.channel,
        })
    }

    /// The earliest instant after `now` at which nothing is violated.
    ///
    /// Each rule holds on intervals that open at a known kind of instant: a
    /// window opens when local time reaches its start (once, or twice when
    /// the start falls in a repeated fall-back hour) or when the clock jumps
    /// into it at a DST transition (a start inside a skipped spring-forward
    /// hour opens at the transition); a cap opens when an attempt ages out.
    /// So the earliest permitted instant is the earliest such candidate at
    /// which every rule holds, and checking candidates in order finds it
    /// exactly, to the second, with no stepping.
    fn next_allowed(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let horizon = now.checked_add_signed(TimeDelta::days(i64::from(SEARCH_HORIZON_DAYS)))?;
        let mut candidates: Vec<DateTime<Utc>> = Vec::new();
        for constraint in &self.constraints {
            let zone = constraint.zone;
            let today = now.with_timezone(&zone).date_naive();
            for offset in -1..=i64::from(SEARCH_HORIZON_DAYS) {
                let Some(date) = today.checked_add_signed(TimeDelta::days(offset)) else {
                    continue;
                };
                if let Day::Open(window) = self.day(constraint, date) {
                    candidates.extend(instants_of(zone, date.and_time(window.start)));
                }
            }
            candidates.extend(transitions(zone, now, horizon));
        }
        candidates.extend(
            self.attempts
                .iter()
                .filter_map(|attempt| attempt.checked_add_signed(cap_window())),
        );
        candidates.retain(|&c| c > now && c <= horizon);
        candidates.sort_unstable();
        candidates.dedup();
        candidates
            .into_iter()
            .find(|&c| self.violation(c).is_none())
    }
}

/// Every UTC instant showing `local` on the zone's clock: one normally, two
/// in a repeated fall-back hour, none in a skipped spring-forward hour.
fn instants_of(zone: Tz, local: NaiveDateTime) -> Vec<DateTime<Utc>> {
    match zone.from_local_datetime(&local) {
        MappedLocalTime::Single(t) => vec![t.with_timezone(&Utc)],
        MappedLocalTime::Ambiguous(a, b) => vec![a.with_timezone(&Utc), b.with_timezone(&Utc)],
        MappedLocalTime::None => Vec::new(),
    }
}

/// The instants in `(from, to]` at which the zone's UTC offset changes,
/// found by hourly steps and bisection to the second (zones change offset
/// at most once in any hour, and always on a whole second).
fn transitions(zone: Tz, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let offset_at = |seconds: i64| {
        DateTime::from_timestamp(seconds, 0)
            .map(|at| zone.offset_from_utc_datetime(&at.naive_utc()).fix())
    };
    let mut found = Vec::new();
    let (mut at, end) = (from.timestamp(), to.timestamp());
    let Some(mut offset) = offset_at(at) else {
        return found;
    };
    while at < end {
        let next = at.saturating_add(3600);
        let Some(next_offset) = offset_at(next) else {
            break;
        };
        if next_offset != offset {
            // Invariant: the offset at `lo` is the old one, at `hi` the new.
            let (mut lo, mut hi) = (at, next);
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                if offset_at(mid) == Some(offset) {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            found.extend(DateTime::from_timestamp(hi, 0));
        }
        at = next;
        offset = next_offset;
    }
    found
}

#[cfg(test)]
#[path = "compliance_tests.rs"]
mod tests;
