//! Reading the audit log, and the cluster's membership: the operational reads.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use neuronx_supervision::EngineHandle;
use serde::Serialize;
use uuid::Uuid;

use super::opportunities::page_bounds;
use super::views::Page;
use super::{authorize, Error};
use crate::control::audit::{self, AuditAction, Query, Record};
use crate::control::keys::Identity;
use crate::control::{access, Action, Scope};

/// An optional RFC 3339 time from a request, named by `field` when it is malformed.
pub fn rfc3339(field: &'static str, raw: Option<&str>) -> Result<Option<DateTime<Utc>>, Error> {
    raw.map(|t| {
        DateTime::parse_from_rfc3339(t)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| Error::invalid(field, format!("not an RFC 3339 time: {e}")))
    })
    .transpose()
}

/// The audit list's filters, as the caller wrote them.
#[derive(Debug, Default)]
pub struct AuditFilter {
    pub principal: Option<String>,
    pub action: Option<String>,
    pub target: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

/// A page of the tenant's audit log, oldest first. A team-scoped key reads what was done to
/// its team's opportunities only: entries carry other teams' opportunities (before and after)
/// and the tenant's access changes.
pub async fn audit_log(
    engine: &EngineHandle,
    who: &Identity,
    f: AuditFilter,
) -> Result<Page<Record>, Error> {
    let tenant = authorize(who, Action::ReadOps)?;
    let (limit, after) = page_bounds(f.limit.as_deref(), f.cursor.as_deref())?;
    let action = f
        .action
        .as_deref()
        .map(str::parse::<AuditAction>)
        .transpose()?;
    let q = Query {
        principal: f.principal,
        action,
        target_id: f.target,
        since: rfc3339("since", f.since.as_deref())?,
        until: rfc3339("until", f.until.as_deref())?,
        after,
        limit,
    };
    let store = engine.store();
    let mut items = audit::list(store, tenant, &q).await?;
    let next_cursor = (items.len() as i64 == limit)
        .then(|| items.last().map(|r| r.id.to_string()))
        .flatten();
    if let Some(team) = Scope::of(who).team() {
        let ours: HashSet<String> = access::opportunities_of(store, tenant, team)
            .await?
            .iter()
            .map(Uuid::to_string)
            .collect();
        items.retain(|r| r.target_kind == "opportunity" && ours.contains(&r.target_id));
    }
    Ok(Page { items, next_cursor })
}

/// One shard as the cluster view shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = ClusterShard)]
pub struct ShardView {
    pub id: i32,
    /// The instance holding a live lease; null when none does.
    #[schema(required = true)]
    pub owner: Option<String>,
    /// Bumped at every change of owner; fences the previous one's writes.
    pub epoch: i64,
    /// 0 when no lease is live.
    pub lease_remaining_ms: i64,
}

/// One instance sharing the database.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = ClusterInstance)]
pub struct InstanceView {
    pub id: String,
    pub started_at_ms: i64,
    pub heartbeat_age_ms: i64,
    /// Its last heartbeat is younger than the lease TTL.
    pub live: bool,
    /// It rate-limits sends through Redis, shared with the other instances.
    pub shared_limits: bool,
    /// The shards it holds a live lease on.
    pub shards: Vec<i32>,
}

/// The instances sharing this database and the shards each holds. Ages are against the
/// database's clock.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = Cluster)]
pub struct ClusterView {
    /// The database's clock when membership was read, in Unix milliseconds.
    pub now_ms: i64,
    /// The id of the instance that answered.
    pub this_instance: String,
    pub shard_count: usize,
    pub lease_ttl_ms: u64,
    pub instances: Vec<InstanceView>,
    pub shards: Vec<ShardView>,
}

/// The instances sharing this database, the shards each holds, epochs and lease ages. Ages are
/// against the database clock read with the membership; the shards are a second read, a
/// moment later. Operational, like dead letters: not for integrations.
pub async fn cluster(engine: &EngineHandle, who: &Identity) -> Result<ClusterView, Error> {
    authorize(who, Action::ReadOps)?;
    let store = engine.store();
    let membership = store.membership().await?;
    let shards = store.shards().await?;
    let now = membership.now_ms;
    let ttl = engine.config().lease_ttl;
    let mut held: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    let shard_views: Vec<ShardView> = shards
        .iter()
        .map(|s| {
            let live = s.owner.is_some() && s.lease_until_ms >= now;
            if let (Some(owner), true) = (s.owner.as_deref(), live) {
                held.entry(owner).or_default().push(s.shard.0);
            }
            ShardView {
                id: s.shard.0,
                owner: s.owner.clone().filter(|_| live),
                epoch: s.epoch.0,
                lease_remaining_ms: if live { s.lease_until_ms - now } else { 0 },
            }
        })
        .collect();
    let live_ids: Vec<&str> = membership.live(ttl).iter().map(|i| i.id.as_str()).collect();
    let instances = membership
        .instances
        .iter()
        .map(|i| InstanceView {
            id: i.id.clone(),
            started_at_ms: i.started_at_ms,
            heartbeat_age_ms: now - i.heartbeat_at_ms,
            live: live_ids.contains(&i.id.as_str()),
            shared_limits: i.shared_limits,
            shards: held.get(i.id.as_str()).cloned().unwrap_or_default(),
        })
        .collect();
    Ok(ClusterView {
        now_ms: now,
        this_instance: engine.config().instance_id.clone(),
        shard_count: shard_views.len(),
        lease_ttl_ms: ttl.as_millis() as u64,
        instances,
        shards: shard_views,
    })
}
