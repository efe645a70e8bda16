//! The search for the earliest instant at which every rule holds, in UTC against each zone's
//! real offsets, so DST gaps and repeated hours are handled.

use super::*;

/// Rule sets that must all hold in one zone's local time.
pub(super) struct Constraint<'r> {
    zone: Tz,
    sets: Vec<&'r RuleSet>,
    /// The state whose rules are among `sets`, for messages.
    state: Option<&'r str>,
}

pub(super) struct Cap<'r> {
    max: u32,
    state: Option<&'r str>,
}

/// The rules of one contact, ready to evaluate at any instant.
pub(super) struct Schedule<'r, 'a> {
    holidays: &'r BTreeSet<NaiveDate>,
    constraints: Vec<Constraint<'r>>,
    cap: Option<Cap<'r>>,
    channel: Channel,
    attempts: &'a [DateTime<Utc>],
}

pub(super) enum Day {
    Open(Window),
    Closed(ClosedDay),
}

pub(super) enum Violation {
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
    pub(super) fn into_reason(self, until: DateTime<Utc>) -> BlockReason {
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

pub(super) fn cap_window() -> TimeDelta {
    TimeDelta::hours(i64::from(CAP_WINDOW_HOURS))
}

impl<'r, 'a> Schedule<'r, 'a> {
    /// `None` when no zone is known.
    pub(super) fn new(
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

    /// The calling-hours rule one zone breaks at `at`, if any.
    fn hours_violation(&self, constraint: &Constraint<'_>, at: DateTime<Utc>) -> Option<Violation> {
        let local = at.with_timezone(&constraint.zone).naive_local();
        let state = constraint.state.map(str::to_owned);
        match self.day(constraint, local.date()) {
            Day::Closed(day) => Some(Violation::Closed {
                zone: constraint.zone,
                local,
                day,
                state,
            }),
            Day::Open(window) if !window.contains(local.time()) => Some(Violation::Hours {
                zone: constraint.zone,
                local,
                window,
                state,
            }),
            Day::Open(_) => None,
        }
    }

    /// The first rule broken at `at`, calling hours before caps.
    pub(super) fn violation(&self, at: DateTime<Utc>) -> Option<Violation> {
        if let Some(hours) = self
            .constraints
            .iter()
            .find_map(|constraint| self.hours_violation(constraint, at))
        {
            return Some(hours);
        }
        self.cap_violation(at)
    }

    fn cap_violation(&self, at: DateTime<Utc>) -> Option<Violation> {
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

    /// What a deferral from `now` to `until` is reported as: of the rules broken at `now`, the
    /// one still broken a second before `until`, the stricter zone that held the contact back
    /// longest (a contact whose CRM zone and area code disagree is told which of them waits), else
    /// the first rule broken now.
    pub(super) fn binding(&self, now: DateTime<Utc>, until: DateTime<Utc>) -> Option<Violation> {
        let last_closed = until - TimeDelta::seconds(1);
        let hours_at = |at| {
            self.constraints
                .iter()
                .filter(move |c| self.hours_violation(c, at).is_some())
        };
        let still = hours_at(now).find(|c| self.hours_violation(c, last_closed).is_some());
        match still {
            Some(constraint) => self.hours_violation(constraint, now),
            None => self.violation(now),
        }
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
    pub(super) fn next_allowed(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
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
                    candidates.extend(instants_of(zone, date.and_time(window.start())));
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
pub(super) fn instants_of(zone: Tz, local: NaiveDateTime) -> Vec<DateTime<Utc>> {
    match zone.from_local_datetime(&local) {
        MappedLocalTime::Single(t) => vec![t.with_timezone(&Utc)],
        MappedLocalTime::Ambiguous(a, b) => vec![a.with_timezone(&Utc), b.with_timezone(&Utc)],
        MappedLocalTime::None => Vec::new(),
    }
}

/// The instants in `(from, to]` at which the zone's UTC offset changes,
/// found by hourly steps and bisection to the second (zones change offset
/// at most once in any hour, and always on a whole second).
pub(super) fn transitions(zone: Tz, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<DateTime<Utc>> {
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
