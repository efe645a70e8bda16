//! One person, one cadence (ADR 0046): which opportunity holds a contact's cadence
//! (`contact_claims` by phone, `contact_email_claims` by lower-cased email), and what a tenant
//! does with a second lead of the same person (`tenant_settings.duplicate_contacts`).
//!
//! A create claims the contact's phone, then its email, before it submits. Each claim is an
//! insert, or a compare-and-set over a holder that is closed (won, lost, do not contact) or that
//! never came to exist, so two leads of one person arriving together, on one instance or
//! several, cannot both start a cadence: the loser finds the winner live and merges into it (or
//! is skipped), handing it whatever key it took before (a second phone of the same person).

use std::time::Duration;

use neuronx_actors::domain::opportunity::{ContactHistory, Opportunity, Stage};
use neuronx_actors::opportunity as opp;
use neuronx_supervision::{Store, StoreError, TenantId};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::control::on_db;
use crate::control::tx::{on_tx, Tx};

/// A claim whose opportunity does not exist after this long was left by a create that never
/// reached the engine (a crash between the claim and the submit); the next create replaces it.
/// Younger, the create is in flight and will appear in milliseconds.
const IN_FLIGHT: Duration = Duration::from_secs(30);
/// How often a create waiting on another create of the same contact looks again, and how many
/// times it looks in all (about two seconds) before answering `contact_busy`.
const IN_FLIGHT_POLL: Duration = Duration::from_millis(50);
const ROUNDS: usize = 40;

/// What a tenant does with a lead whose contact already has a live opportunity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DuplicateContacts {
    /// The lead joins the live opportunity: no new opportunity, a `contact_returned` entry on
    /// the live one's timeline, and the create answers the live one (200).
    #[default]
    Merge,
    /// The lead is recorded as its own opportunity (for attribution) that runs no cadence; both
    /// timelines say so.
    Skip,
}

impl DuplicateContacts {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Merge => "merge",
            Self::Skip => "skip",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "merge" => Some(Self::Merge),
            "skip" => Some(Self::Skip),
            _ => None,
        }
    }
}

/// A key a contact is matched by (ADR 0046): its phone, then its email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContactKey {
    /// In E.164 form.
    Phone(String),
    /// Trimmed and lower-cased (see [`ContactKey::email`]).
    Email(String),
}

impl ContactKey {
    /// An address as a key: trimmed and lower-cased, as the unsubscribe list compares it, so
    /// `Ana@X.test ` and `ana@x.test` are one person.
    pub fn email(address: &str) -> Self {
        Self::Email(address.trim().to_lowercase())
    }

    /// The keys of a lead, in the order they decide: the phone, then the email.
    pub fn of(phone: Option<&str>, email: Option<&str>) -> Vec<Self> {
        let phone = phone.map(|p| Self::Phone(p.to_owned()));
        phone.into_iter().chain(email.map(Self::email)).collect()
    }

    /// Which one matched, as the timeline and the logs say it.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Phone(_) => "phone",
            Self::Email(_) => "email",
        }
    }

    /// The claims table and its key column: one table per kind, the same compare-and-set.
    fn table(&self) -> (&'static str, &'static str) {
        match self {
            Self::Phone(_) => ("contact_claims", "phone"),
            Self::Email(_) => ("contact_email_claims", "address"),
        }
    }

    fn value(&self) -> &str {
        match self {
            Self::Phone(v) | Self::Email(v) => v,
        }
    }
}

/// Where a create stands with the contact's keys.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// This opportunity holds every key of the contact; `prior` carries the calls and texts of
    /// the closed opportunity it replaced on the phone, which count toward the new one's caps.
    /// `taken` is what to give back should the create be refused before it exists.
    Held { prior: ContactHistory, taken: Taken },
    /// Another opportunity of the contact is live, found by the key `by` names.
    Live { holder: Uuid, by: &'static str },
    /// Another create of this contact is in flight and has not appeared yet.
    Busy,
}

/// The claims a create took: each key with the closed holder it replaced, if any, so giving it
/// back restores that holder (and its attempts keep counting toward the number's caps).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Taken(Vec<(ContactKey, Option<Uuid>)>);

/// One key's answer.
enum KeyClaim {
    Held {
        prior: ContactHistory,
        replaced: Option<Uuid>,
    },
    Live(Uuid),
    Busy,
}

/// The tenant's choice, `merge` when it made none.
pub async fn duplicate_contacts(
    store: &Store,
    tenant: TenantId,
) -> Result<DuplicateContacts, StoreError> {
    let sql = "SELECT duplicate_contacts FROM tenant_settings WHERE tenant_id = $1";
    let found: Option<String> = on_db!(store, |db, id, _json| sqlx::query_scalar(sql)
        .bind(id(tenant.0))
        .fetch_optional(db)
        .await?);
    Ok(found
        .as_deref()
        .and_then(DuplicateContacts::parse)
        .unwrap_or_default())
}

