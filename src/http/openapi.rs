//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]` annotations by the
//! router that registers them (`utoipa_axum::routes!`): a route and its documentation are one
//! declaration, so they cannot drift. Served at `/openapi.json`, without a key.
//!
//! Besides the document's frame, this module holds schema-only types: mirrors of the actors
//! crate's domain types (that crate does not depend on utoipa), the enums built from the
//! domain's own lists of wire names so they cannot drift, and, in `answers`, the shapes of the
//! answers that handlers still build as JSON values.

mod answers;

use std::borrow::Cow;

use neuronx_actors::domain::call::{
    AnsweredBy as DomainAnsweredBy, CallStatus as DomainCallStatus,
};
use neuronx_actors::domain::opportunity::{LineType as DomainLineType, Stage as DomainStage};
use serde::Serialize;
use serde_json::Value;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::RefOr;
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

pub use answers::*;

use crate::usecases::views::{OpportunityView, Page, TimelineItem};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "NeuronX",
        description = "Real-time orchestration of sales conversations: opportunities, operator \
                       actions, the control plane (teams, principals, keys, audit). Every /v1 \
                       route needs `Authorization: Bearer <api key>`. Errors answer \
                       `{\"error\": <code>, \"message\": ..., \"field\": ...}` (`field` for \
                       invalid input only); a list answers `{\"items\": [...], \"next_cursor\"}`: \
                       pass `next_cursor` as `cursor` until it is null."
    ),
    // Relative: the paths are served by the instance this document was read from, whatever
    // name or proxy it was reached through.
    servers((url = "/", description = "the instance serving this document")),
    tags(
        (name = "opportunities", description = "Leads: create (idempotent on `external_id`), read, list, timeline."),
        (name = "operator actions", description = "Pause, resume, reassign, escalate, cancel a timer; in bulk by filter. Audited."),
        (name = "calls", description = "Calls placed for an opportunity, with their timelines."),
        (name = "dead letters", description = "Inputs an actor failed too often: list, retry, discard."),
        (name = "access", description = "Teams, principals and API keys of the tenant."),
        (name = "reps", description = "Users who take calls: their phones, working hours and status, and how each team rings them."),
        (name = "audit", description = "The append-only log of operator and admin actions."),
        (name = "channels", description = "The tenant's Twilio account and do-not-call list."),
        (name = "numbers", description = "The tenant's numbers, per team or tenant-wide: the caller id leads see (local presence) and what inbound texts are matched by."),
        (name = "settings", description = "The tenant's settings: what a second lead of one person does (one person, one cadence), and the postal address in the footer of emails to leads."),
        (name = "unsubscribe", description = "The one-click unsubscribe link of emails to leads (RFC 8058): public, the signed token is the credential."),
        (name = "health", description = "Liveness, readiness, metrics and the cluster's shards."),
    ),
    modifiers(&BearerKey),
    security(("api_key" = [])),
    // Referenced from query parameters, which do not register their schemas themselves.
    components(schemas(ErrorBody, ErrorCode, Stage))
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
    pub error: ErrorCode,
    /// For people; may change wording.
    pub message: String,
    /// The request field at fault (`contact.phone`, `limit`), for `invalid_request` only.
    #[schema(nullable = false)]
    pub field: Option<String>,
}

/// The error codes: `invalid_request` (400), `unauthorized` (401), `forbidden` (403),
/// `not_found` (404), `method_not_allowed` (405), `too_large` (413), `rate_limited` (429),
/// `unavailable` (503, retry), `internal` (500); 409 for `already_exists`,
/// `no_encryption_key`, `idempotency_key_in_progress` (retry) and the opportunity's refusals
/// (`already_paused`, `not_paused`, `paused`, `terminal_stage`, `illegal_transition`,
/// `opted_out`, ...) and `dead_lettered` (the actor is quarantined: the command went to the dead
/// letters); 422 for `idempotency_key_reused`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)] // Schema only: `ApiError` writes the codes (`every_error_..._code` checks).
pub enum ErrorCode {
    InvalidRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    RateLimited,
    TooLarge,
    Unavailable,
    Internal,
    AlreadyExists,
    NoEncryptionKey,
    // `Idempotency-Key` on commands (http/idempotency.rs).
    IdempotencyKeyInProgress,
    IdempotencyKeyReused,
    // The opportunity actor's refusals (actors/src/opportunity.rs, `code`) and the playbook
    // registry's (actors/src/playbooks.rs); `rejected` is the call actor's catch-all.
    AlreadyPaused,
    NotPaused,
    Paused,
    TerminalStage,
    IllegalTransition,
    InvalidField,
    PlaybookMismatch,
    UnknownValue,
    OptedOut,
    // A person's text or email the gate refused, and a hand-back with nothing taken over.
    SmsRefused,
    EmailRefused,
    NotTakenOver,
    UnknownPlaybook,
    Rejected,
    // The runtime set the command aside (usecases::dead_lettered): its actor is quarantined.
    DeadLettered,
}

/// A string schema whose values are a domain enum's wire names, taken from the domain's list.
fn wire_enum(description: &str, names: impl IntoIterator<Item = &'static str>) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .enum_values(Some(names))
        .into()
}

/// A named schema for a `named_enum!` of the actors crate, listing its `ALL`.
macro_rules! mirror_enum {
    (#[doc = $doc:literal] $name:ident = $domain:ty) => {
        #[doc = $doc]
        pub struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                wire_enum($doc.trim(), <$domain>::ALL.iter().map(|v| v.as_str()))
            }
        }

        impl ToSchema for $name {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }
        }
    };
}

