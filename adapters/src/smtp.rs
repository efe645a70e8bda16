//! Email over SMTP (`lettre`): one connection per message, to a server the tenant configures.
//!
//! The host is tenant-supplied, so it is resolved through the `OutboundGuard` and the
//! connection goes to an address the guard checked (TLS still verifies the certificate against
//! the host's name). The session is driven step by step so a failure says whether the message
//! can have been accepted:
//!
//! | failure | `SmtpError` |
//! |---|---|
//! | no connection, TLS or greeting failure, a 4xx anywhere before the message ends | `Transient`: nothing was accepted, try again |
//! | a 5xx to RCPT TO: the server refuses the recipient (a bounce at send time) | `RecipientRefused`, with the code |
//! | a 5xx anywhere else (greeting, AUTH, MAIL, DATA, the message) | `Permanent` |
//! | the message was written and no answer came (closed, timed out) | `Unknown`: it may have been accepted; never sent again |
//! | the guard refuses the host | `Permanent` |

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use lettre::message::header::{ContentTransferEncoding, ContentType, HeaderName, HeaderValue};
use lettre::message::{Body, Mailbox};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::Address;
use serde::{Deserialize, Serialize};

use crate::outbound::{OutboundError, OutboundGuard};

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// Plain text throughout (a relay on a trusted network only).
    None,
    /// Plain text upgraded by STARTTLS, which the server must offer (usually port 587).
    Starttls,
    /// TLS from the first byte (usually port 465).
    Tls,
}

impl SmtpTls {
    pub const ALL: [SmtpTls; 3] = [SmtpTls::None, SmtpTls::Starttls, SmtpTls::Tls];

    pub fn as_str(self) -> &'static str {
        match self {
            SmtpTls::None => "none",
            SmtpTls::Starttls => "starttls",
            SmtpTls::Tls => "tls",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// A server and how to sign in to it. `Debug` never shows the password.
#[derive(Clone)]
pub struct SmtpServer {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    /// User name and password, when the server wants AUTH.
    pub credentials: Option<(String, String)>,
    /// Per step (connect, each command, the message).
    pub timeout: Duration,
}

impl fmt::Debug for SmtpServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpServer")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.credentials.as_ref().map(|(u, _)| u))
            .finish()
    }
}

/// One plain-text message to one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub from: String,
    pub from_name: Option<String>,
    pub to: String,
    pub to_name: Option<String>,
    pub subject: String,
    pub body: String,
    /// The `Message-ID` (without angle brackets): stable for one intended message, so a
    /// mailbox that sees it twice can tell.
    pub message_id: String,
    /// More headers, as (name, value): e.g. `List-Unsubscribe`. ASCII names and values.
    pub headers: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmtpError {
    /// Nothing was accepted: it may be tried again.
    #[error("not sent, try again: {0}")]
    Transient(String),
    /// Refused for good (an SMTP 5xx, an address that is no address, a host not allowed).
    #[error("refused: {0}")]
    Permanent(String),
    /// The server refused the recipient for good (a 5xx to RCPT TO): `code` is its reply code,
    /// `reason` its words (with the enhanced status code, when it gave one).
    #[error("recipient refused ({code}): {reason}")]
    RecipientRefused { code: u16, reason: String },
    /// The message was written but no answer came: the server may have accepted it.
    #[error("outcome unknown: {0}")]
    Unknown(String),
}

/// An email address as `lettre` reads it (`local@domain`), trimmed; the error says why not.
pub fn parse_address(raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    if raw.chars().count() > 254 {
        return Err("must be at most 254 characters".into());
    }
    raw.parse::<Address>()
        .map(|a| a.to_string())
        .map_err(|e| format!("not an email address: {e}"))
}

fn mailbox(name: Option<&str>, address: &str) -> Result<Mailbox, SmtpError> {
    let address: Address = address
        .parse()
        .map_err(|e| SmtpError::Permanent(format!("bad address {address:?}: {e}")))?;
    Ok(Mailbox::new(name.map(str::to_owned), address))
}

