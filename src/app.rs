//! Wiring: settings → store → engine → HTTP server, and an orderly stop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use neuronx_actors::Playbooks;
use neuronx_supervision::{Engine, EngineHandle, Store};
use ractor::Actor;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::config::Settings;
use crate::http::edge::Edge;
use crate::http::{server, AppState};
use crate::lock::{self, EngineLock};
use crate::send_limits::SendLimits;
use neuronx_adapters::limits::Limiter;

pub struct App {
    engine: Engine,
    tasks: Vec<JoinHandle<()>>,
    http: ractor::ActorRef<server::Msg>,
    /// The HTTP edge's stop signals and drain timeout.
    edge: Edge,
    /// How long `/readyz` answers 503 on a signal before the listener closes.
    drain_delay: Duration,
    pub addr: SocketAddr,
    _lock: Option<EngineLock>,
}

/// Connects, applies the runtime's migrations then the product's, and creates the shard rows.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    let url = &settings.server.database_url;
    let store = Store::connect(url, settings.server.max_connections)
        .await
        .with_context(|| format!("connecting to {}", redact(url)))?;
    store
        .migrate(settings.engine.shard_count)
        .await
        .context("applying the runtime's migrations")?;
    crate::schema::migrate(&store)
        .await
        .context("applying the product's migrations")?;
    Ok(store)
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

impl App {
    pub async fn start(settings: Settings) -> anyhow::Result<App> {
        Self::start_with_clock(settings, None).await
    }

    /// Starts on `clock` instead of the settings' (the database's time): tests run the engine
    /// on a simulated clock and move it to fire timers without waiting for them.
    pub async fn start_with_clock(
        settings: Settings,
        clock: Option<neuronx_supervision::Clock>,
    ) -> anyhow::Result<App> {
        let lock = lock::acquire(&settings.server.database_url)?;
        let store = open_store(&settings).await?;
        let limiter = Limiter::connect(Some(settings.server.redis_url.as_str()))
            .await
            .context("send limits (server.redis_url)")?;
        // What the limiter is decides what peers are told, whatever the URL looked like.
        let shared_limits = limiter.is_shared();
        check_peers(&store, &settings, shared_limits).await?;
        let playbooks = settings.playbooks()?;
        let keyring = Arc::new(settings.keyring()?);
        let listener = TcpListener::bind(&settings.server.listen)
            .await
            .with_context(|| format!("binding {}", settings.server.listen))?;
        let addr = listener.local_addr()?;
        let compliance = Arc::new(settings.compliance_rules()?);
        let kinds = neuronx_actors::kinds(
            Playbooks::new(playbooks.clone(), settings.playbooks.default.clone()),
            compliance.clone(),
        );
        let public_url = settings.server.public_url.trim_end_matches('/').to_owned();
        let limits = Arc::new(SendLimits::new(limiter, &settings.limits)?);
        let guard = settings.outbound_guard()?;
        let mut engine_config = settings.engine_config();
        engine_config.shared_limits = shared_limits;
        if let Some(clock) = clock {
            engine_config.clock = clock;
        }
        let (ctx, precheck_task) = crate::channels::Context::new(
            store.clone(),
            keyring.clone(),
            public_url.clone(),
            guard.clone(),
            limits,
            engine_config.clock.clone(),
        );
        let accounts = ctx.accounts.clone();
        let (handlers, reports, loopback_task) =
            crate::channels::handlers(&settings.channels.loopback, ctx);
        let engine = Engine::start(store, engine_config, kinds, handlers)
            .await
            .context("starting the engine")?;
        let forwarder = crate::channels::forward(reports, engine.handle());
        let edge = Edge::from_settings(&settings)?;
        let state = AppState {
            engine: engine.handle(),
            playbooks: Arc::new(playbooks),
            default_playbook: settings.playbooks.default.clone(),
            compliance,
            keyring,
            public_url,
            webhooks: webhook_counter(&engine)?,
            tokens: crate::http::token_cache(),
            accounts,
            guard,
            auth_failures: Default::default(),
            edge: edge.clone(),
        };
        let (http, _) = Actor::spawn_linked(
            None,
            server::HttpServer,
            server::Args { listener, state },
            engine.root_cell(),
        )
        .await
        .context("starting the HTTP server")?;
        tracing::info!(%addr, database = %redact(&settings.server.database_url), instance = %settings.server.instance_id, "neuronx serving");
        Ok(App {
            engine,
            tasks: vec![loopback_task, forwarder, precheck_task],
            http,
            edge,
            drain_delay: Duration::from_millis(settings.server.drain_delay_ms),
            addr,
            _lock: lock,
        })
    }

