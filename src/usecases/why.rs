//! The "why" of a timeline entry: for each entry that is a decision (by the playbook, the
//! compliance gate or the system), the rule that fired in an operator's words and the inputs it
//! weighed. Facts (a reply arrived, a call status came in) and operators' own actions have none:
//! their `reason` already says who and why.

use serde_json::{json, Value};

/// `None` when the entry records a fact rather than a decision.
pub fn why(kind: &str, by: &str, data: &Value) -> Option<Value> {
    let pick = |keys: &[&str]| -> Value {
        let picked: serde_json::Map<String, Value> = keys
            .iter()
            .filter_map(|k| data.get(*k).map(|v| ((*k).to_owned(), v.clone())))
            .collect();
        Value::Object(picked)
    };
    if by.starts_with("operator:") || by == "contact" || by == "channel" {
        return None;
    }
    let (rule, inputs) = match kind {
        "sla_escalated" => match data.get("timer").and_then(Value::as_str) {
            Some("response_sla") => (
                "Response SLA: a lead who replied must get an answer in time; when the time ran \
                 out, the lead went to the escalation queue.",
                pick(&["timer", "queue", "from_assignee"]),
            ),
            _ => (
                "First-touch SLA: a new lead must be reached within the playbook's first-touch \
                 time; when it ran out unreached, the lead went to the escalation queue.",
                pick(&["timer", "queue", "from_assignee"]),
            ),
        },
        "compliance_blocked" => match data.get("source").and_then(Value::as_str) {
            Some("dispatch") => (
                "Do-not-call list: the number is on the tenant's do-not-call list, so nothing is \
                 sent on this channel.",
                pick(&["channel", "decision", "source"]),
            ),
            _ => (
                "Compliance gate: calls and marketing texts need the lead's consent, calling \
                 hours in the lead's time zone and room under the frequency caps; this one \
                 failed a check and was deferred or denied.",
                pick(&["channel", "decision", "until", "rules_version"]),
            ),
        },
        "call_placed" => (
            "Playbook cadence: call the lead at once, and again after a missed call, up to the \
             playbook's maximum attempts.",
            pick(&["attempt", "max_attempts"]),
        ),
        "effect_sent" if data.get("effect").and_then(Value::as_str) == Some("send_email") => (
            "Playbook email: the playbook's email for this step goes to a lead who consented to \
             email, has not unsubscribed and whose address has not bounced.",
            pick(&["effect", "step"]),
        ),
        "effect_sent" => (
            "Playbook follow-up: a missed call is followed by a text when the lead consented to \
             SMS.",
            pick(&["effect", "purpose"]),
        ),
        "email_skipped" => (
            "Email gate: an email needs the lead's email consent and an address, and is never \
             sent after an opt-out, an unsubscribe or a hard bounce; this one was not sent.",
            pick(&["step", "reason"]),
        ),
        "attempts_exhausted" => (
            "Playbook cadence: after the maximum attempts without reaching the lead, calling \
             stops.",
            pick(&["attempts", "max_attempts"]),
        ),
        "timer_held" => (
            "Paused: a paused opportunity holds its timers; they fire when it is resumed.",
            pick(&["timer"]),
        ),
        "stage_changed" => (
            "Stage table: the playbook moved the opportunity along the allowed stages.",
            pick(&["from", "to"]),
        ),
        _ => return None,
    };
    Some(json!({"rule": rule, "inputs": inputs}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_sla_escalation_names_its_rule_and_inputs() {
        let data =
            json!({"timer": "first_touch_sla", "queue": "escalations", "from_assignee": "ana"});
        let w = why("sla_escalated", "playbook", &data).unwrap();
        assert!(w["rule"].as_str().unwrap().starts_with("First-touch SLA"));
        assert_eq!(w["inputs"]["from_assignee"], "ana");
    }

    #[test]
    fn a_compliance_block_says_which_check_and_when() {
        let data = json!({"channel": "voice", "decision": "defer", "until": "2030-01-01T08:00:00Z",
                          "rules_version": "2025-01"});
        let w = why("compliance_blocked", "system", &data).unwrap();
        assert!(w["rule"].as_str().unwrap().contains("calling hours"));
        assert_eq!(w["inputs"]["until"], "2030-01-01T08:00:00Z");
        let dnc = why(
            "compliance_blocked",
            "system",
            &json!({"source": "dispatch"}),
        )
        .unwrap();
        assert!(dnc["rule"].as_str().unwrap().starts_with("Do-not-call"));
    }

    #[test]
    fn facts_and_operator_actions_have_no_why() {
        assert!(why("replied", "contact", &json!({})).is_none());
        assert!(why("call_status", "channel", &json!({})).is_none());
        assert!(why("sla_escalated", "operator:ana", &json!({})).is_none());
        assert!(why("created", "system", &json!({})).is_none());
    }
}
