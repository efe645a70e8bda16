//! Inbound email's stored settings and the reply address of a lead email (ADR 0052).
//!
//! A tenant's mail relay (Mailgun's routes) posts the mail it receives to
//! `/webhooks/mailgun/{tenant}/mime`, signed with the relay's key, stored here sealed. With a
//! reply domain set, every email to a lead carries `Reply-To: reply+{token}@{domain}`: the token
//! names the opportunity and carries a truncated HMAC over the tenant and it, so a reply lands
//! on its own thread and a forged address lands nowhere. The token is lower-case base32 (26
//! bytes: the opportunity's 16 and 10 of the tag), 48 characters with `reply+`, inside the 64 a
//! local part may have, and unharmed by a mail system that folds addresses to lower case.

use data_encoding::BASE32_NOPAD;
use neuronx_supervision::{Store, StoreError, TenantId};
use uuid::Uuid;

use crate::control::on_db;
use crate::control::tx::{on_tx, Tx};
use crate::secrets::{Keyring, Sealed, SecretError};

/// The relays we read. One today; the column names it so another can join without a migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Mailgun,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Mailgun => "mailgun",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        (s == "mailgun").then_some(Provider::Mailgun)
    }
}

/// A tenant's inbound email, its signing key still sealed.
#[derive(Debug, Clone)]
pub struct StoredInbound {
    pub provider: Provider,
    pub reply_domain: Option<String>,
    pub sealed: Sealed,
}

