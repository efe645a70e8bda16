//! Operator commands on one opportunity (pause, resume, reassign, escalate, hand back, cancel a
//! timer): each is an input submitted like any other, then audited with the opportunity before
//! and after (ADR 0021). The API's routes and the console's buttons both come here.

use neuronx_actors::domain::opportunity::{OppInput, OppTimer, Opportunity, Stage};
use neuronx_actors::opportunity as opp;
use neuronx_supervision::{EngineHandle, SubmitOutcome};
use uuid::Uuid;

use super::opportunities::load;
use super::views::{Accepted, Applied};
use super::{authorize, dead_lettered, submit, visible, Error};
use crate::control::access;
use crate::control::audit::{self, AuditAction, Entry, Outcome};
use crate::control::keys::Identity;
use crate::control::Action;
use crate::input::{self, Lines};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Pause,
    Resume,
    Reassign,
    Escalate,
    /// Hands a conversation a person took over back to the playbook's automatic texts.
    HandBack,
}

impl Command {
    fn audit(self) -> AuditAction {
        match self {
            Command::Pause => AuditAction::Pause,
            Command::Resume => AuditAction::Resume,
            Command::Reassign => AuditAction::Reassign,
            Command::Escalate => AuditAction::Escalate,
            Command::HandBack => AuditAction::HandBack,
        }
    }
}

/// A command's free fields, as the caller wrote them.
#[derive(Debug, Clone, Default)]
pub struct CommandFields {
    /// Who acts, for keys that belong to no principal (automation acting for a person); a
    /// principal's key always acts as that principal.
    pub operator: Option<String>,
    pub reason: Option<String>,
    pub assignee: Option<String>,
    /// Pause only: also hang up the opportunity's live call.
    pub hang_up: bool,
}

/// The name the timeline shows as `operator:<name>`.
pub fn acting_as(who: &Identity, named: Option<String>) -> Result<String, Error> {
    if let Some(principal) = &who.principal {
        return match named {
            Some(n) if n.trim() != principal => Err(Error::invalid(
                "operator",
                format!("this key acts as {principal:?} and cannot name another operator"),
            )),
            _ => Ok(principal.clone()),
        };
    }
    let by = named.unwrap_or_else(|| who.actor_name());
    input::check("operator", &by, Lines::One, 1, 200)?;
    Ok(by.trim().to_owned())
}

/// A reason may span lines (the console's text area), up to 2,000 characters.
pub fn check_reason(reason: &Option<String>) -> Result<(), Error> {
    if let Some(r) = reason {
        input::check("reason", r, Lines::Many, 0, 2000)?;
    }
    Ok(())
}

fn command_input(cmd: Command, by: String, f: CommandFields) -> Result<OppInput, Error> {
    check_reason(&f.reason)?;
    Ok(match cmd {
        Command::Pause => OppInput::Pause {
            by,
            reason: f.reason,
            hang_up: f.hang_up,
        },
        Command::Resume => OppInput::Resume { by },
        Command::Escalate => OppInput::Escalate {
            by,
            reason: f.reason,
        },
        Command::HandBack => OppInput::HandBack {
            by,
            reason: f.reason,
        },
        Command::Reassign => {
            let assignee = f
                .assignee
                .ok_or_else(|| Error::invalid("assignee", "required, 1 to 200 characters"))?;
            input::check("assignee", &assignee, Lines::One, 1, 200)?;
            let reason = f
                .reason
                .filter(|r| !r.trim().is_empty())
                .ok_or_else(|| Error::invalid("reason", "required for a reassignment"))?;
            OppInput::Reassign {
                assignee: assignee.trim().to_owned(),
                by,
                reason,
            }
        }
    })
}

fn reason_of(input: &OppInput) -> Option<String> {
    match input {
        OppInput::Pause { reason, .. }
        | OppInput::Escalate { reason, .. }
        | OppInput::HandBack { reason, .. }
        | OppInput::CancelTimer { reason, .. } => reason.clone(),
        OppInput::Reassign { reason, .. } => Some(reason.clone()),
        OppInput::SetStage { reason, .. } => reason.clone(),
        _ => None,
    }
}

/// Submits `input` to one opportunity the caller may operate, audits it (refusals too) and
/// answers the opportunity after.
pub(crate) async fn run(
    engine: &EngineHandle,
    who: &Identity,
    id: Uuid,
    action: AuditAction,
    input: OppInput,
) -> Result<Applied, Error> {
    run_once(engine, who, id, action, input, None).await
}

