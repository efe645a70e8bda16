//! A TCP proxy in front of PostgreSQL that loses the answer to one COMMIT: the server gets the
//! COMMIT and commits, and the client's connection closes before the answer reaches it. That
//! is a real lost acknowledgement: the write is durable and the writer cannot know.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// A simple-query message `COMMIT` as sqlx sends it to end a transaction.
const COMMIT: &[u8] = b"Q\0\0\0\x0bCOMMIT\0";

#[derive(Clone, Default)]
pub struct Faults {
    /// Cut the answer to the next COMMIT of a transaction whose statements contain this text.
    armed: Arc<std::sync::Mutex<Option<Vec<u8>>>>,
    cuts: Arc<AtomicUsize>,
}

impl Faults {
    pub fn cut_next_commit_after(&self, text: &str) {
        *self.armed.lock().unwrap() = Some(text.as_bytes().to_vec());
    }

    pub fn cuts(&self) -> usize {
        self.cuts.load(Ordering::SeqCst)
    }
}

/// Listens on a free local port and forwards every connection to `upstream` (`host:port`).
pub async fn start(upstream: String) -> (u16, Faults) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let faults = Faults::default();
    let f = faults.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = TcpStream::connect(&upstream).await else {
                continue;
            };
            tokio::spawn(relay(client, server, f.clone()));
        }
    });
    (port, faults)
}

async fn relay(client: TcpStream, server: TcpStream, faults: Faults) {
    let (mut client_in, mut client_out) = client.into_split();
    let (mut server_in, mut server_out) = server.into_split();
    let cut = Arc::new(AtomicBool::new(false));
    let (answered_tx, answered) = oneshot::channel::<()>();
    let seen_cut = cut.clone();
    let upstream = tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        let mut marked = false;
        loop {
            let n = match client_in.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let chunk = &buf[..n];
            let commit = contains(chunk, COMMIT);
            if let Some(text) = faults.armed.lock().unwrap().as_ref() {
                marked |= contains(chunk, text);
            }
            let cut_this = commit && marked && faults.armed.lock().unwrap().take().is_some();
            if commit {
                marked = false;
            }
            if server_out.write_all(chunk).await.is_err() {
                return;
            }
            if cut_this {
                seen_cut.store(true, Ordering::SeqCst);
                faults.cuts.fetch_add(1, Ordering::SeqCst);
                // Keep the server's side open until it has answered: it has committed by then.
                let _ = answered.await;
                return;
            }
        }
    });
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match server_in.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if cut.load(Ordering::SeqCst) {
            // The answer to the COMMIT: dropped, and the client's connection closed.
            let _ = answered_tx.send(());
            break;
        }
        if client_out.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    drop(client_out);
    let _ = upstream.await;
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// The `host:port` a PostgreSQL URL names.
pub fn upstream(url: &str) -> String {
    let hostport = split(url).2;
    if hostport.contains(':') {
        hostport.to_owned()
    } else {
        format!("{hostport}:5432")
    }
}

/// `url` pointed at this machine's `port` and at database `db`.
pub fn through(url: &str, port: u16, db: &str) -> String {
    let (scheme, user, _, query) = split(url);
    let mut out = format!("{scheme}://{user}127.0.0.1:{port}/{db}");
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// Scheme, `user@` (or nothing), `host[:port]`, query.
fn split(url: &str) -> (&str, &str, &str, Option<&str>) {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (authority, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let query = tail.split_once('?').map(|(_, q)| q);
    match authority.rsplit_once('@') {
        Some((user, hostport)) => (scheme, &authority[..user.len() + 1], hostport, query),
        None => (scheme, "", authority, query),
    }
}
