use chrono::{NaiveDate, TimeDelta, TimeZone};
use chrono_tz::Tz;
use proptest::prelude::*;
use serde_json::json;

use super::*;

const SHIPPED: &str = include_str!("../../../config/compliance.toml");

fn shipped() -> Rules {
    Rules::from_toml(SHIPPED).unwrap()
}

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
}

/// The single instant showing this wall-clock time in `zone`.
fn local(zone: Tz, y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    zone.with_ymd_and_hms(y, mo, d, h, mi, s)
        .single()
        .unwrap_or_else(|| panic!("{zone} {y}-{mo}-{d} {h}:{mi}:{s} is not a single instant"))
        .with_timezone(&Utc)
}

fn wall(at: DateTime<Utc>, zone: Tz) -> String {
    at.with_timezone(&zone)
        .format("%Y-%m-%d %H:%M:%S %Z")
        .to_string()
}

const NY: Tz = chrono_tz::America::New_York;
const LA: Tz = chrono_tz::America::Los_Angeles;
const CHI: Tz = chrono_tz::America::Chicago;
const PHX: Tz = chrono_tz::America::Phoenix;

const NY_PHONE: &str = "+12125550100";
const LA_PHONE: &str = "+13105550100";
const MIAMI_PHONE: &str = "+13055550100";
const PENSACOLA_PHONE: &str = "+18505550100";
const BIRMINGHAM_PHONE: &str = "+12055550100";
const NEW_ORLEANS_PHONE: &str = "+15045550100";
const LOUISVILLE_PHONE: &str = "+15025550100";
const PROVIDENCE_PHONE: &str = "+14015550100";
const PHILADELPHIA_PHONE: &str = "+12155550100";
const DALLAS_PHONE: &str = "+12145550100";
const JACKSON_MS_PHONE: &str = "+16015550100";
const OKC_PHONE: &str = "+14055550100";
const BALTIMORE_PHONE: &str = "+14105550100";
const PHOENIX_PHONE: &str = "+16025550100";
const LONDON_PHONE: &str = "+442071838750";
const TOLL_FREE_PHONE: &str = "+18005550100";

/// A marketing call with every consent in place and no history.
fn call(phone: &str, now: DateTime<Utc>) -> GateInput<'_> {
    GateInput {
        channel: Channel::Voice,
        purpose: Purpose::Marketing,
        phone,
        contact_timezone: None,
        consent_voice: true,
        consent_sms: true,
        opted_out: false,
        opt_out_confirmation_sent: false,
        on_dnc: false,
        recent_attempts: &[],
        now,
    }
}

fn text(phone: &str, now: DateTime<Utc>) -> GateInput<'_> {
    GateInput {
        channel: Channel::Sms,
        ..call(phone, now)
    }
}

fn until_of(decision: &Decision) -> DateTime<Utc> {
    match decision {
        Decision::Defer { until, .. } => *until,
        other => panic!("expected a deferral, got {other:?}"),
    }
}

fn deny_reason(decision: &Decision) -> &BlockReason {
    match decision {
        Decision::Deny { reason } => reason,
        other => panic!("expected a denial, got {other:?}"),
    }
}

/// Asserts a deferral to `expected`, that `expected` is itself allowed, and
/// that one second earlier is not.
fn assert_deferred_to(rules: &Rules, input: &GateInput<'_>, expected: DateTime<Utc>) -> Decision {
    let decision = check(rules, input);
    let until = until_of(&decision);
    assert_eq!(
        until,
        expected,
        "deferred to {until} but expected {expected}: {}",
        decision.describe()
    );
    let at_until = GateInput {
        now: until,
        ..*input
    };
    assert_eq!(check(rules, &at_until), Decision::Allow, "at {until}");
    let just_before = GateInput {
        now: until - TimeDelta::seconds(1),
        ..*input
    };
    if just_before.now > input.now {
        assert!(
            !check(rules, &just_before).is_allowed(),
            "one second before {until}"
        );
    }
    decision
}

fn custom_rules(start: &str, end: &str) -> Rules {
    Rules {
        version: "test".into(),
        default: RuleSet::with_window("test", Window::parse(start, end).unwrap()),
        states: BTreeMap::new(),
        holidays: BTreeSet::new(),
        recording: RecordingRules::default(),
    }
}

// ---------------------------------------------------------------------------
// Keywords
// ---------------------------------------------------------------------------

#[test]
fn every_keyword_in_any_case_and_with_punctuation() {
    let groups = [
        (
            Keyword::OptOut,
            &[
                "STOP",
                "UNSUBSCRIBE",
                "END",
                "QUIT",
                "STOPALL",
                "REVOKE",
                "OPTOUT",
                "CANCEL",
                "OPT OUT",
                "ARRET",
            ][..],
        ),
        (Keyword::OptIn, &["START", "YES", "UNSTOP"][..]),
        (Keyword::Help, &["HELP", "INFO"][..]),
    ];
    for (keyword, words) in groups {
        for word in words {
            let lower = word.to_lowercase();
            let mut title = lower.clone();
            title[..1].make_ascii_uppercase();
            let variants = [
                word.to_string(),
                lower.clone(),
                title.clone(),
                format!("  {lower}  "),
                format!("\t{word}\n"),
                format!("{lower}."),
                format!("{title}!"),
                format!("{word}!!!"),
                format!("\"{lower}\""),
                format!("{lower}?"),
                format!("{title} 🙏"),
                format!("¡{word}!"),
            ];
            for body in variants {
                assert_eq!(classify_reply(&body), Some(keyword), "{body:?}");
            }
        }
    }
}

#[test]
fn two_word_opt_out_accepts_separators() {
    for body in [
        "opt out",
        "Opt-Out",
        "OPT_OUT",
        "opt   out",
        " Opt - out. ",
        "arrêt",
    ] {
        assert_eq!(classify_reply(body), Some(Keyword::OptOut), "{body:?}");
    }
}

#[test]
fn non_keywords() {
    for body in [
        "",
        "   ",
        "!!!",
        "stop it now",
        "STOPP",
        "S.T.O.P",
        "stop please",
        "please stop",
        "I want to stop",
        "Stop, thanks",
        "please cancel",
        "yes please",
        "helpful",
        "information",
        "started",
        "opt",
        "out",
        "st op",
    ] {
        assert_eq!(classify_reply(body), None, "{body:?}");
    }
}

#[test]
fn sentences_mentioning_opt_out_words_are_flagged_for_review() {
    for body in [
        "please stop texting me",
        "I want to stop",
        "Unsubscribe me from this list.",
        "I want to opt out",
        "cancel my appointment",
    ] {
        assert!(mentions_opt_out(body), "{body:?}");
    }
    for body in [
        "STOP",
        "stop.",
        "",
        "sounds good",
        "stopwatch",
        "yes",
        "optout?",
    ] {
        assert!(!mentions_opt_out(body), "{body:?}");
    }
}

#[test]
fn enum_names_match_serde_and_parse() {
    for channel in Channel::ALL {
        assert_eq!(
            serde_json::to_value(channel).unwrap(),
            json!(channel.as_str())
        );
        assert_eq!(channel.as_str().parse::<Channel>().unwrap(), *channel);
    }
    for purpose in Purpose::ALL {
        assert_eq!(
            serde_json::to_value(purpose).unwrap(),
            json!(purpose.as_str())
        );
        assert_eq!(purpose.as_str().parse::<Purpose>().unwrap(), *purpose);
    }
    for keyword in Keyword::ALL {
        assert_eq!(
            serde_json::to_value(keyword).unwrap(),
            json!(keyword.as_str())
        );
    }
    assert_eq!(Channel::Sms.to_string(), "sms");
    let err = "fax".parse::<Channel>().unwrap_err();
    assert!(err.to_string().contains("voice, sms"), "{err}");
}

