//! The HTTP server as a supervised actor under the engine's root: it binds in `pre_start`,
//! serves on a task it owns, and drains in-flight requests when stopped.

use std::net::SocketAddr;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{router, AppState};

pub struct HttpServer;

pub struct Args {
    pub listener: TcpListener,
    pub state: AppState,
}

pub struct State {
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<std::io::Result<()>>>,
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
        let (stop, mut stopped) = watch::channel(false);
        let app = router(args.state).into_make_service_with_connect_info::<SocketAddr>();
        let task = tokio::spawn(async move {
            axum::serve(args.listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await
        });
        Ok(State {
            stop,
            task: Some(task),
        })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Msg>,
        state: &mut State,
    ) -> Result<(), ActorProcessingErr> {
        let _ = state.stop.send(true);
        if let Some(task) = state.task.take() {
            match tokio::time::timeout(std::time::Duration::from_secs(10), task).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => tracing::warn!(error = %e, "http server ended with an error"),
                Ok(Err(e)) => tracing::warn!(error = %e, "http server task failed"),
                Err(_) => tracing::warn!("http server did not drain within 10 s"),
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