mirror_enum!(
    /// Where the opportunity is in its life; `won`, `lost` and `do_not_contact` end the cadence.
    Stage = DomainStage
);
mirror_enum!(
    /// The call's status, spelled as Twilio spells it.
    CallStatus = DomainCallStatus
);
mirror_enum!(
    /// Answering-machine detection's verdict, spelled as Twilio spells it.
    AnsweredBy = DomainAnsweredBy
);
mirror_enum!(
    /// The contact's line type from the carrier's lookup, in snake case; a `landline` is not sent marketing texts.
    LineType = DomainLineType
);

/// The lead's contact details and consent.
#[derive(ToSchema)]
#[allow(dead_code)] // Schema only: the API serializes the domain's `Contact`.
pub struct Contact {
    name: String,
    /// E.164 (`+14155552671`); null for a lead reached by email only.
    #[schema(required = true)]
    phone: Option<String>,
    #[schema(required = true)]
    email: Option<String>,
    /// IANA time zone; calling hours are checked in it.
    #[schema(required = true)]
    timezone: Option<String>,
    consent: Consent,
}

/// What the lead agreed to be contacted by; without consent nothing is sent on that channel.
#[derive(ToSchema)]
#[allow(dead_code)] // Schema only: the API serializes the domain's `Consent`.
pub struct Consent {
    voice: bool,
    sms: bool,
    /// The playbook's emails (`[email]`); absent means none.
    #[schema(default = false)]
    email: bool,
}

/// The rule behind a timeline entry that is a decision, in an operator's words, and the inputs
/// it weighed.
#[derive(ToSchema)]
#[allow(dead_code)] // Schema only: built as a JSON value by `usecases::why`.
pub struct Why {
    rule: String,
    /// The entry's data the rule looked at.
    #[schema(value_type = Object)]
    inputs: Value,
}

/// An accepted input's status: always `accepted`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)] // Schema only: `Accepted::status` is a string constant.
pub enum AcceptedStatus {
    Accepted,
}

/// A named schema for `Page<T>` of one item type: utoipa 5 inlines generic instances, and a
/// generated client wants a name to import. The schema itself is `Page<T>`'s, so it cannot
/// drift from what the use cases answer.
macro_rules! named_page {
    ($name:ident = $item:ty) => {
        #[allow(dead_code)] // Schema only.
        pub struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                <Page<$item> as PartialSchema>::schema()
            }
        }

        impl ToSchema for $name {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }

            // `Page<T>`'s own list leaves out its item type: added here, with what it uses.
            fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
                schemas.push((
                    <$item as ToSchema>::name().into(),
                    <$item as PartialSchema>::schema(),
                ));
                <$item as ToSchema>::schemas(schemas);
                <Page<$item> as ToSchema>::schemas(schemas);
            }
        }
    };
}

named_page!(OpportunityPage = OpportunityView);
named_page!(TimelinePage = TimelineItem);
named_page!(MessagePage = crate::usecases::messages::MessageView);
named_page!(DeadLetterPage = crate::usecases::ops::DeadLetterView);

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

#[cfg(test)]
mod tests {
    use axum::response::IntoResponse;
    use neuronx_actors::domain::opportunity::{Consent as DomainConsent, Contact as DomainContact};

    use super::*;
    use crate::http::ApiError;

    fn properties<T: PartialSchema>() -> Vec<String> {
        let schema = serde_json::to_value(T::schema()).expect("schema serializes");
        let mut keys: Vec<String> = schema["properties"]
            .as_object()
            .expect("an object schema")
            .keys()
            .cloned()
            .collect();
        keys.sort();
        keys
    }

    fn keys(v: &Value) -> Vec<String> {
        let mut keys: Vec<String> = v.as_object().expect("an object").keys().cloned().collect();
        keys.sort();
        keys
    }

    #[test]
    fn the_contact_mirror_has_the_domains_fields() {
        let contact = DomainContact {
            name: "Ana".into(),
            phone: Some("+14155552671".into()),
            email: None,
            timezone: None,
            consent: DomainConsent {
                voice: true,
                sms: false,
                email: false,
            },
        };
        let wire = serde_json::to_value(&contact).expect("serializes");
        assert_eq!(properties::<Contact>(), keys(&wire));
        assert_eq!(properties::<Consent>(), keys(&wire["consent"]));
    }

    #[test]
    fn every_error_the_api_answers_has_a_documented_code() {
        let documented = serde_json::to_value(ErrorCode::schema()).expect("serializes");
        let documented = documented["enum"].as_array().expect("an enum").clone();
        let errors = [
            ApiError::Unauthorized,
            ApiError::Forbidden("no".into()),
            ApiError::RateLimited {
                retry_after_secs: 1,
            },
            ApiError::NotFound("thing"),
            ApiError::invalid("limit", "bad"),
            ApiError::TooLarge,
            ApiError::Unavailable("busy".into()),
            ApiError::Internal(anyhow::anyhow!("boom")),
        ];
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        for e in errors {
            let body = rt.block_on(axum::body::to_bytes(e.into_response().into_body(), 4096));
            let body: Value = serde_json::from_slice(&body.expect("a body")).expect("JSON");
            assert!(documented.contains(&body["error"]), "{body}");
        }
    }
}
