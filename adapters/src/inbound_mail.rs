//! Inbound email as a mail relay hands it over: Mailgun's route `forward()` to a URL ending in
//! `mime` posts the raw message (`body-mime`) with `timestamp`, `token` and `signature`, the
//! hex HMAC-SHA256 of `timestamp ‖ token` under the account's HTTP webhook signing key. Here:
//! that check, and what a message says once read: who wrote, to which address, the new words
//! of a reply (quoted history cut off), and whether it is a report about an earlier message (a
//! delivery status notification, RFC 3464, or a complaint, RFC 5965). Pure: no I/O.

use mailparse::{MailHeaderMap, ParsedMail};
use subtle::ConstantTimeEq;

/// How much of a reply's text is kept: a person's reply, not a thread's history or a log.
pub const MAX_TEXT_CHARS: usize = 10_000;
/// How deep into nested parts a message is read (a hostile message nests without end).
const MAX_DEPTH: usize = 8;

/// Whether `signature` is Mailgun's for `timestamp` and `token` under `signing_key` (compared
/// in constant time).
pub fn signature_valid(signing_key: &str, timestamp: &str, token: &str, signature: &str) -> bool {
    use hmac::Mac;
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(signing_key.as_bytes()) else {
        return false;
    };
    mac.update(timestamp.as_bytes());
    mac.update(token.as_bytes());
    let expected = hex_lower(&mac.finalize().into_bytes());
    let given = signature.trim().to_ascii_lowercase();
    expected.as_bytes().ct_eq(given.as_bytes()).into()
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One message as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundMail {
    /// The author's address (`From`), lower-cased.
    pub from: String,
    /// The author's display name, when given.
    pub from_name: Option<String>,
    pub subject: String,
    /// The new words of the message: its plain text (or its HTML's text), with the quoted
    /// history of a reply cut off, at most [`MAX_TEXT_CHARS`].
    pub text: String,
    /// `Message-ID`, without angle brackets.
    pub message_id: Option<String>,
    /// An automatic answer (`Auto-Submitted` other than `no`, or an out-of-office marker): not
    /// the lead speaking.
    pub automatic: bool,
    /// What a report says, when the message is one.
    pub report: Option<Report>,
    /// The `Reply-To` address of the message a report is about (ours carry the reply token).
    pub original_reply_to: Option<String>,
}

/// A report about an earlier message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// A delivery status notification for `recipient`: `status` is its RFC 3463 code
    /// (`5.1.1`), `action` its verdict (`failed`, `delayed`, `delivered`, …).
    Delivery {
        recipient: String,
        action: String,
        status: String,
        diagnostic: Option<String>,
    },
    /// A complaint (`Feedback-Type`, usually `abuse`: the reader marked it as spam) about a
    /// message to `recipient`, when the report names them.
    Complaint {
        recipient: Option<String>,
        feedback_type: String,
    },
}

impl Report {
    /// A delivery that failed for good (`Action: failed` with a 5.x.x status).
    pub fn is_permanent_failure(&self) -> bool {
        matches!(self, Report::Delivery { action, status, .. }
            if action.eq_ignore_ascii_case("failed") && status.starts_with('5'))
    }
}

/// Why a message could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MailError {
    #[error("the message is not MIME that can be read")]
    Unreadable,
    #[error("the message has no From address")]
    NoFrom,
}

/// Reads a raw message.
pub fn read(raw: &[u8]) -> Result<InboundMail, MailError> {
    let mail = mailparse::parse_mail(raw).map_err(|_| MailError::Unreadable)?;
    let headers = mail.get_headers();
    let (from, from_name) = headers
        .get_first_value("From")
        .and_then(|v| first_address(&v))
        .ok_or(MailError::NoFrom)?;
    let subject = headers
        .get_first_value("Subject")
        .unwrap_or_default()
        .trim()
        .to_owned();
    let message_id = headers
        .get_first_value("Message-ID")
        .map(|v| {
            v.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned()
        })
        .filter(|v| !v.is_empty() && v.len() <= 250);
    let auto = headers
        .get_first_value("Auto-Submitted")
        .is_some_and(|v| !v.trim().eq_ignore_ascii_case("no"))
        || headers.get_first_value("X-Autoreply").is_some()
        || headers.get_first_value("X-Autorespond").is_some();
    let (report, original_reply_to) = report_of(&mail);
    let text = body_text(&mail, 0).unwrap_or_default();
    Ok(InboundMail {
        from,
        from_name,
        subject,
        text: truncate(&strip_quoted(&text), MAX_TEXT_CHARS),
        message_id,
        automatic: auto || report.is_some(),
        report,
        original_reply_to,
    })
}

