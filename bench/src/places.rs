//! Where the demo's and the benchmarks' leads live: a time zone and numbers inside it.
//!
//! The compliance gate holds a call or text to every zone a lead may be in, the contact's own and
//! every zone of its phone's area code (issue #14). A lead meant to be reachable now needs both in
//! daylight, so a place pairs a zone with North American area codes inside that zone alone, or,
//! for the hours when no North American zone is in daylight, with a country of one zone.

/// A zone and the numbers of leads who live in it.
pub struct Place {
    pub zone: &'static str,
    numbers: Numbers,
}

enum Numbers {
    /// Area codes inside the zone alone; leads take them in turn.
    NorthAmerica(&'static [u16]),
    /// A landline prefix of the country (country code, area, a first digit); seven digits follow.
    Abroad(&'static str),
}

const fn na(zone: &'static str, areas: &'static [u16]) -> Place {
    Place {
        zone,
        numbers: Numbers::NorthAmerica(areas),
    }
}

const fn abroad(zone: &'static str, prefix: &'static str) -> Place {
    Place {
        zone,
        numbers: Numbers::Abroad(prefix),
    }
}

/// North America first: the demo's caller id, state rules (Florida's 305 has a stricter window
/// and a call cap) and area codes are North American; the others fill the hours it sleeps.
const PLACES: [Place; 11] = [
    na("America/New_York", &[212, 617, 305]),
    na("America/Chicago", &[312, 214]),
    na("America/Denver", &[303, 720]),
    na("America/Phoenix", &[602]),
    na("America/Los_Angeles", &[415, 310]),
    na("Pacific/Honolulu", &[808]),
    abroad("Asia/Tokyo", "+8131"),
    abroad("Asia/Kolkata", "+91981"),
    abroad("Europe/London", "+44207"),
    abroad("America/Sao_Paulo", "+551191"),
    abroad("Australia/Sydney", "+6129"),
];

impl Place {
    /// The `n`th of the place's distinct, valid numbers.
    pub fn phone(&self, n: u64) -> String {
        match self.numbers {
            Numbers::NorthAmerica(areas) => {
                let area = areas[usize::try_from(n).unwrap_or(0) % areas.len()];
                lead_phone(area, n)
            }
            Numbers::Abroad(prefix) => format!("{prefix}{:07}", n % 10_000_000),
        }
    }
}

/// A place where it is mid-day now, so calling hours do not depend on when this runs.
pub fn daytime() -> &'static Place {
    place_where(|h| (10..18).contains(&h)).unwrap_or(&PLACES[0])
}

/// A place where it is night now: calls there must wait for calling hours.
pub fn night() -> &'static Place {
    place_where(|h| !(6..22).contains(&h)).unwrap_or(&PLACES[6])
}

fn place_where(pred: impl Fn(u32) -> bool) -> Option<&'static Place> {
    use chrono::Timelike;
    let now = chrono::Utc::now();
    PLACES.iter().find(|p| {
        p.zone
            .parse::<chrono_tz::Tz>()
            .is_ok_and(|tz| pred(now.with_timezone(&tz).hour()))
    })
}

/// The `n`th of a run of distinct, valid North American numbers in `area` (a real area code):
/// exchanges 200–999 without the N11 service codes, 10,000 lines each (7.2 million in all). The
/// shape alone (`+1415` and seven digits) is not enough: the API refuses numbers the
/// numbering plan cannot hold, such as exchange 000.
pub fn lead_phone(area: u16, n: u64) -> String {
    let exchanges: u64 = 800 - 8; // 200..=999 less 211, 311, …, 911
    let mut exchange = 200 + (n / 10_000) % exchanges;
    // Skip each N11 at or below it: map the index past the service codes.
    for n11 in [211, 311, 411, 511, 611, 711, 811, 911] {
        if exchange >= n11 {
            exchange += 1;
        }
    }
    format!("+1{area}{exchange}{:04}", n % 10_000)
}

#[cfg(test)]
mod tests {
    use neuronx_actors::domain::compliance::resolve_zones;
    use neuronx_actors::domain::opportunity::{normalize_phone, validate_e164};

    #[test]
    fn lead_phones_are_distinct_and_valid() {
        let mut seen = std::collections::HashSet::new();
        for n in (0..7_200_000)
            .step_by(9_973)
            .chain([1, 9_999, 10_000, 7_199_999])
        {
            let p = super::lead_phone(415, n);
            assert_eq!(validate_e164(&p), Ok(()), "{p}");
            assert!(seen.insert(p.clone()), "{p} twice");
        }
    }

    /// Every place's numbers are valid, distinct, and in its zone alone: the gate holds a call
    /// to no other zone than the one the place is chosen by.
    #[test]
    fn every_place_has_valid_numbers_in_its_zone_alone() {
        for place in &super::PLACES {
            let mut seen = std::collections::HashSet::new();
            for n in (0..10_000_000).step_by(99_991).chain([1, 9_999_999]) {
                let phone = place.phone(n);
                assert_eq!(normalize_phone(&phone).as_deref(), Ok(phone.as_str()));
                let zones = resolve_zones(Some(place.zone), &phone);
                let names: Vec<&str> = zones.iter().map(|z| z.name()).collect();
                assert_eq!(names, [place.zone], "{phone}");
                assert!(seen.insert(phone.clone()), "{phone} twice");
            }
        }
    }
}
