//! One person, one cadence (ADR 0046): which opportunity holds a contact's cadence
//! (`contact_claims`), and what a tenant does with a second lead of the same person
//! (`tenant_settings.duplicate_contacts`).
//!
//! A create claims the contact's number before it submits. The claim is an insert, or a
//! compare-and-set over a holder that is closed (won, lost, do not contact) or that never came
//! to exist, so two leads of one person arriving together, on one instance or several, cannot
//! both start a cadence: the loser finds the winner live and merges into it (or is skipped).

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

/// Where a create stands with the contact's number.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// This opportunity holds the number; `prior` carries the calls and texts of the closed
    /// one it replaced, which count toward the new one's caps.
    Held { prior: ContactHistory },
    /// Another opportunity of the contact is live.
    Live(Uuid),
    /// Another create of this contact is in flight and has not appeared yet.
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

/// Claims `phone` for opportunity `id`, or says who holds it. A repeated create of `id` finds
/// its own claim and holds it again.
pub async fn claim(
    store: &Store,
    tenant: TenantId,
    phone: &str,
    id: Uuid,
) -> Result<Claim, StoreError> {
    // Each round settles, or lost a race to another create that changed the row, or found a
    // create of the same contact in flight; that one commits within milliseconds, so waiting a
    // moment answers the caller (merged) rather than refusing it.
    for _ in 0..ROUNDS {
        let Some((holder, claimed_at)) = holder(store, tenant, phone).await? else {
            if insert(store, tenant, phone, id).await? {
                return Ok(Claim::Held {
                    prior: ContactHistory::default(),
                });
            }
            continue;
        };
        if holder == id {
            return Ok(Claim::Held {
                prior: ContactHistory::default(),
            });
        }
        let previous = match store.get_actor(tenant, opp::KIND.as_str(), holder).await? {
            Some(row) => {
                let live = row
                    .status
                    .parse::<Stage>()
                    .map_or(true, |s| !s.is_terminal());
                if live {
                    return Ok(Claim::Live(holder));
                }
                serde_json::from_value::<Opportunity>(row.state)
                    .ok()
                    .map(|before| ContactHistory {
                        calls: before.call_attempts,
                        texts: before.sms_sent,
                        duplicate_of: None,
                    })
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
        if replace(store, tenant, phone, holder, id).await? {
            return Ok(Claim::Held {
                prior: previous.unwrap_or_default(),
            });
        }
    }
    Ok(Claim::Busy)
}

/// Gives the number back when `id` still holds it: its create was refused before it existed.
pub async fn release(
    store: &Store,
    tenant: TenantId,
    phone: &str,
    id: Uuid,
) -> Result<(), StoreError> {
    let sql = "DELETE FROM contact_claims
        WHERE tenant_id = $1 AND phone = $2 AND opportunity_id = $3";
    on_db!(store, |db, uid, _json| sqlx::query(sql)
        .bind(uid(tenant.0))
        .bind(phone)
        .bind(uid(id))
        .execute(db)
        .await?
        .rows_affected());
    Ok(())
}

/// The opportunity holding `phone`'s cadence, if any claimed it.
pub async fn holder_of(
    store: &Store,
    tenant: TenantId,
    phone: &str,
) -> Result<Option<Uuid>, StoreError> {
    Ok(holder(store, tenant, phone).await?.map(|(id, _)| id))
}

async fn holder(
    store: &Store,
    tenant: TenantId,
    phone: &str,
) -> Result<Option<(Uuid, i64)>, StoreError> {
    let sql = "SELECT CAST(opportunity_id AS TEXT), claimed_at FROM contact_claims
        WHERE tenant_id = $1 AND phone = $2";
    let row: Option<(String, i64)> = on_db!(store, |db, id, _json| sqlx::query_as(sql)
        .bind(id(tenant.0))
        .bind(phone)
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
    phone: &str,
    id: Uuid,
) -> Result<bool, StoreError> {
    let sql = "INSERT INTO contact_claims (tenant_id, phone, opportunity_id, claimed_at)
        VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING";
    let n = on_db!(store, |db, uid, _json| sqlx::query(sql)
        .bind(uid(tenant.0))
        .bind(phone)
        .bind(uid(id))
        .bind(crate::control::now_ms())
        .execute(db)
        .await?
        .rows_affected());
    Ok(n == 1)
}

/// Compare-and-set: takes the number from `from` only if it still holds it.
async fn replace(
    store: &Store,
    tenant: TenantId,
    phone: &str,
    from: Uuid,
    to: Uuid,
) -> Result<bool, StoreError> {
    let sql = "UPDATE contact_claims SET opportunity_id = $1, claimed_at = $2
        WHERE tenant_id = $3 AND phone = $4 AND opportunity_id = $5";
    let n = on_db!(store, |db, uid, _json| sqlx::query(sql)
        .bind(uid(to))
        .bind(crate::control::now_ms())
        .bind(uid(tenant.0))
        .bind(phone)
        .bind(uid(from))
        .execute(db)
        .await?
        .rows_affected());
    Ok(n == 1)
}
