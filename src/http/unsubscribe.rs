//! `/u/{token}`: the one-click unsubscribe link of an email to a lead (RFC 8058). Public: the
//! signed token is the credential. GET shows a page with a button (and changes nothing: mail
//! scanners fetch links); POST unsubscribes and answers 200 without a redirect, JSON for a
//! mailbox provider, a page for a browser.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use maud::{html, Markup, DOCTYPE};

use super::error::ApiError;
use super::AppState;
use crate::usecases::unsubscribe::{self, EmailSubscription, UnsubscribeView};

fn page(title: &str, body: Markup) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { (title) } }
            body { h1 { (title) } (body) }
        }
    };
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        markup.into_string(),
    )
        .into_response()
}

fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

#[utoipa::path(
    get,
    path = "/u/{token}",
    tag = "unsubscribe",
    operation_id = "getUnsubscribe",
    summary = "The unsubscribe page of an email to a lead",
    description = "The link in the footer and the `List-Unsubscribe` header of every email to a lead. Shows where the lead stands and a button that unsubscribes; changes nothing (mail scanners fetch links). Needs no key: the signed token is the credential. A malformed or forged token answers 400 naming `token`.",
    security(()),
    params(("token" = String, Path, description = "the signed token from the email")),
    responses(
        (status = 200, description = "the page", content_type = "text/html", body = String),
        crate::http::openapi::Errors
    )
)]
pub async fn get_unsubscribe(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<Response, ApiError> {
    let view = unsubscribe::look(&state.engine, &state.keyring, &token).await?;
    Ok(match view.status {
        EmailSubscription::Unsubscribed => page(
            "You are unsubscribed",
            html! { p { "No more emails will be sent to " (view.address) "." } },
        ),
        EmailSubscription::Subscribed => page(
            "Unsubscribe from these emails",
            html! {
                p { "Stop emails to " (view.address) "? Calls and texts are not affected." }
                // No action: the form posts back to the address it was opened at, whatever path
                // prefix a proxy puts in front of the public URL.
                form method="post" {
                    input type="hidden" name="List-Unsubscribe" value="One-Click";
                    button type="submit" { "Unsubscribe" }
                }
            },
        ),
    })
}

#[utoipa::path(
    post,
    path = "/u/{token}",
    tag = "unsubscribe",
    operation_id = "postUnsubscribe",
    summary = "Unsubscribe a lead from email (one click)",
    description = "RFC 8058 one-click: the mailbox provider POSTs `List-Unsubscribe=One-Click` with no key and no cookie. Opts the lead out of email only (calls and texts go on), on the opportunity's timeline (`email_unsubscribed`) and in the audit log (`email_unsubscribe`). Idempotent. Answers 200 with no redirect: JSON, or a page when the client accepts `text/html`. A malformed or forged token answers 400 naming `token`.",
    security(()),
    params(("token" = String, Path, description = "the signed token from the email")),
    responses(
        (status = 200, description = "unsubscribed", body = UnsubscribeView),
        crate::http::openapi::Errors
    )
)]
pub async fn post_unsubscribe(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let view = unsubscribe::unsubscribe(&state.engine, &state.keyring, &token).await?;
    if wants_html(&headers) {
        let text = html! { p { "No more emails will be sent to " (view.address) "." } };
        return Ok(page("You are unsubscribed", text));
    }
    Ok(Json(view).into_response())
}
