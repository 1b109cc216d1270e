//! Configuration read from the environment (`DAYDREAM_*` variables), validated once at start.

use std::fmt;
use std::net::IpAddr;

use url::{Host, Url};

/// Daydream's production API gateway, used when `DAYDREAM_API_GATEWAY` is unset or empty.
pub const DEFAULT_GATEWAY: &str = "https://api.daydream.live";

/// Base domains a WHIP URL may point at (a host matches when it equals one of these or is a
/// subdomain of one). `DAYDREAM_WHIP_ALLOWED_HOSTS` adds to this list; it never replaces it.
pub const DEFAULT_WHIP_ALLOWED_HOSTS: &[&str] =
    &["daydream.live", "sdaydream.live", "livepeer.com", "livepeer.studio", "livepeer.cloud", "lp-playback.studio"];

/// The prefix every Daydream production API key carries.
pub const API_KEY_PREFIX: &str = "daydream_live_";

/// A Daydream API key.
///
/// `Debug` and `Display` never print the key itself, only whether it has the expected prefix:
///
/// ```
/// use dreamgate_client::ApiKey;
///
/// let key = ApiKey::new("daydream_live_s3cr3t");
/// assert_eq!(format!("{key}"), "daydream_live_…(redacted)");
/// assert!(!format!("{key:?}").contains("s3cr3t"));
/// assert_eq!(key.expose(), "daydream_live_s3cr3t");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key (surrounding whitespace is removed).
    pub fn new(key: impl Into<String>) -> Self {
        let key = key.into();
        let trimmed = key.trim();
        if trimmed.len() == key.len() {
            ApiKey(key)
        } else {
            ApiKey(trimmed.to_owned())
        }
    }

    /// The secret itself, for the `Authorization` header only. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the key starts with [`API_KEY_PREFIX`].
    pub fn has_expected_prefix(&self) -> bool {
        self.0.starts_with(API_KEY_PREFIX)
    }

    /// Whether the key is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Parses like [`ApiKey::new`] (never fails), so command-line parsers can take an `ApiKey`.
impl std::str::FromStr for ApiKey {
    type Err = std::convert::Infallible;

    fn from_str(key: &str) -> Result<Self, Self::Err> {
        Ok(ApiKey::new(key))
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.has_expected_prefix() {
            write!(f, "{API_KEY_PREFIX}…(redacted)")
        } else {
            f.write_str("…(redacted)")
        }
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKey({self})")
    }
}

