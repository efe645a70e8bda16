//! Lookup v2 (`GET /v2/PhoneNumbers/{E164}?Fields=line_type_intelligence`): the line type of a
//! number, decided by the configuration (an exact number, else the longest matching prefix, else
//! the default, mobile), so a run answers the same way every time. Basic auth as for the REST
//! endpoints (no account in the path: the credentials alone). Every authenticated lookup is
//! counted (`lookups`, `lookups_per_number`): each one would be billed by Twilio.
//!
//! Drills: `fail_status` answers every lookup with that status (Twilio-shaped JSON error), and
//! `delay_ms` holds each answer that long (a slow carrier, for the caller's timeout).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::server::{check_basic, respond, ApiError};
use super::state::{is_e164, Shared};
use crate::twilio::LineType;

/// What the simulated carrier's Lookup answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LookupConfig {
    /// The type of a number named nowhere below. Default `mobile`.
    pub default_type: LineType,
    /// Exact E.164 number → type (e.g. `"+14155550123" = "landline"`).
    pub numbers: BTreeMap<String, LineType>,
    /// Number prefix → type; the longest matching prefix wins. Default empty.
    pub prefixes: BTreeMap<String, LineType>,
    /// Answer every lookup with this HTTP status instead (e.g. 500). Default none.
    pub fail_status: Option<u16>,
    /// Hold every answer this long. Default 0.
    pub delay_ms: u64,
}

impl Default for LookupConfig {
    fn default() -> Self {
        Self {
            default_type: LineType::Mobile,
            numbers: BTreeMap::new(),
            prefixes: BTreeMap::new(),
            fail_status: None,
            delay_ms: 0,
        }
    }
}

impl LookupConfig {
    /// The type this carrier answers for `number`.
    pub fn line_type(&self, number: &str) -> LineType {
        if let Some(t) = self.numbers.get(number) {
            return *t;
        }
        self.prefixes
            .iter()
            .filter(|(prefix, _)| number.starts_with(prefix.as_str()))
            .max_by_key(|(prefix, _)| prefix.len())
            .map_or(self.default_type, |(_, t)| *t)
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        if let Some(status) = self.fail_status {
            if !(400..=599).contains(&status) {
                return Err(format!(
                    "lookup.fail_status must be a 4xx or 5xx, got {status}"
                ));
            }
        }
        Ok(())
    }
}

fn carrier(t: LineType) -> Option<&'static str> {
    match t {
        LineType::Mobile => Some("Simulated Wireless"),
        LineType::Landline => Some("Simulated Telephone Co."),
        LineType::FixedVoip | LineType::NonFixedVoip => Some("Simulated VoIP"),
        _ => None,
    }
}

pub(crate) async fn lookup(
    State(shared): State<Arc<Shared>>,
    Path(number): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Err(e) = check_basic(&shared, &headers) {
        return respond(&shared, Err(e));
    }
    shared.bump(|s| {
        s.lookups += 1;
        *s.lookups_per_number.entry(number.clone()).or_insert(0) += 1;
    });
    let config = &shared.config.lookup;
    if config.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(config.delay_ms)).await;
    }
    if let Some(status) = config.fail_status {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return ApiError::new(status, 20500, "Internal Server Error (simulated)").into_response();
    }
    let wants_type = query
        .get("Fields")
        .is_some_and(|f| f.split(',').any(|f| f.trim() == "line_type_intelligence"));
    let valid = is_e164(&number);
    let intelligence = (valid && wants_type).then(|| {
        let t = config.line_type(&number);
        json!({
            "type": t,
            "carrier_name": carrier(t),
            "mobile_country_code": (t == LineType::Mobile).then_some("310"),
            "mobile_network_code": (t == LineType::Mobile).then_some("999"),
            "error_code": null,
        })
    });
    let errors: Vec<&str> = if valid { vec![] } else { vec!["NOT_A_NUMBER"] };
    Json(json!({
        "calling_country_code": valid.then(|| if number.starts_with("+1") { "1" } else { "" }),
        "country_code": null,
        "phone_number": number,
        "national_format": null,
        "valid": valid,
        "validation_errors": errors,
        "line_type_intelligence": intelligence,
        "caller_name": null,
        "sim_swap": null,
        "call_forwarding": null,
        "line_status": null,
        "identity_match": null,
        "reassigned_number": null,
        "sms_pumping_risk": null,
        "phone_number_quality_score": null,
        "pre_fill": null,
        "url": format!("https://lookups.twilio.com/v2/PhoneNumbers/{number}"),
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_numbers_then_longest_prefix_then_default() {
        let config = LookupConfig {
            numbers: BTreeMap::from([("+14155550100".into(), LineType::Landline)]),
            prefixes: BTreeMap::from([
                ("+1415".into(), LineType::FixedVoip),
                ("+141555".into(), LineType::TollFree),
            ]),
            ..LookupConfig::default()
        };
        assert_eq!(config.line_type("+14155550100"), LineType::Landline);
        assert_eq!(config.line_type("+14155550199"), LineType::TollFree);
        assert_eq!(config.line_type("+14150000000"), LineType::FixedVoip);
        assert_eq!(config.line_type("+12125550100"), LineType::Mobile);
        assert!(config.validate().is_ok());
        let bad = LookupConfig {
            fail_status: Some(200),
            ..LookupConfig::default()
        };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn reads_from_json_with_twilio_spellings() {
        let config: LookupConfig = serde_json::from_value(json!({
            "default_type": "nonFixedVoip", "numbers": {"+14155550100": "landline"}}))
        .unwrap();
        assert_eq!(config.default_type, LineType::NonFixedVoip);
        assert_eq!(config.line_type("+14155550100"), LineType::Landline);
        assert!(serde_json::from_value::<LookupConfig>(json!({"defalt_type": "mobile"})).is_err());
    }
}
