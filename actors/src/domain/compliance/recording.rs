//! Who must be told that a call is recorded: the `[recording]` table of the rules file. Where
//! the called party's state requires every party's consent (or the state cannot be told from
//! the number), the call flow announces the recording before anyone is connected; continuing
//! the call after the announcement is the consent sources treat as given.

use super::*;

/// The `[recording]` table, validated.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecordingRules {
    /// Where the list comes from, for audit.
    pub source: String,
    /// Two-letter codes of the states and provinces where every party must consent. `None`
    /// (no table): every call is treated as all-party.
    pub all_party: Option<BTreeSet<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRecording {
    source: String,
    all_party_consent: Vec<String>,
}

impl RawRecording {
    pub(super) fn validate(self) -> Result<RecordingRules, ComplianceError> {
        if self.source.trim().is_empty() {
            return Err(invalid("recording.source", "must not be empty"));
        }
        let mut all_party = BTreeSet::new();
        for (i, code) in self.all_party_consent.into_iter().enumerate() {
            if !area_codes::is_known_region(&code) {
                return Err(invalid(
                    format!("recording.all_party_consent[{i}]"),
                    format!("{code:?} is not a two-letter state, territory or province code"),
                ));
            }
            all_party.insert(code);
        }
        Ok(RecordingRules {
            source: self.source,
            all_party: Some(all_party),
        })
    }
}

/// What recording a call to one number needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordingConsent {
    /// The number's state lets one party (us) consent.
    OneParty { state: String },
    /// The number's state requires every party's consent.
    AllParty { state: String },
    /// The state cannot be told from the number (no known area code), or the rules file has no
    /// `[recording]` table: treated as all-party.
    Unknown,
}

impl RecordingConsent {
    /// Whether the call must announce the recording before connecting anyone.
    pub fn needs_notice(&self) -> bool {
        !matches!(self, RecordingConsent::OneParty { .. })
    }
}

impl Rules {
    /// What recording a call to `phone` (E.164) needs, by the state of its area code.
    pub fn recording_consent(&self, phone: &str) -> RecordingConsent {
        let state = area_codes::area_code(phone).and_then(area_codes::state_of_area_code);
        match (state, &self.recording.all_party) {
            (Some(state), Some(all)) if all.contains(state) => RecordingConsent::AllParty {
                state: state.to_owned(),
            },
            (Some(state), Some(_)) => RecordingConsent::OneParty {
                state: state.to_owned(),
            },
            _ => RecordingConsent::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = include_str!("../../../../config/compliance.toml");

    #[test]
    fn all_party_states_and_unknown_numbers_need_the_notice() {
        let rules = Rules::from_toml(SHIPPED).unwrap();
        // 415: California, all-party.
        let ca = rules.recording_consent("+14155550100");
        assert_eq!(ca, RecordingConsent::AllParty { state: "CA".into() });
        assert!(ca.needs_notice());
        // 212: New York, one-party.
        let ny = rules.recording_consent("+12125550100");
        assert_eq!(ny, RecordingConsent::OneParty { state: "NY".into() });
        assert!(!ny.needs_notice());
        // Toll free: no state to go by.
        assert!(rules.recording_consent("+18005550100").needs_notice());
        assert!(rules.recording_consent("+447700900123").needs_notice());
        // Without a [recording] table every call announces.
        assert!(Rules::federal_only()
            .recording_consent("+12125550100")
            .needs_notice());
    }

    #[test]
    fn a_bad_table_is_refused_by_its_path() {
        let bad = SHIPPED.replace("all_party_consent = [", "all_party_consent = [\"XX\", ");
        let err = Rules::from_toml(&bad).unwrap_err().to_string();
        assert!(err.contains("recording.all_party_consent[0]"), "{err}");
    }
}
