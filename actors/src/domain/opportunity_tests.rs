use std::collections::BTreeMap;

use chrono::{TimeDelta, TimeZone};
use proptest::prelude::*;
use serde_json::json;

use super::*;

fn t(seconds: i64) -> DateTime<Utc> {
    let t0 = Utc.with_ymd_and_hms(2025, 1, 1, 12, 0, 0).unwrap();
    t0 + TimeDelta::seconds(seconds)
}

fn pb() -> Playbook {
    Playbook::with_defaults("speed-to-lead")
}

fn opp_id() -> Uuid {
    Uuid::from_u128(0x0123_4567_89ab_cdef)
}

fn contact(voice: bool, sms: bool) -> Contact {
    Contact {
        name: "Ana".into(),
        phone: "+14155550100".into(),
        email: None,
        timezone: Some("America/Los_Angeles".into()),
        consent: Consent { voice, sms },
    }
}

fn create_input(voice: bool, sms: bool) -> OppInput {
    OppInput::Create {
        id: opp_id(),
        external_id: "ghl-1".into(),
        contact: contact(voice, sms),
        playbook: "speed-to-lead".into(),
        sla: None,
        assignee: None,
    }
}

fn created_with(voice: bool, sms: bool, pb: &Playbook) -> Opportunity {
    let mut input = create_input(voice, sms);
    if let OppInput::Create { playbook, .. } = &mut input {
        playbook.clone_from(&pb.name);
    }
    apply(None, input, t(0), pb).unwrap().state
}

fn created(voice: bool, sms: bool) -> Opportunity {
    created_with(voice, sms, &pb())
}

fn run(state: &Opportunity, input: OppInput, at: i64) -> OppDecision {
    apply(Some(state), input, t(at), &pb()).unwrap()
}

fn kinds(d: &OppDecision) -> Vec<TimelineKind> {
    d.timeline.iter().map(|e| e.kind).collect()
}

fn fire(timer: OppTimer) -> OppInput {
    OppInput::TimerFired { timer }
}

fn finish(state: &Opportunity, result: CallResult) -> OppInput {
    let call_id = state.active_call.unwrap();
    OppInput::CallFinished { call_id, result }
}

fn op(by: &str) -> String {
    by.to_owned()
}

fn set_stage(stage: Stage) -> OppInput {
    OppInput::SetStage {
        stage,
        by: op("ana"),
        reason: None,
    }
}

#[test]
fn create_with_voice_consent_places_the_first_call() {
    let d = apply(None, create_input(true, true), t(0), &pb()).unwrap();
    let call_id = Uuid::new_v5(&opp_id(), b"call-1");
    assert_eq!(d.reply, OppReply::Created);
    assert_eq!(d.state.stage, Stage::Contacting);
    assert_eq!(d.state.assignee, "unassigned");
    assert_eq!((d.state.attempts, d.state.active_call), (1, Some(call_id)));
    assert_eq!(d.state.first_touch_seconds, 300);
    let to = "+14155550100".to_owned();
    let start = OppEffect::StartCall {
        call_id,
        to,
        attempt: 1,
    };
    assert_eq!(d.effects, vec![start]);
    let first_touch = TimerOp::Set {
        name: OppTimer::FirstTouchSla,
        at: t(300),
    };
    assert_eq!(d.timers, vec![first_touch]);
    use TimelineKind::*;
    assert_eq!(kinds(&d), vec![Created, StageChanged, CallPlaced]);
    assert_eq!(d.timeline[1].cause, Cause::Playbook);
    assert_eq!(
        d.timeline[1].data,
        json!({"from": "new", "to": "contacting"})
    );
}

#[test]
fn create_with_sms_only_texts_the_lead() {
    let d = apply(None, create_input(false, true), t(0), &pb()).unwrap();
    assert_eq!(d.state.attempts, 0);
    assert_eq!(d.state.active_call, None);
    let body = "Hi Ana, we just tried to call you. Reply here or call us back.".to_owned();
    let to = "+14155550100".to_owned();
    assert_eq!(d.effects, vec![OppEffect::SendSms { to, body }]);
    assert_eq!(d.timeline.last().unwrap().kind, TimelineKind::EffectSent);
}

#[test]
fn create_without_consent_only_arms_the_sla() {
    let d = apply(None, create_input(false, false), t(0), &pb()).unwrap();
    assert!(d.effects.is_empty());
    assert_eq!(d.timers.len(), 1);
}

