use chrono::{TimeDelta, TimeZone};
use serde_json::json;

use super::step::timer_name;
use super::*;
use crate::domain::compliance::{Purpose, Rules};
use crate::domain::timeline::{Cause, TimelineEvent, TimelineKind};

/// Wednesday 2025-01-08 12:00 in Los Angeles, the test contact's zone: well
/// inside calling hours.
fn t(seconds: i64) -> DateTime<Utc> {
    let t0 = Utc.with_ymd_and_hms(2025, 1, 8, 20, 0, 0).unwrap();
    t0 + TimeDelta::seconds(seconds)
}

fn pb() -> Playbook {
    Playbook::with_defaults("speed-to-lead")
}

fn rules() -> Rules {
    Rules::federal_only()
}

/// The shipped table: state windows, Florida's cap, holidays.
fn shipped_rules() -> Rules {
    Rules::from_toml(include_str!("../../../config/compliance.toml")).unwrap()
}

fn opp_id() -> Uuid {
    Uuid::from_u128(0x0123_4567_89ab_cdef)
}

fn contact(voice: bool, sms: bool) -> Contact {
    Contact {
        name: "Ana".into(),
        phone: Some("+14155550100".into()),
        email: None,
        timezone: Some("America/Los_Angeles".into()),
        consent: Consent {
            voice,
            sms,
            email: false,
        },
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
        team: None,
        history: Default::default(),
    }
}

fn created_with(voice: bool, sms: bool, pb: &Playbook) -> Opportunity {
    let mut input = create_input(voice, sms);
    if let OppInput::Create { playbook, .. } = &mut input {
        playbook.clone_from(&pb.name);
    }
    apply(None, input, t(0), pb, &rules()).unwrap().state
}

fn created(voice: bool, sms: bool) -> Opportunity {
    created_with(voice, sms, &pb())
}

fn run(state: &Opportunity, input: OppInput, at: i64) -> OppDecision {
    apply(Some(state), input, t(at), &pb(), &rules()).unwrap()
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
    let d = apply(None, create_input(true, true), t(0), &pb(), &rules()).unwrap();
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
        agent: None,
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
    let d = apply(None, create_input(false, true), t(0), &pb(), &rules()).unwrap();
    assert_eq!(d.state.attempts, 0);
    assert_eq!(d.state.active_call, None);
    let body = "Hi Ana, we just tried to call you. Reply here or call us back.".to_owned();
    let to = "+14155550100".to_owned();
    let purpose = Purpose::Marketing;
    let by = None;
    assert_eq!(
        d.effects,
        vec![OppEffect::SendSms {
            to,
            body,
            purpose,
            by
        }]
    );
    assert_eq!(d.timeline.last().unwrap().kind, TimelineKind::EffectSent);
}

#[test]
fn create_without_consent_only_arms_the_sla() {
    let d = apply(None, create_input(false, false), t(0), &pb(), &rules()).unwrap();
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
    let d = apply(None, input, t(0), &pb(), &rules()).unwrap();
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
    let err = apply(None, fire(OppTimer::RetryCall), t(0), &pb(), &rules()).unwrap_err();
    assert_eq!(err, Rejection::NotFound);
}

