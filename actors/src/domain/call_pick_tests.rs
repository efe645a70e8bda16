//! Agent first by the playbook: the call asks for a rep before dialling, dials once on the
//! answer (the rep's phone, or the lead's when nobody is free), and ignores a repeat.

use chrono::TimeZone;

use super::*;
use crate::domain::playbook::ConnectMode;

fn agent_first() -> Playbook {
    let mut pb = Playbook::with_defaults("speed-to-lead");
    pb.call_flow.connect = ConnectMode::AgentFirst;
    pb
}

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, 12, 0, 0).unwrap() + chrono::TimeDelta::seconds(seconds)
}

fn place(agent: Option<Agent>) -> CallInput {
    CallInput::Place {
        call_id: Uuid::from_u128(9),
        opportunity_id: Uuid::from_u128(7),
        to: "+14155550100".into(),
        attempt: 1,
        playbook: "speed-to-lead".into(),
        agent,
    }
}

fn ana() -> Agent {
    Agent {
        rep: "ana".into(),
        phone: "+14155550201".into(),
    }
}

#[test]
fn the_call_asks_for_a_rep_before_dialling() {
    let d = apply(None, place(None), at(0), &agent_first()).unwrap();
    assert!(d.state.picking);
    assert_eq!(d.effects, vec![CallEffect::PickRep]);
    // Click to call names its rep: it dials at once, as before.
    let d = apply(None, place(Some(ana())), at(0), &agent_first()).unwrap();
    assert!(!d.state.picking);
    assert!(matches!(&d.effects[..], [CallEffect::Dial { agent: Some(a), .. }] if a.rep == "ana"));
    // Lead first (the default) dials the lead with machine detection.
    let pb = Playbook::with_defaults("speed-to-lead");
    let d = apply(None, place(None), at(0), &pb).unwrap();
    assert!(matches!(
        &d.effects[..],
        [CallEffect::Dial {
            agent: None,
            machine_detection: true,
            ..
        }]
    ));
}

#[test]
fn the_picked_rep_is_dialled_once() {
    let pb = agent_first();
    let placed = apply(None, place(None), at(0), &pb).unwrap().state;
    let picked = CallInput::RepPicked { agent: Some(ana()) };
    let d = apply(Some(&placed), picked.clone(), at(1), &pb).unwrap();
    assert!(!d.state.picking);
    assert_eq!(d.state.agent, Some(ana()));
    assert!(matches!(
        &d.effects[..],
        [CallEffect::Dial {
            agent: Some(_),
            machine_detection: false,
            ..
        }]
    ));
    assert_eq!(d.timeline[0].data["event"], "rep_picked");
    // The same answer again (a retried effect) dials nothing more.
    let again = apply(Some(&d.state), picked, at(2), &pb).unwrap();
    assert!(again.effects.is_empty() && again.timeline.is_empty());
}

#[test]
fn with_nobody_free_the_lead_is_dialled_first() {
    let pb = agent_first();
    let placed = apply(None, place(None), at(0), &pb).unwrap().state;
    let d = apply(
        Some(&placed),
        CallInput::RepPicked { agent: None },
        at(1),
        &pb,
    )
    .unwrap();
    assert_eq!(d.state.agent, None);
    assert!(matches!(
        &d.effects[..],
        [CallEffect::Dial {
            agent: None,
            machine_detection: true,
            ..
        }]
    ));
    assert_eq!(d.timeline[0].data["rep"], serde_json::Value::Null);
}