#[test]
fn create_honours_sla_override_and_assignee() {
    let mut input = create_input(true, false);
    if let OppInput::Create { sla, assignee, .. } = &mut input {
        *sla = Some(SlaOverride {
            first_touch_seconds: Some(60),
        });
        *assignee = Some("bo".into());
    }
    let d = apply(None, input, t(0), &pb()).unwrap();
    assert_eq!(d.state.assignee, "bo");
    assert_eq!(d.state.first_touch_seconds, 60);
    assert!(d.timers.contains(&TimerOp::Set {
        name: OppTimer::FirstTouchSla,
        at: t(60)
    }));
}

#[test]
fn create_is_idempotent() {
    let opp = created(true, true);
    let d = run(&opp, create_input(false, false), 50);
    assert_eq!(d.reply, OppReply::AlreadyExists);
    assert_eq!(d.state, opp);
    assert!(d.effects.is_empty() && d.timers.is_empty() && d.timeline.is_empty());
}

#[test]
fn inputs_other_than_create_need_an_opportunity() {
    let err = apply(None, fire(OppTimer::RetryCall), t(0), &pb()).unwrap_err();
    assert_eq!(err, Rejection::NotFound);
}

#[test]
fn create_rejections_name_the_field() {
    let reject = |edit: fn(&mut OppInput)| {
        let mut input = create_input(true, true);
        edit(&mut input);
        apply(None, input, t(0), &pb()).unwrap_err().to_string()
    };
    let bad_phone = reject(|i| {
        if let OppInput::Create { contact, .. } = i {
            contact.phone = "4155550100".into();
        }
    });
    assert!(bad_phone.starts_with("invalid phone"), "{bad_phone}");
    let no_external = reject(|i| {
        if let OppInput::Create { external_id, .. } = i {
            external_id.clear();
        }
    });
    assert!(
        no_external.starts_with("invalid external_id"),
        "{no_external}"
    );
    let zero_sla = reject(|i| {
        if let OppInput::Create { sla, .. } = i {
            *sla = Some(SlaOverride {
                first_touch_seconds: Some(0),
            });
        }
    });
    assert!(
        zero_sla.starts_with("invalid sla.first_touch_seconds"),
        "{zero_sla}"
    );
    let empty_assignee = reject(|i| {
        if let OppInput::Create { assignee, .. } = i {
            *assignee = Some(" ".into());
        }
    });
    assert!(
        empty_assignee.starts_with("invalid assignee"),
        "{empty_assignee}"
    );
    let mismatch = reject(|i| {
        if let OppInput::Create { playbook, .. } = i {
            *playbook = "demo".into();
        }
    });
    assert!(mismatch.starts_with("playbook mismatch"), "{mismatch}");
}

#[test]
fn e164_validation() {
    for ok in [
        "+14155550100",
        "+4930123456",
        "+12345678",
        "+123456789012345",
    ] {
        assert_eq!(validate_e164(ok), Ok(()), "{ok}");
    }
    for bad in [
        "14155550100",
        "+1234567",
        "+1234567890123456",
        "+0123456789",
        "+1415 555 0100",
        "+",
    ] {
        let err = validate_e164(bad).unwrap_err();
        assert!(
            matches!(err, Rejection::InvalidField { field: "phone", .. }),
            "{bad}"
        );
    }
}

#[test]
fn stage_moves_follow_the_table() {
    use Stage::*;
    let forward: &[(Stage, &[Stage])] = &[
        (New, &[Contacting]),
        (Contacting, &[Engaged, Unreachable, Nurture]),
        (Engaged, &[Qualified, Nurture, Contacting]),
        (Qualified, &[Booked, Nurture]),
        (Booked, &[Won, Qualified]),
        (Unreachable, &[Contacting, Nurture]),
        (Nurture, &[Contacting]),
    ];
    for &from in Stage::ALL {
        for &to in Stage::ALL {
            let listed = forward
                .iter()
                .any(|(f, tos)| *f == from && tos.contains(&to));
            let closing = matches!(to, Lost | DoNotContact) && !from.is_terminal();
            assert_eq!(from.can_move_to(to), listed || closing, "{from} -> {to}");
        }
    }
    assert!(Unreachable.can_move_to(Contacting) && !Unreachable.is_terminal());
    assert!(Won.is_terminal() && Lost.is_terminal() && DoNotContact.is_terminal());
}

