//! Turning the pure domain's outputs into the runtime's changes.

use neuronx_supervision::{Rejected, TimelineRecord, TimerChange};
use serde::Serialize;
use serde_json::Value;

use crate::domain::timeline::{TimelineEvent, TimerOp};

pub(crate) fn timeline(events: Vec<TimelineEvent>) -> Vec<TimelineRecord> {
    events
        .into_iter()
        .map(|e| TimelineRecord {
            kind: e.kind.as_str().to_owned(),
            cause: e.cause.to_string(),
            reason: e.reason,
            data: e.data,
        })
        .collect()
}

/// A timer delivers `fired(name)` to the same actor when it comes due.
pub(crate) fn timers<N, I>(
    ops: Vec<TimerOp<N>>,
    name_of: impl Fn(N) -> &'static str,
    fired: impl Fn(N) -> I,
) -> Vec<TimerChange>
where
    N: Copy,
    I: Serialize,
{
    ops.into_iter()
        .map(|op| match op {
            TimerOp::Set { name, at } => TimerChange::Set {
                name: name_of(name).to_owned(),
                due_at: at,
                input: to_json(&fired(name)),
            },
            TimerOp::Clear { name } => TimerChange::Clear {
                name: name_of(name).to_owned(),
            },
        })
        .collect()
}

/// Domain types are plain data; serializing them cannot fail.
pub(crate) fn to_json<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

pub(crate) fn rejected(code: &str, message: impl ToString) -> Rejected {
    Rejected {
        code: code.to_owned(),
        message: message.to_string(),
    }
}