// ---------------------------------------------------------------------------
// Rules
// ---------------------------------------------------------------------------

#[test]
fn shipped_rules_parse_and_carry_the_florida_rule() {
    let rules = shipped();
    assert_eq!(
        rules.default.window,
        Some(Window::parse("08:00", "21:00").unwrap())
    );
    let fl = rules.state("FL").unwrap();
    assert_eq!(fl.window, Some(Window::parse("08:00", "20:00").unwrap()));
    assert_eq!(
        (fl.max_calls_per_24h, fl.max_sms_per_24h),
        (Some(3), Some(3))
    );
    assert!(fl.source.contains("501.616"));
    for code in ["OK", "MD"] {
        assert_eq!(
            rules.state(code).unwrap().max_calls_per_24h,
            Some(3),
            "{code}"
        );
    }
    for code in ["AL", "LA"] {
        let rule = rules.state(code).unwrap();
        assert!(rule.no_sunday && rule.no_holidays, "{code}");
    }
    let ms = rules.state("MS").unwrap();
    assert_eq!(ms.window_zone, Some(chrono_tz::Etc::GMTPlus6));
    assert_eq!(
        rules.states.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "AL", "CT", "FL", "KY", "LA", "MA", "MD", "MI", "MN", "MS", "NM", "NV", "OK", "PA",
            "RI", "TX"
        ]
    );
    assert!(rules.is_holiday(NaiveDate::from_ymd_opt(2026, 11, 26).unwrap()));
    assert!(rules.is_holiday(NaiveDate::from_ymd_opt(2027, 7, 5).unwrap()));
    assert!(!rules.is_holiday(NaiveDate::from_ymd_opt(2026, 11, 27).unwrap()));
    assert_eq!(rules.default.window, Rules::federal_only().default.window);
}

#[test]
fn rule_errors_name_the_field() {
    let base = "version = \"t\"\n[default]\nsource = \"s\"\nwindow = { start = \"08:00\", end = \"21:00\" }\n";
    let with = |extra: &str| format!("{base}{extra}");
    let cases = [
        (
            "version = \"\"\n[default]\nsource = \"s\"\nwindow = { start = \"08:00\", end = \"21:00\" }".to_owned(),
            "version",
        ),
        ("version = \"t\"\n[default]\nsource = \"s\"\n".to_owned(), "default.window"),
        (
            "version = \"t\"\n[default]\nsource = \"s\"\nwindow = { start = \"8:00\", end = \"21:00\" }".to_owned(),
            "default.window.start",
        ),
        (
            "version = \"t\"\n[default]\nsource = \"s\"\nwindow = { start = \"08:00\", end = \"24:01\" }".to_owned(),
            "default.window.end",
        ),
        (
            "version = \"t\"\n[default]\nsource = \"s\"\nwindow = { start = \"08:60\", end = \"21:00\" }".to_owned(),
            "default.window.start",
        ),
        (
            "version = \"t\"\n[default]\nsource = \" \"\nwindow = { start = \"08:00\", end = \"21:00\" }".to_owned(),
            "default.source",
        ),
        (
            with("[states.FL]\nsource = \"s\"\nwindow = { start = \"20:00\", end = \"08:00\" }"),
            "states.FL.window",
        ),
        (
            with("[states.FL]\nsource = \"s\"\nwindow = { start = \"08:00\", end = \"08:00\" }"),
            "states.FL.window",
        ),
        (
            with("[states.FL]\nsource = \"s\"\nsaturday = { start = \"08:00\", end = \"7:00\" }"),
            "states.FL.saturday.end",
        ),
        (with("[states.FL]\nsource = \"s\"\nmax_calls_per_24h = 0"), "states.FL.max_calls_per_24h"),
        (with("[states.FL]\nsource = \"s\"\nmax_sms_per_24h = 0"), "states.FL.max_sms_per_24h"),
        (with("[states.FLA]\nsource = \"s\""), "states.FLA"),
        (with("[states.fl]\nsource = \"s\""), "states.fl"),
        (with("[states.FL]\nsource = \"\""), "states.FL.source"),
        (
            with("[states.AL]\nsource = \"s\"\nno_sunday = true\nsunday = { start = \"12:00\", end = \"18:00\" }"),
            "states.AL.sunday",
        ),
        (
            with("[states.MS]\nsource = \"s\"\nwindow = { start = \"08:00\", end = \"20:00\" }\nwindow_zone = \"Central\""),
            "states.MS.window_zone",
        ),
        (with("[states.MS]\nsource = \"s\"\nwindow_zone = \"Etc/GMT+6\""), "states.MS.window"),
        (format!("holidays = [\"2026-13-01\"]\n{base}"), "holidays[0]"),
        (format!("holidays = [\"2026-01-01\", \"2026-1-19\"]\n{base}"), "holidays[1]"),
    ];
    for (text, field) in cases {
        match Rules::from_toml(&text) {
            Err(ComplianceError::Invalid { field: f, .. }) => assert_eq!(f, field, "{text}"),
            other => panic!("{text}\nexpected invalid {field}, got {other:?}"),
        }
    }
}

#[test]
fn toml_errors_name_the_key() {
    let unknown = "version = \"t\"\n[default]\nsource = \"s\"\nwindow = { start = \"08:00\", end = \"21:00\" }\nmax_cals_per_24h = 3";
    let err = Rules::from_toml(unknown).unwrap_err();
    assert!(matches!(err, ComplianceError::Parse(_)));
    assert!(err.to_string().contains("max_cals_per_24h"), "{err}");
    let negative = "version = \"t\"\n[default]\nsource = \"s\"\nwindow = { start = \"08:00\", end = \"21:00\" }\nmax_calls_per_24h = -1";
    let err = Rules::from_toml(negative).unwrap_err();
    assert!(err.to_string().contains("max_calls_per_24h"), "{err}");
    let missing_default = "version = \"t\"";
    let err = Rules::from_toml(missing_default).unwrap_err();
    assert!(err.to_string().contains("default"), "{err}");
}

#[test]
fn windows() {
    let w = Window::parse("08:00", "21:00").unwrap();
    let t = |h, m, s| NaiveTime::from_hms_opt(h, m, s).unwrap();
    assert!(w.contains(t(8, 0, 0)));
    assert!(w.contains(t(20, 59, 59)));
    assert!(!w.contains(t(21, 0, 0)));
    assert!(!w.contains(t(7, 59, 59)));
    assert_eq!(w.to_string(), "08:00–21:00");
    let fl = Window::parse("09:00", "20:00").unwrap();
    assert_eq!(w.intersect(&fl), Some(fl));
    let late = Window::parse("21:00", "22:00").unwrap();
    assert_eq!(w.intersect(&late), None);
    assert_eq!(
        serde_json::to_value(w).unwrap(),
        json!({"start": "08:00", "end": "21:00"})
    );
    let back: Window = serde_json::from_value(json!({"start": "08:00", "end": "21:00"})).unwrap();
    assert_eq!(back, w);
    assert!(serde_json::from_value::<Window>(json!({"start": "21:00", "end": "08:00"})).is_err());
    assert!(Window::new(t(8, 0, 30), t(9, 0, 0)).is_err());
    assert!(Window::new(t(9, 0, 0), t(9, 0, 0)).is_err());
    assert_eq!(Window::new(t(8, 0, 0), t(21, 0, 0)).unwrap(), w);
}