#[test]
fn names_parse_and_serialize_in_snake_case() {
    for &stage in Stage::ALL {
        assert_eq!(stage.as_str().parse::<Stage>(), Ok(stage));
        assert_eq!(serde_json::to_value(stage).unwrap(), json!(stage.as_str()));
    }
    assert_eq!("do_not_contact".parse::<Stage>(), Ok(Stage::DoNotContact));
    let err = "closed".parse::<Stage>().unwrap_err().to_string();
    assert!(
        err.starts_with("unknown stage \"closed\"; expected one of new, contacting"),
        "{err}"
    );
    for &timer in OppTimer::ALL {
        assert_eq!(timer.as_str().parse::<OppTimer>(), Ok(timer));
        assert_eq!(serde_json::to_value(timer).unwrap(), json!(timer.as_str()));
    }
    assert_eq!(
        serde_json::to_value(CallResult::NoAnswer).unwrap(),
        json!("no_answer")
    );
}

#[test]
fn wire_shapes_are_tagged() {
    let input: OppInput = serde_json::from_value(json!({
        "type": "set_stage", "stage": "qualified", "by": "ana"
    }))
    .unwrap();
    assert_eq!(
        input,
        OppInput::SetStage {
            stage: Stage::Qualified,
            by: op("ana"),
            reason: None
        }
    );
    let effect = OppEffect::NotifyEscalation {
        queue: "q".into(),
        reason: "r".into(),
    };
    assert_eq!(
        serde_json::to_value(&effect).unwrap(),
        json!({"type": "notify_escalation", "queue": "q", "reason": "r"})
    );
    let opp = created(true, true);
    let back: Opportunity = serde_json::from_value(serde_json::to_value(&opp).unwrap()).unwrap();
    assert_eq!(back, opp);
}

#[test]
fn first_touch_sla_escalates_an_unreached_lead() {
    let opp = created(true, true);
    let d = run(&opp, fire(OppTimer::FirstTouchSla), 300);
    assert_eq!(d.state.stage, Stage::Contacting);
    assert!(d.state.escalated);
    assert_eq!(d.state.assignee, "escalations");
    let reason = "lead not reached within 300 s of creation".to_owned();
    let queue = "escalations".to_owned();
    assert_eq!(
        d.effects,
        vec![OppEffect::NotifyEscalation { queue, reason }]
    );
    assert_eq!(kinds(&d), vec![TimelineKind::SlaEscalated]);
    assert_eq!(
        d.timeline[0].reason,
        "lead not reached within 300 s of creation; moved to the escalations queue"
    );
    assert_eq!(d.state.updated_at, t(300));
}

#[test]
fn first_touch_sla_is_a_no_op_once_reached_or_closed() {
    let opp = created(true, true);
    let engaged = run(&opp, finish(&opp, CallResult::Answered), 10).state;
    let d = run(&engaged, fire(OppTimer::FirstTouchSla), 300);
    assert_eq!(d.state, engaged);
    assert!(d.effects.is_empty() && d.timeline.is_empty());
    let lost = run(&opp, set_stage(Stage::Lost), 10).state;
    assert!(run(&lost, fire(OppTimer::FirstTouchSla), 300)
        .effects
        .is_empty());
}

#[test]
fn answered_call_engages_and_stops_the_first_touch_sla() {
    let opp = created(true, true);
    let d = run(&opp, finish(&opp, CallResult::Answered), 20);
    assert!(d.state.reached);
    assert_eq!(d.state.stage, Stage::Engaged);
    assert_eq!(d.state.active_call, None);
    assert!(d.effects.is_empty());
    assert!(d.timers.contains(&TimerOp::Clear {
        name: OppTimer::FirstTouchSla
    }));
    use TimelineKind::*;
    assert_eq!(kinds(&d), vec![CallOutcome, StageChanged]);
    assert_eq!(d.timeline[1].cause, Cause::Contact);
}

#[test]
fn missed_call_texts_and_schedules_a_retry() {
    let opp = created(true, true);
    let d = run(&opp, finish(&opp, CallResult::NoAnswer), 40);
    assert_eq!(d.state.stage, Stage::Contacting);
    assert_eq!(d.state.active_call, None);
    assert!(
        matches!(&d.effects[..], [OppEffect::SendSms { body, .. }] if body.starts_with("Hi Ana,"))
    );
    assert_eq!(
        d.timers,
        vec![TimerOp::Set {
            name: OppTimer::RetryCall,
            at: t(640)
        }]
    );
    let retry = run(&d.state, fire(OppTimer::RetryCall), 640);
    let call_id = Uuid::new_v5(&opp_id(), b"call-2");
    assert_eq!(retry.state.attempts, 2);
    assert_eq!(retry.state.active_call, Some(call_id));
    let to = "+14155550100".to_owned();
    assert_eq!(
        retry.effects,
        vec![OppEffect::StartCall {
            call_id,
            to,
            attempt: 2
        }]
    );
}

