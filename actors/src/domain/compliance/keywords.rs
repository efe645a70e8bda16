//! Inbound keywords: opt-out, opt-in and help words, matched the way the carrier matches them.

use super::*;

named_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    pub enum Keyword {
        OptOut = "opt_out",
        OptIn = "opt_in",
        Help = "help",
    }
}

/// Twilio's default opt-out words, the FCC's per-se revocation words
/// (47 CFR 64.1200(a)(10), including the two-word "opt out") and ARRET for
/// French-speaking Canada (domain.md §2.5).
pub(super) const OPT_OUT_WORDS: &[&str] = &[
    "STOP",
    "STOPALL",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "REVOKE",
    "OPTOUT",
    "OPT OUT",
    "ARRET",
    "ARRÊT",
];
pub(super) const OPT_IN_WORDS: &[&str] = &["START", "YES", "UNSTOP"];
pub(super) const HELP_WORDS: &[&str] = &["HELP", "INFO"];

/// Classifies an inbound text as a keyword when the whole message is one:
/// surrounding whitespace, punctuation and emoji are ignored, case does not
/// matter, and `-`/`_`/runs of spaces inside count as one space (so
/// "Opt-Out!" is an opt-out).
///
/// A keyword inside a sentence ("stop please", "I want to stop") is *not* a
/// keyword: this is Twilio's own single-word matching, so our state never
/// disagrees with the carrier-level block. Such messages may still be a
/// revocation in the FCC's "reasonable means" sense; [`mentions_opt_out`]
/// flags them for a human.
pub fn classify_reply(body: &str) -> Option<Keyword> {
    let text = normalize(body);
    let is = |words: &[&str]| words.contains(&text.as_str());
    if is(OPT_OUT_WORDS) {
        Some(Keyword::OptOut)
    } else if is(OPT_IN_WORDS) {
        Some(Keyword::OptIn)
    } else if is(HELP_WORDS) {
        Some(Keyword::Help)
    } else {
        None
    }
}

/// Whether a text that is not itself a keyword contains an opt-out word
/// ("please stop texting me"): domain.md §2.5 asks for human review of
/// those, since a reasonable revocation must be honoured however phrased.
pub fn mentions_opt_out(body: &str) -> bool {
    if classify_reply(body).is_some() {
        return false;
    }
    let words: Vec<String> = body
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_uppercase)
        .collect();
    words.iter().any(|w| OPT_OUT_WORDS.contains(&w.as_str()))
        || words
            .windows(2)
            .any(|pair| pair[0] == "OPT" && pair[1] == "OUT")
}

pub(super) fn normalize(body: &str) -> String {
    body.trim_matches(|c: char| !c.is_alphanumeric())
        .split(|c: char| c.is_whitespace() || c == '-' || c == '_')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
        .to_uppercase()
}