/// The message as it goes on the wire, and its envelope's sender and recipient. The body goes
/// as written (7 bit; 8 bit when it is not ASCII and the server takes `eight_bit`), so a link
/// in it reaches the reader whole; quoted-printable only for a server without 8BITMIME.
pub fn render(email: &Email, eight_bit: bool) -> Result<(Vec<u8>, Address, Address), SmtpError> {
    let from = mailbox(email.from_name.as_deref(), &email.from)?;
    let to = mailbox(email.to_name.as_deref(), &email.to)?;
    let (sender, recipient) = (from.email.clone(), to.email.clone());
    let mut builder = lettre::Message::builder()
        .from(from)
        .to(to)
        .subject(email.subject.clone())
        .message_id(Some(format!("<{}>", email.message_id)))
        .header(ContentType::TEXT_PLAIN);
    for (name, value) in &email.headers {
        if !value.is_ascii() || value.contains(['\r', '\n']) {
            return Err(SmtpError::Permanent(format!("bad header value for {name}")));
        }
        let name = HeaderName::new_from_ascii(name.clone())
            .map_err(|e| SmtpError::Permanent(format!("bad header name {name:?}: {e}")))?;
        builder = builder.raw_header(HeaderValue::new(name, value.clone()));
    }
    let message = builder
        .body(body(&email.body, eight_bit))
        .map_err(|e| SmtpError::Permanent(format!("cannot build the message: {e}")))?;
    Ok((message.formatted(), sender, recipient))
}

fn body(text: &str, eight_bit: bool) -> Body {
    // lettre's own choice wraps lines over 76 characters (quoted-printable), breaking links;
    // SMTP allows 998, so text whose lines fit goes as it is.
    let crlf = text
        .replace("\r\n", "\n")
        .replace('\r', "\n")
        .replace('\n', "\r\n");
    let fits = !crlf.contains('\0') && crlf.split("\r\n").all(|line| line.len() <= 998);
    match (fits, crlf.is_ascii(), eight_bit) {
        (true, true, _) => {
            Body::dangerous_pre_encoded(crlf.into_bytes(), ContentTransferEncoding::SevenBit)
        }
        (true, false, true) => {
            Body::dangerous_pre_encoded(crlf.into_bytes(), ContentTransferEncoding::EightBit)
        }
        _ => Body::new_with_encoding(text.to_owned(), ContentTransferEncoding::QuotedPrintable)
            .unwrap_or_else(|_| Body::new(text.to_owned())),
    }
}

/// What a failed step means: a 5xx is permanent, anything else before the message was
/// accepted is transient.
fn before_end(step: &str, e: lettre::transport::smtp::Error) -> SmtpError {
    if e.is_permanent() {
        SmtpError::Permanent(format!("{step}: {e}"))
    } else {
        SmtpError::Transient(format!("{step}: {e}"))
    }
}

async fn step<T>(
    timeout: Duration,
    what: &str,
    fut: impl std::future::Future<Output = Result<T, lettre::transport::smtp::Error>>,
) -> Result<T, SmtpError> {
    match tokio::time::timeout(timeout, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(before_end(what, e)),
        Err(_) => Err(SmtpError::Transient(format!("{what}: timed out"))),
    }
}