#[test]
fn missed_call_without_sms_consent_only_retries() {
    let opp = created(true, false);
    let d = run(&opp, finish(&opp, CallResult::Busy), 40);
    assert!(d.effects.is_empty());
    assert_eq!(d.timers.len(), 1);
}

#[test]
fn exhausting_attempts_marks_the_lead_unreachable() {
    let demo = Playbook {
        max_attempts: 2,
        ..pb()
    };
    let mut opp = created_with(true, true, &demo);
    for at in [10, 20] {
        let call_id = opp.active_call.unwrap();
        let input = OppInput::CallFinished {
            call_id,
            result: CallResult::Machine,
        };
        opp = apply(Some(&opp), input, t(at), &demo).unwrap().state;
        if opp.stage == Stage::Contacting {
            opp = apply(Some(&opp), fire(OppTimer::RetryCall), t(at + 1), &demo)
                .unwrap()
                .state;
        }
    }
    assert_eq!(opp.stage, Stage::Unreachable);
    assert_eq!(opp.attempts, 2);
    // Replaying the exhausting step shows its outputs.
    let mut before = opp.clone();
    before.stage = Stage::Contacting;
    before.active_call = Some(Uuid::new_v5(&opp_id(), b"call-2"));
    let input = finish(&before, CallResult::NoAnswer);
    let d = apply(Some(&before), input, t(30), &demo).unwrap();
    use TimelineKind::*;
    assert_eq!(
        kinds(&d),
        vec![CallOutcome, EffectSent, AttemptsExhausted, StageChanged]
    );
    assert_eq!(
        d.timeline[3].data,
        json!({"from": "contacting", "to": "unreachable"})
    );
    for &name in OppTimer::ALL {
        assert!(d.timers.contains(&TimerOp::Clear { name }), "{name}");
    }
    assert!(run(&d.state, fire(OppTimer::RetryCall), 40)
        .effects
        .is_empty());
}

#[test]
fn duplicate_or_stray_call_reports_are_ignored() {
    let opp = created(true, true);
    let input = finish(&opp, CallResult::NoAnswer);
    let once = run(&opp, input.clone(), 40).state;
    let twice = run(&once, input, 41);
    assert_eq!(twice.state, once);
    assert!(twice.timeline.is_empty() && twice.effects.is_empty());
    let stray = OppInput::CallFinished {
        call_id: Uuid::nil(),
        result: CallResult::Answered,
    };
    assert_eq!(run(&opp, stray, 42).state, opp);
}

#[test]
fn pause_and_resume_guard_their_preconditions() {
    let opp = created(true, true);
    let pause = || OppInput::Pause {
        by: op("ana"),
        reason: Some("lead asked".into()),
    };
    let paused = run(&opp, pause(), 5);
    assert!(paused.state.paused);
    assert_eq!(paused.timeline[0].reason, "paused by ana: lead asked");
    assert_eq!(paused.timeline[0].cause, Cause::Operator(op("ana")));
    let err = apply(Some(&paused.state), pause(), t(6), &pb()).unwrap_err();
    assert_eq!(err.to_string(), "opportunity is already paused");
    let err = apply(Some(&opp), OppInput::Resume { by: op("ana") }, t(6), &pb()).unwrap_err();
    assert_eq!(err, Rejection::NotPaused);
}

#[test]
fn timers_fired_while_paused_are_held_then_refired_on_resume() {
    let opp = created(true, true);
    let paused = run(
        &opp,
        OppInput::Pause {
            by: op("ana"),
            reason: None,
        },
        5,
    )
    .state;
    let held = run(&paused, fire(OppTimer::FirstTouchSla), 300);
    assert!(held.effects.is_empty());
    assert_eq!(held.state.held_timers, vec![OppTimer::FirstTouchSla]);
    assert_eq!(kinds(&held), vec![TimelineKind::TimerHeld]);
    let resumed = run(&held.state, OppInput::Resume { by: op("ana") }, 400);
    assert!(!resumed.state.paused && resumed.state.held_timers.is_empty());
    assert!(matches!(
        &resumed.effects[..],
        [OppEffect::NotifyEscalation { .. }]
    ));
    use TimelineKind::*;
    assert_eq!(kinds(&resumed), vec![Resumed, SlaEscalated]);
}

