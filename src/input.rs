//! Free text from outside (API bodies and queries, console forms): what may be in it. One rule
//! for every path, so the API and the console refuse the same things with the same words.
//!
//! Control characters are refused because they end up in HTML, logs, CSV exports and
//! terminals (and NUL cannot be stored in PostgreSQL text at all); bidirectional overrides
//! because they make a name or a reason read differently from what it is ("Trojan Source").
//! Line feed, carriage return and tab stay allowed in multi-line text such as reasons and
//! message bodies. Lengths count characters, as the messages say, not bytes.

use serde_json::Value;

/// Whether a field may span lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lines {
    One,
    Many,
}

/// Why a text was refused, by field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {message}")]
pub struct BadText {
    pub field: String,
    pub message: String,
}

fn bad(field: &str, message: impl Into<String>) -> BadText {
    BadText {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// The bidirectional embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// The first character `text` may not hold, described, if any.
fn forbidden(text: &str, lines: Lines) -> Option<String> {
    text.chars().find_map(|c| {
        let allowed_space = lines == Lines::Many && matches!(c, '\n' | '\r' | '\t');
        if c == '\0' {
            Some("must not contain NUL (U+0000)".to_owned())
        } else if c.is_control() && !allowed_space {
            Some(format!(
                "must not contain control characters (U+{:04X})",
                u32::from(c)
            ))
        } else if is_bidi_control(c) {
            Some(format!(
                "must not contain bidirectional override characters (U+{:04X})",
                u32::from(c)
            ))
        } else {
            None
        }
    })
}

/// Checks one text field: its characters, and its length in characters (`min`..=`max`, after
/// trimming surrounding white space when `min` is above zero).
pub fn check(field: &str, text: &str, lines: Lines, min: usize, max: usize) -> Result<(), BadText> {
    if let Some(why) = forbidden(text, lines) {
        return Err(bad(field, why));
    }
    let counted = if min > 0 { text.trim() } else { text }.chars().count();
    if counted < min || counted > max {
        return Err(bad(field, format!("must be {min} to {max} characters")));
    }
    Ok(())
}

/// Walks a parsed JSON body and refuses the first string (value or key) holding a character
/// no field may hold, naming its path (`contact.name`, `items[2]`). Line breaks and tabs pass
/// here; single-line fields refuse them in their own checks.
pub fn check_json(value: &Value) -> Result<(), BadText> {
    fn walk(v: &Value, path: &mut String) -> Result<(), BadText> {
        match v {
            Value::String(s) => match forbidden(s, Lines::Many) {
                Some(why) => Err(bad(if path.is_empty() { "body" } else { path }, why)),
                None => Ok(()),
            },
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    walk(item, path)?;
                    path.truncate(len);
                }
                Ok(())
            }
            Value::Object(map) => {
                for (k, item) in map {
                    if let Some(why) = forbidden(k, Lines::One) {
                        return Err(bad(if path.is_empty() { "body" } else { path }, why));
                    }
                    let len = path.len();
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(k);
                    walk(item, path)?;
                    path.truncate(len);
                }
                Ok(())
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => Ok(()),
        }
    }
    walk(value, &mut String::new())
}

/// Like [`check_json`] for decoded form or query pairs, naming the key.
pub fn check_pairs<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    lines: Lines,
) -> Result<(), BadText> {
    for (k, v) in pairs {
        if let Some(why) = forbidden(k, Lines::One) {
            return Err(bad("query", why));
        }
        if let Some(why) = forbidden(v, lines) {
            return Err(bad(k, why));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn controls_and_overrides_are_refused_and_line_breaks_only_where_lines_are_many() {
        for text in [
            "a\u{0}b",
            "a\u{7}b",
            "a\u{1b}[31mb",
            "a\u{85}b",
            "a\u{202E}b",
            "a\u{2066}b",
        ] {
            assert!(check("f", text, Lines::Many, 0, 100).is_err(), "{text:?}");
            assert!(check("f", text, Lines::One, 0, 100).is_err(), "{text:?}");
        }
        for text in ["line one\nline two", "a\tb", "a\r\nb"] {
            assert!(check("f", text, Lines::Many, 0, 100).is_ok(), "{text:?}");
            assert!(check("f", text, Lines::One, 0, 100).is_err(), "{text:?}");
        }
        assert!(check("f", "Ana Lima — ñ 日本 😀", Lines::One, 1, 100).is_ok());
    }

    #[test]
    fn lengths_count_characters_not_bytes() {
        let accented = "é".repeat(200); // 400 bytes
        assert!(check("name", &accented, Lines::One, 1, 200).is_ok());
        let long = "é".repeat(201);
        let err = check("name", &long, Lines::One, 1, 200).unwrap_err();
        assert_eq!(err.message, "must be 1 to 200 characters");
        assert!(check("name", "   ", Lines::One, 1, 200).is_err(), "blank");
    }

    #[test]
    fn a_json_body_names_the_path_of_the_bad_string() {
        let body = json!({"contact": {"name": "ok", "tags": ["fine", "bad\u{202E}"]}});
        let err = check_json(&body).unwrap_err();
        assert_eq!(err.field, "contact.tags[1]");
        assert!(check_json(&json!({"reason": "two\nlines"})).is_ok());
        let err = check_json(&json!({"a\u{0}": 1})).unwrap_err();
        assert_eq!(err.field, "body");
    }
}
