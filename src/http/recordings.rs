//! `GET /v1/calls/{id}/recordings/{sid}` and `/media`: a call's recording, read from the
//! tenant's own carrier account by sid (`usecases::recordings`).

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::auth::Caller;
use super::error::ApiError;
use super::AppState;
use crate::usecases::recordings::{self, Carrier, RecordingDetail};

fn carrier(state: &AppState) -> Carrier<'_> {
    Carrier {
        keyring: &state.keyring,
        guard: &state.guard,
    }
}

#[utoipa::path(
    get,
    path = "/v1/calls/{id}/recordings/{sid}",
    tag = "calls",
    operation_id = "getCallRecording",
    summary = "Read a call's recording",
    description = "One recording of the call's conversation (playbook `call_flow.record`), as the tenant's carrier account reports it now. The sid must be one the call recorded; it is read from the tenant's own account host, never from a URL a callback carried. Owners, admins and operators only (a recording is the lead's voice).",
    params(
        ("id" = String, Path, description = "the call's id"),
        ("sid" = String, Path, description = "the recording's sid (`RE…`)")
    ),
    responses(
        (status = 200, description = "the recording", body = RecordingDetail),
        crate::http::openapi::Errors
    )
)]
pub async fn get_recording(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, sid)): Path<(String, String)>,
) -> Result<Json<RecordingDetail>, ApiError> {
    let found = recordings::detail(&state.engine, &carrier(&state), &caller.0, &id, &sid).await?;
    Ok(Json(found))
}

#[utoipa::path(
    get,
    path = "/v1/calls/{id}/recordings/{sid}/media",
    tag = "calls",
    operation_id = "getCallRecordingMedia",
    summary = "Listen to a call's recording",
    description = "The recording's audio as MP3, read from the tenant's own carrier account (at most 32 MiB). Same rules as the recording itself.",
    params(
        ("id" = String, Path, description = "the call's id"),
        ("sid" = String, Path, description = "the recording's sid (`RE…`)")
    ),
    responses(
        (status = 200, description = "the audio: the MP3 file's bytes", content_type = "audio/mpeg", body = String),
        crate::http::openapi::Errors
    )
)]
pub async fn get_recording_media(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, sid)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let audio = recordings::media(&state.engine, &carrier(&state), &caller.0, &id, &sid).await?;
    Ok(([(header::CONTENT_TYPE, "audio/mpeg")], audio).into_response())
}
