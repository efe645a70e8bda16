//! Leads who answer. The demo's mail relay (`mail_relay_sim`, speaking Mailgun's route
//! protocol) posts a reply from one lead in five to NeuronX, to the reply address the email
//! carried, as a tenant's route would: NeuronX puts it on the lead's thread and engages the
//! lead. And one lead in ten calls the tenant's number back once its email has arrived: the
//! carrier simulator places the call to the number's voice URL, as Twilio would, and NeuronX
//! rings the lead's assignee or team (ADR 0050).

use std::collections::HashSet;

use anyhow::{bail, Context};
use neuronx_adapters::mail_relay_sim::{self, RelaySim};
use serde_json::{json, Value};

use crate::mail_sink::MailSink;

/// The relay's webhook signing key in the demo (a real tenant pastes Mailgun's).
const SIGNING_KEY: &str = "demo-relay-signing-key";

pub(super) struct EmailReplies {
    relay: RelaySim,
    /// The leads that answered already: each answers its first email once.
    answered: HashSet<String>,
}

impl EmailReplies {
    /// Sets the tenant's inbound email up through the API, as an admin would.
    pub(super) async fn setup(
        http: &reqwest::Client,
        base: &str,
        key: &str,
    ) -> anyhow::Result<Self> {
        let r = http
            .put(format!("{base}/v1/channels/inbound-email"))
            .bearer_auth(key)
            .json(&json!({"signing_key": SIGNING_KEY, "reply_domain": "reply.demo-agency.test"}))
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("PUT /v1/channels/inbound-email failed: {}", r.text().await?);
        }
        let view: Value = r.json().await?;
        let url = view["webhook_url"]
            .as_str()
            .context("the inbound email settings name no webhook_url")?
            .to_owned();
        Ok(Self {
            relay: RelaySim::new(url, SIGNING_KEY.to_owned()),
            answered: HashSet::new(),
        })
    }

    /// Answers every email to a lead whose number ends the right way (`lead-{i}`, `i % 5 == 2`)
    /// that has not answered yet.
    pub(super) async fn answer_new(&mut self, mail: &MailSink) -> anyhow::Result<()> {
        let due: Vec<(String, String)> = mail.read(|all| {
            all.iter()
                .flat_map(|m| m.to.iter().map(move |to| (to, m)))
                .filter(|(to, _)| answers(to) && !self.answered.contains(*to))
                .map(|(to, m)| (to.clone(), m.data.clone()))
                .collect()
        });
        for (lead, original) in due {
            if !self.answered.insert(lead.clone()) {
                continue;
            }
            let id = format!("reply-{}@example.com", lead.replace('@', "."));
            let words = "Thanks! Please call me after 5pm, I am in meetings until then.";
            let (recipient, mime) = mail_relay_sim::reply(&original, &lead, words, &id);
            self.relay
                .forward(&recipient, &mime)
                .await
                .with_context(|| format!("posting {lead}'s reply"))?;
        }
        Ok(())
    }

    /// Replies the relay posted and NeuronX took.
    pub(super) fn accepted(&self) -> u64 {
        self.relay.stats().accepted
    }
}

/// Whether the lead at `address` answers email (one lead in five).
fn answers(address: &str) -> bool {
    lead_number(address).is_some_and(|n| n % 5 == 2)
}

/// Leads calling the tenant's number back.
pub(super) struct CallBacks {
    http: reqwest::Client,
    /// The carrier simulator's `POST /sim/inbound-calls`.
    sim_url: String,
    /// The number's voice URL (`/webhooks/twilio/{tenant}/voice/inbound`).
    voice_url: String,
    /// The tenant's number they call.
    to: String,
    called: HashSet<u32>,
}

impl CallBacks {
    pub(super) fn new(http: reqwest::Client, sim_base: &str, voice_url: String, to: &str) -> Self {
        Self {
            http,
            sim_url: format!("{}/sim/inbound-calls", sim_base.trim_end_matches('/')),
            voice_url,
            to: to.to_owned(),
            called: HashSet::new(),
        }
    }

    /// Lead `i` (`i % 10 == 4`) calls from `phone_of(i)` once its first email has arrived.
    pub(super) async fn call_new(
        &mut self,
        mail: &MailSink,
        phone_of: impl Fn(u32) -> String,
    ) -> anyhow::Result<()> {
        let due: Vec<u32> = mail.read(|all| {
            all.iter()
                .flat_map(|m| m.to.iter())
                .filter_map(|to| lead_number(to))
                .filter(|i| i % 10 == 4 && !self.called.contains(i))
                .collect()
        });
        for i in due {
            if !self.called.insert(i) {
                continue;
            }
            let body = json!({"from": phone_of(i), "to": self.to, "url": self.voice_url});
            let r = self.http.post(&self.sim_url).json(&body).send().await?;
            if !r.status().is_success() {
                bail!("lead {i}'s call back was refused: {}", r.text().await?);
            }
        }
        Ok(())
    }
}

/// `lead-{i}@example.com` → `i`.
fn lead_number(address: &str) -> Option<u32> {
    address
        .strip_prefix("lead-")
        .and_then(|rest| rest.strip_suffix("@example.com"))
        .and_then(|n| n.parse::<u32>().ok())
}
