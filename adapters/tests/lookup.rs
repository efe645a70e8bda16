//! Lookup v2 line types over real HTTP: our Twilio client against the carrier simulator, which
//! answers per its configuration, checks Basic auth like its other endpoints and counts lookups.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use neuronx_adapters::carrier_sim::{self, LookupConfig, SimConfig, SimHandle};
use neuronx_adapters::outbound::OutboundGuard;
use neuronx_adapters::twilio::{
    ClientConfig, LineType, TwilioClient, TwilioCredentials, TwilioError,
};
use tokio::net::TcpListener;

const LANDLINE: &str = "+14155550123";
const MOBILE: &str = "+14155550188";

async fn sim(lookup: LookupConfig) -> SimHandle {
    let config = SimConfig {
        lookup,
        ..SimConfig::default()
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    carrier_sim::start(config, listener).await.unwrap()
}

fn client(sim: &SimHandle, token: &str) -> TwilioClient {
    let guard = OutboundGuard::from_allow_list(&["127.0.0.0/8"]).unwrap();
    let config = ClientConfig {
        lookup_timeout: Duration::from_millis(300),
        ..ClientConfig::default()
    };
    let credentials = TwilioCredentials {
        account_sid: sim.account_sid().to_owned(),
        auth_token: token.to_owned(),
    };
    TwilioClient::new(&sim.base_url, credentials, config, &guard).unwrap()
}

fn landline_config() -> LookupConfig {
    LookupConfig {
        numbers: BTreeMap::from([(LANDLINE.to_owned(), LineType::Landline)]),
        ..LookupConfig::default()
    }
}

#[tokio::test]
async fn line_types_come_back_as_configured_and_are_counted() {
    let sim = sim(landline_config()).await;
    let c = client(&sim, sim.auth_token());
    let landline = c.lookup_line_type(LANDLINE).await.unwrap();
    assert_eq!(landline.line_type, LineType::Landline);
    assert_eq!(landline.phone_number, LANDLINE);
    assert!(landline.carrier_name.is_some());
    let mobile = c.lookup_line_type(MOBILE).await.unwrap();
    assert_eq!(mobile.line_type, LineType::Mobile, "the default");
    let stats = sim.stats();
    assert_eq!(stats.lookups, 2);
    assert_eq!(stats.lookups_per_number.get(LANDLINE), Some(&1));
    let refused = c.lookup_line_type("+1415/../x").await.unwrap_err();
    assert!(matches!(refused, TwilioError::InvalidUrl(_)), "{refused}");
    assert_eq!(sim.stats().lookups, 2, "nothing sent for a bad number");
}

#[tokio::test]
async fn bad_credentials_are_refused_like_twilio_and_not_counted() {
    let sim = sim(LookupConfig::default()).await;
    let e = client(&sim, "wrong-token")
        .lookup_line_type(MOBILE)
        .await
        .unwrap_err();
    match &e {
        TwilioError::Api { status, code, .. } => assert_eq!((*status, *code), (401, Some(20003))),
        other => panic!("expected a 401, got {other:?}"),
    }
    assert!(!e.to_string().contains("wrong-token"));
    let stats = sim.stats();
    assert_eq!((stats.lookups, stats.rejected_requests), (0, 1));
}

#[tokio::test]
async fn a_failing_or_slow_lookup_is_an_error_not_a_type() {
    let failing = sim(LookupConfig {
        fail_status: Some(500),
        ..LookupConfig::default()
    })
    .await;
    let e = client(&failing, failing.auth_token())
        .lookup_line_type(MOBILE)
        .await
        .unwrap_err();
    assert!(matches!(e, TwilioError::Server(500)), "{e:?}");
    assert_eq!(failing.stats().lookups, 1, "tried once, not retried");

    let slow = sim(LookupConfig {
        delay_ms: 5_000,
        ..LookupConfig::default()
    })
    .await;
    let started = Instant::now();
    let e = client(&slow, slow.auth_token())
        .lookup_line_type(MOBILE)
        .await
        .unwrap_err();
    assert!(matches!(e, TwilioError::Timeout), "{e:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the lookup's own deadline, not the client's 10 s"
    );
}
