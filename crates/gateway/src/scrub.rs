//! Upstream text, made safe to relay or log.
//!
//! Anything an upstream says (the Daydream API, the local engine, a WHIP/WHEP
//! server, or a proxy on the way) may echo what it received, including
//! `Authorization: Bearer <key>`, and may carry internals (heap addresses,
//! internal URLs, stack text). Before such text reaches a browser or a log
//! line it goes through a [`Scrubber`]:
//!
//! * **secrets**: every occurrence of the API key (any secret of 8 characters
//!   or more the scrubber was built with) and the value of anything named
//!   `Authorization` or following `Bearer ` become `[redacted]`; in JSON, the
//!   value of a key named like a credential (`authorization`, `cookie`,
//!   `x-api-key`, `api_key`, `token`, ...) too;
//! * **internals** ([`strip_internals`]): hex addresses (`0x7f…`, as in
//!   `PointerOffset(0x7f…)`) become `[addr]`, URLs `[url]`, stack-trace lines
//!   are dropped.
//!
//! # The bounded form of upstream error bodies (`details`)
//!
//! * A Daydream API error body is passed on as JSON only if it parsed as a
//!   JSON object, keeping only the documented fields `success`, `error`,
//!   `code`, `status`, `message`, `detail`, `details`, `requestId`, `traceId`;
//!   strings are scrubbed and cut at 512 characters, arrays at 16 items,
//!   objects at 16 keys and 3 levels. If it is still over 2 KiB, `details`
//!   is dropped from it; if it is still over, or the body was not a JSON
//!   object, it is passed on as a plain string of at most 2 KiB.
//! * A WHIP/WHEP error body is passed on as a plain string: scrubbed, at most
//!   2 KiB.
//! * Error messages built from upstream text ([`Scrubber::message`]) keep
//!   their first line only, scrubbed and stripped, at most 300 characters.
//!
//! Success bodies relayed as JSON (stream objects, status) keep their shape
//! and length; only secrets are removed ([`Scrubber::value`]).

use std::fmt;

use aho_corasick::AhoCorasick;

use serde_json::{Map, Value};

/// Largest `details` relayed (bytes of JSON or text).
pub const MAX_DETAILS: usize = 2048;
/// Largest message built from upstream text (characters).
pub const MAX_MESSAGE: usize = 300;
/// Largest string inside relayed JSON `details` (characters).
pub const MAX_STRING: usize = 512;
const MAX_ITEMS: usize = 16;
const MAX_DEPTH: usize = 3;
/// Shortest secret the scrubber looks for (shorter ones would match ordinary text).
pub const MIN_SECRET: usize = 8;
/// What replaces a secret.
pub const REDACTED: &str = "[redacted]";

/// The documented fields of a Daydream error body.
pub const KNOWN_ERROR_FIELDS: [&str; 9] =
    ["success", "error", "code", "status", "message", "detail", "details", "requestId", "traceId"];

/// Removes secrets from upstream text. `Debug` never shows them.
#[derive(Clone, Default)]
pub struct Scrubber {
    secrets: Vec<String>,
    /// Finds, in one pass and in any case, any credential-like word or secret
    /// ([`Scrubber::json_bytes`]'s question); `None`: every body is suspect.
    alarm: Option<AhoCorasick>,
}

/// Words that make a relayed JSON body suspect of carrying a credential.
/// (`api_key`, `api-key`, `apikey` rather than any `api`, so that ordinary text such as
/// "rapid" does not make every body suspect.)
const CREDENTIAL_WORDS: [&str; 9] =
    ["authorization", "bearer", "cookie", "api_key", "api-key", "apikey", "token", "secret", "password"];

impl fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scrubber({} secrets)", self.secrets.len())
    }
}

impl Scrubber {
    /// A scrubber for these secrets (those shorter than [`MIN_SECRET`] are ignored).
    pub fn new<I, S>(secrets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut secrets: Vec<String> =
            secrets.into_iter().map(|s| s.as_ref().to_string()).filter(|s| s.len() >= MIN_SECRET).collect();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        let alarm = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .kind(Some(aho_corasick::AhoCorasickKind::DFA))
            .build(CREDENTIAL_WORDS.iter().copied().chain(secrets.iter().map(String::as_str)))
            .ok();
        Self { secrets, alarm }
    }

