//! The one guard for every host a tenant supplies (a Twilio-compatible `base_url` today; SMTP
//! hosts, GoHighLevel and webhook URLs next): a request carrying the tenant's credentials must
//! never reach this machine, the private network or a cloud metadata service because a tenant
//! typed that address.
//!
//! Two checks, because either alone has a hole: a URL whose host is an address literal is
//! checked when it is accepted (the HTTP client connects to a literal without resolving it),
//! and every name is checked after it resolves, at connect time, by the client's resolver, so a
//! name that resolved to a public address when saved and to a private one later (DNS
//! rebinding) is still refused. Redirects are never followed: a 3xx to an internal address
//! would walk around both. An allow-list of networks in the configuration opens exceptions
//! (the tests and the simulators on loopback use it).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Networks no tenant-supplied host may reach, with the reason a refusal gives.
const BLOCKED: &[(&str, &str)] = &[
    ("0.0.0.0/8", "an unspecified address"),
    ("10.0.0.0/8", "a private address"),
    ("100.64.0.0/10", "a shared (carrier-grade NAT) address"),
    ("127.0.0.0/8", "a loopback address"),
    ("169.254.0.0/16", "a link-local or metadata address"),
    ("172.16.0.0/12", "a private address"),
    ("192.0.0.0/24", "a protocol-assignment address"),
    ("192.168.0.0/16", "a private address"),
    ("198.18.0.0/15", "a benchmarking address"),
    ("224.0.0.0/4", "a multicast address"),
    ("240.0.0.0/4", "a reserved address"),
    ("::/128", "an unspecified address"),
    ("::1/128", "a loopback address"),
    ("64:ff9b::/96", "a NAT64 address"),
    ("fc00::/7", "a private (unique local) or metadata address"),
    ("fe80::/10", "a link-local address"),
    ("ff00::/8", "a multicast address"),
];

/// Networks (`10.0.0.0/8`) or bare addresses (one host), as configuration lists them; the
/// error names the entry.
pub fn parse_networks<S: AsRef<str>>(entries: &[S]) -> Result<Vec<IpNet>, String> {
    entries
        .iter()
        .map(|e| {
            let e = e.as_ref().trim();
            e.parse::<IpNet>()
                .or_else(|_| e.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("{e:?} is not a network (a.b.c.d/n) or an address"))
        })
        .collect()
}

/// Why an outbound address or URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboundError {
    #[error("{0}")]
    BadUrl(String),
    #[error("{host} resolves to {addr}, {why}; only public addresses are reached")]
    Blocked {
        host: String,
        addr: IpAddr,
        why: &'static str,
    },
    #[error("{host} could not be resolved: {reason}")]
    Unresolved { host: String, reason: String },
}

/// The guard: which addresses tenant-supplied hosts may reach. Cheap to clone.
#[derive(Debug, Clone)]
pub struct OutboundGuard {
    blocked: Arc<[(IpNet, &'static str)]>,
    allowed: Arc<[IpNet]>,
}

impl Default for OutboundGuard {
    /// Public addresses only, no exceptions.
    fn default() -> Self {
        Self::new(Vec::new())
    }
}

impl OutboundGuard {
    /// A guard that lets through `allowed` networks in spite of the blocked ranges.
    pub fn new(allowed: Vec<IpNet>) -> Self {
        let blocked: Vec<(IpNet, &'static str)> = BLOCKED
            .iter()
            .filter_map(|(net, why)| net.parse().ok().map(|n| (n, *why)))
            .collect();
        Self {
            blocked: blocked.into(),
            allowed: allowed.into(),
        }
    }

    /// Parses the configuration's allow-list (`"127.0.0.0/8"`, or a bare address for one
    /// host); the error names the entry.
    pub fn from_allow_list<S: AsRef<str>>(entries: &[S]) -> Result<Self, String> {
        parse_networks(entries).map(Self::new)
    }

    /// Why `addr` may not be reached, or `None` when it may.
    pub fn refusal(&self, addr: IpAddr) -> Option<&'static str> {
        // An IPv4 address written as IPv6 (::ffff:10.0.0.1) is judged as the IPv4 it is.
        let addr = match addr {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(addr),
            v4 => v4,
        };
        if self.allowed.iter().any(|n| n.contains(&addr)) {
            return None;
        }
        self.blocked
            .iter()
            .find(|(net, _)| net.contains(&addr))
            .map(|(_, why)| *why)
    }

    /// Checks a URL as it is accepted: http or https, a host, no credentials in it, and a host
    /// that is an address literal must be one the guard permits. Names are checked again when
    /// they resolve (`client_builder`).
    pub fn check_url(&self, raw: &str) -> Result<url::Url, OutboundError> {
        let url = url::Url::parse(raw).map_err(|e| OutboundError::BadUrl(format!("{e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(OutboundError::BadUrl("must be an http(s) URL".into()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(OutboundError::BadUrl(
                "must not carry a user name or password".into(),
            ));
        }
        let literal = match url.host() {
            None => return Err(OutboundError::BadUrl("must name a host".into())),
            Some(url::Host::Ipv4(a)) => Some(IpAddr::V4(a)),
            Some(url::Host::Ipv6(a)) => Some(IpAddr::V6(a)),
            Some(url::Host::Domain(_)) => None,
        };
        if let Some(addr) = literal {
            if let Some(why) = self.refusal(addr) {
                return Err(OutboundError::Blocked {
                    host: url.host_str().unwrap_or_default().to_owned(),
                    addr,
                    why,
                });
            }
        }
        Ok(url)
    }

    /// Resolves the URL's host now and checks every address, so a host that can only lead
    /// inside is refused when it is saved, with a clear reason (connect time checks again).
    pub async fn check_resolved(&self, raw: &str) -> Result<url::Url, OutboundError> {
        let url = self.check_url(raw)?;
        if let Some(url::Host::Domain(host)) = url.host() {
            let port = url.port_or_known_default().unwrap_or(443);
            self.resolve_checked(host, port).await?;
        }
        Ok(url)
    }

    /// Resolves `host` (a name or an address literal) and checks every address it leads to,
    /// for a client that connects by address itself (SMTP): it then connects to one of these,
    /// never resolving again.
    pub async fn resolve_host(
        &self,
        host: &str,
        port: u16,
    ) -> Result<Vec<SocketAddr>, OutboundError> {
        self.resolve_checked(host, port).await
    }

    async fn resolve_checked(
        &self,
        host: &str,
        port: u16,
    ) -> Result<Vec<SocketAddr>, OutboundError> {
        let found: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| OutboundError::Unresolved {
                host: host.to_owned(),
                reason: e.to_string(),
            })?
            .collect();
        if found.is_empty() {
            return Err(OutboundError::Unresolved {
                host: host.to_owned(),
                reason: "no addresses".into(),
            });
        }
        // Every address must pass: a client may connect to any of them.
        for a in &found {
            if let Some(why) = self.refusal(a.ip()) {
                return Err(OutboundError::Blocked {
                    host: host.to_owned(),
                    addr: a.ip(),
                    why,
                });
            }
        }
        Ok(found)
    }

    /// An HTTP client builder for tenant-supplied hosts: names resolve through the guard and
    /// redirects are not followed. Callers add their timeouts and build.
    pub fn client_builder(&self) -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver(self.clone())))
            .redirect(reqwest::redirect::Policy::none())
            // A proxy from the environment would resolve names itself, past the guard.
            .no_proxy()
    }
}

