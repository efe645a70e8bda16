#![allow(clippy::unwrap_used)]
//! Email as a lead channel (issue #14, ADR 0049), through a real SMTP server on loopback
//! (`aiosmtpd`) and the carrier simulator, every call going unanswered: the playbook's
//! first-touch email carries both RFC 8058 headers and the tenant's postal address; its one-click
//! link opts the lead out of email only (the next email is skipped, the next text still goes);
//! a forged link is refused; a hard bounce marks the address invalid and the cadence goes on;
//! without a postal address nothing is sent and the timeline says why.

mod common;
#[path = "common/flow.rs"]
mod flow;
#[path = "common/mail.rs"]
mod mail;
#[path = "common/smtp.rs"]
mod smtp;

use std::time::Duration;

use common::{eventually, Backend, TestApp};
use flow::{texts_to, Setup};
use mail::{entry, lead_in, mail, mail_setup, set_postal, thread_emails, POSTAL};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use smtp::{Mode, SmtpSink};

async fn unsubscribe(app: &TestApp, url: &str) -> (StatusCode, Value) {
    unsubscribe_with(app, url, &[]).await
}

async fn unsubscribe_with(
    app: &TestApp,
    url: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut req = app.client.post(url);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let resp = req
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    let status = resp.status();
    assert!(!status.is_redirection(), "RFC 8058: no redirect");
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn one_click_opts_the_lead_out_of_email_only(backend: Backend) {
    let sink = SmtpSink::start(Mode::Accept);
    let (
        Setup {
            app,
            sim,
            public_url,
            ..
        },
        _dir,
    ) = mail_setup(backend, &sink).await;
    set_postal(&app, POSTAL).await;
    let id = lead_in(&app, "mail-1", "ana.lima@example.com").await;
    let phone = common::lead_phone("mail-1");

    // The first touch, and the follow-up after the first missed call.
    let got = mail(&sink, 2).await;
    let first = got
        .iter()
        .find(|m| m.contains("Subject: Hi Ana, thanks for your request"))
        .unwrap_or_else(|| panic!("no first-touch email: {got:#?}"));
    assert!(
        first.starts_with("X-Envelope-To: ana.lima@example.com\r\n"),
        "{first}"
    );
    assert!(
        first.contains("From: \"Acme Sales\" <sales@acme.test>"),
        "{first}"
    );
    assert!(
        first.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"),
        "{first}"
    );
    let header = first
        .lines()
        .find_map(|l| l.strip_prefix("List-Unsubscribe: <"))
        .unwrap_or_else(|| panic!("no List-Unsubscribe: {first}"));
    let url = header.trim_end().trim_end_matches('>').to_owned();
    assert!(url.starts_with(&format!("{public_url}/u/")), "{url}");
    assert!(first.contains("Hello Ana Lima,"), "{first}");
    assert!(first.contains(POSTAL), "the footer: {first}");
    assert!(
        first.contains(&format!("To stop receiving these emails: {url}")),
        "{first}"
    );
    assert!(got
        .iter()
        .any(|m| m.contains("Subject: We just tried to call you, Ana")));

    // The thread shows the emails, accepted by the server.
    let emails = eventually(Duration::from_secs(20), "the thread's emails", || async {
        let items = thread_emails(&app, &id).await;
        (items.len() == 2 && items.iter().all(|m| m["status"] == "sent")).then_some(items)
    })
    .await;
    assert_eq!(emails[0]["subject"], "Hi Ana, thanks for your request");
    assert_eq!(emails[0]["direction"], "outbound");

    // Looking changes nothing; a forged or malformed link is refused by name.
    let page = app.client.get(&url).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("Unsubscribe") && html.contains("a***@example.com"),
        "{html}"
    );
    // A character inside the payload (the last one carries padding bits, and changing it may
    // break the base64 rather than the signature).
    let mut forged: Vec<char> = url.chars().collect();
    let inside = forged.len() - 10;
    forged[inside] = if forged[inside] == 'A' { 'B' } else { 'A' };
    let forged: String = forged.into_iter().collect();
    for bad in [forged, format!("{public_url}/u/nonsense")] {
        let (status, err) = unsubscribe(&app, &bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {err}");
        assert_eq!(err["field"], "token", "{err}");
    }

    // One click, twice: unsubscribed once. The second client adds an Idempotency-Key, which a
    // public page takes no notice of (it asks for no API key either).
    for headers in [&[][..], &[("idempotency-key", "click-2")][..]] {
        let (status, body) = unsubscribe_with(&app, &url, headers).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["status"], "unsubscribed", "{body}");
        assert_eq!(body["channel"], "email", "{body}");
    }
    entry(&app, &id, "the unsubscribe", |e| {
        e["kind"] == "email_unsubscribed"
    })
    .await;

    // The second call goes unanswered: its text goes, its email does not.
    let skipped = entry(&app, &id, "the skipped email", |e| {
        e["kind"] == "email_skipped" && e["data"]["reason"] == "unsubscribed"
    })
    .await;
    assert_eq!(skipped["data"]["step"], "after_missed_call");
    eventually(Duration::from_secs(20), "the second text", || async {
        (texts_to(&sim, &phone) >= 2).then_some(())
    })
    .await;
    assert_eq!(sink.messages().len(), 2, "no email after the unsubscribe");
    // The opt-out holds for the tenant, not only this lead: once this opportunity is closed,
    // another form at the same address (another number, a new opportunity: a live one would
    // take the form in, ADR 0046) is not emailed either.
    let (status, body) = app
        .post(
            &format!("/v1/opportunities/{id}/stage"),
            json!({"stage": "lost", "reason": "stopped answering"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let again = lead_in(&app, "mail-1-again", "ANA.LIMA@EXAMPLE.COM").await;
    let refused = entry(&app, &again, "the suppressed email", |e| {
        e["kind"] == "email_status" && e["data"]["why"] == "suppressed"
    })
    .await;
    assert!(
        refused["reason"].as_str().unwrap().contains("unsubscribed"),
        "{refused}"
    );
    assert_eq!(sink.messages().len(), 2, "nothing to the address again");
    let timeline = app.timeline(&id).await;
    let count = |kind: &str| timeline.iter().filter(|e| e["kind"] == kind).count();
    assert_eq!(count("email_unsubscribed"), 1, "idempotent");
    assert_eq!(count("call_placed"), 2, "calls are not affected");
    let (_, view) = app.get(&format!("/v1/opportunities/{id}")).await;
    assert_eq!(view["email"]["unsubscribed"], true, "{view}");
    assert_eq!(view["contact"]["consent"]["email"], true, "{view}");
    let (_, audit) = app.get("/v1/audit?action=email_unsubscribe").await;
    // Every click is audited; one of them did it (a second one answered before the first was
    // applied is a duplicate; one after it is answered without a new entry).
    let items = audit["items"].as_array().unwrap();
    assert!(
        items
            .iter()
            .all(|e| e["target_id"] == id.as_str() && e["principal"] == "unsubscribe_link"),
        "{audit}"
    );
    let firsts = items
        .iter()
        .filter(|e| e["after"]["duplicate"] == false)
        .count();
    assert_eq!(firsts, 1, "{audit}");
    sim.shutdown().await;
    app.stop().await;
}

async fn a_hard_bounce_marks_the_address_invalid_and_the_cadence_goes_on(backend: Backend) {
    let sink = SmtpSink::start(Mode::RefuseRcpt("gone@example.com"));
    let (Setup { app, sim, .. }, _dir) = mail_setup(backend, &sink).await;
    set_postal(&app, POSTAL).await;
    let id = lead_in(&app, "mail-2", "gone@example.com").await;

    let bounced = entry(&app, &id, "the bounce", |e| e["kind"] == "email_bounced").await;
    assert_eq!(bounced["data"]["address"], "gone@example.com");
    assert_eq!(bounced["data"]["code"], 550);
    assert!(
        bounced["data"]["error"].as_str().unwrap().contains("5.1.1"),
        "{bounced}"
    );
    // Later emails skip the address; the calls go on to the last attempt.
    entry(&app, &id, "the skipped follow-up", |e| {
        e["kind"] == "email_skipped" && e["data"]["reason"] == "address_invalid"
    })
    .await;
    eventually(Duration::from_secs(40), "the second call", || async {
        let t = app.timeline(&id).await;
        (t.iter().filter(|e| e["kind"] == "call_outcome").count() == 2).then_some(())
    })
    .await;
    assert!(sink.messages().is_empty());
    let (_, view) = app.get(&format!("/v1/opportunities/{id}")).await;
    assert_eq!(view["email"]["bounced"], "gone@example.com", "{view}");
    // The first-touch email is shown bounced (a follow-up asked for before the bounce was
    // known may have bounced too, or been held back at dispatch).
    let emails = thread_emails(&app, &id).await;
    assert_eq!(emails[0]["status"], "bounced", "{emails:?}");
    assert_eq!(emails[0]["error_code"], 550, "{emails:?}");
    sim.shutdown().await;
    app.stop().await;
}

async fn without_a_postal_address_nothing_is_sent_and_the_timeline_says_why(backend: Backend) {
    let sink = SmtpSink::start(Mode::Accept);
    let (Setup { app, sim, .. }, _dir) = mail_setup(backend, &sink).await;
    // A bad address is refused by field before anything exists.
    let mut bad = common::lead("mail-bad", 600);
    bad["contact"]["email"] = json!("ana@");
    let (status, err) = app.post("/v1/opportunities", bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert_eq!(err["field"], "contact.email", "{err}");
    // An address the SMTP client cannot read is refused only when the lead consented to email:
    // otherwise it is a CRM field, and the lead's calls and texts go on.
    let mut odd = common::lead("mail-odd", 600);
    odd["contact"]["email"] = json!("ana(home)@example.com");
    let (status, body) = app.post("/v1/opportunities", odd.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    odd["external_id"] = json!("mail-odd-consented");
    odd["contact"]["phone"] = json!(common::lead_phone("mail-odd-consented"));
    odd["contact"]["consent"]["email"] = json!(true);
    let (status, err) = app.post("/v1/opportunities", odd).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert_eq!(err["field"], "contact.email", "{err}");
    // And a postal address too long is refused by field.
    let (status, err) = app
        .request(
            Method::PUT,
            "/v1/settings",
            Some(&app.key),
            Some(json!({ "postal_address": "x".repeat(501) })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert_eq!(err["field"], "postal_address", "{err}");

    let id = lead_in(&app, "mail-3", "ana@example.com").await;
    let failed = entry(&app, &id, "the email not sent", |e| {
        e["kind"] == "email_status" && e["data"]["event"] == "failed"
    })
    .await;
    assert_eq!(failed["data"]["why"], "no_postal_address", "{failed}");
    assert!(
        failed["reason"].as_str().unwrap().contains("CAN-SPAM"),
        "{failed}"
    );
    assert!(sink.messages().is_empty());
    let emails = thread_emails(&app, &id).await;
    assert_eq!(emails[0]["status"], "failed", "{emails:?}");
    sim.shutdown().await;
    app.stop().await;
}

both_backends!(
    one_click_opts_the_lead_out_of_email_only,
    a_hard_bounce_marks_the_address_invalid_and_the_cadence_goes_on,
    without_a_postal_address_nothing_is_sent_and_the_timeline_says_why,
);
