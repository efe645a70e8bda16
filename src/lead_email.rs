//! What an email to a lead carries besides the playbook's words (ADR 0049): the tenant's postal
//! address in the footer (CAN-SPAM), and a signed one-click unsubscribe link (RFC 8058) in the
//! footer and in the `List-Unsubscribe` headers.
//!
//! The link's token names the tenant and the opportunity and carries an HMAC-SHA256 tag over
//! them and the address it was sent to, under a key derived from the keyring's current key.
//! The address is not in the token (a forwarded email does not show it); checking a token reads
//! the opportunity's address and recomputes the tag, in constant time. Rotating the keyring
//! keeps old links working while the old key stays in it.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use neuronx_supervision::{Store, StoreError, TenantId};
use uuid::Uuid;

use crate::contacts::DuplicateContacts;
use crate::control::on_db;
use crate::control::tx::{on_tx, Tx};
use crate::secrets::{Keyring, SecretError};

/// The longest postal address a tenant may set.
pub const MAX_POSTAL_CHARS: usize = 500;

/// The tenant's postal address, if it set one.
pub async fn postal_address(store: &Store, tenant: TenantId) -> Result<Option<String>, StoreError> {
    let sql = "SELECT postal_address FROM tenant_settings WHERE tenant_id = $1";
    let found: Option<Option<String>> = on_db!(store, |db, id, _json| sqlx::query_scalar(sql)
        .bind(id(tenant.0))
        .fetch_optional(db)
        .await?);
    Ok(found.flatten().filter(|a| !a.trim().is_empty()))
}

/// Stores the tenant's postal address (`None` clears it) inside `tx` (with its audit entry).
pub async fn set_postal_address(
    tx: &mut Tx,
    tenant: TenantId,
    address: Option<&str>,
) -> Result<(), StoreError> {
    let sql =
        "INSERT INTO tenant_settings (tenant_id, duplicate_contacts, postal_address, updated_at)
        VALUES ($1, $2, $3, $4)
        ON CONFLICT (tenant_id) DO UPDATE
        SET postal_address = excluded.postal_address, updated_at = excluded.updated_at";
    on_tx!(tx, |db, id, _json| sqlx::query(sql)
        .bind(id(tenant.0))
        .bind(DuplicateContacts::default().as_str())
        .bind(address)
        .bind(crate::control::now_ms())
        .execute(db)
        .await?
        .rows_affected());
    Ok(())
}

/// Why the tenant may not email an address again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suppression {
    /// The one-click link: honoured for good, by every opportunity (CAN-SPAM).
    Unsubscribed,
    /// A hard bounce: the address does not exist.
    Bounced,
}

impl Suppression {
    fn as_str(self) -> &'static str {
        match self {
            Suppression::Unsubscribed => "unsubscribed",
            Suppression::Bounced => "bounced",
        }
    }
}

/// Records that no opportunity of the tenant may email `address` again (compared lower-cased);
/// the first reason stays. Idempotent.
pub async fn suppress(
    store: &Store,
    tenant: TenantId,
    address: &str,
    why: Suppression,
) -> Result<(), StoreError> {
    let mut tx = Tx::begin(store).await?;
    suppress_in(&mut tx, tenant, address, why).await?;
    tx.commit().await
}

/// [`suppress`] inside `tx`: with the input that tells the opportunity, so both or neither.
pub async fn suppress_in(
    tx: &mut Tx,
    tenant: TenantId,
    address: &str,
    why: Suppression,
) -> Result<(), StoreError> {
    let sql = "INSERT INTO email_suppressions (tenant_id, address, reason, created_at)
        VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, address) DO NOTHING";
    on_tx!(tx, |db, id, _json| sqlx::query(sql)
        .bind(id(tenant.0))
        .bind(address.to_lowercase())
        .bind(why.as_str())
        .bind(crate::control::now_ms())
        .execute(db)
        .await?
        .rows_affected());
    Ok(())
}

/// Whether the tenant may not email `address` (an unsubscribe or a bounce on any opportunity).
pub async fn is_suppressed(
    store: &Store,
    tenant: TenantId,
    address: &str,
) -> Result<bool, StoreError> {
    let sql = "SELECT reason FROM email_suppressions WHERE tenant_id = $1 AND address = $2";
    let found: Option<String> = on_db!(store, |db, id, _json| sqlx::query_scalar(sql)
        .bind(id(tenant.0))
        .bind(address.to_lowercase())
        .fetch_optional(db)
        .await?);
    Ok(found.is_some())
}

/// Why a token is not one of ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the unsubscribe link is malformed")]
    Malformed,
    #[error("the unsubscribe link is not valid")]
    Forged,
}

/// What a well-formed token names (its tag not yet checked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub tenant: TenantId,
    pub opportunity: Uuid,
    key_id: String,
    tag: Vec<u8>,
}

fn message(tenant: TenantId, opportunity: Uuid, address: &str) -> Vec<u8> {
    // Addresses compare case-insensitively in practice; the tag does too.
    format!(
        "unsubscribe/v1|{}|{opportunity}|{}",
        tenant.0,
        address.trim().to_lowercase()
    )
    .into_bytes()
}

