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
        } else if self.semicolon {
            "';' path parameters"
        } else {
            "a percent-escape an origin may decode"
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
            // Raw like escaped: its canonical form is the escape (`%5C`, `%00`).
            match b {
                b'\\' => hazards.backslash = true,
                0 => hazards.nul = true,
                _ => {}
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

/// Most distinct readings [`lenient_readings`] explores before giving up (the
/// caller then refuses the path as ambiguous: fail closed).
pub const MAX_READINGS: usize = 256;

/// Bound on the bytes of all readings explored for one path (so a long path full of
/// escapes costs at most a few hundred KiB of work, not `MAX_READINGS` × its length).
pub const MAX_READING_BYTES: usize = 256 * 1024;

/// True when a lenient origin could read the canonical `path` as another path: it
/// still holds a percent-escape (which an origin may decode: `%2F`, `%5C`, `%00`,
/// `%3B`, `%25`…) or a `;` (path parameters some origins strip).
pub fn has_other_readings(path: &str) -> bool {
    path.bytes().any(|b| b == b'%' || b == b';')
}

/// Every canonical path a lenient origin might read `canonical` as, other than
/// `canonical` itself; `None` when there are more than [`MAX_READINGS`], or their
/// bytes exceed [`MAX_READING_BYTES`].
///
/// The readings are the closure of `canonical` under every transformation origins
/// are known to apply, in every order, to a fixed point: percent-decoding once more
/// (so `%2F`/`%2f` and `%5C` become separators, `%00` a NUL, `%3B` a `;`, and
/// `%252e` a `%2e`: double decoding), the same but keeping `%2F` encoded, stripping `;…` from each segment (Tomcat),
/// `\` as `/` (IIS, Windows), cutting at a NUL (C strings) or at a decoded `?`/`#`,
/// and resolving `.`/`..`. Each reading is then canonicalised again twice: as still
/// percent-encoded, and as literal bytes (an origin that stops decoding there), and
/// ASCII lower-cased when `lowercase` (case-insensitive origins). Used only to refuse
/// requests whose other readings would reach priced content; it does no IO.
pub fn lenient_readings(canonical: &str, lowercase: bool) -> Option<Vec<String>> {
    type Op = fn(&[u8]) -> Vec<u8>;
    const OPS: [Op; 7] = [
        decode_once,
        decode_but_slash,
        strip_params,
        backslash_as_slash,
        cut_at_nul,
        cut_at_query,
        resolve_dots,
    ];
    let start = canonical.as_bytes().to_vec();
    let mut seen: std::collections::HashSet<Vec<u8>> = std::collections::HashSet::new();
    seen.insert(start.clone());
    let mut bytes = canonical.len();
    let mut queue = vec![start];
    while let Some(cur) = queue.pop() {
        for op in OPS {
            let next = op(&cur);
            if next != cur && seen.insert(next.clone()) {
                bytes += next.len();
                if seen.len() > MAX_READINGS || bytes > MAX_READING_BYTES {
                    return None;
                }
                queue.push(next);
            }
        }
    }
    let mut out: Vec<String> = seen
        .iter()
        .flat_map(|r| {
            [
                recanonicalize(r, Interpretation::Encoded, lowercase),
                recanonicalize(r, Interpretation::Literal, lowercase),
            ]
        })
        .filter(|r| r != canonical)
        .collect();
    out.sort_unstable();
    out.dedup();
    Some(out)
}

/// How an origin takes the bytes of a reading as its final path.
#[derive(Clone, Copy)]
enum Interpretation {
    /// Still percent-encoded (`%41` is `A`, `%2F` a `/` inside a segment).
    Encoded,
    /// As they are: a `%` is a `%` (an origin that does not decode, or no more).
    Literal,
}

/// The canonical form of a reading under `how`; an empty reading is `/`.
fn recanonicalize(reading: &[u8], how: Interpretation, lowercase: bool) -> String {
    let mut fixed = Vec::with_capacity(reading.len() + 1);
    if reading.first() != Some(&b'/') {
        fixed.push(b'/');
    }
    for (i, &b) in reading.iter().enumerate() {
        let escape = b == b'%'
            && reading.get(i + 1).copied().and_then(hex_val).is_some()
            && reading.get(i + 2).copied().and_then(hex_val).is_some();
        match (b, how) {
            (b'%', Interpretation::Encoded) if escape => fixed.push(b),
            (b'%', _) => fixed.extend_from_slice(b"%25"),
            // A decoded `?`/`#` is a character of the name here (cutting there is
            // its own reading).
            (b'?', _) => fixed.extend_from_slice(b"%3F"),
            (b'#', _) => fixed.extend_from_slice(b"%23"),
            _ => fixed.push(b),
        }
    }
    let mut path = canonicalize(&fixed)
        .map(|t| t.path)
        .unwrap_or_else(|_| "/".into());
    if lowercase {
        path.make_ascii_lowercase();
    }
    path
}

fn decode_once(b: &[u8]) -> Vec<u8> {
    decode(b, false)
}

/// Decoding once but keeping `%2F`: origins that never make an encoded slash a
/// separator but decode the rest (`%5C` too, which `\` as `/` then makes one).
fn decode_but_slash(b: &[u8]) -> Vec<u8> {
    decode(b, true)
}

fn decode(b: &[u8], keep_slash: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if let (Some(hi), Some(lo)) = (
                b.get(i + 1).copied().and_then(hex_val),
                b.get(i + 2).copied().and_then(hex_val),
            ) {
                let v = (hi << 4) | lo;
                if !(keep_slash && v == b'/') {
                    out.push(v);
                    i += 3;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

fn strip_params(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    for (i, seg) in b.split(|&c| c == b'/').enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        let end = seg.iter().position(|&c| c == b';').unwrap_or(seg.len());
        out.extend_from_slice(&seg[..end]);
    }
    out
}

fn backslash_as_slash(b: &[u8]) -> Vec<u8> {
    b.iter()
        .map(|&c| if c == b'\\' { b'/' } else { c })
        .collect()
}

fn cut_at_nul(b: &[u8]) -> Vec<u8> {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    b[..end].to_vec()
}

fn cut_at_query(b: &[u8]) -> Vec<u8> {
    let end = b
        .iter()
        .position(|&c| c == b'?' || c == b'#')
        .unwrap_or(b.len());
    b[..end].to_vec()
}

fn resolve_dots(b: &[u8]) -> Vec<u8> {
    let mut stack: Vec<&[u8]> = Vec::new();
    let mut trailing_slash = false;
    for seg in b.split(|&c| c == b'/').skip(1) {
        trailing_slash = matches!(seg, b"" | b"." | b"..");
        match seg {
            b"" | b"." => {}
            b".." => {
                stack.pop();
            }
            s => stack.push(s),
        }
    }
    let mut out = Vec::with_capacity(b.len());
    for s in &stack {
        out.push(b'/');
        out.extend_from_slice(s);
    }
    if trailing_slash || stack.is_empty() {
        out.push(b'/');
    }
    out
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

    // Rules out (found by the canonical fuzz target): a raw NUL byte in a spelling not
    // flagged as the NUL hazard its canonical form (`%00`) is flagged with, so that a
    // canonical path had a hazard its spelling had not.
    #[test]
    fn a_raw_nul_is_a_nul_hazard_like_an_escaped_one() {
        let t = canonicalize(b"/o\0.x/y").unwrap();
        assert_eq!(t.path, "/o%00.x/y");
        assert!(t.hazards.nul);
        assert_eq!(canonicalize(t.path.as_bytes()).unwrap().hazards, t.hazards);
    }

    fn readings(s: &str) -> Vec<String> {
        lenient_readings(&canon(s), false).unwrap()
    }

    #[test]
    fn readings_expose_what_a_lenient_origin_sees() {
        let has = |s: &str, want: &str| {
            let r = readings(s);
            assert!(r.iter().any(|x| x == want), "{s}: {r:?}");
        };
        has("/movies%2Fx", "/movies/x");
        has("/free%2F..%2Fmovies/x", "/movies/x");
        has("/free\\..\\movies\\x", "/movies/x");
        has("/movies/x%00.free", "/movies/x");
        has("/free/..;/movies/x", "/movies/x");
        // The combination the single-pass reading missed: strip ";…" first, then the
        // decoded "\" and NUL are gone with it.
        has("/;%5C%00/movies/x", "/movies/x");
        // Double decoding and decoded delimiters.
        has("/free/%252e%252e/movies/x", "/movies/x");
        has("/movies%3Bx", "/movies");
        has("/movies/x%3F.free", "/movies/x");
        // Found by the canonical fuzz target: an origin that decodes all but "%2F"
        // and takes "\" as "/" resolves ".." against "r%2Fx" as one segment.
        has("/r%2Fx%5C..%5Cmovies%5Cx", "/movies/x");
        // Nothing to read differently: no readings.
        assert!(readings("/movies/x").is_empty());
        // UTF-8 decodes to itself; only an origin that never decodes sees another name.
        assert_eq!(readings("/caf%C3%A9"), vec!["/caf%25C3%25A9"]);
        // Literal readings: an origin that decodes once and stops names "%2e" a file.
        has("/articles/%252e%00/a", "/articles/%252e");
        assert!(!has_other_readings("/a/b.c"));
        assert!(has_other_readings("/a;b"));
    }

    #[test]
    fn readings_are_bounded() {
        let deep = format!("/%{}", "25".repeat(300));
        assert!(lenient_readings(&canon(&deep), false).is_none());
        // A long path full of escapes is bounded by bytes, not only by count.
        let long = format!("/{}", "a%2Fb;c/".repeat(16 * 1024));
        assert!(lenient_readings(&canon(&long), false).is_none());
        let lower = lenient_readings(&canon("/MOVIES%2Fx"), true).unwrap();
        assert!(lower.contains(&"/movies/x".to_string()), "{lower:?}");
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
