//! The one-click unsubscribe of an email to a lead (RFC 8058, ADR 0049): public, with no key
//! and no cookie. The signed token in the link is the only credential; it names the tenant and
//! the opportunity and is checked against the address the opportunity mails (constant time).
//! Looking (GET) changes nothing, since mail scanners fetch links; the POST opts the lead out
//! of email only, on its timeline, audited. Idempotent: a second POST answers the same.

use neuronx_actors::domain::opportunity::{OppInput, Opportunity, UnsubscribeVia};
use neuronx_actors::opportunity as opp;
use neuronx_supervision::{EngineHandle, SubmitOutcome};
use serde::Serialize;
use serde_json::json;

use super::Error;
use crate::control::audit::{self, AuditAction, Entry, Outcome};
use crate::control::keys::{Identity, UNSUBSCRIBE_LINK_KEY};
use crate::control::roles::Role;
use crate::lead_email::{self, Suppression, Token, TokenError};
use crate::secrets::Keyring;

/// Where the lead stands with email.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EmailSubscription {
    Subscribed,
    Unsubscribed,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UnsubscribeView {
    /// Always `email`: calls and texts are not affected by this link.
    pub channel: &'static str,
    pub status: EmailSubscription,
    /// The address, partly hidden (`a***@example.com`).
    pub address: String,
}

/// The address with all but its first character before the `@` hidden.
fn masked(address: &str) -> String {
    match address.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_owned(),
    }
}

fn refused(e: TokenError) -> Error {
    Error::invalid("token", e.to_string())
}

/// The token checked: its opportunity's state and the address it was made for. A token for an
/// opportunity that does not exist is refused like a forged one.
async fn checked(
    engine: &EngineHandle,
    keyring: &Keyring,
    token: &str,
) -> Result<(Token, Opportunity, String), Error> {
    let token = Token::parse(token).map_err(refused)?;
    let row = engine
        .store()
        .get_actor(token.tenant, opp::KIND.as_str(), token.opportunity)
        .await?
        .ok_or(refused(TokenError::Forged))?;
    let state: Opportunity =
        serde_json::from_value(row.state).map_err(|e| Error::Internal(e.into()))?;
    let address = state
        .contact
        .email
        .clone()
        .ok_or(refused(TokenError::Forged))?;
    token.verify(keyring, &address).map_err(refused)?;
    Ok((token, state, address))
}

fn view(unsubscribed: bool, address: &str) -> UnsubscribeView {
    UnsubscribeView {
        channel: "email",
        status: if unsubscribed {
            EmailSubscription::Unsubscribed
        } else {
            EmailSubscription::Subscribed
        },
        address: masked(address),
    }
}

/// Where the lead stands; changes nothing.
pub async fn look(
    engine: &EngineHandle,
    keyring: &Keyring,
    token: &str,
) -> Result<UnsubscribeView, Error> {
    let (_, state, address) = checked(engine, keyring, token).await?;
    Ok(view(state.email.unsubscribed, &address))
}

/// Opts the lead out of email: durable (the opportunity's inbox) before the answer, and
/// audited as `email_unsubscribe` by `unsubscribe_link`.
pub async fn unsubscribe(
    engine: &EngineHandle,
    keyring: &Keyring,
    token: &str,
) -> Result<UnsubscribeView, Error> {
    let (token, state, address) = checked(engine, keyring, token).await?;
    let store = engine.store();
    // For good, and for every lead of the tenant at this address (CAN-SPAM), not only this
    // opportunity: durable before the answer, like the input below.
    lead_email::suppress(store, token.tenant, &address, Suppression::Unsubscribed).await?;
    if state.email.unsubscribed {
        return Ok(view(true, &address));
    }
    let who = Identity {
        tenant: token.tenant,
        key_prefix: UNSUBSCRIBE_LINK_KEY.to_owned(),
        role: Role::Integration,
        team: None,
        principal: None,
    };
    let target = token.opportunity.to_string();
    let entry = Entry {
        action: AuditAction::EmailUnsubscribe,
        target_kind: "opportunity",
        target_id: target,
        reason: None,
        outcome: Outcome::Pending,
        before: None,
        after: None,
    };
    let pending = audit::begin(store, &who, entry).await?;
    let input = OppInput::EmailUnsubscribed {
        address: address.clone(),
        via: UnsubscribeVia::OneClick,
    };
    let input = serde_json::to_value(&input).map_err(|e| Error::Internal(e.into()))?;
    // One per opportunity and address: a repeated click is a duplicate of the first.
    let dedupe = format!(
        "unsubscribe:{}:{}",
        token.opportunity,
        address.to_lowercase()
    );
    let key = opp::key(token.tenant, token.opportunity);
    let outcome = engine
        .enqueue(key, input, Some(dedupe))
        .await
        .map_err(|e| Error::Unavailable(e.to_string()))?;
    let after = json!({ "channel": "email", "duplicate": outcome == SubmitOutcome::Duplicate });
    audit::settle(store, pending, Outcome::Accepted, Some(after)).await?;
    Ok(view(true, &address))
}

#[cfg(test)]
mod tests {
    use super::masked;

    #[test]
    fn an_address_is_shown_partly() {
        assert_eq!(masked("ana@example.com"), "a***@example.com");
        assert_eq!(masked("nobody"), "***");
    }
}
