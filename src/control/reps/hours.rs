//! A rep's working hours: the days of the week a span starts on and the span's local times.
//! Pure: `contains` takes the moment and the zone as inputs, so it is tested without a clock.

use std::fmt;

use chrono::{DateTime, Datelike, Timelike, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize, Serializer};

use crate::control::ControlError;

/// A day of the week, as the API spells it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Day {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Day {
    pub const ALL: [Day; 7] = [
        Day::Mon,
        Day::Tue,
        Day::Wed,
        Day::Thu,
        Day::Fri,
        Day::Sat,
        Day::Sun,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Day::Mon => "mon",
            Day::Tue => "tue",
            Day::Wed => "wed",
            Day::Thu => "thu",
            Day::Fri => "fri",
            Day::Sat => "sat",
            Day::Sun => "sun",
        }
    }

    fn of(day: Weekday) -> Day {
        Day::ALL[day.num_days_from_monday() as usize]
    }

    fn parse(field: &'static str, raw: &str) -> Result<Day, ControlError> {
        Day::ALL
            .into_iter()
            .find(|d| d.as_str() == raw.trim())
            .ok_or_else(|| {
                ControlError::invalid(
                    field,
                    format!("unknown day {raw:?}: expected mon, tue, wed, thu, fri, sat or sun"),
                )
            })
    }
}

/// A local time of day in minutes since midnight, written `HH:MM`. `24:00` ends a day's span;
/// no span starts there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct LocalTime(u16);

const END_OF_DAY: u16 = 24 * 60;

impl LocalTime {
    fn parse(field: &'static str, raw: &str, is_end: bool) -> Result<LocalTime, ControlError> {
        let bad = || ControlError::invalid(field, format!("{raw:?} is not a time HH:MM (24 h)"));
        let (h, m) = raw.trim().split_once(':').ok_or_else(bad)?;
        let two_digits = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
        if !two_digits(h) || !two_digits(m) {
            return Err(bad());
        }
        let h: u16 = h.parse().map_err(|_| bad())?;
        let m: u16 = m.parse().map_err(|_| bad())?;
        if m > 59 || h > 24 || (h == 24 && m != 0) {
            return Err(bad());
        }
        let minutes = h * 60 + m;
        if minutes == END_OF_DAY && !is_end {
            return Err(ControlError::invalid(field, "a span cannot start at 24:00"));
        }
        Ok(LocalTime(minutes))
    }
}

impl fmt::Display for LocalTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

impl Serialize for LocalTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// When a rep takes calls: on each of `days`, from `from` to `to` local time. A span whose `to`
/// is earlier than its `from` runs overnight and ends the next morning (a Friday 22:00–06:00
/// shift ends on Saturday). Valid by construction: built by `new` only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct WorkingHours {
    /// The days a span starts on, Monday first.
    days: Vec<Day>,
    /// Local start, `HH:MM`.
    #[schema(value_type = String, example = "09:00")]
    from: LocalTime,
    /// Local end, `HH:MM` (`24:00`: midnight); earlier than `from` for an overnight span.
    #[schema(value_type = String, example = "17:00")]
    to: LocalTime,
}

/// The stored form (the view's own JSON), read back through `new`'s checks.
#[derive(Deserialize)]
struct Stored {
    days: Vec<String>,
    from: String,
    to: String,
}