/// Sends `email` through `server`; `Ok` carries the server's answer to the message (its queue
/// id, usually). `hello` is the name we give in EHLO.
pub async fn send(
    server: &SmtpServer,
    guard: &OutboundGuard,
    hello: &str,
    email: &Email,
) -> Result<String, SmtpError> {
    // A message that cannot be written is refused before any connection.
    render(email, false)?;
    let addrs = guard
        .resolve_host(&server.host, server.port)
        .await
        .map_err(|e| match e {
            OutboundError::Unresolved { .. } => SmtpError::Transient(e.to_string()),
            OutboundError::BadUrl(_) | OutboundError::Blocked { .. } => {
                SmtpError::Permanent(e.to_string())
            }
        })?;
    let addr: SocketAddr = addrs[0];
    let tls = || {
        TlsParameters::new(server.host.clone())
            .map_err(|e| SmtpError::Permanent(format!("tls settings: {e}")))
    };
    let hello = ClientId::Domain(hello.to_owned());
    let implicit = match server.tls {
        SmtpTls::Tls => Some(tls()?),
        SmtpTls::None | SmtpTls::Starttls => None,
    };
    let t = server.timeout;
    let mut conn = step(
        t,
        "connect",
        AsyncSmtpConnection::connect_tokio1(addr, Some(t), &hello, implicit, None),
    )
    .await?;
    let result = session(&mut conn, server, &hello, email, tls).await;
    // The answer is known either way; a failed QUIT changes nothing.
    let _ = tokio::time::timeout(t, conn.quit()).await;
    result
}