/// The first address of a header value (`"Ana" <ana@x.test>`), lower-cased, with its name.
fn first_address(value: &str) -> Option<(String, Option<String>)> {
    let list = mailparse::addrparse(value).ok()?;
    let single = list.into_inner().into_iter().find_map(|a| match a {
        mailparse::MailAddr::Single(s) => Some(s),
        mailparse::MailAddr::Group(g) => g.addrs.into_iter().next(),
    })?;
    let addr = single.addr.trim().to_lowercase();
    // No control characters or spaces: an address is stored and compared as text (and
    // PostgreSQL's JSON refuses NUL).
    let ok = addr.len() <= 254
        && !addr.chars().any(|c| c.is_control() || c.is_whitespace())
        && matches!(addr.split_once('@'), Some((l, d)) if !l.is_empty() && !d.is_empty());
    ok.then(|| (addr, single.display_name.filter(|n| !n.trim().is_empty())))
}

/// The message's text: its first `text/plain` part, else its first `text/html` part's text,
/// not looking inside attached messages.
fn body_text(part: &ParsedMail, depth: usize) -> Option<String> {
    if depth > MAX_DEPTH {
        return None;
    }
    let mime = part.ctype.mimetype.to_ascii_lowercase();
    if mime.starts_with("multipart/") {
        // A plain part of this level wins; otherwise the first part that yields any text. Each
        // part is decoded only when it is the one taken.
        let plain = part
            .subparts
            .iter()
            .find(|p| p.ctype.mimetype.eq_ignore_ascii_case("text/plain") && !is_attachment(p));
        return match plain {
            Some(p) => p.get_body().ok(),
            None => part.subparts.iter().find_map(|p| body_text(p, depth + 1)),
        };
    }
    if is_attachment(part) {
        return None;
    }
    match mime.as_str() {
        "text/plain" => part.get_body().ok(),
        "text/html" => part.get_body().ok().map(|h| html_text(&h)),
        _ => None,
    }
}

fn is_attachment(part: &ParsedMail) -> bool {
    part.get_content_disposition().disposition == mailparse::DispositionType::Attachment
}

/// HTML's words: tags dropped, a line break for each block, the common entities decoded.
fn html_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let mut in_tag = false;
    let mut tag = String::new();
    for c in html.chars() {
        match (in_tag, c) {
            (false, '<') => {
                in_tag = true;
                tag.clear();
            }
            (true, '>') => {
                in_tag = false;
                let name = tag.trim_start_matches('/').to_ascii_lowercase();
                let name = name.split_whitespace().next().unwrap_or_default();
                if matches!(
                    name,
                    "br" | "br/" | "p" | "div" | "li" | "tr" | "blockquote"
                ) {
                    out.push('\n');
                }
            }
            (true, c) => tag.push(c),
            (false, c) => out.push(c),
        }
    }
    out.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// The new words of a reply: everything before the quoted history (`> ` lines, or the line
/// that introduces them: "On … wrote:", "-----Original Message-----", "From: …" after a rule).
pub fn strip_quoted(text: &str) -> String {
    let mut kept: Vec<&str> = Vec::new();
    for line in text.lines() {
        let t = line.trim();
        let lower = t.to_ascii_lowercase();
        let intro = (lower.starts_with("on ") && lower.ends_with("wrote:"))
            || lower.starts_with("-----original message-----")
            || (lower.starts_with("from:")
                && kept.last().is_some_and(|l| l.trim().starts_with("___")));
        if t.starts_with('>') || intro {
            break;
        }
        kept.push(line);
    }
    let joined = kept.join("\n");
    joined.trim().to_owned()
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => text[..at].to_owned(),
        None => text.to_owned(),
    }
}