#[test]
fn a_window_may_run_to_midnight() {
    let t = |h, m, s| NaiveTime::from_hms_opt(h, m, s).unwrap();
    let all_day = Window::parse("00:00", "24:00").unwrap();
    let late = Window::parse("20:00", "24:00").unwrap();
    for time in [t(0, 0, 0), t(12, 0, 0), t(23, 59, 59)] {
        assert!(all_day.contains(time), "{time}");
    }
    assert!(all_day.contains(NaiveTime::from_hms_nano_opt(23, 59, 59, 999_999_999).unwrap()));
    assert!(late.contains(t(23, 59, 59)) && !late.contains(t(19, 59, 59)));
    assert_eq!(all_day.to_string(), "00:00–24:00");
    assert_eq!(
        serde_json::to_value(late).unwrap(),
        json!({"start": "20:00", "end": "24:00"})
    );
    assert_eq!(all_day.intersect(&late), Some(late));
    // "24:00" ends a window; it never starts one.
    assert!(Window::parse("24:00", "24:00").is_err());
    // A rule open all day lets a call out at any instant.
    let rules = custom_rules("00:00", "24:00");
    for hour in 0..24 {
        let input = call(NY_PHONE, local(NY, 2026, 6, 10, hour, 59, 59));
        assert_eq!(check(&rules, &input), Decision::Allow, "{hour}:59:59");
    }
}

// ---------------------------------------------------------------------------
// Zone and state resolution
// ---------------------------------------------------------------------------

#[test]
fn zone_resolution_order() {
    // The contact's own zone comes first, then the area code's zones, each once.
    assert_eq!(
        resolve_zones(Some("America/Denver"), NY_PHONE),
        vec![chrono_tz::America::Denver, NY]
    );
    assert_eq!(resolve_zone(Some(" America/Chicago "), NY_PHONE), Some(CHI));
    assert_eq!(
        resolve_zones(Some("America/Chicago"), PENSACOLA_PHONE),
        vec![CHI, NY]
    );
    assert_eq!(
        resolve_zones(Some("America/New_York"), PENSACOLA_PHONE),
        vec![NY, CHI]
    );
    assert_eq!(resolve_zones(Some("America/New_York"), NY_PHONE), vec![NY]);
    // Invalid or placeholder zones fall back to the area code.
    for zone in [
        "Eastern",
        "",
        "UTC",
        "Etc/UTC",
        "GMT",
        "Etc/GMT+5",
        "EST",
        "Zulu",
    ] {
        assert_eq!(resolve_zone(Some(zone), NY_PHONE), Some(NY), "{zone:?}");
    }
    assert_eq!(resolve_zone(None, LA_PHONE), Some(LA));
    assert_eq!(
        resolve_zone(Some("US/Eastern"), LA_PHONE),
        Some(chrono_tz::US::Eastern)
    );
    // A split area code yields every zone, the majority's first.
    assert_eq!(resolve_zones(None, PENSACOLA_PHONE), vec![CHI, NY]);
    // Outside +1, toll-free, malformed: unknown.
    for phone in [
        LONDON_PHONE,
        TOLL_FREE_PHONE,
        "2125550100",
        "+1212555010",
        "",
    ] {
        assert_eq!(resolve_zone(None, phone), None, "{phone:?}");
    }
    assert_eq!(
        resolve_zone(Some("Europe/London"), LONDON_PHONE),
        Some(chrono_tz::Europe::London)
    );
}

#[test]
fn state_comes_from_the_area_code() {
    assert_eq!(state_of_phone(MIAMI_PHONE), Some("FL"));
    assert_eq!(state_of_phone(PENSACOLA_PHONE), Some("FL"));
    assert_eq!(state_of_phone(NY_PHONE), Some("NY"));
    assert_eq!(state_of_phone("+14165550100"), Some("ON"));
    assert_eq!(state_of_phone(LONDON_PHONE), None);
}

// ---------------------------------------------------------------------------
// Consent, opt-out, DNC, unknown zone
// ---------------------------------------------------------------------------

/// Noon in New York on a Wednesday: inside every window.
fn ny_noon() -> DateTime<Utc> {
    local(NY, 2026, 6, 10, 12, 0, 0)
}

#[test]
fn consent_is_per_channel() {
    let rules = shipped();
    let voice_only = GateInput {
        consent_sms: false,
        ..call(NY_PHONE, ny_noon())
    };
    assert_eq!(check(&rules, &voice_only), Decision::Allow);
    let sms = GateInput {
        channel: Channel::Sms,
        ..voice_only
    };
    assert_eq!(
        check(&rules, &sms),
        Decision::Deny {
            reason: BlockReason::NoConsent(Channel::Sms)
        }
    );
    let sms_only = GateInput {
        consent_voice: false,
        ..text(NY_PHONE, ny_noon())
    };
    assert_eq!(check(&rules, &sms_only), Decision::Allow);
    let voice = GateInput {
        channel: Channel::Voice,
        ..sms_only
    };
    assert_eq!(
        *deny_reason(&check(&rules, &voice)),
        BlockReason::NoConsent(Channel::Voice)
    );
    let neither = GateInput {
        consent_sms: false,
        ..voice
    };
    assert!(matches!(
        deny_reason(&check(&rules, &neither)),
        BlockReason::NoConsent(_)
    ));
}

#[test]
fn opt_out_blocks_marketing_on_every_channel() {
    let rules = shipped();
    for input in [call(NY_PHONE, ny_noon()), text(NY_PHONE, ny_noon())] {
        let opted_out = GateInput {
            opted_out: true,
            ..input
        };
        assert_eq!(
            *deny_reason(&check(&rules, &opted_out)),
            BlockReason::OptedOut
        );
    }
}

#[test]
fn one_opt_out_confirmation_at_any_hour() {
    let rules = shipped();
    // 03:00 in New York, on the DNC list, no consent, even an unknown zone.
    let small_hours = local(NY, 2026, 6, 10, 3, 0, 0);
    for phone in [NY_PHONE, LONDON_PHONE] {
        let confirm = GateInput {
            purpose: Purpose::OptOutConfirmation,
            opted_out: true,
            on_dnc: true,
            consent_sms: false,
            consent_voice: false,
            ..text(phone, small_hours)
        };
        assert_eq!(check(&rules, &confirm), Decision::Allow, "{phone}");
        let again = GateInput {
            opt_out_confirmation_sent: true,
            ..confirm
        };
        assert_eq!(
            *deny_reason(&check(&rules, &again)),
            BlockReason::ConfirmationAlreadySent
        );
        let by_voice = GateInput {
            channel: Channel::Voice,
            ..confirm
        };
        assert_eq!(
            *deny_reason(&check(&rules, &by_voice)),
            BlockReason::WrongChannel {
                purpose: Purpose::OptOutConfirmation,
                channel: Channel::Voice
            }
        );
    }
    let not_opted_out = GateInput {
        purpose: Purpose::OptOutConfirmation,
        ..text(NY_PHONE, ny_noon())
    };
    assert_eq!(
        *deny_reason(&check(&rules, &not_opted_out)),
        BlockReason::NotOptedOut
    );
}

