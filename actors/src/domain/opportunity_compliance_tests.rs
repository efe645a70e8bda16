//! The compliance gate in the cadence, STOP/START/HELP, dispatch-time
//! blocks and delivery statuses.

use chrono::{TimeZone, Utc};
use serde_json::json;

use super::*;
use crate::domain::compliance::{BlockReason, Channel, Purpose, Rules};

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

fn create_for(phone: &str, zone: Option<&str>, voice: bool, sms: bool) -> OppInput {
    let mut input = create_input(voice, sms);
    if let OppInput::Create { contact, .. } = &mut input {
        contact.phone = Some(phone.to_owned());
        contact.timezone = zone.map(str::to_owned);
    }
    input
}

fn at(state: &Opportunity, input: OppInput, now: DateTime<Utc>, rules: &Rules) -> OppDecision {
    apply(Some(state), input, now, &pb(), rules).unwrap()
}

fn reply(body: &str) -> OppInput {
    OppInput::Replied { body: body.into() }
}

fn blocked_events(d: &OppDecision) -> Vec<&TimelineEvent> {
    d.timeline
        .iter()
        .filter(|e| e.kind == TimelineKind::ComplianceBlocked)
        .collect()
}

fn sms(body: &str, purpose: Purpose) -> OppEffect {
    OppEffect::SendSms {
        to: "+14155550100".into(),
        body: body.into(),
        purpose,
        by: None,
    }
}

const CONFIRMATION: &str =
    "You are unsubscribed and will receive no more messages. Reply START to resubscribe.";
const HELP: &str = "Reply STOP to unsubscribe. Msg&data rates may apply.";

#[test]
fn a_call_outside_hours_is_deferred_to_the_dst_correct_window_start() {
    // Saturday 22:00 EST; clocks spring forward at 02:00, so Sunday 08:00
    // local is 12:00 UTC, not 13:00.
    let night = utc(2025, 3, 9, 3, 0);
    let input = create_for("+12125550100", Some("America/New_York"), true, true);
    let d = apply(None, input, night, &pb(), &rules()).unwrap();
    let opens = utc(2025, 3, 9, 12, 0);
    assert!(d.effects.is_empty(), "{:?}", d.effects);
    assert_eq!((d.state.attempts, d.state.active_call), (0, None));
    assert!(d.state.call_attempts.is_empty());
    assert!(d.timers.contains(&TimerOp::Set {
        name: OppTimer::RetryCall,
        at: opens
    }));
    let blocked = blocked_events(&d);
    assert_eq!(blocked.len(), 1);
    assert_eq!(blocked[0].cause, Cause::System);
    assert_eq!(
        blocked[0].data,
        json!({"channel": "voice", "decision": "defer", "until": "2025-03-09T12:00:00Z",
            "rules_version": "federal-only"})
    );
    assert!(
        blocked[0]
            .reason
            .starts_with("outside calling hours in America/New_York"),
        "{}",
        blocked[0].reason
    );
    // The first-touch SLA still runs: a lead we may not call yet escalates.
    let sla = at(&d.state, fire(OppTimer::FirstTouchSla), night, &rules());
    assert!(matches!(
        &sla.effects[..],
        [OppEffect::NotifyEscalation { .. }]
    ));
    let call = at(&d.state, fire(OppTimer::RetryCall), opens, &rules());
    assert!(matches!(
        &call.effects[..],
        [OppEffect::StartCall { attempt: 1, .. }]
    ));
    assert_eq!(call.state.call_attempts, vec![opens]);
}

#[test]
fn the_fall_back_night_defers_to_standard_time() {
    // Saturday 22:00 EDT; Sunday 08:00 EST is 13:00 UTC.
    let night = utc(2025, 11, 2, 2, 0);
    let input = create_for("+12125550100", Some("America/New_York"), true, true);
    let d = apply(None, input, night, &pb(), &rules()).unwrap();
    assert!(d.timers.contains(&TimerOp::Set {
        name: OppTimer::RetryCall,
        at: utc(2025, 11, 2, 13, 0)
    }));
}