#[test]
fn create_rejections_name_the_field() {
    let reject = |edit: fn(&mut OppInput)| {
        let mut input = create_input(true, true);
        edit(&mut input);
        apply(None, input, t(0), &pb(), &rules())
            .unwrap_err()
            .to_string()
    };
    let bad_phone = reject(|i| {
        if let OppInput::Create { contact, .. } = i {
            contact.phone = Some("4155550100".into());
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
        "+442071838750",
        "+551155256325",
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
        // The right shape, but no such number: no area code 234-5678, no area code 000.
        "+12345678",
        "+10005550100",
        "+14150000000",
    ] {
        let err = validate_e164(bad).unwrap_err();
        assert!(
            matches!(err, Rejection::InvalidField { field: "phone", .. }),
            "{bad}"
        );
    }
}

#[test]
fn phone_numbers_are_normalised_to_e164() {
    for (raw, e164) in [
        ("+1 (415) 555-0100", "+14155550100"),
        (" +14155550100 ", "+14155550100"),
        ("+44 20 7183 8750", "+442071838750"),
    ] {
        assert_eq!(normalize_phone(raw).as_deref(), Ok(e164), "{raw}");
    }
    for bad in [
        "(415) 555-0100",
        "+1 000 555 0100",
        "+1\u{0}4155550100",
        "+abc",
    ] {
        assert!(normalize_phone(bad).is_err(), "{bad}");
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
        // Only once the contact has opted back in; `apply` checks.
        (DoNotContact, &[Contacting]),
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
            attempt: 2,
            agent: None,
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
        opp = apply(Some(&opp), input, t(at), &demo, &rules())
            .unwrap()
            .state;
        if opp.stage == Stage::Contacting {
            opp = apply(
                Some(&opp),
                fire(OppTimer::RetryCall),
                t(at + 1),
                &demo,
                &rules(),
            )
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
    let d = apply(Some(&before), input, t(30), &demo, &rules()).unwrap();
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
        // A parked lead may still get a text the gate deferred.
        let cleared = d.timers.contains(&TimerOp::Clear { name });
        assert_eq!(cleared, name != OppTimer::SendSms, "{name}");
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
        hang_up: false,
    };
    let paused = run(&opp, pause(), 5);
    assert!(paused.state.paused);
    assert_eq!(paused.timeline[0].reason, "paused by ana: lead asked");
    assert_eq!(paused.timeline[0].cause, Cause::Operator(op("ana")));
    let err = apply(Some(&paused.state), pause(), t(6), &pb(), &rules()).unwrap_err();
    assert_eq!(err.to_string(), "opportunity is already paused");
    let err = apply(
        Some(&opp),
        OppInput::Resume { by: op("ana") },
        t(6),
        &pb(),
        &rules(),
    )
    .unwrap_err();
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
            hang_up: false,
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
            hang_up: false,
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
    let err = apply(Some(&opp), reassign(""), t(5), &pb(), &rules()).unwrap_err();
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
            hang_up: false,
        },
        5,
    )
    .state;
    let err = apply(Some(&paused), escalate(), t(6), &pb(), &rules()).unwrap_err();
    assert!(matches!(err, Rejection::Paused { .. }));
    let won = Opportunity {
        stage: Stage::Won,
        ..opp
    };
    let err = apply(Some(&won), escalate(), t(6), &pb(), &rules()).unwrap_err();
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
    let err = apply(
        Some(&won),
        set_stage(Stage::Contacting),
        t(5),
        &pb(),
        &rules(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "illegal stage transition from won to contacting"
    );
    let opp = created(true, true);
    let err = apply(Some(&opp), set_stage(Stage::Booked), t(5), &pb(), &rules()).unwrap_err();
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
fn closing_clears_timers_and_hangs_up_the_active_call() {
    let opp = created(true, true);
    let d = run(&opp, set_stage(Stage::Lost), 5);
    assert_eq!(d.state.stage, Stage::Lost);
    assert_eq!(d.state.active_call, opp.active_call);
    for &name in OppTimer::ALL {
        assert!(d.timers.contains(&TimerOp::Clear { name }), "{name}");
    }
    // The stage change, then the hang-up of the ringing call (its end is reported as usual).
    assert_eq!(
        kinds(&d),
        vec![TimelineKind::StageChanged, TimelineKind::HangUp]
    );
    assert_eq!(d.timeline[0].cause, Cause::Operator(op("ana")));
    assert!(matches!(
        d.effects.as_slice(),
        [OppEffect::HangUpCall { call_id, .. }] if Some(*call_id) == opp.active_call
    ));
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

#[path = "opportunity_compliance_tests.rs"]
mod compliance;

#[path = "opportunity_props_tests.rs"]
mod props;

#[test]
fn a_team_bound_opportunity_escalates_to_its_teams_queue() {
    let mut input = create_input(true, true);
    if let OppInput::Create { team, .. } = &mut input {
        *team = Some("west".into());
    }
    let opp = apply(None, input, t(0), &pb(), &rules()).unwrap().state;
    assert_eq!(opp.team.as_deref(), Some("west"));
    let d = run(&opp, fire(OppTimer::FirstTouchSla), 400);
    assert_eq!(d.state.assignee, "escalations:west");
    assert!(matches!(
        &d.effects[0],
        OppEffect::NotifyEscalation { queue, .. } if queue == "escalations:west"
    ));
}

#[test]
fn cancelling_a_timer_clears_it_and_says_who_and_why() {
    let opp = created(true, true);
    let cancel = || OppInput::CancelTimer {
        timer: OppTimer::FirstTouchSla,
        by: op("ana"),
        reason: Some("handled by phone".into()),
    };
    let d = run(&opp, cancel(), 5);
    assert!(d.timers.contains(&TimerOp::Clear {
        name: OppTimer::FirstTouchSla
    }));
    assert_eq!(kinds(&d), vec![TimelineKind::TimerCancelled]);
    assert_eq!(d.timeline[0].cause, Cause::Operator(op("ana")));
    assert_eq!(
        d.timeline[0].reason,
        "first_touch_sla timer cancelled by ana: handled by phone"
    );
    let won = Opportunity {
        stage: Stage::Won,
        ..opp
    };
    let err = apply(Some(&won), cancel(), t(6), &pb(), &rules()).unwrap_err();
    assert!(matches!(err, Rejection::Terminal { .. }));
}

#[test]
fn a_held_timer_that_is_cancelled_does_not_fire_on_resume() {
    let opp = created(true, true);
    let pause = OppInput::Pause {
        by: op("ana"),
        reason: None,
        hang_up: false,
    };
    let paused = run(&opp, pause, 1).state;
    let held = run(&paused, fire(OppTimer::FirstTouchSla), 400).state;
    assert_eq!(held.held_timers, vec![OppTimer::FirstTouchSla]);
    let cancel = OppInput::CancelTimer {
        timer: OppTimer::FirstTouchSla,
        by: op("ana"),
        reason: None,
    };
    let cancelled = run(&held, cancel, 401).state;
    let resumed = run(&cancelled, OppInput::Resume { by: op("ana") }, 402);
    assert_eq!(kinds(&resumed), vec![TimelineKind::Resumed]);
    assert!(!resumed.state.escalated);
}