#[test]
fn help_replies_answer_the_contact_at_any_hour_unless_opted_out() {
    let rules = shipped();
    let late = local(NY, 2026, 6, 10, 23, 30, 0);
    let help = GateInput {
        purpose: Purpose::HelpReply,
        consent_sms: false,
        ..text(NY_PHONE, late)
    };
    assert_eq!(check(&rules, &help), Decision::Allow);
    let opted_out = GateInput {
        opted_out: true,
        ..help
    };
    assert_eq!(
        *deny_reason(&check(&rules, &opted_out)),
        BlockReason::OptedOut
    );
    let by_voice = GateInput {
        channel: Channel::Voice,
        ..help
    };
    assert!(matches!(
        deny_reason(&check(&rules, &by_voice)),
        BlockReason::WrongChannel { .. }
    ));
}

#[test]
fn dnc_denies_and_denials_come_in_a_fixed_order() {
    let rules = shipped();
    let dnc = GateInput {
        on_dnc: true,
        ..call(NY_PHONE, ny_noon())
    };
    assert_eq!(*deny_reason(&check(&rules, &dnc)), BlockReason::DoNotCall);
    // Opt-out, then DNC, then consent, then time zone; all before hours.
    let everything_wrong = GateInput {
        opted_out: true,
        on_dnc: true,
        consent_voice: false,
        ..call(LONDON_PHONE, local(NY, 2026, 6, 10, 23, 0, 0))
    };
    assert_eq!(
        *deny_reason(&check(&rules, &everything_wrong)),
        BlockReason::OptedOut
    );
    let no_opt_out = GateInput {
        opted_out: false,
        ..everything_wrong
    };
    assert_eq!(
        *deny_reason(&check(&rules, &no_opt_out)),
        BlockReason::DoNotCall
    );
    let no_dnc = GateInput {
        on_dnc: false,
        ..no_opt_out
    };
    assert_eq!(
        *deny_reason(&check(&rules, &no_dnc)),
        BlockReason::NoConsent(Channel::Voice)
    );
    let consented = GateInput {
        consent_voice: true,
        ..no_dnc
    };
    assert_eq!(
        *deny_reason(&check(&rules, &consented)),
        BlockReason::UnknownTimeZone
    );
}

#[test]
fn unknown_time_zone_denies_calls_and_texts() {
    let rules = shipped();
    for phone in [LONDON_PHONE, TOLL_FREE_PHONE, "+15555550100", "not a phone"] {
        for input in [call(phone, ny_noon()), text(phone, ny_noon())] {
            let with_placeholder = GateInput {
                contact_timezone: Some("UTC"),
                ..input
            };
            for input in [input, with_placeholder] {
                let decision = check(&rules, &input);
                assert_eq!(
                    *deny_reason(&decision),
                    BlockReason::UnknownTimeZone,
                    "{phone}"
                );
                assert!(decision.describe().contains("time zone is unknown"));
            }
        }
    }
    // A foreign number with a known zone is checked against that zone.
    let london = GateInput {
        contact_timezone: Some("Europe/London"),
        ..call(LONDON_PHONE, utc(2026, 6, 10, 11, 0, 0))
    };
    assert_eq!(check(&rules, &london), Decision::Allow);
}

// ---------------------------------------------------------------------------
// Calling hours
// ---------------------------------------------------------------------------

#[test]
fn same_instant_new_york_allowed_los_angeles_deferred() {
    let rules = shipped();
    // 14:00 UTC is 10:00 in New York and 07:00 in Los Angeles (summer).
    let now = utc(2026, 6, 10, 14, 0, 0);
    assert_eq!(check(&rules, &call(NY_PHONE, now)), Decision::Allow);
    let decision = assert_deferred_to(&rules, &call(LA_PHONE, now), utc(2026, 6, 10, 15, 0, 0));
    assert_eq!(
        decision.reason().unwrap().describe(),
        "outside calling hours in America/Los_Angeles (07:00 local; allowed 08:00–21:00); retry at 08:00 local"
    );
    // A contact zone that disagrees with the area code does not lift the area code's hours.
    let moved = GateInput {
        contact_timezone: Some("America/New_York"),
        ..call(LA_PHONE, now)
    };
    let decision = assert_deferred_to(&rules, &moved, utc(2026, 6, 10, 15, 0, 0));
    assert!(decision.describe().contains("America/Los_Angeles"));
}

#[test]
fn contact_zone_and_area_code_disagreeing_both_hold_and_the_stricter_is_named() {
    let rules = shipped();
    let la_contact_ny_phone = |input: GateInput<'static>| GateInput {
        contact_timezone: Some("America/Los_Angeles"),
        ..input
    };
    for make in [call, text] {
        // 08:30 in New York is 05:30 in Los Angeles: the contact's own zone waits until 08:00.
        let morning = la_contact_ny_phone(make(NY_PHONE, local(NY, 2026, 6, 10, 8, 30, 0)));
        let decision = assert_deferred_to(&rules, &morning, local(LA, 2026, 6, 10, 8, 0, 0));
        assert!(matches!(
            decision.reason(),
            Some(BlockReason::OutsideCallingHours { zone, .. }) if zone == "America/Los_Angeles"
        ));
        // 20:30 in Los Angeles is 23:30 in New York: the area code's zone is the one past its
        // hours, and the next instant legal in both is 08:00 in Los Angeles.
        let evening = la_contact_ny_phone(make(NY_PHONE, local(LA, 2026, 6, 10, 20, 30, 0)));
        let decision = assert_deferred_to(&rules, &evening, local(LA, 2026, 6, 11, 8, 0, 0));
        assert!(matches!(
            decision.reason(),
            Some(BlockReason::OutsideCallingHours { zone, local_time, .. })
                if zone == "America/New_York" && local_time.format("%H:%M").to_string() == "23:30"
        ));
        // Midday in both: allowed.
        let noon = la_contact_ny_phone(make(NY_PHONE, local(LA, 2026, 6, 10, 12, 0, 0)));
        assert_eq!(check(&rules, &noon), Decision::Allow);
    }
    // Both closed: 07:30 in New York (the contact's zone, checked first) is 04:30 in Los Angeles
    // (the area code's); the zone that holds the call back longest is the one named.
    let two_closed = GateInput {
        contact_timezone: Some("America/New_York"),
        ..call(LA_PHONE, local(NY, 2026, 6, 10, 7, 30, 0))
    };
    let decision = assert_deferred_to(&rules, &two_closed, local(LA, 2026, 6, 10, 8, 0, 0));
    assert!(decision.describe().contains("America/Los_Angeles"));
}

