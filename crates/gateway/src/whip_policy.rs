//! Which upstream WHIP/WHEP URLs the gateway is willing to contact.
//!
//! Every URL the gateway would send a WHIP or WHEP request to (the `whip_url`
//! of a created stream, the WHIP session resource from `Location`, the WHEP
//! URL from `Livepeer-Playback-URL` or the status `gateway_status.whep_url`)
//! goes through [`WhipPolicy::check`] first. A refused URL is never contacted.
//!
//! # Rules
//!
//! * The raw text must be plain printable ASCII: no whitespace, no control
//!   characters, no backslashes and no non-ASCII characters (IDNA would map
//!   e.g. `daydream．live` with a fullwidth dot to `daydream.live`).
//! * The authority (`host[:port]`) must not contain `%` (percent-encoded
//!   hosts are decoded by URL parsers) nor `@` (userinfo).
//! * The scheme must be `https`. With `allow_dev` (`DAYDREAM_WHIP_ALLOW_DEV=true`,
//!   and always for the embedded local engine) `http` is also accepted, but
//!   only for loopback hosts as [`dreamgate_client::is_loopback_host`] defines
//!   them (`localhost`, `127.0.0.0/8`, `[::1]`; not `*.localhost`).
//! * The host must be a DNS name that equals an allowlisted base domain or is
//!   a subdomain of one on a dot boundary: with `daydream.live` allowed,
//!   `daydream.live` and `ai.daydream.live` pass, `evildaydream.live` and
//!   `daydream.live.evil.com` do not. IP literals are refused (except the
//!   loopback ones under `allow_dev`), as are hosts with a trailing dot or
//!   empty labels.
//! * Ports: an `https` URL on an allowlisted domain may only use the default
//!   port (none given, or `:443`): Daydream's WHIP and WHEP URLs never name a
//!   port, and refusing others keeps the gateway from being used to probe
//!   other services on allowed hosts. Loopback hosts under `allow_dev` may use
//!   any port (the local engine listens on a random one).
//! * Query strings are kept (pre-signed URLs may carry their token there);
//!   fragments are refused (no real WHIP URL has one).
//!
//! The default allowlist is the spec's
//! (`daydream.live, sdaydream.live, livepeer.com, livepeer.studio, livepeer.cloud,
//! lp-playback.studio`); `DAYDREAM_WHIP_ALLOWED_HOSTS` (CSV) adds to it.

use std::fmt;

use dreamgate_client::{host_in_allowlist, is_loopback_host};
use url::{Host, Url};

/// The spec's default WHIP base domains (the client crate's list).
pub use dreamgate_client::DEFAULT_WHIP_ALLOWED_HOSTS as DEFAULT_ALLOWED_HOSTS;

/// Why a URL was refused (the text is safe to show: it never echoes the URL).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The text is not plain printable ASCII.
    #[error("URL contains whitespace, control, backslash or non-ASCII characters")]
    Characters,
    /// The URL could not be parsed or has no host.
    #[error("URL cannot be parsed")]
    Unparseable,
    /// The URL names a user or password.
    #[error("URL contains user information")]
    Userinfo,
    /// The host part is percent-encoded.
    #[error("URL host is percent-encoded")]
    Encoded,
    /// Scheme other than https (or http on loopback in dev mode).
    #[error("URL scheme is not allowed (https required)")]
    Scheme,
    /// A literal IP address that is not an allowed loopback address.
    #[error("URL host is an IP address")]
    IpLiteral,
    /// Trailing dot, empty label or other odd host shape.
    #[error("URL host is malformed")]
    HostShape,
    /// The host is not an allowlisted domain or a subdomain of one.
    #[error("URL host is not in the WHIP allowlist")]
    NotAllowed,
    /// A port other than the default one.
    #[error("URL port is not allowed")]
    Port,
    /// The URL carries a fragment.
    #[error("URL has a fragment")]
    Fragment,
}

/// A base domain that could not be added to the allowlist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid WHIP allowlist entry {entry:?}: expected a bare domain such as daydream.live")]
pub struct InvalidAllowedHost {
    /// The entry as given.
    pub entry: String,
}

