//! What the call-flow benchmarks share: an engine on a loopback port whose public URL the
//! carrier simulator calls back, and a client of its API with the tenant's key.

use anyhow::{bail, Context};
use neuronx::config::Settings;
use neuronx::secrets::Keyring;

use crate::demo::free_port;

/// Points `settings` at `database_url` and a free loopback port that is also the public URL
/// (with a sealing key, and loopback let through as the simulator's host); the public URL.
pub fn serve_on_loopback(settings: &mut Settings, database_url: &str) -> anyhow::Result<String> {
    let port = free_port()?;
    let public_url = format!("http://127.0.0.1:{port}");
    settings.server.database_url = database_url.to_owned();
    settings.server.listen = format!("127.0.0.1:{port}");
    settings.server.public_url = public_url.clone();
    settings.secrets.keys = vec![Keyring::generate_entry("bench")];
    settings.outbound.allow = vec!["127.0.0.0/8".into()];
    Ok(public_url)
}

/// The engine's API with one tenant's key.
#[derive(Clone)]
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
    pub key: String,
}

impl Api {
    /// Sends `body` as JSON (none when null); the answer's JSON, or an error naming the status.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: serde_json::Value,
    ) -> anyhow::Result<serde_json::Value> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.key);
        if !body.is_null() {
            req = req.json(&body);
        }
        let resp = req.send().await.with_context(|| path.to_owned())?;
        let status = resp.status();
        let body: serde_json::Value = resp.json().await.unwrap_or_default();
        if !status.is_success() {
            bail!("{path} answered {status}: {body}");
        }
        Ok(body)
    }
}