impl WorkingHours {
    /// Checks every part, naming it as the API's body does (`working_hours.days`, ...).
    pub fn new<S: AsRef<str>>(days: &[S], from: &str, to: &str) -> Result<Self, ControlError> {
        if days.is_empty() {
            return Err(ControlError::invalid(
                "working_hours.days",
                "name at least one day",
            ));
        }
        let mut parsed = days
            .iter()
            .map(|d| Day::parse("working_hours.days", d.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        parsed.sort();
        parsed.dedup();
        let from = LocalTime::parse("working_hours.from", from, false)?;
        let to = LocalTime::parse("working_hours.to", to, true)?;
        if from == to {
            return Err(ControlError::invalid(
                "working_hours.to",
                "must differ from `from` (00:00 to 24:00 is a whole day)",
            ));
        }
        Ok(WorkingHours {
            days: parsed,
            from,
            to,
        })
    }

    /// The command line's form: `mon-fri,09:00-17:00` or `mon,wed,fri,22:00-06:00`.
    pub fn parse_spec(spec: &str) -> Result<Self, ControlError> {
        let bad = |m: &str| ControlError::invalid("hours", m.to_owned());
        let (days, span) = spec
            .trim()
            .rsplit_once(',')
            .ok_or_else(|| bad("expected DAYS,HH:MM-HH:MM, e.g. mon-fri,09:00-17:00"))?;
        let (from, to) = span
            .split_once('-')
            .ok_or_else(|| bad("expected a span HH:MM-HH:MM after the days"))?;
        let mut names = Vec::new();
        for part in days.split(',') {
            match part.split_once('-') {
                Some((first, last)) => {
                    let first = Day::parse("hours", first)?;
                    let last = Day::parse("hours", last)?;
                    if first > last {
                        return Err(bad("a day range runs Monday to Sunday, e.g. mon-fri"));
                    }
                    names.extend(
                        Day::ALL[first as usize..=last as usize]
                            .iter()
                            .map(|d| d.as_str()),
                    );
                }
                None => names.push(part),
            }
        }
        WorkingHours::new(&names, from, to)
    }

    /// Reads the stored JSON; a row that fails the checks is corrupt, not the caller's fault.
    pub(crate) fn from_stored(text: &str) -> Result<Self, neuronx_supervision::StoreError> {
        let corrupt = |e: String| neuronx_supervision::StoreError::Corrupt(e);
        let s: Stored = serde_json::from_str(text).map_err(|e| corrupt(e.to_string()))?;
        WorkingHours::new(&s.days, &s.from, &s.to).map_err(|e| corrupt(e.to_string()))
    }

    pub(crate) fn to_stored(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Whether `now` falls in these hours in zone `tz`. The moment is turned into the zone's
    /// wall clock first, so a daylight-saving change moves the span in UTC with the clock.
    pub fn contains(&self, now: DateTime<Utc>, tz: Tz) -> bool {
        let local = now.with_timezone(&tz);
        // u16: at most 23 * 60 + 59.
        let minute = (local.hour() * 60 + local.minute()) as u16;
        let today = Day::of(local.weekday());
        let yesterday = Day::of(local.weekday().pred());
        let on = |d: Day| self.days.contains(&d);
        if self.from < self.to {
            on(today) && self.from.0 <= minute && minute < self.to.0
        } else {
            // Overnight: the evening part on a listed day, the morning part the day after one.
            (on(today) && minute >= self.from.0) || (on(yesterday) && minute < self.to.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339)
            .map(|t| t.with_timezone(&Utc))
            .expect("a time")
    }

    fn tz(name: &str) -> Tz {
        name.parse().expect("a zone")
    }

    #[test]
    fn a_day_span_holds_from_its_start_to_just_before_its_end() {
        let h = WorkingHours::parse_spec("mon-fri,09:00-17:00").expect("valid");
        let ny = tz("America/New_York");
        // Wednesday 2024-01-10, EST (UTC-5).
        assert!(!h.contains(at("2024-01-10T13:59:00Z"), ny), "08:59");
        assert!(h.contains(at("2024-01-10T14:00:00Z"), ny), "09:00");
        assert!(h.contains(at("2024-01-10T21:59:00Z"), ny), "16:59");
        assert!(!h.contains(at("2024-01-10T22:00:00Z"), ny), "17:00");
        // Saturday.
        assert!(!h.contains(at("2024-01-13T15:00:00Z"), ny));
        // The same instant is in hours in one zone and not in another.
        assert!(!h.contains(at("2024-01-10T14:00:00Z"), tz("America/Los_Angeles")));
    }

    #[test]
    fn an_overnight_span_ends_the_next_morning() {
        let h = WorkingHours::new(&["fri"], "22:00", "06:00").expect("valid");
        let utc = tz("UTC");
        // Friday 2024-01-12 evening, Saturday morning; not Friday morning nor Saturday evening.
        assert!(h.contains(at("2024-01-12T22:00:00Z"), utc));
        assert!(h.contains(at("2024-01-12T23:59:00Z"), utc));
        assert!(h.contains(at("2024-01-13T00:00:00Z"), utc));
        assert!(h.contains(at("2024-01-13T05:59:00Z"), utc));
        assert!(!h.contains(at("2024-01-13T06:00:00Z"), utc));
        assert!(
            !h.contains(at("2024-01-12T05:00:00Z"), utc),
            "Thursday's night"
        );
        assert!(
            !h.contains(at("2024-01-13T22:00:00Z"), utc),
            "Saturday evening"
        );
        // Sunday night into Monday: the week wraps.
        let sun = WorkingHours::new(&["sun"], "20:00", "02:00").expect("valid");
        assert!(
            sun.contains(at("2024-01-15T01:00:00Z"), utc),
            "Monday 01:00"
        );
    }

    #[test]
    fn daylight_saving_moves_the_span_with_the_local_clock() {
        let h = WorkingHours::parse_spec("mon-fri,09:00-17:00").expect("valid");
        let ny = tz("America/New_York");
        // 13:30 UTC is 08:30 EST on Friday 2024-03-08 and 09:30 EDT on Monday 2024-03-11.
        assert!(!h.contains(at("2024-03-08T13:30:00Z"), ny));
        assert!(h.contains(at("2024-03-11T13:30:00Z"), ny));
        // In November it goes back: 13:30 UTC is 08:30 EST on Monday 2024-11-04.
        assert!(!h.contains(at("2024-11-04T13:30:00Z"), ny));
        // An overnight span across the spring change (Sunday 2024-03-10, 02:00 skipped):
        // 05:30 EDT is 09:30 UTC, in; 06:30 EDT is 10:30 UTC, out.
        let night = WorkingHours::new(&["sat"], "22:00", "06:00").expect("valid");
        assert!(night.contains(at("2024-03-10T09:30:00Z"), ny));
        assert!(!night.contains(at("2024-03-10T10:30:00Z"), ny));
        // Saturday 22:30 EST is 03:30 UTC on Sunday.
        assert!(night.contains(at("2024-03-10T03:30:00Z"), ny));
    }

    #[test]
    fn a_span_may_end_at_midnight() {
        let h = WorkingHours::new(&["mon"], "00:00", "24:00").expect("valid");
        let utc = tz("UTC");
        assert!(h.contains(at("2024-01-15T00:00:00Z"), utc));
        assert!(h.contains(at("2024-01-15T23:59:00Z"), utc));
        assert!(!h.contains(at("2024-01-16T00:00:00Z"), utc));
    }

    #[test]
    fn bad_hours_name_their_part() {
        let field = |r: Result<WorkingHours, ControlError>| match r {
            Err(ControlError::Invalid { field, .. }) => field,
            other => panic!("expected invalid, got {other:?}"),
        };
        let none: [&str; 0] = [];
        assert_eq!(
            field(WorkingHours::new(&none, "09:00", "17:00")),
            "working_hours.days"
        );
        assert_eq!(
            field(WorkingHours::new(&["funday"], "09:00", "17:00")),
            "working_hours.days"
        );
        for bad in [
            "9:00", "25:00", "09:60", "24:00", "nine", "", "09:00:00", "+9:00",
        ] {
            assert_eq!(
                field(WorkingHours::new(&["mon"], bad, "17:00")),
                "working_hours.from",
                "{bad}"
            );
        }
        assert_eq!(
            field(WorkingHours::new(&["mon"], "09:00", "24:01")),
            "working_hours.to"
        );
        assert_eq!(
            field(WorkingHours::new(&["mon"], "09:00", "09:00")),
            "working_hours.to"
        );
        for bad in [
            "mon-fri",
            "fri-mon,09:00-17:00",
            "mon-fri,0900",
            "xyz,09:00-17:00",
        ] {
            assert!(WorkingHours::parse_spec(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn days_are_deduplicated_in_week_order_and_stored_as_the_view_shows_them() {
        let h = WorkingHours::parse_spec("fri,mon,mon-tue,22:00-06:00").expect("valid");
        let stored = h.to_stored();
        assert_eq!(
            stored,
            r#"{"days":["mon","tue","fri"],"from":"22:00","to":"06:00"}"#
        );
        assert_eq!(WorkingHours::from_stored(&stored).expect("reads back"), h);
    }
}