/// A report's verdict and the `Reply-To` of the message it is about.
fn report_of(mail: &ParsedMail) -> (Option<Report>, Option<String>) {
    if !mail.ctype.mimetype.eq_ignore_ascii_case("multipart/report") {
        return (None, None);
    }
    let kind = mail
        .ctype
        .params
        .get("report-type")
        .map(|k| k.to_ascii_lowercase())
        .unwrap_or_default();
    let mut report = None;
    let mut reply_to = None;
    let mut original_to = None;
    for part in &mail.subparts {
        let mime = part.ctype.mimetype.to_ascii_lowercase();
        let body = || part.get_body_raw().unwrap_or_default();
        match mime.as_str() {
            "message/delivery-status" | "message/global-delivery-status"
                if kind == "delivery-status" =>
            {
                report = delivery(&body());
            }
            "message/feedback-report" if kind == "feedback-report" => {
                report = complaint(&body());
            }
            "message/rfc822" | "text/rfc822-headers" | "message/rfc822-headers" => {
                if let Ok((headers, _)) = mailparse::parse_headers(&body()) {
                    reply_to = headers
                        .get_first_value("Reply-To")
                        .and_then(|v| first_address(&v))
                        .map(|(a, _)| a);
                    original_to = headers
                        .get_first_value("To")
                        .and_then(|v| first_address(&v))
                        .map(|(a, _)| a);
                }
            }
            _ => {}
        }
    }
    // A complaint that names no recipient is about the message it carries.
    if let Some(Report::Complaint { recipient, .. }) = &mut report {
        if recipient.is_none() {
            *recipient = original_to;
        }
    }
    (report, reply_to)
}

/// Header-like fields of a report body: `Name: value` lines, in groups separated by blank
/// lines (a delivery status has one group for the message, then one per recipient).
fn field_groups(body: &[u8]) -> Vec<Vec<(String, String)>> {
    let text = String::from_utf8_lossy(body);
    let mut groups: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for line in text.lines() {
        if line.trim().is_empty() {
            if groups.last().is_some_and(|g| !g.is_empty()) {
                groups.push(Vec::new());
            }
            continue;
        }
        let group = groups.last_mut();
        match (line.starts_with([' ', '\t']), group) {
            // A folded line continues the previous field.
            (true, Some(group)) => {
                if let Some((_, v)) = group.last_mut() {
                    v.push(' ');
                    v.push_str(line.trim());
                }
            }
            (false, Some(group)) => {
                if let Some((k, v)) = line.split_once(':') {
                    group.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
                }
            }
            (_, None) => {}
        }
    }
    groups.retain(|g| !g.is_empty());
    groups
}

fn field<'a>(group: &'a [(String, String)], name: &str) -> Option<&'a str> {
    group
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// `rfc822; ana@x.test` → `ana@x.test`.
fn typed_address(value: &str) -> Option<String> {
    let addr = value.split_once(';').map_or(value, |(_, a)| a);
    first_address(addr.trim()).map(|(a, _)| a)
}

/// The first recipient group's verdict.
fn delivery(body: &[u8]) -> Option<Report> {
    field_groups(body).into_iter().find_map(|group| {
        let recipient = field(&group, "final-recipient")
            .or_else(|| field(&group, "original-recipient"))
            .and_then(typed_address)?;
        let action = field(&group, "action")?.to_ascii_lowercase();
        let status = field(&group, "status")?
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned();
        let diagnostic = field(&group, "diagnostic-code")
            .map(|d| d.split_once(';').map_or(d, |(_, t)| t).trim().to_owned());
        Some(Report::Delivery {
            recipient,
            action,
            status,
            diagnostic,
        })
    })
}

fn complaint(body: &[u8]) -> Option<Report> {
    let fields: Vec<(String, String)> = field_groups(body).into_iter().flatten().collect();
    let feedback_type = field(&fields, "feedback-type")?.to_ascii_lowercase();
    let recipient = field(&fields, "original-rcpt-to").and_then(typed_address);
    Some(Report::Complaint {
        recipient,
        feedback_type,
    })
}

#[cfg(test)]
#[path = "inbound_mail_tests.rs"]
mod tests;
