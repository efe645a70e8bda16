//! A mail relay of ours that speaks Mailgun's route protocol, for the demo and the benchmarks:
//! what Mailgun does when mail reaches a route with `forward("<url ending in mime>")`. It posts
//! the raw message as `multipart/form-data` (`recipient`, `sender`, `from`, `subject`,
//! `body-mime`, `timestamp`, `token`, `signature`), signed as Mailgun signs (hex HMAC-SHA256 of
//! `timestamp ‖ token` under the account's webhook signing key), with a fresh token per post,
//! and counts what the receiver answered. It also writes the mail a lead's side would send: a
//! reply to a message (quoting it, to its `Reply-To`) and a delivery status notification.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hmac::Mac;
use rand::Rng;

/// What the relay saw of its posts.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RelayStats {
    pub posted: u64,
    /// Answered 200.
    pub accepted: u64,
    /// Answered anything else, or not at all.
    pub refused: u64,
}

pub struct RelaySim {
    http: reqwest::Client,
    url: String,
    signing_key: String,
    posted: AtomicU64,
    accepted: AtomicU64,
    refused: AtomicU64,
}

/// Why a post was not taken.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("the receiver answered {status}: {body}")]
    Refused { status: u16, body: String },
    #[error("no answer: {0}")]
    NoAnswer(String),
}

impl RelaySim {
    /// A relay posting to `url` (the tenant's `webhook_url`), signing with `signing_key`.
    pub fn new(url: String, signing_key: String) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Self {
            http,
            url,
            signing_key,
            posted: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }
    }

    /// Posts `mime`, received for `recipient`, as Mailgun forwards it; the receiver's answer
    /// body when it took it.
    pub async fn forward(&self, recipient: &str, mime: &str) -> Result<String, RelayError> {
        self.posted.fetch_add(1, Ordering::Relaxed);
        let timestamp = chrono::Utc::now().timestamp().to_string();
        let token: String = {
            let mut rng = rand::thread_rng();
            (0..50)
                .map(|_| char::from(b"0123456789abcdef"[rng.gen_range(0..16)]))
                .collect()
        };
        let signature = sign(&self.signing_key, &timestamp, &token);
        let from = header(mime, "From").unwrap_or_default();
        let subject = header(mime, "Subject").unwrap_or_default();
        let fields = [
            ("recipient", recipient),
            ("sender", from.as_str()),
            ("from", from.as_str()),
            ("subject", subject.as_str()),
            ("body-mime", mime),
            ("timestamp", timestamp.as_str()),
            ("token", token.as_str()),
            ("signature", signature.as_str()),
        ];
        let (content_type, body) = multipart(&fields);
        let answer = self
            .http
            .post(&self.url)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await;
        let answer = match answer {
            Ok(a) => a,
            Err(e) => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                return Err(RelayError::NoAnswer(e.to_string()));
            }
        };
        let status = answer.status().as_u16();
        let body = answer.text().await.unwrap_or_default();
        if status == 200 {
            self.accepted.fetch_add(1, Ordering::Relaxed);
            Ok(body)
        } else {
            self.refused.fetch_add(1, Ordering::Relaxed);
            Err(RelayError::Refused { status, body })
        }
    }

    pub fn stats(&self) -> RelayStats {
        RelayStats {
            posted: self.posted.load(Ordering::Relaxed),
            accepted: self.accepted.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
        }
    }
}

/// Mailgun's signature of a post.
pub fn sign(signing_key: &str, timestamp: &str, token: &str) -> String {
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(signing_key.as_bytes()) else {
        return String::new();
    };
    mac.update(timestamp.as_bytes());
    mac.update(token.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn multipart(fields: &[(&str, &str)]) -> (String, String) {
    let boundary: String = {
        let mut rng = rand::thread_rng();
        (0..24)
            .map(|_| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[rng.gen_range(0..36)]))
            .collect()
    };
    let mut body = String::new();
    for (name, value) in fields {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        ));
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// The first header `name` of a raw message (case-insensitive), unfolded.
pub fn header(mime: &str, name: &str) -> Option<String> {
    let head = mime.split("\r\n\r\n").next().unwrap_or_default();
    let mut found: Option<String> = None;
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            if let Some(v) = found.as_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
            continue;
        }
        if found.is_some() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.trim().eq_ignore_ascii_case(name) {
                found = Some(v.trim().to_owned());
            }
        }
    }
    found
}

/// The reply `from` writes to `original` (a raw message): to its `Reply-To` (else its `From`),
/// `Re:` its subject, quoting its first lines below the new words. Returns the address it goes
/// to (the relay's recipient) and the message.
pub fn reply(original: &str, from: &str, words: &str, message_id: &str) -> (String, String) {
    let to = header(original, "Reply-To")
        .or_else(|| header(original, "From"))
        .unwrap_or_default();
    let subject = header(original, "Subject").unwrap_or_default();
    let in_reply_to = header(original, "Message-ID").unwrap_or_default();
    let quoted: String = original
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .lines()
        .take(3)
        .map(|l| format!("> {l}\r\n"))
        .collect();
    let mime = format!(
        "From: {from}\r\nTo: {to}\r\nSubject: Re: {subject}\r\nMessage-ID: <{message_id}>\r\n\
         In-Reply-To: {in_reply_to}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         {words}\r\n\r\nOn a weekday, {to} wrote:\r\n{quoted}"
    );
    (to, mime)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound_mail;

    #[test]
    fn its_signature_verifies_and_its_reply_reads_back() {
        let sig = sign("key-1", "1700000000", "abc");
        assert!(inbound_mail::signature_valid(
            "key-1",
            "1700000000",
            "abc",
            &sig
        ));
        let original = "From: Acme <sales@acme.test>\r\nReply-To: reply+x@r.test\r\n\
            Subject: Hello Ana\r\nMessage-ID: <m1@acme>\r\n\r\nHi Ana,\r\nwe will call.\r\n";
        let (to, mime) = reply(original, "ana@x.test", "Call me at 3", "r1@x.test");
        assert_eq!(to, "reply+x@r.test");
        let read = inbound_mail::read(mime.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read.from, "ana@x.test");
        assert_eq!(read.subject, "Re: Hello Ana");
        assert_eq!(read.text, "Call me at 3");
        assert_eq!(read.message_id.as_deref(), Some("r1@x.test"));
        let (_, form) = multipart(&[("a", "1"), ("body-mime", "x")]);
        assert!(form.contains("name=\"body-mime\"\r\n\r\nx\r\n"), "{form}");
    }
}
