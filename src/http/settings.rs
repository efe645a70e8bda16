//! `/v1/settings`: the tenant's settings.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;

use super::auth::Caller;
use super::error::ApiError;
use super::extract::Body;
use super::AppState;
use crate::contacts::DuplicateContacts;
use crate::usecases::settings::{self, SettingsView};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsRequest {
    /// `merge` or `skip`; left out, unchanged.
    duplicate_contacts: Option<DuplicateContacts>,
    /// The postal address for the footer of emails to leads, up to 500 characters (several
    /// lines allowed); an empty string clears it; left out, unchanged.
    postal_address: Option<String>,
}

#[utoipa::path(
    get,
    path = "/v1/settings",
    tag = "settings",
    operation_id = "getSettings",
    summary = "Read the tenant's settings",
    description = "The settings as they apply now, defaults included.",
    responses(
        (status = 200, description = "the settings", body = SettingsView),
        crate::http::openapi::Errors
    )
)]
pub async fn get_settings(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<SettingsView>, ApiError> {
    Ok(Json(settings::get(&state.engine, &caller.0).await?))
}

#[utoipa::path(
    put,
    path = "/v1/settings",
    tag = "settings",
    operation_id = "putSettings",
    summary = "Change the tenant's settings",
    description = "`duplicate_contacts`: what a lead whose phone already belongs to a live opportunity of the tenant does. `merge` (the default) joins the live opportunity, which notes it on its timeline, and the create answers that opportunity (200); `skip` creates the lead's own opportunity running no cadence, with `duplicate_of` naming the live one. Either way one person has one cadence. `postal_address`: the tenant's postal address, printed in the footer of every email to a lead (CAN-SPAM); without one no email to a lead is sent and the lead's timeline says why. A field left out keeps its value. Admins and owners. Audited.",
    request_body = SettingsRequest,
    responses(
        (status = 200, description = "the settings after the change", body = SettingsView),
        crate::http::openapi::Errors
    )
)]
pub async fn put_settings(
    State(state): State<AppState>,
    caller: Caller,
    Body(req): Body<SettingsRequest>,
) -> Result<Json<SettingsView>, ApiError> {
    Ok(Json(
        settings::put(
            &state.engine,
            &caller.0,
            settings::Change {
                duplicate_contacts: req.duplicate_contacts,
                postal_address: req.postal_address,
            },
        )
        .await?,
    ))
}
