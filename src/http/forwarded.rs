//! Who the client is when requests come through reverse proxies: `X-Forwarded-For` is believed
//! only from a peer in `server.trusted_proxies`, and then only up to the first hop that is not
//! itself a trusted proxy. Anyone can write the header; only the hops our own proxies appended
//! are facts.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::http::HeaderMap;
use ipnet::IpNet;

const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// The client's address as resolved for a request (a request extension the server sets).
#[derive(Clone, Copy, Debug)]
pub struct Client(pub IpAddr);

/// The trusted proxies' networks. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(Arc<[IpNet]>);

impl TrustedProxies {
    pub fn new(nets: Vec<IpNet>) -> Self {
        Self(nets.into())
    }

    fn trusts(&self, addr: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&addr))
    }

    /// The client of a request that arrived from `peer`: the peer itself unless it is a trusted
    /// proxy; else the rightmost `X-Forwarded-For` hop that is not a trusted proxy. A hop that
    /// is not an address ends the walk at the last address read, since whatever wrote it was
    /// not one of our proxies; when every hop is trusted, the leftmost one is the client.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        // Several headers count as one list, in order (RFC 9110 §5.3).
        let hops: Vec<&str> = headers
            .get_all(X_FORWARDED_FOR)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            let Some(addr) = parse_hop(hop) else {
                return client;
            };
            client = addr;
            if !self.trusts(addr) {
                return addr;
            }
        }
        client
    }
}

/// `203.0.113.7`, `203.0.113.7:4711`, `2001:db8::1` or `[2001:db8::1]:4711`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .or_else(|_| hop.parse::<SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn proxies(nets: &[&str]) -> TrustedProxies {
        TrustedProxies::new(nets.iter().map(|n| n.parse().unwrap()).collect())
    }

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(X_FORWARDED_FOR, v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let t = proxies(&["10.0.0.0/8"]);
        let h = headers(&["198.51.100.1"]);
        assert_eq!(t.client(ip("203.0.113.9"), &h), ip("203.0.113.9"));
        assert_eq!(
            TrustedProxies::default().client(ip("10.0.0.1"), &h),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn a_trusted_peer_names_the_rightmost_untrusted_hop() {
        let t = proxies(&["10.0.0.0/8"]);
        // The client made up the first entry; our proxies appended the others.
        let h = headers(&["1.1.1.1, 203.0.113.7", "10.0.0.5"]);
        assert_eq!(t.client(ip("10.0.0.2"), &h), ip("203.0.113.7"));
        let h = headers(&["[2001:db8::7]:4711"]);
        assert_eq!(t.client(ip("10.0.0.2"), &h), ip("2001:db8::7"));
        // An IPv4 peer seen through a dual-stack socket is still a trusted proxy.
        let h = headers(&["203.0.113.7:80"]);
        assert_eq!(t.client(ip("::ffff:10.0.0.2"), &h), ip("203.0.113.7"));
    }

    #[test]
    fn garbage_or_an_all_trusted_chain_stops_at_what_is_known() {
        let t = proxies(&["10.0.0.0/8"]);
        assert_eq!(
            t.client(ip("10.0.0.2"), &headers(&["unknown, 10.0.0.9"])),
            ip("10.0.0.9")
        );
        assert_eq!(
            t.client(ip("10.0.0.2"), &headers(&["10.0.0.8, 10.0.0.9"])),
            ip("10.0.0.8")
        );
        assert_eq!(t.client(ip("10.0.0.2"), &HeaderMap::new()), ip("10.0.0.2"));
    }
}
