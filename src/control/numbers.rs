//! The tenant's numbers (issue #14): a pool per team or tenant-wide, each with its area code
//! and state derived once, when it is added. Dials and texts to a lead choose their caller id
//! from it (`caller_id::choose`, local presence); inbound texts are matched by the number they
//! reached (`reached`). Every query names its tenant; one SQL text serves both backends.

mod caller_id;
pub mod cli;

use chrono::{DateTime, Utc};
use neuronx_actors::domain::area_codes::{area_code, state_of_area_code};
use neuronx_actors::domain::opportunity::{normalize_phone, Rejection};
use neuronx_supervision::{Store, StoreError, TenantId};
use serde::Serialize;
use uuid::Uuid;

pub use caller_id::{choose, CallerId, ChosenBy, PoolNumber};

use super::tx::{on_tx, Tx};
use super::{clean_name, now_ms, on_db, parse_uuid, ControlError};

/// A number of the tenant's, as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Number {
    /// E.164.
    #[schema(example = "+15125550100")]
    pub number: String,
    /// The team whose pool it is; null: tenant-wide (used for opportunities of no team, and of
    /// a team without numbers).
    pub team: Option<String>,
    pub label: Option<String>,
    /// The NANP area code, for a US or Canadian number; null otherwise.
    pub area_code: Option<u16>,
    /// The two-letter state, territory or province its area code serves; null when unknown.
    #[schema(example = "TX")]
    pub state: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The team's id, for scope checks.
    #[serde(skip)]
    pub team_id: Option<Uuid>,
}

/// A number to add or change: valid by construction (`NumberSpec::new`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberSpec {
    number: String,
    label: Option<String>,
    area_code: Option<u16>,
    state: Option<&'static str>,
}

/// A phone number as the API names it (`number`, from the path), in E.164.
pub fn parse_number(raw: &str) -> Result<String, ControlError> {
    normalize_phone(raw).map_err(|e| {
        let reason = match e {
            Rejection::InvalidField { reason, .. } => reason,
            other => other.to_string(),
        };
        ControlError::invalid("number", reason)
    })
}

impl NumberSpec {
    /// `number` becomes E.164 (its area code and state derived for a US or Canadian number);
    /// `label`, when not blank, 1 to 100 characters without control characters.
    pub fn new(number: &str, label: Option<&str>) -> Result<Self, ControlError> {
        let number = parse_number(number)?;
        let label = match label.map(str::trim).filter(|l| !l.is_empty()) {
            None => None,
            Some(l) => Some(clean_name("label", l)?),
        };
        let area_code = area_code(&number);
        Ok(NumberSpec {
            state: area_code.and_then(state_of_area_code),
            area_code,
            number,
            label,
        })
    }

    pub fn number(&self) -> &str {
        &self.number
    }
}

fn time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

fn npa(stored: Option<i32>) -> Result<Option<u16>, StoreError> {
    stored
        .map(|a| u16::try_from(a).map_err(|_| corrupt(format!("area code {a}"))))
        .transpose()
}

type NumberRow = (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i32>,
    Option<String>,
    i64,
    i64,
);

/// The tenant's numbers; `$2` (a team) narrows to that team's and the tenant-wide ones, `$3` to
/// one number.
const NUMBERS_SQL: &str = "SELECT n.number, CAST(n.team_id AS TEXT), t.name, n.label, n.area_code,
           n.state, n.created_at, n.updated_at
    FROM phone_numbers n
    LEFT JOIN teams t ON t.id = n.team_id
    WHERE n.tenant_id = $1 AND ($2 IS NULL OR n.team_id IS NULL OR n.team_id = $2)
      AND ($3 IS NULL OR n.number = $3)
    ORDER BY n.number";

fn number_of(row: NumberRow) -> Result<Number, StoreError> {
    let (number, team_id, team, label, area, state, created, updated) = row;
    Ok(Number {
        number,
        team_id: team_id.as_deref().map(parse_uuid).transpose()?,
        team,
        label,
        area_code: npa(area)?,
        state,
        created_at: time(created),
        updated_at: time(updated),
    })
}

/// The tenant's numbers by number; with `team`, that team's and the tenant-wide ones.
pub async fn list_numbers(
    store: &Store,
    tenant: TenantId,
    team: Option<Uuid>,
) -> Result<Vec<Number>, ControlError> {
    let rows: Vec<NumberRow> = on_db!(store, |db, id, _json| sqlx::query_as(NUMBERS_SQL)
        .bind(id(tenant.0))
        .bind(team.map(id))
        .bind(None::<String>)
        .fetch_all(db)
        .await?);
    Ok(rows.into_iter().map(number_of).collect::<Result<_, _>>()?)
}

async fn number_in(
    tx: &mut Tx,
    tenant: TenantId,
    number: &str,
) -> Result<Option<Number>, ControlError> {
    let row: Option<NumberRow> = on_tx!(tx, |db, id, _json| sqlx::query_as(NUMBERS_SQL)
        .bind(id(tenant.0))
        .bind(None::<Uuid>.map(id))
        .bind(Some(number))
        .fetch_optional(db)
        .await?);
    Ok(row.map(number_of).transpose()?)
}