#[test]
fn florida_defers_the_fourth_call_in_24_hours() {
    let rules = shipped_rules();
    let start = utc(2025, 1, 8, 15, 0); // 10:00 in Miami
    let input = create_for("+13055550100", Some("America/New_York"), true, false);
    let mut opp = apply(None, input, start, &pb(), &rules).unwrap().state;
    let mut now = start;
    for attempt in 2..=3 {
        now += TimeDelta::seconds(40);
        opp = at(&opp, finish(&opp, CallResult::NoAnswer), now, &rules).state;
        now += TimeDelta::seconds(600);
        let d = at(&opp, fire(OppTimer::RetryCall), now, &rules);
        assert_eq!(d.state.attempts, attempt);
        opp = d.state;
    }
    now += TimeDelta::seconds(40);
    opp = at(&opp, finish(&opp, CallResult::NoAnswer), now, &rules).state;
    now += TimeDelta::seconds(600);
    let fourth = at(&opp, fire(OppTimer::RetryCall), now, &rules);
    assert!(fourth.effects.is_empty());
    assert_eq!(fourth.state.attempts, 3);
    let opens = start + TimeDelta::hours(24);
    assert_eq!(
        fourth.timers,
        vec![TimerOp::Set {
            name: OppTimer::RetryCall,
            at: opens
        }]
    );
    let reason = &blocked_events(&fourth)[0].reason;
    assert!(
        reason.starts_with("frequency cap reached: 3 voice attempts"),
        "{reason}"
    );
    assert!(reason.contains("FL"), "{reason}");
    let d = at(&fourth.state, fire(OppTimer::RetryCall), opens, &rules);
    assert!(matches!(
        &d.effects[..],
        [OppEffect::StartCall { attempt: 4, .. }]
    ));
    // Attempts older than the cap window are pruned as new ones are added.
    assert_eq!(d.state.call_attempts.len(), 3);
    assert!(d.state.call_attempts.iter().all(|&a| a > start));
}

#[test]
fn a_denied_call_stops_the_cadence_without_counting_an_attempt() {
    // A UK number with no time zone: the gate cannot place the lead.
    let input = create_for("+442071234567", None, true, true);
    let d = apply(None, input, t(0), &pb(), &rules()).unwrap();
    assert!(d.effects.is_empty());
    assert_eq!(d.state.attempts, 0);
    assert_eq!(
        d.timers,
        vec![TimerOp::Set {
            name: OppTimer::FirstTouchSla,
            at: t(300)
        }]
    );
    let blocked = blocked_events(&d);
    assert_eq!(blocked[0].data["decision"], "deny");
    assert_eq!(blocked[0].data["channel"], "voice");
    let sla = run(&d.state, fire(OppTimer::FirstTouchSla), 300);
    assert!(matches!(
        &sla.effects[..],
        [OppEffect::NotifyEscalation { .. }]
    ));
}

#[test]
fn a_deferred_text_is_kept_and_sent_when_its_timer_fires_inside_hours() {
    let night = utc(2025, 1, 9, 6, 0); // 22:00 in Los Angeles
    let input = create_for("+14155550100", Some("America/Los_Angeles"), false, true);
    let d = apply(None, input, night, &pb(), &rules()).unwrap();
    assert!(d.effects.is_empty());
    let body = "Hi Ana, we just tried to call you. Reply here or call us back.";
    let pending = PendingSms {
        body: body.into(),
        purpose: Purpose::Marketing,
    };
    assert_eq!(d.state.pending_sms, Some(pending.clone()));
    let opens = utc(2025, 1, 9, 16, 0); // 08:00 PST
    assert!(d.timers.contains(&TimerOp::Set {
        name: OppTimer::SendSms,
        at: opens
    }));
    assert_eq!(blocked_events(&d)[0].data["channel"], "sms");
    // A timer delivered early is re-checked and re-armed, not sent.
    let early = at(
        &d.state,
        fire(OppTimer::SendSms),
        opens - TimeDelta::hours(1),
        &rules(),
    );
    assert!(early.effects.is_empty());
    assert_eq!(early.state.pending_sms, Some(pending));
    let sent = at(&early.state, fire(OppTimer::SendSms), opens, &rules());
    assert_eq!(sent.effects, vec![sms(body, Purpose::Marketing)]);
    assert_eq!(sent.state.pending_sms, None);
    assert_eq!(sent.state.sms_sent, vec![opens]);
    // Fired again (a duplicate), it sends nothing.
    let dup = at(&sent.state, fire(OppTimer::SendSms), opens, &rules());
    assert!(dup.effects.is_empty() && dup.timeline.is_empty());
}

