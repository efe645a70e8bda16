//! `X-Twilio-Signature` validation, matching Twilio's official helper libraries.
//!
//! The signature is `base64(HMAC-SHA1(auth_token, url + params))`, where `params` is every POST
//! parameter name (sorted byte-wise) followed by each of its distinct values (sorted), with no
//! separators. Twilio is not consistent about whether the signed URL carries the port, so — like
//! the helper libraries — we accept the URL as given, without its port, and with the scheme's
//! default port; each also with `'` escaped as `%27`, because twilio-node's fallback re-encodes
//! the query that way. The URL is otherwise used byte-for-byte (including any `user:pass@`),
//! so callers must pass the exact public URL Twilio requested, not a proxy-rewritten one.
//!
//! For JSON bodies Twilio signs the URL alone and vouches for the body through a `bodySHA256`
//! query parameter holding the hex SHA-256 of the raw body; see [`validate_json`].

use std::collections::{BTreeMap, BTreeSet};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

/// Computes the signature Twilio would send for a form-encoded request to `url` with `params`.
pub fn compute(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut grouped: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (name, value) in params {
        grouped
            .entry(name.as_str())
            .or_default()
            .insert(value.as_str());
    }
    let mut payload = String::from(url);
    for (name, values) in &grouped {
        for value in values {
            payload.push_str(name);
            payload.push_str(value);
        }
    }
    hmac_sha1_base64(auth_token, &payload)
}

/// Checks `signature_header` for a form-encoded (or GET) request. `params` are the decoded POST
/// parameters — all of them, including ones we do not understand, since Twilio adds fields
/// without notice. Pass an empty slice for GET requests (their parameters are in the URL).
pub fn validate(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
    signature_header: &str,
) -> bool {
    if auth_token.is_empty() || signature_header.is_empty() {
        return false;
    }
    let mut matched = Choice::from(0);
    // Every candidate is checked (no early exit) so timing does not reveal which one matched.
    for candidate in candidate_urls(url) {
        let expected = compute(auth_token, &candidate, params);
        matched |= expected.as_bytes().ct_eq(signature_header.as_bytes());
    }
    matched.into()
}

/// Checks `signature_header` for a request with a JSON body: the HMAC must match the URL with no
/// parameters, and the URL's `bodySHA256` query parameter must equal the hex SHA-256 of
/// `raw_body`. Fails when `bodySHA256` is absent, since the body would then be unauthenticated.
pub fn validate_json(auth_token: &str, url: &str, raw_body: &[u8], signature_header: &str) -> bool {
    let Some(claimed) = query_param(url, "bodySHA256") else {
        return false;
    };
    let actual = hex_lower(&Sha256::digest(raw_body));
    let body_ok = actual
        .as_bytes()
        .ct_eq(claimed.to_ascii_lowercase().as_bytes());
    let signature_ok = Choice::from(u8::from(validate(auth_token, url, &[], signature_header)));
    (body_ok & signature_ok).into()
}

fn hmac_sha1_base64(key: &str, message: &str) -> String {
    // HMAC accepts keys of any length, so this never fails; an empty result can never equal a
    // real header because `validate` rejects empty headers.
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(key.as_bytes()) else {
        return String::new();
    };
    mac.update(message.as_bytes());
    BASE64.encode(mac.finalize().into_bytes())
}

fn hex_lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// The first value of query parameter `name`, undecoded (Twilio's hex digests need no decoding).
fn query_param<'a>(url: &'a str, name: &str) -> Option<&'a str> {
    let query = url.split_once('?')?.1;
    let query = query.split_once('#').map_or(query, |(q, _)| q);
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then_some(value)
    })
}

/// The parts of a URL that port handling needs, as byte offsets into the original string.
struct Authority {
    /// Index just past `host` (where `:port` would start).
    host_end: usize,
    /// Index just past the port (equal to `host_end` when there is none).
    port_end: usize,
    has_port: bool,
    default_port: Option<u16>,
}

/// Locates host and port without normalising anything else: a URL library would re-encode the
/// path or drop default ports, changing the very bytes the signature covers.
fn authority(url: &str) -> Option<Authority> {
    let scheme_end = url.find("://")?;
    let scheme = &url[..scheme_end];
    let start = scheme_end + 3;
    let end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    let auth = &url[start..end];
    let host_start = auth.rfind('@').map_or(0, |i| i + 1);
    let host_port = &auth[host_start..];
    // Bracketed IPv6 hosts contain colons of their own; only a colon after `]` starts a port.
    let search_from = host_port.find(']').map_or(0, |i| i + 1);
    let colon = host_port[search_from..].rfind(':').map(|i| search_from + i);
    let default_port = if scheme.eq_ignore_ascii_case("https") {
        Some(443)
    } else if scheme.eq_ignore_ascii_case("http") {
        Some(80)
    } else {
        None
    };
    let host_abs = start + host_start;
    match colon {
        Some(c)
            if !host_port[c + 1..].is_empty()
                && host_port[c + 1..].bytes().all(|b| b.is_ascii_digit()) =>
        {
            Some(Authority {
                host_end: host_abs + c,
                port_end: end,
                has_port: true,
                default_port,
            })
        }
        _ => Some(Authority {
            host_end: end,
            port_end: end,
            has_port: false,
            default_port,
        }),
    }
}

