//! Where a test lead lives: a time zone where it is mid-day now, and phone numbers inside it.
//!
//! The compliance gate holds a call or text to every zone the lead may be in: the contact's own
//! zone and every zone of the phone's area code (issue #14). A test that wants its lead reachable
//! whenever it runs therefore needs both in daylight: a North American area code inside one zone,
//! or a country with one zone when no North American zone is in daylight (for some hours of every
//! UTC day none is). The place is chosen once per test process, so every number a test derives
//! agrees with the zone it sends, even across an hour boundary. (The demo and the benchmarks have
//! their own, in `neuronx-bench`: the product's tests do not depend on them.)

use std::sync::OnceLock;

/// A zone and how to write a number in it: `prefix`, then `pad`, then seven digits.
struct Place {
    zone: &'static str,
    prefix: &'static str,
    pad: &'static str,
}

const fn place(zone: &'static str, prefix: &'static str, pad: &'static str) -> Place {
    Place { zone, prefix, pad }
}

/// Most of the day a North American place is in daylight, and tests prefer them (the numbers,
/// caller-id and state rules the suites exercise are North American); the others fill the gap.
const PLACES: [Place; 11] = [
    place("America/New_York", "+1212", ""),
    place("America/Chicago", "+1312", ""),
    place("America/Denver", "+1303", ""),
    place("America/Los_Angeles", "+1415", ""),
    place("Pacific/Honolulu", "+1808", ""),
    place("Asia/Tokyo", "+813", "1"),
    place("Asia/Kolkata", "+9198", "1"),
    place("Europe/London", "+44207", ""),
    place("America/Sao_Paulo", "+55119", "1"),
    place("Australia/Sydney", "+612", "9"),
    place("Pacific/Auckland", "+649", ""),
];

fn daytime_place() -> &'static Place {
    static CHOSEN: OnceLock<usize> = OnceLock::new();
    let index = *CHOSEN.get_or_init(|| {
        use chrono::Timelike;
        let now = chrono::Utc::now();
        PLACES
            .iter()
            .position(|p| {
                p.zone
                    .parse::<chrono_tz::Tz>()
                    .is_ok_and(|tz| (10..18).contains(&now.with_timezone(&tz).hour()))
            })
            .unwrap_or(0)
    });
    &PLACES[index]
}

/// A time zone where it is mid-day now, so a lead's calling hours are open whenever the test
/// runs, provided its number is one of [`day_phone`]'s.
pub fn daytime_zone() -> &'static str {
    daytime_place().zone
}

/// The number ending in `local` (seven digits, like `5550100`) in the daytime place: a North
/// American area code inside [`daytime_zone`], or a landline of that zone's country.
pub fn day_phone(local: &str) -> String {
    assert!(
        local.len() == 7 && local.bytes().all(|b| b.is_ascii_digit()),
        "seven digits: {local}"
    );
    let place = daytime_place();
    format!("{}{}{local}", place.prefix, place.pad)
}

/// A phone number of the lead `external_id`'s own: one person, one cadence (ADR 0046) would
/// merge leads sharing a number, so each test lead gets a number derived from its id (FNV-1a;
/// the same id always the same number, in the 62x exchanges of the daytime place).
pub fn lead_phone(external_id: &str) -> String {
    let hash = external_id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    day_phone(&format!("62{:05}", hash % 100_000))
}

/// Every place's number ending in `local`, with the zone it is chosen by (for the suite that checks
/// them all).
pub fn every_place(local: &str) -> Vec<(&'static str, String)> {
    PLACES
        .iter()
        .map(|p| (p.zone, format!("{}{}{local}", p.prefix, p.pad)))
        .collect()
}
