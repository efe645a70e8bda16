//! How a team rings its reps: its strategy and per-rep ring timeout, stored on `teams`.

use std::fmt;
use std::str::FromStr;

use neuronx_supervision::{Store, StoreError, TenantId};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{corrupt, lookup_name, time};
use crate::control::access::Team;
use crate::control::tx::{on_tx, Tx};
use crate::control::{on_db, parse_uuid, ControlError};

/// Bounds of a team's ring timeout, in seconds.
pub const RING_TIMEOUT_SECONDS: std::ops::RangeInclusive<u32> = 5..=120;

/// How a team's calls ring its reps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RingStrategy {
    /// One rep at a time, the one offered a call longest ago first.
    #[default]
    Sequential,
    /// Several reps at once (up to five); the first to answer takes the call.
    Simultaneous,
}

impl RingStrategy {
    pub fn as_str(self) -> &'static str {
        match self {
            RingStrategy::Sequential => "sequential",
            RingStrategy::Simultaneous => "simultaneous",
        }
    }

    /// How many reps one offer rings.
    pub fn reps_per_offer(self) -> usize {
        match self {
            RingStrategy::Sequential => 1,
            RingStrategy::Simultaneous => 5,
        }
    }
}

impl fmt::Display for RingStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RingStrategy {
    type Err = ControlError;

    fn from_str(s: &str) -> Result<Self, ControlError> {
        match s {
            "sequential" => Ok(RingStrategy::Sequential),
            "simultaneous" => Ok(RingStrategy::Simultaneous),
            _ => Err(ControlError::invalid(
                "strategy",
                format!("unknown strategy {s:?}: expected sequential or simultaneous"),
            )),
        }
    }
}

/// The default ring timeout of a team that never set one (the column's default).
pub const DEFAULT_RING_TIMEOUT_SECONDS: u32 = 20;

type TeamRow = (String, String, i64, String, i32);

const TEAM_SQL: &str = "SELECT CAST(id AS TEXT), name, created_at, ring_strategy,
                               ring_timeout_seconds
                        FROM teams WHERE tenant_id = $1 AND name = $2";

fn team_of(row: TeamRow) -> Result<Team, StoreError> {
    let (id, name, at, strategy, timeout) = row;
    Ok(Team {
        id: parse_uuid(&id)?,
        name,
        created_at: time(at),
        ring_strategy: strategy.parse().map_err(corrupt)?,
        ring_timeout_seconds: u32::try_from(timeout).map_err(corrupt)?,
    })
}

async fn team_in(tx: &mut Tx, tenant: TenantId, name: &str) -> Result<Team, ControlError> {
    let name = lookup_name(name).ok_or(ControlError::NotFound("team"))?;
    let row: Option<TeamRow> = on_tx!(tx, |db, id, _json| sqlx::query_as(TEAM_SQL)
        .bind(id(tenant.0))
        .bind(name)
        .fetch_optional(db)
        .await?);
    Ok(team_of(row.ok_or(ControlError::NotFound("team"))?)?)
}

/// Sets how team `team_name` rings its reps, inside `tx`; answers the team before and after.
pub async fn set_ringing(
    tx: &mut Tx,
    tenant: TenantId,
    team_name: &str,
    strategy: RingStrategy,
    ring_timeout_seconds: u32,
) -> Result<(Team, Team), ControlError> {
    if !RING_TIMEOUT_SECONDS.contains(&ring_timeout_seconds) {
        return Err(ControlError::invalid(
            "ring_timeout_seconds",
            "must be 5 to 120",
        ));
    }
    let before = team_in(tx, tenant, team_name).await?;
    let sql = "UPDATE teams SET ring_strategy = $3, ring_timeout_seconds = $4
               WHERE tenant_id = $1 AND id = $2";
    let timeout = i32::try_from(ring_timeout_seconds).map_err(corrupt)?;
    on_tx!(tx, |db, id, _json| sqlx::query(sql)
        .bind(id(tenant.0))
        .bind(id(before.id))
        .bind(strategy.as_str())
        .bind(timeout)
        .execute(db)
        .await?
        .rows_affected());
    let after = team_in(tx, tenant, &before.name).await?;
    Ok((before, after))
}

/// How team `team` rings its reps: its strategy and per-rep ring timeout.
pub async fn ringing(
    store: &Store,
    tenant: TenantId,
    team: Uuid,
) -> Result<(RingStrategy, u32), ControlError> {
    let sql = "SELECT ring_strategy, ring_timeout_seconds FROM teams
               WHERE tenant_id = $1 AND id = $2";
    let row: Option<(String, i32)> = on_db!(store, |db, id, _json| sqlx::query_as(sql)
        .bind(id(tenant.0))
        .bind(id(team))
        .fetch_optional(db)
        .await?);
    let (strategy, timeout) = row.ok_or(ControlError::NotFound("team"))?;
    Ok((
        strategy.parse().map_err(corrupt)?,
        u32::try_from(timeout).map_err(corrupt)?,
    ))
}