/// Stores the tenant's choice inside `tx` (with its audit entry).
pub async fn set_duplicate_contacts(
    tx: &mut Tx,
    tenant: TenantId,
    mode: DuplicateContacts,
) -> Result<(), StoreError> {
    let sql = "INSERT INTO tenant_settings (tenant_id, duplicate_contacts, updated_at)
        VALUES ($1, $2, $3)
        ON CONFLICT (tenant_id) DO UPDATE
        SET duplicate_contacts = excluded.duplicate_contacts, updated_at = excluded.updated_at";
    on_tx!(tx, |db, id, _json| sqlx::query(sql)
        .bind(id(tenant.0))
        .bind(mode.as_str())
        .bind(crate::control::now_ms())
        .execute(db)
        .await?
        .rows_affected());
    Ok(())
}

/// Claims the contact's keys for opportunity `id`, phone first: the first key with a live
/// holder (or a create in flight) decides. The keys taken before a live holder go to it (the
/// same person's second phone), those taken before a create in flight are given back, so a
/// create that joins another opportunity or is refused leaves no claim of its own behind. Each key is its
/// own compare-and-set, so two leads sharing any key cannot both hold it; every create takes
/// its keys in the same order (phone, then email) and only waits on a key it does not hold,
/// so two creates never wait on each other.
pub async fn claim(
    store: &Store,
    tenant: TenantId,
    keys: &[ContactKey],
    id: Uuid,
) -> Result<Claim, StoreError> {
    let mut taken = Taken::default();
    let mut prior = None;
    for key in keys {
        let found = match claim_key(store, tenant, key, id).await? {
            KeyClaim::Held {
                prior: history,
                replaced,
            } => {
                // The caps count attempts to the number: the phone's closed holder is the one.
                prior.get_or_insert(history);
                taken.0.push((key.clone(), replaced));
                continue;
            }
            KeyClaim::Live(holder) => {
                // The keys taken before this one are the same person's: the live holder gets
                // them, so a later lead with only one of them (a second phone) joins it too
                // rather than starting a second cadence for one person.
                hand_over(store, tenant, id, holder, &taken).await?;
                return Ok(Claim::Live {
                    holder,
                    by: key.kind(),
                });
            }
            KeyClaim::Busy => Claim::Busy,
        };
        give_back(store, tenant, id, &taken).await?;
        return Ok(found);
    }
    Ok(Claim::Held {
        prior: prior.unwrap_or_default(),
        taken,
    })
}

/// Claims one key for `id`, or says who holds it. A repeated create of `id` finds its own
/// claim and holds it again.
async fn claim_key(
    store: &Store,
    tenant: TenantId,
    key: &ContactKey,
    id: Uuid,
) -> Result<KeyClaim, StoreError> {
    // Each round settles, or lost a race to another create that changed the row, or found a
    // create of the same contact in flight; that one commits within milliseconds, so waiting a
    // moment answers the caller (merged) rather than refusing it.
    for _ in 0..ROUNDS {
        let Some((holder, claimed_at)) = holder(store, tenant, key).await? else {
            if insert(store, tenant, key, id).await? {
                return Ok(KeyClaim::Held {
                    prior: ContactHistory::default(),
                    replaced: None,
                });
            }
            continue;
        };
        if holder == id {
            return Ok(KeyClaim::Held {
                prior: ContactHistory::default(),
                replaced: None,
            });
        }
        let previous = match store.get_actor(tenant, opp::KIND.as_str(), holder).await? {
            Some(row) => {
                let live = row
                    .status
                    .parse::<Stage>()
                    .map_or(true, |s| !s.is_terminal());
                if live {
                    return Ok(KeyClaim::Live(holder));
                }
                let history = serde_json::from_value::<Opportunity>(row.state)
                    .ok()
                    .map(|before| ContactHistory {
                        calls: before.call_attempts,
                        texts: before.sms_sent,
                        duplicate_of: None,
                    });
                Some(history.unwrap_or_default())
            }
            None => {
                let age = crate::control::now_ms().saturating_sub(claimed_at);
                if u128::try_from(age).unwrap_or(0) < IN_FLIGHT.as_millis() {
                    tokio::time::sleep(IN_FLIGHT_POLL).await;
                    continue;
                }
                None
            }
        };
        if replace(store, tenant, key, holder, id).await? {
            // A holder that never came to exist is not restored: its claim was a crash's.
            let replaced = previous.is_some().then_some(holder);
            return Ok(KeyClaim::Held {
                prior: previous.unwrap_or_default(),
                replaced,
            });
        }
    }
    Ok(KeyClaim::Busy)
}