    /// `text` without secrets (credential values and the scrubber's secrets).
    pub fn text(&self, text: &str) -> String {
        let mut out = redact_after(text, "authorization", true);
        out = redact_after(&out, "bearer", false);
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), REDACTED);
            }
        }
        out
    }

    /// A JSON value without secrets, same shape otherwise.
    pub fn value(&self, v: Value) -> Value {
        match v {
            Value::String(s) => Value::String(self.text(&s)),
            Value::Array(items) => Value::Array(items.into_iter().map(|i| self.value(i)).collect()),
            Value::Object(map) => Value::Object(
                map.into_iter()
                    .map(|(k, v)| {
                        let v = if credential_key(&k) { Value::String(REDACTED.into()) } else { self.value(v) };
                        (self.text(&k), v)
                    })
                    .collect(),
            ),
            other => other,
        }
    }

    /// A JSON body relayed as bytes (the status route's hot path): returned
    /// as is, without a copy, unless it may carry a secret or a credential
    /// (a scrubber secret, or a credential-like word in any case); then it is
    /// parsed and scrubbed like [`Scrubber::value`] (or as text when it is not JSON).
    pub fn json_bytes(&self, body: bytes::Bytes) -> bytes::Bytes {
        let suspicious = match &self.alarm {
            Some(alarm) => alarm.is_match(&body[..]),
            None => true,
        };
        if !suspicious {
            return body;
        }
        match serde_json::from_slice::<Value>(&body) {
            Ok(v) => bytes::Bytes::from(serde_json::to_vec(&self.value(v)).unwrap_or_default()),
            Err(_) => bytes::Bytes::from(self.text(&String::from_utf8_lossy(&body))),
        }
    }

    /// A one-line message from upstream text: scrubbed, stripped, first line, at most [`MAX_MESSAGE`] characters.
    pub fn message(&self, text: &str) -> String {
        let clean = strip_internals(&self.text(text));
        let line = clean.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
        cut_chars(line, MAX_MESSAGE)
    }

    /// The bounded `details` of a Daydream API error body (see the module docs).
    pub fn details_json(&self, body: &Value) -> Value {
        let Value::Object(map) = body else {
            let text = match body {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            return Value::String(self.details_text(text.as_bytes()));
        };
        let mut kept = Map::new();
        for (k, v) in map {
            if KNOWN_ERROR_FIELDS.contains(&k.as_str()) {
                kept.insert(k.clone(), self.bounded(v, 0));
            }
        }
        let mut out = Value::Object(kept);
        if json_len(&out) > MAX_DETAILS {
            if let Value::Object(m) = &mut out {
                m.remove("details");
            }
        }
        if json_len(&out) > MAX_DETAILS {
            return Value::String(cut_bytes(&out.to_string(), MAX_DETAILS));
        }
        out
    }

    /// The bounded `details` of a WHIP/WHEP error body: a scrubbed string of at most [`MAX_DETAILS`] bytes.
    pub fn details_text(&self, body: &[u8]) -> String {
        // scrub more than is kept, so that a secret cut in half at the end is still found
        let raw = String::from_utf8_lossy(&body[..body.len().min(MAX_DETAILS * 4)]);
        cut_bytes(&strip_internals(&self.text(&raw)), MAX_DETAILS)
    }

    fn bounded(&self, v: &Value, depth: usize) -> Value {
        match v {
            Value::String(s) => Value::String(cut_chars(&strip_internals(&self.text(s)), MAX_STRING)),
            Value::Array(items) if depth < MAX_DEPTH => {
                Value::Array(items.iter().take(MAX_ITEMS).map(|i| self.bounded(i, depth + 1)).collect())
            }
            Value::Object(map) if depth < MAX_DEPTH => Value::Object(
                map.iter()
                    .take(MAX_ITEMS)
                    .map(|(k, v)| {
                        let v =
                            if credential_key(k) { Value::String(REDACTED.into()) } else { self.bounded(v, depth + 1) };
                        (cut_chars(&self.text(k), 64), v)
                    })
                    .collect(),
            ),
            Value::Array(_) | Value::Object(_) => Value::Null,
            other => other.clone(),
        }
    }
}

fn json_len(v: &Value) -> usize {
    serde_json::to_vec(v).map(|b| b.len()).unwrap_or(usize::MAX)
}

/// Whether a JSON key names a credential.
fn credential_key(k: &str) -> bool {
    let k = k.to_ascii_lowercase().replace(['-', '_'], "");
    [
        "authorization",
        "proxyauthorization",
        "cookie",
        "setcookie",
        "xapikey",
        "apikey",
        "token",
        "accesstoken",
        "secret",
        "password",
    ]
    .contains(&k.as_str())
}

