//! ICE servers announced by a WHIP endpoint in `Link` headers (RFC 9725 §4.6,
//! RFC 8288 syntax):
//!
//! ```text
//! Link: <stun:stun.example.net:3478>; rel="ice-server"
//! Link: <turn:turn.example.net?transport=udp>; rel="ice-server";
//!       username="user"; credential="myPassword"; credential-type="password"
//! ```

use std::fmt;

/// One ICE server: a `stun:`/`turn:`/`turns:` URL with optional credentials.
///
/// `Debug` never prints the credential.
#[derive(Clone, PartialEq, Eq)]
pub struct IceServer {
    /// The server URL, e.g. `stun:stun.l.google.com:19302`.
    pub url: String,
    /// TURN username, if any.
    pub username: Option<String>,
    /// TURN credential, if any.
    pub credential: Option<String>,
}

impl IceServer {
    /// An ICE server without credentials (a STUN server, typically).
    pub fn new(url: impl Into<String>) -> Self {
        Self { url: url.into(), username: None, credential: None }
    }

    /// Whether this is a TURN relay (`turn:` or `turns:`).
    pub fn is_turn(&self) -> bool {
        let lower = self.url.to_ascii_lowercase();
        lower.starts_with("turn:") || lower.starts_with("turns:")
    }
}

impl fmt::Debug for IceServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IceServer")
            .field("url", &self.url)
            .field("username", &self.username)
            .field("credential", &self.credential.as_ref().map(|_| "(redacted)"))
            .finish()
    }
}

/// Parses every `rel="ice-server"` link out of `Link` header values.
///
/// Each value may hold several comma-separated links; parameters may be tokens
/// or quoted strings (with `\` escapes); `rel` may list several relation types.
/// Links with other relations and malformed links are skipped.
///
/// ```
/// use dreamgate_whip::parse_ice_servers;
///
/// let servers = parse_ice_servers([
///     r#"<stun:127.0.0.1:3478>; rel="ice-server", <https://x/>; rel=next"#,
///     r#"<turn:t.example?transport=udp>; rel="ice-server"; username="u"; credential="p""#,
/// ]);
/// assert_eq!(servers.len(), 2);
/// assert_eq!(servers[0].url, "stun:127.0.0.1:3478");
/// assert_eq!(servers[1].username.as_deref(), Some("u"));
/// ```
pub fn parse_ice_servers<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<IceServer> {
    values
        .into_iter()
        .flat_map(split_outside(','))
        .filter_map(parse_link)
        .filter(|link| {
            link.param("rel")
                .is_some_and(|rel| rel.split_ascii_whitespace().any(|r| r.eq_ignore_ascii_case("ice-server")))
        })
        .map(|link| IceServer {
            username: link.param("username").map(str::to_owned),
            credential: link.param("credential").map(str::to_owned),
            url: link.target,
        })
        .collect()
}

struct Link {
    target: String,
    params: Vec<(String, String)>,
}

impl Link {
    fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Splits `s` at `sep`, ignoring separators inside `<...>` and `"..."`.
fn split_outside(sep: char) -> impl Fn(&str) -> Vec<&str> {
    move |s: &str| {
        let mut parts = Vec::new();
        let (mut start, mut in_uri, mut in_quote, mut escaped) = (0, false, false, false);
        for (i, c) in s.char_indices() {
            if in_quote {
                match (escaped, c) {
                    (true, _) => escaped = false,
                    (false, '\\') => escaped = true,
                    (false, '"') => in_quote = false,
                    _ => {}
                }
                continue;
            }
            match c {
                '"' => in_quote = true,
                '<' => in_uri = true,
                '>' => in_uri = false,
                c if c == sep && !in_uri => {
                    parts.push(&s[start..i]);
                    start = i + c.len_utf8();
                }
                _ => {}
            }
        }
        parts.push(&s[start..]);
        parts
    }
}

fn parse_link(raw: &str) -> Option<Link> {
    let raw = raw.trim();
    let rest = raw.strip_prefix('<')?;
    let end = rest.find('>')?;
    let target = rest[..end].trim().to_owned();
    if target.is_empty() {
        return None;
    }
    let params = split_outside(';')(&rest[end + 1..])
        .into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((name, value)) => (name.trim().to_owned(), unquote(value.trim())),
            None => (p.to_owned(), String::new()),
        })
        .collect();
    Some(Link { target, params })
}

fn unquote(value: &str) -> String {
    let Some(inner) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) else {
        return value.to_owned();
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_stun_link() {
        let s = parse_ice_servers([r#"<stun:stun.example.net:3478>; rel="ice-server""#]);
        assert_eq!(s, vec![IceServer::new("stun:stun.example.net:3478")]);
    }

    #[test]
    fn several_links_in_one_header_and_other_relations_skipped() {
        let s = parse_ice_servers([
            r#"<stun:a.example:3478>; rel="ice-server", <https://example.com/doc>; rel="help", <stun:b.example>;rel=ice-server"#,
        ]);
        let urls: Vec<_> = s.iter().map(|s| s.url.as_str()).collect();
        assert_eq!(urls, ["stun:a.example:3478", "stun:b.example"]);
    }

    #[test]
    fn turn_credentials_with_quoted_commas_and_escapes() {
        let s = parse_ice_servers([
            r#"<turn:turn.example.net?transport=udp>; rel="ice-server"; username="user,1"; credential="pa\"ss;word"; credential-type="password""#,
        ]);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].url, "turn:turn.example.net?transport=udp");
        assert_eq!(s[0].username.as_deref(), Some("user,1"));
        assert_eq!(s[0].credential.as_deref(), Some("pa\"ss;word"));
        assert!(s[0].is_turn());
        assert!(!format!("{:?}", s[0]).contains("pa\\\"ss"), "Debug must redact the credential");
    }

    #[test]
    fn rel_lists_and_case() {
        let s = parse_ice_servers([r#"<stun:c.example>; REL="preload ICE-Server""#]);
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn malformed_links_are_skipped() {
        let s = parse_ice_servers(["stun:no-brackets; rel=ice-server", "<>; rel=ice-server", "<stun:x", ""]);
        assert!(s.is_empty(), "{s:?}");
    }
}
