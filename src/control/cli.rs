//! `neuronx tenant ...`: tenants, their teams, principals and API keys from the command line.
//! Each prints one JSON document on success; a bad argument or unknown name exits non-zero
//! with a message saying which. Works while `serve` runs (it only writes rows).

use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use neuronx_supervision::{Store, TenantId};
use serde_json::json;
use uuid::Uuid;

use super::access::{self, NewPrincipal, PrincipalKind};
use super::audit::{self, AuditAction, Entry, Outcome};
use super::keys::{self, NewKey};
use super::principals;
use super::{on_db, ControlError, Role, Scope, Tx};

#[derive(Subcommand)]
pub enum TenantCommand {
    /// Create a tenant and print its id and first API key (an owner's) as JSON.
    Create {
        /// The tenant's name.
        name: String,
    },
    /// API keys: create (prints the secret once), list, revoke.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Teams: create, list.
    Team {
        #[command(subcommand)]
        command: TeamCommand,
    },
    /// Principals (users and service accounts): create, list, deactivate, activate.
    Principal {
        #[command(subcommand)]
        command: PrincipalCommand,
    },
}

#[derive(Args)]
pub struct TenantArg {
    /// The tenant's id, as `tenant create` printed it.
    #[arg(long, value_name = "ID")]
    tenant: Uuid,
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse()
        .map_err(|e: super::roles::UnknownRole| e.to_string())
}

fn parse_kind(s: &str) -> Result<PrincipalKind, String> {
    s.parse().map_err(|e: ControlError| e.to_string())
}

fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("not an RFC 3339 time ({e}), e.g. 2030-01-31T00:00:00Z"))
}

#[derive(Subcommand)]
pub enum KeyCommand {
    /// Create a key; prints it with its secret, which is never shown again.
    Create {
        #[command(flatten)]
        tenant: TenantArg,
        /// What the key is for, shown in lists.
        #[arg(long)]
        name: String,
        /// owner, admin, operator, viewer or integration.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Restrict the key to one team's opportunities.
        #[arg(long)]
        team: Option<String>,
        /// The principal the key acts as (recorded in the audit log).
        #[arg(long)]
        principal: Option<String>,
        /// When the key stops working (RFC 3339).
        #[arg(long, value_parser = parse_time)]
        expires_at: Option<DateTime<Utc>>,
    },
    /// List the tenant's keys (never their secrets).
    List {
        #[command(flatten)]
        tenant: TenantArg,
    },
    /// Revoke a key by its id (the 12 hex digits after `nxk_`, or `nxk_<id>`).
    Revoke {
        #[command(flatten)]
        tenant: TenantArg,
        /// The key's id (the 12 hex digits after `nxk_`), or `nxk_<id>`.
        id: String,
    },
}

#[derive(Subcommand)]
pub enum TeamCommand {
    /// Create a team.
    Create {
        #[command(flatten)]
        tenant: TenantArg,
        /// The team's name, unique in the tenant.
        name: String,
    },
    /// List the tenant's teams.
    List {
        #[command(flatten)]
        tenant: TenantArg,
    },
}

