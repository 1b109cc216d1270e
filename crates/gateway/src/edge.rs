//! What the gateway checks about a request before anything else: whether it
//! was meant for this gateway (`Host`), and which client address it comes
//! from (for [`crate::limits`]).
//!
//! # Host
//!
//! On every `/api/` route, `Host` must be one of (else 421 `Misdirected
//! request`, before any session is issued or upstream contacted):
//!
//! * the listen address (`127.0.0.1:3000`; when listening on `0.0.0.0` or
//!   `[::]`, any IP literal with the listen port);
//! * a loopback name with the listen port: `localhost`, `127.0.0.0/8`, `[::1]`;
//! * the host (and port: given, or the scheme's default) of
//!   [`crate::GatewayConfig::public_url`] (`--public-url`).
//!
//! A page on another name, even one whose DNS now points at the gateway (DNS
//! rebinding: `Host: rebind.example:3000`), is refused. Static files are
//! served whatever the Host (they hold nothing but the page).
//!
//! # Client address
//!
//! The peer's IP, unless the peer is one of the configured trusted proxies
//! ([`crate::GatewayConfig::trusted_proxies`], `--trusted-proxy CIDR`,
//! none by default: `X-Forwarded-For` is never believed otherwise). From a
//! trusted proxy, the client is the right-most `X-Forwarded-For` address that
//! is not itself a trusted proxy (the left-most when all are); entries that
//! do not parse end the walk (what lies left of them is client-controlled).

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;
use ipnet::IpNet;
use url::{Host, Url};

use dreamgate_client::is_loopback_host;

use crate::limits::Limiter;

/// `X-Forwarded-For`.
pub const X_FORWARDED_FOR: http::HeaderName = http::HeaderName::from_static("x-forwarded-for");

/// Which `Host` values name this gateway (see the module docs).
#[derive(Debug, Clone)]
pub struct HostPolicy {
    listen: SocketAddr,
    public: Option<(String, u16)>,
}

impl HostPolicy {
    /// The policy of a gateway listening on `listen`, reached from outside at `public_url`.
    pub fn new(listen: SocketAddr, public_url: Option<&Url>) -> Self {
        let public = public_url.and_then(|u| {
            let host = u.host_str()?.trim_end_matches('.').to_ascii_lowercase();
            Some((host, u.port_or_known_default()?))
        });
        Self { listen, public }
    }

    /// Whether a `Host` header value names this gateway.
    pub fn allows(&self, host_header: &str) -> bool {
        let Some((host, port)) = split_host(host_header) else { return false };
        if let Some((public_host, public_port)) = &self.public {
            let bare = host.trim_start_matches('[').trim_end_matches(']');
            let public_bare = public_host.trim_start_matches('[').trim_end_matches(']');
            if bare == public_bare && port.unwrap_or(*public_port) == *public_port {
                return true;
            }
        }
        if port.unwrap_or(80) != self.listen.port() {
            return false;
        }
        let ip = match Host::parse(&host) {
            Ok(Host::Domain(d)) => return is_loopback_host(&Host::Domain(d.as_str())),
            Ok(Host::Ipv4(v4)) => IpAddr::V4(v4),
            Ok(Host::Ipv6(v6)) => IpAddr::V6(v6),
            Err(_) => return false,
        };
        if ip.is_loopback() {
            return true;
        }
        ip == self.listen.ip() || self.listen.ip().is_unspecified()
    }
}

/// `host[:port]`, lower-cased, trailing dot removed; `None` when malformed.
fn split_host(raw: &str) -> Option<(String, Option<u16>)> {
    let raw = raw.trim();
    if raw.is_empty() || raw.contains(['@', '/', '?', '#', ' ', '\\']) {
        return None;
    }
    let authority: http::uri::Authority = raw.parse().ok()?;
    let host = authority.host().trim_end_matches('.').to_ascii_lowercase();
    if host.is_empty() {
        return None;
    }
    let port = match authority.port() {
        Some(p) => Some(p.as_str().parse::<u16>().ok()?),
        None if raw.ends_with(':') => return None,
        None => None,
    };
    Some((host, port))
}

/// The client address of a request from `peer` (see the module docs).
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let mut hops: Vec<&str> = Vec::new();
    for value in headers.get_all(X_FORWARDED_FOR) {
        let Ok(v) = value.to_str() else { return peer };
        hops.extend(v.split(','));
    }
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Some(ip) = parse_hop(hop) else { break };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    client
}

/// One `X-Forwarded-For` entry: an IP, possibly with a port (`1.2.3.4:5`, `[::1]:5`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip);
    }
    hop.parse::<SocketAddr>().ok().map(|s| s.ip())
}

/// Parses a trusted-proxy entry: a CIDR (`10.0.0.0/8`) or a single address.
pub fn parse_proxy(raw: &str) -> Option<IpNet> {
    let raw = raw.trim();
    raw.parse::<IpNet>().ok().or_else(|| raw.parse::<IpAddr>().ok().map(IpNet::from))
}

/// The request-edge checks shared by every request: the Host policy, the
/// trusted proxies and the per-client limiter.
#[derive(Debug, Clone)]
pub struct Edge {
    /// Which `Host` values are accepted on `/api/`.
    pub hosts: HostPolicy,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Per-client limits.
    pub limiter: Limiter,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(listen: &str, public: Option<&str>) -> HostPolicy {
        let public = public.map(|p| Url::parse(p).unwrap());
        HostPolicy::new(listen.parse().unwrap(), public.as_ref())
    }