#[test]
fn a_machine_answer_texts_and_retries_like_no_answer() {
    let opp = created(true, true);
    let d = run(&opp, finish(&opp, CallResult::Machine), 40);
    assert_eq!(d.state.stage, Stage::Contacting);
    assert!(
        matches!(&d.effects[..], [OppEffect::SendSms { body, purpose: Purpose::Marketing, .. }]
            if body.starts_with("Hi Ana,"))
    );
    assert_eq!(
        d.timers,
        vec![TimerOp::Set {
            name: OppTimer::RetryCall,
            at: t(640)
        }]
    );
}

#[test]
fn stop_opts_out_closes_and_confirms_exactly_once() {
    let opp = created(true, true);
    let missed = run(&opp, finish(&opp, CallResult::NoAnswer), 40).state;
    let d = run(&missed, reply(" Stop. "), 50);
    assert!(d.state.opted_out && d.state.opt_out_confirmed);
    assert_eq!(d.state.stage, Stage::DoNotContact);
    use TimelineKind::*;
    assert_eq!(kinds(&d), vec![Replied, OptedOut, StageChanged, EffectSent]);
    assert_eq!(d.timeline[1].cause, Cause::Contact);
    assert_eq!(d.timeline[0].data["keyword"], "opt_out");
    assert_eq!(
        d.effects,
        vec![sms(CONFIRMATION, Purpose::OptOutConfirmation)]
    );
    for &name in OppTimer::ALL {
        assert!(d.timers.contains(&TimerOp::Clear { name }), "{name}");
    }
    let again = run(&d.state, reply("STOP"), 60);
    assert!(again.effects.is_empty());
    assert_eq!(kinds(&again)[..2], [Replied, OptedOut]);
    // Nothing marketing fires afterwards.
    for &timer in OppTimer::ALL {
        assert!(run(&again.state, fire(timer), 700).effects.is_empty());
    }
}

#[test]
fn stop_while_paused_or_closed_still_confirms() {
    let opp = created(true, true);
    let pause = OppInput::Pause {
        by: op("ana"),
        reason: None,
        hang_up: false,
    };
    let paused = run(&opp, pause, 5).state;
    let d = run(&paused, reply("unsubscribe"), 10);
    // The ringing first call is hung up too.
    let texts: Vec<_> = d
        .effects
        .iter()
        .filter(|e| !matches!(e, OppEffect::HangUpCall { .. }))
        .cloned()
        .collect();
    assert_eq!(texts, vec![sms(CONFIRMATION, Purpose::OptOutConfirmation)]);
    let won = Opportunity {
        stage: Stage::Won,
        ..opp
    };
    let d = run(&won, reply("STOP"), 10);
    assert_eq!(d.state.stage, Stage::Won);
    assert!(d.state.opted_out);
    let texts = d
        .effects
        .iter()
        .filter(|e| matches!(e, OppEffect::SendSms { .. }));
    assert_eq!(texts.count(), 1);
}

