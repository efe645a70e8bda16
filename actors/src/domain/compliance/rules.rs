//! The rules table (`config/compliance.toml`): calling windows, closed days and frequency caps
//! per state, parsed and validated.

use super::*;

/// A local time-of-day window: contact is allowed from `start` (inclusive)
/// to `end` (exclusive), both whole minutes, `start < end`. An end written
/// `"24:00"` runs the window to midnight (rules for informational calls, or a
/// test bed that must reach its leads at any hour).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "WindowText", into = "WindowText")]
pub struct Window {
    start: NaiveTime,
    end: NaiveTime,
}

/// A window as written in configuration and JSON: `"HH:MM"` strings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WindowText {
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
        let end_time = if end == "24:00" {
            END_OF_DAY
        } else {
            parse_hhmm(end).map_err(|r| invalid(format!("{field}.end"), r))?
        };
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
        self.start <= time && (time < self.end || self.end == END_OF_DAY)
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

pub(super) const fn hour(h: u32) -> NaiveTime {
    match NaiveTime::from_hms_opt(h, 0, 0) {
        Some(time) => time,
        None => NaiveTime::MIN,
    }
}

/// The end of a window that runs to midnight, written `"24:00"`: the last instant of the day,
/// which [`Window::contains`] counts as inside.
pub(super) const END_OF_DAY: NaiveTime = match NaiveTime::from_hms_nano_opt(23, 59, 59, 999_999_999)
{
    Some(time) => time,
    None => NaiveTime::MIN,
};

pub(super) fn hhmm(time: NaiveTime) -> String {
    if time == END_OF_DAY {
        return "24:00".to_owned();
    }
    time.format("%H:%M").to_string()
}

/// Strict `HH:MM`, 00:00 to 23:59.
pub(super) fn parse_hhmm(text: &str) -> Result<NaiveTime, String> {
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

    pub(super) fn window_on(&self, weekday: Weekday) -> Option<Window> {
        match weekday {
            Weekday::Sat => self.saturday.or(self.window),
            Weekday::Sun => self.sunday.or(self.window),
            _ => self.window,
        }
    }

    pub(super) fn cap(&self, channel: Channel) -> Option<u32> {
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
    /// Where a recorded call must be announced.
    pub recording: RecordingRules,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRules {
    version: String,
    #[serde(default)]
    holidays: Vec<String>,
    default: RawRuleSet,
    #[serde(default)]
    states: BTreeMap<String, RawRuleSet>,
    #[serde(default)]
    recording: Option<RawRecording>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRuleSet {
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
            recording: RecordingRules::default(),
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
        let recording = match raw.recording {
            Some(table) => table.validate()?,
            None => RecordingRules::default(),
        };
        Ok(Rules {
            version: raw.version,
            default,
            states,
            holidays,
            recording,
        })
    }

    pub fn state(&self, code: &str) -> Option<&RuleSet> {
        self.states.get(code)
    }

    pub fn is_holiday(&self, date: NaiveDate) -> bool {
        self.holidays.contains(&date)
    }
}
