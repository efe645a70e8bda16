//! Tenant-managed data outside the actors: channel credentials (sealed) and the do-not-call
//! list. Plain queries on the product's tables, every one scoped to its tenant, each one SQL
//! text for both backends (`on_db!`) except the PostgreSQL precheck batch. What it needs of the
//! actors (an opportunity's status, the one a number belongs to) it asks the runtime.

use neuronx_actors::domain::opportunity::Stage;
use neuronx_actors::opportunity as opp;
use neuronx_supervision::{Store, StoreError, TenantId};

use crate::control::on_db;
use crate::control::tx::{on_tx, Tx};
use crate::secrets::{Keyring, Sealed, SecretError};

/// A tenant's Twilio-compatible account, with the auth token still sealed.
#[derive(Debug, Clone)]
pub struct StoredCredentials {
    pub account_sid: String,
    pub from_number: String,
    pub base_url: Option<String>,
    pub sealed: Sealed,
    /// The tenant asked for each number's line type before its first marketing text (ADR 0035).
    pub line_type_lookup: bool,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Stores the tenant's account for `channel` on its own (the benchmarks' and tests' setup).
pub async fn put_credentials(
    store: &Store,
    tenant: TenantId,
    channel: &str,
    c: &StoredCredentials,
) -> Result<(), StoreError> {
    let mut tx = Tx::begin(store).await?;
    put_credentials_in(&mut tx, tenant, channel, c).await?;
    tx.commit().await
}

/// Stores the tenant's account for `channel` inside `tx` (with its audit entry).
pub async fn put_credentials_in(
    tx: &mut Tx,
    tenant: TenantId,
    channel: &str,
    c: &StoredCredentials,
) -> Result<(), StoreError> {
    let sql = "INSERT INTO channel_credentials
            (tenant_id, channel, account_sid, from_number, base_url, key_id, sealed, updated_at,
             line_type_lookup)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (tenant_id, channel) DO UPDATE SET
            account_sid = excluded.account_sid, from_number = excluded.from_number,
            base_url = excluded.base_url, key_id = excluded.key_id, sealed = excluded.sealed,
            updated_at = excluded.updated_at, line_type_lookup = excluded.line_type_lookup";
    on_tx!(tx, |db, id, _json| sqlx::query(sql)
        .bind(id(tenant.0))
        .bind(channel)
        .bind(&c.account_sid)
        .bind(&c.from_number)
        .bind(&c.base_url)
        .bind(&c.sealed.key_id)
        .bind(&c.sealed.data)
        .bind(now_ms())
        .bind(c.line_type_lookup)
        .execute(db)
        .await?
        .rows_affected());
    Ok(())
}

type CredentialRow = (String, String, Option<String>, String, String, bool);

pub async fn get_credentials(
    store: &Store,
    tenant: TenantId,
    channel: &str,
) -> Result<Option<StoredCredentials>, StoreError> {
    let sql = "SELECT account_sid, from_number, base_url, key_id, sealed, line_type_lookup
         FROM channel_credentials WHERE tenant_id = $1 AND channel = $2";
    let row: Option<CredentialRow> = on_db!(store, |db, id, _json| sqlx::query_as(sql)
        .bind(id(tenant.0))
        .bind(channel)
        .fetch_optional(db)
        .await?);
    Ok(row.map(
        |(account_sid, from_number, base_url, key_id, data, line_type_lookup)| StoredCredentials {
            account_sid,
            from_number,
            base_url,
            sealed: Sealed { key_id, data },
            line_type_lookup,
        },
    ))
}

/// A tenant's SMTP server, with the password (if any) still sealed.
#[derive(Debug, Clone)]
pub struct StoredSmtp {
    pub host: String,
    pub port: u16,
    pub tls: neuronx_adapters::smtp::SmtpTls,
    pub username: Option<String>,
    pub sealed: Option<Sealed>,
    pub from_email: String,
    pub from_name: Option<String>,
}

impl StoredSmtp {
    /// The server to connect to, its password opened with `keyring` (one place where a sealed
    /// SMTP password is opened: rep notices, sign-in links and lead emails all connect so).
    pub fn server(
        &self,
        keyring: &Keyring,
        timeout: std::time::Duration,
    ) -> Result<neuronx_adapters::smtp::SmtpServer, SecretError> {
        let password = self.sealed.as_ref().map(|s| keyring.open(s)).transpose()?;
        Ok(neuronx_adapters::smtp::SmtpServer {
            host: self.host.clone(),
            port: self.port,
            tls: self.tls,
            credentials: self.username.clone().zip(password),
            timeout,
        })
    }
}

/// Stores the tenant's SMTP server inside `tx` (with its audit entry), replacing any.
pub async fn put_smtp_in(tx: &mut Tx, tenant: TenantId, c: &StoredSmtp) -> Result<(), StoreError> {
    let sql = "INSERT INTO smtp_settings
            (tenant_id, host, port, tls, username, key_id, sealed, from_email, from_name,
             updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (tenant_id) DO UPDATE SET
            host = excluded.host, port = excluded.port, tls = excluded.tls,
            username = excluded.username, key_id = excluded.key_id, sealed = excluded.sealed,
            from_email = excluded.from_email, from_name = excluded.from_name,
            updated_at = excluded.updated_at";
    on_tx!(tx, |db, id, _json| sqlx::query(sql)
        .bind(id(tenant.0))
        .bind(&c.host)
        .bind(i32::from(c.port))
        .bind(c.tls.as_str())
        .bind(&c.username)
        .bind(c.sealed.as_ref().map(|s| s.key_id.as_str()))
        .bind(c.sealed.as_ref().map(|s| s.data.as_str()))
        .bind(&c.from_email)
        .bind(&c.from_name)
        .bind(now_ms())
        .execute(db)
        .await?
        .rows_affected());
    Ok(())
}

type SmtpRow = (
    String,
    i32,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
);

/// The tenant's SMTP server, if it configured one.
pub async fn get_smtp(store: &Store, tenant: TenantId) -> Result<Option<StoredSmtp>, StoreError> {
    let sql = "SELECT host, port, tls, username, key_id, sealed, from_email, from_name
         FROM smtp_settings WHERE tenant_id = $1";
    let row: Option<SmtpRow> = on_db!(store, |db, id, _json| sqlx::query_as(sql)
        .bind(id(tenant.0))
        .fetch_optional(db)
        .await?);
    let Some((host, port, tls, username, key_id, data, from_email, from_name)) = row else {
        return Ok(None);
    };
    let corrupt = |what: String| StoreError::Corrupt(what);
    Ok(Some(StoredSmtp {
        host,
        port: u16::try_from(port).map_err(|_| corrupt(format!("smtp port {port}")))?,
        tls: neuronx_adapters::smtp::SmtpTls::parse(&tls)
            .ok_or_else(|| corrupt(format!("smtp tls {tls:?}")))?,
        username,
        sealed: key_id
            .zip(data)
            .map(|(key_id, data)| Sealed { key_id, data }),
        from_email,
        from_name,
    }))
}

/// Adds a number to the tenant's do-not-call list inside `tx` (with its audit entry); false
/// when it was already there.
pub async fn add_dnc(tx: &mut Tx, tenant: TenantId, phone: &str) -> Result<bool, StoreError> {
    let sql =
        "INSERT INTO dnc (tenant_id, phone, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";
    let n = on_tx!(tx, |db, id, _json| sqlx::query(sql)
        .bind(id(tenant.0))
        .bind(phone)
        .bind(now_ms())
        .execute(db)
        .await?
        .rows_affected());
    Ok(n == 1)
}

/// Removes a number inside `tx` (with its audit entry); false when it was not listed.
pub async fn remove_dnc(tx: &mut Tx, tenant: TenantId, phone: &str) -> Result<bool, StoreError> {
    let sql = "DELETE FROM dnc WHERE tenant_id = $1 AND phone = $2";
    let n = on_tx!(tx, |db, id, _json| sqlx::query(sql)
        .bind(id(tenant.0))
        .bind(phone)
        .execute(db)
        .await?
        .rows_affected());
    Ok(n == 1)
}

pub async fn on_dnc(store: &Store, tenant: TenantId, phone: &str) -> Result<bool, StoreError> {
    let sql = "SELECT count(*) FROM dnc WHERE tenant_id = $1 AND phone = $2";
    let n: i64 = on_db!(store, |db, id, _json| sqlx::query_scalar(sql)
        .bind(id(tenant.0))
        .bind(phone)
        .fetch_one(db)
        .await?);
    Ok(n > 0)
}

/// The opportunity that holds this number's cadence (its contact claim, ADR 0046) when it
/// exists, else the most recent one whose contact has this number (the runtime's lookup, written
/// by the transition that created it). The claim matters in skip mode: a skipped duplicate is
/// newer than the live opportunity, and a STOP must reach the live one.
pub async fn opportunity_of_phone(
    store: &Store,
    tenant: TenantId,
    phone: &str,
) -> Result<Option<uuid::Uuid>, StoreError> {
    let holder = crate::contacts::holder_of(store, tenant, phone).await?;
    let found = store
        .find(tenant, opp::KIND, opp::PHONE_LOOKUP, phone, 1)
        .await?;
    let newest = found.first().copied();
    let Some(holder) = holder.filter(|h| Some(*h) != newest) else {
        return Ok(newest);
    };
    // Only an opportunity that exists: a claim may precede its create by a moment.
    let exists = store
        .actor_exists(tenant, opp::KIND.as_str(), holder)
        .await?;
    Ok(if exists { Some(holder) } else { newest })
}

/// Reseals every stored secret under the keyring's current key; returns how many changed.
/// Run after putting a new key first in the keyring, before removing the old one.
pub async fn reseal_all(store: &Store, keyring: &crate::secrets::Keyring) -> anyhow::Result<u64> {
    let current = keyring
        .current_id()
        .ok_or(crate::secrets::SecretError::NoKey)?
        .to_owned();
    type Row = (String, String, String, String);
    let select = "SELECT CAST(tenant_id AS TEXT), channel, key_id, sealed FROM channel_credentials";
    let rows: Vec<Row> = on_db!(store, |db, id, _json| sqlx::query_as(select)
        .fetch_all(db)
        .await?);
    let mut changed = 0;
    for (tenant, channel, key_id, data) in rows {
        if key_id == current {
            continue;
        }
        let old = Sealed { key_id, data };
        let secret = keyring.open(&old)?;
        let sealed = keyring.seal(&secret)?;
        // Only if the row still holds what was read: a `PUT /v1/channels/twilio` landing
        // between the read and this write stored a new token (sealed under the current key
        // already), which must not be overwritten by the old one resealed.
        let update = "UPDATE channel_credentials SET key_id = $1, sealed = $2
             WHERE CAST(tenant_id AS TEXT) = $3 AND channel = $4 AND key_id = $5 AND sealed = $6";
        changed += on_db!(store, |db, id, _json| sqlx::query(update)
            .bind(&sealed.key_id)
            .bind(&sealed.data)
            .bind(&tenant)
            .bind(&channel)
            .bind(&old.key_id)
            .bind(&old.data)
            .execute(db)
            .await?
            .rows_affected());
    }
    changed += reseal_table(store, keyring, &current, SealedTable::Smtp).await?;
    changed += reseal_table(store, keyring, &current, SealedTable::InboundEmail).await?;
    Ok(changed)
}

/// `reseal_all` for the secrets of one of the tables that keep one sealed per tenant (`key_id`
/// and `sealed` columns): the SMTP passwords and the inbound email signing keys.
async fn reseal_table(
    store: &Store,
    keyring: &crate::secrets::Keyring,
    current: &str,
    table: SealedTable,
) -> anyhow::Result<u64> {
    type Row = (String, String, String);
    let table = table.name();
    let select = format!(
        "SELECT CAST(tenant_id AS TEXT), key_id, sealed FROM {table}
         WHERE key_id IS NOT NULL AND sealed IS NOT NULL"
    );
    let rows: Vec<Row> = on_db!(store, |db, id, _json| sqlx::query_as(&select)
        .fetch_all(db)
        .await?);
    let mut changed = 0;
    for (tenant, key_id, data) in rows {
        if key_id == current {
            continue;
        }
        let old = Sealed { key_id, data };
        let sealed = keyring.seal(&keyring.open(&old)?)?;
        // Only if the row still holds what was read (as for the Twilio tokens).
        let update = format!(
            "UPDATE {table} SET key_id = $1, sealed = $2
             WHERE CAST(tenant_id AS TEXT) = $3 AND key_id = $4 AND sealed = $5"
        );
        changed += on_db!(store, |db, id, _json| sqlx::query(&update)
            .bind(&sealed.key_id)
            .bind(&sealed.data)
            .bind(&tenant)
            .bind(&old.key_id)
            .bind(&old.data)
            .execute(db)
            .await?
            .rows_affected());
    }
    Ok(changed)
}

/// The tables `reseal_table` knows: a closed list, so no name is ever spliced from input.
#[derive(Debug, Clone, Copy)]
enum SealedTable {
    Smtp,
    InboundEmail,
}

impl SealedTable {
    fn name(self) -> &'static str {
        match self {
            SealedTable::Smtp => "smtp_settings",
            SealedTable::InboundEmail => "inbound_email_settings",
        }
    }
}

/// What the dispatcher checks before a dial or a text.
#[derive(Debug, Clone)]
pub struct Precheck {
    pub tenant: TenantId,
    pub phone: String,
    /// The opportunity whose state may forbid a dial (paused, closed); `None` for texts.
    pub opportunity: Option<uuid::Uuid>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrecheckResult {
    pub on_dnc: bool,
    /// The opportunity's stage and paused flag, when asked and found. A stored status that is
    /// no stage (not written by this version) reads as none: it blocks nothing by itself.
    pub opportunity: Option<(Option<Stage>, bool)>,
}

/// Answers many prechecks in two round trips (PostgreSQL: the do-not-call list, then the
/// runtime's statuses) or one pass (SQLite), in order.
pub async fn precheck_batch(
    store: &Store,
    items: &[Precheck],
) -> Result<Vec<PrecheckResult>, StoreError> {
    let listed = dnc_batch(store, items).await?;
    let asked: Vec<(usize, (TenantId, uuid::Uuid))> = items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| item.opportunity.map(|o| (i, (item.tenant, o))))
        .collect();
    let ids: Vec<(TenantId, uuid::Uuid)> = asked.iter().map(|(_, k)| *k).collect();
    let statuses = if ids.is_empty() {
        vec![]
    } else {
        store.actor_statuses(opp::KIND, &ids).await?
    };
    let mut opportunity: Vec<Option<(Option<Stage>, bool)>> = vec![None; items.len()];
    for ((i, _), status) in asked.into_iter().zip(statuses) {
        opportunity[i] = status.map(|(s, p)| (s.parse().ok(), p));
    }
    Ok(listed
        .into_iter()
        .zip(opportunity)
        .map(|(on_dnc, opportunity)| PrecheckResult {
            on_dnc,
            opportunity,
        })
        .collect())
}

/// Whether each item's number is on its tenant's do-not-call list, in order.
async fn dnc_batch(store: &Store, items: &[Precheck]) -> Result<Vec<bool>, StoreError> {
    match store {
        Store::Postgres(pg) => {
            let rows: Vec<(i64, bool)> = sqlx::query_as(
                "SELECT u.ord,
                        EXISTS (SELECT 1 FROM dnc d WHERE d.tenant_id = u.t AND d.phone = u.p)
                 FROM UNNEST($1::uuid[], $2::text[]) WITH ORDINALITY u(t, p, ord)
                 ORDER BY u.ord",
            )
            .bind(items.iter().map(|i| i.tenant.0).collect::<Vec<_>>())
            .bind(items.iter().map(|i| i.phone.as_str()).collect::<Vec<_>>())
            .fetch_all(pg.pool())
            .await?;
            Ok(rows.into_iter().map(|(_, listed)| listed).collect())
        }
        Store::Sqlite(_) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                out.push(on_dnc(store, item.tenant, &item.phone).await?);
            }
            Ok(out)
        }
    }
}