/// The resolver `client_builder` installs.
struct GuardedResolver(OutboundGuard);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.0.clone();
        Box::pin(async move {
            // The port is replaced by the connector; any will do for the lookup.
            let found = guard.resolve_checked(name.as_str(), 0).await?;
            let addrs: Addrs = Box::new(found.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn internal_ranges_are_refused_and_public_ones_pass() {
        let g = OutboundGuard::default();
        for blocked in [
            "127.0.0.1",
            "10.1.2.3",
            "172.20.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
        ] {
            assert!(g.refusal(ip(blocked)).is_some(), "{blocked}");
        }
        for public in ["8.8.8.8", "52.1.2.3", "2606:4700::1111"] {
            assert_eq!(g.refusal(ip(public)), None, "{public}");
        }
    }

    #[test]
    fn the_allow_list_opens_exceptions_only() {
        let g = OutboundGuard::from_allow_list(&["127.0.0.0/8", "10.9.9.9"]).unwrap();
        assert_eq!(g.refusal(ip("127.0.0.1")), None);
        assert_eq!(g.refusal(ip("10.9.9.9")), None);
        assert!(g.refusal(ip("10.9.9.10")).is_some());
        assert!(g.refusal(ip("169.254.169.254")).is_some());
        let err = OutboundGuard::from_allow_list(&["localhost"]).unwrap_err();
        assert!(err.contains("localhost"), "{err}");
    }

    #[test]
    fn urls_are_checked_for_scheme_credentials_and_literal_hosts() {
        let g = OutboundGuard::default();
        for bad in [
            "ftp://example.com",
            "http://user:pw@example.com",
            "http://127.0.0.1:8080",
            "http://[::1]/x",
            "http://169.254.169.254/latest/meta-data",
            "http://2130706433/", // 127.0.0.1 as one number
            "http://0x7f.1/",
            "not a url",
        ] {
            assert!(g.check_url(bad).is_err(), "{bad}");
        }
        assert!(g.check_url("https://api.twilio.com").is_ok());
    }

    #[tokio::test]
    async fn a_name_resolving_inside_is_refused_when_saved_and_at_connect_time() {
        let g = OutboundGuard::default();
        let err = g.check_resolved("http://localhost:9/").await.unwrap_err();
        assert!(matches!(err, OutboundError::Blocked { .. }), "{err}");

        // A server on loopback, reached by name through the guarded client: refused before any
        // byte is sent. The same client with loopback allowed reaches it.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                // The request head first (a GET fits in one read), then the answer.
                let mut head = [0u8; 4096];
                let _ = sock.read(&mut head).await;
                let _ = sock
                    .write_all(b"HTTP/1.1 302 Found\r\nlocation: http://10.0.0.1/\r\ncontent-length: 0\r\n\r\n")
                    .await;
            }
        });
        let url = format!("http://localhost:{port}/");
        let refused = g.client_builder().build().unwrap().get(&url).send().await;
        assert!(refused.is_err(), "reached loopback through a name");

        let open = OutboundGuard::from_allow_list(&["127.0.0.0/8", "::1/128"]).unwrap();
        let resp = open
            .client_builder()
            .build()
            .unwrap()
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("{e:?}"))
            .unwrap();
        assert_eq!(resp.status(), 302, "the redirect is returned, not followed");
    }
}
