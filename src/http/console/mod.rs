//! The operator console at `/console`: server-rendered pages (maud) made live with htmx and
//! server-sent events, served by this binary with no build step. Signing in with an API key, or
//! by a link sent by email (`sign_in`, ADR 0042), opens a cookie session (`control::sessions`); every form carries the session's CSRF token;
//! every action goes through the same handlers, role checks and audit log as the API, so a
//! button a role may not use answers 403 on the server, not only by being hidden (ADR 0025).

mod actions;
mod dashboard;
mod list;
mod live;
mod pages;
mod queue;
mod sign_in;

use axum::extract::{FromRequestParts, State};
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::auth;
use super::error::ApiError;
use super::AppState;
use crate::control::keys::Identity;
use crate::control::reps::{self, Rep};
use crate::control::sessions;

const COOKIE_NAME: &str = "nx_session";

/// The console's Content-Security-Policy: scripts and styles from this origin only, plus the
/// page's one inline `<style>` and one inline `<script>` (`pages.rs`) and the indicator style
/// htmx inserts, each allowed by its SHA-256; no framing, no plugins, forms and fetches to this
/// origin only. `tests/edge.rs` checks every inline block a page serves against this and names
/// the hash to put here when one changes.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; \
    script-src 'self' 'sha256-k35Ul55z0ILvLSO+OPCy76njHgRba4kQw0/KEsnR61I='; \
    style-src 'self' 'sha256-hEbMHhfuiDVLPP6QeZTgvkb9FJLjB6E/4yGBaCgxC8M=' \
    'sha256-faU7yAF8NxuMTNEwVmBz+VcYeIoBQ2EMHW3WaVxCvnk='; \
    img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
    base-uri 'none'";

pub fn router() -> Router<AppState> {
    use axum::http::{header, HeaderValue};
    use tower_http::set_header::SetResponseHeaderLayer as Set;
    Router::new()
        .route("/console", get(list::list))
        .route("/console/rows", get(list::rows))
        .route("/console/queue", get(queue::queue))
        .route("/console/queue/rows", get(queue::rows))
        .route("/console/dashboard", get(dashboard::dashboard))
        .route("/console/dashboard/panel", get(dashboard::dashboard_panel))
        .route("/console/status", post(set_status))
        .route("/console/me", get(me))
        .route("/console/login", get(pages::login_form).post(login))
        .route("/console/logout", post(logout))
        .route("/console/magic-link", post(sign_in::request_link))
        .route("/console/magic", get(sign_in::follow_link))
        .route("/console/opportunities/{id}", get(pages::detail))
        .route("/console/opportunities/{id}/panel", get(pages::panel))
        .route("/console/opportunities/{id}/{action}", post(actions::act))
        .route("/console/events", get(live::events))
        .route("/console/assets/htmx.min.js", get(live::htmx))
        // Every console answer: the policy above, no MIME sniffing, no framing (for browsers
        // older than `frame-ancestors`), and no Referer carrying opportunity ids elsewhere.
        .layer(
            tower::ServiceBuilder::new()
                .layer(Set::overriding(
                    header::CONTENT_SECURITY_POLICY,
                    HeaderValue::from_static(CONTENT_SECURITY_POLICY),
                ))
                .layer(Set::overriding(
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                ))
                .layer(Set::overriding(
                    header::X_FRAME_OPTIONS,
                    HeaderValue::from_static("DENY"),
                ))
                .layer(Set::overriding(
                    header::REFERRER_POLICY,
                    HeaderValue::from_static("no-referrer"),
                )),
        )
}

/// A signed-in operator: the identity of the key the session was opened with, or of the
/// principal a sign-in link opened it for.
pub struct Operator {
    pub identity: Identity,
    pub csrf: String,
    token: String,
    /// The principal's rep profile, when it is a rep: the header shows its status switch.
    pub rep: Option<Rep>,
}

fn cookie_token(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix("nx_session=").map(str::to_owned))
}

/// Not signed in (or the key was revoked): pages send the browser to sign in.
pub struct SignIn;

