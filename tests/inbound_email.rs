#![allow(clippy::unwrap_used)]
//! Inbound email (issue #14, ADR 0052), as a tenant's Mailgun route posts it: a lead email goes
//! out through a real SMTP server on loopback with a reply address; the lead's answer, posted
//! by the relay (multipart, signed as Mailgun signs: hex HMAC-SHA256 of timestamp ‖ token,
//! computed here apart from the product's code), lands on the thread and engages the lead; a
//! bad signature, a stale timestamp or a tenant without the setting is refused and writes
//! nothing; a retry is a duplicate; mail from the lead's address without the reply address still
//! finds its opportunity; a stranger's is answered and dropped; an out-of-office is ignored.

mod common;
#[path = "common/console.rs"]
mod console;
#[path = "common/flow.rs"]
mod flow;
#[path = "common/mail.rs"]
mod mail;
#[path = "common/smtp.rs"]
mod smtp;

use common::{Backend, TestApp};
use flow::Setup;
use hmac::Mac;
use mail::{entry, lead_in, mail, mail_setup, set_postal, thread_emails, POSTAL};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use smtp::{Mode, SmtpSink};

const SIGNING_KEY: &str = "key-test-0123456789abcdef";

/// Mailgun's signature, written apart from `neuronx_adapters::inbound_mail`.
fn sign(key: &str, timestamp: &str, token: &str) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(format!("{timestamp}{token}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// A post as Mailgun's `forward()` to a URL ending in `mime` makes it: multipart/form-data.
struct Post<'a> {
    recipient: &'a str,
    mime: &'a str,
    key: &'a str,
    /// Seconds before now the post was signed.
    age: i64,
}

impl Post<'_> {
    fn fields(&self) -> Vec<(String, String)> {
        let timestamp = (chrono::Utc::now().timestamp() - self.age).to_string();
        let token = uuid::Uuid::new_v4().simple().to_string();
        let signature = sign(self.key, &timestamp, &token);
        vec![
            ("recipient".into(), self.recipient.into()),
            ("sender".into(), "bounce@mail.example.com".into()),
            ("body-mime".into(), self.mime.into()),
            ("timestamp".into(), timestamp),
            ("token".into(), token),
            ("signature".into(), signature),
        ]
    }
}

