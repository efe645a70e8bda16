//! Plays a schedule against real engines over HTTP and records what it submitted and what was
//! answered: the model the checks compare the engine's state with.

use std::time::{Duration, Instant};

use neuronx::config::Settings;
use neuronx_adapters::carrier_sim::{self, SimConfig, SimHandle};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::cluster::{Engine, Stop};
use crate::common;
use crate::schedule::{Schedule, Step};

/// What one input was and how it was answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputKind {
    Reply,
    Stop,
    Pause,
    Resume,
    SetStage(&'static str),
}

#[derive(Debug, Clone)]
pub struct Submitted {
    pub lead: usize,
    pub kind: InputKind,
    pub status: StatusCode,
    pub answer: Value,
}

/// What the driver did, for the checks.
pub struct Model {
    /// The opportunity of each lead, once created.
    pub ids: Vec<Option<String>>,
    /// Every create's answer, per lead: the ids must all be the same.
    pub create_answers: Vec<Vec<(StatusCode, Value)>>,
    pub inputs: Vec<Submitted>,
    pub crashes: usize,
}

pub struct World {
    pub schedule: Schedule,
    pub sim: SimHandle,
    pub engines: Vec<Option<Engine>>,
    pub settings: Vec<Settings>,
    pub tenant: String,
    pub key: String,
    pub client: reqwest::Client,
    /// A store of the driver's own (the engines' pools live on their runtimes).
    pub store: neuronx_supervision::Store,
}

/// Engine settings for a schedule: short leases so that a crashed engine's shards are taken
/// over within seconds.
pub fn engine_settings(database_url: &str, port: u16, engines: usize) -> Settings {
    let mut s = common::settings(database_url);
    s.server.listen = format!("127.0.0.1:{port}");
    s.server.public_url = format!("http://127.0.0.1:{port}");
    s.engine.lease_ttl_ms = 1_500;
    s.engine.lease_renew_ms = 400;
    s.engine.orphan_after_ms = 1_000;
    s.engine.poll_interval_ms = 100;
    if engines > 1 {
        s.server.redis_url = common::redis_url();
    }
    s
}

