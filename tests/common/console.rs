//! A browser's view of the console for the console's tests: sign in, read a page, post a form,
//! each answer checked as it comes (redirects are not followed).
#![allow(dead_code, clippy::unwrap_used)]

use reqwest::{header, redirect, Client, Method, StatusCode};
use serde_json::json;

use crate::common::TestApp;

/// A browser-like client that does not follow redirects, so each answer can be checked.
pub fn browser() -> Client {
    Client::builder()
        .redirect(redirect::Policy::none())
        .build()
        .unwrap()
}

/// Signs in with `key`; returns the session cookie (`nx_session=...`) and the set-cookie line.
pub async fn sign_in(t: &TestApp, key: &str) -> (String, String) {
    let resp = browser()
        .post(format!("{}/console/login", t.base))
        .form(&[("api_key", key)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let set = resp.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    let cookie = set.split(';').next().unwrap().to_owned();
    (cookie, set)
}

pub async fn get_page(t: &TestApp, cookie: &str, path: &str) -> (StatusCode, String) {
    let resp = browser()
        .get(format!("{}{path}", t.base))
        .header(header::COOKIE, cookie)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.text().await.unwrap())
}

pub async fn post_form(t: &TestApp, cookie: &str, path: &str, form: &[(&str, &str)]) -> StatusCode {
    post_form_answer(t, cookie, path, form).await.0
}

/// Posts a form; answers the status and where a redirect goes (empty if none).
pub async fn post_form_answer(
    t: &TestApp,
    cookie: &str,
    path: &str,
    form: &[(&str, &str)],
) -> (StatusCode, String) {
    let resp = send_form(t, cookie, path, form).await;
    let location = resp
        .headers()
        .get(header::LOCATION)
        .map(|l| l.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (resp.status(), location)
}

/// Posts a form without following a redirect; answers the status and the page.
#[allow(dead_code)] // not every console suite reads the page
pub async fn post_form_page(
    t: &TestApp,
    cookie: &str,
    path: &str,
    form: &[(&str, &str)],
) -> (StatusCode, String) {
    let resp = send_form(t, cookie, path, form).await;
    (resp.status(), resp.text().await.unwrap())
}

/// Posts a form as the signed-in browser would, not following a redirect.
async fn send_form(
    t: &TestApp,
    cookie: &str,
    path: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    browser()
        .post(format!("{}{path}", t.base))
        .header(header::COOKIE, cookie)
        .form(form)
        .send()
        .await
        .unwrap()
}

/// The CSRF token a page's forms carry.
pub fn csrf(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").unwrap() + 19;
    page[at..at + 64].to_owned()
}

/// Creates a lead named `name` with phone `phone` (and `team`, SLA `sla` seconds).
pub async fn lead(
    t: &TestApp,
    external_id: &str,
    name: &str,
    phone: &str,
    team: Option<&str>,
    sla: u64,
) -> String {
    let mut body = crate::common::lead(external_id, sla);
    body["contact"]["name"] = json!(name);
    body["contact"]["phone"] = json!(phone);
    if let Some(team) = team {
        body["team"] = json!(team);
    }
    let (status, body) = t.post("/v1/opportunities", body).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

/// The ids of the rows a page lists, in order.
pub fn row_ids(page: &str) -> Vec<String> {
    page.split("tr data-id=\"")
        .skip(1)
        .map(|rest| rest[..36].to_owned())
        .collect()
}

/// Makes `name` (of `role`) a rep of `team` with `status`, without a simulator (no call is placed).
pub async fn rep_profile(
    t: &TestApp,
    name: &str,
    role: &str,
    team: Option<&str>,
    phone: &str,
    status: &str,
) {
    let (code, body) = t
        .post(
            "/v1/principals",
            json!({"name": name, "role": role, "team": team}),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    let (code, body) = t
        .request(
            Method::PUT,
            &format!("/v1/principals/{name}/rep"),
            Some(&t.key),
            Some(json!({"phone": phone, "time_zone": "America/New_York"})),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let (code, body) = t
        .post(
            &format!("/v1/principals/{name}/status"),
            json!({"status": status}),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
}
