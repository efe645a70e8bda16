#![allow(clippy::unwrap_used)]
//! The console's work on one lead (issue #14, ADR 0047 addendum): snooze takes a lead out of
//! the queue until a time and it comes back by itself when the engine's clock passes it (or at
//! once on un-snooze); a text sent from the queue goes through the compliance gate (the
//! carrier simulator receives it, or the rep reads the gate's reason) and takes the
//! conversation over, shown with a hand back; the dashboard counts texts waiting on the send
//! limit. Real HTTP against a real server; PostgreSQL and SQLite.

#[path = "common/access.rs"]
mod access;
mod common;
#[path = "common/console.rs"]
mod console;
#[path = "common/flow.rs"]
mod flow;

use std::time::Duration;

use access::{key, principal, team};
use chrono::{DateTime, TimeZone, Utc};
use common::{eventually, Backend, TestApp};
use console::{
    csrf, get_page, post_form, post_form_answer, post_form_page, rep_profile, row_ids, sign_in,
};
use neuronx_supervision::Clock;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// A lead nobody calls (no voice consent) whose first-touch SLA lies a day away, so nothing
/// but the test moves it; `sms` is its consent to texts.
fn quiet_lead(external_id: &str, name: &str, phone: &str, team: &str, sms: bool) -> Value {
    let mut body = common::lead(external_id, 86_400);
    body["contact"]["name"] = json!(name);
    body["contact"]["phone"] = json!(phone);
    body["contact"]["consent"] = json!({"voice": false, "sms": sms});
    body["team"] = json!(team);
    body
}

/// Creates the lead and waits until it reads back (a create may answer 202); `tick` moves a
/// simulated clock on meanwhile, as time would.
async fn create(t: &TestApp, body: Value, tick: impl Fn()) -> String {
    let (status, body) = t.post("/v1/opportunities", body).await;
    assert!(status.is_success(), "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    eventually(Duration::from_secs(20), "the lead", || async {
        tick();
        let (status, _) = t.get(&format!("/v1/opportunities/{id}")).await;
        status.is_success().then_some(())
    })
    .await;
    id
}

