//! One person, one cadence (ADR 0046). A lead whose number already belongs to a live
//! opportunity of the tenant starts no second cadence: the use case either merges it into the
//! live one (`ContactReturned`) or creates it as a skipped duplicate (`ContactHistory::
//! duplicate_of`), by the tenant's setting. And a new opportunity for a number called before
//! starts with the earlier opportunity's recent calls and texts, so the frequency caps count
//! every attempt to that number, not only this opportunity's.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::{OppEffect, Step};
use crate::domain::compliance::CAP_WINDOW_HOURS;
use crate::domain::timeline::{Cause, TimelineKind};

/// At most this many returning leads are remembered by external id (a repeated merge of one of
/// them adds nothing); later ones still get their timeline entry.
pub const MAX_RETURNS: usize = 50;

/// What the tenant already knows of the contact when a new opportunity is created for it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactHistory {
    /// Skip mode: the contact's live opportunity. This one is recorded (for attribution) and
    /// runs no cadence: nothing is dialled, texted or armed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<Uuid>,
    /// When the contact's earlier opportunity called this number.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calls: Vec<DateTime<Utc>>,
    /// When it texted this number (marketing texts).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub texts: Vec<DateTime<Utc>>,
}

/// The instants still inside the gate's cap window at `now`, oldest first.
pub(super) fn within_cap_window(
    instants: &[DateTime<Utc>],
    now: DateTime<Utc>,
) -> Vec<DateTime<Utc>> {
    let cutoff = now.checked_sub_signed(TimeDelta::hours(i64::from(CAP_WINDOW_HOURS)));
    let mut kept: Vec<_> = instants
        .iter()
        .copied()
        .filter(|&at| cutoff.is_none_or(|c| at > c) && at <= now)
        .collect();
    kept.sort();
    kept
}

impl Step<'_> {
    /// The contact of this live opportunity came back as another lead (`external_id`): merged
    /// here (`skipped_as` is `None`) or recorded as a skipped duplicate (`Some(its id)`). Noted
    /// once per lead; the cadence goes on as it was.
    pub(super) fn contact_returned(&mut self, external_id: String, skipped_as: Option<Uuid>) {
        if external_id == self.opp.external_id || self.opp.returned.contains(&external_id) {
            return;
        }
        if self.opp.returned.len() < MAX_RETURNS {
            self.opp.returned.push(external_id.clone());
        }
        let text = match skipped_as {
            None => format!(
                "the contact came back as lead {external_id}; merged here, no second cadence"
            ),
            Some(id) => format!(
                "the contact came back as lead {external_id} (opportunity {id}); skipped, no second cadence"
            ),
        };
        let mode = if skipped_as.is_some() {
            "skip"
        } else {
            "merge"
        };
        let data =
            json!({ "external_id": external_id, "mode": mode, "opportunity_id": skipped_as });
        self.event(TimelineKind::ContactReturned, Cause::Contact, text, data);
    }

    /// Skip mode, at creation: records why this opportunity runs no cadence and tells the live
    /// one (an input written in this transition's commit, so neither note can be lost alone).
    pub(super) fn skip_as_duplicate(&mut self, live: Uuid) {
        let text =
            format!("the contact already has live opportunity {live}; skipped, no second cadence");
        let data = json!({ "duplicate_of": live, "mode": "skip" });
        self.event(TimelineKind::ContactReturned, Cause::System, text, data);
        self.effects.push(OppEffect::NoteReturn {
            opportunity_id: live,
            external_id: self.opp.external_id.clone(),
        });
    }
}
