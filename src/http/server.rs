//! The HTTP server as a supervised actor under the engine's root: it binds in `pre_start`,
//! serves on a task it owns, and drains in-flight requests when stopped.
//!
//! It runs its own accept loop over hyper's HTTP/1 connections rather than `axum::serve`,
//! which has no header timeout and no connection limit (ADR 0032):
//! - a request's headers must arrive within `server.header_timeout_ms` (hyper's
//!   `header_read_timeout`; the same clock closes a keep-alive connection left idle);
//! - at most `server.max_http_connections` are open: a new one past that closes the connection
//!   idle the longest, or is closed at once when every connection has a request in progress;
//! - on stop the listener closes, connections without a request in progress close, in-flight
//!   requests finish (at most `server.drain_timeout_ms`, then they are cut off).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use super::connections::{Conn, Registry, TrackedBody};
use super::edge::Edge;
use super::forwarded::Client;
use super::{router, AppState};

/// How long a new connection past the limit waits for the idle one it displaced to close (it
/// closes at once; this bounds a connection task that is slow to run).
const ADMIT_WAIT: Duration = Duration::from_secs(1);
/// After an accept error that is not the connection's own (out of file descriptors), the loop
/// closes an idle connection and waits this long before accepting again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

pub struct HttpServer;

pub struct Args {
    pub listener: TcpListener,
    pub state: AppState,
}

pub struct State {
    edge: Edge,
    /// Cancelled when draining is over: the remaining connections are dropped.
    cut: CancellationToken,
    task: Option<JoinHandle<()>>,
}

/// The server never receives messages; it only lives and stops.
pub enum Msg {}

impl Actor for HttpServer {
    type Msg = Msg;
    type State = State;
    type Arguments = Args;

    async fn pre_start(
        &self,
        _myself: ActorRef<Msg>,
        args: Args,
    ) -> Result<State, ActorProcessingErr> {
        let edge = args.state.edge.clone();
        let cut = CancellationToken::new();
        let limit = effective_limit(edge.max_connections);
        let server = Server {
            limit,
            router: router(args.state),
            edge: edge.clone(),
            cut: cut.clone(),
            registry: Registry::new(limit),
            tracker: TaskTracker::new(),
        };
        let task = tokio::spawn(server.run(args.listener));
        Ok(State {
            edge,
            cut,
            task: Some(task),
        })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Msg>,
        state: &mut State,
    ) -> Result<(), ActorProcessingErr> {
        state.edge.lifecycle.stop();
        if let Some(mut task) = state.task.take() {
            let drain = state.edge.drain_timeout;
            if tokio::time::timeout(drain, &mut task).await.is_err() {
                tracing::warn!(
                    ?drain,
                    "http requests still running after the drain timeout are cut off"
                );
                state.cut.cancel();
                let _ = tokio::time::timeout(Duration::from_secs(1), task).await;
            }
        }
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<Msg>,
        msg: Msg,
        _state: &mut State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {}
    }
}

struct Server {
    limit: usize,
    router: Router,
    edge: Edge,
    cut: CancellationToken,
    registry: Registry,
    tracker: TaskTracker,
}

impl Server {
    async fn run(mut self, listener: TcpListener) {
        let stopping = self.edge.lifecycle.stopping();
        let slots = Arc::new(Semaphore::new(self.limit));
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = stopping.cancelled() => break,
            };
            let (stream, peer) = match accepted {
                Ok(conn) => conn,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting an http connection failed");
                    self.registry.close_idlest();
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            };
            let Some(slot) = self.admit(&slots).await else {
                tracing::debug!(%peer, "http connection refused: every connection is busy");
                continue;
            };
            let close = stopping.child_token();
            let conn = self.registry.open(close.clone());
            self.tracker
                .spawn(self.serve(stream, peer, conn, close, slot));
        }
        // New connections are refused from here on; open ones were told by `stopping`.
        drop(listener);
        self.tracker.close();
        tokio::select! {
            _ = self.tracker.wait() => {}
            _ = self.cut.cancelled() => {}
        }
    }

    /// A slot for a new connection: a free one, or one freed by closing the idlest connection.
    async fn admit(&mut self, slots: &Arc<Semaphore>) -> Option<OwnedSemaphorePermit> {
        if let Ok(slot) = slots.clone().try_acquire_owned() {
            return Some(slot);
        }
        if !self.registry.close_idlest() {
            return None;
        }
        tokio::time::timeout(ADMIT_WAIT, slots.clone().acquire_owned())
            .await
            .ok()?
            .ok()
    }

    fn serve(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        conn: Conn,
        close: CancellationToken,
        slot: OwnedSemaphorePermit,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let router = self.router.clone();
        let trusted = self.edge.trusted.clone();
        let cut = self.cut.clone();
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(self.edge.header_timeout);
        let conn = Arc::new(conn);
        let watched = conn.clone();
        async move {
            let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                let client = trusted.client(peer.ip(), req.headers());
                req.extensions_mut().insert(ConnectInfo(peer));
                req.extensions_mut().insert(Client(client));
                let busy = conn.busy();
                let router = router.clone();
                async move {
                    let res = router.oneshot(req).await?;
                    Ok::<_, Infallible>(res.map(|body| TrackedBody::new(body, busy)))
                }
            });
            let served = http.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(served);
            let result = tokio::select! {
                result = served.as_mut() => Some(result),
                _ = close.cancelled() => None,
                _ = cut.cancelled() => return,
            };
            let result = match result {
                Some(result) => result,
                // Asked to close (room needed, or the server stops) with no request in
                // progress: dropped now. hyper's graceful shutdown would keep a connection that
                // has sent part of its headers until the header timeout. No request can start
                // meanwhile: requests start only while this task polls `served`.
                None if watched.is_idle() => return,
                None => {
                    // Closes after the response in progress.
                    served.as_mut().graceful_shutdown();
                    tokio::select! {
                        result = served => result,
                        _ = cut.cancelled() => return,
                    }
                }
            };
            if let Err(e) = result {
                // Header timeouts, resets and malformed requests: the client's doing.
                tracing::debug!(%peer, error = %e, "http connection ended with an error");
            }
            drop(slot);
        }
    }
}

/// Errors of one connection that came and went before it was accepted; the loop goes on.
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

/// The connection limit, lowered to fit the open-files limit (Linux: `/proc/self/limits`) so
/// that the limit, not running out of descriptors, is what turns connections away; a quarter of
/// the descriptors stay for the database, Redis, the carrier and files.
fn effective_limit(configured: usize) -> usize {
    let Some(open_files) = open_files_limit() else {
        return configured;
    };
    let fits = open_files - open_files / 4;
    if configured > fits {
        tracing::warn!(
            configured,
            open_files,
            limit = fits,
            "server.max_http_connections lowered to fit the open-files limit; raise it \
             (ulimit -n, LimitNOFILE) to allow more"
        );
        return fits.max(1);
    }
    configured
}

fn open_files_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    // "Max open files            1024                 524288               files"
    line.split_whitespace().nth(3)?.parse().ok()
}
