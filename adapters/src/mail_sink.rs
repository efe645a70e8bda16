//! A real SMTP server on loopback that keeps every message it accepts: the demo's mailbox.
//!
//! `neuronx demo` runs in one process with no outside service, yet its summary counts the emails
//! NeuronX sent (notices to reps, emails to leads). This server speaks SMTP on a TCP port, so the
//! engine's own client (`smtp::send`, through the outbound guard) reaches it exactly as it would
//! reach a tenant's relay. The protocol itself (commands, states, dot-stuffing, replies) is the
//! `mailin` crate's; this file only accepts connections and keeps what arrives. Tests use
//! Python's `aiosmtpd` instead (`tests/common/smtp.rs`); the demo cannot ask for Python.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use mailin::{Action, Handler, Response, SessionBuilder};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The longest line or message the sink reads: more closes the connection.
const MAX_LINE: u64 = 8 * 1024;
const MAX_MESSAGE: usize = 1024 * 1024;
/// A client silent this long is dropped, so a stuck connection cannot hold a task forever.
const IDLE: Duration = Duration::from_secs(60);

/// One message as the server received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMail {
    pub from: String,
    pub to: Vec<String>,
    /// The message as written after DATA: headers, a blank line, the body.
    pub data: String,
}

impl ReceivedMail {
    /// The value of the first header called `name` (case-insensitive), unfolded.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or_default();
        let mut found: Option<String> = None;
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                if let Some(v) = found.as_mut() {
                    v.push(' ');
                    v.push_str(line.trim());
                }
                continue;
            }
            if found.is_some() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case(name) {
                    found = Some(v.trim().to_owned());
                }
            }
        }
        found
    }
}

type Mailbox = Arc<Mutex<Vec<ReceivedMail>>>;

/// The running server: its port, what it kept, and a way to stop it.
pub struct MailSink {
    pub addr: SocketAddr,
    mailbox: Mailbox,
    task: JoinHandle<()>,
}

impl MailSink {
    /// Serves SMTP on `listener` until [`MailSink::shutdown`].
    pub fn start(listener: TcpListener) -> io::Result<Self> {
        let addr = listener.local_addr()?;
        let mailbox = Mailbox::default();
        let kept = mailbox.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, peer)) = listener.accept().await else {
                    continue;
                };
                let kept = kept.clone();
                tokio::spawn(async move {
                    if let Err(e) = serve(stream, peer.ip(), kept).await {
                        tracing::debug!(%peer, error = %e, "mail sink connection ended");
                    }
                });
            }
        });
        Ok(Self {
            addr,
            mailbox,
            task,
        })
    }

    /// Every message accepted so far, in order.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        self.mailbox
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn shutdown(self) {
        self.task.abort();
    }
}

/// One message being received on a connection.
struct Receiving {
    mailbox: Mailbox,
    from: String,
    to: Vec<String>,
    data: Vec<u8>,
}

impl Handler for Receiving {
    fn data_start(&mut self, _domain: &str, from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.from = from.to_owned();
        self.to = to.to_vec();
        self.data.clear();
        mailin::response::OK
    }

    fn data(&mut self, buf: &[u8]) -> io::Result<()> {
        if self.data.len() + buf.len() > MAX_MESSAGE {
            return Err(io::Error::other("message too large"));
        }
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let mail = ReceivedMail {
            from: std::mem::take(&mut self.from),
            to: std::mem::take(&mut self.to),
            data: String::from_utf8_lossy(&std::mem::take(&mut self.data)).into_owned(),
        };
        self.mailbox
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(mail);
        mailin::response::OK
    }
}

async fn serve(stream: TcpStream, peer: IpAddr, mailbox: Mailbox) -> io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let handler = Receiving {
        mailbox,
        from: String::new(),
        to: Vec::new(),
        data: Vec::new(),
    };
    let mut session = SessionBuilder::new("neuronx-mail-sink").build(peer, handler);
    write.write_all(&session.greeting().buffer()?).await?;
    let mut line = Vec::with_capacity(128);
    loop {
        line.clear();
        let n = tokio::time::timeout(
            IDLE,
            (&mut read).take(MAX_LINE).read_until(b'\n', &mut line),
        )
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "client idle"))??;
        if n == 0 {
            return Ok(());
        }
        let response = session.process(&line);
        match response.action {
            Action::NoReply => {}
            Action::Reply => write.write_all(&response.buffer()?).await?,
            // No STARTTLS is offered, so an upgrade request is answered and the session ends.
            Action::Close | Action::UpgradeTls => {
                write.write_all(&response.buffer()?).await?;
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbound::OutboundGuard;
    use crate::smtp::{self, Email, SmtpServer, SmtpTls};

    #[tokio::test]
    async fn the_engines_own_client_delivers_to_it() {
        let sink = MailSink::start(TcpListener::bind("127.0.0.1:0").await.unwrap()).unwrap();
        let server = SmtpServer {
            host: "127.0.0.1".into(),
            port: sink.addr.port(),
            tls: SmtpTls::None,
            credentials: None,
            timeout: Duration::from_secs(5),
        };
        let guard = OutboundGuard::from_allow_list(&["127.0.0.0/8"]).unwrap();
        for n in 0..2 {
            let email = Email {
                from: "alerts@demo.test".into(),
                from_name: Some("Demo".into()),
                to: format!("rep-{n}@demo.test"),
                to_name: None,
                subject: format!("Lead {n} needs you"),
                body: "Line one\r\n.starts with a dot\r\n".into(),
                message_id: format!("{n}@demo.test"),
                headers: Vec::new(),
            };
            smtp::send(&server, &guard, "neuronx.test", &email)
                .await
                .unwrap();
        }
        let got = sink.messages();
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].from, "alerts@demo.test");
        assert_eq!(got[1].to, vec!["rep-1@demo.test".to_owned()]);
        assert_eq!(
            got[1].header("subject").as_deref(),
            Some("Lead 1 needs you")
        );
        assert!(
            got[0].data.contains(".starts with a dot"),
            "{}",
            got[0].data
        );
        sink.shutdown();
    }
}