/// Gives back the keys `id` took when it still holds them: its create joined another
/// opportunity or was refused before it existed. A key that had a closed holder goes back to
/// it; one that had none is deleted.
pub async fn give_back(
    store: &Store,
    tenant: TenantId,
    id: Uuid,
    taken: &Taken,
) -> Result<(), StoreError> {
    for (key, replaced) in &taken.0 {
        let n = match replaced {
            // The compare-and-set a claim uses, the other way: back to the closed holder.
            Some(before) => u64::from(replace(store, tenant, key, id, *before).await?),
            None => {
                let (table, column) = key.table();
                let sql = format!(
                    "DELETE FROM {table}
                    WHERE tenant_id = $1 AND {column} = $2 AND opportunity_id = $3"
                );
                on_db!(store, |db, uid, _json| sqlx::query(&sql)
                    .bind(uid(tenant.0))
                    .bind(key.value())
                    .bind(uid(id))
                    .execute(db)
                    .await?
                    .rows_affected())
            }
        };
        tracing::debug!(key = key.kind(), rows = n, "contact claim given back");
    }
    Ok(())
}

/// Moves the keys `id` took to `holder`, the contact's live opportunity found by a later key,
/// each by the same compare-and-set a claim uses (a key `id` no longer holds stays as it is).
async fn hand_over(
    store: &Store,
    tenant: TenantId,
    id: Uuid,
    holder: Uuid,
    taken: &Taken,
) -> Result<(), StoreError> {
    for (key, _) in &taken.0 {
        let moved = replace(store, tenant, key, id, holder).await?;
        tracing::debug!(
            key = key.kind(),
            moved,
            "contact claim handed to the live holder"
        );
    }
    Ok(())
}

/// The opportunity holding `phone`'s cadence, if any claimed it. Inbound routing asks this:
/// a number's texts and calls go to its cadence, whatever the email matched.
pub async fn holder_of(
    store: &Store,
    tenant: TenantId,
    phone: &str,
) -> Result<Option<Uuid>, StoreError> {
    let key = ContactKey::Phone(phone.to_owned());
    Ok(holder(store, tenant, &key).await?.map(|(id, _)| id))
}

/// The opportunity holding the cadence of the person at `address` (ADR 0046), if any claimed
/// it. Inbound email from an address no reply token names goes there.
pub async fn holder_of_email(
    store: &Store,
    tenant: TenantId,
    address: &str,
) -> Result<Option<Uuid>, StoreError> {
    let key = ContactKey::email(address);
    Ok(holder(store, tenant, &key).await?.map(|(id, _)| id))
}

async fn holder(
    store: &Store,
    tenant: TenantId,
    key: &ContactKey,
) -> Result<Option<(Uuid, i64)>, StoreError> {
    let (table, column) = key.table();
    let sql = format!(
        "SELECT CAST(opportunity_id AS TEXT), claimed_at FROM {table}
        WHERE tenant_id = $1 AND {column} = $2"
    );
    let row: Option<(String, i64)> = on_db!(store, |db, id, _json| sqlx::query_as(&sql)
        .bind(id(tenant.0))
        .bind(key.value())
        .fetch_optional(db)
        .await?);
    row.map(|(holder, at)| {
        Uuid::parse_str(&holder)
            .map(|u| (u, at))
            .map_err(|e| StoreError::Corrupt(format!("contact claim holder {holder:?}: {e}")))
    })
    .transpose()
}

async fn insert(
    store: &Store,
    tenant: TenantId,
    key: &ContactKey,
    id: Uuid,
) -> Result<bool, StoreError> {
    let (table, column) = key.table();
    let sql = format!(
        "INSERT INTO {table} (tenant_id, {column}, opportunity_id, claimed_at)
        VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING"
    );
    let n = on_db!(store, |db, uid, _json| sqlx::query(&sql)
        .bind(uid(tenant.0))
        .bind(key.value())
        .bind(uid(id))
        .bind(crate::control::now_ms())
        .execute(db)
        .await?
        .rows_affected());
    Ok(n == 1)
}

/// Compare-and-set: takes the key from `from` only if it still holds it.
async fn replace(
    store: &Store,
    tenant: TenantId,
    key: &ContactKey,
    from: Uuid,
    to: Uuid,
) -> Result<bool, StoreError> {
    let (table, column) = key.table();
    let sql = format!(
        "UPDATE {table} SET opportunity_id = $1, claimed_at = $2
        WHERE tenant_id = $3 AND {column} = $4 AND opportunity_id = $5"
    );
    let n = on_db!(store, |db, uid, _json| sqlx::query(&sql)
        .bind(uid(to))
        .bind(crate::control::now_ms())
        .bind(uid(tenant.0))
        .bind(key.value())
        .bind(uid(from))
        .execute(db)
        .await?
        .rows_affected());
    Ok(n == 1)
}
