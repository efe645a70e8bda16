//! Twilio Lookup v2, Line Type Intelligence: what kind of line a number is (mobile, landline,
//! VoIP …), from the carrier's records. Numbering-plan metadata cannot tell: in the US a
//! mobile and a landline number share the same area codes and exchanges.
//!
//! `GET {lookup root}/v2/PhoneNumbers/{E164}?Fields=line_type_intelligence`, HTTP Basic with
//! the account SID and auth token. The lookup root is `https://lookups.twilio.com` for Twilio
//! itself and the configured base URL otherwise (the carrier simulator serves it there), and
//! the request goes through the same outbound guard as every other call of this client.
//!
//! A lookup is tried once, with its own short deadline ([`super::ClientConfig::lookup_timeout`]):
//! it is a read that costs money per answer, and its caller sends the text anyway when it fails,
//! so retrying would only delay that text.

use reqwest::header::ACCEPT;
use serde::{Deserialize, Serialize};
use tracing::instrument;

use super::client::{error_chain, TwilioClient};
use super::error::{api_error, TwilioError};

/// The `type` of Line Type Intelligence, spelled as Twilio spells it. A type Twilio adds later
/// reads as `Unknown` rather than failing the lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum LineType {
    Mobile,
    Landline,
    FixedVoip,
    NonFixedVoip,
    Personal,
    TollFree,
    Premium,
    SharedCost,
    Uan,
    Voicemail,
    Pager,
    #[serde(other)]
    Unknown,
}

/// What a lookup answered about one number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineTypeLookup {
    /// The number as Twilio normalised it (E.164); the number asked when it gave none.
    pub phone_number: String,
    /// False when Twilio judged the number invalid (`valid: false`); the type is then `Unknown`.
    pub valid: bool,
    /// `Unknown` when Twilio had no answer (no data, an invalid number, an `error_code`).
    pub line_type: LineType,
    /// Null for the types past `nonFixedVoip` and when unknown.
    pub carrier_name: Option<String>,
    /// Twilio's error for this data package (e.g. 60601: Canada needs approval).
    pub error_code: Option<u32>,
}

#[derive(Deserialize)]
struct PhoneNumberResource {
    #[serde(default)]
    phone_number: Option<String>,
    #[serde(default)]
    valid: Option<bool>,
    #[serde(default)]
    line_type_intelligence: Option<LineTypeIntelligence>,
}

#[derive(Deserialize)]
struct LineTypeIntelligence {
    #[serde(default, rename = "type")]
    line_type: Option<LineType>,
    #[serde(default)]
    carrier_name: Option<String>,
    #[serde(default)]
    error_code: Option<u32>,
}

impl TwilioClient {
    /// The line type of `e164`. Errors are the client's usual ones: `Api` for a refusal (401
    /// bad credentials, 404, 429 as `RateLimited`), `Server` for a 5xx, `Timeout`, `Connect`,
    /// `Transport`, `Decode`; a number that is not E.164 is refused before anything is sent.
    #[instrument(skip_all, fields(op = "lookup_line_type"))]
    pub async fn lookup_line_type(&self, e164: &str) -> Result<LineTypeLookup, TwilioError> {
        check_e164(e164)?;
        let url = format!(
            "{}/v2/PhoneNumbers/{e164}?Fields=line_type_intelligence",
            self.lookup_root
        );
        let response = self
            .http
            .get(&url)
            .timeout(self.config.lookup_timeout)
            .basic_auth(
                &self.credentials.account_sid,
                Some(&self.credentials.auth_token),
            )
            .header(ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| transport(&e))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| transport(&e))?;
        if status.as_u16() == 429 {
            return Err(TwilioError::RateLimited { retry_after: None });
        }
        if status.is_server_error() {
            return Err(TwilioError::Server(status.as_u16()));
        }
        if !status.is_success() {
            return Err(api_error(status.as_u16(), &body));
        }
        let resource: PhoneNumberResource = serde_json::from_slice(&body)
            .map_err(|e| TwilioError::Decode(format!("lookup answer: {e}")))?;
        Ok(read(e164, resource))
    }
}