#[test]
fn window_edges_are_exact() {
    let rules = shipped();
    let day = |h, m, s| local(NY, 2026, 6, 10, h, m, s);
    assert_eq!(
        check(&rules, &call(NY_PHONE, day(8, 0, 0))),
        Decision::Allow
    );
    assert_eq!(
        check(&rules, &call(NY_PHONE, day(20, 59, 59))),
        Decision::Allow
    );
    assert_deferred_to(&rules, &call(NY_PHONE, day(7, 59, 59)), day(8, 0, 0));
    let sub_second = day(20, 59, 59) + TimeDelta::milliseconds(999);
    assert_eq!(check(&rules, &call(NY_PHONE, sub_second)), Decision::Allow);
    let next_morning = local(NY, 2026, 6, 11, 8, 0, 0);
    let decision = assert_deferred_to(&rules, &call(NY_PHONE, day(21, 0, 0)), next_morning);
    match decision {
        Decision::Defer {
            reason:
                BlockReason::OutsideCallingHours {
                    zone,
                    local_time,
                    window,
                    state,
                    retry_local,
                },
            ..
        } => {
            assert_eq!(zone, "America/New_York");
            assert_eq!(local_time.to_string(), "2026-06-10 21:00:00");
            assert_eq!(window.to_string(), "08:00–21:00");
            assert_eq!(state, None);
            assert_eq!(retry_local.to_string(), "2026-06-11 08:00:00");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn late_evening_defers_to_next_morning_in_utc() {
    let rules = shipped();
    // 22:30 EDT on 2026-06-10 is 02:30 UTC on the 11th; 08:00 EDT is 12:00 UTC.
    let now = utc(2026, 6, 11, 2, 30, 0);
    let decision = assert_deferred_to(&rules, &call(NY_PHONE, now), utc(2026, 6, 11, 12, 0, 0));
    assert_eq!(
        decision.describe(),
        "deferred: outside calling hours in America/New_York (22:30 local; allowed 08:00–21:00); \
         retry at 08:00 local on Thu 2026-06-11"
    );
    // Just after midnight the retry is the same local day.
    let small_hours = local(NY, 2026, 6, 11, 0, 15, 0);
    let decision = check(&rules, &call(NY_PHONE, small_hours));
    assert!(
        decision.describe().ends_with("retry at 08:00 local"),
        "{}",
        decision.describe()
    );
    // Texts follow the same window.
    assert_deferred_to(&rules, &text(NY_PHONE, now), utc(2026, 6, 11, 12, 0, 0));
}

#[test]
fn arizona_has_no_dst() {
    let rules = shipped();
    // 08:00 MST is 15:00 UTC in summer and winter alike.
    for (y, m, d) in [(2026, 1, 14), (2026, 7, 15)] {
        assert_eq!(
            check(&rules, &call(PHOENIX_PHONE, utc(y, m, d, 15, 0, 0))),
            Decision::Allow
        );
        assert_deferred_to(
            &rules,
            &call(PHOENIX_PHONE, utc(y, m, d, 14, 59, 59)),
            utc(y, m, d, 15, 0, 0),
        );
    }
    assert_eq!(
        wall(utc(2026, 7, 15, 15, 0, 0), PHX),
        "2026-07-15 08:00:00 MST"
    );
}

#[test]
fn split_area_code_needs_the_window_in_every_zone() {
    let rules = shipped();
    // 850 (Florida panhandle): Central and Eastern, FL window 08:00–20:00.
    // 12:30 UTC = 08:30 EDT but 07:30 CDT: wait for 08:00 CDT.
    let morning = utc(2026, 6, 10, 12, 30, 0);
    let decision = assert_deferred_to(
        &rules,
        &call(PENSACOLA_PHONE, morning),
        utc(2026, 6, 10, 13, 0, 0),
    );
    assert!(matches!(
        decision.reason(),
        Some(BlockReason::OutsideCallingHours { zone, .. }) if zone == "America/Chicago"
    ));
    // 23:30 UTC = 18:30 CDT / 19:30 EDT: inside 08:00–20:00 in both.
    assert_eq!(
        check(&rules, &call(PENSACOLA_PHONE, utc(2026, 6, 10, 23, 30, 0))),
        Decision::Allow
    );
    // 00:15 UTC = 20:15 EDT / 19:15 CDT: closed in the Eastern part.
    let evening = utc(2026, 6, 11, 0, 15, 0);
    let decision = assert_deferred_to(
        &rules,
        &call(PENSACOLA_PHONE, evening),
        utc(2026, 6, 11, 13, 0, 0),
    );
    assert!(matches!(
        decision.reason(),
        Some(BlockReason::OutsideCallingHours { zone, state: Some(s), .. })
            if zone == "America/New_York" && s == "FL"
    ));
    // The contact's own zone joins the area code's zones; it never lifts one of them.
    let central = GateInput {
        contact_timezone: Some("America/Chicago"),
        ..call(PENSACOLA_PHONE, evening)
    };
    assert_deferred_to(&rules, &central, utc(2026, 6, 11, 13, 0, 0));
}

// ---------------------------------------------------------------------------
// DST
// ---------------------------------------------------------------------------

#[test]
fn spring_forward_deferral_lands_on_0800_edt() {
    let rules = shipped();
    // Saturday 2026-03-07 22:00 EST (03:00 UTC Sunday); clocks jump at 02:00.
    let now = local(NY, 2026, 3, 7, 22, 0, 0);
    assert_eq!(now, utc(2026, 3, 8, 3, 0, 0));
    let expected = utc(2026, 3, 8, 12, 0, 0);
    let decision = assert_deferred_to(&rules, &call(NY_PHONE, now), expected);
    assert_eq!(wall(expected, NY), "2026-03-08 08:00:00 EDT");
    assert!(decision
        .describe()
        .contains("retry at 08:00 local on Sun 2026-03-08"));
    // Asked inside the skipped hour's neighbourhood, same answer.
    assert_deferred_to(
        &rules,
        &call(NY_PHONE, utc(2026, 3, 8, 6, 59, 59)),
        expected,
    );
    assert_deferred_to(&rules, &call(NY_PHONE, utc(2026, 3, 8, 7, 0, 0)), expected);
}

#[test]
fn fall_back_deferral_lands_on_0800_est() {
    let rules = shipped();
    // Saturday 2026-10-31 22:00 EDT (02:00 UTC Sunday); clocks fall back at 02:00.
    let now = local(NY, 2026, 10, 31, 22, 0, 0);
    assert_eq!(now, utc(2026, 11, 1, 2, 0, 0));
    let expected = utc(2026, 11, 1, 13, 0, 0);
    assert_deferred_to(&rules, &call(NY_PHONE, now), expected);
    assert_eq!(wall(expected, NY), "2026-11-01 08:00:00 EST");
    // From inside the repeated hour too.
    assert_deferred_to(
        &rules,
        &call(NY_PHONE, utc(2026, 11, 1, 5, 30, 0)),
        expected,
    );
    assert_deferred_to(
        &rules,
        &call(NY_PHONE, utc(2026, 11, 1, 6, 30, 0)),
        expected,
    );
}

#[test]
fn window_start_in_the_skipped_hour_opens_at_the_transition() {
    // A 02:30 start does not exist on 2026-03-08 in New York: 01:59:59 EST
    // is followed by 03:00:00 EDT (07:00 UTC).
    let rules = custom_rules("02:30", "21:00");
    let transition = utc(2026, 3, 8, 7, 0, 0);
    assert_eq!(wall(transition, NY), "2026-03-08 03:00:00 EDT");
    for now in [
        local(NY, 2026, 3, 8, 1, 0, 0),
        local(NY, 2026, 3, 7, 23, 0, 0),
    ] {
        assert_deferred_to(&rules, &call(NY_PHONE, now), transition);
    }
    // On an ordinary day the same rules open at 02:30.
    assert_deferred_to(
        &rules,
        &call(NY_PHONE, local(NY, 2026, 3, 9, 1, 0, 0)),
        local(NY, 2026, 3, 9, 2, 30, 0),
    );
}

#[test]
fn window_start_in_the_repeated_hour_opens_at_its_first_occurrence() {
    // 01:30 happens twice on 2026-11-01 in New York: 05:30 UTC (EDT) and
    // 06:30 UTC (EST). The window opens at the first, closes when the clock
    // falls back to 01:00, and reopens at the second: never early.
    let rules = custom_rules("01:30", "21:00");
    let first = utc(2026, 11, 1, 5, 30, 0);
    let second = utc(2026, 11, 1, 6, 30, 0);
    assert_eq!(wall(first, NY), "2026-11-01 01:30:00 EDT");
    assert_eq!(wall(second, NY), "2026-11-01 01:30:00 EST");
    assert_deferred_to(
        &rules,
        &call(NY_PHONE, local(NY, 2026, 11, 1, 0, 0, 0)),
        first,
    );
    assert_eq!(
        check(&rules, &call(NY_PHONE, utc(2026, 11, 1, 5, 59, 59))),
        Decision::Allow
    );
    // 06:00 UTC shows 01:00 EST: before the window again.
    let fell_back = utc(2026, 11, 1, 6, 0, 0);
    let decision = assert_deferred_to(&rules, &call(NY_PHONE, fell_back), second);
    assert!(decision
        .describe()
        .contains("(01:00 local; allowed 01:30–21:00); retry at 01:30 local"));
}

#[test]
fn window_end_in_the_repeated_hour_reopens_when_the_clock_falls_back() {
    // Window 00:30–01:30. At 01:45 EDT it is closed; at 06:00 UTC the clock
    // shows 01:00 EST, inside the window again.
    let rules = custom_rules("00:30", "01:30");
    let closed = utc(2026, 11, 1, 5, 45, 0);
    assert_eq!(wall(closed, NY), "2026-11-01 01:45:00 EDT");
    assert_deferred_to(&rules, &call(NY_PHONE, closed), utc(2026, 11, 1, 6, 0, 0));
}

// ---------------------------------------------------------------------------
// State rules
// ---------------------------------------------------------------------------

#[test]
fn florida_window_ends_at_2000() {
    let rules = shipped();
    let day = |h, m, s| local(NY, 2026, 6, 10, h, m, s);
    assert_eq!(
        check(&rules, &call(MIAMI_PHONE, day(19, 59, 59))),
        Decision::Allow
    );
    let decision = assert_deferred_to(
        &rules,
        &call(MIAMI_PHONE, day(20, 0, 0)),
        local(NY, 2026, 6, 11, 8, 0, 0),
    );
    assert_eq!(
        decision.reason().unwrap().describe(),
        "outside calling hours in America/New_York (20:00 local; allowed 08:00–20:00 under FL rules); \
         retry at 08:00 local on Thu 2026-06-11"
    );
    // The same hour is fine in New York.
    assert_eq!(
        check(&rules, &call(NY_PHONE, day(20, 0, 0))),
        Decision::Allow
    );
}

#[test]
fn florida_fourth_call_in_24h_waits_for_the_first_to_age_out() {
    let rules = shipped();
    let day1 = |h| local(NY, 2026, 6, 10, h, 0, 0);
    let attempts = [day1(9), day1(10), day1(11)];
    let two = GateInput {
        recent_attempts: &attempts[..2],
        ..call(MIAMI_PHONE, day1(12))
    };
    assert_eq!(check(&rules, &two), Decision::Allow);
    let fourth = GateInput {
        recent_attempts: &attempts,
        ..two
    };
    let decision = assert_deferred_to(&rules, &fourth, local(NY, 2026, 6, 11, 9, 0, 0));
    assert_eq!(
        decision.reason().unwrap().describe(),
        "frequency cap reached: 3 voice attempts in the last 24 h (max 3 under FL rules); \
         retry at 09:00 local on Thu 2026-06-11 in America/New_York"
    );
    // Attempts older than 24 h do not count.
    let old = [
        day1(9) - TimeDelta::days(2),
        day1(9) - TimeDelta::hours(25),
        day1(11),
    ];
    let with_old = GateInput {
        recent_attempts: &old,
        ..two
    };
    assert_eq!(check(&rules, &with_old), Decision::Allow);
    // New York has no cap.
    let many: Vec<DateTime<Utc>> = (0..10).map(|i| day1(9) + TimeDelta::minutes(i)).collect();
    let ny = GateInput {
        recent_attempts: &many,
        ..call(NY_PHONE, day1(12))
    };
    assert_eq!(check(&rules, &ny), Decision::Allow);
}

#[test]
fn cap_age_out_outside_the_window_waits_for_the_window() {
    let rules = shipped();
    // Three texts logged at 07:30–07:32 (e.g. replies sent by an agent):
    // the first ages out at 07:30 next day, before the 08:00 window start.
    let attempts = [
        local(NY, 2026, 6, 10, 7, 30, 0),
        local(NY, 2026, 6, 10, 7, 31, 0),
        local(NY, 2026, 6, 10, 7, 32, 0),
    ];
    let input = GateInput {
        recent_attempts: &attempts,
        ..text(MIAMI_PHONE, local(NY, 2026, 6, 10, 8, 0, 0))
    };
    let decision = assert_deferred_to(&rules, &input, local(NY, 2026, 6, 11, 8, 0, 0));
    assert!(matches!(
        decision.reason(),
        Some(BlockReason::FrequencyCap { .. })
    ));
    // Aging out at an odd second inside the window: exact to the second.
    let odd = [
        local(NY, 2026, 6, 10, 9, 15, 27),
        local(NY, 2026, 6, 10, 9, 16, 0),
        local(NY, 2026, 6, 10, 9, 17, 0),
    ];
    let input = GateInput {
        recent_attempts: &odd,
        ..call(MIAMI_PHONE, local(NY, 2026, 6, 10, 10, 0, 0))
    };
    let decision = assert_deferred_to(&rules, &input, local(NY, 2026, 6, 11, 9, 15, 27));
    assert!(decision
        .describe()
        .contains("retry at 09:15:27 local on Thu 2026-06-11"));
}

#[test]
fn oklahoma_and_maryland_cap_and_window() {
    let rules = shipped();
    for (phone, zone) in [(OKC_PHONE, CHI), (BALTIMORE_PHONE, NY)] {
        let day = |h| local(zone, 2026, 6, 10, h, 0, 0);
        assert_deferred_to(
            &rules,
            &call(phone, day(20)),
            local(zone, 2026, 6, 11, 8, 0, 0),
        );
        let attempts = [day(9), day(10), day(11)];
        let capped = GateInput {
            recent_attempts: &attempts,
            ..text(phone, day(12))
        };
        assert_deferred_to(&rules, &capped, local(zone, 2026, 6, 11, 9, 0, 0));
    }
}

#[test]
fn alabama_and_louisiana_skip_sundays_and_holidays() {
    let rules = shipped();
    // Sunday 2026-03-08, noon in Birmingham.
    let sunday = local(CHI, 2026, 3, 8, 12, 0, 0);
    let decision = assert_deferred_to(
        &rules,
        &call(BIRMINGHAM_PHONE, sunday),
        local(CHI, 2026, 3, 9, 8, 0, 0),
    );
    assert_eq!(
        decision.reason().unwrap().describe(),
        "no contact on Sundays under AL rules in America/Chicago (it is Sun 2026-03-08 12:00 local); \
         retry at 08:00 local on Mon 2026-03-09"
    );
    // Thanksgiving 2026.
    let thanksgiving = local(CHI, 2026, 11, 26, 12, 0, 0);
    let decision = assert_deferred_to(
        &rules,
        &call(BIRMINGHAM_PHONE, thanksgiving),
        local(CHI, 2026, 11, 27, 8, 0, 0),
    );
    assert!(matches!(
        decision.reason(),
        Some(BlockReason::ClosedDay {
            day: ClosedDay::Holiday,
            ..
        })
    ));
    // Louisiana: Saturday evening before Sunday 2027-07-04 and the observed
    // Monday holiday: next contact Tuesday morning.
    let saturday_evening = local(CHI, 2027, 7, 3, 20, 30, 0);
    assert_deferred_to(
        &rules,
        &call(NEW_ORLEANS_PHONE, saturday_evening),
        local(CHI, 2027, 7, 6, 8, 0, 0),
    );
    // A Sunday is fine in a state without the rule.
    assert_eq!(
        check(
            &rules,
            &call(DALLAS_PHONE, local(CHI, 2026, 3, 8, 13, 0, 0))
        ),
        Decision::Allow
    );
}

#[test]
fn other_state_windows() {
    let rules = shipped();
    // (phone, zone, allowed local instant, deferred local instant, expected retry)
    let wed = |zone, h, m| local(zone, 2026, 6, 10, h, m, 0);
    let cases = [
        (
            "+12035550100",
            NY,
            wed(NY, 9, 0),
            wed(NY, 8, 30),
            wed(NY, 9, 0),
        ), // CT 09–20
        (
            "+12035550100",
            NY,
            wed(NY, 19, 59),
            wed(NY, 20, 0),
            local(NY, 2026, 6, 11, 9, 0, 0),
        ),
        (
            LOUISVILLE_PHONE,
            NY,
            wed(NY, 10, 0),
            wed(NY, 9, 30),
            wed(NY, 10, 0),
        ), // KY 10–21
        (
            "+16175550100",
            NY,
            wed(NY, 19, 0),
            wed(NY, 20, 0),
            local(NY, 2026, 6, 11, 8, 0, 0),
        ), // MA
        (
            "+13135550100",
            NY,
            wed(NY, 9, 0),
            wed(NY, 8, 0),
            wed(NY, 9, 0),
        ), // MI 09–21
        (
            "+16125550100",
            CHI,
            wed(CHI, 9, 0),
            wed(CHI, 8, 59),
            wed(CHI, 9, 0),
        ), // MN 09–21
        (
            "+17025550100",
            LA,
            wed(LA, 19, 59),
            wed(LA, 20, 0),
            local(LA, 2026, 6, 11, 9, 0, 0),
        ), // NV 09–20
        (
            "+15055550100",
            chrono_tz::America::Denver,
            wed(chrono_tz::America::Denver, 9, 0),
            wed(chrono_tz::America::Denver, 8, 0),
            wed(chrono_tz::America::Denver, 9, 0),
        ), // NM 09–21
        (
            PROVIDENCE_PHONE,
            NY,
            wed(NY, 17, 59),
            wed(NY, 18, 0),
            local(NY, 2026, 6, 11, 9, 0, 0),
        ), // RI 09–18
        (
            DALLAS_PHONE,
            CHI,
            wed(CHI, 9, 0),
            wed(CHI, 8, 30),
            wed(CHI, 9, 0),
        ), // TX 09–21
    ];
    for (phone, _zone, allowed, deferred, retry) in cases {
        assert_eq!(
            check(&rules, &call(phone, allowed)),
            Decision::Allow,
            "{phone} at {allowed}"
        );
        assert_deferred_to(&rules, &call(phone, deferred), retry);
    }
}

#[test]
fn weekend_windows() {
    let rules = shipped();
    // Rhode Island: Saturday 10:00–17:00, no Sunday.
    let sat = |h, m| local(NY, 2026, 6, 13, h, m, 0);
    assert_deferred_to(&rules, &call(PROVIDENCE_PHONE, sat(9, 30)), sat(10, 0));
    assert_deferred_to(
        &rules,
        &call(PROVIDENCE_PHONE, sat(17, 0)),
        local(NY, 2026, 6, 15, 9, 0, 0),
    );
    // Pennsylvania: Sunday from 13:30; holidays closed.
    let sun = local(NY, 2026, 6, 14, 12, 0, 0);
    assert_deferred_to(
        &rules,
        &call(PHILADELPHIA_PHONE, sun),
        local(NY, 2026, 6, 14, 13, 30, 0),
    );
    assert_deferred_to(
        &rules,
        &call(PHILADELPHIA_PHONE, local(NY, 2026, 9, 7, 12, 0, 0)),
        local(NY, 2026, 9, 8, 8, 0, 0),
    );
    // Texas: Sunday from noon.
    assert_deferred_to(
        &rules,
        &call(DALLAS_PHONE, local(CHI, 2026, 6, 14, 11, 0, 0)),
        local(CHI, 2026, 6, 14, 12, 0, 0),
    );
}

#[test]
fn mississippi_window_is_also_checked_in_fixed_cst() {
    let rules = shipped();
    // Summer: 08:30 CDT is 07:30 CST, too early; 09:00 CDT is 08:00 CST.
    let summer = local(CHI, 2026, 6, 10, 8, 30, 0);
    let decision = assert_deferred_to(
        &rules,
        &call(JACKSON_MS_PHONE, summer),
        local(CHI, 2026, 6, 10, 9, 0, 0),
    );
    assert!(matches!(
        decision.reason(),
        Some(BlockReason::OutsideCallingHours { zone, .. }) if zone == "Etc/GMT+6"
    ));
    // Winter: Central time is CST, 08:30 is fine.
    assert_eq!(
        check(
            &rules,
            &call(JACKSON_MS_PHONE, local(CHI, 2026, 1, 14, 8, 30, 0))
        ),
        Decision::Allow
    );
}

#[test]
fn a_rule_set_that_never_opens_denies() {
    let mut rules = custom_rules("08:00", "21:00");
    let mut fl = RuleSet::with_window("test", Window::parse("21:00", "22:00").unwrap());
    fl.no_sunday = true;
    rules.states.insert("FL".into(), fl);
    assert_eq!(
        *deny_reason(&check(&rules, &call(MIAMI_PHONE, ny_noon()))),
        BlockReason::NoPermittedTime {
            horizon_days: SEARCH_HORIZON_DAYS
        }
    );
}

#[test]
fn tenant_default_cap_and_stricter_state_cap() {
    let mut rules = shipped();
    rules.default.max_calls_per_24h = Some(2);
    let day = |h| local(NY, 2026, 6, 10, h, 0, 0);
    let attempts = [day(9), day(10)];
    let ny = GateInput {
        recent_attempts: &attempts,
        ..call(NY_PHONE, day(12))
    };
    let decision = assert_deferred_to(&rules, &ny, local(NY, 2026, 6, 11, 9, 0, 0));
    assert!(matches!(
        decision.reason(),
        Some(BlockReason::FrequencyCap {
            max: 2,
            state: None,
            ..
        })
    ));
    // The smaller of the default's and the state's cap wins.
    let fl = GateInput {
        recent_attempts: &attempts,
        ..call(MIAMI_PHONE, day(12))
    };
    assert!(!check(&rules, &fl).is_allowed());
    // Caps are per channel: no SMS cap in the default.
    let sms = GateInput {
        channel: Channel::Sms,
        ..ny
    };
    assert_eq!(check(&rules, &sms), Decision::Allow);
}

#[test]
fn decisions_serialize_for_audit() {
    let rules = shipped();
    let decision = check(&rules, &call(NY_PHONE, utc(2026, 6, 11, 2, 30, 0)));
    let value = serde_json::to_value(&decision).unwrap();
    assert_eq!(value["decision"], json!("defer"));
    assert_eq!(value["until"], json!("2026-06-11T12:00:00Z"));
    assert_eq!(
        value["reason"]["outside_calling_hours"]["window"],
        json!({"start": "08:00", "end": "21:00"})
    );
    let back: Decision = serde_json::from_value(value).unwrap();
    assert_eq!(back, decision);
    assert_eq!(
        serde_json::to_value(Decision::Allow).unwrap(),
        json!({"decision": "allow"})
    );
    let deny = Decision::Deny {
        reason: BlockReason::NoConsent(Channel::Sms),
    };
    assert_eq!(
        serde_json::to_value(&deny).unwrap(),
        json!({"decision": "deny", "reason": {"no_consent": "sms"}})
    );
    assert_eq!(
        deny.describe(),
        "denied: no SMS consent on record for this contact"
    );
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

const PROP_PHONES: &[&str] = &[
    NY_PHONE,
    LA_PHONE,
    MIAMI_PHONE,
    PENSACOLA_PHONE,
    BIRMINGHAM_PHONE,
    NEW_ORLEANS_PHONE,
    LOUISVILLE_PHONE,
    PROVIDENCE_PHONE,
    PHILADELPHIA_PHONE,
    DALLAS_PHONE,
    JACKSON_MS_PHONE,
    OKC_PHONE,
    PHOENIX_PHONE,
    "+18085550100", // HI
    "+19075550100", // AK, split with Adak
    "+19285550100", // AZ, split with the Navajo Nation
    "+12085550100", // ID, split
    "+14165550100", // ON
    "+17095550100", // NL, half-hour zone
    "+18675550100", // YT/NT/NU, four zones
];

const PROP_ZONES: &[&str] = &[
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "America/Phoenix",
    "Pacific/Honolulu",
    "America/St_Johns",
    "Europe/London",
    "Australia/Lord_Howe",
    "Asia/Kathmandu",
];

fn prop_rules(index: usize) -> Rules {
    match index {
        0 => shipped(),
        1 => Rules::federal_only(),
        2 => custom_rules("02:30", "21:00"),
        3 => custom_rules("01:15", "01:45"),
        _ => custom_rules("00:30", "01:30"),
    }
}

/// An independent reading of the rules: is `at` inside every window?
fn reference_in_window(rules: &Rules, input: &GateInput<'_>, at: DateTime<Utc>) -> bool {
    let zones = resolve_zones(input.contact_timezone, input.phone);
    let state = state_of_phone(input.phone).and_then(|code| rules.state(code));
    let sets: Vec<&RuleSet> = std::iter::once(&rules.default).chain(state).collect();
    let ok_in = |zone: Tz, sets: &[&RuleSet]| {
        let local = at.with_timezone(&zone).naive_local();
        let weekday = local.date().weekday();
        sets.iter().all(|rule| {
            if rule.no_holidays && rules.is_holiday(local.date()) {
                return false;
            }
            if rule.no_sunday && weekday == Weekday::Sun {
                return false;
            }
            let window = match weekday {
                Weekday::Sat => rule.saturday.or(rule.window),
                Weekday::Sun => rule.sunday.or(rule.window),
                _ => rule.window,
            };
            window.is_none_or(|w| w.start() <= local.time() && local.time() < w.end())
        })
    };
    zones.iter().all(|&zone| ok_in(zone, &sets))
        && sets
            .iter()
            .all(|rule| rule.window_zone.is_none_or(|zone| ok_in(zone, &[*rule])))
}

fn arb_instant() -> impl Strategy<Value = DateTime<Utc>> {
    // 2024-01-01 .. 2030-12-31, to the second, plus some sub-second noise.
    (1_704_067_200i64..1_924_991_999, 0u32..1_000_000_000)
        .prop_map(|(s, ns)| DateTime::from_timestamp(s, if ns % 4 == 0 { ns } else { 0 }).unwrap())
}

/// Instants near New York's 2026 DST transitions, where bugs hide.
fn arb_dst_instant() -> impl Strategy<Value = DateTime<Utc>> {
    let spring = utc(2026, 3, 8, 7, 0, 0).timestamp();
    let fall = utc(2026, 11, 1, 6, 0, 0).timestamp();
    (prop::bool::ANY, -30 * 3600i64..30 * 3600).prop_map(move |(which, d)| {
        DateTime::from_timestamp(if which { spring } else { fall } + d, 0).unwrap()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn deferrals_are_exact_and_allowed_means_in_window(
        now in prop_oneof![arb_instant(), arb_dst_instant()],
        phone in prop::sample::select(PROP_PHONES),
        zone in prop::option::of(prop::sample::select(PROP_ZONES)),
        sms in prop::bool::ANY,
        rules_index in 0usize..5,
        attempt_offsets in prop::collection::vec(0i64..30 * 3600, 0..6),
        probes in prop::collection::vec(0.0f64..1.0, 8),
    ) {
        let rules = prop_rules(rules_index);
        let attempts: Vec<DateTime<Utc>> =
            attempt_offsets.iter().map(|s| now - TimeDelta::seconds(*s)).collect();
        let input = GateInput {
            channel: if sms { Channel::Sms } else { Channel::Voice },
            contact_timezone: zone,
            recent_attempts: &attempts,
            ..call(phone, now)
        };
        let decision = check(&rules, &input);
        match &decision {
            Decision::Allow => {
                prop_assert!(reference_in_window(&rules, &input, now), "allowed outside the window");
            }
            Decision::Defer { until, reason } => {
                prop_assert!(*until > now, "deferred into the past: {until} <= {now}");
                prop_assert!(*until <= now + TimeDelta::days(i64::from(SEARCH_HORIZON_DAYS)));
                let later = GateInput { now: *until, ..input };
                prop_assert_eq!(check(&rules, &later), Decision::Allow, "not allowed at until ({})", reason.describe());
                prop_assert!(reference_in_window(&rules, &input, *until));
                // Nothing earlier is allowed: `until` is the next permitted instant.
                for p in &probes {
                    let span = (*until - now).num_milliseconds() as f64;
                    let at = now + TimeDelta::milliseconds((span * p) as i64);
                    if at < *until {
                        let probe = GateInput { now: at, ..input };
                        prop_assert!(!check(&rules, &probe).is_allowed(), "allowed at {at}, before until {until}");
                    }
                }
                let second_before = GateInput { now: *until - TimeDelta::seconds(1), ..input };
                if second_before.now > now {
                    prop_assert!(!check(&rules, &second_before).is_allowed(), "allowed one second before {}", until);
                }
            }
            Decision::Deny { reason } => {
                // Only several zones can fail to overlap: the narrow test windows across a
                // split area code (e.g. Alaska and Adak), or a contact zone far from its area
                // code's (Kathmandu and Rhode Island share no legal hour).
                prop_assert_eq!(reason, &BlockReason::NoPermittedTime { horizon_days: SEARCH_HORIZON_DAYS });
                prop_assert!(resolve_zones(zone, phone).len() > 1);
                for minutes in (0..SEARCH_HORIZON_DAYS * 24 * 60).step_by(7) {
                    let at = now + TimeDelta::minutes(i64::from(minutes));
                    prop_assert!(!reference_in_window(&rules, &input, at), "open at {}", at);
                }
            }
        }
    }

    #[test]
    fn padded_keywords_still_classify(
        word in prop::sample::select(&["stop", "STOP", "Unsubscribe", "help", "Start", "yes", "quit", "info"][..]),
        before in "[ \t\n.!?\"']{0,3}",
        after in "[ \t\n.!?\"']{0,3}",
        extra in "[a-z]{1,6}",
    ) {
        let padded = format!("{before}{word}{after}");
        prop_assert!(classify_reply(&padded).is_some(), "{padded:?}");
        let sentence = format!("{word} {extra}");
        prop_assert_eq!(classify_reply(&sentence), None, "{:?}", sentence);
    }
}
