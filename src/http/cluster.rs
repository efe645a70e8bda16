//! `GET /v1/cluster`: the instances sharing this database, the shards each holds, epochs and
//! lease ages. Ages are against the database clock read with the membership; the shards are a
//! second read, a moment later.

use axum::extract::State;
use axum::Json;

use super::auth::Caller;
use super::error::ApiError;
use super::AppState;
use crate::usecases::audit::ClusterView;

#[utoipa::path(
    get,
    path = "/v1/cluster",
    tag = "health",
    operation_id = "getCluster",
    summary = "Read the cluster",
    description = "The instances sharing this database, the shards each holds, their epochs and lease ages, against the database's clock. Operational: not for integration keys.",
    responses(
        (status = 200, description = "instances, their shards, epochs and lease ages", body = crate::usecases::audit::ClusterView),
        crate::http::openapi::Errors
    )
)]
pub async fn cluster(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<ClusterView>, ApiError> {
    Ok(Json(
        crate::usecases::audit::cluster(&state.engine, &caller.0).await?,
    ))
}