/// Replaces the value following each (ASCII case-insensitive) `word`.
/// `header`: the value follows `:` or `=` (quotes and spaces around are
/// skipped) and runs to the end of the field; otherwise it follows
/// whitespace and is one token.
fn redact_after(text: &str, word: &str, header: bool) -> String {
    let lower = text.to_ascii_lowercase();
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut from = 0;
    while let Some(pos) = lower[from..].find(word) {
        let start = from + pos;
        let mut i = start + word.len();
        from = i;
        let skip = |i: &mut usize, set: &[u8]| {
            while *i < bytes.len() && set.contains(&bytes[*i]) {
                *i += 1;
            }
        };
        if header {
            skip(&mut i, b"\"'\\ \t");
            if i >= bytes.len() || !matches!(bytes[i], b':' | b'=') {
                continue;
            }
            i += 1;
            skip(&mut i, b"\"'\\ \t");
        } else {
            let ws = i;
            skip(&mut i, b" \t");
            if i == ws {
                continue;
            }
        }
        let value_start = i;
        while i < bytes.len() {
            let b = bytes[i];
            let end = if header {
                matches!(b, b'"' | b'\'' | b'\\' | b'\r' | b'\n' | b',' | b'}' | b';' | b'&')
            } else {
                !(b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'='))
            };
            if end {
                break;
            }
            i += 1;
        }
        if i == value_start || &text[value_start..i] == REDACTED {
            continue;
        }
        out.push_str(&text[copied..value_start]);
        out.push_str(REDACTED);
        copied = i;
        from = i;
    }
    out.push_str(&text[copied..]);
    out
}

/// Removes internals from text: hex addresses (`0x` and 4+ hex digits) become
/// `[addr]` (and `PointerOffset(…)` positions disappear), URLs (`scheme://…`)
/// `[url]` (and reqwest's ` for url (…)` disappears), lines of stack text are
/// dropped, control characters other than newlines and tabs removed.
pub fn strip_internals(text: &str) -> String {
    let mut lines = Vec::new();
    for line in text.split('\n') {
        let t = line.trim_start();
        let frame = t.starts_with("at ") && (line.len() != t.len())
            || t.starts_with("stack backtrace")
            || t.contains("panicked at")
            || t.starts_with("note: run with `RUST_BACKTRACE")
            || is_numbered_frame(t);
        if !frame {
            lines.push(line);
        }
    }
    let joined = lines.join("\n");
    let no_addr = replace_hex_addresses(&joined);
    let no_url = replace_urls(&no_addr);
    let tidy = no_url
        .replace(" at PointerOffset([addr])", "")
        .replace("PointerOffset([addr])", "[addr]")
        .replace(" for url ([url])", "");
    tidy.chars().filter(|c| !c.is_control() || matches!(c, '\n' | '\t')).collect()
}

/// `12: some::frame` (a numbered backtrace frame).
fn is_numbered_frame(t: &str) -> bool {
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    digits > 0 && t[digits..].starts_with(": ") && t.contains("::")
}

fn replace_hex_addresses(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut copied = 0;
    while i + 1 < b.len() {
        let boundary = i == 0 || !b[i - 1].is_ascii_alphanumeric();
        if boundary && b[i] == b'0' && (b[i + 1] == b'x' || b[i + 1] == b'X') {
            let n = b[i + 2..].iter().take_while(|c| c.is_ascii_hexdigit()).count();
            if n >= 4 {
                out.push_str(&text[copied..i]);
                out.push_str("[addr]");
                i += 2 + n;
                copied = i;
                continue;
            }
        }
        i += 1;
    }
    out.push_str(&text[copied..]);
    out
}

fn replace_urls(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut from = 0;
    while let Some(pos) = text[from..].find("://") {
        let sep = from + pos;
        let mut start = sep;
        while start > 0 && (b[start - 1].is_ascii_alphanumeric() || matches!(b[start - 1], b'+' | b'.' | b'-')) {
            start -= 1;
        }
        let mut end = sep + 3;
        while end < b.len()
            && !b[end].is_ascii_whitespace()
            && !matches!(b[end], b'"' | b'\'' | b'<' | b'>' | b'(' | b')' | b'[' | b']' | b'{' | b'}' | b'`' | b',')
        {
            end += 1;
        }
        from = end.max(sep + 3);
        if start == sep || start < copied {
            continue;
        }
        out.push_str(&text[copied..start]);
        out.push_str("[url]");
        copied = end;
    }
    out.push_str(&text[copied..]);
    out
}

/// At most `max` characters.
fn cut_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => s[..i].to_string(),
        None => s.to_string(),
    }
}

