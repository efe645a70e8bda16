//! A TCP proxy the test controls, between one instance and PostgreSQL: `cut` drops every open
//! connection and stops new ones from reaching the server (refused, or held open and silent);
//! `restore` lets connections through again.

use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What a cut does to connections made while it lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// Accepted and closed at once: the client sees a connection reset or EOF (the server is
    /// gone).
    Refuse,
    /// Accepted and never answered: the client waits until its own timeout (a partition).
    Blackhole,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    Cut(Cut),
}

pub struct Proxy {
    pub port: u16,
    state: watch::Sender<State>,
    /// Bumped by every cut: connections of an older generation close.
    generation: watch::Sender<u64>,
    accept: JoinHandle<()>,
    held: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `upstream` (`host:port`).
    pub async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (state, state_rx) = watch::channel(State::Open);
        let (generation, gen_rx) = watch::channel(0u64);
        let held = Arc::new(Mutex::new(Vec::new()));
        let held_in = held.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let current = *state_rx.borrow();
                match current {
                    State::Cut(Cut::Refuse) => drop(client),
                    State::Cut(Cut::Blackhole) => held_in.lock().unwrap().push(client),
                    State::Open => {
                        let upstream = upstream.clone();
                        let mut gen_rx = gen_rx.clone();
                        let born = *gen_rx.borrow_and_update();
                        tokio::spawn(async move {
                            let Ok(server) = TcpStream::connect(&upstream).await else {
                                return;
                            };
                            let _ = client.set_nodelay(true);
                            let _ = server.set_nodelay(true);
                            let (mut client, mut server) = (client, server);
                            tokio::select! {
                                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                                _ = async {
                                    while *gen_rx.borrow_and_update() == born {
                                        if gen_rx.changed().await.is_err() {
                                            break;
                                        }
                                    }
                                } => {}
                            }
                            // Dropping both ends closes them: the client sees its connection
                            // die mid-conversation, the server a client gone away.
                        });
                    }
                }
            }
        });
        Proxy {
            port,
            state,
            generation,
            accept,
            held,
        }
    }

    /// Drops every open connection; new ones are refused or held silent until `restore`.
    pub fn cut(&self, how: Cut) {
        self.state.send_replace(State::Cut(how));
        self.generation.send_modify(|g| *g += 1);
    }

    pub fn restore(&self) {
        self.held.lock().unwrap().clear();
        self.state.send_replace(State::Open);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.generation.send_modify(|g| *g += 1);
    }
}
