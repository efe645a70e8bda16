//! `neuronx number ...`: the tenant's numbers from the command line, as the tenant's owner
//! (`cli` in the audit log). Each prints one JSON document; a bad argument exits non-zero naming
//! it. Works while `serve` runs (it only writes rows), like `neuronx rep ...`.

use clap::Subcommand;
use neuronx_supervision::Store;
use serde_json::json;

use super::NumberSpec;
use crate::control::access;
use crate::control::audit::{self, AuditAction, Entry, Outcome};
use crate::control::cli::{tenant, TenantArg};
use crate::control::Tx;

#[derive(Subcommand)]
pub enum NumberCommand {
    /// Add a number to the tenant's pool, or move or relabel it.
    Add {
        #[command(flatten)]
        tenant: TenantArg,
        /// E.164 (+15125550100): a number of the tenant's Twilio account.
        number: String,
        /// The team whose pool it joins; without it, tenant-wide.
        #[arg(long)]
        team: Option<String>,
        /// A label for people (`Austin office`).
        #[arg(long)]
        label: Option<String>,
    },
    /// Remove a number from the tenant's pool.
    Remove {
        #[command(flatten)]
        tenant: TenantArg,
        /// E.164.
        number: String,
    },
    /// List the tenant's numbers with their team, area code and state.
    List {
        #[command(flatten)]
        tenant: TenantArg,
    },
}

/// Runs one `number` subcommand and returns the JSON to print.
pub async fn run(store: &Store, command: NumberCommand) -> anyhow::Result<serde_json::Value> {
    match command {
        NumberCommand::Add {
            tenant: t,
            number,
            team,
            label,
        } => {
            let t = tenant(store, &t).await?;
            let spec = NumberSpec::new(&number, label.as_deref())?;
            let team = match team {
                Some(name) => Some(access::require_team(store, t, "team", &name).await?.id),
                None => None,
            };
            let mut tx = Tx::begin(store).await?;
            let (before, after) = super::put_number(&mut tx, t, &spec, team).await?;
            let entry = Entry {
                action: AuditAction::NumberPut,
                target_kind: "number",
                target_id: after.number.clone(),
                reason: None,
                outcome: Outcome::Applied,
                before: before.map(|b| json!(b)),
                after: Some(json!(after)),
            };
            audit::commit(tx, &audit::cli_identity(t), entry).await?;
            Ok(json!(after))
        }
        NumberCommand::Remove { tenant: t, number } => {
            let t = tenant(store, &t).await?;
            let number = super::parse_number(&number)?;
            let mut tx = Tx::begin(store).await?;
            let before = super::remove_number(&mut tx, t, &number).await?;
            let entry = Entry {
                action: AuditAction::NumberRemove,
                target_kind: "number",
                target_id: before.number.clone(),
                reason: None,
                outcome: Outcome::Applied,
                before: Some(json!(before)),
                after: None,
            };
            audit::commit(tx, &audit::cli_identity(t), entry).await?;
            Ok(json!({"removed": before}))
        }
        NumberCommand::List { tenant: t } => {
            let t = tenant(store, &t).await?;
            let numbers = super::list_numbers(store, t, None).await?;
            Ok(json!({"items": numbers}))
        }
    }
}
