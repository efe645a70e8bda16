//! Reps: users who take calls, each with a phone, a time zone, working hours, a status and a
//! most calls at once; and how a team rings them (`RingStrategy`). The call flow asks `offer`
//! (in `offer.rs`) whom to ring. Every query names its tenant; one SQL text serves both backends.

pub mod cli;
mod hours;
mod offer;
mod ringing;

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use neuronx_actors::domain::opportunity::{normalize_phone, Rejection};
use neuronx_supervision::{Store, StoreError, TenantId};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use hours::{Day, LocalTime, WorkingHours};
pub use offer::{
    call_ended, engage, leg_ended, offer, offer_in, offer_named_in, offer_one, Offer, OfferedRep,
};
pub use ringing::{
    ringing, set_ringing, RingStrategy, DEFAULT_RING_TIMEOUT_SECONDS, RING_TIMEOUT_SECONDS,
};

use super::tx::{on_tx, Tx};
use super::{now_ms, on_db, parse_uuid, ControlError};

/// A leg with no recorded end stops counting as live this long after its offer: a lost
/// callback must not keep a rep busy for ever, and no sales call lasts four hours.
pub(crate) const LIVE_FOR_MS: i64 = 4 * 3_600_000;

/// Bounds of a rep's `max_calls`.
pub const MAX_CALLS: std::ops::RangeInclusive<u32> = 1..=10;

/// A rep's status. `busy` is never set by hand: it is what an available rep with `max_calls`
/// live calls shows (`Rep::effective_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RepStatus {
    Available,
    Busy,
    Away,
    Offline,
}

impl RepStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RepStatus::Available => "available",
            RepStatus::Busy => "busy",
            RepStatus::Away => "away",
            RepStatus::Offline => "offline",
        }
    }
}

impl fmt::Display for RepStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RepStatus {
    type Err = ControlError;

    fn from_str(s: &str) -> Result<Self, ControlError> {
        [
            RepStatus::Available,
            RepStatus::Busy,
            RepStatus::Away,
            RepStatus::Offline,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
        .ok_or_else(|| {
            ControlError::invalid(
                "status",
                format!("unknown status {s:?}: expected available, away or offline"),
            )
        })
    }
}

/// What a rep is reached at and when: valid by construction (`RepProfile::new`).
#[derive(Debug, Clone, PartialEq)]
pub struct RepProfile {
    phone: String,
    time_zone: Tz,
    working_hours: Option<WorkingHours>,
    max_calls: u32,
    /// Where escalation notices reach the rep by email; none: by SMS only.
    email: Option<String>,
}

impl RepProfile {
    /// Checks each field, named as the API's body names it: `phone` becomes E.164, `time_zone`
    /// must be an IANA zone, `max_calls` (default 1) 1 to 10.
    pub fn new(
        phone: &str,
        time_zone: &str,
        working_hours: Option<WorkingHours>,
        max_calls: Option<i64>,
    ) -> Result<Self, ControlError> {
        let phone = normalize_phone(phone).map_err(|e| {
            let reason = match e {
                Rejection::InvalidField { reason, .. } => reason,
                other => other.to_string(),
            };
            ControlError::invalid("phone", reason)
        })?;
        let time_zone: Tz = time_zone.trim().parse().map_err(|_| {
            ControlError::invalid("time_zone", format!("unknown IANA time zone {time_zone:?}"))
        })?;
        let max_calls = max_calls.unwrap_or(1);
        let max_calls = u32::try_from(max_calls)
            .ok()
            .filter(|n| MAX_CALLS.contains(n))
            .ok_or_else(|| ControlError::invalid("max_calls", "must be 1 to 10"))?;
        Ok(RepProfile {
            phone,
            time_zone,
            working_hours,
            max_calls,
            email: None,
        })
    }

