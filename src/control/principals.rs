//! Deactivating and reactivating a principal (issue #14, ADR 0042). Deactivation is one
//! transaction over the control plane's rows: the principal is marked inactive, its API keys are
//! revoked, its console sessions and unused sign-in links end, and its rep goes offline (so it
//! leaves every rotation; `reps::offer` also never offers an inactive principal). Its open
//! opportunities live in the engine, not in these tables: the caller reassigns them after the
//! commit, each through the reassign path (`usecases::principals`), to the next active operator
//! of the opportunity's team (the team's own round robin), or to `unassigned` when the team has
//! none, so the team's queue sees them.

use neuronx_actors::domain::opportunity::Stage;
use neuronx_actors::opportunity as opp;
use neuronx_supervision::store::ListQuery;
use neuronx_supervision::{Store, TenantId};
use serde::Serialize;
use uuid::Uuid;

use neuronx_actors::domain::opportunity::OppInput;
use neuronx_supervision::store::NewInput;
use neuronx_supervision::ShardId;
use serde_json::Value;

use super::access::{self, Principal};
use super::audit::{self, AuditAction, Entry, Outcome};
use super::keys::Identity;
use super::sessions;
use super::tx::{on_tx, Tx};
use super::{now_ms, ControlError};

/// The assignee of an opportunity nobody holds: the team's queue.
pub const UNASSIGNED: &str = "unassigned";

/// What a deactivation changed, besides the principal itself.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct Revoked {
    /// API keys of the principal revoked now (keys revoked before are not counted).
    pub keys_revoked: u64,
    /// Console sessions ended: those its sign-in links opened and those opened with its keys.
    pub sessions_ended: u64,
    /// Whether it had a rep, now offline.
    pub rep_offline: bool,
}

/// Marks `principal` inactive inside `tx` and revokes what it holds. Deactivating an inactive
/// principal keeps its first time and revokes whatever it was given since (nothing, normally).
pub async fn deactivate(
    tx: &mut Tx,
    tenant: TenantId,
    principal: &Principal,
) -> Result<Revoked, ControlError> {
    let now = now_ms();
    let stamp = |sql: &'static str| (sql, tenant, principal.id, now);
    stamped(
        tx,
        stamp(
            "UPDATE principals SET deactivated_at = $3
         WHERE tenant_id = $1 AND id = $2 AND deactivated_at IS NULL",
        ),
    )
    .await?;
    let keys_revoked = stamped(
        tx,
        stamp(
            "UPDATE api_keys SET revoked_at = $3
         WHERE tenant_id = $1 AND principal_id = $2 AND revoked_at IS NULL",
        ),
    )
    .await?;
    let sessions_ended = sessions::close_all_of(tx, tenant, principal.id).await?;
    stamped(
        tx,
        stamp(
            "UPDATE magic_links SET used_at = $3
         WHERE tenant_id = $1 AND principal_id = $2 AND used_at IS NULL",
        ),
    )
    .await?;
    let reps = stamped(
        tx,
        stamp(
            "UPDATE reps SET status = 'offline', updated_at = $3
         WHERE tenant_id = $1 AND principal_id = $2",
        ),
    )
    .await?;
    Ok(Revoked {
        keys_revoked,
        sessions_ended,
        rep_offline: reps > 0,
    })
}

/// Marks `principal` active again inside `tx`. Its keys stay revoked (new ones are issued) and
/// its rep stays offline until it (or an admin) sets it available.
pub async fn activate(
    tx: &mut Tx,
    tenant: TenantId,
    principal: &Principal,
) -> Result<(), ControlError> {
    let sql = "UPDATE principals SET deactivated_at = NULL WHERE tenant_id = $1 AND id = $2";
    on_tx!(tx, |db, id, _json| sqlx::query(sql)
        .bind(id(tenant.0))
        .bind(id(principal.id))
        .execute(db)
        .await?
        .rows_affected());
    Ok(())
}

/// The principal with id `id` as it stands (after a change's commit).
pub async fn by_id(store: &Store, tenant: TenantId, id: Uuid) -> Result<Principal, ControlError> {
    access::list_principals(store, tenant, None)
        .await?
        .into_iter()
        .find(|p| p.id == id)
        .ok_or(ControlError::NotFound("principal"))
}

/// An open opportunity of a principal and the team it is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub opportunity: Uuid,
    pub team: Option<Uuid>,
    /// The opportunity's shard, for an input queued without the engine (the CLI).
    pub shard: ShardId,
}