async fn escalate(t: &TestApp, id: &str) {
    let (status, body) = t
        .post(
            &format!("/v1/opportunities/{id}/escalate"),
            json!({"reason": "no answer"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn audit(t: &TestApp, action: &str, target: &str) -> Vec<Value> {
    let (_, log) = t
        .get(&format!("/v1/audit?action={action}&target={target}"))
        .await;
    log["items"].as_array().unwrap().clone()
}

fn time(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

async fn snooze_hides_a_lead_until_its_time_and_it_comes_back_by_itself(backend: Backend) {
    let clock = Clock::simulated(Utc::now().timestamp_millis());
    let t = TestApp::spawn_with_clock(backend, clock.clone()).await;
    let tick = || clock.advance(25);
    team(&t, "west").await;
    team(&t, "east").await;
    // A rep in New York: "tomorrow 9:00" is read in that zone.
    rep_profile(&t, "ana", "operator", Some("west"), "+14155550201", "away").await;
    let ana = key(&t, "operator", Some("west"), Some("ana")).await;
    let sam = quiet_lead("s-1", "Sam Snooze", "+14155550171", "west", false);
    let sam = create(&t, sam, tick).await;
    let sol = quiet_lead("s-2", "Sol Stays", "+14155550172", "west", false);
    let sol = create(&t, sol, tick).await;
    let eve = quiet_lead("s-3", "Eve East", "+14155550173", "east", false);
    let eve = create(&t, eve, tick).await;
    for id in [&sam, &sol, &eve] {
        // A millisecond apart, so the oldest breach is one lead's, not a tie.
        tick();
        escalate(&t, id).await;
    }
    let (cookie, _) = sign_in(&t, &ana).await;
    let queue = || async {
        let (status, page) = get_page(&t, &cookie, "/console/queue").await;
        assert_eq!(status, StatusCode::OK);
        row_ids(&page)
    };
    let (_, page) = get_page(&t, &cookie, "/console/queue").await;
    assert_eq!(row_ids(&page), [sam.clone(), sol.clone()]);
    assert!(page.contains("until tomorrow 9:00"), "{page}");
    let token = csrf(&page);
    let snooze = format!("/console/opportunities/{sam}/snooze");

    // Hostile forms change nothing.
    for (form, want) in [
        (
            vec![("csrf", "0".repeat(64)), ("for", "1h".into())],
            StatusCode::FORBIDDEN,
        ),
        (
            vec![("csrf", token.clone()), ("for", "forever".into())],
            StatusCode::BAD_REQUEST,
        ),
        (vec![("csrf", token.clone())], StatusCode::BAD_REQUEST),
        (
            vec![
                ("csrf", token.clone()),
                ("for", "1h".into()),
                ("reason", "x".repeat(2001)),
            ],
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(
            post_form(&t, &cookie, &snooze, &form).await,
            want,
            "{form:?}"
        );
    }
    let other_team = format!("/console/opportunities/{eve}/snooze");
    let form = [("csrf", token.as_str()), ("for", "1h")];
    assert_eq!(
        post_form(&t, &cookie, &other_team, &form).await,
        StatusCode::NOT_FOUND
    );
    assert!(audit(&t, "snooze", &sam).await.is_empty());
    assert_eq!(queue().await, [sam.clone(), sol.clone()]);

    // An hour's snooze: out of the queue, on the lead's page, audited; un-snoozed, back.
    let form = [
        ("csrf", token.as_str()),
        ("for", "1h"),
        ("reason", "calls back after lunch"),
        ("back", "queue"),
    ];
    let (status, to) = post_form_answer(&t, &cookie, &snooze, &form).await;
    assert_eq!(
        (status, to.as_str()),
        (StatusCode::SEE_OTHER, "/console/queue")
    );
    assert_eq!(queue().await, [sol.as_str()]);
    let log = audit(&t, "snooze", &sam).await;
    assert_eq!(
        (
            &log[0]["principal"],
            &log[0]["reason"],
            &log[0]["after"]["by"]
        ),
        (
            &json!("ana"),
            &json!("calls back after lunch"),
            &json!("ana")
        )
    );
    let after = &log[0]["after"];
    assert_eq!(
        time(&after["until"]) - time(&after["at"]),
        chrono::Duration::hours(1)
    );
    let detail = format!("/console/opportunities/{sam}");
    let (_, page) = get_page(&t, &cookie, &detail).await;
    assert!(
        page.contains("id=\"snoozed\"") && page.contains("calls back after lunch"),
        "{page}"
    );
    // The list still finds it, and says so.
    let (_, list) = get_page(&t, &cookie, "/console?q=snooze").await;
    assert_eq!(row_ids(&list), [sam.as_str()]);
    assert!(list.contains("snoozed until"), "{list}");
    let unsnooze = format!("/console/opportunities/{sam}/unsnooze");
    let form = [("csrf", token.as_str()), ("back", "detail")];
    let (status, to) = post_form_answer(&t, &cookie, &unsnooze, &form).await;
    assert_eq!((status, to), (StatusCode::SEE_OTHER, detail.clone()));
    assert_eq!(queue().await, [sam.clone(), sol.clone()]);
    assert_eq!(audit(&t, "unsnooze", &sam).await[0]["principal"], "ana");
    let (_, page) = get_page(&t, &cookie, &detail).await;
    assert!(!page.contains("id=\"snoozed\""));
    // Nothing to un-snooze now: said so, not done twice.
    assert_eq!(
        post_form(&t, &cookie, &unsnooze, &form).await,
        StatusCode::CONFLICT
    );
    assert_eq!(audit(&t, "unsnooze", &sam).await.len(), 1);

    // Tomorrow 9:00 is the rep's morning.
    let form = [("csrf", token.as_str()), ("for", "tomorrow")];
    assert_eq!(
        post_form(&t, &cookie, &snooze, &form).await,
        StatusCode::NO_CONTENT
    );
    let log = audit(&t, "snooze", &sam).await;
    let after = &log[1]["after"];
    let ny: chrono_tz::Tz = "America/New_York".parse().unwrap();
    let day = time(&after["at"])
        .with_timezone(&ny)
        .date_naive()
        .succ_opt()
        .unwrap();
    let nine = ny
        .from_local_datetime(&day.and_hms_opt(9, 0, 0).unwrap())
        .earliest()
        .unwrap();
    assert_eq!(time(&after["until"]), nine.with_timezone(&Utc));

    // A quarter of an hour replaces it, and it returns when the clock passes that, by itself.
    let form = [("csrf", token.as_str()), ("for", "15m")];
    assert_eq!(
        post_form(&t, &cookie, &snooze, &form).await,
        StatusCode::NO_CONTENT
    );
    let log = audit(&t, "snooze", &sam).await;
    assert_eq!(log[2]["before"], log[1]["after"], "the snooze it replaced");
    let until = time(&log[2]["after"]["until"]).timestamp_millis();
    assert_eq!(queue().await, [sol.as_str()]);
    clock.set(until - 1);
    assert_eq!(queue().await, [sol.as_str()], "a moment early");
    clock.set(until);
    assert_eq!(
        queue().await,
        [sam.clone(), sol.clone()],
        "back, oldest breach first"
    );

    // A viewer may look, not snooze.
    principal(&t, "vic", "viewer", Some("west")).await;
    let vic = key(&t, "viewer", Some("west"), Some("vic")).await;
    let (viewer, _) = sign_in(&t, &vic).await;
    let (_, page) = get_page(&t, &viewer, "/console/queue").await;
    assert!(!page.contains("until tomorrow"), "viewers see no forms");
    let token = csrf(&page);
    for action in ["snooze", "unsnooze"] {
        let path = format!("/console/opportunities/{sol}/{action}");
        let form = [("csrf", token.as_str()), ("for", "1h")];
        assert_eq!(
            post_form(&t, &viewer, &path, &form).await,
            StatusCode::FORBIDDEN,
            "{action}"
        );
    }
    t.stop().await;
}

async fn a_text_from_the_queue_passes_the_gate_and_takes_the_conversation_over(backend: Backend) {
    const TIA: &str = "+14155550181";
    const NED: &str = "+14155550182";
    let flow::Setup { app: t, sim, .. } = flow::setup(backend).await;
    team(&t, "west").await;
    principal(&t, "ana", "operator", Some("west")).await;
    let ana = key(&t, "operator", Some("west"), Some("ana")).await;
    let tia = create(&t, quiet_lead("t-1", "Tia Text", TIA, "west", true), || ()).await;
    // With no consent to calls, the playbook's first touch is a text.
    eventually(
        Duration::from_secs(30),
        "the first touch by text",
        || async { (sim.stats().messages_per_number.get(TIA) == Some(&1)).then_some(()) },
    )
    .await;
    let ned = create(
        &t,
        quiet_lead("t-2", "Ned Nosms", NED, "west", false),
        || (),
    )
    .await;
    for id in [&tia, &ned] {
        escalate(&t, id).await;
    }
    let (cookie, _) = sign_in(&t, &ana).await;
    let (_, page) = get_page(&t, &cookie, "/console/queue").await;
    assert_eq!(row_ids(&page), [tia.clone(), ned.clone()]);
    assert!(
        page.contains("send text") && !page.contains("hand back"),
        "{page}"
    );
    let token = csrf(&page);
    let text = |id: &str| format!("/console/opportunities/{id}/text");

    // Hostile forms send nothing.
    let long = "x".repeat(2000);
    for (form, want) in [
        (
            vec![("csrf", "0".repeat(64)), ("body", "hi".into())],
            StatusCode::FORBIDDEN,
        ),
        (
            vec![("csrf", token.clone()), ("body", "  ".into())],
            StatusCode::BAD_REQUEST,
        ),
        (vec![("csrf", token.clone())], StatusCode::BAD_REQUEST),
        (
            vec![("csrf", token.clone()), ("body", long)],
            StatusCode::BAD_REQUEST,
        ),
        (
            vec![
                ("csrf", token.clone()),
                ("body", "hi".into()),
                ("nonce", "not a nonce!".into()),
            ],
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(post_form(&t, &cookie, &text(&tia), &form).await, want);
    }

    // Through htmx, the refusal is a fragment naming the problem.
    let answer = console::browser()
        .post(format!("{}{}", t.base, text(&tia)))
        .header(reqwest::header::COOKIE, &cookie)
        .header("hx-request", "true")
        .form(&[("csrf", token.as_str()), ("body", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
    let fragment = answer.text().await.unwrap();
    assert!(
        fragment.contains("role=\"alert\"")
            && fragment.contains("body")
            && !fragment.contains("<html"),
        "{fragment}"
    );

    // No consent to texts: refused, and the rep reads the gate's reason.
    let form = [
        ("csrf", token.as_str()),
        ("body", "Hi Ned, when suits you?"),
        ("back", "queue"),
    ];
    let (status, page) = post_form_page(&t, &cookie, &text(&ned), &form).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        page.contains("the compliance gate refused the text") && page.contains("consent"),
        "{page}"
    );
    assert!(
        page.contains("href=\"/console/queue\""),
        "the way back: {page}"
    );

    // Consent: sent, counted by the carrier, and the conversation is ana's now. The form is
    // submitted twice (a double click): its nonce makes the second a no-op, said as such.
    let (_, page) = get_page(&t, &cookie, "/console/queue").await;
    let form_of_tia = &page[page.find(&text(&tia)).unwrap()..];
    let at = form_of_tia.find("name=\"nonce\" value=\"").unwrap() + 20;
    let nonce = form_of_tia[at..].split('"').next().unwrap().to_owned();
    assert_eq!(nonce.len(), 36, "{nonce}");
    let form = [
        ("csrf", token.as_str()),
        ("body", "Hi Tia, Ana here: is now a good time?"),
        ("back", "queue"),
        ("nonce", nonce.as_str()),
    ];
    let (status, to) = post_form_answer(&t, &cookie, &text(&tia), &form).await;
    assert_eq!(
        (status, to.as_str()),
        (StatusCode::SEE_OTHER, "/console/queue")
    );
    let (status, page) = post_form_page(&t, &cookie, &text(&tia), &form).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(page.contains("already submitted"), "{page}");
    let audited = audit(&t, "message_send", &tia).await;
    let outcomes: Vec<&str> = audited
        .iter()
        .filter_map(|e| e["outcome"].as_str())
        .collect();
    assert!(
        outcomes.contains(&"applied") && outcomes.contains(&"duplicate"),
        "{outcomes:?}"
    );
    let (_, thread) = t.get(&format!("/v1/opportunities/{tia}/messages")).await;
    let by_hand = thread["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["body"] == "Hi Tia, Ana here: is now a good time?")
        .count();
    assert_eq!(by_hand, 1, "{thread}");
    eventually(
        Duration::from_secs(30),
        "the text at the carrier",
        || async { (sim.stats().messages_per_number.get(TIA) == Some(&2)).then_some(()) },
    )
    .await;
    assert_eq!(sim.stats().messages_per_number.get(NED), None);
    assert_eq!(audit(&t, "message_send", &tia).await[0]["principal"], "ana");
    let (_, rows) = get_page(&t, &cookie, "/console/queue/rows").await;
    assert!(
        rows.contains("taken over by ana") && rows.contains("hand back"),
        "{rows}"
    );
    let detail = format!("/console/opportunities/{tia}");
    let (_, page) = get_page(&t, &cookie, &detail).await;
    assert!(
        page.contains("id=\"takeover\"") && page.contains("automatic texts are stopped"),
        "{page}"
    );

    // Handed back from the lead's page: the playbook has it again; twice is refused.
    let hand_back = format!("/console/opportunities/{tia}/hand-back");
    let form = [("csrf", token.as_str()), ("back", "detail")];
    let (status, to) = post_form_answer(&t, &cookie, &hand_back, &form).await;
    assert_eq!((status, to), (StatusCode::SEE_OTHER, detail.clone()));
    let (_, opp) = t.get(&format!("/v1/opportunities/{tia}")).await;
    assert!(opp["takeover"].is_null(), "{opp}");
    assert_eq!(audit(&t, "hand_back", &tia).await[0]["principal"], "ana");
    let (_, page) = get_page(&t, &cookie, &detail).await;
    assert!(!page.contains("id=\"takeover\""));
    assert_eq!(
        post_form(&t, &cookie, &hand_back, &form).await,
        StatusCode::CONFLICT
    );

    // A viewer may not text or hand back.
    principal(&t, "vic", "viewer", Some("west")).await;
    let vic = key(&t, "viewer", Some("west"), Some("vic")).await;
    let (viewer, _) = sign_in(&t, &vic).await;
    let (_, page) = get_page(&t, &viewer, "/console/queue").await;
    let token = csrf(&page);
    for action in ["text", "hand-back"] {
        let path = format!("/console/opportunities/{tia}/{action}");
        let form = [("csrf", token.as_str()), ("body", "hi")];
        assert_eq!(
            post_form(&t, &viewer, &path, &form).await,
            StatusCode::FORBIDDEN,
            "{action}"
        );
    }
    assert_eq!(sim.stats().messages_per_number.get(TIA), Some(&2));
    t.stop().await;
}

async fn the_dashboard_counts_texts_waiting_on_the_send_limit(backend: Backend) {
    // One text in the bucket and the next one 1000 s away: every later text is turned back at
    // once and waits in the outbox.
    let flow::Setup { app: t, sim, .. } = flow::setup_with(backend, |s| {
        s.limits.sms_per_second = 0.001;
        s.limits.sms_burst = 1;
        s.limits.max_wait_ms = 20;
    })
    .await;
    team(&t, "west").await;
    team(&t, "east").await;
    // Leads with no consent to calls: each one's first touch is a text. East's takes the one
    // turn in the bucket; west's two wait.
    let phones = ["+14155550191", "+14155550192", "+14155550193"];
    let body = quiet_lead("w-0", "Eli East", phones[0], "east", true);
    create(&t, body, || ()).await;
    eventually(Duration::from_secs(30), "the first text sent", || async {
        (sim.stats().messages_per_number.get(phones[0]) == Some(&1)).then_some(())
    })
    .await;
    for (i, phone) in phones.iter().enumerate().skip(1) {
        let body = quiet_lead(&format!("w-{i}"), "Wes Wait", phone, "west", true);
        create(&t, body, || ()).await;
    }
    let tile = |page: &str| {
        let at = page.find("id=\"texts-waiting\"><b>").unwrap() + 22;
        page[at..].split('<').next().unwrap().to_owned()
    };
    let (owner, _) = sign_in(&t, &t.key).await;
    eventually(Duration::from_secs(30), "two texts waiting", || async {
        let (_, panel) = get_page(&t, &owner, "/console/dashboard/panel").await;
        (tile(&panel) == "2").then_some(())
    })
    .await;
    let (_, page) = get_page(&t, &owner, "/console/dashboard").await;
    assert!(page.contains("texts waiting on the send limit"), "{page}");
    assert_eq!(sim.stats().messages_per_number.get(phones[1]), None);
    // A team's key counts its team's texts only.
    let east = key(&t, "viewer", Some("east"), None).await;
    let (east, _) = sign_in(&t, &east).await;
    let (_, panel) = get_page(&t, &east, "/console/dashboard/panel").await;
    assert_eq!(tile(&panel), "0");
    let west = key(&t, "viewer", Some("west"), None).await;
    let (west, _) = sign_in(&t, &west).await;
    let (_, panel) = get_page(&t, &west, "/console/dashboard/panel").await;
    assert_eq!(tile(&panel), "2");
    t.stop().await;
}

both_backends!(
    snooze_hides_a_lead_until_its_time_and_it_comes_back_by_itself,
    a_text_from_the_queue_passes_the_gate_and_takes_the_conversation_over,
    the_dashboard_counts_texts_waiting_on_the_send_limit,
);
