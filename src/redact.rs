//! Secrets out of logs and error bodies.
//!
//! Owns one pure function, [`redact`], that replaces what looks like a credential in
//! a piece of text with `[redacted]`: the values of `Authorization`,
//! `Proxy-Authorization`, `Cookie` and `Set-Cookie` headers (as raw heads, escaped
//! heads or debug-printed header maps), `tg1.` receipts, bearer tokens, tollgate's
//! receipt and claim cookies, `claim_token` fields, and the literal secrets registered
//! at start (the admin token). Every log line passes through it ([`RedactingStderr`],
//! installed in `main`), whichever crate wrote it (pingora logs a malformed request's
//! raw head), and so does every error message tollgate sends. It never fails and never
//! logs.

use std::borrow::Cow;
use std::io::Write;
use std::sync::RwLock;

/// What a secret is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Literal secrets of this process (e.g. the admin token), replaced wherever seen.
static KNOWN: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Registers a literal secret to redact everywhere (ignored if shorter than 8 bytes:
/// a short string would redact ordinary words).
pub fn register_secret(secret: &[u8]) {
    let Ok(s) = std::str::from_utf8(secret) else {
        return;
    };
    if s.len() >= 8 {
        if let Ok(mut known) = KNOWN.write() {
            known.push(s.to_string());
        }
    }
}

/// Header names whose values are credentials (matched case-insensitively, also as a
/// suffix: `proxy-authorization`, `set-cookie`).
const HEADERS: [&str; 2] = ["authorization", "cookie"];
/// Markers after which a credential follows.
const TOKEN_MARKERS: [&str; 6] = [
    "tg1.",
    "bearer ",
    "gnap ",
    "tollgate_receipt=",
    "tollgate_basket=",
    "tollgate_claim_",
];

/// `text` with every credential-looking part replaced by [`REDACTED`]; borrowed
/// unchanged when there is nothing to hide (the common case costs one scan).
pub fn redact(text: &str) -> Cow<'_, str> {
    let lower = text.to_ascii_lowercase();
    let guard = KNOWN.read();
    let known: &[String] = guard.as_deref().map_or(&[], Vec::as_slice);
    let suspicious = HEADERS.iter().any(|h| lower.contains(h))
        || TOKEN_MARKERS.iter().any(|m| lower.contains(m))
        || lower.contains("claim_token")
        || known.iter().any(|k| text.contains(k.as_str()));
    if !suspicious {
        return Cow::Borrowed(text);
    }
    let mut spans: Vec<(usize, usize)> = Vec::new();
    let bytes = text.as_bytes();
    for h in HEADERS {
        for (at, _) in lower.match_indices(h) {
            if let Some(span) = header_value(bytes, at + h.len()) {
                spans.push(span);
            }
        }
    }
    for (at, _) in lower.match_indices("claim_token") {
        if let Some(span) = field_value(bytes, at + "claim_token".len()) {
            spans.push(span);
        }
    }
    for m in TOKEN_MARKERS {
        for (at, _) in lower.match_indices(m) {
            let mut start = at + m.len();
            if m == "tollgate_claim_" {
                // tollgate_claim_<payment id>=<token>
                let Some(eq) = text[start..].find('=') else {
                    continue;
                };
                start += eq + 1;
            }
            if m == "bearer " || m == "gnap " {
                start += text[start..].len() - text[start..].trim_start().len();
            }
            let end = token_end(bytes, start);
            if end > start {
                spans.push((start, end));
            }
        }
    }
    for k in known {
        for (at, _) in text.match_indices(k.as_str()) {
            spans.push((at, at + k.len()));
        }
    }
    if spans.is_empty() {
        return Cow::Borrowed(text);
    }
    spans.sort_unstable();
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    for (start, end) in spans {
        if end <= pos {
            continue;
        }
        let start = start.max(pos);
        out.push_str(&text[pos..start]);
        out.push_str(REDACTED);
        pos = end;
    }
    out.push_str(&text[pos..]);
    Cow::Owned(out)
}

/// After a header name at `from`: the span of its value, if a `:` follows (through
/// quotes, backslashes of escaped text and spaces), up to the end of the value.
fn header_value(b: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut i = from;
    let mut colon = false;
    while i < b.len() && matches!(b[i], b'"' | b'\\' | b'\'' | b' ' | b':') {
        colon |= b[i] == b':';
        i += 1;
    }
    if !colon || i >= b.len() {
        return None;
    }
    let start = i;
    while i < b.len() && !matches!(b[i], b'"' | b'\\' | b'\r' | b'\n') {
        i += 1;
    }
    (i > start).then_some((start, i))
}

/// After a field name (`claim_token`) at `from`: the span of its value, if a `:` or
/// `=` follows (JSON or form).
fn field_value(b: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut i = from;
    let mut sep = false;
    while i < b.len() && matches!(b[i], b'"' | b'\\' | b' ' | b':' | b'=') {
        sep |= matches!(b[i], b':' | b'=');
        i += 1;
    }
    if !sep {
        return None;
    }
    let end = token_end(b, i);
    (end > i).then_some((i, end))
}

