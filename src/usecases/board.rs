//! What the console lists: the opportunities board (searched, sorted and paged) and a rep's
//! queue (escalated and callback-due leads for me or my team, oldest breach first). The
//! queries live here, not in the handlers; every one is bound to the caller's tenant (the
//! leading column of the indexes it reads) and, for a team-limited caller, to its team.

use chrono::{DateTime, Utc};
use neuronx_supervision::EngineHandle;
use uuid::Uuid;

use super::opportunities::BoardRow;
use super::views::ms_to_time;
use super::{authorize, Error};
use crate::control::{on_db, Action, ControlError, Scope};
use crate::input::{self, Lines};

/// Rows on one page of the board.
pub const PAGE_SIZE: i64 = 50;

/// How the board is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sort {
    /// Newest first.
    #[default]
    Created,
    /// The soonest SLA deadline first; leads without an armed SLA last.
    SlaDue,
}

impl Sort {
    pub fn parse(s: Option<&str>) -> Result<Self, Error> {
        match s.unwrap_or("") {
            "" | "created" => Ok(Sort::Created),
            "sla" => Ok(Sort::SlaDue),
            _ => Err(Error::invalid("sort", "must be created or sla")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Sort::Created => "created",
            Sort::SlaDue => "sla",
        }
    }
}

/// What the board asks for, each field as the browser sent it.
#[derive(Debug, Default, Clone)]
pub struct BoardQuery {
    pub stage: Option<String>,
    pub paused: Option<String>,
    pub team: Option<String>,
    /// A piece of the lead's name, phone or external id.
    pub search: Option<String>,
    pub sort: Sort,
    /// From 1.
    pub page: Option<String>,
}

/// One page of the board, and whether another follows.
pub struct BoardPage {
    pub rows: Vec<BoardRow>,
    pub page: i64,
    pub more: bool,
}

/// `%` and `_` typed by a person are literal, not wildcards.
fn like_pattern(text: &str) -> String {
    let mut out = String::from("%");
    for c in text.trim().to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// The caller's team as the text both databases compare `opportunity_teams.team_id` with,
/// or `""` for the whole tenant.
async fn team_filter(
    engine: &EngineHandle,
    who: &crate::control::keys::Identity,
    asked: Option<&str>,
) -> Result<String, Error> {
    let store = engine.store();
    let team = match (Scope::of(who).team(), asked.filter(|t| !t.is_empty())) {
        (Some(own), _) => Some(own),
        (None, Some(name)) => Some(
            crate::control::access::find_team(store, who.tenant, name)
                .await?
                .ok_or_else(|| Error::invalid("team", format!("no team named {name:?}")))?
                .id,
        ),
        (None, None) => None,
    };
    Ok(team.map(|t| t.to_string()).unwrap_or_default())
}

/// `($n = '' OR <opportunity column> IN <the team's opportunities>)`.
pub(crate) fn in_team(column: &str, param: &str) -> String {
    format!(
        "({param} = '' OR {column} IN (SELECT ot.opportunity_id FROM opportunity_teams ot \
         WHERE ot.tenant_id = $1 AND CAST(ot.team_id AS TEXT) = {param}))"
    )
}

/// The board's SQL: PostgreSQL and SQLite (3.38+) read JSON with the same `->`/`->>`.
fn board_sql(sort: Sort) -> String {
    let order = match sort {
        Sort::Created => "a.created_at DESC, a.id DESC",
        Sort::SlaDue => "sla_due ASC NULLS LAST, a.created_at DESC, a.id DESC",
    };
    format!(
        "SELECT CAST(a.id AS TEXT) AS id,
                (SELECT MIN(t.due_at) FROM timers t WHERE t.tenant_id = a.tenant_id
                   AND t.kind = a.kind AND t.actor_id = a.id AND t.name LIKE '%sla') AS sla_due,
                (SELECT s.until_at FROM queue_snoozes s WHERE s.tenant_id = a.tenant_id
                   AND s.opportunity_id = a.id AND s.until_at > $9) AS snoozed_until
         FROM actors a
         WHERE a.tenant_id = $1 AND a.kind = 'opportunity'
           AND ($2 = '' OR a.status = $2)
           AND ($3 = '' OR a.paused = ($3 = 'true'))
           AND {team}
           AND ($5 = '' OR LOWER(a.state->'contact'->>'name') LIKE $5 ESCAPE '\\'
                OR a.state->'contact'->>'phone' LIKE $6 ESCAPE '\\'
                OR LOWER(a.state->>'external_id') LIKE $5 ESCAPE '\\')
         ORDER BY {order}
         LIMIT $7 OFFSET $8",
        team = in_team("a.id", "$4"),
    )
}

/// One page of the board: filtered, searched, sorted.
pub async fn board(
    engine: &EngineHandle,
    who: &crate::control::keys::Identity,
    q: BoardQuery,
) -> Result<BoardPage, Error> {
    let tenant = authorize(who, Action::Read)?;
    let stage = match q.stage.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => s
            .parse::<neuronx_actors::domain::opportunity::Stage>()
            .map_err(|e| Error::invalid("stage", e.to_string()))?
            .as_str()
            .to_owned(),
        None => String::new(),
    };
    let paused = match q.paused.as_deref().unwrap_or("") {
        p @ ("" | "true" | "false") => p.to_owned(),
        _ => return Err(Error::invalid("paused", "must be true or false")),
    };
    let search = q.search.as_deref().unwrap_or("").trim().to_owned();
    input::check("q", &search, Lines::One, 0, 200)?;
    let (name_like, phone_like) = if search.is_empty() {
        (String::new(), String::new())
    } else {
        // A phone is stored in E.164: search by its digits, whatever the punctuation typed.
        let digits: String = search.chars().filter(char::is_ascii_digit).collect();
        let phone = if digits.is_empty() {
            // Matches nothing: a pattern no phone has.
            "\u{1}".to_owned()
        } else {
            like_pattern(&digits)
        };
        (like_pattern(&search), phone)
    };
    let page = match q.page.as_deref().filter(|p| !p.is_empty()) {
        None => 1,
        Some(p) => p
            .parse::<i64>()
            .ok()
            .filter(|p| (1..=10_000).contains(p))
            .ok_or_else(|| Error::invalid("page", "must be a whole number from 1 to 10000"))?,
    };
    let team = team_filter(engine, who, q.team.as_deref()).await?;
    let store = engine.store();
    let sql = board_sql(q.sort);
    let now = engine.config().clock.now_ms();
    let found: Vec<(String, Option<i64>, Option<i64>)> =
        on_db!(store, |db, id, _json| sqlx::query_as(&sql)
            .bind(id(tenant.0))
            .bind(&stage)
            .bind(&paused)
            .bind(&team)
            .bind(&name_like)
            .bind(&phone_like)
            .bind(PAGE_SIZE + 1)
            .bind((page - 1) * PAGE_SIZE)
            .bind(now)
            .fetch_all(db)
            .await
            .map_err(ControlError::from)?);
    let more = found.len() as i64 > PAGE_SIZE;
    let mut rows = Vec::with_capacity(found.len());
    for (id, _, snoozed) in found.into_iter().take(PAGE_SIZE as usize) {
        let Ok(id) = Uuid::parse_str(&id) else {
            continue;
        };
        rows.push(board_row(engine, tenant, id, snoozed).await?);
    }
    Ok(BoardPage { rows, page, more })
}

/// What one row shows: the opportunity, its next SLA deadline, its last event and the snooze
/// in force, if any (read with the row's query).
async fn board_row(
    engine: &EngineHandle,
    tenant: neuronx_supervision::TenantId,
    id: Uuid,
    snoozed_until: Option<i64>,
) -> Result<BoardRow, Error> {
    let mut view = super::opportunities::load(engine, tenant, id).await?;
    // The row shows the next SLA deadline, not the timers themselves.
    let next_sla = std::mem::take(&mut view.timers)
        .into_iter()
        .filter(|t| t.name.ends_with("_sla"))
        .min_by_key(|t| t.due_at);
    let store = engine.store();
    let last_event = crate::control::sessions::last_event(store, tenant, id)
        .await?
        .map(|(kind, reason, _)| (kind, reason));
    Ok(BoardRow {
        view,
        next_sla,
        last_event,
        snoozed_until: snoozed_until.map(ms_to_time),
    })
}

/// Why a lead is in a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Breach {
    /// Escalated (an SLA was missed, or an operator escalated it).
    Escalated,
    /// A callback is owed (the lead answered and reached nobody); `at` is when it falls due.
    CallbackDue,
}

