//! Line-type lookups through the tenant's Twilio account (ADR 0035): the durable per-tenant cache
//! of what the carrier answered, so that a number is paid for once whatever the number of
//! opportunities, instances or restarts. The tenant's switch is a field of its stored account
//! (`StoredCredentials::line_type_lookup`), written and read with it.
//!
//! The cache holds answers only: a lookup that failed is not kept, so the next text asks again.

use neuronx_actors::domain::opportunity::{LineFound, LineType};
use neuronx_adapters::twilio::{LineType as CarrierType, LineTypeLookup};
use neuronx_supervision::{Store, StoreError, TenantId};

use crate::control::on_db;

/// What an earlier lookup of `phone` answered for this tenant. A stored name this version does
/// not know reads as no answer (looked up again).
pub async fn cached(
    store: &Store,
    tenant: TenantId,
    phone: &str,
) -> Result<Option<(LineType, Option<String>)>, StoreError> {
    let sql = "SELECT line_type, carrier FROM line_types WHERE tenant_id = $1 AND phone = $2";
    let row: Option<(String, Option<String>)> = on_db!(store, |db, id, _json| sqlx::query_as(sql)
        .bind(id(tenant.0))
        .bind(phone)
        .fetch_optional(db)
        .await?);
    Ok(row.and_then(|(name, carrier)| {
        LineType::ALL
            .iter()
            .find(|t| t.as_str() == name)
            .map(|t| (*t, carrier))
    }))
}

/// Keeps an answer. Two instances looking the same number up at once both pay (rare: a text
/// per number is in flight at a time); the first answer stays.
pub async fn remember(
    store: &Store,
    tenant: TenantId,
    phone: &str,
    line_type: LineType,
    carrier: Option<&str>,
) -> Result<(), StoreError> {
    let sql = "INSERT INTO line_types (tenant_id, phone, line_type, carrier, looked_up_at)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING";
    on_db!(store, |db, id, _json| sqlx::query(sql)
        .bind(id(tenant.0))
        .bind(phone)
        .bind(line_type.as_str())
        .bind(carrier)
        .bind(chrono::Utc::now().timestamp_millis())
        .execute(db)
        .await?
        .rows_affected());
    Ok(())
}

/// The carrier's type in the domain's words; exhaustive, so a type added to the adapter is a
/// decision here.
pub fn domain_type(t: CarrierType) -> LineType {
    match t {
        CarrierType::Mobile => LineType::Mobile,
        CarrierType::Landline => LineType::Landline,
        CarrierType::FixedVoip => LineType::FixedVoip,
        CarrierType::NonFixedVoip => LineType::NonFixedVoip,
        CarrierType::Personal => LineType::Personal,
        CarrierType::TollFree => LineType::TollFree,
        CarrierType::Premium => LineType::Premium,
        CarrierType::SharedCost => LineType::SharedCost,
        CarrierType::Uan => LineType::Uan,
        CarrierType::Voicemail => LineType::Voicemail,
        CarrierType::Pager => LineType::Pager,
        CarrierType::Unknown => LineType::Unknown,
    }
}

/// A lookup's answer as the opportunity's input.
pub fn found(answer: &LineTypeLookup) -> LineFound {
    LineFound {
        line_type: domain_type(answer.line_type),
        carrier: answer.carrier_name.clone(),
        lookup_error: None,
        text_withheld: false,
    }
}