    #[test]
    fn host_must_be_the_listen_address_a_loopback_name_or_the_public_origin() {
        let p = policy("127.0.0.1:3000", Some("https://Dream.Example.com"));
        for ok in [
            "127.0.0.1:3000",
            "localhost:3000",
            "LOCALHOST:3000",
            "localhost.:3000",
            "127.0.0.2:3000",
            "[::1]:3000",
            "dream.example.com",
            "dream.example.com:443",
            "DREAM.example.com.",
        ] {
            assert!(p.allows(ok), "{ok}");
        }
        for bad in [
            "rebind.example:3000",
            "rebind.example",
            "localhost:3001",
            "localhost",
            "127.0.0.1",
            "10.0.0.1:3000",
            "dream.example.com:3000",
            "dream.example.com.evil:443",
            "app.localhost:3000",
            "user@localhost:3000",
            "localhost:3000/x",
            "localhost:",
            "",
            "[::1",
        ] {
            assert!(!p.allows(bad), "{bad}");
        }
        let any = policy("0.0.0.0:3000", None);
        assert!(any.allows("192.168.1.20:3000") && any.allows("localhost:3000"));
        assert!(!any.allows("rebind.example:3000") && !any.allows("192.168.1.20:80"));
        assert!(policy("127.0.0.1:80", None).allows("localhost"));
    }

    #[test]
    fn forwarded_for_only_from_trusted_proxies_right_most_untrusted() {
        let trusted = vec![parse_proxy("10.0.0.0/8").unwrap(), parse_proxy("127.0.0.1").unwrap()];
        let mut h = HeaderMap::new();
        h.append(X_FORWARDED_FOR, "6.6.6.6, 1.2.3.4".parse().unwrap());
        h.append(X_FORWARDED_FOR, "10.1.1.1".parse().unwrap());
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(client_address(ip("203.0.113.9"), &h, &trusted), ip("203.0.113.9"), "untrusted peer");
        assert_eq!(client_address(ip("127.0.0.1"), &h, &trusted), ip("1.2.3.4"));
        assert_eq!(client_address(ip("127.0.0.1"), &HeaderMap::new(), &trusted), ip("127.0.0.1"));
        let mut all = HeaderMap::new();
        all.insert(X_FORWARDED_FOR, "10.9.9.9, 10.2.2.2".parse().unwrap());
        assert_eq!(client_address(ip("10.0.0.1"), &all, &trusted), ip("10.9.9.9"));
        let mut junk = HeaderMap::new();
        junk.insert(X_FORWARDED_FOR, "6.6.6.6, garbage, 10.2.2.2".parse().unwrap());
        assert_eq!(client_address(ip("10.0.0.1"), &junk, &trusted), ip("10.2.2.2"), "stops at junk");
        let mut ported = HeaderMap::new();
        ported.insert(X_FORWARDED_FOR, "[2001:db8::1]:443".parse().unwrap());
        assert_eq!(client_address(ip("10.0.0.1"), &ported, &trusted), ip("2001:db8::1"));
        assert!(parse_proxy("not a cidr").is_none());
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        fn host_text() -> impl Strategy<Value = String> {
            let host = prop_oneof![
                Just("localhost"),
                Just("127.0.0.1"),
                Just("127.9.9.9"),
                Just("[::1]"),
                Just("rebind.example"),
                Just("192.168.1.20"),
                Just("dream.example.com"),
                Just("LOCALHOST."),
            ];
            let port =
                prop_oneof![Just(String::new()), Just(":3000".to_owned()), (0u32..70000).prop_map(|p| format!(":{p}"))];
            let tail = prop_oneof![Just(String::new()), "[@/?# \\\\:.\\[\\]]\\PC{0,6}"];
            prop_oneof![(host, port, tail).prop_map(|(h, p, t)| format!("{h}{p}{t}")), "\\PC{0,30}"]
        }

        proptest! {
            // Host comes from every client: never a panic; a gateway listening on
            // 127.0.0.1:3000 with a public URL accepts only loopback names on its port and
            // the public host on the public port.
            #[test]
            fn only_this_gateway_is_accepted(raw in host_text()) {
                let p = policy("127.0.0.1:3000", Some("https://dream.example.com"));
                if p.allows(&raw) {
                    let (host, port) = split_host(&raw).expect("an accepted Host parses");
                    let bare = host.trim_start_matches('[').trim_end_matches(']').to_owned();
                    let public = bare == "dream.example.com" && port.unwrap_or(443) == 443;
                    let loopback = port == Some(3000)
                        && (bare == "localhost" || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()));
                    prop_assert!(public || loopback, "{:?} accepted", raw);
                }
            }

            // X-Forwarded-For is client-controlled text: the answer is the peer or one
            // of the listed addresses, and the peer itself when it is not a trusted proxy.
            #[test]
            fn client_is_the_peer_or_a_listed_hop(
                hops in proptest::collection::vec(prop_oneof![
                    any::<[u8; 4]>().prop_map(|b| IpAddr::from(b).to_string()),
                    Just("10.1.2.3".to_owned()),
                    Just("[2001:db8::1]:443".to_owned()),
                    "\\PC{0,12}",
                ], 0..5),
                trusted_peer in any::<bool>(),
            ) {
                let trusted = vec![parse_proxy("10.0.0.0/8").unwrap()];
                let peer: IpAddr = if trusted_peer { "10.0.0.1" } else { "203.0.113.9" }.parse().unwrap();
                let header = hops.join(",");
                let mut h = HeaderMap::new();
                if let Ok(v) = header.parse() {
                    h.insert(X_FORWARDED_FOR, v);
                }
                let client = client_address(peer, &h, &trusted);
                if trusted_peer {
                    let listed = header.split(',').filter_map(parse_hop).any(|ip| ip == client);
                    prop_assert!(client == peer || listed, "{:?} -> {}", hops, client);
                } else {
                    prop_assert_eq!(client, peer);
                }
            }
        }
    }
}