    /// The profile with the rep's email address (`email` in the API's body), checked as the
    /// mailer reads addresses; `None` or blank: none.
    pub fn with_email(mut self, email: Option<&str>) -> Result<Self, ControlError> {
        self.email = match email.map(str::trim).filter(|e| !e.is_empty()) {
            None => None,
            Some(raw) => Some(
                neuronx_adapters::smtp::parse_address(raw)
                    .map_err(|reason| ControlError::invalid("email", reason))?,
            ),
        };
        Ok(self)
    }
}

/// A rep as listed: its profile, its status as set and as it stands.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Rep {
    /// The principal's name.
    pub name: String,
    pub team: Option<String>,
    /// E.164.
    pub phone: String,
    /// IANA time zone the working hours are read in.
    pub time_zone: String,
    /// None: any time.
    pub working_hours: Option<WorkingHours>,
    /// As set: `available`, `away` or `offline`.
    pub status: RepStatus,
    /// `busy` when the rep is available and has `max_calls` live calls; else `status`.
    pub effective_status: RepStatus,
    pub max_calls: u32,
    /// Where escalation notices reach the rep by email (besides the SMS to `phone`).
    pub email: Option<String>,
    /// Calls offered to the rep whose leg has not ended.
    pub live_calls: u32,
    /// Whether it is within the rep's working hours now.
    pub in_hours: bool,
    pub last_offered_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    #[serde(skip)]
    pub principal_id: Uuid,
    /// The team's id, for scope checks.
    #[serde(skip)]
    pub team_id: Option<Uuid>,
    /// False once the principal is deactivated: it is then offline and offered nothing.
    pub active: bool,
}

fn time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