/// The end of a token starting at `from`: base64url, hex, `.`, `%`, `+`, `/`, `=`.
fn token_end(b: &[u8], from: usize) -> usize {
    let mut i = from;
    while i < b.len()
        && (b[i].is_ascii_alphanumeric()
            || matches!(b[i], b'-' | b'_' | b'.' | b'%' | b'+' | b'/' | b'='))
    {
        i += 1;
    }
    i
}

/// A `tracing_subscriber` writer: each log event is buffered, redacted as a whole and
/// written to stderr in one piece.
#[derive(Debug, Clone, Copy, Default)]
pub struct RedactingStderr;

/// One event's buffer; written (redacted) when dropped.
#[derive(Debug, Default)]
pub struct RedactingWriter(Vec<u8>);

impl Write for RedactingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for RedactingWriter {
    fn drop(&mut self) {
        if self.0.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&self.0);
        let _ = std::io::stderr().write_all(redact(&text).as_bytes());
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RedactingStderr {
    type Writer = RedactingWriter;

    fn make_writer(&'a self) -> RedactingWriter {
        RedactingWriter::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECEIPT: &str = "tg1.eyJoIjoiNDFiMTBlMGJkMDA5In0.LEr82PHTyc1RTatYfER1CNQy84h5RVBu";

    fn clean(s: &str) -> String {
        let out = redact(s).into_owned();
        assert!(!out.contains("LEr82PHTyc"), "{out}");
        assert!(!out.contains("s3cret"), "{out}");
        out
    }

    #[test]
    fn raw_and_escaped_heads_lose_their_credentials() {
        let raw = format!("GET / HTTP/1.1\r\nAuthorization: Tollgate {RECEIPT}\r\nCookie: a=1; tollgate_receipt={RECEIPT}\r\nHost: x\r\n");
        let out = clean(&raw);
        assert!(
            out.contains("Authorization: [redacted]\r\nCookie: [redacted]\r\nHost: x"),
            "{out}"
        );
        // pingora's escape_ascii() and a JSON log's escaping.
        let escaped = raw.replace('\r', "\\r").replace('\n', "\\n");
        assert!(clean(&escaped).contains("Host: x"));
        let json = serde_json::to_string(&raw).unwrap();
        clean(&json);
        // A debug-printed header map.
        let debug = format!("{{\"authorization\": \"Bearer s3cret-token\", \"set-cookie\": \"tollgate_receipt={RECEIPT}; Path=/\", \"host\": \"x\"}}");
        let out = clean(&debug);
        assert!(out.contains("\"host\": \"x\""), "{out}");
        let proxy = "Proxy-Authorization: Basic s3cretpassword";
        assert_eq!(clean(proxy), "Proxy-Authorization: [redacted]");
    }

    #[test]
    fn tokens_anywhere_are_redacted() {
        assert_eq!(
            clean(&format!("GET /x?r={RECEIPT} HTTP/1.1")),
            "GET /x?r=tg1.[redacted] HTTP/1.1"
        );
        assert_eq!(
            clean("method \"Bearer s3cret-abc\""),
            "method \"Bearer [redacted]\""
        );
        assert_eq!(
            clean("set tollgate_basket=q3Vx_secret-1; Path=/"),
            "set tollgate_basket=[redacted]; Path=/"
        );
        assert_eq!(
            clean("authz GNAP  0p3nPaym3ntsT0ken, next"),
            "authz GNAP  [redacted], next"
        );
        assert_eq!(
            clean("{\"claim_token\":\"s3cretClaimToken_-x\",\"a\":1}"),
            "{\"claim_token\":\"[redacted]\",\"a\":1}"
        );
        assert_eq!(
            clean("claim_token=s3cretX&b=2"),
            "claim_token=[redacted]&b=2"
        );
        assert_eq!(
            clean("tollgate_claim_0123456789abcdef=s3cretY; x=1"),
            "tollgate_claim_0123456789abcdef=[redacted]; x=1"
        );
    }

    #[test]
    fn ordinary_text_is_untouched_and_borrowed() {
        for s in [
            "tollgate starting listen=127.0.0.1:8080",
            "payment state payment=0123 from=new to=seen",
            "the claim cookie proves it",
            "tollgate ready: public http://127.0.0.1:1",
        ] {
            assert!(matches!(redact(s), Cow::Borrowed(_)), "{s}");
        }
    }

    #[test]
    fn registered_secrets_are_redacted_verbatim() {
        register_secret(b"s3cret-admin-verbatim");
        register_secret(b"short");
        assert_eq!(
            redact("method not found: \"s3cret-admin-verbatim\"").into_owned(),
            "method not found: \"[redacted]\""
        );
        assert!(matches!(redact("a short word"), Cow::Borrowed(_)));
    }
}
