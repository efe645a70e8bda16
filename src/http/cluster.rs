//! `GET /v1/cluster`: the instances sharing this database, the shards each holds, epochs and
//! lease ages. Ages are against the database clock read with the membership; the shards are a
//! second read, a moment later.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::auth::Caller;
use super::error::ApiError;
use super::AppState;
use crate::control::Action;

#[utoipa::path(
    get,
    path = "/v1/cluster",
    tag = "health",
    responses(
        (status = 200, description = "instances, their shards, epochs and lease ages", body = Object),
        crate::http::openapi::Errors
    )
)]
pub async fn cluster(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    // Operational, like dead letters: not for integrations.
    caller.require(Action::ReadOps)?;
    let store = state.engine.store();
    let membership = store.membership().await?;
    let shards = store.shards().await?;
    let now = membership.now_ms;
    let ttl = state.engine.config().lease_ttl;
    let mut held: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    let shard_rows: Vec<Value> = shards
        .iter()
        .map(|s| {
            let live = s.owner.is_some() && s.lease_until_ms >= now;
            if let (Some(owner), true) = (s.owner.as_deref(), live) {
                held.entry(owner).or_default().push(s.shard.0);
            }
            json!({
                "id": s.shard.0,
                "owner": s.owner.as_deref().filter(|_| live),
                "epoch": s.epoch.0,
                "lease_remaining_ms": if live { s.lease_until_ms - now } else { 0 },
            })
        })
        .collect();
    let live_ids: Vec<&str> = membership.live(ttl).iter().map(|i| i.id.as_str()).collect();
    let instances: Vec<Value> = membership
        .instances
        .iter()
        .map(|i| {
            json!({
                "id": i.id,
                "started_at_ms": i.started_at_ms,
                "heartbeat_age_ms": now - i.heartbeat_at_ms,
                "live": live_ids.contains(&i.id.as_str()),
                "shared_limits": i.shared_limits,
                "shards": held.get(i.id.as_str()).cloned().unwrap_or_default(),
            })
        })
        .collect();
    Ok(Json(json!({
        "now_ms": now,
        "this_instance": state.engine.config().instance_id,
        "shard_count": shards.len(),
        "lease_ttl_ms": ttl.as_millis() as u64,
        "instances": instances,
        "shards": shard_rows,
    })))
}
