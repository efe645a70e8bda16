//! The role matrix: every API route, a body, and the status each role gets (`ROLES` order).
//! A new route gets a row here; `the_openapi_document_lists_every_route` checks none is missing.

use reqwest::Method;

use crate::common::lead;
use serde_json::{json, Value};

/// One row of the matrix: a route, a body, and the status expected for each role in `ROLES`
/// order. `{id}`, `{call}`, `{key}`, `{n}` are filled per role.
pub struct Row {
    pub method: Method,
    pub path: &'static str,
    pub body: Option<Value>,
    pub expect: [u16; 5],
}

fn row(method: Method, path: &'static str, body: Option<Value>, expect: [u16; 5]) -> Row {
    Row {
        method,
        path,
        body,
        expect,
    }
}

pub fn matrix() -> Vec<Row> {
    use Method as M;
    let twilio = json!({"account_sid": format!("AC{}", "0".repeat(32)), "auth_token": "t0ken",
                        "from_number": "+14155550199"});
    vec![
        //                                                          owner admin oper view integ
        row(M::GET, "/v1/opportunities", None, [200, 200, 200, 200, 200]),
        row(
            M::POST,
            "/v1/opportunities",
            // A number and an address of each lead's own: two leads of one number, or of one
            // address, would merge (ADR 0046).
            Some({
                let mut body = lead("m-{n}", 300);
                body["contact"]["phone"] = json!("+1415620{n}");
                body["contact"]["email"] = json!("m-{n}@example.com");
                body
            }),
            [201, 201, 403, 403, 201],
        ),
        row(
            M::GET,
            "/v1/opportunities/{id}",
            None,
            [200, 200, 200, 200, 200],
        ),
        row(
            M::GET,
            "/v1/opportunities/{id}/timeline",
            None,
            [200, 200, 200, 200, 200],
        ),
        row(
            M::GET,
            "/v1/opportunities/{id}/messages",
            None,
            [200, 200, 200, 200, 200],
        ),
        // A text by hand takes the conversation over; handing it back needs one taken over.
        row(
            M::POST,
            "/v1/opportunities/{id}/messages",
            Some(json!({"body": "matrix"})),
            [200, 200, 200, 403, 403],
        ),
        row(
            M::POST,
            "/v1/opportunities/{id}/hand-back",
            Some(json!({})),
            [200, 200, 200, 403, 403],
        ),
        row(
            M::POST,
            "/v1/opportunities/{id}/pause",
            Some(json!({})),
            [200, 200, 200, 403, 403],
        ),
        row(
            M::POST,
            "/v1/opportunities/{id}/resume",
            Some(json!({})),
            [200, 200, 200, 403, 403],
        ),
        row(
            M::POST,
            "/v1/opportunities/{id}/reassign",
            Some(json!({"assignee": "bo", "reason": "matrix"})),
            [200, 200, 200, 403, 403],
        ),
        row(
            M::POST,
            "/v1/opportunities/{id}/escalate",
            Some(json!({})),
            [200, 200, 200, 403, 403],
        ),
        row(
            M::POST,
            "/v1/opportunities/{id}/timers/first_touch_sla/cancel",
            Some(json!({})),
            [200, 200, 200, 403, 403],
        ),
        row(
            M::POST,
            "/v1/opportunities/{id}/stage",
            Some(json!({"stage": "nurture", "reason": "cold"})),
            [200, 200, 200, 403, 403],
        ),
        // Allowed to operate, refused by name: "nobody" is not a rep (viewers and integrations
        // may not operate at all).
        row(
            M::POST,
            "/v1/opportunities/{id}/calls",
            Some(json!({"rep": "nobody"})),
            [400, 400, 400, 403, 403],
        ),
        row(
            M::POST,
            "/v1/bulk/pause",
            Some(json!({})),
            [200, 200, 200, 403, 403],
        ),
        row(
            M::POST,
            "/v1/bulk/resume",
            Some(json!({})),
            [200, 200, 200, 403, 403],
        ),
        row(M::GET, "/v1/calls/{call}", None, [200, 200, 200, 200, 200]),
        // No such recording on the call; a viewer may not listen at all.
        row(
            M::GET,
            "/v1/calls/{call}/recordings/RE00000000000000000000000000000000",
            None,
            [404, 404, 404, 403, 403],
        ),
        row(
            M::GET,
            "/v1/calls/{call}/recordings/RE00000000000000000000000000000000/media",
            None,
            [404, 404, 404, 403, 403],
        ),
        row(M::GET, "/v1/dead-letters", None, [200, 200, 200, 200, 403]),
        row(M::GET, "/v1/cluster", None, [200, 200, 200, 200, 403]),
        // No such letter: allowed roles get as far as looking it up.
        row(
            M::POST,
            "/v1/dead-letters/999999/retry",
            Some(json!({})),
            [404, 404, 404, 403, 403],
        ),
        row(
            M::POST,
            "/v1/dead-letters/999999/discard",
            Some(json!({})),
            [404, 404, 404, 403, 403],
        ),
        row(
            M::POST,
            "/v1/teams",
            Some(json!({"name": "team-{n}"})),
            [201, 201, 403, 403, 403],
        ),
        row(M::GET, "/v1/teams", None, [200, 200, 200, 200, 200]),
        row(
            M::POST,
            "/v1/principals",
            Some(json!({"name": "p-{n}", "role": "operator"})),
            [201, 201, 403, 403, 403],
        ),
        row(M::GET, "/v1/principals", None, [200, 200, 200, 200, 200]),
        // `p-{n}` and `team-{n}` are the principal and team the rows above made.
        row(
            M::PUT,
            "/v1/principals/p-{n}/rep",
            Some(json!({"phone": "+14155550100", "time_zone": "America/New_York"})),
            [200, 200, 403, 403, 403],
        ),
        row(
            M::POST,
            "/v1/principals/p-{n}/status",
            Some(json!({"status": "available"})),
            [200, 200, 403, 403, 403],
        ),
        // Deactivated, then active again, so the rows below find it as it was.
        row(
            M::POST,
            "/v1/principals/p-{n}/deactivate",
            Some(json!({})),
            [200, 200, 403, 403, 403],
        ),
        row(
            M::POST,
            "/v1/principals/p-{n}/activate",
            Some(json!({})),
            [200, 200, 403, 403, 403],
        ),
        row(M::GET, "/v1/reps", None, [200, 200, 200, 200, 200]),
        row(
            M::PUT,
            "/v1/teams/team-{n}/ringing",
            Some(json!({"strategy": "simultaneous", "ring_timeout_seconds": 30})),
            [200, 200, 403, 403, 403],
        ),
        row(
            M::POST,
            "/v1/keys",
            Some(json!({"name": "k-{n}", "role": "viewer"})),
            [201, 201, 403, 403, 403],
        ),
        row(M::GET, "/v1/keys", None, [200, 200, 403, 403, 403]),
        row(M::DELETE, "/v1/keys/{key}", None, [200, 200, 403, 403, 403]),
        row(M::GET, "/v1/audit", None, [200, 200, 200, 200, 403]),
        row(
            M::PUT,
            "/v1/channels/twilio",
            Some(twilio),
            [200, 200, 403, 403, 403],
        ),
        row(
            M::GET,
            "/v1/channels/twilio",
            None,
            [200, 200, 403, 403, 403],
        ),
        row(
            M::PUT,
            "/v1/channels/smtp",
            Some(json!({"host": "127.0.0.1", "port": 2525, "tls": "none",
                        "from": "alerts@example.com"})),
            [200, 200, 403, 403, 403],
        ),
        row(M::GET, "/v1/channels/smtp", None, [200, 200, 403, 403, 403]),
        row(
            M::PUT,
            "/v1/channels/inbound-email",
            Some(json!({"signing_key": "key-0123456789", "reply_domain": "reply.example.com"})),
            [200, 200, 403, 403, 403],
        ),
        row(
            M::GET,
            "/v1/channels/inbound-email",
            None,
            [200, 200, 403, 403, 403],
        ),
        row(M::GET, "/v1/settings", None, [200, 200, 200, 200, 200]),
        row(
            M::PUT,
            "/v1/settings",
            Some(json!({"duplicate_contacts": "merge"})),
            [200, 200, 403, 403, 403],
        ),
        row(
            M::POST,
            "/v1/dnc",
            Some(json!({"phone": "+1415555{n}"})),
            [201, 201, 201, 403, 201],
        ),
        row(
            M::DELETE,
            "/v1/dnc/+14155550100",
            None,
            [404, 404, 404, 403, 404],
        ),
        row(
            M::PUT,
            "/v1/numbers/+1512555{n}",
            Some(json!({"label": "matrix"})),
            [201, 201, 403, 403, 403],
        ),
        row(M::GET, "/v1/numbers", None, [200, 200, 200, 200, 200]),
        // The one-click unsubscribe link is public: the signed token is its only credential, so
        // every key (or none) hears the same; a forged token is refused by name.
        row(M::GET, "/u/k1.forged", None, [400, 400, 400, 400, 400]),
        row(M::POST, "/u/k1.forged", None, [400, 400, 400, 400, 400]),
        row(
            M::DELETE,
            "/v1/numbers/+13125550100",
            None,
            [404, 404, 403, 403, 403],
        ),
    ]
}
