#![allow(clippy::unwrap_used)]
//! The console's work for reps (issue #14): My queue (my team's escalated and callback-due
//! leads, oldest breach first, ordered before it is capped) with claim, call now and the
//! outcome; the rep's own status switch in the header. Through a real server (and, for call
//! now, the carrier simulator), checked on the rendered page, the API's state and the audit
//! log. Runs on PostgreSQL and SQLite.

#[path = "common/access.rs"]
mod access;
mod common;
#[path = "common/console.rs"]
mod console;
#[path = "common/flow.rs"]
mod flow;

use std::time::Duration;

use access::{key, principal, team};
use common::{eventually, Backend, TestApp};
use console::{csrf, get_page, lead, post_form, post_form_answer, rep_profile, row_ids, sign_in};
use reqwest::{header, StatusCode};
use serde_json::{json, Value};

async fn rep_status(t: &TestApp, name: &str) -> Value {
    let (_, reps) = t.get("/v1/reps").await;
    reps["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap()["status"]
        .clone()
}

async fn a_rep_switches_its_own_status_from_the_header(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    team(&t, "west").await;
    rep_profile(&t, "ana", "viewer", Some("west"), "+14155550201", "away").await;
    let ana = key(&t, "viewer", Some("west"), Some("ana")).await;
    let (cookie, _) = sign_in(&t, &ana).await;
    let (_, page) = get_page(&t, &cookie, "/console").await;
    assert!(
        page.contains("id=\"my-status\"") && page.contains("badge away"),
        "{page}"
    );
    let token = csrf(&page);

    // Even a viewer says when it takes calls; the answer goes back to the list.
    let (status, to) = post_form_answer(
        &t,
        &cookie,
        "/console/status",
        &[("csrf", &token), ("status", "available")],
    )
    .await;
    assert_eq!((status, to.as_str()), (StatusCode::SEE_OTHER, "/console"));
    assert_eq!(rep_status(&t, "ana").await, "available");
    let (_, log) = t.get("/v1/audit?action=rep_status").await;
    let last = log["items"].as_array().unwrap().last().unwrap();
    assert_eq!(
        (&last["principal"], &last["after"]["status"]),
        (&json!("ana"), &json!("available"))
    );
    let (_, badge) = get_page(&t, &cookie, "/console/me").await;
    assert!(
        badge.contains("badge available") && !badge.contains("on a call"),
        "{badge}"
    );

    // htmx swaps the badge in place.
    let answer = console::browser()
        .post(format!("{}/console/status", t.base))
        .header(header::COOKIE, &cookie)
        .header("hx-request", "true")
        .form(&[("csrf", token.as_str()), ("status", "away")])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    assert!(answer.text().await.unwrap().contains("badge away"));
    assert_eq!(rep_status(&t, "ana").await, "away");

    for (form, want) in [
        (
            vec![("csrf", "0".repeat(64)), ("status", "available".into())],
            StatusCode::FORBIDDEN,
        ),
        (
            vec![("csrf", token.clone()), ("status", "busy".into())],
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(post_form(&t, &cookie, "/console/status", &form).await, want);
    }
    assert_eq!(rep_status(&t, "ana").await, "away", "nothing changed");

    // A key of no principal has no status of its own: no switch, and a refusal.
    let (owner, _) = sign_in(&t, &t.key).await;
    let (_, page) = get_page(&t, &owner, "/console").await;
    assert!(!page.contains("my-status"));
    let token = csrf(&page);
    let status = post_form(
        &t,
        &owner,
        "/console/status",
        &[("csrf", &token), ("status", "away")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    t.stop().await;
}

async fn my_queue_holds_my_teams_escalations_with_claim_and_outcome(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    team(&t, "west").await;
    team(&t, "east").await;
    principal(&t, "ana", "operator", Some("west")).await;
    let ana = key(&t, "operator", Some("west"), Some("ana")).await;
    let first = lead(&t, "q-1", "Quinn First", "+14155550161", Some("west"), 300).await;
    let second = lead(&t, "q-2", "Quinn Second", "+14155550162", Some("west"), 300).await;
    let calm = lead(&t, "q-3", "Quinn Calm", "+14155550163", Some("west"), 300).await;
    let other = lead(&t, "q-4", "Quinn East", "+14155550164", Some("east"), 300).await;
    for id in [&first, &second, &other] {
        let (status, body) = t
            .post(
                &format!("/v1/opportunities/{id}/escalate"),
                json!({"reason": "no answer"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (cookie, _) = sign_in(&t, &ana).await;
    let (status, page) = get_page(&t, &cookie, "/console/queue").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        row_ids(&page),
        [first.clone(), second.clone()],
        "west's, oldest breach first"
    );
    assert!(!page.contains(&calm) && !page.contains(&other));
    assert!(page.contains("escalated") && page.contains("claim") && page.contains("call now"));
    let token = csrf(&page);

    let claim = format!("/console/opportunities/{second}/claim");
    let (status, to) =
        post_form_answer(&t, &cookie, &claim, &[("csrf", &token), ("back", "queue")]).await;
    assert_eq!(
        (status, to.as_str()),
        (StatusCode::SEE_OTHER, "/console/queue")
    );
    let (_, opp) = t.get(&format!("/v1/opportunities/{second}")).await;
    assert_eq!(opp["assignee"], "ana");
    let (_, log) = t
        .get(&format!("/v1/audit?action=reassign&target={second}"))
        .await;
    assert_eq!(log["items"][0]["principal"], "ana");
    assert_eq!(log["items"][0]["reason"], "claimed from my queue");
    let (_, page) = get_page(&t, &cookie, "/console/queue/rows").await;
    assert!(page.contains("ana (me)"), "{page}");

    let outcome = format!("/console/opportunities/{first}/outcome");
    for (stage, reason, want) in [
        ("qualified", "x", StatusCode::BAD_REQUEST),
        ("won", "", StatusCode::BAD_REQUEST),
        ("nurture", "call in spring", StatusCode::SEE_OTHER),
    ] {
        let form = [
            ("csrf", token.as_str()),
            ("stage", stage),
            ("reason", reason),
            ("back", "queue"),
        ];
        assert_eq!(
            post_form(&t, &cookie, &outcome, &form).await,
            want,
            "{stage} {reason:?}"
        );
    }
    let (_, opp) = t.get(&format!("/v1/opportunities/{first}")).await;
    assert_eq!(opp["stage"], "nurture");
    let (_, log) = t
        .get(&format!("/v1/audit?action=set_stage&target={first}"))
        .await;
    assert_eq!(log["items"][0]["principal"], "ana");
    assert_eq!(log["items"][0]["reason"], "call in spring");
    let won = [
        ("csrf", token.as_str()),
        ("stage", "lost"),
        ("reason", "bought elsewhere"),
        ("back", "queue"),
    ];
    let lost = format!("/console/opportunities/{second}/outcome");
    assert_eq!(
        post_form(&t, &cookie, &lost, &won).await,
        StatusCode::SEE_OTHER
    );
    let (_, page) = get_page(&t, &cookie, "/console/queue").await;
    assert!(
        !row_ids(&page).contains(&second),
        "a closed lead leaves the queue"
    );

    // The lead's own page has the same buttons, and comes back to itself.
    let (_, detail) = get_page(&t, &cookie, &format!("/console/opportunities/{calm}")).await;
    assert!(
        detail.contains("call now") && detail.contains("set outcome"),
        "{detail}"
    );
    let outcome = format!("/console/opportunities/{calm}/outcome");
    let form = [
        ("csrf", token.as_str()),
        ("stage", "lost"),
        ("reason", "moved away"),
        ("back", "detail"),
    ];
    let (status, to) = post_form_answer(&t, &cookie, &outcome, &form).await;
    assert_eq!(
        (status, to),
        (
            StatusCode::SEE_OTHER,
            format!("/console/opportunities/{calm}")
        )
    );
    let (_, opp) = t.get(&format!("/v1/opportunities/{calm}")).await;
    assert_eq!(opp["stage"], "lost");

    // A team's key searches its team's leads only.
    let (_, found) = get_page(&t, &cookie, "/console?q=quinn").await;
    let mut found = row_ids(&found);
    found.sort();
    let mut west = vec![first.clone(), second.clone(), calm.clone()];
    west.sort();
    assert_eq!(found, west);

    // Another team's lead is not found; a viewer's buttons are refused on the server.
    let claim_other = format!("/console/opportunities/{other}/claim");
    assert_eq!(
        post_form(&t, &cookie, &claim_other, &[("csrf", &token)]).await,
        StatusCode::NOT_FOUND
    );
    principal(&t, "vic", "viewer", Some("west")).await;
    let vic = key(&t, "viewer", Some("west"), Some("vic")).await;
    let (cookie, _) = sign_in(&t, &vic).await;
    let (_, page) = get_page(&t, &cookie, "/console/queue").await;
    assert!(
        row_ids(&page).contains(&first) && !page.contains("call now"),
        "viewers see no buttons"
    );
    let token = csrf(&page);
    for action in ["claim", "call", "outcome"] {
        let path = format!("/console/opportunities/{first}/{action}");
        let form = [("csrf", token.as_str()), ("stage", "won"), ("reason", "x")];
        assert_eq!(
            post_form(&t, &cookie, &path, &form).await,
            StatusCode::FORBIDDEN,
            "{action}"
        );
    }
    t.stop().await;
}

async fn call_now_from_the_queue_rings_me_and_bridges_the_lead(backend: Backend) {
    const ANA: &str = "+14155550201";
    let flow::Setup { app: t, sim, .. } = flow::setup(backend).await;
    team(&t, "west").await;
    // Away: the automatic flow rings nobody, so the lead is owed a callback.
    flow::rep(&t, "ana", Some("west"), ANA, "away").await;
    let ana = key(&t, "operator", Some("west"), Some("ana")).await;
    let id = lead(
        &t,
        "call-1",
        "Carla Callback",
        "+14155550101",
        Some("west"),
        300,
    )
    .await;
    let (cookie, _) = sign_in(&t, &ana).await;
    let page = eventually(Duration::from_secs(30), "the lead in my queue", || async {
        let (_, page) = get_page(&t, &cookie, "/console/queue").await;
        row_ids(&page).contains(&id).then_some(page)
    })
    .await;
    let token = csrf(&page);
    // The lead's own call must be over before ana may call (one live call per lead).
    eventually(Duration::from_secs(30), "the first call to end", || async {
        let (_, opp) = t.get(&format!("/v1/opportunities/{id}")).await;
        (opp["active_call"].is_null() && opp["live_call"].is_null()).then_some(())
    })
    .await;
    sim.set_digits(ANA, &["1"]);
    let call = format!("/console/opportunities/{id}/call");
    let (status, to) =
        post_form_answer(&t, &cookie, &call, &[("csrf", &token), ("back", "detail")]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(to, format!("/console/opportunities/{id}"));
    let (_, log) = t
        .get(&format!("/v1/audit?action=call_now&target={id}"))
        .await;
    assert_eq!(log["items"][0]["principal"], "ana", "{log}");
    let talk = eventually(Duration::from_secs(30), "ana's conversation", || async {
        t.timeline(&id)
            .await
            .into_iter()
            .find(|e| e["kind"] == "conversation" && e["data"]["rep"] == "ana")
    })
    .await;
    let reason = talk["reason"].as_str().unwrap();
    let (_, detail) = get_page(&t, &cookie, &format!("/console/opportunities/{id}/panel")).await;
    let escaped = reason
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;");
    assert!(detail.contains(&escaped), "{reason}: {detail}");
    assert!(sim.stats().bridged_calls >= 1);
    t.stop().await;
}

/// The queue is ordered before it is capped: with more leads waiting than it shows, the
/// oldest breach is first even when it belongs to the newest lead. Five hundred leads are made
/// first with a two-minute first-touch SLA, then one more with a one-minute SLA; the clock
/// moves a minute (the last lead escalates) and then another (the five hundred do).
async fn the_oldest_breach_leads_even_past_the_queues_cap(backend: Backend) {
    let clock = neuronx_supervision::Clock::simulated(chrono::Utc::now().timestamp_millis());
    let start = clock.now_ms();
    let t = TestApp::spawn_with_clock(backend, clock.clone()).await;
    let quiet = |i: usize, sla: u64| {
        let mut body = common::lead(&format!("cap-{i}"), sla);
        body["contact"]["consent"] = json!({"voice": false, "sms": false});
        body
    };
    for i in 0..500 {
        let (status, body) = t.post("/v1/opportunities", quiet(i, 120)).await;
        assert!(status.is_success(), "{body}");
    }
    clock.advance(1_000);
    let (status, body) = t.post("/v1/opportunities", quiet(500, 60)).await;
    assert!(status.is_success(), "{body}");
    let newest = body["id"].as_str().unwrap().to_owned();
    let (owner, _) = sign_in(&t, &t.key).await;
    // The dashboard's count of open escalations.
    let escalated = || async {
        let (_, panel) = get_page(&t, &owner, "/console/dashboard/panel").await;
        let at = panel.find("id=\"breached\"><b>").unwrap() + 17;
        panel[at..]
            .split('<')
            .next()
            .unwrap()
            .parse::<usize>()
            .unwrap()
    };
    clock.set(start + 61_000);
    eventually(
        Duration::from_secs(60),
        "the newest lead's escalation",
        || async {
            clock.advance(25);
            (escalated().await == 1).then_some(())
        },
    )
    .await;
    clock.set(start + 121_000);
    eventually(Duration::from_secs(120), "every escalation", || async {
        clock.advance(25);
        (escalated().await == 501).then_some(())
    })
    .await;
    let (_, page) = get_page(&t, &owner, "/console/queue/rows").await;
    let rows = row_ids(&page);
    assert_eq!(rows.len(), 500, "capped");
    assert_eq!(rows[0], newest, "the oldest breach first");
    t.stop().await;
}

both_backends!(
    the_oldest_breach_leads_even_past_the_queues_cap,
    a_rep_switches_its_own_status_from_the_header,
    my_queue_holds_my_teams_escalations_with_claim_and_outcome,
    call_now_from_the_queue_rings_me_and_bridges_the_lead,
);
