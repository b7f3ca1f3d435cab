//! Responses tollgate writes itself (402, 400, its own endpoints), as plain data.
//!
//! Handlers return a [`Reply`]; the proxy shell writes it once. Client mistakes
//! become a JSON `{code, message}` body with a 4xx status.

use bytes::Bytes;
use serde::Serialize;

/// A complete response: status, headers and body.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Extra headers (Content-Type and Content-Length are set from the body).
    pub headers: Vec<(&'static str, String)>,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// Body.
    pub body: Bytes,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: &'a str,
    message: &'a str,
}

impl Reply {
    /// A JSON reply.
    pub fn json<T: Serialize>(status: u16, value: &T) -> Reply {
        Reply {
            status,
            headers: vec![("Cache-Control", "no-store".into())],
            content_type: "application/json",
            body: Bytes::from(serde_json::to_vec(value).unwrap_or_default()),
        }
    }

    /// A JSON error `{code, message}`; the message is redacted (it may quote input).
    pub fn error(status: u16, code: &str, message: &str) -> Reply {
        let message = crate::redact::redact(message);
        Reply::json(
            status,
            &ErrorBody {
                code,
                message: &message,
            },
        )
    }

    /// An HTML page.
    pub fn html(status: u16, body: String) -> Reply {
        Reply {
            status,
            headers: vec![("Cache-Control", "no-store".into())],
            content_type: "text/html; charset=utf-8",
            body: Bytes::from(body),
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &'static str, value: String) -> Reply {
        self.headers.push((name, value));
        self
    }
}

/// True when the `Accept` header prefers JSON over HTML. Absent, `*/*` or a tie
/// where HTML is listed first means HTML (browsers); `application/json` ranked
/// above `text/html` (or listed alone) means JSON.
pub fn prefers_json(accept: Option<&[u8]>) -> bool {
    let Some(accept) = accept.and_then(|a| std::str::from_utf8(a).ok()) else {
        return false;
    };
    // q-values as integers in thousandths: no floats anywhere near a request.
    let mut json: Option<(u32, usize)> = None;
    let mut html: Option<(u32, usize)> = None;
    for (pos, item) in accept.split(',').enumerate() {
        let mut parts = item.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .map(parse_q)
            .next()
            .unwrap_or(1000);
        let slot = match media.as_str() {
            "application/json" => &mut json,
            m if m.starts_with("application/") && m.ends_with("+json") => &mut json,
            "text/html" | "application/xhtml+xml" => &mut html,
            _ => continue,
        };
        if slot.is_none_or(|(best, _)| q > best) {
            *slot = Some((q, pos));
        }
    }
    match (json, html) {
        (Some((qj, _)), None) => qj > 0,
        (Some((qj, pj)), Some((qh, ph))) => qj > qh || (qj == qh && pj < ph),
        _ => false,
    }
}

fn parse_q(s: &str) -> u32 {
    let s = s.trim();
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let whole: u32 = match int {
        "0" | "" => 0,
        "1" => 1000,
        _ => return 0,
    };
    let mut thousandths = 0u32;
    for (i, b) in frac.bytes().take(3).enumerate() {
        if !b.is_ascii_digit() {
            return 0;
        }
        thousandths += u32::from(b - b'0') * [100, 10, 1][i];
    }
    (whole + thousandths).min(1000)
}

/// Percent-encodes a query parameter value.
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_negotiation() {
        let j = |a: &str| prefers_json(Some(a.as_bytes()));
        assert!(!prefers_json(None));
        assert!(j("application/json"));
        assert!(j("application/json, text/html;q=0.9"));
        assert!(!j(
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
        ));
        assert!(!j("*/*"));
        assert!(!j("text/html, application/json"));
        assert!(j("application/json, text/html"));
        assert!(!j("application/json;q=0.5, text/html"));
        assert!(j("application/problem+json"));
        assert!(!j("application/json;q=0"));
    }

    #[test]
    fn escaping() {
        assert_eq!(query_escape("/a b?&=é"), "/a%20b%3F%26%3D%C3%A9");
    }
}
