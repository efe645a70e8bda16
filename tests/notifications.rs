#![allow(clippy::unwrap_used)]
//! Escalations reach people (issue #14, "Notifications to people"): a lead who answered while
//! no rep was free escalates, and the team's reps each get one SMS (the carrier simulator
//! counts them) and one email (a real SMTP server on loopback, `aiosmtpd`, keeps them), with a
//! link to the opportunity in the console; the timeline says whom and how. Plus the SMTP
//! settings API: fields refused by name, the password sealed and never returned, hosts inside
//! refused.

#[path = "common/access.rs"]
mod access;
mod common;
#[path = "common/flow.rs"]
mod flow;
#[path = "common/smtp.rs"]
mod smtp;

use std::time::Duration;

use flow::{setup, texts_to, Setup};

use access::{principal, team};
use common::{eventually, Backend, TestApp};
use neuronx::secrets::Keyring;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use smtp::{Mode, SmtpSink};

async fn put_smtp(app: &TestApp, body: Value) -> (StatusCode, Value) {
    app.request(Method::PUT, "/v1/channels/smtp", Some(&app.key), Some(body))
        .await
}

async fn use_sink(app: &TestApp, sink: &SmtpSink) {
    let (status, body) = put_smtp(
        app,
        json!({"host": "127.0.0.1", "port": sink.port, "tls": "none",
               "from": "alerts@acme.test", "from_name": "Acme Alerts"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// An offline rep of `team` (nobody takes the call, so the lead escalates) with an email.
async fn rep(app: &TestApp, name: &str, team: &str, phone: &str, email: Option<&str>) {
    principal(app, name, "operator", Some(team)).await;
    let (code, body) = app
        .request(
            Method::PUT,
            &format!("/v1/principals/{name}/rep"),
            Some(&app.key),
            Some(json!({"phone": phone, "time_zone": "America/New_York", "email": email})),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body["email"], json!(email), "{body}");
    assert_eq!(body["status"], "offline", "{body}");
}

async fn lead_in(app: &TestApp, external_id: &str, phone: &str, team: &str) -> String {
    let mut lead = common::lead(external_id, 300);
    lead["contact"]["phone"] = json!(phone);
    lead["team"] = json!(team);
    let (status, body) = app.post("/v1/opportunities", lead).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

/// The outbox rows of `channel`: `status attempts result` each.
async fn rows(app: &TestApp, channel: &str) -> Vec<String> {
    common::sql(
        app.engine().store(),
        &format!(
            "SELECT status || ' ' || CAST(attempts AS TEXT) || ' ' || COALESCE(CAST(result AS TEXT), '')
             FROM outbox WHERE channel = '{channel}' ORDER BY id"
        ),
    )
    .await
}

/// Waits until `n` rows of `channel` are finished (none pending or in flight).
async fn finished(app: &TestApp, channel: &str, n: usize) -> Vec<String> {
    eventually(Duration::from_secs(30), channel, || async {
        let rows = rows(app, channel).await;
        (rows.len() == n
            && rows
                .iter()
                .all(|r| !r.starts_with("pending") && !r.starts_with("inflight")))
        .then_some(rows)
    })
    .await
}

async fn an_escalation_reaches_the_teams_reps_by_sms_and_email(backend: Backend) {
    let sink = SmtpSink::start(Mode::Accept);
    let Setup {
        app,
        sim,
        public_url,
        ..
    } = setup(backend).await;
    use_sink(&app, &sink).await;
    team(&app, "west").await;
    rep(&app, "ana", "west", "+14155550201", Some("ana@acme.test")).await;
    rep(&app, "bo", "west", "+14155550202", Some("bo@acme.test")).await;
    // Another team's rep hears nothing of it.
    team(&app, "east").await;
    rep(&app, "cy", "east", "+14155550203", Some("cy@acme.test")).await;
    let id = lead_in(&app, "notify-1", "+14155550111", "west").await;

    let notified = eventually(Duration::from_secs(30), "a notified entry", || async {
        let t = app.timeline(&id).await;
        t.into_iter()
            .find(|e| e["kind"] == "notified" && e["data"]["event"] == "queued")
    })
    .await;
    let mut whom: Vec<(String, Value)> = notified["data"]["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["name"].as_str().unwrap().to_owned(), r["via"].clone()))
        .collect();
    whom.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        whom,
        [
            ("ana".to_owned(), json!(["sms", "email"])),
            ("bo".to_owned(), json!(["sms", "email"]))
        ],
        "{notified}"
    );
    assert_eq!(notified["data"]["queue"], "escalations:west", "{notified}");

    // Every message finished, each once.
    let sms = finished(&app, "notify_sms", 2).await;
    let emails = finished(&app, "email", 2).await;
    assert!(sms.iter().all(|r| r.starts_with("done 1 ")), "{sms:?}");
    assert!(
        emails.iter().all(|r| r.starts_with("done 1 ")),
        "{emails:?}"
    );
    assert_eq!(texts_to(&sim, "+14155550201"), 1);
    assert_eq!(texts_to(&sim, "+14155550202"), 1);
    assert_eq!(texts_to(&sim, "+14155550203"), 0);
    let link = format!("{public_url}/console/opportunities/{id}");
    let mail = sink.messages();
    assert_eq!(mail.len(), 2, "{mail:#?}");
    for (to, name) in [("ana@acme.test", "ana"), ("bo@acme.test", "bo")] {
        let m = mail
            .iter()
            .find(|m| m.starts_with(&format!("X-Envelope-To: {to}\r\n")))
            .unwrap_or_else(|| panic!("no mail to {to}: {mail:#?}"));
        assert!(m.contains(&format!("<{to}>")), "{m}");
        assert!(m.contains("Subject: Lead waiting: Ana Lima"), "{m}");
        assert!(
            m.contains("From: \"Acme Alerts\" <alerts@acme.test>"),
            "{m}"
        );
        assert!(m.contains(&format!("Hello {name},")), "{m}");
        assert!(m.contains(&link), "{m}");
        assert!(
            m.contains("nobody took the call") || m.contains("Why: "),
            "{m}"
        );
    }
    sim.shutdown().await;
    app.stop().await;
}

async fn a_refusing_smtp_server_is_recorded_and_the_sms_still_goes(backend: Backend) {
    let sink = SmtpSink::start(Mode::Refuse);
    let Setup { app, sim, .. } = setup(backend).await;
    use_sink(&app, &sink).await;
    team(&app, "west").await;
    rep(&app, "ana", "west", "+14155550201", Some("ana@acme.test")).await;
    let id = lead_in(&app, "notify-2", "+14155550112", "west").await;

    let emails = finished(&app, "email", 1).await;
    assert!(emails[0].starts_with("done 1 "), "{emails:?}");
    assert!(
        emails[0].contains("550") && emails[0].contains("\"permanent\""),
        "{emails:?}"
    );
    finished(&app, "notify_sms", 1).await;
    assert_eq!(texts_to(&sim, "+14155550201"), 1);
    assert!(sink.messages().is_empty());
    // The opportunity says the email will not arrive.
    let failure = eventually(Duration::from_secs(20), "the failure entry", || async {
        let t = app.timeline(&id).await;
        t.into_iter()
            .find(|e| e["kind"] == "notified" && e["data"]["event"] == "failed")
    })
    .await;
    assert_eq!(failure["data"]["recipient"], "ana", "{failure}");
    assert_eq!(failure["data"]["via"], "email", "{failure}");
    assert!(
        failure["data"]["error"].as_str().unwrap().contains("550"),
        "{failure}"
    );
    sim.shutdown().await;
    app.stop().await;
}

async fn an_email_the_server_deferred_is_sent_once_and_no_other_twice(backend: Backend) {
    let sink = SmtpSink::start(Mode::FailFirst(1));
    let Setup { app, sim, .. } = setup(backend).await;
    use_sink(&app, &sink).await;
    team(&app, "west").await;
    rep(&app, "ana", "west", "+14155550201", Some("ana@acme.test")).await;
    rep(&app, "bo", "west", "+14155550202", Some("bo@acme.test")).await;
    lead_in(&app, "notify-3", "+14155550113", "west").await;

    let emails = finished(&app, "email", 2).await;
    let attempts: Vec<&str> = emails
        .iter()
        .map(|r| r.split(' ').nth(1).unwrap())
        .collect();
    let mut sorted = attempts.clone();
    sorted.sort();
    assert_eq!(sorted, ["1", "2"], "one retried once: {emails:?}");
    let mail = sink.messages();
    assert_eq!(mail.len(), 2, "{mail:#?}");
    assert!(mail
        .iter()
        .any(|m| m.starts_with("X-Envelope-To: ana@acme.test")));
    assert!(mail
        .iter()
        .any(|m| m.starts_with("X-Envelope-To: bo@acme.test")));
    finished(&app, "notify_sms", 2).await;
    assert_eq!(texts_to(&sim, "+14155550201"), 1);
    assert_eq!(texts_to(&sim, "+14155550202"), 1);
    sim.shutdown().await;
    app.stop().await;
}

async fn the_smtp_settings_are_checked_sealed_and_never_returned(backend: Backend) {
    let t = TestApp::spawn_with(backend, |s| {
        s.secrets.keys = vec![Keyring::generate_entry("k1")]
    })
    .await;
    let (status, _) = t.get("/v1/channels/smtp").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let good = json!({"host": "127.0.0.1", "port": 2525, "tls": "starttls",
                      "username": "alerts", "password": "hunter2-secret",
                      "from": "alerts@acme.test"});
    let with = |field: &str, value: Value| {
        let mut body = good.clone();
        body[field] = value;
        body
    };
    let without = |field: &str| {
        let mut body = good.clone();
        body.as_object_mut().unwrap().remove(field);
        body
    };
    for (body, field) in [
        (with("tls", json!("ssl")), "tls"),
        (with("port", json!(0)), "port"),
        (with("port", json!(70000)), "port"),
        (with("from", json!("nobody")), "from"),
        (with("host", json!("")), "host"),
        (with("host", json!("smtp.acme.test/x")), "host"),
        (with("host", json!("169.254.169.254")), "host"),
        (with("host", json!("10.0.0.1")), "host"),
        (without("password"), "password"),
        (without("username"), "username"),
        (with("surprise", json!(1)), "surprise"),
    ] {
        let (status, err) = put_smtp(&t, body.clone()).await;
        assert_eq!(
            (status, err["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some(field)),
            "{body} → {err}"
        );
    }
    let (status, err) = put_smtp(&t, with("host", json!("169.254.169.254"))).await;
    assert!(
        err["message"].as_str().unwrap().contains("metadata"),
        "{status} {err}"
    );

    let (status, view) = put_smtp(&t, good.clone()).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    let (status, got) = t.get("/v1/channels/smtp").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got, view);
    assert_eq!(
        got,
        json!({"channel": "smtp", "host": "127.0.0.1", "port": 2525, "tls": "starttls",
               "username": "alerts", "password": "set", "from": "alerts@acme.test",
               "from_name": null})
    );
    // Sealed at rest: the row holds the key's id and ciphertext, never the password.
    let engine = t.engine();
    let store = engine.store();
    let row = common::sql(
        store,
        "SELECT host || '|' || tls || '|' || username || '|' || key_id || '|' || sealed
         FROM smtp_settings",
    )
    .await;
    assert_eq!(row.len(), 1);
    assert!(
        row[0].starts_with("127.0.0.1|starttls|alerts|k1|"),
        "{row:?}"
    );
    assert!(!row[0].contains("hunter2"), "{row:?}");
    let (_, audit) = t.get("/v1/audit").await;
    assert!(!audit.to_string().contains("hunter2"), "{audit}");
    // Without a password, none is kept.
    let mut open = without("password");
    open.as_object_mut().unwrap().remove("username");
    let (status, view) = put_smtp(&t, open).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["password"], Value::Null);
    let sealed = common::sql(store, "SELECT COALESCE(sealed, 'none') FROM smtp_settings").await;
    assert_eq!(sealed, ["none"]);

    // A rep's email is checked too.
    principal(&t, "ana", "operator", None).await;
    let (status, err) = t
        .request(
            Method::PUT,
            "/v1/principals/ana/rep",
            Some(&t.key),
            Some(json!({"phone": "+14155550201", "time_zone": "UTC", "email": "ana@"})),
        )
        .await;
    assert_eq!(
        (status, err["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("email")),
        "{err}"
    );
    t.stop().await;
}

/// A reply from the lead when nobody is on call tells the team's reps (by SMS, quoting it);
/// the same reply while a rep is available and in hours tells nobody (the console shows it).
async fn a_reply_after_hours_reaches_the_reps(backend: Backend) {
    let Setup {
        app,
        sim,
        public_url,
        auth_token,
    } = setup(backend).await;
    team(&app, "west").await;
    rep(&app, "ana", "west", "+14155550201", None).await;
    // Texts only: the first touch is a text and nothing escalates before the reply.
    let texted = |external_id: &str, phone: &str| {
        let mut lead = common::lead(external_id, 300);
        lead["contact"]["phone"] = json!(phone);
        lead["contact"]["consent"] = json!({"voice": false, "sms": true});
        lead["team"] = json!("west");
        lead
    };
    let (status, body) = app
        .post("/v1/opportunities", texted("reply-1", "+14155550131"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    let reply = |sid: &'static str, from: &'static str, text: &'static str| {
        let url = format!("{public_url}/webhooks/twilio/{}/sms/inbound", app.tenant);
        let params: Vec<(String, String)> = vec![
            ("MessageSid".into(), sid.into()),
            ("From".into(), from.into()),
            ("Body".into(), text.into()),
        ];
        let (client, token) = (app.client.clone(), auth_token.clone());
        async move {
            let resp = common::post_signed(&client, &token, &url, &params).await;
            assert!(resp.status().is_success(), "{}", resp.status());
        }
    };

    // Ana is offline: nobody is on call, so she is told.
    reply("SMreply0001", "+14155550131", "Can you call me tonight?").await;
    let sms = finished(&app, "notify_sms", 1).await;
    assert!(sms[0].starts_with("done 1 "), "{sms:?}");
    assert_eq!(texts_to(&sim, "+14155550201"), 1);
    let notified = eventually(Duration::from_secs(30), "the notified entry", || async {
        app.timeline(&id)
            .await
            .into_iter()
            .find(|e| e["kind"] == "notified" && e["data"]["event"] == "queued")
    })
    .await;
    assert!(
        notified["data"]["reason"]
            .as_str()
            .unwrap()
            .contains("Ana Lima replied: \"Can you call me tonight?\""),
        "{notified}"
    );
    assert_eq!(notified["data"]["recipients"][0]["name"], "ana");
    // The same lead texting on within the quarter hour asks for no second notice.
    reply("SMreply0002", "+14155550131", "Or tomorrow").await;
    eventually(Duration::from_secs(30), "the second reply", || async {
        let t = app.timeline(&id).await;
        (t.iter().filter(|e| e["kind"] == "replied").count() == 2).then_some(())
    })
    .await;
    assert_eq!(rows(&app, "notify").await.len(), 1, "one notice for both");

    // Ana is available (no working hours set: always in hours): another lead's reply is on
    // the console, and nobody is texted.
    let (status, body) = app
        .post("/v1/principals/ana/status", json!({"status": "available"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app
        .post("/v1/opportunities", texted("reply-2", "+14155550132"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    reply("SMreply0003", "+14155550132", "Actually tomorrow works").await;
    let notices = finished(&app, "notify", 2).await;
    assert!(
        notices[1].contains("someone is on call"),
        "the in-hours reply's notice was skipped: {notices:?}"
    );
    assert_eq!(rows(&app, "notify_sms").await.len(), 1, "no second text");
    assert_eq!(texts_to(&sim, "+14155550201"), 1);
    sim.shutdown().await;
    app.stop().await;
}

both_backends!(
    a_reply_after_hours_reaches_the_reps,
    an_escalation_reaches_the_teams_reps_by_sms_and_email,
    the_smtp_settings_are_checked_sealed_and_never_returned,
);

mod sqlite_only {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn refused() {
        a_refusing_smtp_server_is_recorded_and_the_sms_still_goes(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn deferred() {
        an_email_the_server_deferred_is_sent_once_and_no_other_twice(Backend::Sqlite).await;
    }
}
