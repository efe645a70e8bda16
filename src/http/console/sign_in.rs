//! Signing in by email (ADR 0042): `POST /console/magic-link` asks for a link, `GET
//! /console/magic?token=` follows it. The request always answers the same page, whether or not
//! the address belongs to anyone; the link's token is committed before the email goes, and the
//! email goes over the tenant's SMTP server from a task of its own, so the answer neither waits
//! for the mail server nor takes longer for an address that exists.

use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::super::error::ApiError;
use super::super::AppState;
use super::{pages, session_cookie};
use crate::control::audit::{self, Outcome};
use crate::control::magic::{self, LinkError, Signer};
use crate::control::sessions;
use neuronx_adapters::smtp::{self, Email};

/// Per SMTP step, as for notices.
const SMTP_TIMEOUT: Duration = Duration::from_secs(10);

/// The one answer to every accepted request.
pub const SENT: &str = "If that address belongs to someone in that workspace, a sign-in link is \
    on its way. It works once, within 15 minutes.";

#[derive(Deserialize)]
pub struct LinkForm {
    tenant: Option<String>,
    email: Option<String>,
}

/// A browser posting from another site (a form there aimed at us) is refused: the request
/// must come from the console's own page. Requests without these headers (not a browser, or
/// an old one) pass; the per-address limit bounds them.
fn cross_site(headers: &HeaderMap) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if header("sec-fetch-site") == Some("cross-site") {
        return true;
    }
    match (header("origin"), header("host")) {
        (Some("null"), _) => true,
        (Some(origin), Some(host)) => {
            let origin_host = origin
                .split_once("://")
                .map(|(_, rest)| rest)
                .unwrap_or(origin);
            !origin_host.eq_ignore_ascii_case(host)
        }
        _ => false,
    }
}

fn refused(status: StatusCode, message: &str) -> Response {
    pages::login_page_with(None, Some(message), status)
}

pub async fn request_link(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<LinkForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    if cross_site(&headers) {
        return refused(
            StatusCode::FORBIDDEN,
            "this form must be sent from the console's own sign-in page",
        );
    }
    let Ok(Form(form)) = form else {
        return refused(
            StatusCode::BAD_REQUEST,
            "send the form's fields, tenant and email, as a form",
        );
    };
    let tenant_raw = form.tenant.unwrap_or_default();
    let tenant_raw = tenant_raw.trim();
    if tenant_raw.is_empty() {
        return refused(StatusCode::BAD_REQUEST, "tenant is required");
    }
    if tenant_raw.chars().count() > 100 || tenant_raw.chars().any(char::is_control) {
        return refused(
            StatusCode::BAD_REQUEST,
            "tenant must be the workspace's name or id, at most 100 characters",
        );
    }
    let email = match magic::check_email(form.email.as_deref().unwrap_or("")) {
        Ok(email) => email,
        Err(why) => return refused(StatusCode::BAD_REQUEST, &why),
    };
    let store = state.engine.store();
    let tenant = match magic::resolve_tenant(store, tenant_raw).await {
        Ok(t) => t,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let scope = match tenant {
        Some(t) => t.to_string(),
        None => tenant_raw.to_lowercase(),
    };
    match magic::admit(store, &scope, &email).await {
        Ok(true) => {}
        Ok(false) => {
            return refused(
                StatusCode::TOO_MANY_REQUESTS,
                "too many sign-in links were asked for this address: wait 15 minutes and try again",
            )
        }
        Err(e) => return ApiError::from(e).into_response(),
    }
    let signer = match tenant {
        Some(t) => match magic::find_signer(store, t, &email).await {
            Ok(s) => s,
            Err(e) => return ApiError::from(e).into_response(),
        },
        None => None,
    };
    if let Some(signer) = signer {
        // Committed before anything is sent: the link in the email always names a stored token.
        let token = match magic::issue(store, &signer).await {
            Ok(t) => t,
            Err(e) => return ApiError::from(e).into_response(),
        };
        tokio::spawn(send_link(state.clone(), signer, token));
    }
    pages::login_page_with(Some(SENT), None, StatusCode::OK)
}

/// The name we give in EHLO: our public host.
fn hello_name(public_url: &str) -> String {
    url::Url::parse(public_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| "localhost".into())
}

pub fn link_url(public_url: &str, token: &str) -> String {
    format!(
        "{}/console/magic?token={token}",
        public_url.trim_end_matches('/')
    )
}

/// Sends the link over the tenant's SMTP server, once, and settles its `magic_link_sent`
/// entry with the outcome. A link that could not be sent is not retried: the person asks again.
async fn send_link(state: AppState, signer: Signer, token: String) {
    let store = state.engine.store();
    let entry = match magic::log_sending(store, &signer).await {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(principal = %signer.name, error = %e, "sign-in link not logged; not sent");
            return;
        }
    };
    let (outcome, after) = match send(&state, &signer, &token).await {
        Ok(answer) => (
            Outcome::Applied,
            serde_json::json!({"to": signer.email, "answer": answer}),
        ),
        Err(reason) => {
            tracing::warn!(principal = %signer.name, %reason, "sign-in link not sent");
            (
                Outcome::Rejected,
                serde_json::json!({"to": signer.email, "error": reason}),
            )
        }
    };
    if let Err(e) = audit::settle(store, entry, outcome, Some(after)).await {
        tracing::warn!(principal = %signer.name, error = %e, "sign-in link's audit entry not settled");
    }
}