fn multipart(fields: &[(String, String)]) -> (String, String) {
    let boundary = "----nxboundary7MA4YWxkTrZu0gW";
    let mut body = String::new();
    for (name, value) in fields {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        ));
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn post(app: &TestApp, tenant: &str, fields: &[(String, String)]) -> (StatusCode, Value) {
    let (content_type, body) = multipart(fields);
    let url = format!("{}/webhooks/mailgun/{tenant}/mime", app.base);
    let resp = app
        .client
        .post(url)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn configure(app: &TestApp, reply_domain: Option<&str>) -> Value {
    let (status, body) = app
        .request(
            Method::PUT,
            "/v1/channels/inbound-email",
            Some(&app.key),
            Some(json!({"signing_key": SIGNING_KEY, "reply_domain": reply_domain})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// A header's value, its folded lines joined.
fn header(message: &str, name: &str) -> String {
    let mut lines = message
        .lines()
        .skip_while(|l| !l.starts_with(&format!("{name}: ")));
    let first = lines
        .next()
        .unwrap_or_else(|| panic!("no {name}: {message}"));
    let mut value = first[name.len() + 2..].trim_end().to_owned();
    for more in lines.take_while(|l| l.starts_with([' ', '\t'])) {
        value.push(' ');
        value.push_str(more.trim());
    }
    value
}

fn reply_mime(from: &str, to: &str, subject: &str, id: &str, text: &str) -> String {
    format!(
        "From: Ana Lima <{from}>\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n\r\n\
         On Mon, 7 Dec 2026, Acme Sales <sales@acme.test> wrote:\r\n> Hello Ana Lima,\r\n"
    )
}

async fn a_reply_lands_on_its_thread_and_engages_the_lead(backend: Backend) {
    let sink = SmtpSink::start(Mode::Accept);
    let (Setup { app, sim, .. }, _dir) = mail_setup(backend, &sink).await;
    set_postal(&app, POSTAL).await;
    let view = configure(&app, Some("Reply.Acme.test")).await;
    assert_eq!(view["reply_domain"], "reply.acme.test", "{view}");
    assert_eq!(view["signing_key"], "set", "{view}");
    let tenant = app.tenant.clone();
    assert!(
        view["webhook_url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/webhooks/mailgun/{tenant}/mime")),
        "{view}"
    );
    let (_, read) = app.get("/v1/channels/inbound-email").await;
    assert!(!read.to_string().contains(SIGNING_KEY), "{read}");

    let id = lead_in(&app, "in-1", "ana.lima@example.com").await;
    let got = mail(&sink, 1).await;
    let first = &got[0];
    let reply_to = header(first, "Reply-To");
    assert!(
        reply_to.starts_with("reply+") && reply_to.ends_with("@reply.acme.test"),
        "{reply_to}"
    );
    assert!(
        header(first, "List-Unsubscribe")
            .contains(&format!("<mailto:{reply_to}?subject=unsubscribe>")),
        "{first}"
    );

    // Refused before anything is written: a wrong key, an old post, no signature, another
    // tenant's id, an unreadable message.
    let mime = reply_mime(
        "ana.lima@example.com",
        &reply_to,
        "Re: Hi Ana",
        "r1@mail.example.com",
        "Yes, call me at 3pm.",
    );
    let good = Post {
        recipient: &reply_to,
        mime: &mime,
        key: SIGNING_KEY,
        age: 0,
    };
    let wrong_key = Post {
        key: "key-someone-else",
        ..good
    };
    let (status, err) = post(&app, &tenant, &wrong_key.fields()).await;
    assert_eq!(
        (status, &err["error"]),
        (StatusCode::FORBIDDEN, &json!("bad_signature")),
        "{err}"
    );
    let stale = Post {
        age: 10 * 3600,
        ..good
    };
    let (status, err) = post(&app, &tenant, &stale.fields()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{err}");
    assert_eq!(err["field"], "timestamp", "{err}");
    let unsigned: Vec<_> = good
        .fields()
        .into_iter()
        .filter(|(k, _)| k != "signature")
        .collect();
    let (status, err) = post(&app, &tenant, &unsigned).await;
    assert_eq!(
        (status, &err["error"]),
        (StatusCode::FORBIDDEN, &json!("missing_signature"))
    );
    let other = uuid::Uuid::new_v4().to_string();
    let (status, err) = post(&app, &other, &good.fields()).await;
    assert_eq!(
        (status, &err["error"]),
        (StatusCode::FORBIDDEN, &json!("not_configured"))
    );
    let no_from = Post {
        mime: "Subject: x\r\n\r\nhi",
        ..good
    };
    let (status, err) = post(&app, &tenant, &no_from.fields()).await;
    assert_eq!(status, StatusCode::NOT_ACCEPTABLE, "{err}");
    assert_eq!(err["field"], "From", "{err}");
    let no_mime: Vec<_> = good
        .fields()
        .into_iter()
        .filter(|(k, _)| k != "body-mime")
        .collect();
    let (status, err) = post(&app, &tenant, &no_mime).await;
    assert_eq!(
        (status, &err["field"]),
        (StatusCode::NOT_ACCEPTABLE, &json!("body-mime"))
    );
    assert!(
        !app.timeline(&id)
            .await
            .iter()
            .any(|e| e["kind"] == "replied"),
        "nothing written by a refused post"
    );

    // The reply, and the relay's retry of it.
    let (status, body) = post(&app, &tenant, &good.fields()).await;
    assert_eq!(
        (status, &body["outcome"]),
        (StatusCode::OK, &json!("reply")),
        "{body}"
    );
    let (status, body) = post(&app, &tenant, &good.fields()).await;
    assert_eq!(
        (status, &body["outcome"]),
        (StatusCode::OK, &json!("duplicate")),
        "{body}"
    );
    let replied = entry(&app, &id, "the reply", |e| e["kind"] == "replied").await;
    assert_eq!(replied["data"]["channel"], "email", "{replied}");
    assert_eq!(
        replied["data"]["body"], "Yes, call me at 3pm.",
        "the quote is cut: {replied}"
    );
    entry(&app, &id, "engaged", |e| {
        e["kind"] == "stage_changed" && e["data"]["to"] == "engaged"
    })
    .await;
    let inbound: Vec<Value> = thread_emails(&app, &id)
        .await
        .into_iter()
        .filter(|m| m["direction"] == "inbound")
        .collect();
    assert_eq!(inbound.len(), 1, "{inbound:?}");
    assert_eq!(inbound[0]["subject"], "Re: Hi Ana");
    assert_eq!(inbound[0]["from"], "ana.lima@example.com");
    assert_eq!(inbound[0]["status"], "received");
    assert_eq!(inbound[0]["by"], "contact");

    // From the lead's address to the tenant's own (no reply address): found by the sender.
    let direct = reply_mime(
        "ANA.LIMA@example.com",
        "sales@acme.test",
        "Another question",
        "r2@mail.example.com",
        "Do you also do weekends?",
    );
    let by_sender = Post {
        recipient: "sales@acme.test",
        mime: &direct,
        ..good
    };
    let (status, body) = post(&app, &tenant, &by_sender.fields()).await;
    assert_eq!(
        (status, &body["outcome"]),
        (StatusCode::OK, &json!("reply")),
        "{body}"
    );
    entry(&app, &id, "the second reply", |e| {
        e["kind"] == "replied" && e["data"]["body"] == "Do you also do weekends?"
    })
    .await;

    // A stranger, and an out-of-office: answered, nothing written.
    let stranger = reply_mime(
        "bo@else.test",
        "sales@acme.test",
        "hi",
        "r3@x",
        "who are you",
    );
    let post_stranger = Post {
        recipient: "sales@acme.test",
        mime: &stranger,
        ..good
    };
    let (status, body) = post(&app, &tenant, &post_stranger.fields()).await;
    assert_eq!(
        (status, &body["outcome"]),
        (StatusCode::OK, &json!("unknown")),
        "{body}"
    );
    let away = format!(
        "Auto-Submitted: auto-replied\r\n{}",
        reply_mime(
            "ana.lima@example.com",
            &reply_to,
            "Out of office",
            "r4@x",
            "Back on Monday."
        )
    );
    let (status, body) = post(
        &app,
        &tenant,
        &Post {
            mime: &away,
            ..good
        }
        .fields(),
    )
    .await;
    assert_eq!(
        (status, &body["outcome"]),
        (StatusCode::OK, &json!("ignored")),
        "{body}"
    );
    let replies = app
        .timeline(&id)
        .await
        .into_iter()
        .filter(|e| e["kind"] == "replied")
        .count();
    assert_eq!(
        replies, 2,
        "the reply, the direct one; not the out-of-office"
    );

    // The rep answers by email, by hand: through the email gate, with the reply address, on
    // the thread as a person's, and it takes the conversation over.
    let path = format!("/v1/opportunities/{id}/messages");
    for (body, field) in [
        (json!({"channel": "fax", "body": "x"}), "channel"),
        (json!({"body": "x", "subject": "Hi"}), "subject"),
        (json!({"channel": "email", "body": "x"}), "subject"),
        (
            json!({"channel": "email", "subject": "a\nb", "body": "x"}),
            "subject",
        ),
    ] {
        let (status, err) = app.post(&path, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
        assert_eq!(err["field"], field, "{err}");
    }
    let answer = json!({"channel": "email", "subject": "Re: Hi Ana", "body": "Sure, 3pm works.",
        "by": "rep-1"});
    let (status, body) = app.post(&path, answer).await;
    assert!(
        status == StatusCode::OK || status == StatusCode::ACCEPTED,
        "{body}"
    );
    let got = mail(&sink, 2).await;
    let sent = got
        .iter()
        .find(|m| m.contains("Subject: Re: Hi Ana"))
        .unwrap_or_else(|| panic!("no answer: {got:#?}"));
    assert_eq!(header(sent, "Reply-To"), reply_to, "{sent}");
    assert!(
        sent.contains("Sure, 3pm works.") && sent.contains(POSTAL),
        "{sent}"
    );
    let outbound = thread_emails(&app, &id).await;
    let mine = outbound
        .iter()
        .find(|m| m["subject"] == "Re: Hi Ana" && m["direction"] == "outbound")
        .unwrap_or_else(|| panic!("{outbound:?}"));
    assert_eq!(
        (&mine["human"], &mine["by"]),
        (&json!(true), &json!("operator:rep-1"))
    );
    entry(&app, &id, "the takeover", |e| e["kind"] == "taken_over").await;

    // And from the console: the lead's page shows the lead's email and answers by email; a
    // second submit of the same form sends nothing more.
    let (cookie, _) = console::sign_in(&app, &app.key).await;
    let page_path = format!("/console/opportunities/{id}");
    let (status, page) = console::get_page(&app, &cookie, &page_path).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("send email") && page.contains("Yes, call me at 3pm."),
        "{page}"
    );
    let form = [
        ("csrf", console::csrf(&page)),
        ("back", "detail".to_owned()),
        ("nonce", uuid::Uuid::new_v4().to_string()),
        ("subject", "Confirming 3pm".to_owned()),
        ("body", "Talk then.".to_owned()),
    ];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let email_path = format!("/console/opportunities/{id}/email");
    let (status, page) = console::post_form_page(&app, &cookie, &email_path, &form).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    let (status, page) = console::post_form_page(&app, &cookie, &email_path, &form).await;
    assert_eq!(status, StatusCode::CONFLICT, "{page}");
    assert!(page.contains("already submitted"), "{page}");
    let mut no_subject = form.clone();
    no_subject.retain(|(k, _)| *k != "subject");
    let status = console::post_form(&app, &cookie, &email_path, &no_subject).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    mail(&sink, 3).await;
    let confirming = |all: &[String]| {
        all.iter()
            .filter(|m| m.contains("Subject: Confirming 3pm"))
            .count()
    };
    assert_eq!(confirming(&sink.messages()), 1, "one email for two submits");
    sim.shutdown().await;
    app.stop().await;
}

fn dsn(recipient: &str, reply_to: &str, status: &str) -> String {
    format!(
        "From: MAILER-DAEMON@mx.example.com\r\nTo: sales@acme.test\r\n\
         Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn-{status}@mx>\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=r1\r\n\r\n\
         --r1\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n\
         --r1\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n\
         Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: {status}\r\n\
         Diagnostic-Code: smtp; 550 {status} user unknown\r\n\
         --r1\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: sales@acme.test\r\n\
         To: {recipient}\r\nReply-To: {reply_to}\r\nSubject: Hi\r\n--r1--\r\n"
    )
}

fn complaint(recipient: &str) -> String {
    format!(
        "From: fbl@isp.example\r\nSubject: abuse report\r\nMessage-ID: <arf-1@isp>\r\n\
         Content-Type: multipart/report; report-type=feedback-report; boundary=f\r\n\r\n\
         --f\r\nContent-Type: text/plain\r\n\r\nAn abuse report.\r\n\
         --f\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\n\
         Version: 1\r\n--f\r\nContent-Type: message/rfc822\r\n\r\nFrom: sales@acme.test\r\n\
         To: {recipient}\r\nSubject: Hi\r\n\r\nHello\r\n--f--\r\n"
    )
}

async fn bounces_complaints_and_unsubscribes_by_email_close_email_only(backend: Backend) {
    let sink = SmtpSink::start(Mode::Accept);
    let (Setup { app, sim, .. }, _dir) = mail_setup(backend, &sink).await;
    set_postal(&app, POSTAL).await;
    configure(&app, Some("reply.acme.test")).await;
    let tenant = app.tenant.clone();
    let bounced = lead_in(&app, "in-2", "gone@example.com").await;
    let complained = lead_in(&app, "in-3", "spam@example.com").await;
    let leaving = lead_in(&app, "in-4", "bye@example.com").await;
    let got = mail(&sink, 3).await;
    let reply_to = |to: &str| {
        let m = got
            .iter()
            .find(|m| m.starts_with(&format!("X-Envelope-To: {to}\r\n")))
            .unwrap_or_else(|| panic!("no email to {to}: {got:#?}"));
        header(m, "Reply-To")
    };
    let sign_post = |recipient: &str, mime: &str| {
        Post {
            recipient,
            mime,
            key: SIGNING_KEY,
            age: 0,
        }
        .fields()
    };

    // A delay is nothing; a policy refusal is not the address's fault; a 5.1.1 is.
    let gone_reply = reply_to("gone@example.com");
    for (status, outcome) in [
        ("4.4.1", "ignored"),
        ("5.7.1", "ignored"),
        ("5.1.1", "bounce"),
    ] {
        let mut mime = dsn("gone@example.com", &gone_reply, status);
        if status.starts_with('4') {
            mime = mime.replace("Action: failed", "Action: delayed");
        }
        let (code, body) = post(&app, &tenant, &sign_post("sales@acme.test", &mime)).await;
        assert_eq!(
            (code, &body["outcome"]),
            (StatusCode::OK, &json!(outcome)),
            "{status}: {body}"
        );
    }
    let entry_b = entry(&app, &bounced, "the late bounce", |e| {
        e["kind"] == "email_bounced"
    })
    .await;
    assert_eq!(entry_b["data"]["status"], "5.1.1", "{entry_b}");
    let (_, view) = app.get(&format!("/v1/opportunities/{bounced}")).await;
    assert_eq!(view["email"]["bounced"], "gone@example.com", "{view}");

    // A complaint, with no reply address in it: found by the address it was sent to.
    let (code, body) = post(
        &app,
        &tenant,
        &sign_post("fbl@reply.acme.test", &complaint("spam@example.com")),
    )
    .await;
    assert_eq!(
        (code, &body["outcome"]),
        (StatusCode::OK, &json!("complaint")),
        "{body}"
    );
    let entry_c = entry(&app, &complained, "the complaint", |e| {
        e["kind"] == "email_unsubscribed"
    })
    .await;
    assert_eq!(entry_c["data"]["via"], "complaint", "{entry_c}");

    // The List-Unsubscribe mailto: an email with subject "unsubscribe" to the reply address.
    let bye_reply = reply_to("bye@example.com");
    let mime = reply_mime("bye@example.com", &bye_reply, "unsubscribe", "u1@x", "");
    let (code, body) = post(&app, &tenant, &sign_post(&bye_reply, &mime)).await;
    assert_eq!(
        (code, &body["outcome"]),
        (StatusCode::OK, &json!("unsubscribe")),
        "{body}"
    );
    let entry_u = entry(&app, &leaving, "the unsubscribe by email", |e| {
        e["kind"] == "email_unsubscribed"
    })
    .await;
    assert_eq!(entry_u["data"]["via"], "mailto", "{entry_u}");
    // A reply address of one lead, with the subject, unsubscribes that lead only; forged, it
    // is no reply address at all (and "unsubscribe" from nobody we know is dropped).
    let forged = bye_reply.replacen("reply+", "reply+a", 1);
    let mime = reply_mime("x@nowhere.test", &forged, "unsubscribe", "u2@x", "");
    let (code, body) = post(&app, &tenant, &sign_post(&forged, &mime)).await;
    assert_eq!(
        (code, &body["outcome"]),
        (StatusCode::OK, &json!("unknown")),
        "{body}"
    );

    // All three are suppressed for the tenant: a new lead at any of them gets no email, and
    // the thread of each shows nothing new went out.
    for (external, address, why) in [
        ("in-5", "gone@example.com", "suppressed"),
        ("in-6", "spam@example.com", "suppressed"),
        ("in-7", "bye@example.com", "suppressed"),
    ] {
        let (status, body) = app
            .post(
                &format!(
                    "/v1/opportunities/{}/stage",
                    match address {
                        "gone@example.com" => &bounced,
                        "spam@example.com" => &complained,
                        _ => &leaving,
                    }
                ),
                json!({"stage": "lost", "reason": "test"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let again = lead_in(&app, external, address).await;
        let refused = entry(&app, &again, "the suppressed email", |e| {
            e["kind"] == "email_status" && e["data"]["event"] == "failed"
        })
        .await;
        assert_eq!(refused["data"]["why"], why, "{address}: {refused}");
    }
    // A complaint about an address no lead has yet still closes it for the tenant.
    let (code, body) = post(
        &app,
        &tenant,
        &sign_post("fbl@reply.acme.test", &complaint("never@example.com")),
    )
    .await;
    assert_eq!(
        (code, &body["outcome"]),
        (StatusCode::OK, &json!("complaint")),
        "{body}"
    );
    let later = lead_in(&app, "in-8", "never@example.com").await;
    let refused = entry(&app, &later, "the suppressed email", |e| {
        e["kind"] == "email_status" && e["data"]["event"] == "failed"
    })
    .await;
    assert_eq!(refused["data"]["why"], "suppressed", "{refused}");
    assert_eq!(sink.messages().len(), 3, "nothing more went out");
    sim.shutdown().await;
    app.stop().await;
}

async fn the_settings_refuse_bad_fields_by_name(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| {
        s.secrets.keys = vec![neuronx::secrets::Keyring::generate_entry("t")];
    })
    .await;
    let (status, err) = app.get("/v1/channels/inbound-email").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{err}");
    for (body, field) in [
        (json!({"signing_key": "short"}), "signing_key"),
        (json!({"signing_key": "has spaces in it"}), "signing_key"),
        (
            json!({"signing_key": SIGNING_KEY, "reply_domain": "nodot"}),
            "reply_domain",
        ),
        (
            json!({"signing_key": SIGNING_KEY, "reply_domain": "a..b"}),
            "reply_domain",
        ),
        (
            json!({"signing_key": SIGNING_KEY, "reply_domain": "-x.test"}),
            "reply_domain",
        ),
        (
            json!({"signing_key": SIGNING_KEY, "provider": "sendgrid"}),
            "provider",
        ),
    ] {
        let (status, err) = app
            .request(
                Method::PUT,
                "/v1/channels/inbound-email",
                Some(&app.key),
                Some(body),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
        assert_eq!(err["field"], field, "{err}");
    }
    // Without a reply domain: no Reply-To, replies routed by sender only.
    let view = configure(&app, None).await;
    assert_eq!(view["reply_domain"], Value::Null, "{view}");
    let (_, audit) = app.get("/v1/audit?action=channel_update").await;
    assert!(!audit.to_string().contains(SIGNING_KEY), "{audit}");
    // A post that is not a form at all, and one over the size limit.
    let url = format!("{}/webhooks/mailgun/{}/mime", app.base, app.tenant);
    let resp = app
        .client
        .post(&url)
        .header("content-type", "text/plain")
        .body("hi")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"], "bad_form", "{err}");
    let big = "x".repeat(11 * 1024 * 1024);
    let resp = app
        .client
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    app.stop().await;
}

both_backends!(
    a_reply_lands_on_its_thread_and_engages_the_lead,
    bounces_complaints_and_unsubscribes_by_email_close_email_only,
    the_settings_refuse_bad_fields_by_name,
);