fn corrupt(what: impl fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

/// Names come from paths and callbacks: one with control characters (NUL, which PostgreSQL
/// cannot compare against) names nothing, so it never reaches a query.
fn lookup_name(raw: &str) -> Option<&str> {
    let name = raw.trim();
    (!name.is_empty() && !name.chars().any(char::is_control)).then_some(name)
}

type RepRow = (
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    String,
    Option<String>,
    String,
    i32,
    Option<i64>,
    i64,
    i64,
    Option<String>,
    Option<i64>,
);

/// The reps of a tenant with their live legs; `$3` narrows to a team, `$4` to a name.
const REPS_SQL: &str = "SELECT CAST(p.id AS TEXT), p.name, t.name, CAST(p.team_id AS TEXT),
           r.phone, r.time_zone, r.working_hours, r.status, r.max_calls, r.last_offered_at,
           r.updated_at,
           (SELECT COUNT(*) FROM rep_legs l
            WHERE l.tenant_id = r.tenant_id AND l.principal_id = r.principal_id
              AND l.ended_at IS NULL AND l.offered_at > $2),
           r.email, p.deactivated_at
    FROM reps r
    JOIN principals p ON p.tenant_id = r.tenant_id AND p.id = r.principal_id
    LEFT JOIN teams t ON t.id = p.team_id
    WHERE r.tenant_id = $1 AND ($3 IS NULL OR p.team_id = $3) AND ($4 IS NULL OR p.name = $4)
    ORDER BY p.name";

fn rep_of(row: RepRow, now: DateTime<Utc>) -> Result<Rep, StoreError> {
    let (
        id,
        name,
        team,
        team_id,
        phone,
        zone,
        hours,
        status,
        max,
        offered,
        updated,
        live,
        email,
        deactivated,
    ) = row;
    let tz: Tz = zone
        .parse()
        .map_err(|_| corrupt(format!("time zone {zone:?}")))?;
    let working_hours = hours
        .as_deref()
        .map(WorkingHours::from_stored)
        .transpose()?;
    let status: RepStatus = status.parse().map_err(corrupt)?;
    let max_calls = u32::try_from(max).map_err(corrupt)?;
    let live_calls = u32::try_from(live).map_err(corrupt)?;
    let effective_status = if status == RepStatus::Available && live_calls >= max_calls {
        RepStatus::Busy
    } else {
        status
    };
    Ok(Rep {
        principal_id: parse_uuid(&id)?,
        name,
        team,
        team_id: team_id.as_deref().map(parse_uuid).transpose()?,
        phone,
        time_zone: zone,
        in_hours: working_hours.as_ref().is_none_or(|h| h.contains(now, tz)),
        working_hours,
        status,
        effective_status,
        max_calls,
        email,
        live_calls,
        last_offered_at: offered.map(time),
        updated_at: time(updated),
        active: deactivated.is_none(),
    })
}

/// The tenant's reps by name, with what they are doing at `now`; one team's when `team` is
/// given.
pub async fn list_reps(
    store: &Store,
    tenant: TenantId,
    team: Option<Uuid>,
    now: DateTime<Utc>,
) -> Result<Vec<Rep>, ControlError> {
    let cutoff = now.timestamp_millis() - LIVE_FOR_MS;
    let rows: Vec<RepRow> = on_db!(store, |db, id, _json| sqlx::query_as(REPS_SQL)
        .bind(id(tenant.0))
        .bind(cutoff)
        .bind(team.map(id))
        .bind(None::<String>)
        .fetch_all(db)
        .await?);
    Ok(rows
        .into_iter()
        .map(|r| rep_of(r, now))
        .collect::<Result<_, _>>()?)
}

/// The rep called `name`, if that principal is one.
pub async fn get_rep(
    store: &Store,
    tenant: TenantId,
    name: &str,
    now: DateTime<Utc>,
) -> Result<Option<Rep>, ControlError> {
    let Some(name) = lookup_name(name) else {
        return Ok(None);
    };
    let cutoff = now.timestamp_millis() - LIVE_FOR_MS;
    let row: Option<RepRow> = on_db!(store, |db, id, _json| sqlx::query_as(REPS_SQL)
        .bind(id(tenant.0))
        .bind(cutoff)
        .bind(None::<Uuid>.map(id))
        .bind(Some(name))
        .fetch_optional(db)
        .await?);
    Ok(row.map(|r| rep_of(r, now)).transpose()?)
}

async fn rep_in(tx: &mut Tx, tenant: TenantId, name: &str) -> Result<Option<Rep>, ControlError> {
    let now = Utc::now();
    let cutoff = now.timestamp_millis() - LIVE_FOR_MS;
    let row: Option<RepRow> = on_tx!(tx, |db, id, _json| sqlx::query_as(REPS_SQL)
        .bind(id(tenant.0))
        .bind(cutoff)
        .bind(None::<Uuid>.map(id))
        .bind(Some(name))
        .fetch_optional(db)
        .await?);
    Ok(row.map(|r| rep_of(r, now)).transpose()?)
}

/// The user called `name`, read in `tx`: its id and its name as stored. A service account
/// takes no calls, so it is refused by name.
async fn user_in(
    tx: &mut Tx,
    tenant: TenantId,
    name: &str,
) -> Result<(Uuid, String), ControlError> {
    let name = lookup_name(name).ok_or(ControlError::NotFound("principal"))?;
    let sql = "SELECT CAST(id AS TEXT), kind FROM principals WHERE tenant_id = $1 AND name = $2";
    let row: Option<(String, String)> = on_tx!(tx, |db, id, _json| sqlx::query_as(sql)
        .bind(id(tenant.0))
        .bind(name)
        .fetch_optional(db)
        .await?);
    let (id, kind) = row.ok_or(ControlError::NotFound("principal"))?;
    if kind != super::access::PrincipalKind::User.as_str() {
        return Err(ControlError::invalid(
            "name",
            format!("{name:?} is a {kind}: only users take calls"),
        ));
    }
    Ok((parse_uuid(&id)?, name.to_owned()))
}

/// Sets the profile of user `principal_name` inside `tx`, making it a rep (status `offline`)
/// if it was not one; a rep's status and round-robin turn are kept. Answers the rep before
/// (none if new) and after, for the audit entry the caller writes in the same transaction.
pub async fn set_profile(
    tx: &mut Tx,
    tenant: TenantId,
    principal_name: &str,
    profile: &RepProfile,
) -> Result<(Option<Rep>, Rep), ControlError> {
    let (principal, name) = user_in(tx, tenant, principal_name).await?;
    let before = rep_in(tx, tenant, &name).await?;
    let sql = "INSERT INTO reps (tenant_id, principal_id, phone, time_zone, working_hours, status,
                                 max_calls, last_offered_at, updated_at, email)
               VALUES ($1, $2, $3, $4, $5, 'offline', $6, NULL, $7, $8)
               ON CONFLICT (tenant_id, principal_id) DO UPDATE SET
                   phone = excluded.phone, time_zone = excluded.time_zone,
                   working_hours = excluded.working_hours, max_calls = excluded.max_calls,
                   updated_at = excluded.updated_at, email = excluded.email";
    let max_calls = i32::try_from(profile.max_calls).map_err(corrupt)?;
    on_tx!(tx, |db, id, _json| sqlx::query(sql)
        .bind(id(tenant.0))
        .bind(id(principal))
        .bind(&profile.phone)
        .bind(profile.time_zone.name())
        .bind(profile.working_hours.as_ref().map(WorkingHours::to_stored))
        .bind(max_calls)
        .bind(now_ms())
        .bind(&profile.email)
        .execute(db)
        .await?
        .rows_affected());
    let after = rep_in(tx, tenant, &name)
        .await?
        .ok_or(ControlError::NotFound("rep"))?;
    Ok((before, after))
}

