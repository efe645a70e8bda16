//! One transition's working state (`Step`), its shared helpers, and the
//! creation of an opportunity.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{
    validate_e164, OppDecision, OppEffect, OppInput, OppReply, OppTimer, Opportunity, Rejection,
    Stage,
};
use crate::domain::compliance::Rules;
use crate::domain::playbook::{EmailStep, Playbook};
use crate::domain::timeline::{deadline, Cause, TimelineEvent, TimelineKind, TimerOp};

pub(super) fn invalid(field: &'static str, reason: impl Into<String>) -> Rejection {
    Rejection::InvalidField {
        field,
        reason: reason.into(),
    }
}

pub(super) fn create(
    input: OppInput,
    now: DateTime<Utc>,
    pb: &Playbook,
    rules: &Rules,
) -> Result<OppDecision, Rejection> {
    let OppInput::Create {
        id,
        external_id,
        contact,
        playbook,
        sla,
        assignee,
        team,
        history,
    } = input
    else {
        return Err(Rejection::NotFound);
    };
    if external_id.trim().is_empty() {
        return Err(invalid("external_id", "must not be empty"));
    }
    match (&contact.phone, &contact.email) {
        (None, None) => return Err(invalid("contact.phone", "a lead needs a phone or an email")),
        (phone, email) => {
            if let Some(phone) = phone {
                validate_e164(phone)?;
            }
            if let Some(email) = email {
                super::email::validate_address(email)?;
            }
        }
    }
    if playbook != pb.name {
        let supplied = pb.name.clone();
        return Err(Rejection::PlaybookMismatch {
            requested: playbook,
            supplied,
        });
    }
    if assignee.as_ref().is_some_and(|a| a.trim().is_empty()) {
        return Err(invalid("assignee", "must not be empty"));
    }
    let first_touch_seconds = match sla.and_then(|s| s.first_touch_seconds) {
        Some(0) => return Err(invalid("sla.first_touch_seconds", "must be at least 1")),
        Some(seconds) => seconds,
        None => pb.first_touch_sla_seconds,
    };
    let opp = Opportunity {
        id,
        external_id,
        contact,
        stage: Stage::New,
        assignee: assignee.unwrap_or_else(|| "unassigned".to_owned()),
        paused: false,
        attempts: 0,
        playbook,
        first_touch_seconds,
        reached: false,
        active_call: None,
        live_call: None,
        held_timers: Vec::new(),
        escalated: false,
        team,
        created_at: now,
        updated_at: now,
        // The contact's earlier opportunity's recent attempts count toward this one's caps.
        call_attempts: super::returning::within_cap_window(&history.calls, now),
        sms_sent: super::returning::within_cap_window(&history.texts, now),
        opted_out: false,
        opt_out_confirmed: false,
        pending_sms: None,
        dnc_channels: Vec::new(),
        line_type: None,
        returned: Vec::new(),
        duplicate_of: history.duplicate_of,
        reply_noticed_at: None,
        takeover: None,
        email: super::EmailChannel::default(),
    };
    let mut step = Step::new(opp, now, pb, rules);
    let o = &step.opp;
    let text = format!("created for {} with playbook {}", o.external_id, o.playbook);
    let data = json!({ "external_id": o.external_id, "playbook": o.playbook,
        "assignee": o.assignee, "first_touch_seconds": first_touch_seconds });
    step.event(TimelineKind::Created, Cause::System, text, data);
    if let Some(live) = history.duplicate_of {
        // Skip mode: recorded, and nothing dialled, texted or armed.
        step.skip_as_duplicate(live);
        return Ok(step.finish(None, OppReply::Created));
    }
    let text = format!("playbook {} started the first touch", pb.name);
    step.move_stage(Stage::Contacting, Cause::Playbook, text);
    let consent = step.opp.contact.consent;
    // The first touch may be deferred or denied by the gate; the first-touch
    // SLA runs regardless, so a lead we may not contact yet still escalates.
    if consent.voice && step.opp.attempts < pb.max_attempts {
        step.try_call();
    } else if let (true, Some(body)) = (consent.sms, pb.missed_call_sms(&step.opp.contact.name)) {
        step.try_sms(body, "first touch without voice consent");
    }
    // The first-touch email goes with the call or text, not instead of it.
    step.try_email(EmailStep::FirstTouch, "first touch");
    step.set(OppTimer::FirstTouchSla, first_touch_seconds);
    Ok(step.finish(None, OppReply::Created))
}

/// Accumulates one transition's outputs.
pub(super) struct Step<'a> {
    pub(super) opp: Opportunity,
    pub(super) now: DateTime<Utc>,
    pub(super) pb: &'a Playbook,
    pub(super) rules: &'a Rules,
    pub(super) effects: Vec<OppEffect>,
    pub(super) timers: Vec<TimerOp<OppTimer>>,
    pub(super) timeline: Vec<TimelineEvent>,
}