/// The distinct URLs a genuine signature may have been computed over.
fn candidate_urls(url: &str) -> Vec<String> {
    let mut bases = vec![url.to_string()];
    if let Some(a) = authority(url) {
        if a.has_port {
            bases.push(format!("{}{}", &url[..a.host_end], &url[a.port_end..]));
        } else if let Some(port) = a.default_port {
            bases.push(format!(
                "{}:{port}{}",
                &url[..a.host_end],
                &url[a.host_end..]
            ));
        }
    }
    let mut all: Vec<String> = Vec::with_capacity(bases.len() * 2);
    for base in bases {
        if base.contains('\'') {
            all.push(base.replace('\'', "%27"));
        }
        all.push(base);
    }
    all.sort();
    all.dedup();
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "12345";
    const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";
    const BODY: &str = r#"{"property": "value", "boolean": true}"#;
    const BODY_HASH: &str = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";
    const EMPTY_BODY_HASH: &str =
        "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn five() -> Vec<(String, String)> {
        p(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
            ("Caller", "+14158675309"),
        ])
    }

    #[test]
    fn v1_plain_url() {
        assert_eq!(compute(TOKEN, URL, &five()), "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
        assert!(validate(
            TOKEN,
            URL,
            &five(),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
    }

    #[test]
    fn v2_default_https_port_added() {
        let with_port = "https://mycompany.com:443/myapp.php?foo=1&bar=2";
        assert_eq!(
            compute(TOKEN, with_port, &five()),
            "kvajT1Ptam85bY51eRf/AJRuM3w="
        );
        assert!(validate(
            TOKEN,
            URL,
            &five(),
            "kvajT1Ptam85bY51eRf/AJRuM3w="
        ));
        // And the reverse: a URL received with :443, signed without it.
        assert!(validate(
            TOKEN,
            with_port,
            &five(),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
    }

    #[test]
    fn v3_custom_port_kept() {
        let url = "http://mycompany.com:1234/myapp.php?foo=1&bar=2";
        assert!(validate(
            TOKEN,
            url,
            &five(),
            "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="
        ));
    }

    #[test]
    fn v4_default_http_port_added() {
        let url = "http://mycompany.com/myapp.php?foo=1&bar=2";
        assert!(validate(
            TOKEN,
            url,
            &five(),
            "0ZXoZLH/DfblKGATFgpif+LLRf4="
        ));
    }

    #[test]
    fn v5_custom_port_stripped() {
        let url = "https://mycompany.com:1234/myapp.php?foo=1&bar=2";
        assert!(validate(
            TOKEN,
            url,
            &five(),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
    }

    #[test]
    fn v6_json_body() {
        let url = format!("{URL}&bodySHA256={BODY_HASH}");
        assert!(validate_json(
            TOKEN,
            &url,
            BODY.as_bytes(),
            "a9nBmqA0ju/hNViExpshrM61xv4="
        ));
    }

    #[test]
    fn v7_json_body_only_query_param() {
        let url = format!("https://mycompany.com/myapp.php?bodySHA256={BODY_HASH}");
        assert!(validate_json(
            TOKEN,
            &url,
            BODY.as_bytes(),
            "y77kIzt2vzLz71DgmJGsen2scGs="
        ));
    }

    #[test]
    fn v8_empty_json_body_with_port_variant() {
        let url = format!("{URL}&bodySHA256={EMPTY_BODY_HASH}");
        assert!(validate_json(
            TOKEN,
            &url,
            b"{}",
            "Ldidvp12m26NI7eqEvxnEpkd9Hc="
        ));
    }

    #[test]
    fn v9_duplicates_and_prefix_names() {
        let params = p(&[
            ("Sid", "CA123"),
            ("SidAccount", "AC123"),
            ("Digits", "5678"),
            ("Digits", "1234"),
            ("Digits", "1234"),
        ]);
        assert_eq!(compute(TOKEN, URL, &params), "IK+Dwps556ElfBT0I3Rgjkr1wJU=");
        assert!(validate(
            TOKEN,
            URL,
            &params,
            "IK+Dwps556ElfBT0I3Rgjkr1wJU="
        ));
    }

    #[test]
    fn v10_multi_valued_param_any_order() {
        let a = ("MessagingBinding.Address", "+1325xxxxxxx");
        let b = ("MessagingBinding.Address", "+1415xxxxxxx");
        for params in [p(&[a, b]), p(&[b, a])] {
            assert!(validate(
                TOKEN,
                URL,
                &params,
                "83O6e2vORAoJHUNzJjDWN1jz+BA="
            ));
        }
    }

    #[test]
    fn v11_userinfo_kept() {
        let url = "https://user:pass@mycompany.com/myapp.php?foo=1&bar=2";
        assert!(validate(
            TOKEN,
            url,
            &five(),
            "CukzLTc1tT5dXEDIHm/tKBanW10="
        ));
    }

    #[test]
    fn v12_username_only() {
        let url = "https://user@mycompany.com/myapp.php?foo=1&bar=2";
        assert!(validate(
            TOKEN,
            url,
            &five(),
            "2YRLlVAflCqxaNicjMpJcSTgzSs="
        ));
    }

    #[test]
    fn v13_userinfo_with_default_port_added() {
        let url = "https://user:pass@mycompany.com/myapp.php?foo=1&bar=2";
        assert!(validate(
            TOKEN,
            url,
            &five(),
            "ZQFR1PTIZXF2MXB8ZnKCvnnA+rI="
        ));
    }

    #[test]
    fn v14_apostrophe_reencoded() {
        let raw = "https://mycompany.com/myapp.php?foo=1&bar=2&Body=It's+amazing";
        assert!(validate(
            TOKEN,
            raw,
            &five(),
            "TfZzewPq8wqrGlMfyAud8+/IvJ0="
        ));
        // The un-encoded form is a candidate as well.
        assert_eq!(compute(TOKEN, raw, &five()), "dsq4Ehbj6cs+KdTkpF5sSSplOWw=");
        assert!(validate(
            TOKEN,
            raw,
            &five(),
            "dsq4Ehbj6cs+KdTkpF5sSSplOWw="
        ));
    }

    #[test]
    fn string_to_sign_matches_reference() {
        let expected = "https://mycompany.com/myapp.php?foo=1&bar=2CallSidCA1234567890ABCDECaller+14158675309Digits1234From+14158675309To+18005551212";
        assert_eq!(
            hmac_sha1_base64(TOKEN, expected),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
    }

    #[test]
    fn negative_wrong_url_param_value() {
        let sig = compute("s3cr3t", "https://example.com/path?test=param", &[]);
        assert!(!validate(
            "s3cr3t",
            "https://example.com/path?test=param2",
            &[],
            &sig
        ));
        assert!(validate(
            "s3cr3t",
            "https://example.com/path?test=param",
            &[],
            &sig
        ));
        assert!(validate(
            "s3cr3t",
            "https://example.com:443/path?test=param",
            &[],
            &sig
        ));
        let sig443 = compute("s3cr3t", "https://example.com:443/path?test=param", &[]);
        assert!(validate(
            "s3cr3t",
            "https://example.com/path?test=param",
            &[],
            &sig443
        ));
    }

    #[test]
    fn negative_wrong_token_or_params_or_header() {
        assert!(!validate(
            "54321",
            URL,
            &five(),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
        let mut tampered = five();
        tampered.push(("Extra".into(), "1".into()));
        assert!(!validate(
            TOKEN,
            URL,
            &tampered,
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
        assert!(!validate(TOKEN, URL, &five(), ""));
        assert!(!validate("", URL, &five(), "RSOYDt4T1cUTdK1PDd93/VVr8B8="));
        assert!(!validate(
            TOKEN,
            URL,
            &five(),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8"
        ));
    }

    #[test]
    fn negative_json_missing_or_wrong_body_hash() {
        // Correct signature for the URL, but no bodySHA256 to vouch for the body.
        let sig = compute(TOKEN, URL, &[]);
        assert!(!validate_json(TOKEN, URL, BODY.as_bytes(), &sig));
        // bodySHA256 present but the body was altered.
        let url = format!("{URL}&bodySHA256={BODY_HASH}");
        assert!(!validate_json(
            TOKEN,
            &url,
            b"{}",
            "a9nBmqA0ju/hNViExpshrM61xv4="
        ));
        // Body fine, signature wrong.
        assert!(!validate_json(
            "54321",
            &url,
            BODY.as_bytes(),
            "a9nBmqA0ju/hNViExpshrM61xv4="
        ));
    }

    #[test]
    fn candidates_cover_port_variants() {
        let c = candidate_urls("https://h.example/x");
        assert_eq!(c, vec!["https://h.example/x", "https://h.example:443/x"]);
        let c = candidate_urls("http://[::1]:8080/x?a=b");
        assert!(c.contains(&"http://[::1]/x?a=b".to_string()));
        let c = candidate_urls("http://[::1]/x");
        assert!(c.contains(&"http://[::1]:80/x".to_string()));
        let c = candidate_urls("https://u:p@h.example?q=1");
        assert!(c.contains(&"https://u:p@h.example:443?q=1".to_string()));
        assert_eq!(candidate_urls("not a url"), vec!["not a url"]);
    }

    #[test]
    fn body_hash_reference_values() {
        assert_eq!(hex_lower(&Sha256::digest(BODY.as_bytes())), BODY_HASH);
        assert_eq!(hex_lower(&Sha256::digest(b"{}")), EMPTY_BODY_HASH);
    }
}