async fn session(
    conn: &mut AsyncSmtpConnection,
    server: &SmtpServer,
    hello: &ClientId,
    email: &Email,
    tls: impl Fn() -> Result<TlsParameters, SmtpError>,
) -> Result<String, SmtpError> {
    let t = server.timeout;
    if server.tls == SmtpTls::Starttls {
        if !conn.can_starttls() {
            return Err(SmtpError::Permanent(
                "the server does not offer STARTTLS".into(),
            ));
        }
        step(t, "starttls", conn.starttls(tls()?, hello)).await?;
    }
    if let Some((user, password)) = &server.credentials {
        let credentials = Credentials::new(user.clone(), password.clone());
        step(
            t,
            "auth",
            conn.auth(&[Mechanism::Plain, Mechanism::Login], &credentials),
        )
        .await?;
    }
    let eight_bit = conn.server_info().supports_feature(Extension::EightBitMime);
    let (bytes, sender, recipient) = render(email, eight_bit)?;
    let params = if bytes.is_ascii() {
        vec![]
    } else {
        vec![MailParameter::Body(MailBodyParameter::EightBitMime)]
    };
    step(
        t,
        "mail from",
        conn.command(Mail::new(Some(sender), params)),
    )
    .await?;
    // A permanent refusal of the recipient is the address's own answer (a bounce): said apart
    // from the others, with its code, so the caller can judge the address.
    match tokio::time::timeout(t, conn.command(Rcpt::new(recipient, vec![]))).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) if e.is_permanent() => {
            let code = e
                .status()
                .and_then(|c| c.to_string().parse().ok())
                .unwrap_or(550);
            return Err(SmtpError::RecipientRefused {
                code,
                reason: format!("rcpt to: {e}"),
            });
        }
        Ok(Err(e)) => return Err(before_end("rcpt to", e)),
        Err(_) => return Err(SmtpError::Transient("rcpt to: timed out".into())),
    }
    step(t, "data", conn.command(Data)).await?;
    // From here the server may have the message: only its answer tells.
    match tokio::time::timeout(t, conn.message(&bytes)).await {
        Ok(Ok(answer)) => Ok(answer.message().collect::<Vec<_>>().join(" ")),
        Ok(Err(e)) if e.is_permanent() => Err(SmtpError::Permanent(format!("message: {e}"))),
        Ok(Err(e)) if e.is_transient() => Err(SmtpError::Transient(format!("message: {e}"))),
        Ok(Err(e)) => Err(SmtpError::Unknown(format!("message: {e}"))),
        Err(_) => Err(SmtpError::Unknown("message: no answer in time".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email() -> Email {
        Email {
            from: "alerts@acme.test".into(),
            from_name: Some("Acme Alerts".into()),
            to: "ana@acme.test".into(),
            to_name: Some("ana".into()),
            subject: "Lead waiting: Ana Lima".into(),
            body: "Ana Lima is waiting.\r\nhttps://x/console/opportunities/1".into(),
            message_id: "n1@neuronx".into(),
            headers: vec![(
                "List-Unsubscribe-Post".into(),
                "List-Unsubscribe=One-Click".into(),
            )],
        }
    }

    #[test]
    fn addresses_are_read_as_lettre_reads_them() {
        assert_eq!(
            parse_address(" ana@acme.test ").as_deref(),
            Ok("ana@acme.test")
        );
        for bad in ["", "ana", "ana@", "@acme.test", "a b@acme.test"] {
            assert!(parse_address(bad).is_err(), "{bad:?}");
        }
        assert!(parse_address(&format!("{}@acme.test", "a".repeat(260))).is_err());
    }

    #[test]
    fn a_message_carries_its_headers_and_a_stable_message_id() {
        let (bytes, sender, recipient) = render(&email(), false).unwrap_or_else(|e| panic!("{e}"));
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("Subject: Lead waiting: Ana Lima"), "{text}");
        assert!(text.contains("Message-ID: <n1@neuronx>"), "{text}");
        assert!(
            text.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"),
            "{text}"
        );
        let injected = Email {
            headers: vec![("X-A".into(), "b\r\nBcc: c@d.test".into())],
            ..email()
        };
        assert!(matches!(
            render(&injected, false),
            Err(SmtpError::Permanent(_))
        ));
        assert!(
            text.contains("To: \"ana\" <ana@acme.test>")
                || text.contains("To: ana <ana@acme.test>"),
            "{text}"
        );
        assert_eq!(sender.to_string(), "alerts@acme.test");
        assert_eq!(recipient.to_string(), "ana@acme.test");
        let bad = Email {
            to: "nobody".into(),
            ..email()
        };
        assert!(matches!(render(&bad, false), Err(SmtpError::Permanent(_))));
        // A long link stays whole, in ASCII and (with 8BITMIME) in UTF-8.
        let link = format!(
            "https://nx.example.com/console/opportunities/{}",
            "0".repeat(60)
        );
        for (name, eight_bit) in [("Ana", false), ("José", true)] {
            let long = Email {
                body: format!("{name} waits: {link}"),
                ..email()
            };
            let (bytes, _, _) = render(&long, eight_bit).unwrap_or_else(|e| panic!("{e}"));
            let text = String::from_utf8_lossy(&bytes);
            assert!(text.contains(&link), "{text}");
        }
    }

    #[test]
    fn tls_modes_read_their_names_and_the_password_is_never_shown() {
        for t in SmtpTls::ALL {
            assert_eq!(SmtpTls::parse(t.as_str()), Some(t));
        }
        assert_eq!(SmtpTls::parse("ssl"), None);
        let server = SmtpServer {
            host: "smtp.acme.test".into(),
            port: 587,
            tls: SmtpTls::Starttls,
            credentials: Some(("ana".into(), "hunter2".into())),
            timeout: Duration::from_secs(1),
        };
        let shown = format!("{server:?}");
        assert!(
            shown.contains("ana") && !shown.contains("hunter2"),
            "{shown}"
        );
    }

    #[tokio::test]
    async fn a_host_the_guard_refuses_is_a_permanent_failure() {
        let server = SmtpServer {
            host: "169.254.169.254".into(),
            port: 25,
            tls: SmtpTls::None,
            credentials: None,
            timeout: Duration::from_secs(1),
        };
        let err = send(&server, &OutboundGuard::default(), "localhost", &email()).await;
        assert!(
            matches!(err, Err(SmtpError::Permanent(ref m)) if m.contains("metadata")),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn no_server_listening_is_transient() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or(1);
        let server = SmtpServer {
            host: "127.0.0.1".into(),
            port,
            tls: SmtpTls::None,
            credentials: None,
            timeout: Duration::from_secs(2),
        };
        let guard = OutboundGuard::from_allow_list(&["127.0.0.0/8"]).unwrap_or_default();
        let err = send(&server, &guard, "localhost", &email()).await;
        assert!(matches!(err, Err(SmtpError::Transient(_))), "{err:?}");
    }
}
