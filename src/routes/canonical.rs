//! Path canonicalisation (SPEC section 4, invariant 1: price what you forward).
//!
//! Owns turning a raw request-target into the one canonical path that is used both
//! for route matching and for forwarding to the origin. It decodes percent-encoded
//! unreserved characters, resolves `.` and `..`, collapses `//`, and records every
//! construct that an origin could read differently from us (encoded `/`, `\`, NUL,
//! invalid UTF-8, `;` path parameters). It does no IO and never decides a price: the
//! caller checks the hazards against the route table.

/// Constructs in a path that different servers interpret differently.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hazards {
    /// `%2F` inside a segment.
    pub encoded_slash: bool,
    /// `\` raw or as `%5C`.
    pub backslash: bool,
    /// `%00`.
    pub nul: bool,
    /// Percent-escapes that decode to bytes that are not UTF-8.
    pub invalid_utf8: bool,
    /// `;` matrix parameters (some servers strip `;…` from segments).
    pub semicolon: bool,
}

impl Hazards {
    /// True when any hazard is present.
    pub fn any(&self) -> bool {
        self.encoded_slash || self.backslash || self.nul || self.invalid_utf8 || self.semicolon
    }

    /// A short human description for error messages.
    pub fn describe(&self) -> &'static str {
        if self.encoded_slash {
            "encoded '/' (%2F)"
        } else if self.backslash {
            "backslash"
        } else if self.nul {
            "NUL byte"
        } else if self.invalid_utf8 {
            "invalid UTF-8"
        } else {
            "';' path parameters"
        }
    }
}

/// A request-target split into its canonical path and untouched query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonicalTarget {
    /// The canonical path, always starting with `/`.
    pub path: String,
    /// The query without the `?`, as received.
    pub query: Option<String>,
    /// What in the path could be read differently by the origin.
    pub hazards: Hazards,
}

