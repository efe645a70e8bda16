//! Teams and principals (users and service accounts), and the binding of opportunities to
//! teams with round-robin assignment among a team's operators.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use neuronx_supervision::{Store, TenantId};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::reps::{RingStrategy, DEFAULT_RING_TIMEOUT_SECONDS};
use super::tx::{on_tx, Tx};
use super::{clean_name, is_unique_violation, now_ms, on_db, parse_uuid, ControlError, Role};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Team {
    pub id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
    /// How the team's calls ring its reps (`control::reps`).
    pub ring_strategy: RingStrategy,
    /// How long each rep is rung.
    pub ring_timeout_seconds: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    User,
    ServiceAccount,
}

impl PrincipalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::User => "user",
            PrincipalKind::ServiceAccount => "service_account",
        }
    }
}

impl fmt::Display for PrincipalKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PrincipalKind {
    type Err = ControlError;

    fn from_str(s: &str) -> Result<Self, ControlError> {
        match s {
            "user" => Ok(PrincipalKind::User),
            "service_account" => Ok(PrincipalKind::ServiceAccount),
            _ => Err(ControlError::invalid(
                "kind",
                format!("unknown kind {s:?}: expected user or service_account"),
            )),
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Principal {
    pub id: Uuid,
    pub name: String,
    pub kind: PrincipalKind,
    pub role: Role,
    pub team: Option<String>,
    /// The team's id, for scope checks; the name is what callers see.
    #[serde(skip)]
    pub team_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    /// False once deactivated: its keys and sessions are revoked, it is offered no calls, gets
    /// no new leads and no sign-in link (ADR 0042).
    pub active: bool,
    /// When it was deactivated; none while active.
    pub deactivated_at: Option<DateTime<Utc>>,
}

pub struct NewPrincipal<'a> {
    pub name: &'a str,
    pub kind: PrincipalKind,
    pub role: Role,
    pub team: Option<&'a str>,
}

fn time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// Creates a team inside `tx` (the caller records it in the audit log in the same transaction).
pub async fn create_team(tx: &mut Tx, tenant: TenantId, name: &str) -> Result<Team, ControlError> {
    let name = clean_name("name", name)?;
    let team = Team {
        id: Uuid::new_v4(),
        name,
        created_at: time(now_ms()),
        ring_strategy: RingStrategy::default(),
        ring_timeout_seconds: DEFAULT_RING_TIMEOUT_SECONDS,
    };
    let sql = "INSERT INTO teams (id, tenant_id, name, created_at) VALUES ($1, $2, $3, $4)";
    let done = on_tx!(tx, |db, id, _json| sqlx::query(sql)
        .bind(id(team.id))
        .bind(id(tenant.0))
        .bind(&team.name)
        .bind(team.created_at.timestamp_millis())
        .execute(db)
        .await
        .map(|r| r.rows_affected()));
    match done {
        Ok(_) => Ok(team),
        Err(e) if is_unique_violation(&e) => Err(ControlError::Exists {
            what: "team",
            name: team.name,
        }),
        Err(e) => Err(e.into()),
    }
}

pub async fn list_teams(store: &Store, tenant: TenantId) -> Result<Vec<Team>, ControlError> {
    let sql = "SELECT CAST(id AS TEXT), name, created_at, ring_strategy, ring_timeout_seconds
               FROM teams WHERE tenant_id = $1 ORDER BY name";
    let rows: Vec<(String, String, i64, String, i32)> =
        on_db!(store, |db, id, _json| sqlx::query_as(sql)
            .bind(id(tenant.0))
            .fetch_all(db)
            .await?);
    let corrupt = |e: String| neuronx_supervision::StoreError::Corrupt(e);
    rows.into_iter()
        .map(|(i, name, at, strategy, timeout)| {
            Ok(Team {
                id: parse_uuid(&i)?,
                name,
                created_at: time(at),
                ring_strategy: strategy
                    .parse()
                    .map_err(|e: ControlError| corrupt(e.to_string()))?,
                ring_timeout_seconds: u32::try_from(timeout).map_err(|e| corrupt(e.to_string()))?,
            })
        })
        .collect()
}

/// The tenant's team called `name`; another tenant's team of that name is not found.
pub async fn find_team(
    store: &Store,
    tenant: TenantId,
    name: &str,
) -> Result<Option<Team>, ControlError> {
    Ok(list_teams(store, tenant)
        .await?
        .into_iter()
        .find(|t| t.name == name.trim()))
}

/// Like `find_team`, for a request naming one: unknown is the caller's mistake, by field.
pub async fn require_team(
    store: &Store,
    tenant: TenantId,
    field: &'static str,
    name: &str,
) -> Result<Team, ControlError> {
    find_team(store, tenant, name)
        .await?
        .ok_or_else(|| ControlError::invalid(field, format!("no team named {:?}", name.trim())))
}

/// Creates a principal inside `tx`; its team is read from `store`.
pub async fn create_principal(
    store: &Store,
    tx: &mut Tx,
    tenant: TenantId,
    new: &NewPrincipal<'_>,
) -> Result<Principal, ControlError> {
    let name = clean_name("name", new.name)?;
    let team = match new.team {
        Some(t) => Some(require_team(store, tenant, "team", t).await?),
        None => None,
    };
    let p = Principal {
        id: Uuid::new_v4(),
        name,
        kind: new.kind,
        role: new.role,
        team: team.as_ref().map(|t| t.name.clone()),
        team_id: team.as_ref().map(|t| t.id),
        created_at: time(now_ms()),
        active: true,
        deactivated_at: None,
    };
    let sql = "INSERT INTO principals (id, tenant_id, name, kind, role, team_id, created_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7)";
    let done = on_tx!(tx, |db, id, _json| sqlx::query(sql)
        .bind(id(p.id))
        .bind(id(tenant.0))
        .bind(&p.name)
        .bind(p.kind.as_str())
        .bind(p.role.as_str())
        .bind(team.as_ref().map(|t| id(t.id)))
        .bind(p.created_at.timestamp_millis())
        .execute(db)
        .await
        .map(|r| r.rows_affected()));
    match done {
        Ok(_) => Ok(p),
        Err(e) if is_unique_violation(&e) => Err(ControlError::Exists {
            what: "principal",
            name: p.name,
        }),
        Err(e) => Err(e.into()),
    }
}

type PrincipalRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    i64,
    Option<i64>,
);

/// The tenant's principals, by name; only one team's when `team` is given.
pub async fn list_principals(
    store: &Store,
    tenant: TenantId,
    team: Option<Uuid>,
) -> Result<Vec<Principal>, ControlError> {
    let sql = "SELECT CAST(p.id AS TEXT), p.name, p.kind, p.role, t.name, CAST(p.team_id AS TEXT),
                      p.created_at, p.deactivated_at
               FROM principals p LEFT JOIN teams t ON t.id = p.team_id
               WHERE p.tenant_id = $1 AND ($2 IS NULL OR p.team_id = $2)
               ORDER BY p.name";
    let rows: Vec<PrincipalRow> = on_db!(store, |db, id, _json| sqlx::query_as(sql)
        .bind(id(tenant.0))
        .bind(team.map(id))
        .fetch_all(db)
        .await?);
    rows.into_iter()
        .map(|(i, name, kind, role, team, team_id, at, deactivated)| {
            Ok(Principal {
                id: parse_uuid(&i)?,
                name,
                kind: kind.parse()?,
                role: role.parse().map_err(|e: super::roles::UnknownRole| {
                    neuronx_supervision::StoreError::Corrupt(e.to_string())
                })?,
                team,
                team_id: team_id.as_deref().map(parse_uuid).transpose()?,
                created_at: time(at),
                active: deactivated.is_none(),
                deactivated_at: deactivated.map(time),
            })
        })
        .collect()
}

pub async fn find_principal(
    store: &Store,
    tenant: TenantId,
    name: &str,
) -> Result<Option<Principal>, ControlError> {
    Ok(list_principals(store, tenant, None)
        .await?
        .into_iter()
        .find(|p| p.name == name.trim()))
}

/// Whether `name` is an active principal of `team`; if not, the caller's mistake, by field.
pub async fn require_member(
    store: &Store,
    tenant: TenantId,
    team: &Team,
    field: &'static str,
    name: &str,
) -> Result<(), ControlError> {
    let members = list_principals(store, tenant, Some(team.id)).await?;
    match members.iter().find(|p| p.name == name.trim()) {
        // Nothing new goes to someone deactivated (ADR 0042).
        Some(p) if !p.active => Err(ControlError::invalid(
            field,
            format!("{:?} is deactivated", p.name),
        )),
        Some(_) => Ok(()),
        None => Err(ControlError::invalid(
            field,
            format!("{:?} is not a member of team {:?}", name.trim(), team.name),
        )),
    }
}

/// The next of the team's active operators in turn, or `None` when it has none (a deactivated
/// principal gets no new leads). The counter is advanced in one statement, so two instances
/// assigning at once never pick the same turn.
pub async fn next_assignee(
    store: &Store,
    tenant: TenantId,
    team: Uuid,
) -> Result<Option<String>, ControlError> {
    let members: Vec<String> = list_principals(store, tenant, Some(team))
        .await?
        .into_iter()
        .filter(|p| p.role == Role::Operator && p.active)
        .map(|p| p.name)
        .collect();
    if members.is_empty() {
        return Ok(None);
    }
    let sql = "UPDATE teams SET rr_next = rr_next + 1 WHERE tenant_id = $1 AND id = $2
               RETURNING rr_next - 1";
    let turn: i64 = on_db!(store, |db, id, _json| sqlx::query_scalar(sql)
        .bind(id(tenant.0))
        .bind(id(team))
        .fetch_one(db)
        .await?);
    let index = usize::try_from(turn).unwrap_or(0) % members.len();
    Ok(members.into_iter().nth(index))
}

/// Records that `opportunity` belongs to `team`; the first binding wins (a repeated create
/// with the same external id does not move it). True when this call made the binding, false
/// when one was there already (possibly another team's: the caller must check).
pub async fn bind_opportunity(
    store: &Store,
    tenant: TenantId,
    opportunity: Uuid,
    team: Uuid,
) -> Result<bool, ControlError> {
    let sql = "INSERT INTO opportunity_teams (tenant_id, opportunity_id, team_id)
               VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";
    let inserted = on_db!(store, |db, id, _json| sqlx::query(sql)
        .bind(id(tenant.0))
        .bind(id(opportunity))
        .bind(id(team))
        .execute(db)
        .await?
        .rows_affected());
    Ok(inserted == 1)
}

/// The team an opportunity is bound to, if any.
pub async fn team_of(
    store: &Store,
    tenant: TenantId,
    opportunity: Uuid,
) -> Result<Option<Uuid>, ControlError> {
    let sql = "SELECT CAST(team_id AS TEXT) FROM opportunity_teams
               WHERE tenant_id = $1 AND opportunity_id = $2";
    let row: Option<String> = on_db!(store, |db, id, _json| sqlx::query_scalar(sql)
        .bind(id(tenant.0))
        .bind(id(opportunity))
        .fetch_optional(db)
        .await?);
    Ok(row.map(|t| parse_uuid(&t)).transpose()?)
}

/// Opportunity `opportunity`'s stored state (as JSON text) with the team it is bound to, in
/// one read: the call flow answers a lead picking up with it (issue #14: p99 ≤ 20 ms), where
/// the opportunity, its call and its team were three round trips. With `call`, found only while
/// that call actor of `call_kind` exists too, so a flow request naming an erased call reads
/// nothing. The actors table is the runtime's; reading it here is a read model, like the board.
pub async fn opportunity_with_team(
    store: &Store,
    tenant: TenantId,
    opportunity: Uuid,
    call: Option<(&str, Uuid)>,
) -> Result<Option<(String, Option<Uuid>)>, ControlError> {
    let sql = "SELECT CAST(a.state AS TEXT), CAST(ot.team_id AS TEXT)
               FROM actors a
               LEFT JOIN opportunity_teams ot
                 ON ot.tenant_id = a.tenant_id AND ot.opportunity_id = a.id
               WHERE a.tenant_id = $1 AND a.kind = $2 AND a.id = $3
                 AND ($4 IS NULL OR EXISTS (SELECT 1 FROM actors c WHERE c.tenant_id = $1
                                            AND c.kind = $4 AND c.id = $5))";
    let (call_kind, call_id) = call.unzip();
    let row: Option<(String, Option<String>)> = on_db!(store, |db, id, _json| sqlx::query_as(sql)
        .bind(id(tenant.0))
        .bind(neuronx_actors::opportunity::KIND.as_str())
        .bind(id(opportunity))
        .bind(call_kind)
        .bind(call_id.map(id))
        .fetch_optional(db)
        .await?);
    let Some((state, team)) = row else {
        return Ok(None);
    };
    Ok(Some((state, team.as_deref().map(parse_uuid).transpose()?)))
}

/// The opportunities bound to `team`, for team-scoped lists and bulk actions.
pub async fn opportunities_of(
    store: &Store,
    tenant: TenantId,
    team: Uuid,
) -> Result<Vec<Uuid>, ControlError> {
    let sql = "SELECT CAST(opportunity_id AS TEXT) FROM opportunity_teams
               WHERE tenant_id = $1 AND team_id = $2";
    let rows: Vec<String> = on_db!(store, |db, id, _json| sqlx::query_scalar(sql)
        .bind(id(tenant.0))
        .bind(id(team))
        .fetch_all(db)
        .await?);
    Ok(rows
        .iter()
        .map(|r| parse_uuid(r))
        .collect::<Result<_, _>>()?)
}
