//! `POST /console/opportunities/{id}/{action}`: every button and form of the console that acts
//! on one lead. Each parses the form and calls the API's own use case (same role check, team
//! scope and audit entry), so a button a role may not use answers 403 here too; what to do is
//! decided there, not here.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::html;
use serde::Deserialize;

use super::super::error::ApiError;
use super::super::AppState;
use super::{csrf_refused, html as render, pages, queue, Operator};
use crate::usecases::commands::{self, Command, CommandFields};
use crate::usecases::{calls, messages, snooze, Error};

#[derive(Deserialize)]
pub struct ActionForm {
    csrf: String,
    reason: Option<String>,
    assignee: Option<String>,
    /// `outcome` only: booked, won, lost or nurture.
    stage: Option<String>,
    /// `text` and `email`: what the lead receives.
    body: Option<String>,
    /// `email` only: its subject.
    subject: Option<String>,
    /// `text` and `email`: the rendered form's own id, so a double submit sends one message.
    nonce: Option<String>,
    /// `snooze` only: one of `snooze::SnoozeFor`.
    #[serde(rename = "for")]
    snooze_for: Option<String>,
    /// Where to go afterwards: `detail`, `queue`, or nothing for an htmx button that stays put.
    back: Option<String>,
}

/// What a console button asks for.
enum Act {
    Command(Command),
    /// Reassign to the signed-in principal.
    Claim,
    /// Click to call, as the signed-in principal.
    Call,
    /// A stage change with a reason: one of `queue::OUTCOMES`.
    Outcome,
    /// A text written by hand (`messages::send`, through the compliance gate).
    Text,
    /// An email written by hand (`messages::send_email`, through the email gate).
    Email,
    /// Out of the queue for a while (`snooze::snooze`).
    Snooze,
    /// Back in the queue now.
    Unsnooze,
}

impl Act {
    fn parse(action: &str) -> Option<Self> {
        Some(match action {
            "pause" => Act::Command(Command::Pause),
            "resume" => Act::Command(Command::Resume),
            "reassign" => Act::Command(Command::Reassign),
            "escalate" => Act::Command(Command::Escalate),
            "hand-back" => Act::Command(Command::HandBack),
            "claim" => Act::Claim,
            "call" => Act::Call,
            "outcome" => Act::Outcome,
            "text" => Act::Text,
            "email" => Act::Email,
            "snooze" => Act::Snooze,
            "unsnooze" => Act::Unsnooze,
            _ => return None,
        })
    }
}

/// Where a form came from, and so where it goes back to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Back {
    Detail,
    Queue,
    /// An htmx button: the live feed shows the change.
    Stay,
}

impl Back {
    fn parse(back: Option<&str>) -> Self {
        match back {
            Some("detail") => Back::Detail,
            Some("queue") => Back::Queue,
            _ => Back::Stay,
        }
    }

    fn href(self, id: &str) -> Option<String> {
        match self {
            Back::Detail => Some(format!("/console/opportunities/{id}")),
            Back::Queue => Some("/console/queue".to_owned()),
            Back::Stay => None,
        }
    }
}

/// A refusal, said where the person will read it: a fragment for htmx, else a page with the
/// reason (the compliance gate's sentence for a refused text) and the way back.
fn refused(e: Error, back: Option<String>, htmx: bool) -> Response {
    let e = ApiError::from(e);
    let message = e.to_string();
    let status = e.into_response().status();
    if htmx {
        return render(
            status,
            html! { p.err role="alert" { (status.as_u16()) ": " (message) } },
        );
    }
    pages::error_page_back(status, &message, back.as_deref())
}

/// A button: the same use case, role check and audit entry as the API's.
pub async fn act(
    State(state): State<AppState>,
    op: Operator,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    Form(form): Form<ActionForm>,
) -> Response {
    if !op.csrf_ok(&form.csrf) {
        return csrf_refused();
    }
    let Some(act) = Act::parse(&action) else {
        return pages::error_page(StatusCode::NOT_FOUND, "no such action");
    };
    let back = Back::parse(form.back.as_deref());
    let htmx = headers.contains_key("hx-request");
    // A form's empty field means "not given".
    let blank = |s: Option<String>| s.filter(|s| !s.trim().is_empty());
    let engine = &state.engine;
    let who = &op.identity;
    let me = || {
        who.principal.clone().ok_or_else(|| {
            Error::invalid(
                "assignee",
                "this session belongs to no principal: sign in as yourself to claim or call",
            )
        })
    };
    let done: Result<(), Error> = match act {
        Act::Command(cmd) => {
            let fields = CommandFields {
                operator: None,
                reason: blank(form.reason),
                assignee: blank(form.assignee),
                hang_up: false,
            };
            commands::command(engine, who, &id, cmd, fields)
                .await
                .map(drop)
        }
        Act::Claim => match me() {
            Ok(me) => {
                let fields = CommandFields {
                    operator: None,
                    reason: blank(form.reason).or(Some("claimed from my queue".into())),
                    assignee: Some(me),
                    hang_up: false,
                };
                commands::command(engine, who, &id, Command::Reassign, fields)
                    .await
                    .map(drop)
            }
            Err(e) => Err(e),
        },
        Act::Call => match me() {
            Ok(_) => calls::call_now(engine, who, &id, None).await.map(drop),
            Err(e) => Err(e),
        },
        Act::Outcome => {
            let stage = form.stage.unwrap_or_default();
            if queue::OUTCOMES.contains(&stage.as_str()) {
                commands::set_stage(engine, who, &id, &stage, None, blank(form.reason))
                    .await
                    .map(drop)
            } else {
                Err(Error::invalid(
                    "stage",
                    "must be booked, won, lost or nurture",
                ))
            }
        }
        Act::Text => {
            let body = form.body.unwrap_or_default();
            match form.nonce.map(messages::Once::parse).transpose() {
                Ok(once) => messages::send(engine, who, &id, body, None, once)
                    .await
                    .map(drop),
                Err(e) => Err(e),
            }
        }
        Act::Email => {
            let (subject, body) = (
                form.subject.unwrap_or_default(),
                form.body.unwrap_or_default(),
            );
            match form.nonce.map(messages::Once::parse).transpose() {
                Ok(once) => messages::send_email(engine, who, &id, subject, body, None, once)
                    .await
                    .map(drop),
                Err(e) => Err(e),
            }
        }
        Act::Snooze => {
            match snooze::SnoozeFor::parse(form.snooze_for.as_deref().unwrap_or_default()) {
                Ok(choice) => snooze::snooze(engine, who, &id, choice, form.reason)
                    .await
                    .map(drop),
                Err(e) => Err(e),
            }
        }
        Act::Unsnooze => snooze::unsnooze(engine, who, &id).await.map(drop),
    };
    match (done, back.href(&id)) {
        (Ok(()), Some(to)) => Redirect::to(&to).into_response(),
        (Ok(()), None) => StatusCode::NO_CONTENT.into_response(),
        (Err(e), to) => refused(e, to, htmx),
    }
}