#[test]
fn start_opts_back_in_and_only_then_may_an_operator_reopen() {
    let opp = created(true, true);
    let missed = run(&opp, finish(&opp, CallResult::Busy), 5).state;
    let stopped = run(&missed, reply("STOP"), 10).state;
    let err = apply(
        Some(&stopped),
        set_stage(Stage::Contacting),
        t(20),
        &pb(),
        &rules(),
    )
    .unwrap_err();
    assert!(matches!(err, Rejection::OptedOut { .. }));
    assert_eq!(
        err.to_string(),
        "the contact has opted out; they must text start to opt back in before \
         the opportunity can be reopened"
    );
    let started = run(&stopped, reply("START"), 30);
    assert!(!started.state.opted_out);
    assert_eq!(started.state.stage, Stage::DoNotContact);
    assert_eq!(
        kinds(&started),
        vec![TimelineKind::Replied, TimelineKind::OptedIn]
    );
    assert!(started.effects.is_empty() && started.timers.is_empty());
    let reopened = run(&started.state, set_stage(Stage::Contacting), 40);
    assert_eq!(reopened.state.stage, Stage::Contacting);
    assert!(reopened.timers.contains(&TimerOp::Set {
        name: OppTimer::RetryCall,
        at: t(40)
    }));
    // A second STOP sends no second confirmation.
    let restopped = run(&reopened.state, reply("STOP"), 50);
    assert!(restopped.effects.is_empty());
    assert_eq!(restopped.state.stage, Stage::DoNotContact);
}

#[test]
fn yes_from_a_subscribed_lead_is_a_conversation() {
    let opp = created(false, true);
    let d = run(&opp, reply("YES"), 30);
    assert_eq!(d.state.stage, Stage::Engaged);
    assert!(d.state.reached && !d.state.opted_out);
}

#[test]
fn help_gets_the_help_text_unless_opted_out() {
    let opp = created(true, true);
    let d = run(&opp, reply("help"), 30);
    assert_eq!(d.effects, vec![sms(HELP, Purpose::HelpReply)]);
    use TimelineKind::*;
    assert_eq!(kinds(&d), vec![Replied, HelpRequested, EffectSent]);
    assert_eq!(d.state.stage, Stage::Contacting);
    let stopped = run(&opp, reply("STOP"), 30).state;
    let d = run(&stopped, reply("INFO"), 40);
    assert!(d.effects.is_empty());
    assert_eq!(kinds(&d), vec![Replied, HelpRequested, ComplianceBlocked]);
    assert_eq!(d.timeline[2].data["decision"], "deny");
}

#[test]
fn a_reply_mentioning_stop_is_escalated_for_review() {
    let opp = created(true, true);
    let d = run(&opp, reply("please stop texting me"), 30);
    assert!(!d.state.opted_out);
    assert_eq!(d.state.stage, Stage::Engaged);
    assert!(matches!(
        &d.effects[..],
        [OppEffect::NotifyEscalation { reason, .. }] if reason.contains("stop contact")
    ));
    assert_eq!(d.timeline.last().unwrap().cause, Cause::Contact);
}

#[test]
fn a_dispatch_time_dnc_block_stops_that_channel() {
    let opp = created(true, true);
    let blocked = OppInput::EffectBlocked {
        channel: Channel::Voice,
        reason: "the number is on the do-not-call list".into(),
    };
    let d = run(&opp, blocked, 2);
    assert_eq!(d.state.active_call, None);
    assert_eq!(d.state.dnc_channels, vec![Channel::Voice]);
    assert_eq!(d.state.attempts, 1);
    assert_eq!(
        d.timers,
        vec![TimerOp::Clear {
            name: OppTimer::RetryCall
        }]
    );
    let e = &d.timeline[0];
    assert_eq!(e.kind, TimelineKind::ComplianceBlocked);
    assert_eq!(e.reason, "the number is on the do-not-call list");
    assert_eq!(e.data["decision"], "deny");
    // The blocked call's late report is ignored: no follow-up, no retry.
    let late = OppInput::CallFinished {
        call_id: opp.active_call.unwrap(),
        result: CallResult::Failed,
    };
    let d2 = run(&d.state, late, 40);
    assert!(d2.effects.is_empty() && d2.timers.is_empty());
    // Should a retry fire anyway, the gate now denies it.
    let retry = run(&d.state, fire(OppTimer::RetryCall), 700);
    assert!(retry.effects.is_empty());
    let reason = &blocked_events(&retry)[0].reason;
    assert_eq!(reason, &BlockReason::DoNotCall.describe());
}