impl IntoResponse for SignIn {
    fn into_response(self) -> Response {
        Redirect::to("/console/login").into_response()
    }
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let token = cookie_token(parts).ok_or_else(|| SignIn.into_response())?;
        match sessions::find(state.engine.store(), &token).await {
            Ok(Some(s)) => {
                // The access log line names the tenant (`edge::access_span`).
                tracing::Span::current()
                    .record("tenant", tracing::field::display(s.identity.tenant));
                let rep = match &s.identity.principal {
                    Some(name) => {
                        let now = state.engine.config().clock.now();
                        reps::get_rep(state.engine.store(), s.identity.tenant, name, now)
                            .await
                            .map_err(|e| ApiError::from(e).into_response())?
                    }
                    None => None,
                };
                Ok(Operator {
                    identity: s.identity,
                    csrf: s.csrf,
                    token,
                    rep,
                })
            }
            Ok(None) => Err(SignIn.into_response()),
            Err(e) => Err(ApiError::from(e).into_response()),
        }
    }
}

impl Operator {
    /// Forms must echo the session's token: another site cannot make the browser act.
    fn csrf_ok(&self, presented: &str) -> bool {
        bool::from(presented.as_bytes().ct_eq(self.csrf.as_bytes()))
    }
}

fn csrf_refused() -> Response {
    pages::error_page(
        StatusCode::FORBIDDEN,
        "this form has expired; reload the page and try again",
    )
}

#[derive(Deserialize)]
pub struct LoginForm {
    api_key: String,
}

/// The cookie: HttpOnly (no script reads it), SameSite=Strict (no other site sends it),
/// Secure when the console is served over https.
fn session_cookie(state: &AppState, token: &str, max_age_s: i64) -> String {
    let secure = if state.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    format!("{COOKIE_NAME}={token}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={max_age_s}{secure}")
}

async fn login(
    State(state): State<AppState>,
    auth::ClientAddr(client): auth::ClientAddr,
    Form(form): Form<LoginForm>,
) -> Response {
    let identity = match auth::check_key(&state, client, form.api_key.trim()).await {
        Ok(identity) => identity,
        Err(ApiError::RateLimited { .. }) => {
            return pages::login_page(
                Some("Too many failed attempts; wait a minute."),
                StatusCode::TOO_MANY_REQUESTS,
            )
        }
        Err(ApiError::Unauthorized) => {
            return pages::login_page(Some("That key is not valid."), StatusCode::UNAUTHORIZED)
        }
        Err(e) => return e.into_response(),
    };
    let (token, _) = match sessions::open(state.engine.store(), &identity).await {
        Ok(t) => t,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let cookie = session_cookie(&state, &token, sessions::SESSION_TTL_MS / 1000);
    ([(SET_COOKIE, cookie)], Redirect::to("/console")).into_response()
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

async fn logout(
    State(state): State<AppState>,
    op: Operator,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !op.csrf_ok(&form.csrf) {
        return csrf_refused();
    }
    if let Err(e) = sessions::close(state.engine.store(), &op.token).await {
        return ApiError::from(e).into_response();
    }
    let cookie = session_cookie(&state, "", 0);
    ([(SET_COOKIE, cookie)], Redirect::to("/console/login")).into_response()
}

#[derive(Deserialize)]
pub struct StatusForm {
    csrf: String,
    status: String,
}

/// The header's switch: the signed-in rep sets its own status, through the same use case
/// (and audit entry) as `PUT /v1/principals/{name}/status`.
async fn set_status(
    State(state): State<AppState>,
    op: Operator,
    headers: axum::http::HeaderMap,
    Form(form): Form<StatusForm>,
) -> Response {
    if !op.csrf_ok(&form.csrf) {
        return csrf_refused();
    }
    let Some(me) = op.identity.principal.clone() else {
        return pages::error_page(
            StatusCode::BAD_REQUEST,
            "this session belongs to no principal, so it has no status of its own",
        );
    };
    match crate::usecases::reps::set_status(&state.engine, &op.identity, &me, &form.status).await {
        // htmx swaps the answer into the header's badge; a plain form goes back to the list.
        Ok(rep) if headers.contains_key("hx-request") => {
            html(StatusCode::OK, pages::rep_badge(&rep))
        }
        Ok(_) => Redirect::to("/console").into_response(),
        Err(e) => pages::api_error_page(e.into()),
    }
}

/// The header's live badge: the signed-in rep's status and whether it is on a call.
async fn me(op: Operator) -> Response {
    match &op.rep {
        Some(rep) => html(StatusCode::OK, pages::rep_badge(rep)),
        None => StatusCode::NO_CONTENT.into_response(),
    }
}

/// Renders maud markup as an HTML answer.
fn html(status: StatusCode, markup: maud::Markup) -> Response {
    (status, Html(markup.into_string())).into_response()
}