impl Breach {
    pub fn as_str(self) -> &'static str {
        match self {
            Breach::Escalated => "escalated",
            Breach::CallbackDue => "callback due",
        }
    }
}

/// One lead in a queue.
pub struct QueueItem {
    pub row: BoardRow,
    pub breach: Breach,
    /// When it breached (or, for a callback not yet overdue, when it will).
    pub since: DateTime<Utc>,
    pub mine: bool,
}

/// The queue, ordered and cut in SQL: the breach time is computed per row (the last SLA
/// escalation, or the creation for a lead escalated by hand; the callback's due time) so that
/// the cap keeps the oldest breaches, not the oldest leads. A lead snoozed until later (`$4`
/// is the clock's now) is left out; `$5` narrows a team-limited key to its team.
fn queue_sql() -> String {
    format!(
        "SELECT q.id, q.assignee, q.since, q.escalated FROM (
           SELECT CAST(a.id AS TEXT) AS id,
                  a.state->>'assignee' AS assignee,
                  CASE WHEN CAST(a.state->'escalated' AS TEXT) = 'true'
                       THEN COALESCE((SELECT MAX(tl.at) FROM timeline tl
                                      WHERE tl.tenant_id = a.tenant_id AND tl.kind = a.kind
                                        AND tl.actor_id = a.id
                                        AND tl.entry_kind = 'sla_escalated'),
                                     a.created_at)
                       ELSE (SELECT MIN(t.due_at) FROM timers t WHERE t.tenant_id = a.tenant_id
                               AND t.kind = a.kind AND t.actor_id = a.id
                               AND t.name = 'callback_sla')
                  END AS since,
                  CAST(a.state->'escalated' AS TEXT) AS escalated
           FROM actors a
           WHERE a.tenant_id = $1 AND a.kind = 'opportunity'
             AND a.status NOT IN ('won', 'lost', 'do_not_contact')
             AND (($2 <> '' AND a.state->>'assignee' = $2)
                  OR ($3 <> '' AND a.id IN (SELECT ot.opportunity_id FROM opportunity_teams ot
                         WHERE ot.tenant_id = $1 AND CAST(ot.team_id AS TEXT) = $3))
                  OR ($2 = '' AND $3 = ''))
             AND NOT EXISTS (SELECT 1 FROM queue_snoozes s WHERE s.tenant_id = a.tenant_id
                               AND s.opportunity_id = a.id AND s.until_at > $4)
             AND {team}
         ) q
         WHERE q.since IS NOT NULL
         ORDER BY q.since, q.id
         LIMIT {QUEUE_CAP}",
        team = in_team("a.id", "$5"),
    )
}

