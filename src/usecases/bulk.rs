//! Bulk pause and resume by filter (team, stage, playbook, paused): a dry run counts what would
//! change; a real run acts on each opportunity like the single commands do, with one audit
//! entry per opportunity.

use std::collections::BTreeMap;

use neuronx_actors::domain::opportunity::{OppInput, Stage};
use neuronx_actors::domain::playbook::Playbook;
use neuronx_actors::opportunity as opp;
use neuronx_supervision::store::ListQuery;
use neuronx_supervision::EngineHandle;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::commands::{acting_as, check_reason, run};
use super::views::Applied;
use super::{authorize, Error};
use crate::control::access;
use crate::control::audit::AuditAction;
use crate::control::keys::Identity;
use crate::control::scope::requested_team;
use crate::control::Action;

/// At most this many opportunities per bulk request: a larger set is narrowed by filter.
pub const BULK_LIMIT: usize = 5_000;

#[derive(Debug, Default)]
pub struct BulkFilter {
    pub team: Option<String>,
    pub stage: Option<String>,
    pub playbook: Option<String>,
    pub paused: Option<bool>,
}

#[derive(Debug, Default)]
pub struct BulkRequest {
    pub filter: BulkFilter,
    /// Count what would change, change nothing. Defaults to true: a bulk action is confirmed
    /// by asking again with `dry_run: false`.
    pub dry_run: Option<bool>,
    pub operator: Option<String>,
    pub reason: Option<String>,
}

/// What a bulk request matched and, when it acted, how each ended (the counts are absent on a
/// dry run).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BulkOutcome {
    pub dry_run: bool,
    /// Opportunities the filter matched that the action would change.
    pub matched: usize,
    /// Applied here.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub applied: Option<usize>,
    /// Durable; applied by the instance that owns the opportunity.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub accepted: Option<usize>,
    /// Refused by the opportunity's rules (already paused, say).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub rejected: Option<usize>,
}

async fn matching(
    engine: &EngineHandle,
    playbooks: &BTreeMap<String, Playbook>,
    who: &Identity,
    filter: &BulkFilter,
    want_paused: bool,
) -> Result<Vec<Uuid>, Error> {
    let tenant = who.tenant;
    let store = engine.store();
    let stage = filter
        .stage
        .as_deref()
        .map(|s| {
            s.parse::<Stage>()
                .map(|st| st.as_str().to_owned())
                .map_err(|e| Error::invalid("filter.stage", e.to_string()))
        })
        .transpose()?;
    if let Some(p) = &filter.playbook {
        if !playbooks.contains_key(p) {
            return Err(Error::invalid(
                "filter.playbook",
                format!("unknown playbook {p:?}"),
            ));
        }
    }
    let team = match requested_team(who, "filter.team", filter.team.as_deref())? {
        Some(_) if who.team.is_some() => who.team.as_ref().map(|own| own.id),
        Some(name) => Some(
            access::require_team(store, tenant, "filter.team", name)
                .await?
                .id,
        ),
        None => None,
    };
    let members = match team {
        Some(t) => Some(access::opportunities_of(store, tenant, t).await?),
        None => None,
    };
    // Only those the action would change: pausing skips the paused, resuming the running.
    if filter.paused.is_some_and(|p| p != want_paused) {
        return Ok(Vec::new());
    }
    let mut found = Vec::new();
    let mut after = None;
    loop {
        let rows = store
            .list_actors(&ListQuery {
                tenant,
                kind: opp::KIND.as_str().into(),
                status: stage.clone(),
                paused: Some(want_paused),
                after,
                limit: 500,
            })
            .await?;
        let last = rows.last().map(|r| (r.created_at_ms, r.key.id));
        for r in &rows {
            if members.as_ref().is_some_and(|m| !m.contains(&r.key.id)) {
                continue;
            }
            if let Some(p) = &filter.playbook {
                if r.state.get("playbook").and_then(Value::as_str) != Some(p) {
                    continue;
                }
            }
            found.push(r.key.id);
        }
        if found.len() > BULK_LIMIT {
            return Err(Error::invalid(
                "filter",
                format!("matches more than {BULK_LIMIT} opportunities; narrow it"),
            ));
        }
        match last {
            Some(l) if rows.len() == 500 => after = Some(l),
            _ => return Ok(found),
        }
    }
}

/// Pauses (`pause`) or resumes every opportunity the filter matches, or counts them.
pub async fn bulk(
    engine: &EngineHandle,
    playbooks: &BTreeMap<String, Playbook>,
    who: &Identity,
    req: BulkRequest,
    pause: bool,
) -> Result<BulkOutcome, Error> {
    authorize(who, Action::Operate)?;
    check_reason(&req.reason)?;
    let by = acting_as(who, req.operator.clone())?;
    // Pausing selects running opportunities, resuming paused ones.
    let ids = matching(engine, playbooks, who, &req.filter, !pause).await?;
    if req.dry_run.unwrap_or(true) {
        return Ok(BulkOutcome {
            dry_run: true,
            matched: ids.len(),
            applied: None,
            accepted: None,
            rejected: None,
        });
    }
    let action = if pause {
        AuditAction::BulkPause
    } else {
        AuditAction::BulkResume
    };
    let (mut applied, mut accepted, mut rejected) = (0, 0, 0);
    for id in &ids {
        let input = if pause {
            OppInput::Pause {
                by: by.clone(),
                reason: req.reason.clone(),
                hang_up: false,
            }
        } else {
            OppInput::Resume { by: by.clone() }
        };
        match run(engine, who, *id, action, input).await {
            Ok(Applied::Accepted(_)) => accepted += 1,
            Ok(Applied::Done(_)) => applied += 1,
            Err(Error::Conflict { .. }) => rejected += 1,
            Err(e) => return Err(e),
        }
    }
    Ok(BulkOutcome {
        dry_run: false,
        matched: ids.len(),
        applied: Some(applied),
        accepted: Some(accepted),
        rejected: Some(rejected),
    })
}
