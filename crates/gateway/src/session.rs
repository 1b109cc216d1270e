//! Browser sessions: a random id in the `dreamgate_session` cookie.
//!
//! The id is 128 random bits from `rand::rng()` (a cryptographically secure
//! generator seeded from the operating system), hex-encoded. It is never derived from request headers, so
//! two browsers never share an identity. The cookie is `HttpOnly`,
//! `SameSite=Strict`, `Path=/`, and `Secure` when the gateway is served over
//! https (see [`crate::GatewayConfig::https`]).
//!
//! A request without a cookie naming a session this gateway issued gets a
//! fresh id, set on its response (by the middleware in [`crate::routes`]). A
//! well-formed id the gateway did not issue (chosen by the client, or
//! forgotten after being idle: see [`crate::registry`]) is NOT accepted: the
//! request is served under a new session and gets a new cookie, so nobody can
//! fix a victim's session id in advance.

use std::fmt;

use http::header::COOKIE;
use http::HeaderMap;
use rand::RngCore;

/// Name of the session cookie.
pub const COOKIE_NAME: &str = "dreamgate_session";

/// A session id (128 random bits). `Debug` shows only a short prefix.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SessionId(String);

impl SessionId {
    /// A fresh random id.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 16];
        rand::rng().fill_bytes(&mut bytes);
        Self::from_bytes(bytes)
    }

    /// The id made of these bytes (tests use fixed ids).
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// Parses a cookie value: exactly 32 lower-case hex digits.
    pub fn parse(value: &str) -> Option<Self> {
        let ok = value.len() == 32 && value.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        ok.then(|| Self(value.to_string()))
    }

    /// Reads the session cookie from request headers (first well-formed one wins).
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .filter(|(name, _)| *name == COOKIE_NAME)
            .find_map(|(_, value)| Self::parse(value.trim()))
    }

    /// The hex id.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The `Set-Cookie` value for this session.
    pub fn set_cookie(&self, secure: bool) -> String {
        format!("{COOKIE_NAME}={}; Path=/; HttpOnly; SameSite=Strict{}", self.0, if secure { "; Secure" } else { "" })
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({}…)", &self.0[..6.min(self.0.len())])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn generated_ids_are_random_and_well_formed() {
        let a = SessionId::generate();
        let b = SessionId::generate();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 32);
        assert_eq!(SessionId::parse(a.as_str()), Some(a));
    }

    #[test]
    fn parse_rejects_malformed_values() {
        for bad in ["", "abc", &"A".repeat(32), &"g".repeat(32), &"0".repeat(31), &"0".repeat(33)] {
            assert_eq!(SessionId::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn reads_the_cookie_among_others() {
        let id = SessionId::from_bytes([7; 16]);
        let mut h = HeaderMap::new();
        h.append(COOKIE, HeaderValue::from_static("a=1; dreamgate_session=bogus"));
        h.append(COOKIE, HeaderValue::from_str(&format!("x=y; {COOKIE_NAME}={}", id.as_str())).unwrap());
        assert_eq!(SessionId::from_headers(&h), Some(id));
        assert_eq!(SessionId::from_headers(&HeaderMap::new()), None);
    }

    #[test]
    fn cookie_attributes() {
        let id = SessionId::from_bytes([1; 16]);
        let plain = id.set_cookie(false);
        assert!(plain.contains("HttpOnly") && plain.contains("SameSite=Strict"));
        assert!(!plain.contains("Secure"));
        assert!(id.set_cookie(true).ends_with("; Secure"));
    }

    #[test]
    fn debug_does_not_show_the_whole_id() {
        let id = SessionId::from_bytes([0xab; 16]);
        assert!(!format!("{id:?}").contains(id.as_str()));
    }
}