/// The token of the link in an email to `address`: `{key id}.{base64url(tenant ‖ opportunity ‖ tag)}`.
pub fn token(
    keyring: &Keyring,
    tenant: TenantId,
    opportunity: Uuid,
    address: &str,
) -> Result<String, SecretError> {
    let (key_id, tag) = keyring.sign(&message(tenant, opportunity, address))?;
    let mut raw = Vec::with_capacity(64);
    raw.extend_from_slice(tenant.0.as_bytes());
    raw.extend_from_slice(opportunity.as_bytes());
    raw.extend_from_slice(&tag);
    Ok(format!("{key_id}.{}", B64.encode(raw)))
}

impl Token {
    /// Reads a token's parts; the tag is checked by [`Token::verify`].
    pub fn parse(text: &str) -> Result<Token, TokenError> {
        if text.len() > 200 {
            return Err(TokenError::Malformed);
        }
        let (key_id, data) = text.rsplit_once('.').ok_or(TokenError::Malformed)?;
        let raw = B64.decode(data).map_err(|_| TokenError::Malformed)?;
        if key_id.is_empty() || raw.len() != 64 {
            return Err(TokenError::Malformed);
        }
        let (tenant, rest) = raw.split_at(16);
        let (opportunity, tag) = rest.split_at(16);
        let uuid = |b: &[u8]| Uuid::from_slice(b).map_err(|_| TokenError::Malformed);
        Ok(Token {
            tenant: TenantId(uuid(tenant)?),
            opportunity: uuid(opportunity)?,
            key_id: key_id.to_owned(),
            tag: tag.to_vec(),
        })
    }

    /// Whether the token was made by us for `address` (constant-time compare).
    pub fn verify(&self, keyring: &Keyring, address: &str) -> Result<(), TokenError> {
        let message = message(self.tenant, self.opportunity, address);
        if keyring.verify(&self.key_id, &message, &self.tag) {
            Ok(())
        } else {
            Err(TokenError::Forged)
        }
    }
}

/// The public link for `token`.
pub fn unsubscribe_url(public_url: &str, token: &str) -> String {
    format!("{}/u/{token}", public_url.trim_end_matches('/'))
}

/// The body with its footer: the tenant's postal address and the visible unsubscribe link.
pub fn with_footer(body: &str, postal_address: &str, url: &str) -> String {
    format!(
        "{}\n\n-- \n{}\n\nTo stop receiving these emails: {url}\n",
        body.trim_end(),
        postal_address.trim()
    )
}

/// The RFC 8058 headers: the HTTPS link, the `mailto:` of the reply address when the tenant
/// receives email (`inbound_email::unsubscribe_mailto`), and the one-click marker.
pub fn unsubscribe_headers(url: &str, mailto: Option<&str>) -> Vec<(String, String)> {
    let list = match mailto {
        Some(mailto) => format!("<{url}>, {mailto}"),
        None => format!("<{url}>"),
    };
    vec![
        ("List-Unsubscribe".to_owned(), list),
        (
            "List-Unsubscribe-Post".to_owned(),
            "List-Unsubscribe=One-Click".to_owned(),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyring(id: &str) -> Keyring {
        let entry = Keyring::generate_entry(id);
        Keyring::parse([entry.as_str()]).unwrap_or_default()
    }

    #[test]
    fn a_token_verifies_for_its_address_only_and_under_its_key() {
        let keys = keyring("k1");
        let (tenant, opp) = (TenantId(Uuid::from_u128(1)), Uuid::from_u128(2));
        let t = token(&keys, tenant, opp, "Ana@X.test").unwrap_or_default();
        let parsed = Token::parse(&t).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((parsed.tenant, parsed.opportunity), (tenant, opp));
        assert_eq!(parsed.verify(&keys, "ana@x.test"), Ok(()));
        assert_eq!(parsed.verify(&keys, "bo@x.test"), Err(TokenError::Forged));
        assert_eq!(
            parsed.verify(&keyring("k1"), "ana@x.test"),
            Err(TokenError::Forged),
            "another key of the same id"
        );
        // Another opportunity's id spliced in with this tag is refused.
        let other = token(&keys, tenant, Uuid::from_u128(3), "ana@x.test").unwrap_or_default();
        let mut spliced = Token::parse(&other).unwrap_or_else(|e| panic!("{e}"));
        spliced.tag = parsed.tag.clone();
        assert_eq!(spliced.verify(&keys, "ana@x.test"), Err(TokenError::Forged));
        for bad in ["", "k1", "k1.", "k1.!!!", ".AAAA", &"k".repeat(300)] {
            assert_eq!(Token::parse(bad), Err(TokenError::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn the_footer_and_headers_carry_the_link() {
        let url = unsubscribe_url("https://nx.example.com/", "k1.abc");
        assert_eq!(url, "https://nx.example.com/u/k1.abc");
        let body = with_footer("Hi Ana\n\n", "Acme, 1 Main St, Springfield", &url);
        assert_eq!(
            body,
            "Hi Ana\n\n-- \nAcme, 1 Main St, Springfield\n\nTo stop receiving these emails: \
             https://nx.example.com/u/k1.abc\n"
        );
        let headers = unsubscribe_headers(&url, None);
        assert_eq!(headers[0].1, "<https://nx.example.com/u/k1.abc>");
        assert_eq!(headers[1].1, "List-Unsubscribe=One-Click");
        let mailto = "<mailto:reply+ab@r.test?subject=unsubscribe>";
        let headers = unsubscribe_headers(&url, Some(mailto));
        assert_eq!(
            headers[0].1,
            "<https://nx.example.com/u/k1.abc>, <mailto:reply+ab@r.test?subject=unsubscribe>"
        );
    }
}