#[derive(Subcommand)]
pub enum PrincipalCommand {
    /// Create a user or a service account.
    Create {
        #[command(flatten)]
        tenant: TenantArg,
        /// The principal's name, unique in the tenant.
        #[arg(long)]
        name: String,
        /// owner, admin, operator, viewer or integration.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// user or service_account.
        #[arg(long, value_parser = parse_kind, default_value = "user")]
        kind: PrincipalKind,
        /// The team the principal belongs to (operators take turns on its opportunities).
        #[arg(long)]
        team: Option<String>,
    },
    /// List the tenant's principals.
    List {
        #[command(flatten)]
        tenant: TenantArg,
        /// Only the principals of this team.
        #[arg(long)]
        team: Option<String>,
    },
    /// Deactivate a principal: its keys are revoked, its console sessions end, its rep goes
    /// offline, and its open opportunities are queued for reassignment to the next active
    /// operator of their team (or `unassigned`), applied by the serving instance.
    Deactivate {
        #[command(flatten)]
        tenant: TenantArg,
        /// The principal's name.
        name: String,
        /// Why, for the audit log and the reassignments.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Activate a principal again (its old keys stay revoked; its rep stays offline).
    Activate {
        #[command(flatten)]
        tenant: TenantArg,
        /// The principal's name.
        name: String,
    },
}

/// The tenant `arg` names, if it exists (also for `neuronx rep`, `control::reps::cli`).
pub(crate) async fn tenant(store: &Store, arg: &TenantArg) -> anyhow::Result<TenantId> {
    let sql = "SELECT COUNT(*) FROM tenants WHERE id = $1";
    let n: i64 = on_db!(store, |db, id, _json| sqlx::query_scalar(sql)
        .bind(id(arg.tenant))
        .fetch_one(db)
        .await?);
    if n == 0 {
        bail!("no tenant with id {}", arg.tenant);
    }
    Ok(TenantId(arg.tenant))
}

/// Runs one `tenant` subcommand and returns the JSON to print.
pub async fn run(store: &Store, command: TenantCommand) -> anyhow::Result<serde_json::Value> {
    match command {
        TenantCommand::Create { name } => {
            let created = crate::tenants::create(store, &name)
                .await
                .context("creating the tenant")?;
            Ok(json!({"tenant_id": created.tenant_id, "api_key": created.api_key}))
        }
        TenantCommand::Key { command } => key(store, command).await,
        TenantCommand::Team { command } => match command {
            TeamCommand::Create { tenant: t, name } => {
                let t = tenant(store, &t).await?;
                let mut tx = Tx::begin(store).await?;
                let team = access::create_team(&mut tx, t, &name).await?;
                let view = json!(team);
                audit::commit(
                    tx,
                    &audit::cli_identity(t),
                    Entry::created(
                        AuditAction::TeamCreate,
                        "team",
                        team.id.to_string(),
                        view.clone(),
                    ),
                )
                .await?;
                Ok(view)
            }
            TeamCommand::List { tenant: t } => {
                let t = tenant(store, &t).await?;
                Ok(json!({"items": access::list_teams(store, t).await?}))
            }
        },
        TenantCommand::Principal { command } => match command {
            PrincipalCommand::Create {
                tenant: t,
                name,
                role,
                kind,
                team,
            } => {
                let t = tenant(store, &t).await?;
                let new = NewPrincipal {
                    name: &name,
                    kind,
                    role,
                    team: team.as_deref(),
                };
                let mut tx = Tx::begin(store).await?;
                let p = access::create_principal(store, &mut tx, t, &new).await?;
                let view = json!(p);
                audit::commit(
                    tx,
                    &audit::cli_identity(t),
                    Entry::created(
                        AuditAction::PrincipalCreate,
                        "principal",
                        p.id.to_string(),
                        view.clone(),
                    ),
                )
                .await?;
                Ok(view)
            }
            PrincipalCommand::List { tenant: t, team } => {
                let t = tenant(store, &t).await?;
                let team = match team {
                    Some(name) => Some(access::require_team(store, t, "team", &name).await?.id),
                    None => None,
                };
                Ok(json!({"items": access::list_principals(store, t, team).await?}))
            }
            PrincipalCommand::Deactivate {
                tenant: t,
                name,
                reason,
            } => {
                let t = tenant(store, &t).await?;
                deactivate(store, t, &name, reason.as_deref()).await
            }
            PrincipalCommand::Activate { tenant: t, name } => {
                let t = tenant(store, &t).await?;
                let p = named_principal(store, t, &name).await?;
                principals::activate_logged(store, &audit::cli_identity(t), &p).await?;
                Ok(json!(principals::by_id(store, t, p.id).await?))
            }
        },
    }
}

async fn named_principal(
    store: &Store,
    t: TenantId,
    name: &str,
) -> anyhow::Result<access::Principal> {
    match access::find_principal(store, t, name).await? {
        Some(p) => Ok(p),
        None => bail!("no principal named {:?}", name.trim()),
    }
}

/// Deactivates `name` as the CLI (the tenant's owner): the same transaction as the API's, then
/// each open opportunity's reassignment queued in its inbox (the CLI runs no engine).
async fn deactivate(
    store: &Store,
    t: TenantId,
    name: &str,
    reason: Option<&str>,
) -> anyhow::Result<serde_json::Value> {
    if let Some(r) = reason {
        crate::input::check("reason", r, crate::input::Lines::Many, 0, 2000)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let who = audit::cli_identity(t);
    let p = named_principal(store, t, name).await?;
    let revoked = principals::deactivate_logged(store, &who, &p, reason).await?;
    let mut queued = Vec::new();
    for held in principals::open_opportunities_of(store, t, &p.name).await? {
        let to = principals::successor(store, t, held.team.or(p.team_id)).await?;
        principals::queue_reassign(store, &who, &p, &held, &to).await?;
        queued.push(json!({"opportunity": held.opportunity, "to": to, "outcome": "accepted"}));
    }
    let mut out = json!(revoked);
    out["principal"] = json!(principals::by_id(store, t, p.id).await?);
    out["reassigned"] = json!(queued);
    Ok(out)
}

async fn key(store: &Store, command: KeyCommand) -> anyhow::Result<serde_json::Value> {
    match command {
        KeyCommand::Create {
            tenant: t,
            name,
            role,
            team,
            principal,
            expires_at,
        } => {
            let t = tenant(store, &t).await?;
            let new = NewKey {
                name: &name,
                role,
                team: team.as_deref(),
                principal: principal.as_deref(),
                expires_at,
            };
            let mut tx = Tx::begin(store).await?;
            let (view, secret) =
                keys::create(store, &mut tx, &audit::cli_identity(t), &new).await?;
            let listed = json!(view);
            audit::commit(
                tx,
                &audit::cli_identity(t),
                Entry::created(
                    AuditAction::KeyCreate,
                    "key",
                    view.id.clone(),
                    listed.clone(),
                ),
            )
            .await?;
            let mut out = listed;
            out["key"] = json!(secret);
            Ok(out)
        }
        KeyCommand::List { tenant: t } => {
            let t = tenant(store, &t).await?;
            Ok(json!({"items": keys::list(store, t, Scope::Tenant).await?}))
        }
        KeyCommand::Revoke { tenant: t, id } => {
            let t = tenant(store, &t).await?;
            let before = keys::get(store, t, &id, Scope::Tenant).await?;
            let mut tx = Tx::begin(store).await?;
            let after = keys::revoke(&mut tx, t, &before, Scope::Tenant).await?;
            let who = audit::cli_identity(t);
            let entry = Entry {
                action: AuditAction::KeyRevoke,
                target_kind: "key",
                target_id: after.id.clone(),
                reason: None,
                outcome: Outcome::Applied,
                before: Some(json!(before)),
                after: Some(json!(after)),
            };
            audit::commit(tx, &who, entry).await?;
            Ok(json!(after))
        }
    }
}
