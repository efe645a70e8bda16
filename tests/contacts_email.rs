#![allow(clippy::unwrap_used)]
//! One person, one cadence, matched by phone, then email (issue #14, ADR 0046 addendum), through
//! the API on both backends: a lead whose phone is new but whose address a live opportunity
//! holds joins it (merge) or is recorded with no cadence (skip), and hands it its phone; the
//! phone decides first; a closed opportunity's address starts over; leads sharing an address
//! arriving together start one cadence, with phones or without; a lead with no phone is emailed,
//! never called or texted; a team that cannot see the live one is told so; an address that is
//! not one, or a lead with neither phone nor email, is refused before anything is written.

#[path = "common/access.rs"]
mod access;
mod common;
#[path = "common/flow.rs"]
mod flow;

use std::time::Duration;

use access::{as_key, key, team};
use common::{day_phone, daytime_zone, eventually, post_signed, sql, Backend, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(20);

fn lead_of(external_id: &str, phone: &str, email: Option<&str>) -> Value {
    json!({
        "external_id": external_id,
        "contact": {
            "name": "Ana Lima",
            "phone": phone,
            "email": email,
            "timezone": daytime_zone(),
            "consent": {"voice": true, "sms": true}
        },
        "sla": {"first_touch_seconds": 300}
    })
}

fn count(timeline: &[Value], kind: &str) -> usize {
    timeline.iter().filter(|e| e["kind"] == kind).count()
}

/// A lead that came with an email and no phone.
fn email_lead(external_id: &str, email: &str) -> Value {
    let mut lead = lead_of(external_id, "", Some(email));
    lead["contact"]
        .as_object_mut()
        .unwrap()
        .remove("phone")
        .unwrap();
    lead
}

async fn rows(t: &TestApp, query: &str) -> Vec<String> {
    sql(t.engine().store(), query).await
}

/// The opportunity holding `phone`'s claim, if any.
async fn phone_holder(t: &TestApp, phone: &str) -> Option<String> {
    let q = format!(
        "SELECT CAST(opportunity_id AS TEXT) FROM contact_claims \
         WHERE tenant_id = '{}' AND phone = '{phone}'",
        t.tenant
    );
    rows(t, &q).await.pop()
}

async fn opportunities(t: &TestApp) -> usize {
    let q = format!(
        "SELECT CAST(id AS TEXT) FROM actors WHERE kind = 'opportunity' AND tenant_id = '{}'",
        t.tenant
    );
    rows(t, &q).await.len()
}

/// Every claim of the tenant, of `table` (`contact_claims` or `contact_email_claims`).
async fn claims(t: &TestApp, table: &str) -> Vec<String> {
    let q = format!(
        "SELECT CAST(opportunity_id AS TEXT) FROM {table} WHERE tenant_id = '{}'",
        t.tenant
    );
    rows(t, &q).await
}

async fn an_address_joins_the_live_opportunity_of_another_phone(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let (first_phone, second_phone) = (day_phone("5550211"), day_phone("5550212"));
    let lead = lead_of("form-1", &first_phone, Some("Ana.Lima@Example.test"));
    let (status, first) = t.post("/v1/opportunities", lead).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let id = first["id"].as_str().unwrap().to_owned();

    // Another phone, the same address however it is written: the lead joins the live one.
    let lead = lead_of("form-2", &second_phone, Some("  ana.lima@example.TEST "));
    let (status, second) = t.post("/v1/opportunities", lead).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(second["id"], id.as_str(), "answered the live opportunity");
    assert_eq!(second["returned"], json!(["form-2"]));
    let timeline = t.timeline(&id).await;
    assert_eq!(count(&timeline, "contact_returned"), 1);
    assert_eq!(count(&timeline, "call_placed"), 1, "no second cadence");
    assert_eq!(opportunities(&t).await, 1);
    // The joining lead's phone is the same person's second phone: the live one holds it now,
    // so a later lead with only that phone joins it too instead of starting a second cadence.
    assert_eq!(
        phone_holder(&t, &second_phone).await.as_deref(),
        Some(id.as_str())
    );
    let lead = lead_of("form-2b", &second_phone, None);
    let (status, again) = t.post("/v1/opportunities", lead).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["id"], id.as_str(), "joined by the handed phone");
    assert_eq!(opportunities(&t).await, 1);
    assert_eq!(
        count(&t.timeline(&id).await, "call_placed"),
        1,
        "one cadence"
    );

    // The phone decides first: a lead of the first phone with a new address joins by phone.
    let lead = lead_of("form-3", &first_phone, Some("ana@elsewhere.test"));
    let (status, third) = t.post("/v1/opportunities", lead).await;
    assert_eq!(status, StatusCode::OK, "{third}");
    assert_eq!(third["id"], id.as_str());

    // Closed, the address may start over: a new lead gets its own cadence and holds both keys.
    let (status, body) = t
        .post(
            &format!("/v1/opportunities/{id}/stage"),
            json!({"stage": "lost", "reason": "went with a competitor"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let lead = lead_of("form-4", &second_phone, Some("ana.lima@example.test"));
    let (status, fresh) = t.post("/v1/opportunities", lead).await;
    assert_eq!(status, StatusCode::CREATED, "{fresh}");
    let fresh_id = fresh["id"].as_str().unwrap();
    assert_ne!(fresh_id, id.as_str());
    assert_eq!(fresh["duplicate_of"], Value::Null);
    assert_eq!(count(&t.timeline(fresh_id).await, "call_placed"), 1);
    assert_eq!(
        phone_holder(&t, &second_phone).await.as_deref(),
        Some(fresh_id)
    );
    t.stop().await;
}

async fn skip_records_the_lead_and_hands_its_phone_to_the_live_one(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    t.duplicate_contacts("skip").await;
    let (live_phone, dup_phone) = (day_phone("5550221"), day_phone("5550222"));
    let lead = lead_of("web-1", &live_phone, Some("bo@example.test"));
    let (_, live) = t.post("/v1/opportunities", lead).await;
    let live_id = live["id"].as_str().unwrap().to_owned();
    let lead = lead_of("web-2", &dup_phone, Some("BO@example.test"));
    let (status, dup) = t.post("/v1/opportunities", lead).await;
    assert_eq!(status, StatusCode::CREATED, "{dup}");
    let dup_id = dup["id"].as_str().unwrap().to_owned();
    assert_eq!(dup["duplicate_of"], live_id.as_str());
    assert_eq!(dup["timers"], json!([]), "nothing armed");
    assert_eq!(count(&t.timeline(&dup_id).await, "call_placed"), 0);
    let note = eventually(WAIT, "the live opportunity's note", || async {
        t.timeline(&live_id)
            .await
            .into_iter()
            .find(|e| e["kind"] == "contact_returned")
    })
    .await;
    assert_eq!(note["data"]["mode"], "skip");
    assert_eq!(note["data"]["opportunity_id"], dup_id.as_str());
    // The skipped lead holds no claim: the live one keeps the contact, its second phone too.
    assert_eq!(
        phone_holder(&t, &dup_phone).await.as_deref(),
        Some(live_id.as_str())
    );
    t.stop().await;
}

/// Skip mode with a second phone: the skipped lead lists that phone, but the live one holds
/// it, so a STOP from it opts the live opportunity out, not the silent duplicate.
async fn a_stop_from_a_second_phone_reaches_the_live_opportunity(backend: Backend) {
    let s = flow::setup(backend).await;
    let t = &s.app;
    t.duplicate_contacts("skip").await;
    let (live_phone, second) = (day_phone("5550231"), day_phone("5550232"));
    let lead = lead_of("st-1", &live_phone, Some("cy@example.test"));
    let (_, live) = t.post("/v1/opportunities", lead).await;
    let live_id = live["id"].as_str().unwrap().to_owned();
    let lead = lead_of("st-2", &second, Some("Cy@example.test"));
    let (status, dup) = t.post("/v1/opportunities", lead).await;
    assert_eq!(status, StatusCode::CREATED, "{dup}");
    let url = format!("{}/webhooks/twilio/{}/sms/inbound", s.public_url, t.tenant);
    let params: Vec<(String, String)> = vec![
        ("MessageSid".into(), "SMstop0232".into()),
        ("From".into(), second.clone()),
        ("Body".into(), "STOP".into()),
    ];
    let resp = post_signed(&t.client, &s.auth_token, &url, &params).await;
    assert!(resp.status().is_success(), "{}", resp.status());
    eventually(WAIT, "the live opportunity opted out", || async {
        (count(&t.timeline(&live_id).await, "opted_out") == 1).then_some(())
    })
    .await;
    let dup_id = dup["id"].as_str().unwrap();
    assert_eq!(count(&t.timeline(dup_id).await, "opted_out"), 0);
    s.sim.shutdown().await;
    s.app.stop().await;
}

async fn leads_sharing_an_address_arriving_together_start_one_cadence(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let phones: Vec<String> = (0..8).map(|n| day_phone(&format!("555023{n}"))).collect();
    let creates = phones.iter().enumerate().map(|(n, phone)| {
        let t = &t;
        async move {
            let lead = lead_of(&format!("rush-{n}"), phone, Some("cy@example.test"));
            t.post("/v1/opportunities", lead).await
        }
    });
    let answers = futures_util::future::join_all(creates).await;
    let id = common::the_one_created(&answers);
    let id = id.as_str();
    assert_eq!(opportunities(&t).await, 1);
    assert_eq!(count(&t.timeline(id).await, "call_placed"), 1);
    // The winner holds every phone: each create that joined it by the address handed it its
    // own (the same person's other numbers), none is left to a create that never was.
    assert_eq!(claims(&t, "contact_claims").await, vec![id.to_owned(); 8]);
    assert_eq!(claims(&t, "contact_email_claims").await, [id.to_owned()]);
    t.stop().await;
}

/// A lead with no phone is matched by its address alone: eight at once start one opportunity,
/// which is emailed but never called or texted; a later lead with a phone joins it.
async fn email_only_leads_arriving_together_start_one_cadence(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let creates = (0..8).map(|n| {
        let t = &t;
        async move {
            let lead = email_lead(&format!("mail-{n}"), "Eve@Example.test");
            t.post("/v1/opportunities", lead).await
        }
    });
    let answers = futures_util::future::join_all(creates).await;
    let id = common::the_one_created(&answers);
    let id = id.as_str();
    let created = &answers
        .iter()
        .find(|(s, _)| *s == StatusCode::CREATED)
        .unwrap()
        .1;
    assert_eq!(created["contact"]["phone"], Value::Null, "{created}");
    assert_eq!(opportunities(&t).await, 1);
    assert_eq!(claims(&t, "contact_email_claims").await, [id.to_owned()]);
    assert!(claims(&t, "contact_claims").await.is_empty());
    let timeline = t.timeline(id).await;
    assert_eq!(count(&timeline, "call_placed"), 0);
    let blocked = timeline
        .iter()
        .find(|e| e["kind"] == "compliance_blocked")
        .unwrap_or_else(|| panic!("the denied call is said: {timeline:#?}"));
    assert!(
        blocked["reason"].as_str().unwrap().contains("no phone"),
        "{blocked}"
    );
    // The same person later gives a phone: the lead joins the address's live opportunity.
    let lead = lead_of("call-me", &day_phone("5550261"), Some("eve@example.test"));
    let (status, joined) = t.post("/v1/opportunities", lead).await;
    assert_eq!(status, StatusCode::OK, "{joined}");
    assert_eq!(joined["id"], id);
    assert_eq!(opportunities(&t).await, 1);
    t.stop().await;
}

/// A team key whose lead's address is live in another team learns that, not whose it is.
async fn an_address_live_in_another_team_is_said_not_shown(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    team(&t, "west").await;
    team(&t, "east").await;
    let mut lead = lead_of("east-1", &day_phone("5550241"), Some("dee@example.test"));
    lead["team"] = json!("east");
    let (status, east) = t.post("/v1/opportunities", lead).await;
    assert_eq!(status, StatusCode::CREATED, "{east}");
    let west = key(&t, "integration", Some("west"), None).await;
    let lead = lead_of("west-1", &day_phone("5550242"), Some("dee@example.test"));
    let (status, body) = as_key(&t, &west, Method::POST, "/v1/opportunities", Some(lead)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "contact_in_other_team", "{body}");
    assert!(!body.to_string().contains(east["id"].as_str().unwrap()));
    assert_eq!(opportunities(&t).await, 1);
    t.stop().await;
}

async fn an_address_that_is_not_one_is_refused_before_anything_is_written(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let phone = day_phone("5550251");
    let long = format!("{}@example.test", "a".repeat(5_000));
    for (email, consent) in [
        ("not-an-address", false),
        ("not-an-address", true),
        ("ana@", true),
        ("two@at@signs.test", false),
        ("ana@example.test\nBcc: all@example.test", false),
        ("", false),
        (long.as_str(), false),
        (long.as_str(), true),
    ] {
        let mut lead = lead_of("bad-1", &phone, Some(email));
        lead["contact"]["consent"]["email"] = json!(consent);
        let (status, err) = t.post("/v1/opportunities", lead).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{email:.40}: {err}");
        assert_eq!(err["field"], "contact.email", "{err}");
    }
    let (status, err) = t
        .post(
            "/v1/opportunities",
            json!({"external_id": "bad-2", "contact": {"name": "Ana", "phone": phone, "email": 42}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    // Neither a phone nor an email: nothing to match the person by, nor to reach them with.
    let mut nobody = email_lead("bad-3", "x@example.test");
    nobody["contact"].as_object_mut().unwrap().remove("email");
    let (status, err) = t.post("/v1/opportunities", nobody).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert_eq!(err["field"], "contact.phone", "{err}");
    // Nothing half-written: no opportunity, no claim of either kind.
    assert_eq!(opportunities(&t).await, 0);
    assert!(claims(&t, "contact_claims").await.is_empty());
    assert!(claims(&t, "contact_email_claims").await.is_empty());
    // The person's good lead is created at once.
    let lead = lead_of("good-1", &phone, Some("ana@example.test"));
    let (status, body) = t.post("/v1/opportunities", lead).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let q = format!(
        "SELECT address FROM contact_email_claims WHERE tenant_id = '{}'",
        t.tenant
    );
    assert_eq!(rows(&t, &q).await, ["ana@example.test"]);
    t.stop().await;
}

both_backends!(
    an_address_joins_the_live_opportunity_of_another_phone,
    skip_records_the_lead_and_hands_its_phone_to_the_live_one,
    a_stop_from_a_second_phone_reaches_the_live_opportunity,
    leads_sharing_an_address_arriving_together_start_one_cadence,
    email_only_leads_arriving_together_start_one_cadence,
    an_address_live_in_another_team_is_said_not_shown,
    an_address_that_is_not_one_is_refused_before_anything_is_written,
);
