//! Snoozing a lead out of the queue (issue #14, ADR 0047 addendum): a rep says "not now, back
//! at 15:00", and the lead leaves the queue of everyone who works it until then, coming back
//! by itself when the time passes (the queue compares the stored time with the engine's
//! clock) or at once when someone un-snoozes it. One row per opportunity in `queue_snoozes`,
//! written with its audit entry in one transaction. The playbook is not told: its SLAs,
//! escalations and the dashboard's counts go on as before, so a snooze hides work from a list,
//! never a breach from the record.

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use neuronx_supervision::{EngineHandle, TenantId};
use serde::Serialize;
use uuid::Uuid;

use super::commands::check_reason;
use super::views::ms_to_time;
use super::{authorize, visible, Error};
use crate::control::audit::{self, AuditAction, Entry, Outcome};
use crate::control::keys::Identity;
use crate::control::tx::{on_tx, Tx};
use crate::control::{on_db, reps, Action, ControlError};

/// How long a snooze lasts: a few fixed choices, so a form cannot hide a lead for a year.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnoozeFor {
    Minutes15,
    Hour1,
    Hours4,
    /// 9:00 tomorrow in the time zone of the rep who snoozes (UTC for a caller with no rep
    /// profile): "first thing tomorrow" means the rep's morning, not the server's.
    TomorrowMorning,
}

impl SnoozeFor {
    pub const ALL: [SnoozeFor; 4] = [
        SnoozeFor::Minutes15,
        SnoozeFor::Hour1,
        SnoozeFor::Hours4,
        SnoozeFor::TomorrowMorning,
    ];

    pub fn parse(s: &str) -> Result<Self, Error> {
        SnoozeFor::ALL
            .into_iter()
            .find(|c| c.as_str() == s.trim())
            .ok_or_else(|| Error::invalid("for", "must be 15m, 1h, 4h or tomorrow"))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SnoozeFor::Minutes15 => "15m",
            SnoozeFor::Hour1 => "1h",
            SnoozeFor::Hours4 => "4h",
            SnoozeFor::TomorrowMorning => "tomorrow",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            SnoozeFor::Minutes15 => "15 minutes",
            SnoozeFor::Hour1 => "1 hour",
            SnoozeFor::Hours4 => "4 hours",
            SnoozeFor::TomorrowMorning => "until tomorrow 9:00",
        }
    }

    /// When a snooze chosen at `now` by someone in `zone` ends.
    pub fn until(self, now: DateTime<Utc>, zone: Tz) -> DateTime<Utc> {
        match self {
            SnoozeFor::Minutes15 => now + Duration::minutes(15),
            SnoozeFor::Hour1 => now + Duration::hours(1),
            SnoozeFor::Hours4 => now + Duration::hours(4),
            SnoozeFor::TomorrowMorning => {
                let nine = NaiveTime::from_hms_opt(9, 0, 0).unwrap_or_default();
                now.with_timezone(&zone)
                    .date_naive()
                    .succ_opt()
                    .and_then(|day| zone.from_local_datetime(&day.and_time(nine)).earliest())
                    .map(|t| t.with_timezone(&Utc))
                    // 9:00 skipped by a clock change (no zone does that today): a day on.
                    .unwrap_or(now + Duration::days(1))
            }
        }
    }
}

/// A lead's snooze in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Snooze {
    pub until: DateTime<Utc>,
    /// Who snoozed it: a principal's name, or a key's label.
    pub by: String,
    pub reason: Option<String>,
    pub at: DateTime<Utc>,
}

type Row = (i64, String, Option<String>, i64);

fn of_row((until, by, reason, at): Row) -> Snooze {
    Snooze {
        until: ms_to_time(until),
        by,
        reason,
        at: ms_to_time(at),
    }
}

const CURRENT_SQL: &str = "SELECT until_at, by_name, reason, snoozed_at FROM queue_snoozes
     WHERE tenant_id = $1 AND opportunity_id = $2 AND until_at > $3";

/// The snooze in force on opportunity `opp_id` at `now`, if any (its caller checked the
/// opportunity is visible).
pub async fn current(
    engine: &EngineHandle,
    tenant: TenantId,
    opp_id: Uuid,
) -> Result<Option<Snooze>, Error> {
    let now = engine.config().clock.now_ms();
    let found: Option<Row> = on_db!(engine.store(), |db, id, _json| sqlx::query_as(CURRENT_SQL)
        .bind(id(tenant.0))
        .bind(id(opp_id))
        .bind(now)
        .fetch_optional(db)
        .await
        .map_err(ControlError::from)?);
    Ok(found.map(of_row))
}

async fn current_in(
    tx: &mut Tx,
    tenant: TenantId,
    opp_id: Uuid,
    now: i64,
) -> Result<Option<Snooze>, Error> {
    let found: Option<Row> = on_tx!(tx, |db, id, _json| sqlx::query_as(CURRENT_SQL)
        .bind(id(tenant.0))
        .bind(id(opp_id))
        .bind(now)
        .fetch_optional(db)
        .await
        .map_err(ControlError::from)?);
    Ok(found.map(of_row))
}

/// The zone "tomorrow 9:00" is read in: the caller's rep profile's, else UTC.
async fn zone_of(engine: &EngineHandle, who: &Identity, now: DateTime<Utc>) -> Result<Tz, Error> {
    let Some(name) = &who.principal else {
        return Ok(Tz::UTC);
    };
    let rep = reps::get_rep(engine.store(), who.tenant, name, now).await?;
    Ok(rep
        .and_then(|r| r.time_zone.parse::<Tz>().ok())
        .unwrap_or(Tz::UTC))
}

