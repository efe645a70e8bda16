//! A cluster of real processes for one scenario: a fresh PostgreSQL database, a Redis server
//! of its own (so it can be restarted), the carrier simulator binary, an HTTP load balancer and
//! `neuronx serve` instances, each reaching PostgreSQL through its own controllable proxy.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::postgres::{PgPool, PgPoolOptions};
use tempfile::TempDir;

use crate::common::{eventually, fresh_database, keep_database, Backend};
use crate::lb::{self, Balancer};
use crate::procs::{signal, spawn_redis, wait_redis, Proc};
use crate::proxy::Proxy;

pub const BIN: &str = env!("CARGO_BIN_EXE_neuronx");

#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub nodes: usize,
    pub shard_count: u32,
    pub lease_ttl_ms: u64,
    pub lease_renew_ms: u64,
}

impl Default for Spec {
    fn default() -> Self {
        Spec {
            nodes: 3,
            shard_count: 12,
            lease_ttl_ms: 2_000,
            lease_renew_ms: 500,
        }
    }
}

pub struct Node {
    pub id: String,
    pub port: u16,
    pub base: String,
    pub proxy: Proxy,
    pub proc: Proc,
    log: PathBuf,
}

pub struct Cluster {
    pub spec: Spec,
    pub nodes: Vec<Node>,
    pub lb: Balancer,
    pub sim_base: String,
    pub redis_port: u16,
    pub key: String,
    pub tenant: String,
    pub http: reqwest::Client,
    pub pool: PgPool,
    db_url: String,
    db_name: String,
    secret: String,
    config: PathBuf,
    redis: Proc,
    _sim: Proc,
    dir: Option<TempDir>,
}

fn free_port() -> u16 {
    crate::common::free_port()
}

fn log_file(path: &Path) -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
}

async fn wait_http(client: &reqwest::Client, url: String, what: &str) {
    eventually(Duration::from_secs(20), what, || async {
        let r = client.get(&url).send().await.ok()?;
        r.status().is_success().then_some(())
    })
    .await;
}

impl Cluster {
    pub async fn start(spec: Spec, sim_toml: &str) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("neuronx.toml");
        std::fs::write(
            &config,
            format!(
                "[server]\nmax_connections = 6\n[engine]\nshard_count = {}\nlease_ttl_ms = {}\n\
                 lease_renew_ms = {}\npoll_interval_ms = 250\norphan_after_ms = 15000\n",
                spec.shard_count, spec.lease_ttl_ms, spec.lease_renew_ms
            ),
        )
        .unwrap();
        let db_url = fresh_database(Backend::Postgres, &dir).await;
        let db_name = db_url.rsplit('/').next().unwrap().to_owned();
        let out = Command::new(BIN)
            .args([
                "--config",
                config.to_str().unwrap(),
                "tenant",
                "create",
                "chaos",
            ])
            .env("NEURONX_DATABASE_URL", &db_url)
            .env("NEURONX_LOG", "warn")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let created: Value = serde_json::from_slice(&out.stdout).unwrap();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .unwrap();

        let redis_port = free_port();
        let redis = spawn_redis(redis_port, dir.path());
        wait_redis(redis_port).await;