/// A configuration problem that must stop the program from starting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// `DAYDREAM_API_GATEWAY` is not a usable base URL.
    #[error("DAYDREAM_API_GATEWAY={value:?} is invalid: {reason} (unset it to use {DEFAULT_GATEWAY})")]
    InvalidGateway {
        /// The offending value (credentials removed).
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An entry of `DAYDREAM_WHIP_ALLOWED_HOSTS` is not a bare host name.
    #[error("DAYDREAM_WHIP_ALLOWED_HOSTS entry {entry:?} is invalid: {reason} (expected bare host names such as \"livepeer.com\", comma-separated)")]
    InvalidAllowedHost {
        /// The offending entry.
        entry: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `DAYDREAM_WHIP_ALLOW_DEV` is not a boolean.
    #[error("DAYDREAM_WHIP_ALLOW_DEV={0:?} is invalid: expected true, false, 1 or 0")]
    InvalidAllowDev(String),
}

/// Daydream settings from the environment.
///
/// | variable | meaning |
/// |---|---|
/// | `DAYDREAM_API_KEY` | API key; unset or empty = not configured. A key without the `daydream_live_` prefix is accepted with a warning (none when the gateway is a loopback engine). |
/// | `DAYDREAM_API_GATEWAY` | API base URL, default [`DEFAULT_GATEWAY`]; must be `https` unless the host is loopback; invalid = refuse to start. |
/// | `DAYDREAM_WHIP_ALLOWED_HOSTS` | comma-separated base domains ADDED to [`DEFAULT_WHIP_ALLOWED_HOSTS`] (trimmed, lowercased, empty entries dropped; schemes, ports, paths and wildcards rejected). |
/// | `DAYDREAM_WHIP_ALLOW_DEV` | `true`/`1` allows `http` WHIP URLs on loopback hosts during development; `false`/`0`/unset forbids them. |
///
/// ```
/// use dreamgate_client::DaydreamEnv;
///
/// let env = DaydreamEnv::from_vars(|name| match name {
///     "DAYDREAM_API_KEY" => Some("daydream_live_abc".into()),
///     "DAYDREAM_WHIP_ALLOWED_HOSTS" => Some(" Example.COM ,,".into()),
///     _ => None,
/// })
/// .unwrap();
/// assert_eq!(env.gateway.as_str(), "https://api.daydream.live/");
/// assert!(env.whip_allowed_hosts.contains(&"example.com".to_string()));
/// assert!(env.is_whip_host_allowed("ai.livepeer.com"));
/// assert!(env.warnings.is_empty());
/// ```
#[derive(Debug, Clone)]
pub struct DaydreamEnv {
    /// The API key, when configured.
    pub api_key: Option<ApiKey>,
    /// The API base URL.
    pub gateway: Url,
    /// Allowed WHIP base domains (defaults first, then the additions).
    pub whip_allowed_hosts: Vec<String>,
    /// Whether `http` WHIP URLs on loopback hosts are allowed.
    pub whip_allow_dev: bool,
    /// Non-fatal problems worth logging at start.
    pub warnings: Vec<String>,
}

impl DaydreamEnv {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Reads the variables through `get` (tests pass a closure over a map).
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut warnings = Vec::new();
        let non_empty = |name: &str| get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());

        let api_key = non_empty("DAYDREAM_API_KEY").map(ApiKey::new);
        let gateway = match non_empty("DAYDREAM_API_GATEWAY") {
            Some(value) => parse_gateway(&value)?,
            None => Url::parse(DEFAULT_GATEWAY).expect("DEFAULT_GATEWAY is a valid URL"),
        };
        // A local engine on loopback takes any key: the prefix only matters for Daydream itself.
        let local_gateway = gateway.host().is_some_and(|host| is_loopback_host(&host));
        if let Some(key) = &api_key {
            if !key.has_expected_prefix() && !local_gateway {
                warnings.push(format!(
                    "DAYDREAM_API_KEY does not start with \"{API_KEY_PREFIX}\"; Daydream will probably reject it"
                ));
            }
        }

        let mut whip_allowed_hosts: Vec<String> = DEFAULT_WHIP_ALLOWED_HOSTS.iter().map(|h| (*h).to_owned()).collect();
        if let Some(list) = get("DAYDREAM_WHIP_ALLOWED_HOSTS") {
            for host in parse_allowed_hosts(&list)? {
                if !whip_allowed_hosts.contains(&host) {
                    whip_allowed_hosts.push(host);
                }
            }
        }

        let whip_allow_dev = match non_empty("DAYDREAM_WHIP_ALLOW_DEV") {
            None => false,
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "true" | "1" => true,
                "false" | "0" => false,
                _ => return Err(ConfigError::InvalidAllowDev(v)),
            },
        };

        Ok(DaydreamEnv { api_key, gateway, whip_allowed_hosts, whip_allow_dev, warnings })
    }

    /// Whether `host` is one of the allowed WHIP base domains or a subdomain of one
    /// (case-insensitive; a trailing dot is ignored).
    pub fn is_whip_host_allowed(&self, host: &str) -> bool {
        host_in_allowlist(host, &self.whip_allowed_hosts)
    }
}

/// Whether `host` equals an entry of `allowed` or is a subdomain of one (case-insensitive).
pub fn host_in_allowlist(host: &str, allowed: &[String]) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host.is_empty() {
        return false;
    }
    allowed.iter().any(|base| {
        host == *base
            || (host.len() > base.len()
                && host.ends_with(base.as_str())
                && host.as_bytes()[host.len() - base.len() - 1] == b'.')
    })
}

/// Whether a URL host is a loopback host: exactly `localhost` (any case), an IPv4 address in
/// `127.0.0.0/8`, or `::1`.
///
/// This is the one definition used everywhere: `DAYDREAM_API_GATEWAY` may be `http` only for
/// these hosts, and the gateway's WHIP policy accepts `http` WHIP URLs in dev mode only for
/// them. `*.localhost` names and `localhost.` are NOT loopback here: not every resolver maps
/// them to a loopback address. IPv4-mapped IPv6 addresses (`::ffff:127.0.0.1`) are not
/// either.
///
/// ```
/// use dreamgate_client::is_loopback_host;
/// use url::Url;
///
/// let host = |u: &str| is_loopback_host(&Url::parse(u).unwrap().host().unwrap());
/// assert!(host("http://127.0.0.1:8787/") && host("http://LOCALHOST/") && host("http://[::1]/"));
/// assert!(!host("http://app.localhost/") && !host("http://10.0.0.1/"));
/// ```
pub fn is_loopback_host(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        Host::Ipv4(ip) => ip.is_loopback(),
        Host::Ipv6(ip) => ip.is_loopback(),
    }
}