fn entry(action: AuditAction, opp_id: Uuid, reason: Option<&str>) -> Entry<'_> {
    Entry {
        action,
        target_kind: "opportunity",
        target_id: opp_id.to_string(),
        reason,
        outcome: Outcome::Applied,
        before: None,
        after: None,
    }
}

fn json(s: &Option<Snooze>) -> Option<serde_json::Value> {
    s.as_ref().and_then(|s| serde_json::to_value(s).ok())
}

/// Takes an open lead the caller may operate out of the queue for `choice` (one of
/// `SnoozeFor`), replacing any snooze in force. Audited as `snooze`, with the snooze before and
/// after.
pub async fn snooze(
    engine: &EngineHandle,
    who: &Identity,
    id: &str,
    choice: SnoozeFor,
    reason: Option<String>,
) -> Result<Snooze, Error> {
    let tenant = authorize(who, Action::Operate)?;
    let opp_id = visible(engine, who, id).await?;
    let reason = reason
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty());
    check_reason(&reason)?;
    let view = super::opportunities::load(engine, tenant, opp_id).await?;
    if view.stage.is_terminal() {
        return Err(Error::Conflict {
            code: "terminal_stage".into(),
            message: format!("the lead is {}: it is in no queue", view.stage.as_str()),
        });
    }
    let now = engine.config().clock.now();
    let until = choice.until(now, zone_of(engine, who, now).await?);
    let after = Snooze {
        until,
        by: who.actor_name(),
        reason: reason.clone(),
        at: now,
    };
    let mut tx = Tx::begin(engine.store()).await?;
    let before = current_in(&mut tx, tenant, opp_id, now.timestamp_millis()).await?;
    let sql = "INSERT INTO queue_snoozes
                   (tenant_id, opportunity_id, until_at, by_name, reason, snoozed_at)
               VALUES ($1, $2, $3, $4, $5, $6)
               ON CONFLICT (tenant_id, opportunity_id) DO UPDATE SET until_at = excluded.until_at,
                   by_name = excluded.by_name, reason = excluded.reason,
                   snoozed_at = excluded.snoozed_at";
    on_tx!(&mut tx, |db, id, _json| sqlx::query(sql)
        .bind(id(tenant.0))
        .bind(id(opp_id))
        .bind(until.timestamp_millis())
        .bind(&after.by)
        .bind(&after.reason)
        .bind(now.timestamp_millis())
        .execute(db)
        .await
        .map_err(ControlError::from)?
        .rows_affected());
    let e = Entry {
        before: json(&before),
        after: json(&Some(after.clone())),
        ..entry(AuditAction::Snooze, opp_id, reason.as_deref())
    };
    audit::commit(tx, who, e).await?;
    Ok(after)
}

/// Puts a snoozed lead back in the queue now; 409 `not_snoozed` when no snooze is in force.
/// Audited as `unsnooze`, with the snooze it ended.
pub async fn unsnooze(engine: &EngineHandle, who: &Identity, id: &str) -> Result<Snooze, Error> {
    let tenant = authorize(who, Action::Operate)?;
    let opp_id = visible(engine, who, id).await?;
    let now = engine.config().clock.now_ms();
    let mut tx = Tx::begin(engine.store()).await?;
    let Some(before) = current_in(&mut tx, tenant, opp_id, now).await? else {
        return Err(Error::Conflict {
            code: "not_snoozed".into(),
            message: "this lead is not snoozed".into(),
        });
    };
    let sql = "DELETE FROM queue_snoozes WHERE tenant_id = $1 AND opportunity_id = $2";
    on_tx!(&mut tx, |db, id, _json| sqlx::query(sql)
        .bind(id(tenant.0))
        .bind(id(opp_id))
        .execute(db)
        .await
        .map_err(ControlError::from)?
        .rows_affected());
    let e = Entry {
        before: json(&Some(before.clone())),
        ..entry(AuditAction::Unsnooze, opp_id, None)
    };
    audit::commit(tx, who, e).await?;
    Ok(before)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    #[test]
    fn choices_parse_by_name_and_nothing_else() {
        for c in SnoozeFor::ALL {
            assert_eq!(SnoozeFor::parse(c.as_str()).ok(), Some(c));
        }
        assert!(SnoozeFor::parse("forever").is_err());
        assert!(SnoozeFor::parse("").is_err());
    }

    #[test]
    fn tomorrow_morning_is_nine_in_the_reps_zone() {
        let ny: Tz = "America/New_York".parse().unwrap_or(Tz::UTC);
        // 23:30 in New York on 5 March is 04:30 UTC on the 6th: tomorrow is the 6th there.
        let now = at("2026-03-06T04:30:00Z");
        assert_eq!(
            SnoozeFor::TomorrowMorning.until(now, ny),
            at("2026-03-06T14:00:00Z")
        );
        assert_eq!(
            SnoozeFor::TomorrowMorning.until(now, Tz::UTC),
            at("2026-03-07T09:00:00Z")
        );
        assert_eq!(
            SnoozeFor::Minutes15.until(now, ny),
            at("2026-03-06T04:45:00Z")
        );
    }
}