async fn send(state: &AppState, signer: &Signer, token: &str) -> Result<String, String> {
    let tenant = signer.identity.tenant;
    let stored = crate::tenant_data::get_smtp(state.engine.store(), tenant)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the tenant has no smtp server")?;
    let server = stored
        .server(&state.keyring, SMTP_TIMEOUT)
        .map_err(|e| e.to_string())?;
    let hello = hello_name(&state.public_url);
    let link = link_url(&state.public_url, token);
    let digest = hex::encode(Sha256::digest(token.as_bytes()));
    let email = Email {
        from: stored.from_email,
        from_name: stored.from_name,
        to: signer.email.clone(),
        to_name: Some(signer.name.clone()),
        subject: "Your NeuronX sign-in link".into(),
        body: format!(
            "Hello {name},\n\nOpen this link to sign in to the NeuronX console:\n\n{link}\n\n\
             It works once, within 15 minutes. If you did not ask for it, ignore this email: \
             nobody can sign in without the link.\n",
            name = signer.name
        ),
        message_id: format!("{}@{hello}", &digest[..32]),
        headers: Vec::new(),
    };
    smtp::send(&server, &state.guard, &hello, &email)
        .await
        .map_err(|e| e.to_string())
}

#[derive(Deserialize)]
pub struct LinkQuery {
    token: Option<String>,
}

/// Follows a link: opens a session and answers a page that goes on to the console. Not a
/// redirect: the cookie is `SameSite=Strict`, and a redirect that began with a click in a mail
/// program is cross-site, so the browser would not send it on the next request; a page of
/// ours that moves on is same-site.
pub async fn follow_link(
    State(state): State<AppState>,
    query: Result<Query<LinkQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let token = match query {
        Ok(Query(LinkQuery { token: Some(t) })) if !t.trim().is_empty() => t,
        _ => {
            return pages::error_page(
                StatusCode::BAD_REQUEST,
                "token is required: open the link from your email as it is",
            )
        }
    };
    let opened = match magic::consume(state.engine.store(), token.trim()).await {
        Ok(Ok(opened)) => opened,
        Ok(Err(why)) => {
            let status = match why {
                LinkError::Unknown => StatusCode::BAD_REQUEST,
                LinkError::Expired | LinkError::Used => StatusCode::GONE,
            };
            return pages::error_page(status, &why.to_string());
        }
        Err(e) => return ApiError::from(e).into_response(),
    };
    let cookie = session_cookie(&state, &opened.token, sessions::SESSION_TTL_MS / 1000);
    let page = pages::signed_in_page(&opened.identity.actor_name());
    ([(SET_COOKIE, cookie)], page).into_response()
}