/// The allowlist of upstream WHIP/WHEP hosts, plus the dev switch.
///
/// ```
/// use dreamgate_gateway::whip_policy::WhipPolicy;
///
/// let policy = WhipPolicy::new(["daydream.live"], false).unwrap();
/// assert!(policy.check("https://ai.daydream.live/live/x/whip").is_ok());
/// assert!(policy.check("https://evildaydream.live/whip").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhipPolicy {
    allowed: Vec<String>,
    allow_dev: bool,
}

impl fmt::Display for WhipPolicy {
    /// The effective allowlist, as logged at start.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "https://[*.]{{{}}}", self.allowed.join(","))?;
        if self.allow_dev {
            write!(f, " + http(s) on loopback (dev)")?;
        }
        Ok(())
    }
}

impl WhipPolicy {
    /// Builds a policy from base domains (lower-cased; duplicates dropped).
    ///
    /// Entries must be bare domains (`livepeer.com`): no scheme, port, path,
    /// wildcard, IP address or trailing dot.
    pub fn new<I, S>(allowed: I, allow_dev: bool) -> Result<Self, InvalidAllowedHost>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut list: Vec<String> = Vec::new();
        for entry in allowed {
            let raw = entry.as_ref().trim();
            if raw.is_empty() {
                continue;
            }
            let lower = raw.to_ascii_lowercase();
            if !is_plain_domain(&lower) {
                return Err(InvalidAllowedHost { entry: raw.to_string() });
            }
            if !list.contains(&lower) {
                list.push(lower);
            }
        }
        Ok(Self { allowed: list, allow_dev })
    }

    /// The spec's default allowlist plus `extra` entries.
    pub fn with_defaults<I, S>(extra: I, allow_dev: bool) -> Result<Self, InvalidAllowedHost>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let extra: Vec<S> = extra.into_iter().collect();
        Self::new(DEFAULT_ALLOWED_HOSTS.iter().copied().chain(extra.iter().map(AsRef::as_ref)), allow_dev)
    }

    /// The allowed base domains.
    pub fn allowed_hosts(&self) -> &[String] {
        &self.allowed
    }

    /// Whether http on loopback hosts is accepted.
    pub fn allow_dev(&self) -> bool {
        self.allow_dev
    }

    /// Returns a copy that also accepts loopback http (used for the local engine).
    pub fn with_dev(mut self, allow_dev: bool) -> Self {
        self.allow_dev = allow_dev;
        self
    }

    /// Checks `raw`; returns the parsed URL when the gateway may contact it.
    pub fn check(&self, raw: &str) -> Result<Url, Refusal> {
        if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_graphic()) || raw.contains('\\') {
            return Err(Refusal::Characters);
        }
        let authority = raw_authority(raw).ok_or(Refusal::Unparseable)?;
        if authority.contains('@') {
            return Err(Refusal::Userinfo);
        }
        if authority.contains('%') {
            return Err(Refusal::Encoded);
        }
        let url = Url::parse(raw).map_err(|_| Refusal::Unparseable)?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Refusal::Userinfo);
        }
        if url.fragment().is_some() {
            return Err(Refusal::Fragment);
        }
        let scheme = url.scheme();
        if scheme != "https" && scheme != "http" {
            return Err(Refusal::Scheme);
        }
        let host = url.host().ok_or(Refusal::Unparseable)?;
        if self.allow_dev && is_loopback_host(&host) {
            return Ok(url);
        }
        if scheme != "https" {
            return Err(Refusal::Scheme);
        }
        let domain = match host {
            Host::Domain(d) => d.to_ascii_lowercase(),
            Host::Ipv4(_) | Host::Ipv6(_) => return Err(Refusal::IpLiteral),
        };
        if !is_plain_domain(&domain) {
            return Err(Refusal::HostShape);
        }
        if !host_in_allowlist(&domain, &self.allowed) {
            return Err(Refusal::NotAllowed);
        }
        // `Url` drops a default port, so any port left is a non-default one.
        if url.port().is_some() {
            return Err(Refusal::Port);
        }
        Ok(url)
    }
}

