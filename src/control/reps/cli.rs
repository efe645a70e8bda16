//! `neuronx rep ...`: reps from the command line, as the tenant's owner (`cli` in the audit
//! log). Each prints one JSON document; a bad argument exits non-zero naming it. Works while
//! `serve` runs (it only writes rows), like `neuronx tenant ...`.

use chrono::Utc;
use clap::Subcommand;
use neuronx_supervision::Store;
use serde_json::json;

use super::{RepProfile, RepStatus, WorkingHours};
use crate::control::audit::{self, AuditAction, Entry, Outcome};
use crate::control::cli::{tenant, TenantArg};
use crate::control::Tx;

fn parse_hours(s: &str) -> Result<WorkingHours, String> {
    WorkingHours::parse_spec(s).map_err(|e| e.to_string())
}

/// Only the statuses a person sets: `busy` follows from live calls.
fn parse_status(s: &str) -> Result<RepStatus, String> {
    match s.parse::<RepStatus>().map_err(|e| e.to_string())? {
        RepStatus::Busy => {
            Err("busy follows from live calls; use available, away or offline".into())
        }
        status => Ok(status),
    }
}

#[derive(Subcommand)]
pub enum RepCommand {
    /// Make a user a rep, or change its phone, zone, hours or most calls (its status is kept).
    Set {
        #[command(flatten)]
        tenant: TenantArg,
        /// The user's principal name.
        name: String,
        /// The number the rep is rung at, E.164 (+14155552671).
        #[arg(long)]
        phone: String,
        /// IANA time zone the hours are read in (America/New_York).
        #[arg(long)]
        time_zone: String,
        /// Working hours, DAYS,HH:MM-HH:MM (mon-fri,09:00-17:00; 22:00-06:00 runs overnight);
        /// without it, any time.
        #[arg(long, value_parser = parse_hours, value_name = "SPEC")]
        hours: Option<WorkingHours>,
        /// Calls the rep takes at once, 1 to 10 (default 1).
        #[arg(long)]
        max_calls: Option<i64>,
    },
    /// Set a rep's status: available, away or offline.
    Status {
        #[command(flatten)]
        tenant: TenantArg,
        /// The rep's principal name.
        name: String,
        /// available, away or offline.
        #[arg(value_parser = parse_status)]
        status: RepStatus,
    },
    /// List the tenant's reps with their status, live calls and whether they are in hours now.
    List {
        #[command(flatten)]
        tenant: TenantArg,
    },
}

/// Runs one `rep` subcommand and returns the JSON to print.
pub async fn run(store: &Store, command: RepCommand) -> anyhow::Result<serde_json::Value> {
    match command {
        RepCommand::Set {
            tenant: t,
            name,
            phone,
            time_zone,
            hours,
            max_calls,
        } => {
            let t = tenant(store, &t).await?;
            let profile = RepProfile::new(&phone, &time_zone, hours, max_calls)?;
            let mut tx = Tx::begin(store).await?;
            let (before, after) = super::set_profile(&mut tx, t, &name, &profile).await?;
            let target = after.principal_id.to_string();
            let entry = Entry {
                action: AuditAction::RepUpdate,
                target_kind: "rep",
                target_id: target,
                reason: None,
                outcome: Outcome::Applied,
                before: before.map(|b| json!(b)),
                after: Some(json!(after)),
            };
            audit::commit(tx, &audit::cli_identity(t), entry).await?;
            Ok(json!(after))
        }
        RepCommand::Status {
            tenant: t,
            name,
            status,
        } => {
            let t = tenant(store, &t).await?;
            let mut tx = Tx::begin(store).await?;
            let (before, after) = super::set_status(&mut tx, t, &name, status).await?;
            let entry = Entry {
                action: AuditAction::RepStatus,
                target_kind: "rep",
                target_id: after.principal_id.to_string(),
                reason: None,
                outcome: Outcome::Applied,
                before: Some(json!(before)),
                after: Some(json!(after)),
            };
            audit::commit(tx, &audit::cli_identity(t), entry).await?;
            Ok(json!(after))
        }
        RepCommand::List { tenant: t } => {
            let t = tenant(store, &t).await?;
            let reps = super::list_reps(store, t, None, Utc::now()).await?;
            Ok(json!({"items": reps}))
        }
    }
}