/// Adds `spec` to the tenant's pool inside `tx`, in `team`'s (`None`: tenant-wide), or moves
/// and relabels it if it is there already. Answers the number before (none if new) and after,
/// for the audit entry the caller writes in the same transaction.
pub async fn put_number(
    tx: &mut Tx,
    tenant: TenantId,
    spec: &NumberSpec,
    team: Option<Uuid>,
) -> Result<(Option<Number>, Number), ControlError> {
    let before = number_in(tx, tenant, &spec.number).await?;
    let sql = "INSERT INTO phone_numbers (tenant_id, number, team_id, label, area_code, state,
                                          created_at, updated_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
               ON CONFLICT (tenant_id, number) DO UPDATE SET
                   team_id = excluded.team_id, label = excluded.label,
                   area_code = excluded.area_code, state = excluded.state,
                   updated_at = excluded.updated_at";
    on_tx!(tx, |db, id, _json| sqlx::query(sql)
        .bind(id(tenant.0))
        .bind(&spec.number)
        .bind(team.map(id))
        .bind(&spec.label)
        .bind(spec.area_code.map(i32::from))
        .bind(spec.state)
        .bind(now_ms())
        .execute(db)
        .await?
        .rows_affected());
    let after = number_in(tx, tenant, &spec.number)
        .await?
        .ok_or(ControlError::NotFound("number"))?;
    Ok((before, after))
}

/// Removes `number` (E.164) from the tenant's pool inside `tx`; answers what it was. Not found
/// when it is not the tenant's.
pub async fn remove_number(
    tx: &mut Tx,
    tenant: TenantId,
    number: &str,
) -> Result<Number, ControlError> {
    let before = number_in(tx, tenant, number)
        .await?
        .ok_or(ControlError::NotFound("number"))?;
    let sql = "DELETE FROM phone_numbers WHERE tenant_id = $1 AND number = $2";
    on_tx!(tx, |db, id, _json| sqlx::query(sql)
        .bind(id(tenant.0))
        .bind(number)
        .execute(db)
        .await?
        .rows_affected());
    Ok(before)
}

type PoolRow = (String, Option<String>, Option<i32>, Option<String>);

/// What a dial or text to `opportunity`'s lead chooses its caller id from: the opportunity's
/// team (if it has one and the team has numbers: `None` otherwise) and the pool the choice
/// reads (that team's numbers and the tenant-wide ones). One query.
pub async fn pool_for(
    store: &Store,
    tenant: TenantId,
    opportunity: Uuid,
) -> Result<(Option<Uuid>, Vec<PoolNumber>), StoreError> {
    let sql = "SELECT number, CAST(team_id AS TEXT), area_code, state FROM phone_numbers
               WHERE tenant_id = $1
                 AND (team_id IS NULL OR team_id IN (
                      SELECT team_id FROM opportunity_teams
                      WHERE tenant_id = $1 AND opportunity_id = $2))
               ORDER BY number";
    let rows: Vec<PoolRow> = on_db!(store, |db, id, _json| sqlx::query_as(sql)
        .bind(id(tenant.0))
        .bind(id(opportunity))
        .fetch_all(db)
        .await?);
    let pool = rows
        .into_iter()
        .map(|(number, team, area, state)| {
            Ok(PoolNumber {
                number,
                team_id: team.as_deref().map(parse_uuid).transpose()?,
                area_code: npa(area)?,
                state,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let team = pool.iter().find_map(|n| n.team_id);
    Ok((team, pool))
}

/// Where an inbound message to `to` landed, among the tenant's numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reached {
    /// The tenant lists no numbers: only its account's `from` is known, and `To` is not
    /// checked (the behaviour before pools).
    NoPool,
    /// A pool number: of this team, or tenant-wide (`None`).
    Pool(Option<Uuid>),
    /// Not in the pool (it may still be the account's `from`: the caller checks).
    NotListed,
}

/// Which of the tenant's numbers `to` is (E.164, as the carrier sends it).
pub async fn reached(store: &Store, tenant: TenantId, to: &str) -> Result<Reached, StoreError> {
    // Whether `to` is listed (1) and, when it is, its team; else whether any number is (0).
    let sql = "SELECT CASE WHEN number = $2 THEN 1 ELSE 0 END, CAST(team_id AS TEXT)
               FROM phone_numbers WHERE tenant_id = $1
               ORDER BY CASE WHEN number = $2 THEN 0 ELSE 1 END LIMIT 1";
    let row: Option<(i32, Option<String>)> = on_db!(store, |db, id, _json| sqlx::query_as(sql)
        .bind(id(tenant.0))
        .bind(to)
        .fetch_optional(db)
        .await?);
    Ok(match row {
        None => Reached::NoPool,
        Some((1, team)) => Reached::Pool(team.as_deref().map(parse_uuid).transpose()?),
        Some(_) => Reached::NotListed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field<T: std::fmt::Debug>(r: Result<T, ControlError>) -> &'static str {
        match r {
            Err(ControlError::Invalid { field, .. }) => field,
            other => panic!("expected invalid, got {other:?}"),
        }
    }

    #[test]
    fn a_number_is_checked_and_placed() {
        let s = NumberSpec::new(" +1 512 555 0100 ", Some("  Austin  ")).expect("valid");
        assert_eq!(s.number, "+15125550100");
        assert_eq!(s.label.as_deref(), Some("Austin"));
        assert_eq!((s.area_code, s.state), (Some(512), Some("TX")));
        let s = NumberSpec::new("+14165550100", Some(" ")).expect("Toronto");
        assert_eq!(
            (s.area_code, s.state, s.label),
            (Some(416), Some("ON"), None)
        );
        let s = NumberSpec::new("+442071838750", None).expect("London");
        assert_eq!((s.area_code, s.state), (None, None));
        for bad in [
            "",
            "5125550100",
            "+1",
            "+1512555010x",
            "+15125550100\0",
            "+99999",
        ] {
            assert_eq!(field(NumberSpec::new(bad, None)), "number", "{bad:?}");
        }
        assert_eq!(
            field(NumberSpec::new("+15125550100", Some(&"x".repeat(101)))),
            "label"
        );
        assert_eq!(
            field(NumberSpec::new("+15125550100", Some("a\u{7}b"))),
            "label"
        );
    }
}