/// Sets a rep's status inside `tx`; answers the rep before and after. `busy` is derived from
/// live calls, so it is refused here, by field; so is any status but `offline` for a
/// deactivated principal.
pub async fn set_status(
    tx: &mut Tx,
    tenant: TenantId,
    principal_name: &str,
    status: RepStatus,
) -> Result<(Rep, Rep), ControlError> {
    if status == RepStatus::Busy {
        return Err(ControlError::invalid(
            "status",
            "busy follows from live calls and cannot be set: use available, away or offline",
        ));
    }
    let (principal, name) = user_in(tx, tenant, principal_name).await?;
    let before = rep_in(tx, tenant, &name)
        .await?
        .ok_or(ControlError::NotFound("rep"))?;
    if !before.active && status != RepStatus::Offline {
        return Err(ControlError::invalid(
            "status",
            format!("{name:?} is deactivated: activate the principal first"),
        ));
    }
    let sql = "UPDATE reps SET status = $3, updated_at = $4
               WHERE tenant_id = $1 AND principal_id = $2";
    on_tx!(tx, |db, id, _json| sqlx::query(sql)
        .bind(id(tenant.0))
        .bind(id(principal))
        .bind(status.as_str())
        .bind(now_ms())
        .execute(db)
        .await?
        .rows_affected());
    let after = rep_in(tx, tenant, &name)
        .await?
        .ok_or(ControlError::NotFound("rep"))?;
    Ok((before, after))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field<T: fmt::Debug>(r: Result<T, ControlError>) -> &'static str {
        match r {
            Err(ControlError::Invalid { field, .. }) => field,
            other => panic!("expected invalid, got {other:?}"),
        }
    }

    #[test]
    fn a_profile_is_checked_field_by_field() {
        let p = RepProfile::new(" +1 415 555 2671 ", "Europe/Paris", None, None).expect("valid");
        assert_eq!(p.phone, "+14155552671");
        assert_eq!(p.max_calls, 1);
        assert_eq!(field(RepProfile::new("555", "UTC", None, None)), "phone");
        assert_eq!(
            field(RepProfile::new("+14155552671", "Mars/Base", None, None)),
            "time_zone"
        );
        let with =
            |e: &str| RepProfile::new("+14155552671", "UTC", None, None)?.with_email(Some(e));
        assert_eq!(
            with(" ana@acme.test ").expect("valid").email.as_deref(),
            Some("ana@acme.test")
        );
        assert_eq!(with("  ").expect("blank is none").email, None);
        assert_eq!(field(with("ana@")), "email");
        for n in [0, 11, -1, i64::MAX] {
            assert_eq!(
                field(RepProfile::new("+14155552671", "UTC", None, Some(n))),
                "max_calls"
            );
        }
    }

    #[test]
    fn statuses_and_strategies_read_their_names_and_refuse_others() {
        for s in ["available", "busy", "away", "offline"] {
            assert_eq!(s.parse::<RepStatus>().expect("known").as_str(), s);
        }
        assert_eq!(field("Available".parse::<RepStatus>()), "status");
        assert_eq!(field("round_robin".parse::<RingStrategy>()), "strategy");
        assert_eq!(RingStrategy::default(), RingStrategy::Sequential);
        assert_eq!(RingStrategy::Simultaneous.reps_per_offer(), 5);
    }
}
