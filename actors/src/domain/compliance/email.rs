//! The email gate and what an SMTP refusal means for an address.
//!
//! Email has no calling window and no per-day cap in CAN-SPAM; what it has is consent per
//! channel, an unsubscribe that must be honoured, and addresses that bounce. So the gate is a
//! plain allow-or-deny, and a denial is never deferred: only a changed fact (consent given, the
//! address corrected) sends the next email.

use serde::{Deserialize, Serialize};

/// What the gate knows about the lead's email channel.
#[derive(Debug, Clone, Copy)]
pub struct EmailFacts<'a> {
    pub address: Option<&'a str>,
    pub consent: bool,
    /// The lead opted out of everything (STOP).
    pub opted_out: bool,
    /// The lead unsubscribed from email (one-click).
    pub unsubscribed: bool,
    /// The address hard-bounced; it is never mailed again.
    pub address_invalid: bool,
}

/// Why an email is not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmailBlock {
    NoAddress,
    NoConsent,
    OptedOut,
    Unsubscribed,
    AddressInvalid,
}

impl EmailBlock {
    pub fn describe(self) -> &'static str {
        match self {
            EmailBlock::NoAddress => "the lead has no email address",
            EmailBlock::NoConsent => "no consent to email the lead",
            EmailBlock::OptedOut => "the lead opted out of all contact",
            EmailBlock::Unsubscribed => "the lead unsubscribed from email",
            EmailBlock::AddressInvalid => "the lead's address bounced and is marked invalid",
        }
    }
}

/// Allowed, or the first reason it is not. The order puts the lead's own choices first.
pub fn check_email(facts: &EmailFacts<'_>) -> Result<(), EmailBlock> {
    if facts.opted_out {
        return Err(EmailBlock::OptedOut);
    }
    if facts.unsubscribed {
        return Err(EmailBlock::Unsubscribed);
    }
    if facts.address.is_none_or(|a| a.trim().is_empty()) {
        return Err(EmailBlock::NoAddress);
    }
    if facts.address_invalid {
        return Err(EmailBlock::AddressInvalid);
    }
    if !facts.consent {
        return Err(EmailBlock::NoConsent);
    }
    Ok(())
}

/// What a permanent (5xx) refusal of a recipient says about the address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// The address does not exist or takes no mail (5.1.x, 5.2.1, or a bare 550/551/553):
    /// a hard bounce, the address is marked invalid.
    HardBounce,
    /// The refusal is about us (5.7.x: policy, authentication): fix the sending, do not blame
    /// the address.
    SenderSide,
    /// Class 5 but widely treated as soft (5.2.2 mailbox full): not sent, the address kept.
    Soft,
}

/// Classifies a recipient's 5xx by its enhanced status code (RFC 3463) when the server gave
/// one in `text`, else by the basic code.
pub fn classify_refusal(code: u16, text: &str) -> Refusal {
    let enhanced = text
        .split(|c: char| c.is_whitespace() || c == ':' || c == '(' || c == ')')
        .find(|w| {
            let parts: Vec<&str> = w.split('.').collect();
            parts.len() == 3
                && parts[0] == "5"
                && parts
                    .iter()
                    .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
        });
    match enhanced.map(|e| e.split('.').skip(1).collect::<Vec<_>>()) {
        Some(p) if p[0] == "7" => Refusal::SenderSide,
        Some(p) if p[0] == "2" && p[1] == "2" => Refusal::Soft,
        Some(p) if p[0] == "1" || (p[0] == "2" && p[1] == "1") => Refusal::HardBounce,
        Some(_) => Refusal::Soft,
        None => match code {
            550 | 551 | 553 => Refusal::HardBounce,
            552 => Refusal::Soft,
            _ => Refusal::SenderSide,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> EmailFacts<'static> {
        EmailFacts {
            address: Some("ana@x.test"),
            consent: true,
            opted_out: false,
            unsubscribed: false,
            address_invalid: false,
        }
    }

    #[test]
    fn the_gate_allows_only_a_consenting_subscribed_valid_address() {
        assert_eq!(check_email(&facts()), Ok(()));
        let cases = [
            (
                EmailFacts {
                    address: None,
                    ..facts()
                },
                EmailBlock::NoAddress,
            ),
            (
                EmailFacts {
                    address: Some(" "),
                    ..facts()
                },
                EmailBlock::NoAddress,
            ),
            (
                EmailFacts {
                    consent: false,
                    ..facts()
                },
                EmailBlock::NoConsent,
            ),
            (
                EmailFacts {
                    opted_out: true,
                    ..facts()
                },
                EmailBlock::OptedOut,
            ),
            (
                EmailFacts {
                    unsubscribed: true,
                    ..facts()
                },
                EmailBlock::Unsubscribed,
            ),
            (
                EmailFacts {
                    address_invalid: true,
                    ..facts()
                },
                EmailBlock::AddressInvalid,
            ),
            // The lead's own choice is named before a missing consent.
            (
                EmailFacts {
                    unsubscribed: true,
                    consent: false,
                    ..facts()
                },
                EmailBlock::Unsubscribed,
            ),
        ];
        for (f, want) in cases {
            assert_eq!(check_email(&f), Err(want), "{f:?}");
            assert!(!want.describe().is_empty());
        }
    }

    #[test]
    fn refusals_are_read_by_their_enhanced_code_first() {
        use Refusal::*;
        let cases = [
            (550, "5.1.1 mailbox unavailable", HardBounce),
            (
                550,
                "rcpt to: permanent error (550): 5.1.1 no such user",
                HardBounce,
            ),
            (550, "5.2.1 mailbox disabled", HardBounce),
            (552, "5.2.2 mailbox full", Soft),
            (550, "5.7.26 unauthenticated mail is prohibited", SenderSide),
            (554, "5.7.1 relay denied", SenderSide),
            (550, "no such user here", HardBounce),
            (553, "", HardBounce),
            (554, "transaction failed", SenderSide),
            (550, "5.4.1 routing loop", Soft),
        ];
        for (code, text, want) in cases {
            assert_eq!(classify_refusal(code, text), want, "{code} {text}");
        }
    }
}