/// The opportunities assigned to `name` that are not closed (won, lost, do-not-contact),
/// oldest first, read page by page.
pub async fn open_opportunities_of(
    store: &Store,
    tenant: TenantId,
    name: &str,
) -> Result<Vec<Held>, ControlError> {
    let mut held = Vec::new();
    let mut after = None;
    loop {
        let rows = store
            .list_actors(&ListQuery {
                tenant,
                kind: opp::KIND.as_str().into(),
                status: None,
                paused: None,
                after,
                limit: 500,
            })
            .await?;
        for row in &rows {
            let assignee = row.state.get("assignee").and_then(|a| a.as_str());
            let closed = row
                .status
                .parse::<Stage>()
                .map(Stage::is_terminal)
                .unwrap_or(false);
            if assignee == Some(name) && !closed {
                held.push(Held {
                    opportunity: row.key.id,
                    team: access::team_of(store, tenant, row.key.id).await?,
                    shard: row.shard,
                });
            }
        }
        match rows.last() {
            Some(last) if rows.len() == 500 => after = Some((last.created_at_ms, last.key.id)),
            _ => break,
        }
    }
    Ok(held)
}

/// Who takes an opportunity of a deactivated principal: the next active operator of its team
/// in the team's round robin (the rule new leads follow), else `unassigned`. `team`: the
/// opportunity's team, or else the principal's.
pub async fn successor(
    store: &Store,
    tenant: TenantId,
    team: Option<Uuid>,
) -> Result<String, ControlError> {
    Ok(match team {
        Some(team) => access::next_assignee(store, tenant, team).await?,
        None => None,
    }
    .unwrap_or_else(|| UNASSIGNED.to_owned()))
}

fn json<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// `deactivate` in a transaction of its own with its `principal_deactivate` entry (the
/// principal before, and after with what was revoked): the API's and the CLI's common part.
pub async fn deactivate_logged(
    store: &Store,
    who: &Identity,
    p: &Principal,
    reason: Option<&str>,
) -> Result<Revoked, ControlError> {
    let mut tx = Tx::begin(store).await?;
    let revoked = deactivate(&mut tx, who.tenant, p).await?;
    let after = Principal {
        active: false,
        deactivated_at: p.deactivated_at.or_else(|| Some(chrono::Utc::now())),
        ..p.clone()
    };
    let mut after = json(&after);
    if let (Value::Object(m), Value::Object(r)) = (&mut after, json(&revoked)) {
        m.extend(r);
    }
    audit::commit(
        tx,
        who,
        Entry {
            action: AuditAction::PrincipalDeactivate,
            target_kind: "principal",
            target_id: p.id.to_string(),
            reason,
            outcome: Outcome::Applied,
            before: Some(json(p)),
            after: Some(after),
        },
    )
    .await?;
    Ok(revoked)
}

/// `activate` in a transaction of its own with its `principal_activate` entry.
pub async fn activate_logged(
    store: &Store,
    who: &Identity,
    p: &Principal,
) -> Result<(), ControlError> {
    let mut tx = Tx::begin(store).await?;
    activate(&mut tx, who.tenant, p).await?;
    let after = Principal {
        active: true,
        deactivated_at: None,
        ..p.clone()
    };
    audit::commit(
        tx,
        who,
        Entry {
            action: AuditAction::PrincipalActivate,
            target_kind: "principal",
            target_id: p.id.to_string(),
            reason: None,
            outcome: Outcome::Applied,
            before: Some(json(p)),
            after: Some(json(&after)),
        },
    )
    .await
}

/// The reason a reassignment after a deactivation gives.
pub fn reassign_reason(p: &Principal) -> String {
    format!("{} was deactivated", p.name)
}

/// Queues the reassignment of `held` to `to` in the opportunity's inbox, for whichever instance
/// holds it to apply (the CLI has no engine), with a `reassign` entry saying it was accepted.
pub async fn queue_reassign(
    store: &Store,
    who: &Identity,
    p: &Principal,
    held: &Held,
    to: &str,
) -> Result<(), ControlError> {
    let reason = reassign_reason(p);
    let input = OppInput::Reassign {
        assignee: to.to_owned(),
        by: who.actor_name(),
        reason: reason.clone(),
    };
    let key = opp::key(who.tenant, held.opportunity);
    store
        .insert_inbox(&[NewInput {
            key,
            shard: held.shard,
            dedupe_key: Uuid::new_v4().to_string(),
            remember: false,
            input: json(&input),
            reply: false,
            notify: true,
        }])
        .await?;
    audit::record(
        store,
        who,
        Entry {
            action: AuditAction::Reassign,
            target_kind: "opportunity",
            target_id: held.opportunity.to_string(),
            reason: Some(&reason),
            outcome: Outcome::Accepted,
            before: None,
            after: Some(serde_json::json!({"assignee": to})),
        },
    )
    .await
}

/// Runs one `UPDATE` of the principal's rows that binds `$1` tenant, `$2` principal, `$3` now;
/// answers the rows it changed.
async fn stamped(
    tx: &mut Tx,
    (sql, tenant, principal, now): (&'static str, TenantId, Uuid, i64),
) -> Result<u64, ControlError> {
    Ok(on_tx!(tx, |db, id, _json| sqlx::query(sql)
        .bind(id(tenant.0))
        .bind(id(principal))
        .bind(now)
        .execute(&mut *db)
        .await?
        .rows_affected()))
}