        let sim_port = free_port();
        let sim_config = dir.path().join("sim.toml");
        std::fs::write(&sim_config, sim_toml).unwrap();
        let sim = Proc(Some(
            Command::new(BIN)
                .args(["carrier-sim", "--listen", &format!("127.0.0.1:{sim_port}")])
                .arg("--sim-config")
                .arg(&sim_config)
                .env("NEURONX_LOG", "warn")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log_file(&dir.path().join("sim.log")))
                .spawn()
                .unwrap(),
        ));
        let sim_base = format!("http://127.0.0.1:{sim_port}");
        wait_http(&http, format!("{sim_base}/sim/stats"), "the simulator").await;

        let ports: Vec<u16> = (0..spec.nodes).map(|_| free_port()).collect();
        let lb = lb::start(
            free_port(),
            ports
                .iter()
                .map(|p| format!("http://127.0.0.1:{p}"))
                .collect(),
            // Longer than the engine's reply timeout (5 s): a slow answer is its 202, not ours.
            Duration::from_secs(6),
        )
        .await;
        let upstream = {
            let u = url::Url::parse(&db_url).unwrap();
            format!(
                "{}:{}",
                u.host_str().unwrap(),
                u.port_or_known_default().unwrap()
            )
        };
        let mut nodes = Vec::new();
        for (i, port) in ports.into_iter().enumerate() {
            let id = format!("node-{}", (b'a' + i as u8) as char);
            nodes.push(Node {
                log: dir.path().join(format!("{id}.log")),
                id,
                port,
                base: format!("http://127.0.0.1:{port}"),
                proxy: Proxy::start(upstream.clone()).await,
                proc: Proc(None),
            });
        }
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .connect(&db_url)
            .await
            .unwrap();
        let mut c = Cluster {
            spec,
            nodes,
            lb,
            sim_base,
            redis_port,
            key: created["api_key"].as_str().unwrap().to_owned(),
            tenant: created["tenant_id"].as_str().unwrap().to_owned(),
            http,
            pool,
            db_url,
            db_name,
            secret: neuronx::secrets::Keyring::generate_entry("chaos"),
            config,
            redis,
            _sim: sim,
            dir: Some(dir),
        };
        for i in 0..c.nodes.len() {
            c.start_node(i).await;
        }
        c.put_credentials().await;
        c
    }

    fn dir(&self) -> &Path {
        self.dir.as_ref().unwrap().path()
    }

    /// Starts (or restarts) instance `i` on its port and waits until it answers HTTP.
    pub async fn start_node(&mut self, i: usize) {
        let mut db = url::Url::parse(&self.db_url).unwrap();
        db.set_host(Some("127.0.0.1")).unwrap();
        db.set_port(Some(self.nodes[i].proxy.port)).unwrap();
        let node = &mut self.nodes[i];
        node.proc.kill9();
        let child = Command::new(BIN)
            .arg("--config")
            .arg(&self.config)
            .arg("serve")
            .env("NEURONX_DATABASE_URL", db.as_str())
            .env("NEURONX_LISTEN", format!("127.0.0.1:{}", node.port))
            .env("NEURONX_PUBLIC_URL", &self.lb.url)
            .env("NEURONX_INSTANCE_ID", &node.id)
            .env(
                "NEURONX_REDIS_URL",
                format!("redis://127.0.0.1:{}", self.redis_port),
            )
            .env("NEURONX_SECRET_KEYS", &self.secret)
            .env("NEURONX_OUTBOUND_ALLOW", "127.0.0.0/8")
            .env("NEURONX_LOG", "warn")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file(&node.log))
            .spawn()
            .unwrap();
        node.proc = Proc(Some(child));
        let url = format!("{}/healthz", node.base);
        let what = format!("{} to answer /healthz", node.id);
        let started = Instant::now();
        loop {
            if let Ok(r) = self.http.get(&url).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            if !self.nodes[i].proc.running() {
                panic!(
                    "{} exited at start:\n{}",
                    self.nodes[i].id,
                    self.log_tail(i, 20)
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn put_credentials(&self) {
        let r = self
            .http
            .put(format!("{}/v1/channels/twilio", self.nodes[0].base))
            .bearer_auth(&self.key)
            .json(&json!({
                "account_sid": "ACfeedfacefeedfacefeedfacefeedface",
                "auth_token": "sim-auth-token",
                "from_number": "+14155550000",
                "base_url": self.sim_base,
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    }

    pub fn kill9(&mut self, i: usize) {
        self.nodes[i].proc.kill9();
    }

    pub fn pid(&self, i: usize) -> u32 {
        self.nodes[i].proc.pid().expect("node running")
    }

    /// SIGTERM, then the exit status (within 20 s).
    pub async fn term(&mut self, i: usize) -> ExitStatus {
        signal(self.pid(i), "TERM");
        let child = self.nodes[i].proc.0.as_mut().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.nodes[i].proc.0 = None;
                return status;
            }
            assert!(Instant::now() < deadline, "no exit within 20 s of SIGTERM");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn redis_kill(&mut self) {
        self.redis.kill9();
    }

    pub async fn redis_start(&mut self) {
        self.redis = spawn_redis(self.redis_port, self.dir());
        wait_redis(self.redis_port).await;
    }

    /// Resident memory of instance `i`, in MiB.
    pub fn rss_mb(&self, i: usize) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid(i))).unwrap();
        let kb: f64 = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap();
        kb / 1024.0
    }

    /// One sample (summed over label sets) from instance `i`'s `/metrics`.
    pub async fn metric(&self, i: usize, name: &str) -> Option<f64> {
        let text = self
            .http
            .get(format!("{}/metrics", self.nodes[i].base))
            .timeout(Duration::from_secs(3))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        let values: Vec<f64> = text
            .lines()
            .filter(|l| {
                l.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
            .collect();
        (!values.is_empty()).then(|| values.iter().sum())
    }

    pub async fn sim_get(&self, path: &str) -> Value {
        let r = self
            .http
            .get(format!("{}{path}", self.sim_base))
            .send()
            .await
            .unwrap();
        r.json().await.unwrap()
    }

    /// The last `n` lines of an instance's log (warnings and errors).
    pub fn log_tail(&self, i: usize, n: usize) -> String {
        let text = std::fs::read_to_string(&self.nodes[i].log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// SIGTERM every instance, stop the rest. (The database goes when the test ends, see
    /// `common::fresh_database`.)
    pub async fn shutdown(mut self) {
        for i in 0..self.nodes.len() {
            if self.nodes[i].proc.running() {
                let status = self.term(i).await;
                assert!(
                    status.success(),
                    "{} exited with {status:?}",
                    self.nodes[i].id
                );
            }
        }
        self.pool.close().await;
    }
}

/// A failing scenario (or any, with CHAOS_KEEP_LOGS set) keeps its folder (instance logs,
/// configs) and prints where it is. Its database is dropped when the test ends, unless
/// CHAOS_KEEP_LOGS is set.
impl Drop for Cluster {
    fn drop(&mut self) {
        let keep = std::env::var_os("CHAOS_KEEP_LOGS").is_some();
        if std::thread::panicking() || keep {
            for n in &mut self.nodes {
                n.proc.kill9();
            }
            if keep {
                keep_database(&self.db_name);
            }
            if let Some(dir) = self.dir.take() {
                let path = dir.keep();
                eprintln!(
                    "chaos: logs kept in {} (database {}, {})",
                    path.display(),
                    self.db_name,
                    if keep {
                        "kept"
                    } else {
                        "dropped at the end of the test"
                    }
                );
                for i in 0..self.nodes.len() {
                    let text = std::fs::read_to_string(&self.nodes[i].log).unwrap_or_default();
                    let lines: Vec<&str> = text.lines().collect();
                    eprintln!(
                        "--- {} (last lines) ---\n{}",
                        self.nodes[i].id,
                        lines[lines.len().saturating_sub(15)..].join("\n")
                    );
                }
            }
        }
    }
}