    pub fn engine(&self) -> EngineHandle {
        self.engine.handle()
    }

    /// Stops at once: `/readyz` answers 503, the listener closes, idle connections and the
    /// console's feeds end, in-flight requests finish (up to `server.drain_timeout_ms`); then
    /// in-flight transitions finish and leases are released.
    pub async fn shutdown(self) {
        self.edge.lifecycle.drain();
        // The server's own stop waits out the drain timeout and then cuts what is left.
        let http_stop = self.edge.drain_timeout + Duration::from_secs(5);
        self.http
            .stop_and_wait(Some("shutdown".into()), Some(http_stop))
            .await
            .ok();
        self.engine.shutdown().await;
        for t in self.tasks {
            t.abort();
        }
    }

    /// Runs until SIGTERM or Ctrl-C, or until the engine stops by itself.
    pub async fn run_until_signal(self) -> anyhow::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Runs until `signal` completes, or until the engine stops by itself. On the signal,
    /// `/readyz` answers 503 for `server.drain_delay_ms` while requests are still served, so
    /// that load balancers take the instance out before its listener closes; then `shutdown`.
    pub async fn run_until(
        mut self,
        signal: impl std::future::Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let stopped = tokio::select! {
            _ = signal => false,
            _ = self.engine.stopped() => true,
        };
        if stopped {
            anyhow::bail!("the engine stopped after repeated failures; see the log");
        }
        tracing::info!(drain_delay = ?self.drain_delay, "shutting down: not ready, draining");
        self.edge.lifecycle.drain();
        tokio::time::sleep(self.drain_delay).await;
        self.shutdown().await;
        Ok(())
    }
}

/// Several instances on one database must share send limits, or each would send up to the
/// whole limit: refuse to start beside a live instance unless every one uses Redis. A peer that
/// was just killed still looks alive until its heartbeat ages past the lease TTL, so a conflict
/// is only final once it has lasted that long (a restart right after a crash then works).
async fn check_peers(store: &Store, settings: &Settings, shared: bool) -> anyhow::Result<()> {
    if settings.is_sqlite() {
        // One engine per file, enforced by the file lock.
        return Ok(());
    }
    let ttl = std::time::Duration::from_millis(settings.engine.lease_ttl_ms);
    let give_up = tokio::time::Instant::now() + ttl + ttl / 2;
    loop {
        let membership = store
            .membership()
            .await
            .context("reading the instances registered on this database")?;
        let Some(conflict) = peer_conflict(&membership, ttl, &settings.server.instance_id, shared)
        else {
            return Ok(());
        };
        if tokio::time::Instant::now() >= give_up {
            anyhow::bail!(conflict);
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

fn peer_conflict(
    membership: &neuronx_supervision::store::Membership,
    ttl: std::time::Duration,
    me: &str,
    shared: bool,
) -> Option<String> {
    let others: Vec<_> = membership
        .live(ttl)
        .into_iter()
        .filter(|i| i.id != me)
        .collect();
    if others.is_empty() {
        return None;
    }
    if !shared {
        let names: Vec<&str> = others.iter().map(|i| i.id.as_str()).collect();
        return Some(format!(
            "another NeuronX instance ({}) is running on this database; several instances must \
             share their send limits through Redis: set NEURONX_REDIS_URL on every instance",
            names.join(", ")
        ));
    }
    others.iter().find(|i| !i.shared_limits).map(|alone| {
        format!(
            "instance {} is running on this database without Redis, so its send limits are its \
             own; restart it with NEURONX_REDIS_URL before adding instances",
            alone.id
        )
    })
}

fn webhook_counter(engine: &Engine) -> anyhow::Result<prometheus::IntCounterVec> {
    let counter = prometheus::IntCounterVec::new(
        prometheus::Opts::new("webhooks_total", "webhook requests by route and outcome"),
        &["route", "outcome"],
    )?;
    engine
        .handle()
        .metrics()
        .register(Box::new(counter.clone()))?;
    Ok(counter)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