/// Why a request-target cannot be canonicalised at all (always a 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// Not origin-form or absolute-form.
    #[error("request target must start with '/'")]
    NotOriginForm,
    /// A `%` not followed by two hex digits.
    #[error("malformed percent-escape in path")]
    BadEscape,
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Bytes that may stand unescaped in a canonical path besides unreserved ones.
fn is_plain_path_byte(b: u8) -> bool {
    is_unreserved(b)
        || matches!(
            b,
            b'!' | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
        )
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

fn push_escaped(out: &mut String, b: u8) {
    out.push('%');
    out.push(HEX[usize::from(b >> 4)] as char);
    out.push(HEX[usize::from(b & 15)] as char);
}

/// Canonicalises a raw request-target (origin-form `/p?q`, or absolute-form
/// `http://host/p?q`). Errors are client mistakes (400).
pub fn canonicalize(raw: &[u8]) -> Result<CanonicalTarget, TargetError> {
    let raw = strip_absolute_form(raw);
    let (path, query) = match raw.iter().position(|&b| b == b'?') {
        Some(i) => (&raw[..i], Some(&raw[i + 1..])),
        None => (raw, None),
    };
    if path.first() != Some(&b'/') {
        return Err(TargetError::NotOriginForm);
    }
    if already_canonical(path) {
        // The common case: nothing to decode or resolve (one allocation, no copies).
        return Ok(CanonicalTarget {
            path: String::from_utf8_lossy(path).into_owned(),
            query: query.map(|q| String::from_utf8_lossy(q).into_owned()),
            hazards: Hazards::default(),
        });
    }
    let mut hazards = Hazards::default();
    let mut out = String::with_capacity(path.len());
    let mut decoded = Vec::with_capacity(path.len());
    let mut i = 0;
    while i < path.len() {
        let b = path[i];
        if b == b'%' {
            let hi = path.get(i + 1).copied().and_then(hex_val);
            let lo = path.get(i + 2).copied().and_then(hex_val);
            let (Some(hi), Some(lo)) = (hi, lo) else {
                return Err(TargetError::BadEscape);
            };
            let v = (hi << 4) | lo;
            decoded.push(v);
            if is_unreserved(v) {
                out.push(v as char);
            } else {
                match v {
                    b'/' => hazards.encoded_slash = true,
                    b'\\' => hazards.backslash = true,
                    0 => hazards.nul = true,
                    _ => {}
                }
                push_escaped(&mut out, v);
            }
            i += 3;
            continue;
        }
        decoded.push(b);
        if b == b'/' || is_plain_path_byte(b) {
            if b == b';' {
                hazards.semicolon = true;
            }
            out.push(b as char);
        } else {
            if b == b'\\' {
                hazards.backslash = true;
            }
            push_escaped(&mut out, b);
        }
        i += 1;
    }
    if std::str::from_utf8(&decoded).is_err() {
        hazards.invalid_utf8 = true;
    }
    Ok(CanonicalTarget {
        path: remove_dot_segments(&out),
        query: query.map(|q| String::from_utf8_lossy(q).into_owned()),
        hazards,
    })
}

/// True when `path` is its own canonical form: only plain bytes (no `%`, `\`, `;`),
/// no empty segment (`//`) and no `.`/`..` segment.
fn already_canonical(path: &[u8]) -> bool {
    let plain = path
        .iter()
        .all(|&b| b == b'/' || (is_plain_path_byte(b) && b != b';'));
    plain
        && !path.windows(2).any(|w| w == b"//")
        && path
            .split(|&b| b == b'/')
            .all(|seg| seg != b"." && seg != b"..")
}

fn strip_absolute_form(raw: &[u8]) -> &[u8] {
    for scheme in [&b"http://"[..], &b"https://"[..]] {
        if raw.len() > scheme.len() && raw[..scheme.len()].eq_ignore_ascii_case(scheme) {
            let rest = &raw[scheme.len()..];
            // "http://host" and "http://host?q" have an empty path: it is "/".
            return match rest.iter().position(|&b| b == b'/' || b == b'?') {
                Some(i) if rest[i] == b'/' => &rest[i..],
                _ => b"/",
            };
        }
    }
    raw
}

/// Resolves `.` and `..` (never above the root) and collapses empty segments.
/// A trailing `/` (or a trailing `.`/`..` segment) keeps the result a directory.
pub fn remove_dot_segments(path: &str) -> String {
    let mut stack: Vec<&str> = Vec::new();
    let mut trailing_slash = false;
    for seg in path.split('/').skip(1) {
        trailing_slash = false;
        match seg {
            "" => trailing_slash = true,
            "." => trailing_slash = true,
            ".." => {
                stack.pop();
                trailing_slash = true;
            }
            s => stack.push(s),
        }
    }
    let mut out = String::with_capacity(path.len());
    for s in &stack {
        out.push('/');
        out.push_str(s);
    }
    if trailing_slash || stack.is_empty() {
        out.push('/');
    }
    out
}

/// The path as a lenient origin might read it: `%2F` and `\` as `/`, everything
/// after a NUL dropped, `;…` stripped from each segment, then dots resolved again.
/// Used only to refuse requests whose alternative reading would reach priced content.
pub fn alternate_reading(canonical: &str) -> String {
    let mut s = canonical.to_string();
    if let Some(i) = s.find("%00") {
        s.truncate(i);
    }
    let s = s.replace("%2F", "/").replace("%5C", "/");
    let stripped: Vec<&str> = s
        .split('/')
        .map(|seg| seg.split(';').next().unwrap_or(""))
        .collect();
    let joined = stripped.join("/");
    let joined = if joined.starts_with('/') {
        joined
    } else {
        format!("/{joined}")
    };
    remove_dot_segments(&joined)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> String {
        canonicalize(s.as_bytes()).unwrap().path
    }

    #[test]
    fn dots_and_double_slashes_resolve() {
        assert_eq!(canon("/a/./b"), "/a/b");
        assert_eq!(canon("/a/../b"), "/b");
        assert_eq!(canon("/../../b"), "/b");
        assert_eq!(canon("//a///b"), "/a/b");
        assert_eq!(canon("/a/b/"), "/a/b/");
        assert_eq!(canon("/a/b/.."), "/a/");
        assert_eq!(canon("/"), "/");
        assert_eq!(canon("/free/%2e%2e/movies/x"), "/movies/x");
        assert_eq!(canon("/free/.%2E/movies/x"), "/movies/x");
    }

    #[test]
    fn unreserved_escapes_decode_and_others_normalise() {
        assert_eq!(canon("/%6Dovies/%78"), "/movies/x");
        assert_eq!(canon("/a%7eb"), "/a~b");
        assert_eq!(canon("/caf%c3%a9"), "/caf%C3%A9");
        assert_eq!(canon("/a b"), "/a%20b");
        assert_eq!(canon("/q?x=%2F&y"), "/q");
        let t = canonicalize(b"/q?x=%2F&y").unwrap();
        assert_eq!(t.query.as_deref(), Some("x=%2F&y"));
    }

    #[test]
    fn hazards_are_recorded() {
        let h = |s: &str| canonicalize(s.as_bytes()).unwrap().hazards;
        assert!(h("/movies%2Fx").encoded_slash);
        assert!(h("/movies%2fx").encoded_slash);
        assert!(h("/movies\\x").backslash);
        assert!(h("/movies%5cx").backslash);
        assert!(h("/movies/x%00.txt").nul);
        assert!(h("/movies/%ff").invalid_utf8);
        assert!(h("/free/..;/movies/x").semicolon);
        assert!(!h("/movies/x").any());
    }

    #[test]
    fn alternate_reading_exposes_what_a_lenient_origin_sees() {
        assert_eq!(alternate_reading(&canon("/movies%2Fx")), "/movies/x");
        assert_eq!(
            alternate_reading(&canon("/free%2F..%2Fmovies/x")),
            "/movies/x"
        );
        assert_eq!(
            alternate_reading(&canon("/free\\..\\movies\\x")),
            "/movies/x"
        );
        assert_eq!(alternate_reading(&canon("/movies/x%00.free")), "/movies/x");
        assert_eq!(alternate_reading(&canon("/free/..;/movies/x")), "/movies/x");
    }

    #[test]
    fn fast_path_agrees_with_the_full_algorithm() {
        for p in [
            "/",
            "/a",
            "/a/",
            "/a/b",
            "/a//b",
            "/a/./b",
            "/a/../b",
            "/a/.",
            "/a/..",
            "/.a/..b/",
            "/a;b",
            "/%41",
            "/a\\b",
            "//",
            "/a/b/c.html",
            "/~u/x-y_z",
        ] {
            let fast = already_canonical(p.as_bytes());
            if fast {
                assert_eq!(remove_dot_segments(p), p, "{p}");
            }
        }
        assert!(already_canonical(b"/a/b/"));
        assert!(already_canonical(b"/"));
        assert!(!already_canonical(b"/a//b"));
        assert!(!already_canonical(b"/a/./b"));
        assert!(!already_canonical(b"/a/.."));
    }

    #[test]
    fn malformed_targets_are_errors() {
        assert_eq!(canonicalize(b"/a%2"), Err(TargetError::BadEscape));
        assert_eq!(canonicalize(b"/a%zz"), Err(TargetError::BadEscape));
        assert_eq!(canonicalize(b"a/b"), Err(TargetError::NotOriginForm));
        assert_eq!(canon("http://host.example/a/../b?x"), "/b");
    }
}