fn read(asked: &str, r: PhoneNumberResource) -> LineTypeLookup {
    let valid = r.valid.unwrap_or(true);
    let lti = r.line_type_intelligence;
    let error_code = lti.as_ref().and_then(|l| l.error_code);
    let line_type = match &lti {
        // An answer carrying an error code is no answer, whatever type it also names.
        Some(l) if valid && error_code.is_none() => l.line_type.unwrap_or(LineType::Unknown),
        _ => LineType::Unknown,
    };
    LineTypeLookup {
        phone_number: r.phone_number.unwrap_or_else(|| asked.to_owned()),
        valid,
        line_type,
        carrier_name: lti.and_then(|l| l.carrier_name),
        error_code,
    }
}

pub(super) fn transport(e: &reqwest::Error) -> TwilioError {
    if e.is_connect() {
        TwilioError::Connect(error_chain(e))
    } else if e.is_timeout() {
        TwilioError::Timeout
    } else {
        TwilioError::Transport(error_chain(e))
    }
}

/// The number is interpolated into the URL path: only `+` and up to 15 digits pass.
fn check_e164(number: &str) -> Result<(), TwilioError> {
    let ok = number.strip_prefix('+').is_some_and(|digits| {
        (2..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
    });
    if ok {
        Ok(())
    } else {
        Err(TwilioError::InvalidUrl(format!(
            "not an e.164 number: {number:?}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> LineTypeLookup {
        read("+14155550100", serde_json::from_value(v).unwrap())
    }

    #[test]
    fn types_read_as_twilio_spells_them_and_new_ones_are_unknown() {
        for (text, t) in [
            ("mobile", LineType::Mobile),
            ("landline", LineType::Landline),
            ("fixedVoip", LineType::FixedVoip),
            ("nonFixedVoip", LineType::NonFixedVoip),
            ("tollFree", LineType::TollFree),
            ("sharedCost", LineType::SharedCost),
            ("uan", LineType::Uan),
            ("unknown", LineType::Unknown),
            ("satellite", LineType::Unknown),
        ] {
            assert_eq!(serde_json::from_value::<LineType>(json!(text)).unwrap(), t);
        }
        assert_eq!(
            serde_json::to_value(LineType::NonFixedVoip).unwrap(),
            json!("nonFixedVoip")
        );
    }

    #[test]
    fn an_answer_reads_its_type_and_carrier() {
        let got = parse(json!({"phone_number": "+14155550100", "valid": true,
            "line_type_intelligence": {"type": "landline", "carrier_name": "AT&T",
                "error_code": null, "mobile_country_code": null}}));
        assert_eq!(got.line_type, LineType::Landline);
        assert_eq!(got.carrier_name.as_deref(), Some("AT&T"));
        assert!(got.valid);
    }

    #[test]
    fn invalid_numbers_errors_and_missing_data_are_unknown() {
        let invalid = parse(json!({"valid": false, "validation_errors": ["TOO_SHORT"],
            "line_type_intelligence": null}));
        assert_eq!(
            (invalid.valid, invalid.line_type),
            (false, LineType::Unknown)
        );
        assert_eq!(invalid.phone_number, "+14155550100");
        let refused = parse(json!({"valid": true, "line_type_intelligence":
            {"type": "mobile", "error_code": 60601}}));
        assert_eq!(refused.line_type, LineType::Unknown);
        assert_eq!(refused.error_code, Some(60601));
        let empty = parse(json!({"valid": true}));
        assert_eq!(empty.line_type, LineType::Unknown);
    }

    #[test]
    fn only_e164_numbers_reach_the_path() {
        assert!(check_e164("+14155550100").is_ok());
        for bad in [
            "14155550100",
            "+1415/../x",
            "+",
            "+1234567890123456",
            "+1 415",
        ] {
            assert!(check_e164(bad).is_err(), "{bad}");
        }
    }
}
