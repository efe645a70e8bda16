//! Which time zones and which state's rules apply to a phone number.

use super::*;

/// The called party's first zone: the contact's IANA zone if it is a valid
/// one naming a place, else the zone of the majority of the phone's area
/// code, else `None`. UTC, GMT and the `Etc/` zones are treated as absent: CRMs
/// write them as placeholders, and trusting one would put an East-coast
/// lead's "08:00" at 03:00. So are the fixed-offset abbreviations EST, MST
/// and HST, which people write meaning "Eastern" and which would be an hour
/// off all summer.
pub fn resolve_zone(contact_timezone: Option<&str>, phone: &str) -> Option<Tz> {
    resolve_zones(contact_timezone, phone).into_iter().next()
}

/// Every zone the called party may be in: the contact's own zone when valid (first, so it names
/// a cap), then every zone the phone's area code spans (majority first), each once; none when
/// neither is known. A CRM's zone field and the area code often disagree (a lead who moved, a
/// ported number, a form that guessed); either may be the truth, so a call or text goes out only
/// at an instant that is legal in all of them.
pub fn resolve_zones(contact_timezone: Option<&str>, phone: &str) -> Vec<Tz> {
    let contact = contact_timezone.and_then(contact_zone);
    let area = area_codes::area_code(phone).into_iter().flat_map(|npa| {
        area_codes::zone_of_area_code(npa)
            .into_iter()
            .chain(area_codes::other_zones_of_area_code(npa).iter().copied())
            .filter_map(|name| name.parse::<Tz>().ok())
    });
    let mut zones: Vec<Tz> = Vec::new();
    for zone in contact.into_iter().chain(area) {
        if !zones.contains(&zone) {
            zones.push(zone);
        }
    }
    zones
}

pub(super) fn contact_zone(name: &str) -> Option<Tz> {
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