impl World {
    pub async fn start(schedule: Schedule, database_url: &str) -> World {
        let keys = vec![neuronx::secrets::Keyring::generate_entry("sim")];
        let settings: Vec<Settings> = (0..schedule.engines)
            .map(|_| {
                let mut s = engine_settings(database_url, common::free_port(), schedule.engines);
                s.secrets.keys = keys.clone();
                s
            })
            .collect();
        let store = neuronx::app::open_store(&settings[0])
            .await
            .expect("the driver's store");
        let mut engines = Vec::new();
        for s in &settings {
            engines.push(Some(Engine::start(s.clone()).await));
        }
        let shards = settings[0].engine.shard_count as usize;
        common::eventually(Duration::from_secs(30), "every shard owned", || async {
            let mut owned = 0;
            for e in engines.iter().flatten() {
                owned += e.handle.owned_shards().await.len();
            }
            (owned == shards).then_some(())
        })
        .await;
        let created = neuronx::tenants::create(&store, "sim")
            .await
            .expect("tenant");
        let tenant = created.tenant_id.to_string();
        let mut config = SimConfig {
            seed: schedule.seed,
            timing: carrier_sim::Timing::fast(),
            inbound_sms_url: None,
            ..SimConfig::default()
        };
        config.disorder.swap_probability = schedule.carrier.swap;
        config.disorder.duplicate_probability = schedule.carrier.duplicate;
        config.outcome_mix.failed = schedule.carrier.failed_calls;
        config.message_mix.failed = schedule.carrier.failed_texts;
        config.message_mix.undelivered = schedule.carrier.failed_texts;
        // The leads answer through the driver, which knows what it sent.
        config.reply_mix.probability = 0.0;
        // A callback to an engine that is restarting is retried for about 25 s, as Twilio does.
        config.delivery.max_retries = 8;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sim = carrier_sim::start(config.clone(), listener).await.unwrap();
        let world = World {
            schedule,
            sim,
            engines,
            settings,
            tenant,
            key: created.api_key,
            client: reqwest::Client::new(),
            store,
        };
        let (status, body) = world
            .send(
                Method::PUT,
                "/v1/channels/twilio",
                json!({
                    "account_sid": config.account_sid,
                    "auth_token": config.auth_token,
                    "from_number": "+14155550000",
                    "base_url": world.sim.base_url,
                }),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        world
    }

    /// The base URL of a live engine (the first one up).
    fn base(&self) -> String {
        self.engines
            .iter()
            .flatten()
            .next()
            .map(|e| e.base.clone())
            .expect("an engine is up")
    }

    /// Sends an API request, retried (same `Idempotency-Key`) while no engine answers or an
    /// engine answers 5xx, as a client would: a request that never got an answer is not an
    /// input the engine has to know about, one that did is.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Value,
        idem: Option<&str>,
    ) -> (StatusCode, Value) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut req = self
                .client
                .request(method.clone(), format!("{}{path}", self.base()))
                .bearer_auth(&self.key)
                .json(&body);
            if let Some(k) = idem {
                req = req.header("Idempotency-Key", k);
            }
            if let Ok(resp) = req.send().await {
                let status = resp.status();
                let text = resp.text().await.unwrap_or_default();
                if !status.is_server_error() {
                    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
                    return (status, value);
                }
            }
            assert!(Instant::now() < deadline, "no engine answered {path}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Posts a signed inbound SMS, retried like the carrier retries a webhook.
    async fn inbound(&self, from: &str, body: &str) -> (StatusCode, Value) {
        let sid = format!("SM{}", uuid::Uuid::new_v4().simple());
        let path = format!("/webhooks/twilio/{}/sms/inbound", self.tenant);
        let params: Vec<(String, String)> = [
            ("AccountSid", self.sim.account_sid()),
            ("Body", body),
            ("From", from),
            ("MessageSid", sid.as_str()),
            ("NumMedia", "0"),
            ("SmsStatus", "received"),
            ("To", "+14155550000"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let url = format!("{}{path}", self.base());
            let sig =
                neuronx_adapters::twilio::signature::compute(self.sim.auth_token(), &url, &params);
            let sent = self
                .client
                .post(&url)
                .header("X-Twilio-Signature", sig)
                .form(&params)
                .send()
                .await;
            if let Ok(resp) = sent {
                let status = resp.status();
                if !status.is_server_error() {
                    let text = resp.text().await.unwrap_or_default();
                    return (status, Value::String(text));
                }
            }
            assert!(Instant::now() < deadline, "no engine took the inbound text");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Plays every step in order.
    pub async fn play(&mut self) -> Model {
        let leads = self.schedule.leads;
        let mut model = Model {
            ids: vec![None; leads],
            create_answers: vec![Vec::new(); leads],
            inputs: Vec::new(),
            crashes: 0,
        };
        let steps = self.schedule.steps.clone();
        let mut created = 0;
        for (n, step) in steps.iter().enumerate() {
            let idem = format!("sim-{}-{n}", self.schedule.seed);
            match step {
                Step::Create { lead } => {
                    let (status, body) = self
                        .send(Method::POST, "/v1/opportunities", self.lead(*lead), None)
                        .await;
                    assert!(status.is_success(), "create answered {status}: {body}");
                    if let Some(id) = body["id"].as_str() {
                        model.ids[*lead].get_or_insert_with(|| id.to_owned());
                    }
                    model.create_answers[*lead].push((status, body));
                    created += 1;
                    if created == leads {
                        self.wait_for_leads(&model).await;
                    }
                }
                Step::Reply { lead, body } => {
                    let (status, answer) = self.inbound(&self.schedule.phone(*lead), body).await;
                    model.inputs.push(Submitted {
                        lead: *lead,
                        kind: InputKind::Reply,
                        status,
                        answer,
                    });
                }
                Step::Stop { lead } => {
                    let (status, answer) = self.inbound(&self.schedule.phone(*lead), "STOP").await;
                    model.inputs.push(Submitted {
                        lead: *lead,
                        kind: InputKind::Stop,
                        status,
                        answer,
                    });
                }
                Step::Pause { lead } | Step::Resume { lead } | Step::SetStage { lead, .. } => {
                    let (kind, path, body) = self.command(step, model.ids[*lead].as_deref());
                    let (status, answer) = self.send(Method::POST, &path, body, Some(&idem)).await;
                    model.inputs.push(Submitted {
                        lead: *lead,
                        kind,
                        status,
                        answer,
                    });
                }
                Step::Crash { engine } => {
                    model.crashes += 1;
                    if let Some(e) = self.engines[*engine].take() {
                        e.stop(Stop::Crash).await;
                    }
                    // A new process on the same address (callbacks name it), with an identity
                    // of its own: it waits for the dead one's leases to expire.
                    let mut s = self.settings[*engine].clone();
                    s.server.instance_id = format!("sim-restart-{}", uuid::Uuid::new_v4().simple());
                    self.engines[*engine] = Some(Engine::start(s).await);
                }
                Step::Wait { ms } => tokio::time::sleep(Duration::from_millis(*ms)).await,
            }
        }
        model
    }

    fn command(&self, step: &Step, id: Option<&str>) -> (InputKind, String, Value) {
        let id = id.unwrap_or("00000000-0000-0000-0000-000000000000");
        let why = json!({"reason": "simulation"});
        match step {
            Step::Pause { .. } => (
                InputKind::Pause,
                format!("/v1/opportunities/{id}/pause"),
                why,
            ),
            Step::Resume { .. } => (
                InputKind::Resume,
                format!("/v1/opportunities/{id}/resume"),
                why,
            ),
            Step::SetStage { stage, .. } => (
                InputKind::SetStage(stage),
                format!("/v1/opportunities/{id}/stage"),
                json!({"stage": stage, "reason": "simulation"}),
            ),
            other => unreachable!("not a command: {other:?}"),
        }
    }

    fn lead(&self, lead: usize) -> Value {
        json!({
            "external_id": self.schedule.external_id(lead),
            "contact": {
                "name": format!("Sim Lead {lead}"),
                "phone": self.schedule.phone(lead),
                "timezone": common::daytime_zone(),
                "consent": {"voice": true, "sms": true}
            },
            "sla": {"first_touch_seconds": 60}
        })
    }

    /// Every created lead readable: later replies find their opportunity by phone.
    async fn wait_for_leads(&self, model: &Model) {
        for id in model.ids.iter().flatten() {
            let path = format!("/v1/opportunities/{id}");
            common::eventually(Duration::from_secs(30), "the created lead", || async {
                let (status, _) = self.send(Method::GET, &path, Value::Null, None).await;
                (status == StatusCode::OK).then_some(())
            })
            .await;
        }
    }

    /// Stops every engine gracefully and the simulator.
    pub async fn shutdown(mut self) {
        for e in self.engines.iter_mut() {
            if let Some(e) = e.take() {
                e.stop(Stop::Graceful).await;
            }
        }
        self.sim.shutdown().await;
    }
}
