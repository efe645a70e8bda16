//! What the lead's mail tells us after an email left: a reply (a conversation, like an
//! inbound text) and a late bounce (a delivery status notification). Unsubscribes by email and
//! complaints arrive as `EmailUnsubscribed` (see `email`).

use serde_json::json;

use super::step::Step;
use crate::domain::timeline::{Cause, TimelineKind};

impl Step<'_> {
    /// On the thread as an inbound email; then as any reply: the lead is reached, a contacting
    /// opportunity is engaged, the response SLA is armed, and a reply after hours (or one that
    /// may ask to stop contact) tells a person.
    pub(super) fn email_received(
        &mut self,
        from: String,
        subject: String,
        body: String,
        message_id: Option<String>,
    ) {
        let text = format!("the lead replied by email ({from})");
        let data = json!({ "channel": "email", "from": from, "subject": subject,
            "body": body, "message_id": message_id });
        self.event(TimelineKind::Replied, Cause::Contact, text, data);
        // An empty reply (an attachment alone) still engages: the lead wrote back.
        let words = if body.trim().is_empty() {
            &subject
        } else {
            &body
        };
        self.conversation(words);
    }

    /// The address is marked invalid, as for a bounce at send time; a second report about the
    /// same address writes nothing.
    pub(super) fn email_returned(&mut self, address: String, status: String, reason: String) {
        if self.opp.email.bounced.as_deref() == Some(address.as_str()) {
            return;
        }
        let text = format!(
            "an email to {address} came back undelivered ({status}); the address is marked invalid"
        );
        let data = json!({ "address": address, "status": status, "error": reason,
            "via": "delivery_status_notification" });
        self.opp.email.bounced = Some(address);
        self.event(TimelineKind::EmailBounced, Cause::Channel, text, data);
    }
}