/// The most leads a queue shows: the oldest breaches.
pub const QUEUE_CAP: i64 = 500;

type QueueRow = (String, Option<String>, Option<i64>, Option<String>);

/// The caller's queue: open leads that are escalated or owed a callback, assigned to the
/// caller's principal or bound to its team, and not snoozed, oldest breach first. A key of no
/// principal and no team (an owner's, say) sees every such lead of the tenant. At most
/// `QUEUE_CAP`.
pub async fn queue(
    engine: &EngineHandle,
    who: &crate::control::keys::Identity,
) -> Result<Vec<QueueItem>, Error> {
    let tenant = authorize(who, Action::Read)?;
    let me = who.principal.clone().unwrap_or_default();
    let team = who
        .team
        .as_ref()
        .map(|t| t.id.to_string())
        .unwrap_or_default();
    // A team-limited key sees its team's leads only, even those assigned to it.
    let scope = Scope::of(who)
        .team()
        .map(|t| t.to_string())
        .unwrap_or_default();
    let now = engine.config().clock.now_ms();
    let store = engine.store();
    let sql = queue_sql();
    let found: Vec<QueueRow> = on_db!(store, |db, id, _json| sqlx::query_as(&sql)
        .bind(id(tenant.0))
        .bind(&me)
        .bind(&team)
        .bind(now)
        .bind(&scope)
        .fetch_all(db)
        .await
        .map_err(ControlError::from)?);
    let mut items = Vec::with_capacity(found.len());
    for (id, assignee, since, escalated) in found {
        let (Ok(id), Some(since)) = (Uuid::parse_str(&id), since) else {
            continue;
        };
        let breach = if escalated.as_deref() == Some("true") {
            Breach::Escalated
        } else {
            Breach::CallbackDue
        };
        items.push(QueueItem {
            // The queue leaves snoozed leads out.
            row: board_row(engine, tenant, id, None).await?,
            breach,
            since: ms_to_time(since),
            mine: !me.is_empty() && assignee.as_deref() == Some(me.as_str()),
        });
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_wildcards_are_literal() {
        assert_eq!(like_pattern(" Ana_%\\ "), "%ana\\_\\%\\\\%");
    }

    #[test]
    fn sorts_parse_by_name() {
        assert_eq!(Sort::parse(None).unwrap(), Sort::Created);
        assert_eq!(Sort::parse(Some("sla")).unwrap(), Sort::SlaDue);
        assert!(Sort::parse(Some("x")).is_err());
    }
}
