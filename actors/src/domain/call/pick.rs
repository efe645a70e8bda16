//! Agent first by the playbook (`call_flow.connect = "agent_first"`): a cadence call first
//! asks the dispatcher for one free rep of the team (`PickRep`, which records the offer in the
//! reps' tables), then rings that rep with the agent-first flow, as click to call does. With
//! nobody free it dials the lead first, so the lead is never left waiting on a rep.

use serde_json::json;

use super::progress::Step;
use super::{Agent, CallEffect};
use crate::domain::playbook::{ConnectMode, Playbook};
use crate::domain::timeline::{Cause, TimelineEvent, TimelineKind};

/// Whether a call placed with `agent` (click to call names one) picks a rep first.
pub(super) fn first(agent: &Option<Agent>, pb: &Playbook) -> bool {
    agent.is_none() && pb.call_flow.connect == ConnectMode::AgentFirst
}

/// The dial: the rep's phone agent first (no machine detection: a rep answers), else the lead's
/// with it.
pub(super) fn dial(to: String, agent: Option<Agent>, pb: &Playbook) -> CallEffect {
    CallEffect::Dial {
        to,
        machine_detection: agent.is_none(),
        ring_timeout_seconds: u32::try_from(pb.ring_timeout_seconds).unwrap_or(u32::MAX),
        agent,
    }
}

impl Step<'_> {
    /// The dispatcher picked a rep (or found none free): dial once. A repeated answer, or one
    /// arriving after the call was closed (its watchdog) or asked to hang up, dials nothing.
    pub(super) fn rep_picked(&mut self, agent: Option<Agent>) {
        if !self.call.picking || self.call.status.is_terminal() {
            return;
        }
        self.call.picking = false;
        if self.call.hang_up.is_some() {
            return;
        }
        let (text, rep) = match &agent {
            Some(a) => (format!("ringing {} first", a.rep), Some(a.rep.clone())),
            None => (
                "no rep free to ring first: dialing the lead".to_owned(),
                None,
            ),
        };
        self.timeline.push(TimelineEvent::new(
            TimelineKind::Conversation,
            Cause::System,
            text,
            json!({ "event": "rep_picked", "rep": rep }),
        ));
        self.call.agent = agent.clone();
        self.effects
            .push(dial(self.call.to.clone(), agent, self.pb));
    }
}