#[test]
fn missed_call_while_paused_defers_the_retry() {
    let opp = created(true, true);
    let paused = run(
        &opp,
        OppInput::Pause {
            by: op("ana"),
            reason: None,
        },
        5,
    )
    .state;
    let d = run(&paused, finish(&paused, CallResult::NoAnswer), 40);
    assert!(d.effects.is_empty());
    assert_eq!(d.state.active_call, None);
    assert_eq!(d.state.held_timers, vec![OppTimer::RetryCall]);
    let resumed = run(&d.state, OppInput::Resume { by: op("ana") }, 900);
    assert!(matches!(
        &resumed.effects[..],
        [OppEffect::StartCall { attempt: 2, .. }]
    ));
}

#[test]
fn reassign_records_who_and_why() {
    let opp = created(true, true);
    let reassign = |assignee: &str| OppInput::Reassign {
        assignee: assignee.into(),
        by: op("ana"),
        reason: "vacation".into(),
    };
    let d = run(&opp, reassign("bo"), 5);
    assert_eq!(d.state.assignee, "bo");
    assert_eq!(
        d.timeline[0].reason,
        "reassigned from unassigned to bo by ana: vacation"
    );
    assert_eq!(
        d.timeline[0].data,
        json!({"from": "unassigned", "to": "bo", "by": "ana", "reason": "vacation"})
    );
    assert_eq!(run(&d.state, reassign("bo"), 6).state, d.state);
    let err = apply(Some(&opp), reassign(""), t(5), &pb()).unwrap_err();
    assert_eq!(err.to_string(), "invalid assignee: must not be empty");
}

#[test]
fn operator_escalation() {
    let opp = created(true, true);
    let escalate = || OppInput::Escalate {
        by: op("ana"),
        reason: Some("vip".into()),
    };
    let d = run(&opp, escalate(), 5);
    assert_eq!(d.timeline[0].cause, Cause::Operator(op("ana")));
    assert_eq!(
        d.timeline[0].reason,
        "escalated by ana: vip; moved to the escalations queue"
    );
    assert_eq!(d.effects.len(), 1);
    let paused = run(
        &opp,
        OppInput::Pause {
            by: op("ana"),
            reason: None,
        },
        5,
    )
    .state;
    let err = apply(Some(&paused), escalate(), t(6), &pb()).unwrap_err();
    assert!(matches!(err, Rejection::Paused { .. }));
    let won = Opportunity {
        stage: Stage::Won,
        ..opp
    };
    let err = apply(Some(&won), escalate(), t(6), &pb()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "opportunity is won, a terminal stage; cannot escalate"
    );
}

#[test]
fn illegal_stage_moves_are_rejected() {
    let won = Opportunity {
        stage: Stage::Won,
        ..created(true, true)
    };
    let err = apply(Some(&won), set_stage(Stage::Contacting), t(5), &pb()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "illegal stage transition from won to contacting"
    );
    let opp = created(true, true);
    let err = apply(Some(&opp), set_stage(Stage::Booked), t(5), &pb()).unwrap_err();
    assert_eq!(
        err,
        Rejection::IllegalTransition {
            from: Stage::Contacting,
            to: Stage::Booked
        }
    );
}

#[test]
fn setting_the_current_stage_again_is_a_no_op() {
    let opp = created(true, true);
    let d = run(&opp, set_stage(Stage::Contacting), 5);
    assert_eq!(d.state, opp);
    assert!(d.timeline.is_empty());
}

#[test]
fn closing_clears_timers_but_lets_the_active_call_finish() {
    let opp = created(true, true);
    let d = run(&opp, set_stage(Stage::Lost), 5);
    assert_eq!(d.state.stage, Stage::Lost);
    assert_eq!(d.state.active_call, opp.active_call);
    for &name in OppTimer::ALL {
        assert!(d.timers.contains(&TimerOp::Clear { name }), "{name}");
    }
    assert_eq!(d.timeline.len(), 1);
    assert_eq!(d.timeline[0].cause, Cause::Operator(op("ana")));
    let done = run(&d.state, finish(&d.state, CallResult::NoAnswer), 30);
    assert_eq!(done.state.active_call, None);
    assert_eq!(done.state.stage, Stage::Lost);
    assert!(done.effects.is_empty() && done.timers.is_empty());
    let reply = run(&done.state, OppInput::Replied { body: "hi".into() }, 40);
    assert!(reply.effects.is_empty() && reply.timers.is_empty());
}

