//! Security headers on every response.
//!
//! The Content-Security-Policy allows what the Dream page needs and nothing
//! more: its own scripts, styles and API (`'self'`) and the Livepeer player
//! iframe (`https://lvpr.tv`). WHIP and WHEP go through the gateway itself, and
//! WebRTC video plays from a `MediaStream` (no media URL), so neither
//! `connect-src` nor `media-src` names a Livepeer or Daydream host; the iframe's
//! own loads are governed by the player's policy, not ours. No inline scripts,
//! no `eval`, no plugins, no framing.

use http::header::{
    HeaderName, HeaderValue, CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
};
use http::HeaderMap;

/// The player iframe origin (also the `iframeBase` the config route reports).
pub const PLAYER_ORIGIN: &str = "https://lvpr.tv";

/// The Content-Security-Policy value.
pub fn content_security_policy() -> String {
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         media-src 'self'; connect-src 'self'; frame-src {PLAYER_ORIGIN}; \
         object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

/// `Permissions-Policy` header name.
pub const PERMISSIONS_POLICY: HeaderName = HeaderName::from_static("permissions-policy");

/// Adds the security headers; `api` adds `Cache-Control: no-store`.
pub fn apply(headers: &mut HeaderMap, csp: &HeaderValue, api: bool) {
    headers.insert(CONTENT_SECURITY_POLICY, csp.clone());
    headers.insert(PERMISSIONS_POLICY, HeaderValue::from_static("camera=(self), microphone=(), geolocation=()"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if api {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csp_has_every_required_directive() {
        let csp = content_security_policy();
        for d in [
            "default-src 'self'",
            "script-src 'self'",
            "frame-src https://lvpr.tv",
            "media-src 'self';",
            "connect-src 'self';",
            "img-src 'self' data:",
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(d), "missing {d:?} in {csp}");
        }
        assert!(!csp.contains("unsafe"), "{csp}");
        assert!(!csp.contains('*') && !csp.contains("livepeercdn"), "no host beyond the player: {csp}");
        assert!(HeaderValue::from_str(&csp).is_ok());
    }

    #[test]
    fn apply_sets_headers() {
        let csp = HeaderValue::from_str(&content_security_policy()).unwrap();
        let mut h = HeaderMap::new();
        apply(&mut h, &csp, false);
        assert_eq!(h[X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert!(h[PERMISSIONS_POLICY].to_str().unwrap().starts_with("camera=(self)"));
        assert!(h.get(CACHE_CONTROL).is_none());
        apply(&mut h, &csp, true);
        assert_eq!(h[CACHE_CONTROL], "no-store");
    }
}