fn parse_gateway(value: &str) -> Result<Url, ConfigError> {
    let invalid =
        |shown: &str, reason: &str| ConfigError::InvalidGateway { value: shown.to_owned(), reason: reason.to_owned() };
    let url = Url::parse(value).map_err(|e| {
        // never echo something that might hold credentials
        let shown = if value.contains('@') { "<redacted>" } else { value };
        invalid(shown, &format!("not an absolute URL ({e})"))
    })?;
    let mut shown_url = url.clone();
    let _ = shown_url.set_password(None);
    let shown = shown_url.as_str();
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(shown, "credentials in the URL are not allowed"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(shown, "a query or fragment is not allowed"));
    }
    let host = url.host().ok_or_else(|| invalid(shown, "the URL has no host"))?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback_host(&host) => {}
        "http" => return Err(invalid(shown, "https is required (http is only allowed for loopback hosts)")),
        other => return Err(invalid(shown, &format!("unsupported scheme {other:?} (use https)"))),
    }
    Ok(url)
}

fn parse_allowed_hosts(list: &str) -> Result<Vec<String>, ConfigError> {
    let mut hosts = Vec::new();
    for raw in list.split(',') {
        let entry = raw.trim().to_ascii_lowercase();
        if entry.is_empty() {
            continue;
        }
        let reject = |reason: &str| ConfigError::InvalidAllowedHost { entry: entry.clone(), reason: reason.to_owned() };
        if entry.contains("://") {
            return Err(reject("a scheme is not allowed"));
        }
        if entry.contains('*') {
            return Err(reject("wildcards are not allowed (every subdomain of an entry is already allowed)"));
        }
        if entry.contains('/') || entry.contains('?') || entry.contains('#') {
            return Err(reject("a path is not allowed"));
        }
        if entry.contains(':') {
            // also catches IPv6 literals, which WHIP hosts never are
            return Err(reject("a port is not allowed"));
        }
        if entry.parse::<IpAddr>().is_err()
            && !entry
                .split('.')
                .all(|label| !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        {
            return Err(reject("not a valid host name"));
        }
        if !hosts.contains(&entry) {
            hosts.push(entry);
        }
    }
    Ok(hosts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> Result<DaydreamEnv, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        DaydreamEnv::from_vars(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_when_nothing_is_set() {
        let e = env(&[]).unwrap();
        assert!(e.api_key.is_none());
        assert_eq!(e.gateway.as_str(), "https://api.daydream.live/");
        assert_eq!(e.whip_allowed_hosts, DEFAULT_WHIP_ALLOWED_HOSTS.to_vec());
        assert!(!e.whip_allow_dev);
        assert!(e.warnings.is_empty());
    }

    #[test]
    fn empty_key_is_not_configured() {
        let e = env(&[("DAYDREAM_API_KEY", "   ")]).unwrap();
        assert!(e.api_key.is_none());
    }

    #[test]
    fn key_without_prefix_warns_and_never_shows_the_key() {
        let e = env(&[("DAYDREAM_API_KEY", " sk_other_secret ")]).unwrap();
        let key = e.api_key.clone().unwrap();
        assert_eq!(key.expose(), "sk_other_secret");
        assert_eq!(e.warnings.len(), 1);
        assert!(e.warnings[0].contains("daydream_live_"), "{:?}", e.warnings);
        let debug = format!("{e:?}");
        assert!(!debug.contains("sk_other_secret"), "{debug}");
        assert!(!e.warnings[0].contains("secret"));
    }

    #[test]
    fn any_key_is_fine_for_a_loopback_engine() {
        let e = env(&[("DAYDREAM_API_KEY", "x"), ("DAYDREAM_API_GATEWAY", "http://127.0.0.1:8787")]).unwrap();
        assert!(e.warnings.is_empty(), "{:?}", e.warnings);
        let e = env(&[("DAYDREAM_API_KEY", "x"), ("DAYDREAM_API_GATEWAY", "https://api.example.com")]).unwrap();
        assert_eq!(e.warnings.len(), 1, "a remote gateway still warns");
    }

    #[test]
    fn key_with_prefix_has_no_warning() {
        let e = env(&[("DAYDREAM_API_KEY", "daydream_live_xyz")]).unwrap();
        assert!(e.warnings.is_empty());
        assert_eq!(format!("{:?}", e.api_key.unwrap()), "ApiKey(daydream_live_…(redacted))");
    }

    #[test]
    fn invalid_gateways_are_refused() {
        for bad in [
            "not a url",
            "http://api.example.com",
            "ftp://api.daydream.live",
            "https://user:pw@api.daydream.live",
            "https://api.daydream.live/?x=1",
            "api.daydream.live",
        ] {
            let err = env(&[("DAYDREAM_API_GATEWAY", bad)]).unwrap_err();
            assert!(matches!(err, ConfigError::InvalidGateway { .. }), "{bad}: {err:?}");
            let msg = err.to_string();
            assert!(msg.contains("DAYDREAM_API_GATEWAY"), "{msg}");
            assert!(!msg.contains("pw@"), "credentials echoed: {msg}");
        }
    }

    #[test]
    fn http_gateway_allowed_only_on_loopback() {
        for ok in
            ["http://127.0.0.1:8787", "http://localhost:9000/", "http://[::1]:1234", "https://gw.example.com/base/"]
        {
            let e = env(&[("DAYDREAM_API_GATEWAY", ok)]).unwrap();
            assert!(e.gateway.host().is_some(), "{ok}");
        }
        assert_eq!(
            env(&[("DAYDREAM_API_GATEWAY", " http://127.0.0.1:8787 ")]).unwrap().gateway.as_str(),
            "http://127.0.0.1:8787/"
        );
        assert!(env(&[("DAYDREAM_API_GATEWAY", "http://10.0.0.1")]).is_err());
    }

    /// The single table of what counts as a loopback host (the WHIP policy uses the same function).
    #[test]
    fn loopback_hosts_table() {
        let cases = [
            ("localhost", true),
            ("LocalHost", true),
            ("127.0.0.1", true),
            ("127.8.9.10", true),
            ("127.255.255.255", true),
            ("2130706433", true), // 127.0.0.1 written as one number (the URL parser normalises it)
            ("[::1]", true),
            ("app.localhost", false),
            ("localhost.", false),
            ("localhost.example.com", false),
            ("mylocalhost", false),
            ("128.0.0.1", false),
            ("10.0.0.1", false),
            ("0.0.0.0", false),
            ("[::]", false),
            ("[::ffff:127.0.0.1]", false),
            ("[fe80::1]", false),
            ("example.com", false),
        ];
        for (host, want) in cases {
            let url = Url::parse(&format!("http://{host}/")).unwrap();
            assert_eq!(is_loopback_host(&url.host().unwrap()), want, "{host}");
            // and the gateway URL validation agrees
            assert_eq!(env(&[("DAYDREAM_API_GATEWAY", &format!("http://{host}:9/"))]).is_ok(), want, "{host}");
        }
    }

    #[test]
    fn allowlist_adds_to_defaults_normalised() {
        let e =
            env(&[("DAYDREAM_WHIP_ALLOWED_HOSTS", " Example.COM, ,livepeer.com,cdn.other.net,example.com ")]).unwrap();
        let mut expected: Vec<String> = DEFAULT_WHIP_ALLOWED_HOSTS.iter().map(|s| s.to_string()).collect();
        expected.push("example.com".into());
        expected.push("cdn.other.net".into());
        assert_eq!(e.whip_allowed_hosts, expected);
        assert!(e.is_whip_host_allowed("ai.livepeer.com"));
        assert!(e.is_whip_host_allowed("EXAMPLE.com."));
        assert!(e.is_whip_host_allowed("a.b.example.com"));
        assert!(!e.is_whip_host_allowed("badexample.com"));
        assert!(!e.is_whip_host_allowed("example.com.evil.net"));
        assert!(!e.is_whip_host_allowed(""));
    }

    #[test]
    fn allowlist_rejects_urls_ports_paths_wildcards() {
        for (bad, word) in [
            ("https://example.com", "scheme"),
            ("example.com:443", "port"),
            ("example.com/whip", "path"),
            ("*.example.com", "wildcard"),
            ("exa mple.com", "host name"),
        ] {
            let err = env(&[("DAYDREAM_WHIP_ALLOWED_HOSTS", bad)]).unwrap_err();
            assert!(matches!(err, ConfigError::InvalidAllowedHost { .. }), "{bad}");
            assert!(err.to_string().contains(word), "{bad}: {err}");
        }
    }

    #[test]
    fn allow_dev_parsing() {
        for (v, want) in [("true", true), ("1", true), ("TRUE", true), ("false", false), ("0", false), ("", false)] {
            assert_eq!(env(&[("DAYDREAM_WHIP_ALLOW_DEV", v)]).unwrap().whip_allow_dev, want, "{v}");
        }
        for bad in ["yes", "2", "on"] {
            assert_eq!(env(&[("DAYDREAM_WHIP_ALLOW_DEV", bad)]).unwrap_err(), ConfigError::InvalidAllowDev(bad.into()));
        }
    }
}