#[test]
fn operator_moves_into_engagement_count_as_reaching_the_lead() {
    let opp = created(true, true);
    let d = run(&opp, set_stage(Stage::Engaged), 5);
    assert!(d.state.reached);
    assert!(d.timers.contains(&TimerOp::Clear {
        name: OppTimer::FirstTouchSla
    }));
}

#[test]
fn moving_back_to_contacting_resumes_the_cadence() {
    let opp = created(true, true);
    let engaged = run(&opp, finish(&opp, CallResult::Answered), 10).state;
    let d = run(&engaged, set_stage(Stage::Contacting), 100);
    assert_eq!(
        d.timers,
        vec![TimerOp::Set {
            name: OppTimer::RetryCall,
            at: t(100)
        }]
    );
    let call = run(&d.state, fire(OppTimer::RetryCall), 100);
    assert_eq!(call.state.attempts, 2);
}

#[test]
fn reply_engages_and_arms_the_response_sla() {
    let opp = created(false, true);
    let d = run(
        &opp,
        OppInput::Replied {
            body: "yes please".into(),
        },
        30,
    );
    assert!(d.state.reached);
    assert_eq!(d.state.stage, Stage::Engaged);
    use TimelineKind::*;
    assert_eq!(kinds(&d), vec![Replied, StageChanged]);
    assert_eq!(d.timeline[1].cause, Cause::Contact);
    assert!(d.timers.contains(&TimerOp::Clear {
        name: OppTimer::FirstTouchSla
    }));
    assert!(d.timers.contains(&TimerOp::Set {
        name: OppTimer::ResponseSla,
        at: t(150)
    }));
    let late = run(&d.state, fire(OppTimer::ResponseSla), 150);
    assert_eq!(
        late.timeline[0].reason,
        "no human response within 120 s of the lead's reply; moved to the escalations queue"
    );
    assert!(matches!(
        &late.effects[..],
        [OppEffect::NotifyEscalation { .. }]
    ));
}

// ---- properties ----------------------------------------------------------

/// A host's view: the opportunity plus the timers its decisions armed.
#[derive(Debug, Clone)]
struct Sim {
    pb: Playbook,
    opp: Opportunity,
    armed: BTreeMap<OppTimer, DateTime<Utc>>,
    now: DateTime<Utc>,
}

fn check_invariants(sim: &Sim) -> Result<(), String> {
    let o = &sim.opp;
    let armed_or_held = |t: OppTimer| sim.armed.contains_key(&t) || o.held_timers.contains(&t);
    let mut held = o.held_timers.clone();
    held.sort();
    held.dedup();
    let checks = [
        (
            o.attempts <= sim.pb.max_attempts,
            "attempts exceed max_attempts",
        ),
        (o.stage != Stage::New, "stage new after creation"),
        (
            !o.stage.is_terminal() || sim.armed.is_empty(),
            "terminal with armed timers",
        ),
        (
            !o.stage.is_terminal() || o.held_timers.is_empty(),
            "terminal with held timers",
        ),
        (
            o.paused || o.held_timers.is_empty(),
            "held timers while running",
        ),
        (held.len() == o.held_timers.len(), "duplicate held timers"),
        (
            !armed_or_held(OppTimer::RetryCall) || o.stage == Stage::Contacting,
            "retry outside contacting",
        ),
        (
            !o.reached || !armed_or_held(OppTimer::FirstTouchSla),
            "first-touch sla after reaching",
        ),
        (
            o.active_call.is_none() || (o.contact.consent.voice && o.attempts >= 1),
            "call without consent",
        ),
        (o.updated_at >= o.created_at, "updated before created"),
    ];
    match checks.iter().find(|(ok, _)| !ok) {
        Some((_, what)) => Err(format!("{what}: {o:?} armed {:?}", sim.armed)),
        None => Ok(()),
    }
}

#[derive(Debug, Clone)]
enum Act {
    Pause,
    Resume,
    Reassign(bool),
    Escalate,
    SetStage(Stage),
    FireArmed(usize),
    FireAny(OppTimer),
    FinishActive(CallResult),
    FinishStray(CallResult),
    Reply,
    Create,
    Wait(u16),
}

fn call_result() -> impl Strategy<Value = CallResult> {
    use CallResult::*;
    prop::sample::select(vec![Answered, Machine, NoAnswer, Busy, Failed, Canceled])
}

fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        2 => Just(Act::Pause),
        2 => Just(Act::Resume),
        1 => any::<bool>().prop_map(Act::Reassign),
        1 => Just(Act::Escalate),
        3 => prop::sample::select(Stage::ALL.to_vec()).prop_map(Act::SetStage),
        6 => any::<usize>().prop_map(Act::FireArmed),
        1 => prop::sample::select(OppTimer::ALL.to_vec()).prop_map(Act::FireAny),
        6 => call_result().prop_map(Act::FinishActive),
        1 => call_result().prop_map(Act::FinishStray),
        2 => Just(Act::Reply),
        1 => Just(Act::Create),
        2 => (0u16..900).prop_map(Act::Wait),
    ]
}

fn playbook() -> impl Strategy<Value = Playbook> {
    (1u32..5, 1u64..400, 1u64..200, 0u64..700, any::<bool>()).prop_map(
        |(max_attempts, first_touch, response, retry, sms)| Playbook {
            max_attempts,
            first_touch_sla_seconds: first_touch,
            response_sla_seconds: response,
            retry_delay_seconds: retry,
            sms_after_missed_call: sms.then(|| "Hi {name}".to_owned()),
            ..pb()
        },
    )
}

/// Fresh opportunities, and opportunities built directly in any stage.
fn start() -> impl Strategy<Value = Sim> {
    let fresh = (
        playbook(),
        any::<(bool, bool)>(),
        prop::option::of(1u64..500),
    )
        .prop_map(|(pb, (voice, sms), first_touch)| {
            let mut input = create_input(voice, sms);
            if let OppInput::Create { playbook, sla, .. } = &mut input {
                playbook.clone_from(&pb.name);
                *sla = Some(SlaOverride {
                    first_touch_seconds: first_touch,
                });
            }
            let d = apply(None, input, t(0), &pb).unwrap();
            let mut sim = Sim {
                pb,
                opp: d.state,
                armed: BTreeMap::new(),
                now: t(0),
            };
            track(&mut sim, &d.timers);
            sim
        });
    let stage = prop::sample::select(Stage::ALL[1..].to_vec());
    let flags = any::<(bool, bool, bool, bool, bool)>();
    let held = prop::collection::vec(prop::sample::select(OppTimer::ALL.to_vec()), 0..4);
    let built = (playbook(), stage, flags, 0u32..5, held).prop_map(
        |(pb, stage, (voice, sms, paused, reached, calling), attempts, mut held)| {
            let mut opp = created_with(voice, sms, &pb);
            opp.stage = stage;
            opp.attempts = attempts.min(pb.max_attempts);
            opp.active_call = (calling && voice && opp.attempts >= 1)
                .then(|| Uuid::new_v5(&opp.id, format!("call-{}", opp.attempts).as_bytes()));
            opp.paused = paused;
            opp.reached = reached;
            held.sort();
            held.dedup();
            held.retain(|h| {
                paused
                    && !stage.is_terminal()
                    && (*h != OppTimer::RetryCall || stage == Stage::Contacting)
                    && (*h != OppTimer::FirstTouchSla || !reached)
            });
            opp.held_timers = held;
            Sim {
                pb,
                opp,
                armed: BTreeMap::new(),
                now: t(0),
            }
        },
    );
    prop_oneof![fresh, built]
}

fn track(sim: &mut Sim, ops: &[TimerOp<OppTimer>]) {
    for op in ops {
        match op {
            TimerOp::Set { name, at } => sim.armed.insert(*name, *at),
            TimerOp::Clear { name } => sim.armed.remove(name),
        };
    }
}

/// Turns an abstract act into a concrete input, firing armed timers the way
/// a host would (advancing the clock and disarming them).
fn resolve(sim: &mut Sim, act: Act) -> Option<OppInput> {
    let by = op("ana");
    Some(match act {
        Act::Pause => OppInput::Pause { by, reason: None },
        Act::Resume => OppInput::Resume { by },
        Act::Reassign(other) => {
            let assignee = if other { "bo" } else { "ana" }.to_owned();
            OppInput::Reassign {
                assignee,
                by,
                reason: String::new(),
            }
        }
        Act::Escalate => OppInput::Escalate { by, reason: None },
        Act::SetStage(stage) => OppInput::SetStage {
            stage,
            by,
            reason: None,
        },
        Act::FireArmed(i) => {
            let (&timer, &at) = sim.armed.iter().nth(i % sim.armed.len().max(1))?;
            sim.now = sim.now.max(at);
            sim.armed.remove(&timer);
            OppInput::TimerFired { timer }
        }
        Act::FireAny(timer) => {
            sim.armed.remove(&timer);
            OppInput::TimerFired { timer }
        }
        Act::FinishActive(result) => OppInput::CallFinished {
            call_id: sim.opp.active_call?,
            result,
        },
        Act::FinishStray(result) => OppInput::CallFinished {
            call_id: Uuid::nil(),
            result,
        },
        Act::Reply => OppInput::Replied { body: "ok".into() },
        Act::Create => create_input(true, true),
        Act::Wait(s) => {
            sim.now += TimeDelta::seconds(i64::from(s));
            return None;
        }
    })
}

