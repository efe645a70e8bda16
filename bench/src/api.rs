//! What the call-flow benchmarks share: an engine on a loopback port whose public URL the
//! carrier simulator calls back, and a client of its API with the tenant's key.

use std::time::Duration;

use anyhow::{bail, Context};
use neuronx::config::Settings;
use neuronx::secrets::Keyring;
use neuronx_supervision::{Store, TenantId};
use serde_json::json;

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

/// A new tenant named `name` whose Twilio account is the simulator at `sim_base_url`; the
/// tenant and a client of the API with its key (many idle connections: the benches pace
/// hundreds of requests a second).
pub async fn tenant_on_simulator(
    store: &Store,
    name: &str,
    public_url: &str,
    sim_base_url: &str,
    account_sid: &str,
    auth_token: &str,
) -> anyhow::Result<(TenantId, Api)> {
    let created = neuronx::tenants::create(store, name).await?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(1_000)
        .timeout(Duration::from_secs(30))
        .build()?;
    let api = Api {
        http,
        base: public_url.to_owned(),
        key: created.api_key,
    };
    let account = json!({"account_sid": account_sid, "auth_token": auth_token,
        "from_number": "+14155550000", "base_url": sim_base_url});
    api.send(reqwest::Method::PUT, "/v1/channels/twilio", account)
        .await?;
    Ok((created.tenant_id, api))
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

    /// An operator `name` (of `team`, if any) made an available rep at `phone`, ten calls at
    /// once.
    pub async fn available_rep(
        &self,
        name: &str,
        team: Option<&str>,
        phone: &str,
    ) -> anyhow::Result<()> {
        let principal = json!({"name": name, "role": "operator", "team": team});
        self.send(reqwest::Method::POST, "/v1/principals", principal)
            .await?;
        let profile = json!({"phone": phone, "time_zone": "America/New_York", "max_calls": 10});
        let path = format!("/v1/principals/{name}/rep");
        self.send(reqwest::Method::PUT, &path, profile).await?;
        let path = format!("/v1/principals/{name}/status");
        self.send(reqwest::Method::POST, &path, json!({"status": "available"}))
            .await?;
        Ok(())
    }
}