#[test]
fn a_dispatch_time_sms_block_drops_the_deferred_text() {
    let night = utc(2025, 1, 9, 6, 0);
    let input = create_for("+14155550100", Some("America/Los_Angeles"), false, true);
    let opp = apply(None, input, night, &pb(), &rules()).unwrap().state;
    assert!(opp.pending_sms.is_some());
    let blocked = OppInput::EffectBlocked {
        channel: Channel::Sms,
        reason: "on the do-not-call list".into(),
    };
    let d = at(&opp, blocked, night, &rules());
    assert_eq!(d.state.pending_sms, None);
    assert!(d.timers.contains(&TimerOp::Clear {
        name: OppTimer::SendSms
    }));
}

#[test]
fn delivery_statuses_are_recorded_once_the_text_left() {
    let opp = created(false, true);
    let status = |s: &str, error_code| OppInput::MessageStatus {
        message_sid: "SM1".into(),
        status: s.into(),
        error_code,
    };
    for s in ["sent", "delivered", "failed", "undelivered"] {
        let d = run(&opp, status(s, None), 10);
        assert_eq!(kinds(&d), vec![TimelineKind::MessageStatus], "{s}");
        assert_eq!(d.timeline[0].cause, Cause::Channel);
        assert_eq!(
            d.timeline[0].data,
            json!({"message_sid": "SM1", "status": s})
        );
        assert!(d.effects.is_empty() && d.timers.is_empty());
    }
    // The carrier's error code travels with a failure.
    let d = run(&opp, status("undelivered", Some(30003)), 10);
    assert_eq!(d.timeline[0].data["error_code"], 30003);
    assert!(d.timeline[0].reason.contains("error 30003"));
    for s in ["queued", "sending", "read"] {
        let d = run(&opp, status(s, None), 10);
        assert_eq!(d.state, opp, "{s}");
        assert!(d.timeline.is_empty());
    }
}

#[test]
fn checkpoints_from_before_the_gate_still_load() {
    let opp = created(true, true);
    let mut old = serde_json::to_value(&opp).unwrap();
    let fields = old.as_object_mut().unwrap();
    for key in [
        "call_attempts",
        "sms_sent",
        "opted_out",
        "opt_out_confirmed",
        "pending_sms",
        "dnc_channels",
    ] {
        assert!(fields.remove(key).is_some(), "{key}");
    }
    let back: Opportunity = serde_json::from_value(old).unwrap();
    assert!(back.call_attempts.is_empty() && !back.opted_out && back.pending_sms.is_none());
    assert_eq!(back.attempts, opp.attempts);
    let input: OppInput = serde_json::from_value(
        json!({"type": "effect_blocked", "channel": "sms", "reason": "dnc"}),
    )
    .unwrap();
    assert_eq!(
        input,
        OppInput::EffectBlocked {
            channel: Channel::Sms,
            reason: "dnc".into()
        }
    );
}

#[test]
fn a_call_blocked_at_dispatch_closes_voice_without_a_follow_up() {
    let opp = created(true, true);
    let blocked = OppInput::CallFinished {
        call_id: opp.active_call.unwrap(),
        result: CallResult::Blocked,
    };
    let d = run(&opp, blocked, 2);
    assert_eq!(d.state.active_call, None);
    assert_eq!(d.state.dnc_channels, vec![Channel::Voice]);
    // Not a missed call: no text, no retry armed.
    assert!(d.effects.is_empty(), "{:?}", d.effects);
    assert!(!d.timers.iter().any(|t| matches!(
        t,
        TimerOp::Set {
            name: OppTimer::RetryCall,
            ..
        }
    )));
    let blocked_events = blocked_events(&d);
    assert_eq!(blocked_events.len(), 1);
    assert!(blocked_events[0].reason.contains("do-not-call"));
}