fn step_checks(before: &Opportunity, input: &OppInput, d: &OppDecision) -> Result<(), String> {
    let after = &d.state;
    let resuming = matches!(input, OppInput::Resume { .. });
    let stage_events: Vec<_> = d
        .timeline
        .iter()
        .filter(|e| e.kind == TimelineKind::StageChanged)
        .collect();
    let moved = before.stage != after.stage;
    let starts = d
        .effects
        .iter()
        .filter(|e| matches!(e, OppEffect::StartCall { .. }))
        .count();
    let mut names: Vec<_> = d.timers.iter().map(timer_name).collect();
    names.sort();
    names.dedup();
    let checks = [
        (
            !before.paused || resuming || d.effects.is_empty(),
            "paused opportunity emitted effects",
        ),
        (
            !before.stage.is_terminal() || d.effects.is_empty(),
            "terminal stage emitted effects",
        ),
        (
            !before.stage.is_terminal() || after.stage == before.stage,
            "left a terminal stage",
        ),
        (
            !before.stage.is_terminal()
                || after
                    .active_call
                    .is_none_or(|c| before.active_call == Some(c)),
            "closed opportunity started a call",
        ),
        (
            stage_events.len() == usize::from(moved),
            "stage change without exactly one event",
        ),
        (
            stage_events
                .iter()
                .all(|e| e.data == json!({"from": before.stage, "to": after.stage})),
            "stage event data does not match the move",
        ),
        (starts <= 1, "more than one call started"),
        (
            (after.attempts > before.attempts) == (starts == 1),
            "attempts changed without a call",
        ),
        (after.attempts <= before.attempts + 1, "attempts jumped"),
        (names.len() == d.timers.len(), "several ops for one timer"),
        (
            d.timers.iter().all(|op| match op {
                TimerOp::Set { at, .. } => *at >= after.updated_at,
                TimerOp::Clear { .. } => true,
            }),
            "timer set in the past",
        ),
    ];
    match checks.iter().find(|(ok, _)| !ok) {
        Some((_, what)) => Err(format!("{what}: {input:?}\nbefore {before:?}\n{d:?}")),
        None => Ok(()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn no_sequence_of_inputs_breaks_an_invariant(
        mut sim in start(),
        acts in prop::collection::vec(act(), 0..60),
    ) {
        prop_assert_eq!(check_invariants(&sim), Ok(()));
        for act in acts {
            let Some(input) = resolve(&mut sim, act) else { continue };
            let system = matches!(
                input,
                OppInput::TimerFired { .. } | OppInput::CallFinished { .. }
                    | OppInput::Replied { .. } | OppInput::Create { .. }
            );
            match apply(Some(&sim.opp), input.clone(), sim.now, &sim.pb) {
                Ok(d) => {
                    if let Err(e) = step_checks(&sim.opp, &input, &d) {
                        return Err(TestCaseError::fail(e));
                    }
                    track(&mut sim, &d.timers);
                    sim.opp = d.state;
                }
                Err(e) => prop_assert!(!system, "system input rejected: {e}"),
            }
            if let Err(e) = check_invariants(&sim) {
                return Err(TestCaseError::fail(e));
            }
        }
    }

    #[test]
    fn apply_is_deterministic(
        mut sim in start(),
        acts in prop::collection::vec(act(), 1..20),
    ) {
        for act in acts {
            let Some(input) = resolve(&mut sim, act) else { continue };
            let first = apply(Some(&sim.opp), input.clone(), sim.now, &sim.pb);
            let second = apply(Some(&sim.opp), input, sim.now, &sim.pb);
            prop_assert_eq!(&first, &second);
            if let Ok(d) = first {
                track(&mut sim, &d.timers);
                sim.opp = d.state;
            }
        }
    }
}
