#![allow(clippy::unwrap_used)]
//! Channel credentials are sealed at rest and never returned; the do-not-call list is per tenant.

mod common;

use common::{Backend, TestApp};
use neuronx::secrets::Keyring;
use reqwest::{Method, StatusCode};
use serde_json::json;

const SID: &str = "AC0123456789abcdef0123456789abcdef";

fn twilio(token: &str) -> serde_json::Value {
    json!({"account_sid": SID, "auth_token": token, "from_number": "+14155550000",
           "base_url": "http://127.0.0.1:9/"})
}

async fn credentials_are_sealed_and_never_returned(backend: Backend) {
    let t = TestApp::spawn_with(backend, |s| {
        s.secrets.keys = vec![Keyring::generate_entry("k1")]
    })
    .await;
    for (body, field) in [
        (
            json!({"account_sid": "AC1", "auth_token": "x", "from_number": "+14155550000"}),
            "account_sid",
        ),
        (
            json!({"account_sid": SID, "auth_token": "", "from_number": "+14155550000"}),
            "auth_token",
        ),
        (
            json!({"account_sid": SID, "auth_token": "x", "from_number": "555"}),
            "from_number",
        ),
        (
            json!({"account_sid": SID, "auth_token": "x", "from_number": "+14155550000", "base_url": "ftp://x"}),
            "base_url",
        ),
    ] {
        let (status, err) = t
            .request(Method::PUT, "/v1/channels/twilio", Some(&t.key), Some(body))
            .await;
        assert_eq!(
            (status, err["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some(field)),
            "{err}"
        );
    }
    let (status, _) = t.get("/v1/channels/twilio").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing half-written");

    let token = "super-secret-auth-token-42";
    let (status, body) = t
        .request(
            Method::PUT,
            "/v1/channels/twilio",
            Some(&t.key),
            Some(twilio(token)),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(!body.to_string().contains(token));
    assert_eq!(body["base_url"], "http://127.0.0.1:9");
    let (_, got) = t.get("/v1/channels/twilio").await;
    assert_eq!(got["account_sid"], SID);
    assert!(!got.to_string().contains(token));

    // At rest: sealed, and it opens with the keyring.
    let tenant = neuronx_supervision::TenantId(t.tenant.parse().unwrap());
    let stored = neuronx::tenant_data::get_credentials(t.engine().store(), tenant, "twilio")
        .await
        .unwrap()
        .unwrap();
    assert!(!stored.sealed.data.contains(token));
    assert_eq!(stored.sealed.key_id, "k1");

    let other = neuronx::tenants::create(t.engine().store(), "other")
        .await
        .unwrap()
        .api_key;
    let (status, _) = t
        .request(Method::GET, "/v1/channels/twilio", Some(&other), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    t.stop().await;
}

async fn without_a_key_credentials_are_refused(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let (status, body) = t
        .request(
            Method::PUT,
            "/v1/channels/twilio",
            Some(&t.key),
            Some(twilio("x")),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"], "no_encryption_key");
    t.stop().await;
}

async fn the_do_not_call_list_is_managed_per_tenant(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let (status, _) = t.post("/v1/dnc", json!({"phone": "+14155550100"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = t.post("/v1/dnc", json!({"phone": "+14155550100"})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, err) = t.post("/v1/dnc", json!({"phone": "0800"})).await;
    assert_eq!(
        (status, err["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("phone"))
    );
    let tenant = neuronx_supervision::TenantId(t.tenant.parse().unwrap());
    assert!(
        neuronx::tenant_data::on_dnc(t.engine().store(), tenant, "+14155550100")
            .await
            .unwrap()
    );
    let other = neuronx::tenants::create(t.engine().store(), "other")
        .await
        .unwrap()
        .api_key;
    let (status, _) = t
        .request(Method::DELETE, "/v1/dnc/+14155550100", Some(&other), None)
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "another tenant's list is not this one"
    );
    let (status, _) = t
        .request(Method::DELETE, "/v1/dnc/+14155550100", Some(&t.key), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = t
        .request(Method::DELETE, "/v1/dnc/+14155550100", Some(&t.key), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    t.stop().await;
}

async fn rotating_the_key_reseals_every_secret(backend: Backend) {
    let old = Keyring::generate_entry("old");
    let new = Keyring::generate_entry("new");
    let old_for_app = old.clone();
    let t = TestApp::spawn_with(backend, move |s| s.secrets.keys = vec![old_for_app]).await;
    let (status, _) = t
        .request(
            Method::PUT,
            "/v1/channels/twilio",
            Some(&t.key),
            Some(twilio("tok-1")),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // The inbound email signing key is a secret too (ADR 0052).
    let (status, body) = t
        .request(
            Method::PUT,
            "/v1/channels/inbound-email",
            Some(&t.key),
            Some(json!({"signing_key": "key-inbound-1"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let store = t.engine().store().clone();
    let both = Keyring::parse([new.as_str(), old.as_str()]).unwrap();
    assert_eq!(
        neuronx::tenant_data::reseal_all(&store, &both)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        neuronx::tenant_data::reseal_all(&store, &both)
            .await
            .unwrap(),
        0
    );
    let tenant = neuronx_supervision::TenantId(t.tenant.parse().unwrap());
    let stored = neuronx::tenant_data::get_credentials(&store, tenant, "twilio")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.sealed.key_id, "new");
    // The old key can go: the new one alone opens the secret.
    let only_new = Keyring::parse([new.as_str()]).unwrap();
    assert_eq!(only_new.open(&stored.sealed).unwrap(), "tok-1");
    let inbound = neuronx::inbound_email::get(&store, tenant)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(only_new.open(&inbound.sealed).unwrap(), "key-inbound-1");
    t.stop().await;
}

async fn a_number_on_the_do_not_call_list_is_never_dialled(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let phone = common::lead_phone("lead-1");
    let (status, _) = t.post("/v1/dnc", json!({ "phone": phone })).await;
    assert_eq!(status, StatusCode::CREATED);
    let created = t.create("lead-1", 300).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let blocked = common::eventually(std::time::Duration::from_secs(10), "the block", || async {
        t.timeline(&id)
            .await
            .into_iter()
            .find(|e| e["kind"] == "compliance_blocked")
    })
    .await;
    assert_eq!(blocked["data"]["channel"], "voice");
    assert!(blocked["reason"].as_str().unwrap().contains("do-not-call"));
    let (_, view) = t.get(&format!("/v1/opportunities/{id}")).await;
    assert_eq!(view["active_call"], serde_json::Value::Null);
    let timers: Vec<&str> = view["timers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(!timers.contains(&"retry_call"), "no retry: {timers:?}");
    // The dial left the outbox refused, and no follow-up text was sent.
    let tenant = neuronx_supervision::TenantId(t.tenant.parse().unwrap());
    // The create's answer may already show the call ended; the timeline names it.
    let placed = t.timeline(&id).await;
    let call_id: uuid::Uuid = placed
        .iter()
        .find(|e| e["kind"] == "call_placed")
        .and_then(|e| e["data"]["call_id"].as_str())
        .unwrap()
        .parse()
        .unwrap();
    let dials = t
        .engine()
        .store()
        .outbox_of(tenant, "call", call_id)
        .await
        .unwrap();
    assert_eq!(dials.len(), 1);
    assert_eq!(
        dials[0].status,
        neuronx_supervision::store::OutboxStatus::Done
    );
    let texts = t
        .engine()
        .store()
        .outbox_of(tenant, "opportunity", id.parse().unwrap())
        .await
        .unwrap();
    assert!(texts.iter().all(|r| r.channel != "sms"), "{texts:?}");
    t.stop().await;
}

/// The tenant's token goes wherever `base_url` leads: never to this machine, its network or a
/// metadata service, however the address is written (the tests' usual loopback allowance is
/// taken away here).
async fn a_carrier_url_leading_inside_is_refused(backend: Backend) {
    let t = TestApp::spawn_with(backend, |s| {
        s.secrets.keys = vec![Keyring::generate_entry("k1")];
        s.outbound.allow.clear();
    })
    .await;
    for inside in [
        "http://127.0.0.1:9/",
        "http://localhost:9/",
        "http://[::1]:9/",
        "http://0x7f000001/",
        "http://10.0.0.5/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:192.168.0.1]/",
        "http://user:secret@example.com/",
    ] {
        let mut body = twilio("x");
        body["base_url"] = json!(inside);
        let (status, err) = t
            .request(Method::PUT, "/v1/channels/twilio", Some(&t.key), Some(body))
            .await;
        assert_eq!(
            (status, err["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some("base_url")),
            "{inside}: {err}"
        );
    }
    let (status, _) = t.get("/v1/channels/twilio").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing was stored");
    t.stop().await;
}

both_backends!(
    a_carrier_url_leading_inside_is_refused,
    a_number_on_the_do_not_call_list_is_never_dialled,
    rotating_the_key_reseals_every_secret,
    credentials_are_sealed_and_never_returned,
    without_a_key_credentials_are_refused,
    the_do_not_call_list_is_managed_per_tenant,
);
