//! A real SMTP server on loopback that keeps every message it accepts: the demo's mailbox.
//!
//! `neuronx demo` runs in one process with no outside service, yet its summary counts the emails
//! NeuronX sent (notices to reps, emails to leads). This server speaks SMTP on a TCP port, so the
//! engine's own client (`smtp::send`, through the outbound guard) reaches it exactly as it would
//! reach a tenant's relay. The protocol itself (commands, states, dot-stuffing, replies) is the
//! `mailin` crate's; this file only accepts connections, bounds them and keeps what arrives. It
//! lives in the demo's crate, not the product's. Tests use Python's `aiosmtpd` instead
//! (`tests/common/smtp.rs`); the demo cannot ask for Python.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use mailin::{Action, Handler, Response, SessionBuilder};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The longest line the sink reads (SMTP allows 1,000 octets): a longer one ends the session.
const MAX_LINE: u64 = 8 * 1024;
/// The largest message kept: a larger one is refused (552) when its data ends, and the session
/// with it.
const MAX_MESSAGE: usize = 1024 * 1024;
/// A client that neither sends nor reads for this long is dropped, so a stuck connection
/// cannot hold a task forever.
const IDLE: Duration = Duration::from_secs(60);
/// The pause after a failed accept (out of file descriptors, say) before the next one, so the
/// loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

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
        neuronx_adapters::mail_relay_sim::header(&self.data, name)
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
                let (stream, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        tracing::warn!(error = %e, "mail sink could not accept a connection");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
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
        self.read(<[ReceivedMail]>::to_vec)
    }

    /// Reads the messages accepted so far without copying them (the demo counts them twice a
    /// second).
    pub fn read<T>(&self, f: impl FnOnce(&[ReceivedMail]) -> T) -> T {
        f(&self.mailbox.lock().unwrap_or_else(PoisonError::into_inner))
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
    /// The message outgrew `MAX_MESSAGE`: the rest is read and dropped, and its end refused.
    too_large: bool,
}

impl Handler for Receiving {
    fn data_start(&mut self, _domain: &str, from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.from = from.to_owned();
        self.to = to.to_vec();
        self.data.clear();
        self.too_large = false;
        mailin::response::OK
    }

    fn data(&mut self, buf: &[u8]) -> io::Result<()> {
        // Not an error here: mailin would answer each further line while the client is still
        // writing the message. The refusal comes once, at its end.
        if self.data.len() + buf.len() > MAX_MESSAGE {
            self.too_large = true;
        } else if !self.too_large {
            self.data.extend_from_slice(buf);
        }
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        if std::mem::take(&mut self.too_large) {
            self.data.clear();
            return Response::custom(552, "message too large".into());
        }
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
        too_large: false,
    };
    let mut session = SessionBuilder::new("neuronx-mail-sink").build(peer, handler);
    let idle = || io::Error::new(io::ErrorKind::TimedOut, "client idle");
    let greeting = session.greeting().buffer()?;
    tokio::time::timeout(IDLE, write.write_all(&greeting))
        .await
        .map_err(|_| idle())??;
    let mut line = Vec::with_capacity(128);
    loop {
        line.clear();
        let n = tokio::time::timeout(
            IDLE,
            (&mut read).take(MAX_LINE).read_until(b'\n', &mut line),
        )
        .await
        .map_err(|_| idle())??;
        if n == 0 {
            return Ok(());
        }
        // A line cut at the limit would reach mailin as two (and a piece that is "." would end
        // a message early): the session ends instead.
        let (response, last) = if line.last() != Some(&b'\n') {
            (Response::custom(500, "line too long".into()), true)
        } else {
            let response = session.process(&line);
            // No STARTTLS is offered, so an upgrade request is answered and the session ends;
            // so does a message refused as too large (mailin answers nothing after it).
            let last = matches!(response.action, Action::Close | Action::UpgradeTls)
                || response.code == 552;
            (response, last)
        };
        if response.action != Action::NoReply || last {
            tokio::time::timeout(IDLE, write.write_all(&response.buffer()?))
                .await
                .map_err(|_| idle())??;
        }
        if last {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use neuronx_adapters::outbound::OutboundGuard;
    use neuronx_adapters::smtp::{self, Email, SmtpServer, SmtpTls};
    use tokio::io::AsyncReadExt;

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

    /// Talks SMTP by hand: sends `lines`, answers what the server wrote until it closed.
    async fn converse(sink: &MailSink, lines: &[Vec<u8>]) -> String {
        let mut stream = TcpStream::connect(sink.addr).await.unwrap();
        for line in lines {
            stream.write_all(line).await.unwrap();
        }
        // Until the server closes (or resets), or is silent for 5 s.
        let mut answer = Vec::new();
        let mut chunk = [0u8; 4096];
        while let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk)).await
        {
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&chunk[..n]);
        }
        String::from_utf8_lossy(&answer).into_owned()
    }

    #[tokio::test]
    async fn an_oversized_message_or_line_is_refused_and_nothing_kept() {
        let sink = MailSink::start(TcpListener::bind("127.0.0.1:0").await.unwrap()).unwrap();
        let start = [
            b"EHLO t\r\n".to_vec(),
            b"MAIL FROM:<a@t.test>\r\n".to_vec(),
            b"RCPT TO:<b@t.test>\r\n".to_vec(),
            b"DATA\r\n".to_vec(),
        ];
        // Over a MiB in 1,000-octet lines, then the end: one 552, and the session ends.
        let mut big = start.to_vec();
        big.extend((0..1_100).map(|_| [vec![b'x'; 998], b"\r\n".to_vec()].concat()));
        big.push(b".\r\n".to_vec());
        big.push(b"QUIT\r\n".to_vec());
        let answer = converse(&sink, &big).await;
        assert!(
            answer.trim_end().ends_with("552 message too large"),
            "{answer}"
        );
        // A line past the limit: refused, and the session ends there.
        let mut long = start.to_vec();
        long.push([vec![b'y'; 9_000], b"\r\n.\r\n".to_vec()].concat());
        let answer = converse(&sink, &long).await;
        assert!(answer.trim_end().ends_with("500 line too long"), "{answer}");
        assert!(sink.messages().is_empty());
        sink.shutdown();
    }
}
