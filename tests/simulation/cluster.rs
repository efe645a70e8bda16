//! Engines under test, each a real `App` on a tokio runtime (and thread) of its own, so that a
//! crash can be played in process: the runtime is shut down in the background, every task of
//! that engine (actors, commits in flight, lease renewals, the HTTP server) is dropped at its
//! next await point and nothing is released gracefully — no lease given back, no in-flight
//! effect completed. A transaction cut that way is rolled back by the database when its
//! connection is dropped, as after `kill -9`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use neuronx::app::App;
use neuronx::config::Settings;
use tokio::sync::oneshot;

/// How an engine ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Drains, finishes in-flight transitions and releases its leases.
    Graceful,
    /// Every task dropped where it stands; leases expire by themselves.
    Crash,
}

/// The engine runtime's worker threads: a stall blocks every one of them.
const WORKERS: usize = 2;

/// One running engine.
pub struct Engine {
    pub base: String,
    pub handle: neuronx_supervision::EngineHandle,
    runtime: tokio::runtime::Handle,
    /// Until when a stall holds it (the driver sends its requests elsewhere meanwhile).
    pub stalled_until: Option<Instant>,
    stop: Option<oneshot::Sender<Stop>>,
    thread: Option<JoinHandle<()>>,
}

impl Engine {
    /// Starts an engine on the address of one that just crashed: the dead runtime's workers drop
    /// its listener when they next run, which under load can be after the new one binds, so a
    /// bind refused for that is tried again (for up to 10 s).
    pub async fn restart(settings: Settings) -> Engine {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match Engine::try_start(settings.clone()).await {
                Ok(engine) => return engine,
                Err(e) if e.contains("Address already in use") && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("engine did not restart: {e}"),
            }
        }
    }

    /// Starts an engine on a free port: the one in `settings`, or another if a process that ran
    /// beside this one took it meanwhile (`settings` then names the new one).
    pub async fn start_anywhere(settings: &mut Settings) -> Engine {
        for _ in 0..5 {
            match Engine::try_start(settings.clone()).await {
                Ok(engine) => return engine,
                Err(e) if e.contains("Address already in use") => {
                    let port = crate::common::free_port();
                    settings.server.listen = format!("127.0.0.1:{port}");
                    settings.server.public_url = format!("http://127.0.0.1:{port}");
                }
                Err(e) => panic!("engine did not start: {e}"),
            }
        }
        panic!("no free port for an engine after five tries")
    }

    /// Starts an `App` with `settings` on a runtime of its own and waits until it serves.
    async fn try_start(settings: Settings) -> Result<Engine, String> {
        let (ready_tx, ready_rx) = oneshot::channel();
        let (stop_tx, stop_rx) = oneshot::channel::<Stop>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(WORKERS)
                .enable_all()
                .build()
                .expect("engine runtime");
            let ended = rt.block_on(async move {
                let app = match App::start(settings).await {
                    Ok(app) => app,
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("{e:#}")));
                        return None;
                    }
                };
                let _ = ready_tx.send(Ok((
                    format!("http://{}", app.addr),
                    app.engine(),
                    tokio::runtime::Handle::current(),
                )));
                match stop_rx.await.unwrap_or(Stop::Crash) {
                    Stop::Graceful => {
                        app.shutdown().await;
                        None
                    }
                    Stop::Crash => Some(app),
                }
            });
            if let Some(app) = ended {
                // The engine's lock file (SQLite) goes with the process in a real crash; here
                // with the `App` value, dropped in the runtime's context and then the runtime
                // itself, which drops every task without running it further.
                {
                    let _guard = rt.enter();
                    drop(app);
                }
                rt.shutdown_background();
            } else {
                rt.shutdown_timeout(Duration::from_secs(5));
            }
        });
        let (base, handle, runtime) = ready_rx.await.expect("the engine thread answers")?;
        Ok(Engine {
            base,
            handle,
            runtime,
            stalled_until: None,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// Stands the engine still for `ms`: one task per worker thread blocks its thread (they
    /// wait for each other first, so that no worker is left running the engine's tasks, its
    /// timers or its sockets). Returns at once; the engine resumes by itself.
    pub fn stall(&mut self, ms: u64) {
        let until = Instant::now() + Duration::from_millis(ms);
        self.stalled_until = Some(until);
        let arrived = Arc::new(AtomicUsize::new(0));
        for _ in 0..WORKERS {
            let arrived = arrived.clone();
            self.runtime.spawn(async move {
                arrived.fetch_add(1, Ordering::SeqCst);
                // Blocking on purpose: this is the fault.
                while arrived.load(Ordering::SeqCst) < WORKERS && Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(1));
                }
                std::thread::sleep(until.saturating_duration_since(Instant::now()));
            });
        }
    }

    pub fn stalled(&self) -> bool {
        self.stalled_until.is_some_and(|t| Instant::now() < t)
    }

    /// Stops the engine the way `how` says and waits for its thread.
    pub async fn stop(mut self, how: Stop) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(how);
        }
        if let Some(thread) = self.thread.take() {
            tokio::task::spawn_blocking(move || thread.join())
                .await
                .expect("join task")
                .expect("the engine thread did not panic");
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // A test that fails mid-schedule: crash what is left rather than leak a live engine.
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(Stop::Crash);
        }
    }
}