impl<'a> Step<'a> {
    pub(super) fn new(
        opp: Opportunity,
        now: DateTime<Utc>,
        pb: &'a Playbook,
        rules: &'a Rules,
    ) -> Self {
        let (effects, timers, timeline) = (Vec::new(), Vec::new(), Vec::new());
        Self {
            opp,
            now,
            pb,
            rules,
            effects,
            timers,
            timeline,
        }
    }

    /// `before` is `None` for a creation.
    pub(super) fn finish(mut self, before: Option<&Opportunity>, reply: OppReply) -> OppDecision {
        // A no-op keeps `updated_at` too, so duplicates and late deliveries
        // leave no trace.
        let touched = before.is_none_or(|b| self.opp != *b)
            || !self.effects.is_empty()
            || !self.timers.is_empty()
            || !self.timeline.is_empty();
        if touched {
            self.opp.updated_at = self.now;
        }
        OppDecision {
            state: self.opp,
            effects: self.effects,
            timers: self.timers,
            timeline: self.timeline,
            reply,
        }
    }

    pub(super) fn event(
        &mut self,
        kind: TimelineKind,
        cause: Cause,
        reason: String,
        data: serde_json::Value,
    ) {
        self.timeline
            .push(TimelineEvent::new(kind, cause, reason, data));
    }

    /// Keeps at most one op per timer so the host never sees a set and a
    /// clear of the same timer in one decision and has to guess the order.
    pub(super) fn set(&mut self, name: OppTimer, seconds: u64) {
        self.set_at(name, deadline(self.now, seconds));
    }

    pub(super) fn set_at(&mut self, name: OppTimer, at: DateTime<Utc>) {
        self.timers.retain(|op| timer_name(op) != name);
        self.timers.push(TimerOp::Set { name, at });
    }

    /// Clearing `SendSms` drops the text it would have sent.
    pub(super) fn clear(&mut self, name: OppTimer) {
        self.timers.retain(|op| timer_name(op) != name);
        self.timers.push(TimerOp::Clear { name });
        self.opp.held_timers.retain(|held| *held != name);
        if name == OppTimer::SendSms {
            self.opp.pending_sms = None;
        }
    }

    pub(super) fn clear_all(&mut self) {
        for &timer in OppTimer::ALL {
            self.clear(timer);
        }
    }

    /// A deferred follow-up text ("we tried to call you, reply here") is moot
    /// once the lead is reached, so it is dropped.
    /// Whether a person may reach the lead now by hand (click to call, a hand-written text):
    /// not in a closing stage, not paused (its outbox is held), not opted out.
    pub(super) fn open_for(&self, action: &'static str) -> Result<(), Rejection> {
        let stage = self.opp.stage;
        if stage.is_terminal() {
            return Err(Rejection::Terminal { stage, action });
        }
        if self.opp.paused {
            return Err(Rejection::Paused { action });
        }
        if self.opp.opted_out {
            return Err(Rejection::OptedOut { action });
        }
        Ok(())
    }

    pub(super) fn mark_reached(&mut self) {
        self.opp.reached = true;
        self.clear(OppTimer::FirstTouchSla);
        if self.opp.pending_sms.is_some() {
            self.clear(OppTimer::SendSms);
        }
    }

    pub(super) fn move_stage(&mut self, to: Stage, cause: Cause, reason: String) {
        let from = std::mem::replace(&mut self.opp.stage, to);
        let closed_by = cause.clone();
        self.event(
            TimelineKind::StageChanged,
            cause,
            reason,
            json!({ "from": from, "to": to }),
        );
        if from == Stage::Contacting {
            // The call cadence only runs while contacting.
            self.clear(OppTimer::RetryCall);
        }
        if to.is_terminal() {
            self.clear_all();
            let reason = format!("the opportunity closed as {to}");
            self.hang_up_live_call(closed_by, reason);
        } else if to.stops_timers() {
            // A parked lead may still get the text the gate deferred.
            for &timer in OppTimer::ALL {
                if timer != OppTimer::SendSms {
                    self.clear(timer);
                }
            }
        }
        if to.implies_reached() {
            self.mark_reached();
        }
    }
}

pub(super) fn timer_name(op: &TimerOp<OppTimer>) -> OppTimer {
    match op {
        TimerOp::Set { name, .. } | TimerOp::Clear { name } => *name,
    }
}

pub(super) fn with_reason(text: String, reason: Option<&str>) -> String {
    match reason.map(str::trim) {
        Some(r) if !r.is_empty() => format!("{text}: {r}"),
        _ => text,
    }
}