/// At most `max` bytes, cut on a character boundary.
fn cut_bytes(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const KEY: &str = "daydream_live_SECRETKEY_123456";

    #[test]
    fn relayed_json_is_passed_as_is_unless_it_may_carry_a_credential() {
        let s = Scrubber::new([KEY]);
        let clean = bytes::Bytes::from_static(br#"{"success":true,"data":{"state":"ONLINE","fps":30}}"#);
        let out = s.json_bytes(clean.clone());
        assert_eq!(out.as_ptr(), clean.as_ptr(), "no copy");
        // The key, a credential word in any case: parsed and scrubbed.
        for body in [
            format!(r#"{{"data":{{"echo":"{KEY}"}}}}"#),
            r#"{"data":{"AUTHORIZATION":"Bearer abc"}}"#.to_string(),
            r#"{"data":{"x":"bEaReR abcdef"}}"#.to_string(),
            r#"{"data":{"X-Api-Key":"abcdef"}}"#.to_string(),
            r#"{"data":{"apiKey":"abcdef"}}"#.to_string(),
        ] {
            let out = s.json_bytes(bytes::Bytes::from(body.clone()));
            let text = String::from_utf8_lossy(&out).to_string();
            assert!(!text.contains("SECRETKEY") && !text.contains("abc"), "{body} -> {text}");
            assert!(serde_json::from_str::<Value>(&text).is_ok(), "still JSON: {text}");
        }
    }

    #[test]
    fn secrets_and_credential_values_are_redacted() {
        let s = Scrubber::new([KEY, "short"]);
        let echoed = format!("GET /v1/streams\r\nAuthorization: Bearer {KEY}\r\nhost: x\r\n\r\nkey={KEY}");
        let out = s.text(&echoed);
        assert!(!out.contains("SECRETKEY"), "{out}");
        assert!(out.contains("Authorization: [redacted]\r\nhost: x"), "{out}");
        assert_eq!(s.text("authorization=Basic dXNlcjpwYXNz&x=1"), "authorization=[redacted]&x=1");
        assert_eq!(s.text(r#"{"Authorization":"Bearer abc.def"}"#), r#"{"Authorization":"[redacted]"}"#);
        assert_eq!(s.text("token: bearer   abc-123 rest"), "token: bearer   [redacted] rest");
        assert_eq!(s.text("no auth here; short stays"), "no auth here; short stays");
        let v = s.value(json!({"headers": {"authorization": "x", "X-Api-Key": "y"}, "note": format!("k {KEY}")}));
        assert_eq!(v, json!({"headers": {"authorization": REDACTED, "X-Api-Key": REDACTED}, "note": "k [redacted]"}));
    }

    #[test]
    fn internals_are_stripped() {
        let sdp = "SDP parse: Parse error at PointerOffset(0x7f3a2c001234)\nUnexpected `x`";
        assert_eq!(strip_internals(sdp), "SDP parse: Parse error\nUnexpected `x`");
        let unreachable = "error sending request for url (http://127.0.0.1:4000/v1/streams): client error (Connect)";
        assert_eq!(strip_internals(unreachable), "error sending request: client error (Connect)");
        assert_eq!(strip_internals("see https://internal.example/x?token=1 now"), "see [url] now");
        assert_eq!(strip_internals("boom\n   at main (src/x.js:1)\nnext"), "boom\nnext");
        assert_eq!(strip_internals("value 0x12 stays, 0xdeadbeef goes"), "value 0x12 stays, [addr] goes");
        let s = Scrubber::default();
        assert_eq!(s.message("\n  first line\nsecond"), "first line");
        assert_eq!(s.message(&"x".repeat(1000)).len(), MAX_MESSAGE);
    }

    #[test]
    fn error_bodies_are_bounded_known_fields_or_a_plain_string() {
        let s = Scrubber::new([KEY]);
        let body = json!({
            "success": false, "error": "Bad", "code": "X", "status": 400,
            "headers": {"authorization": format!("Bearer {KEY}")},
            "details": {"echo": format!("Bearer {KEY}"), "deep": {"a": {"b": {"c": 1}}}},
        });
        let d = s.details_json(&body);
        assert_eq!(d["error"], "Bad");
        assert!(d.get("headers").is_none(), "unknown fields dropped: {d}");
        assert!(!d.to_string().contains("SECRETKEY"), "{d}");
        assert_eq!(d["details"]["deep"]["a"]["b"], Value::Null, "depth bounded: {d}");
        let big = json!({"error": "e", "details": "y".repeat(10_000), "message": "m".repeat(5000)});
        let d = s.details_json(&big);
        assert!(d.is_object() && d.get("details").is_some() && d.to_string().len() <= MAX_DETAILS, "{d}");
        let huge = json!({"error": "e", "details": vec!["z".repeat(500); 16], "message": "m"});
        assert!(s.details_json(&huge).get("details").is_none());
        let text = s.details_json(&json!(format!("<html>{}</html>", "a".repeat(5000))));
        assert!(text.as_str().unwrap().len() <= MAX_DETAILS);
        assert_eq!(s.details_text("é".repeat(3000).as_bytes()).len(), MAX_DETAILS);
    }
}