/// The `host[:port]` (with any userinfo) part of an absolute URL text.
fn raw_authority(raw: &str) -> Option<&str> {
    let (_, rest) = raw.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some(&rest[..end])
}

/// A lower-case DNS name made of non-empty LDH labels, with at least one dot
/// or equal to `localhost`, and not all-numeric (that would be an IP).
fn is_plain_domain(d: &str) -> bool {
    if d.is_empty() || d.len() > 253 {
        return false;
    }
    let labels: Vec<&str> = d.split('.').collect();
    let labels_ok = labels.iter().all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    });
    let numeric = labels.iter().all(|l| l.bytes().all(|b| b.is_ascii_digit()));
    labels_ok && !numeric && (labels.len() >= 2 || d == "localhost")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prod() -> WhipPolicy {
        WhipPolicy::with_defaults(["example-cdn.net"], false).unwrap()
    }

    fn dev() -> WhipPolicy {
        prod().with_dev(true)
    }

    #[test]
    fn table() {
        use Refusal::*;
        // (url, expected in prod mode, expected in dev mode)
        type Case = (&'static str, Result<(), Refusal>, Result<(), Refusal>);
        let cases: &[Case] = &[
            // accepted
            ("https://ai.livepeer.com/live/video-to-video/stk_abc/whip", Ok(()), Ok(())),
            ("https://daydream.live/whip", Ok(()), Ok(())),
            ("https://a.b.daydream.live/whip?token=x", Ok(()), Ok(())),
            ("https://DayDream.Live/whip", Ok(()), Ok(())),
            ("https://ai.livepeer.com:443/whip", Ok(()), Ok(())),
            ("https://x.example-cdn.net/whip", Ok(()), Ok(())),
            ("https://lp-playback.studio/webrtc/x", Ok(()), Ok(())),
            // schemes
            ("http://ai.livepeer.com/whip", Err(Scheme), Err(Scheme)),
            ("ftp://ai.livepeer.com/whip", Err(Scheme), Err(Scheme)),
            ("file:///etc/passwd", Err(Scheme), Err(Scheme)),
            ("wss://ai.livepeer.com/whip", Err(Scheme), Err(Scheme)),
            ("javascript:alert(1)", Err(Unparseable), Err(Unparseable)),
            ("data:text/plain,hi", Err(Unparseable), Err(Unparseable)),
            ("//ai.livepeer.com/whip", Err(Unparseable), Err(Unparseable)),
            ("/live/whip", Err(Unparseable), Err(Unparseable)),
            ("", Err(Characters), Err(Characters)),
            ("https://", Err(Unparseable), Err(Unparseable)),
            // userinfo
            ("https://user@ai.livepeer.com/whip", Err(Userinfo), Err(Userinfo)),
            ("https://user:pw@ai.livepeer.com/whip", Err(Userinfo), Err(Userinfo)),
            ("https://ai.livepeer.com@evil.com/whip", Err(Userinfo), Err(Userinfo)),
            ("https://evil.com@ai.livepeer.com/whip", Err(Userinfo), Err(Userinfo)),
            ("http://u@127.0.0.1:9/whip", Err(Userinfo), Err(Userinfo)),
            // IP literals
            ("https://127.0.0.1/whip", Err(IpLiteral), Ok(())),
            ("http://127.0.0.1:8080/whip", Err(Scheme), Ok(())),
            ("http://127.8.9.10:8080/whip", Err(Scheme), Ok(())),
            ("http://[::1]:8080/whip", Err(Scheme), Ok(())),
            ("http://localhost:8080/whip", Err(Scheme), Ok(())),
            // `*.localhost` is not loopback (see dreamgate_client::is_loopback_host)
            ("http://app.localhost:8080/whip", Err(Scheme), Err(Scheme)),
            ("https://10.0.0.1/whip", Err(IpLiteral), Err(IpLiteral)),
            ("https://169.254.169.254/latest/meta-data", Err(IpLiteral), Err(IpLiteral)),
            ("http://169.254.169.254/latest/meta-data", Err(Scheme), Err(Scheme)),
            ("https://[fe80::1]/whip", Err(IpLiteral), Err(IpLiteral)),
            ("https://[::ffff:127.0.0.1]/whip", Err(IpLiteral), Err(IpLiteral)),
            ("https://2130706433/whip", Err(IpLiteral), Ok(())),
            ("https://0x7f.1/whip", Err(IpLiteral), Ok(())),
            ("https://8.8.8.8/whip", Err(IpLiteral), Err(IpLiteral)),
            ("http://0.0.0.0:80/whip", Err(Scheme), Err(Scheme)),
            // look-alike domains
            ("https://evildaydream.live/whip", Err(NotAllowed), Err(NotAllowed)),
            ("https://daydream.live.evil.com/whip", Err(NotAllowed), Err(NotAllowed)),
            ("https://daydream.livee/whip", Err(NotAllowed), Err(NotAllowed)),
            ("https://daydream-live.com/whip", Err(NotAllowed), Err(NotAllowed)),
            ("https://notlivepeer.com/whip", Err(NotAllowed), Err(NotAllowed)),
            ("https://livepeer.com.evil/whip", Err(NotAllowed), Err(NotAllowed)),
            ("https://evil.com/daydream.live/whip", Err(NotAllowed), Err(NotAllowed)),
            ("https://evil.com/?u=https://daydream.live", Err(NotAllowed), Err(NotAllowed)),
            ("https://live/whip", Err(HostShape), Err(HostShape)),
            ("https://localhost/whip", Err(NotAllowed), Ok(())),
            ("https://localhost.daydream.evil/whip", Err(NotAllowed), Err(NotAllowed)),
            // trailing dots, empty labels
            ("https://daydream.live./whip", Err(HostShape), Err(HostShape)),
            ("https://ai.livepeer.com./whip", Err(HostShape), Err(HostShape)),
            ("https://ai..livepeer.com/whip", Err(HostShape), Err(HostShape)),
            // encodings
            ("https://daydream%2elive/whip", Err(Encoded), Err(Encoded)),
            ("https://%64aydream.live/whip", Err(Encoded), Err(Encoded)),
            ("https://evil.com%2f.daydream.live/whip", Err(Encoded), Err(Encoded)),
            ("https://evil.com%23.daydream.live/whip", Err(Encoded), Err(Encoded)),
            ("https://daydream\u{ff0e}live/whip", Err(Characters), Err(Characters)),
            ("https://d\u{0430}ydream.live/whip", Err(Characters), Err(Characters)),
            ("https://xn--dydream-8nf.live/whip", Err(NotAllowed), Err(NotAllowed)),
            ("https://evil.com\\@daydream.live/whip", Err(Characters), Err(Characters)),
            ("https://evil.com\\.daydream.live/whip", Err(Characters), Err(Characters)),
            ("https://ai.livepeer.com /whip", Err(Characters), Err(Characters)),
            (" https://ai.livepeer.com/whip", Err(Characters), Err(Characters)),
            ("https://ai.livepeer.com/wh\nip", Err(Characters), Err(Characters)),
            ("https://ai.livepeer.com\t/whip", Err(Characters), Err(Characters)),
            ("https:/ai.livepeer.com/whip", Err(Unparseable), Err(Unparseable)),
            ("https:ai.livepeer.com/whip", Err(Unparseable), Err(Unparseable)),
            // ports
            ("https://ai.livepeer.com:8443/whip", Err(Port), Err(Port)),
            ("https://ai.livepeer.com:22/whip", Err(Port), Err(Port)),
            ("https://ai.livepeer.com:/whip", Ok(()), Ok(())),
            // fragments
            ("https://ai.livepeer.com/whip#x", Err(Fragment), Err(Fragment)),
        ];
        let (p, d) = (prod(), dev());
        for (url, want_prod, want_dev) in cases {
            assert_eq!(p.check(url).map(|_| ()), *want_prod, "prod: {url:?}");
            assert_eq!(d.check(url).map(|_| ()), *want_dev, "dev: {url:?}");
        }
    }

    #[test]
    fn allowlist_entries_are_validated() {
        assert!(WhipPolicy::new(["daydream.live", " LIVEPEER.com ", ""], false).is_ok());
        for bad in [
            "https://daydream.live",
            "*.daydream.live",
            ".daydream.live",
            "daydream.live.",
            "daydream.live:443",
            "daydream.live/whip",
            "1.2.3.4",
            "live",
            "dáydream.live",
        ] {
            assert!(WhipPolicy::new([bad], false).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn defaults_are_kept_when_extending() {
        let p = WhipPolicy::with_defaults(["extra.example"], false).unwrap();
        assert_eq!(p.allowed_hosts().len(), DEFAULT_ALLOWED_HOSTS.len() + 1);
        assert!(p.check("https://sdaydream.live/whip").is_ok());
        assert!(p.check("https://a.extra.example/whip").is_ok());
        // duplicates are dropped
        let p = WhipPolicy::with_defaults(["daydream.live"], false).unwrap();
        assert_eq!(p.allowed_hosts().len(), DEFAULT_ALLOWED_HOSTS.len());
    }

    #[test]
    fn display_lists_hosts_and_dev() {
        let p = WhipPolicy::new(["a.example"], true).unwrap();
        let s = p.to_string();
        assert!(s.contains("a.example") && s.contains("loopback"), "{s}");
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        /// URL-like text: a scheme, optional userinfo, a host of allowed, foreign, IP and
        /// odd shapes, an optional port, a path and a tail of arbitrary characters.
        fn url_text() -> impl Strategy<Value = String> {
            let scheme = prop_oneof![Just("https://"), Just("http://"), Just("HTTPS://"), Just("ftp://"), Just("")];
            let user = prop_oneof![Just(""), Just("user@"), Just("a:b@"), Just("%40@")];
            let host = prop_oneof![
                Just("ai.livepeer.com".to_owned()),
                Just("daydream.live".to_owned()),
                Just("x.example-cdn.net".to_owned()),
                Just("evil.example".to_owned()),
                Just("daydream.live.evil.example".to_owned()),
                Just("127.0.0.1".to_owned()),
                Just("[::1]".to_owned()),
                Just("localhost".to_owned()),
                "[a-z0-9.%-]{0,20}",
            ];
            let port = prop_oneof![Just(String::new()), (0u32..70000).prop_map(|p| format!(":{p}"))];
            let path = "(/[a-zA-Z0-9_.~%-]{0,10}){0,3}";
            let tail = prop_oneof![Just(String::new()), "[?#@\\\\ ]\\PC{0,8}"];
            (scheme, user, host, port, path, tail).prop_map(|(s, u, h, p, pa, t)| format!("{s}{u}{h}{p}{pa}{t}"))
        }

        proptest! {
            // The URL policy takes text from an upstream's answer (`whip_url`, `Location`):
            // any text is a refusal or a URL the gateway may contact, never a panic; an
            // accepted URL in production mode is https, on an allowed host, default port,
            // with no userinfo or fragment. PROPTEST_CASES=100000 for a long run.
            #[test]
            fn accepted_urls_keep_every_rule(raw in prop_oneof![url_text(), "\\PC{0,40}"]) {
                let p = prod();
                if let Ok(url) = p.check(&raw) {
                    prop_assert_eq!(url.scheme(), "https");
                    let host = url.host_str().unwrap_or_default();
                    prop_assert!(host_in_allowlist(host, p.allowed_hosts()), "{} accepted", raw);
                    prop_assert!(url.port().is_none() && url.username().is_empty() && url.password().is_none());
                    prop_assert!(url.fragment().is_none());
                }
                if let Ok(url) = dev().check(&raw) {
                    let loopback = url.host().is_some_and(|h| is_loopback_host(&h));
                    prop_assert!(url.scheme() == "https" || loopback, "{} accepted", raw);
                }
            }
        }
    }
}
