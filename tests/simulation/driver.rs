//! Plays a schedule against real engines over HTTP and records what it submitted and what was
//! answered: the model the checks compare the engine's state with.

use std::time::{Duration, Instant};

use neuronx::config::Settings;
use neuronx_adapters::carrier_sim::{self, SimConfig, SimHandle};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::cluster::{Engine, Stop};
use crate::common;
use crate::db::Db;
use crate::schedule::{Schedule, Step};

/// What one input was and how it was answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputKind {
    Reply,
    Stop,
    Start,
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
    pub stalls: usize,
    pub cuts: usize,
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
    /// Plain SQL on the same database: the simulation's logs and the connection cuts.
    pub db: Db,
    /// The simulation's playbook (`sim`), read by every engine.
    _playbooks: tempfile::TempDir,
}

/// The simulation's playbook: a cadence of seconds, so that retries, SLAs and watchdogs come
/// due and fire within a schedule.
const PLAYBOOK: &str = r#"
name = "sim"
first_touch_sla_seconds = 2
response_sla_seconds = 1
max_attempts = 3
retry_delay_seconds = 1
ring_timeout_seconds = 1
call_watchdog_seconds = 2
sms_after_missed_call = "Hi {name}, we just tried to call you."
"#;

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
        let playbooks = tempfile::tempdir().unwrap();
        std::fs::write(playbooks.path().join("sim.toml"), PLAYBOOK).unwrap();
        let mut settings: Vec<Settings> = (0..schedule.engines)
            .map(|n| {
                // Each engine's connections carry its name, so that a cut finds them.
                let url = if database_url.starts_with("postgres") {
                    format!("{database_url}?application_name={}", Db::engine_name(n))
                } else {
                    database_url.to_owned()
                };
                let mut s = engine_settings(&url, common::free_port(), schedule.engines);
                s.secrets.keys = keys.clone();
                s.engine.clock_skew_ms = schedule.skew_ms[n];
                s.playbooks.dir = playbooks.path().display().to_string();
                s
            })
            .collect();
        let store = neuronx::app::open_store(&settings[0])
            .await
            .expect("the driver's store");
        let mut engines = Vec::new();
        for s in settings.iter_mut() {
            engines.push(Some(Engine::start_anywhere(s).await));
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
        // After the engines' migrations: the logs hang on their tables.
        let db = Db::connect(database_url).await;
        db.install_logs().await;
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
        config.rest_faults.rate_limited = schedule.carrier.rate_limited;
        config.rest_faults.unavailable = schedule.carrier.unavailable;
        config.rest_faults.server_error = schedule.carrier.server_error;
        config.rest_faults.cut_after_create = schedule.carrier.cut_after_create;
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
            db,
            _playbooks: playbooks,
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
        crate::reps::add(&world).await;
        world
    }

    /// The base URL of a live engine: the first one up and not stalled, else the first up
    /// (a client of a lone stalled engine waits for it).
    fn base(&self) -> String {
        let up = || self.engines.iter().flatten();
        up().find(|e| !e.stalled())
            .or_else(|| up().next())
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
        let mut last: String;
        loop {
            let mut req = self
                .client
                .request(method.clone(), format!("{}{path}", self.base()))
                .bearer_auth(&self.key)
                .json(&body);
            if let Some(k) = idem {
                req = req.header("Idempotency-Key", k);
            }
            match req.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    let text = resp.text().await.unwrap_or_default();
                    if !status.is_server_error() {
                        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
                        return (status, value);
                    }
                    last = format!("{status}: {text}");
                }
                Err(e) => last = e.to_string(),
            }
            assert!(
                Instant::now() < deadline,
                "no engine answered {path} within 30 s; the last answer: {last}"
            );
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
            stalls: 0,
            cuts: 0,
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
                Step::Stop { lead } | Step::Start { lead } => {
                    let (kind, body) = match step {
                        Step::Stop { .. } => (InputKind::Stop, "STOP"),
                        _ => (InputKind::Start, "START"),
                    };
                    let (status, answer) = self.inbound(&self.schedule.phone(*lead), body).await;
                    model.inputs.push(Submitted {
                        lead: *lead,
                        kind,
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
                    self.engines[*engine] = Some(Engine::restart(s).await);
                }
                Step::Stall { engine, ms } => {
                    model.stalls += 1;
                    if let Some(e) = self.engines[*engine].as_mut() {
                        e.stall(*ms);
                    }
                }
                Step::CutConnections { engine } => {
                    model.cuts += 1;
                    let cut = self.db.cut(*engine).await;
                    eprintln!("simulation:   cut {cut} connection(s) of engine {engine}");
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
        let consent = self.schedule.consent[lead];
        json!({
            "external_id": self.schedule.external_id(lead),
            "playbook": "sim",
            "contact": {
                "name": format!("Sim Lead {lead}"),
                "phone": self.schedule.phone(lead),
                "timezone": common::daytime_zone(),
                "consent": {"voice": consent.voice, "sms": consent.sms}
            },
            "sla": {"first_touch_seconds": 2}
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
        self.db.close().await;
    }
}
