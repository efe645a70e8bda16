//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]` annotations by the
//! router that registers them (`utoipa_axum::routes!`): a route and its documentation are one
//! declaration, so they cannot drift. Served at `/openapi.json`, without a key.

use serde::Serialize;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "NeuronX",
        description = "Real-time orchestration of sales conversations: opportunities, operator \
                       actions, the control plane (teams, principals, keys, audit). Every /v1 \
                       route needs `Authorization: Bearer <api key>`."
    ),
    modifiers(&BearerKey),
    security(("api_key" = [])),
    components(schemas(ErrorBody))
)]
pub struct ApiDoc;

struct BearerKey;

impl Modify for BearerKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// Every error answer: a code, a message, and for invalid input the field at fault.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// `invalid_request`, `unauthorized`, `forbidden`, `not_found`, `rate_limited`, a domain
    /// refusal code (`already_paused`, ...), `too_large`, `unavailable` or `internal`.
    pub error: String,
    pub message: String,
    /// The request field at fault, for `invalid_request`.
    #[schema(nullable = false)]
    pub field: Option<String>,
}

/// `{"items": [...]}` answers, typed so schemathesis checks them field by field.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct TeamList {
    items: Vec<crate::control::access::Team>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PrincipalList {
    items: Vec<crate::control::access::Principal>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct KeyList {
    items: Vec<crate::control::keys::KeyView>,
}

/// A key as created: its listed view plus the secret, shown this once.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct CreatedKey {
    #[serde(flatten)]
    view: crate::control::keys::KeyView,
    key: String,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct AuditPage {
    items: Vec<crate::control::audit::Record>,
    /// Pass as `cursor` for the next page; null on the last.
    next_cursor: Option<String>,
}

/// The error answers any `/v1` route may give.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum Errors {
    /// Invalid input; `field` names it.
    #[response(status = 400)]
    Invalid(ErrorBody),
    /// Missing, unknown, revoked or expired API key.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// The key's role may not do this.
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// No such object for this key (another tenant's or team's objects included).
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// Refused by the opportunity's rules or already exists.
    #[response(status = 409)]
    Conflict(ErrorBody),
    /// Body over 64 KiB.
    #[response(status = 413)]
    TooLarge(ErrorBody),
    /// Too many failed authentications from this client.
    #[response(status = 429)]
    RateLimited(ErrorBody),
    /// The input could not be made durable; retry.
    #[response(status = 503)]
    Unavailable(ErrorBody),
}