/// [`run`], with the inbox's dedupe key: a second submit of the same key changes nothing, is
/// audited `duplicate` and answers 409 `already_submitted` (it says nothing of what the first
/// did: that may have been refused, and the person must not read success).
pub(crate) async fn run_once(
    engine: &EngineHandle,
    who: &Identity,
    id: Uuid,
    action: AuditAction,
    input: OppInput,
    dedupe: Option<String>,
) -> Result<Applied, Error> {
    let tenant = who.tenant;
    let before = load(engine, tenant, id).await?;
    let reason = reason_of(&input);
    // Logged before it is submitted: a crash after the engine commits cannot lose the entry.
    let entry = audit::begin(
        engine.store(),
        who,
        Entry {
            action,
            target_kind: "opportunity",
            target_id: id.to_string(),
            reason: reason.as_deref(),
            outcome: Outcome::Pending,
            before: serde_json::to_value(&before).ok(),
            after: None,
        },
    )
    .await?;
    let dedupe_given = dedupe.is_some();
    let outcome = submit(engine, tenant, id, &input, dedupe).await?;
    let (result, audited) = match outcome {
        SubmitOutcome::Duplicate if dedupe_given => (
            Err(Error::Conflict {
                code: "already_submitted".into(),
                message: "this was already submitted, and nothing more was done; \
                          reload the page to send another"
                    .into(),
            }),
            (Outcome::Duplicate, None),
        ),
        SubmitOutcome::Applied(_) | SubmitOutcome::Duplicate => {
            let after = load(engine, tenant, id).await?;
            let json = serde_json::to_value(&after).ok();
            (Ok(Applied::Done(Box::new(after))), (Outcome::Applied, json))
        }
        SubmitOutcome::Accepted => (
            Ok(Applied::Accepted(Accepted::new(id))),
            (Outcome::Accepted, None),
        ),
        SubmitOutcome::Rejected(r) => (
            Err(Error::Conflict {
                code: r.code,
                message: r.message,
            }),
            (Outcome::Rejected, None),
        ),
        SubmitOutcome::DeadLettered(reason) => {
            (Err(dead_lettered(&reason)), (Outcome::Rejected, None))
        }
    };
    audit::settle(engine.store(), entry, audited.0, audited.1).await?;
    result
}

/// Pause, resume, reassign or escalate one opportunity.
pub async fn command(
    engine: &EngineHandle,
    who: &Identity,
    id: &str,
    cmd: Command,
    f: CommandFields,
) -> Result<Applied, Error> {
    let tenant = authorize(who, Action::Operate)?;
    let id = visible(engine, who, id).await?;
    let by = acting_as(who, f.operator.clone())?;
    if let (Command::Reassign, Some(assignee)) = (cmd, &f.assignee) {
        // Reassignment keeps the team binding: only to a member of the opportunity's team.
        let store = engine.store();
        if let Some(team_id) = access::team_of(store, tenant, id).await? {
            let teams = access::list_teams(store, tenant).await?;
            if let Some(team) = teams.iter().find(|t| t.id == team_id) {
                access::require_member(store, tenant, team, "assignee", assignee).await?;
            }
        }
    }
    let input = command_input(cmd, by, f)?;
    run(engine, who, id, cmd.audit(), input).await
}

/// Cancels one armed or held timer; any other name is not found.
pub async fn cancel_timer(
    engine: &EngineHandle,
    who: &Identity,
    id: &str,
    name: &str,
    operator: Option<String>,
    reason: Option<String>,
) -> Result<Applied, Error> {
    let tenant = authorize(who, Action::Operate)?;
    let id = visible(engine, who, id).await?;
    let timer: OppTimer = name.parse().map_err(|_| Error::NotFound("timer"))?;
    let store = engine.store();
    let armed = store
        .timers_of(tenant, opp::KIND.as_str(), id)
        .await?
        .iter()
        .any(|t| t.name == timer.as_str());
    let held = match store.get_actor(tenant, opp::KIND.as_str(), id).await? {
        Some(row) => serde_json::from_value::<Opportunity>(row.state)
            .map(|o| o.held_timers.contains(&timer))
            .unwrap_or(false),
        None => false,
    };
    if !armed && !held {
        return Err(Error::NotFound("timer"));
    }
    check_reason(&reason)?;
    let by = acting_as(who, operator)?;
    let input = OppInput::CancelTimer { timer, by, reason };
    run(engine, who, id, AuditAction::CancelTimer, input).await
}

/// Moves the opportunity to `stage` (booked, won, lost, nurture, or back to contacting after a
/// START) for a stated reason; the stage graph decides what is legal, and the transition
/// refuses reopening a lead that is still opted out.
pub async fn set_stage(
    engine: &EngineHandle,
    who: &Identity,
    id: &str,
    stage: &str,
    operator: Option<String>,
    reason: Option<String>,
) -> Result<Applied, Error> {
    authorize(who, Action::Operate)?;
    let id = visible(engine, who, id).await?;
    let stage: Stage =
        stage
            .parse()
            .map_err(|e: neuronx_actors::domain::opportunity::Rejection| {
                Error::invalid("stage", e.to_string())
            })?;
    let reason = reason
        .filter(|r| !r.trim().is_empty())
        .ok_or_else(|| Error::invalid("reason", "required when setting a stage"))?;
    input::check("reason", &reason, Lines::Many, 1, 2000)?;
    let by = acting_as(who, operator)?;
    let input = OppInput::SetStage {
        stage,
        by,
        reason: Some(reason),
    };
    run(engine, who, id, AuditAction::SetStage, input).await
}