/// Stores the tenant's inbound email inside `tx` (with its audit entry), replacing any.
pub async fn put_in(tx: &mut Tx, tenant: TenantId, s: &StoredInbound) -> Result<(), StoreError> {
    let sql = "INSERT INTO inbound_email_settings
            (tenant_id, provider, reply_domain, key_id, sealed, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (tenant_id) DO UPDATE SET
            provider = excluded.provider, reply_domain = excluded.reply_domain,
            key_id = excluded.key_id, sealed = excluded.sealed, updated_at = excluded.updated_at";
    on_tx!(tx, |db, id, _json| sqlx::query(sql)
        .bind(id(tenant.0))
        .bind(s.provider.as_str())
        .bind(&s.reply_domain)
        .bind(&s.sealed.key_id)
        .bind(&s.sealed.data)
        .bind(crate::control::now_ms())
        .execute(db)
        .await?
        .rows_affected());
    Ok(())
}

/// The tenant's inbound email, if it set it up.
pub async fn get(store: &Store, tenant: TenantId) -> Result<Option<StoredInbound>, StoreError> {
    let sql = "SELECT provider, reply_domain, key_id, sealed
         FROM inbound_email_settings WHERE tenant_id = $1";
    type Row = (String, Option<String>, String, String);
    let row: Option<Row> = on_db!(store, |db, id, _json| sqlx::query_as(sql)
        .bind(id(tenant.0))
        .fetch_optional(db)
        .await?);
    let Some((provider, reply_domain, key_id, data)) = row else {
        return Ok(None);
    };
    let provider = Provider::parse(&provider)
        .ok_or_else(|| StoreError::Corrupt(format!("inbound email provider {provider:?}")))?;
    Ok(Some(StoredInbound {
        provider,
        reply_domain,
        sealed: Sealed { key_id, data },
    }))
}

const TAG_BYTES: usize = 10;
const LOCAL_PREFIX: &str = "reply+";

fn message(tenant: TenantId, opportunity: Uuid) -> Vec<u8> {
    format!("reply/v1|{}|{opportunity}", tenant.0).into_bytes()
}

/// The reply address of an email to a lead of `opportunity`.
pub fn reply_address(
    keyring: &Keyring,
    tenant: TenantId,
    opportunity: Uuid,
    domain: &str,
) -> Result<String, SecretError> {
    let (_, tag) = keyring.sign(&message(tenant, opportunity))?;
    let mut raw = opportunity.as_bytes().to_vec();
    raw.extend_from_slice(&tag[..TAG_BYTES]);
    let token = BASE32_NOPAD.encode(&raw).to_ascii_lowercase();
    Ok(format!("{LOCAL_PREFIX}{token}@{domain}"))
}

/// The opportunity a reply address of this tenant names, when it is one of ours and its tag
/// holds (under any key of the ring). Anything else, `None`: the mail is routed by its sender.
pub fn opportunity_of(keyring: &Keyring, tenant: TenantId, address: &str) -> Option<Uuid> {
    let (local, _) = address.rsplit_once('@')?;
    let token = local.get(..LOCAL_PREFIX.len())?;
    if !token.eq_ignore_ascii_case(LOCAL_PREFIX) {
        return None;
    }
    let encoded = local[LOCAL_PREFIX.len()..].to_ascii_uppercase();
    if encoded.len() > 64 {
        return None;
    }
    let raw = BASE32_NOPAD.decode(encoded.as_bytes()).ok()?;
    if raw.len() != 16 + TAG_BYTES {
        return None;
    }
    let (id, tag) = raw.split_at(16);
    let opportunity = Uuid::from_slice(id).ok()?;
    keyring
        .verify_truncated_any(&message(tenant, opportunity), tag)
        .then_some(opportunity)
}

/// The `mailto:` of `List-Unsubscribe` for a reply address: an email to it with this subject
/// unsubscribes (RFC 2369).
pub fn unsubscribe_mailto(reply_address: &str) -> String {
    format!("<mailto:{reply_address}?subject={UNSUBSCRIBE_SUBJECT}>")
}

/// The subject of an unsubscribe by email.
pub const UNSUBSCRIBE_SUBJECT: &str = "unsubscribe";

#[cfg(test)]
mod tests {
    use super::*;

    fn keyring(id: &str) -> Keyring {
        Keyring::parse([Keyring::generate_entry(id).as_str()]).unwrap_or_default()
    }

    #[test]
    fn a_reply_address_names_its_opportunity_for_its_tenant_only() {
        let keys = keyring("k1");
        let (tenant, opp) = (TenantId(Uuid::from_u128(1)), Uuid::from_u128(2));
        let address = reply_address(&keys, tenant, opp, "reply.acme.test").unwrap_or_default();
        let local = address.split('@').next().unwrap_or_default();
        assert!(
            local.len() <= 64 && local.starts_with("reply+"),
            "{address}"
        );
        assert_eq!(local, local.to_ascii_lowercase());
        assert_eq!(opportunity_of(&keys, tenant, &address), Some(opp));
        // Folded to upper case by some relay: still ours.
        assert_eq!(
            opportunity_of(&keys, tenant, &address.to_ascii_uppercase()),
            Some(opp)
        );
        let other_tenant = TenantId(Uuid::from_u128(3));
        assert_eq!(opportunity_of(&keys, other_tenant, &address), None);
        assert_eq!(opportunity_of(&keyring("k1"), tenant, &address), None);
        // A rotated ring (a new key first) still reads what the old key signed.
        let (k1, k2) = (Keyring::generate_entry("k1"), Keyring::generate_entry("k2"));
        let before = Keyring::parse([k1.as_str()]).unwrap_or_default();
        let rotated = Keyring::parse([k2.as_str(), k1.as_str()]).unwrap_or_default();
        let signed = reply_address(&before, tenant, opp, "r.test").unwrap_or_default();
        assert_eq!(opportunity_of(&rotated, tenant, &signed), Some(opp));
        // Another opportunity's id under this tag is refused.
        let mut raw = BASE32_NOPAD
            .decode(local["reply+".len()..].to_ascii_uppercase().as_bytes())
            .unwrap_or_default();
        raw[0] ^= 1;
        let spliced = format!(
            "reply+{}@x.test",
            BASE32_NOPAD.encode(&raw).to_ascii_lowercase()
        );
        assert_eq!(opportunity_of(&keys, tenant, &spliced), None);
        for bad in [
            "",
            "reply+@x",
            "reply+!!@x",
            "ana@x.test",
            "reply+aaaa@x.test",
            "@",
        ] {
            assert_eq!(opportunity_of(&keys, tenant, bad), None, "{bad:?}");
        }
        assert_eq!(
            unsubscribe_mailto("reply+ab@x.test"),
            "<mailto:reply+ab@x.test?subject=unsubscribe>"
        );
    }
}
