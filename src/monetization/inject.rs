//! The Web Monetization link in proxied HTML (SPEC section 10, "Link injection").
//!
//! Owns three pure decisions and one state machine, all without IO:
//! - [`LinkInjection`]: which canonical paths get the link (`inject_link`, built once at
//!   start) and the rendered `<link rel="monetization" href="…">` tag;
//! - [`rewritable`]: whether a proxied response's body may get it (GET, a status with a
//!   full body, `text/html`, a coding [`Coding`] knows, no `no-transform`), and
//!   [`prepare_headers`]: what that changes in the header (framing, validators);
//! - [`HeadInjector`]: fed the decoded body chunk by chunk, it holds only the document's
//!   start (at most [`HEAD_LIMIT`] bytes), finds the `<head …>` start tag wherever the
//!   chunks split it, and emits the bytes with the link right after that tag, unless the
//!   head already carries the same link or there is no `<head>` at the start: then the
//!   bytes go out unchanged. After that decision every chunk passes through untouched.
//!
//! It never buffers beyond the head (or the limit), never fails on any input, and never
//! changes a byte other than inserting the one tag.

use std::sync::Arc;

use http::header::{self, HeaderMap};
use http::{Method, Version};
use pingora::http::ResponseHeader;

use super::codec::{Coding, DecodedFilter, FilterState};
use crate::config::WebMonetization;
use crate::routes::Pattern;

/// The most decoded bytes held while looking for the head and the end of its link
/// section: without a `<head>` start tag by then the page passes unchanged; with one
/// but no end of the head yet, the link goes in (a same link further down is not seen).
pub const HEAD_LIMIT: usize = 64 * 1024;

/// `<link rel="monetization" href="…">` for one wallet address, rendered once.
#[derive(Debug, Clone)]
pub struct MonetizationLink {
    tag: Arc<[u8]>,
    href: Arc<str>,
}

impl MonetizationLink {
    /// The link to `wallet_address`; the attribute value is HTML-escaped.
    pub fn new(wallet_address: &str) -> MonetizationLink {
        let tag = format!(
            "<link rel=\"monetization\" href=\"{}\">",
            escape_attribute(wallet_address)
        );
        MonetizationLink {
            tag: Arc::from(tag.into_bytes()),
            href: Arc::from(wallet_address),
        }
    }

    /// The tag's bytes, as inserted.
    pub fn tag(&self) -> &[u8] {
        &self.tag
    }

    /// The wallet address it points at (unescaped).
    pub fn href(&self) -> &str {
        &self.href
    }
}

/// Escapes `&`, `<`, `>`, `"` and `'` for a double-quoted attribute value.
fn escape_attribute(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Where proxied HTML gets the link: the `inject_link` patterns, parsed once at start.
#[derive(Debug, Clone)]
pub struct LinkInjection {
    patterns: Vec<Pattern>,
    link: MonetizationLink,
}

impl LinkInjection {
    /// Built from `[web_monetization]`; `None` when it is absent or `inject_link` is
    /// empty. `case_insensitive` (the origin's `upstream_case_insensitive`): patterns are
    /// lower-cased like the route table's, since paths arrive lower-cased. Patterns are
    /// validated by the config loader; one that does not parse is skipped.
    pub fn from_config(
        wm: Option<&WebMonetization>,
        case_insensitive: bool,
    ) -> Option<LinkInjection> {
        let wm = wm?;
        let patterns: Vec<Pattern> = wm
            .inject_link
            .iter()
            .filter_map(|p| {
                let p = if case_insensitive {
                    p.to_ascii_lowercase()
                } else {
                    p.clone()
                };
                Pattern::parse(&p).ok()
            })
            .collect();
        if patterns.is_empty() {
            return None;
        }
        Some(LinkInjection {
            patterns,
            link: MonetizationLink::new(&wm.wallet_address),
        })
    }

    /// True when HTML served for the canonical `path` gets the link.
    pub fn covers(&self, path: &str) -> bool {
        self.patterns.iter().any(|p| p.matches(path))
    }

    /// The link it inserts.
    pub fn link(&self) -> &MonetizationLink {
        &self.link
    }
}

/// Whether the proxied response to `method` with `status` and `headers` may get the link
/// in its body, and if so in which coding the body arrives (and leaves again).
///
/// `None` (untouched) for: any method but GET (so never HEAD); 1xx, 204, 205, 206 and
/// 304; a `Content-Type` other than `text/html`; a `Content-Encoding` that is stacked or
/// not gzip, deflate, br or identity; `Cache-Control: no-transform`; a `Content-Range`;
/// and `Content-Length: 0`.
pub fn rewritable(method: &Method, status: u16, headers: &HeaderMap) -> Option<Coding> {
    if method != Method::GET || status < 200 || matches!(status, 204 | 205 | 206 | 304) {
        return None;
    }
    let one = |name: header::HeaderName| {
        let mut all = headers.get_all(name).iter();
        match (all.next(), all.next()) {
            (None, _) => Some(None),
            (Some(v), None) => v.to_str().ok().map(Some),
            (Some(_), Some(_)) => None,
        }
    };
    let content_type = one(header::CONTENT_TYPE)??;
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    if !media_type.eq_ignore_ascii_case("text/html") {
        return None;
    }
    let no_transform = headers
        .get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|d| d.trim().eq_ignore_ascii_case("no-transform"));
    let empty = headers
        .get(header::CONTENT_LENGTH)
        .is_some_and(|v| v.as_bytes() == b"0");
    if no_transform || empty || headers.contains_key(header::CONTENT_RANGE) {
        return None;
    }
    Coding::from_content_encoding(one(header::CONTENT_ENCODING)?)
}

/// How the downstream response is framed once its length is no longer known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `Transfer-Encoding: chunked` (HTTP/1.1).
    Chunked,
    /// No length at all: the body ends when the connection closes (HTTP/1.0 clients,
    /// which do not understand chunked). The caller turns keep-alive off.
    CloseDelimited,
}

impl Framing {
    /// The framing for a request of `version`.
    pub fn for_request(version: Version) -> Framing {
        if version <= Version::HTTP_10 {
            Framing::CloseDelimited
        } else {
            Framing::Chunked
        }
    }
}

/// Adjusts the header of a response whose body [`HeadInjector`] may change: the length
/// is no longer known (`Content-Length` removed, re-framed per `framing`), ranges and
/// digests of the old bytes no longer apply (`Accept-Ranges`, `Content-MD5`, `Digest`,
/// `Content-Digest`, `Repr-Digest` removed), and a strong `ETag` becomes weak (`W/"…"`;
/// one that is not a valid quoted tag is removed). `Content-Encoding` and `Vary` stay:
/// the body leaves in the coding it came in, chosen by the origin.
pub fn prepare_headers(resp: &mut ResponseHeader, framing: Framing) -> pingora::Result<()> {
    for name in [
        "content-length",
        "accept-ranges",
        "content-md5",
        "digest",
        "content-digest",
        "repr-digest",
    ] {
        resp.remove_header(name);
    }
    match framing {
        Framing::Chunked => resp.insert_header(header::TRANSFER_ENCODING, "chunked")?,
        Framing::CloseDelimited => {
            resp.remove_header(&header::TRANSFER_ENCODING);
        }
    }
    let etag = resp
        .headers
        .get(header::ETAG)
        .map(|v| v.as_bytes().to_vec());
    match etag {
        Some(tag) if tag.starts_with(b"W/") => {}
        Some(tag) if tag.len() >= 2 && tag.starts_with(b"\"") && tag.ends_with(b"\"") => {
            let mut weak = b"W/".to_vec();
            weak.extend_from_slice(&tag);
            resp.insert_header(header::ETAG, weak)?;
        }
        Some(_) => {
            resp.remove_header(&header::ETAG);
        }
        None => {}
    }
    Ok(())
}

/// What a [`HeadInjector`] has decided so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Still looking: it holds the bytes seen so far.
    Holding,
    /// The link went in after the `<head …>` tag.
    Injected,
    /// The page passes unchanged: it has no `<head>` at its start (within
    /// [`HEAD_LIMIT`]), or its head already carries the same link.
    Unchanged,
}

/// The streaming injector: fed decoded body chunks, it returns the bytes to send.
///
/// It holds the start of the document until it can decide (the end of the head, the
/// first element that cannot be in a head, or [`HEAD_LIMIT`]), reading it with a small
/// HTML tokenizer (comments, doctype, quoted attribute values and the raw text of
/// `<script>`, `<style>`, `<title>`… are skipped), one byte at a time, so a tag split
/// across chunks at any byte is read the same as a whole one.
#[derive(Debug)]
pub struct HeadInjector {
    link: MonetizationLink,
    held: Vec<u8>,
    /// How much of `held` the tokenizer has read.
    scanned: usize,
    lex: Lex,
    /// Start of the tag being read (index into `held`).
    tag_start: usize,
    /// The tag name being read, lower-cased (longer names are never ones we look for).
    name: TagName,
    /// The raw-text element being skipped (`script`, `style`…), and how much of its
    /// `</name` end tag has been matched.
    raw: TagName,
    raw_matched: usize,
    phase: Phase,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Before the `<head>` start tag.
    FindHead,
    /// Inside the head; the link goes at `insert_at` unless the head has it already.
    InHead { insert_at: usize },
    /// Decided.
    Done(Verdict),
}

/// The tokenizer's state (a small subset of the HTML tokenizer's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lex {
    Data,
    /// After `<`.
    TagOpen,
    /// After `</`.
    EndTagOpen,
    /// Reading a tag name.
    TagName {
        end: bool,
    },
    /// Inside a tag after its name, until `>` outside a quoted value.
    InTag {
        end: bool,
        quote: u8,
        after_eq: bool,
    },
    /// After `<!`.
    MarkupDecl,
    /// After `<!-`.
    MarkupDash,
    /// Inside `<!-- … -->`: how many `-` just went by (starts at 2 so `<!-->` ends it).
    Comment {
        dashes: u8,
    },
    /// `<!doctype …>`, `<?…>`, `</ …>`: until `>`.
    Bogus,
    /// Inside a raw-text element, looking for its end tag.
    RawText,
}

/// A lower-cased tag name of at most 16 bytes; longer ones are "other".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TagName {
    bytes: [u8; 16],
    len: u8,
    too_long: bool,
}

impl TagName {
    const EMPTY: TagName = TagName {
        bytes: [0; 16],
        len: 0,
        too_long: false,
    };

    fn push(&mut self, b: u8) {
        if usize::from(self.len) < self.bytes.len() {
            self.bytes[usize::from(self.len)] = b.to_ascii_lowercase();
            self.len += 1;
        } else {
            self.too_long = true;
        }
    }

    fn is(&self, name: &str) -> bool {
        !self.too_long && &self.bytes[..usize::from(self.len)] == name.as_bytes()
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// Elements whose content is raw text: skipped whole while reading the head.
const RAW_TEXT: [&str; 6] = [
    "script", "style", "title", "textarea", "noscript", "noframes",
];
/// Other elements that may appear in a head without ending it.
const HEAD_CONTENT: [&str; 7] = [
    "base", "basefont", "bgsound", "link", "meta", "template", "head",
];

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0c)
}

impl HeadInjector {
    /// A fresh injector for one response body.
    pub fn new(link: MonetizationLink) -> HeadInjector {
        HeadInjector {
            link,
            held: Vec::new(),
            scanned: 0,
            lex: Lex::Data,
            tag_start: 0,
            name: TagName::EMPTY,
            raw: TagName::EMPTY,
            raw_matched: 0,
            phase: Phase::FindHead,
        }
    }

    /// What it has decided so far.
    pub fn verdict(&self) -> Verdict {
        match self.phase {
            Phase::Done(v) => v,
            _ => Verdict::Holding,
        }
    }

    /// Feeds the next decoded chunk; appends the bytes that may be sent now to `out`
    /// (nothing while holding; everything held, with or without the link, once decided;
    /// the chunk itself afterwards).
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Verdict {
        if let Phase::Done(v) = self.phase {
            out.extend_from_slice(chunk);
            return v;
        }
        self.held.extend_from_slice(chunk);
        let end = self.held.len().min(HEAD_LIMIT);
        while self.scanned < end {
            let b = self.held[self.scanned];
            self.step(b);
            self.scanned += 1;
            if matches!(self.phase, Phase::Done(_)) {
                break;
            }
        }
        if !matches!(self.phase, Phase::Done(_)) && self.scanned >= HEAD_LIMIT {
            self.decide_at_limit();
        }
        self.release(out)
    }

    /// The body ended: decides with what it has (a head whose end was not seen gets the
    /// link; no head, no link) and appends everything still held to `out`.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Verdict {
        if !matches!(self.phase, Phase::Done(_)) {
            self.decide_at_limit();
        }
        self.release(out)
    }

    fn decide_at_limit(&mut self) {
        self.phase = match self.phase {
            Phase::InHead { insert_at } => {
                self.held
                    .splice(insert_at..insert_at, self.link.tag().iter().copied());
                Phase::Done(Verdict::Injected)
            }
            Phase::FindHead => Phase::Done(Verdict::Unchanged),
            done => done,
        };
    }

    fn release(&mut self, out: &mut Vec<u8>) -> Verdict {
        match self.phase {
            Phase::Done(v) => {
                if out.is_empty() {
                    std::mem::swap(out, &mut self.held);
                } else {
                    out.append(&mut self.held);
                }
                self.held = Vec::new();
                v
            }
            _ => Verdict::Holding,
        }
    }

    /// Reads one byte at `self.scanned`.
    fn step(&mut self, b: u8) {
        let i = self.scanned;
        self.lex = match self.lex {
            Lex::Data => {
                if b == b'<' {
                    self.tag_start = i;
                    Lex::TagOpen
                } else {
                    if !is_space(b) && matches!(self.phase, Phase::InHead { .. }) {
                        // Text ends the head implicitly.
                        self.head_ends();
                    }
                    Lex::Data
                }
            }
            Lex::TagOpen => match b {
                b'!' => Lex::MarkupDecl,
                b'?' => Lex::Bogus,
                b'/' => Lex::EndTagOpen,
                b'<' => {
                    self.tag_start = i;
                    Lex::TagOpen
                }
                b if b.is_ascii_alphabetic() => {
                    self.name = TagName::EMPTY;
                    self.name.push(b);
                    Lex::TagName { end: false }
                }
                _ => Lex::Data,
            },
            Lex::EndTagOpen => {
                if b.is_ascii_alphabetic() {
                    self.name = TagName::EMPTY;
                    self.name.push(b);
                    Lex::TagName { end: true }
                } else if b == b'>' {
                    Lex::Data
                } else {
                    Lex::Bogus
                }
            }
            Lex::TagName { end } => {
                if b == b'>' {
                    self.tag_complete(end, i)
                } else if is_space(b) || b == b'/' {
                    Lex::InTag {
                        end,
                        quote: 0,
                        after_eq: false,
                    }
                } else {
                    self.name.push(b);
                    Lex::TagName { end }
                }
            }
            Lex::InTag {
                end,
                quote,
                after_eq,
            } => {
                if quote != 0 {
                    Lex::InTag {
                        end,
                        quote: if b == quote { 0 } else { quote },
                        after_eq: false,
                    }
                } else if b == b'>' {
                    self.tag_complete(end, i)
                } else if b == b'=' {
                    Lex::InTag {
                        end,
                        quote: 0,
                        after_eq: true,
                    }
                } else if after_eq && (b == b'"' || b == b'\'') {
                    Lex::InTag {
                        end,
                        quote: b,
                        after_eq: false,
                    }
                } else {
                    Lex::InTag {
                        end,
                        quote: 0,
                        after_eq: after_eq && is_space(b),
                    }
                }
            }
            Lex::MarkupDecl => match b {
                b'-' => Lex::MarkupDash,
                b'>' => Lex::Data,
                _ => Lex::Bogus,
            },
            Lex::MarkupDash => match b {
                b'-' => Lex::Comment { dashes: 2 },
                b'>' => Lex::Data,
                _ => Lex::Bogus,
            },
            Lex::Comment { dashes } => match b {
                b'>' if dashes >= 2 => Lex::Data,
                b'-' => Lex::Comment {
                    dashes: (dashes + 1).min(2),
                },
                _ => Lex::Comment { dashes: 0 },
            },
            Lex::Bogus => {
                if b == b'>' {
                    Lex::Data
                } else {
                    Lex::Bogus
                }
            }
            Lex::RawText => self.raw_text(b, i),
        };
    }

    /// Inside a raw-text element: matches `</name` followed by a space, `/` or `>`.
    fn raw_text(&mut self, b: u8, i: usize) -> Lex {
        let want = 2 + usize::from(self.raw.len);
        if self.raw_matched == want {
            self.raw_matched = 0;
            if is_space(b) || b == b'/' || b == b'>' {
                self.name = self.raw;
                return if b == b'>' {
                    self.tag_complete(true, i)
                } else {
                    Lex::InTag {
                        end: true,
                        quote: 0,
                        after_eq: false,
                    }
                };
            }
        }
        let expected = match self.raw_matched {
            0 => b'<',
            1 => b'/',
            k => self.raw.as_bytes()[k - 2],
        };
        if b.to_ascii_lowercase() == expected {
            if self.raw_matched == 0 {
                self.tag_start = i;
            }
            self.raw_matched += 1;
        } else if b == b'<' {
            self.tag_start = i;
            self.raw_matched = 1;
        } else {
            self.raw_matched = 0;
        }
        Lex::RawText
    }

    /// A tag ended at `end_index` (its `>`): acts on it for the current phase and says
    /// where the tokenizer goes next.
    fn tag_complete(&mut self, end_tag: bool, end_index: usize) -> Lex {
        let name = self.name;
        match self.phase {
            Phase::FindHead if !end_tag => {
                if name.is("head") {
                    self.phase = Phase::InHead {
                        insert_at: end_index + 1,
                    };
                } else if !name.is("html") {
                    // Content before any <head>: the page has no head of its own at
                    // its start; leave it alone.
                    self.phase = Phase::Done(Verdict::Unchanged);
                }
                Lex::Data
            }
            Phase::InHead { .. } if end_tag => {
                if name.is("head") {
                    self.head_ends();
                }
                Lex::Data
            }
            Phase::InHead { .. } => {
                if name.is("link") {
                    let tag = &self.held[self.tag_start..=end_index];
                    if is_same_link(tag, self.link.href()) {
                        self.phase = Phase::Done(Verdict::Unchanged);
                    }
                    Lex::Data
                } else if RAW_TEXT.iter().any(|r| name.is(r)) {
                    self.raw = name;
                    self.raw_matched = 0;
                    Lex::RawText
                } else if HEAD_CONTENT.iter().any(|h| name.is(h)) || name.is("html") {
                    Lex::Data
                } else {
                    // An element that cannot be in a head (a <body>, a <div>…) ends it.
                    self.head_ends();
                    Lex::Data
                }
            }
            _ => Lex::Data,
        }
    }

    /// The head ended without the same link in it: the link goes in.
    fn head_ends(&mut self) {
        if let Phase::InHead { .. } = self.phase {
            self.decide_at_limit();
        }
    }
}

impl DecodedFilter for HeadInjector {
    fn push(&mut self, decoded: &[u8], out: &mut Vec<u8>) -> FilterState {
        HeadInjector::push(self, decoded, out).into()
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> FilterState {
        HeadInjector::finish(self, out).into()
    }
}

impl From<Verdict> for FilterState {
    fn from(v: Verdict) -> FilterState {
        match v {
            Verdict::Holding => FilterState::Undecided,
            Verdict::Injected => FilterState::Changed,
            Verdict::Unchanged => FilterState::Unchanged,
        }
    }
}

/// True when the complete start tag `tag` (`<link …>`) has a `rel` with the token
/// `monetization` (ASCII case-insensitive) and an `href` equal to `href` once its
/// character references are decoded and surrounding spaces trimmed.
fn is_same_link(tag: &[u8], href: &str) -> bool {
    let attrs = attributes(tag);
    let get = |name: &str| {
        attrs
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| *v)
    };
    let rel_ok = get("rel").is_some_and(|rel| {
        rel.split(|&b| is_space(b))
            .any(|t| t.eq_ignore_ascii_case(b"monetization"))
    });
    rel_ok
        && get("href").is_some_and(|v| {
            let decoded = decode_references(v);
            decoded.trim_matches(|c: char| c.is_ascii_whitespace()) == href
        })
}

/// The attributes of a complete start tag, in order, as (name, raw value) slices.
fn attributes(tag: &[u8]) -> Vec<(&[u8], &[u8])> {
    let mut out = Vec::new();
    let inner = tag.strip_suffix(b">").unwrap_or(tag);
    // Skip `<` and the tag name.
    let mut i = inner
        .iter()
        .position(|&b| is_space(b) || b == b'/')
        .unwrap_or(inner.len());
    let n = inner.len();
    while i < n {
        while i < n && (is_space(inner[i]) || inner[i] == b'/') {
            i += 1;
        }
        let start = i;
        while i < n && !is_space(inner[i]) && inner[i] != b'/' && inner[i] != b'=' {
            i += 1;
        }
        if start == i {
            // A stray `=`: skip it.
            i += 1;
            continue;
        }
        let name = &inner[start..i];
        while i < n && is_space(inner[i]) {
            i += 1;
        }
        if i < n && inner[i] == b'=' {
            i += 1;
            while i < n && is_space(inner[i]) {
                i += 1;
            }
            let value = if i < n && (inner[i] == b'"' || inner[i] == b'\'') {
                let q = inner[i];
                let vs = i + 1;
                let ve = inner[vs..]
                    .iter()
                    .position(|&b| b == q)
                    .map_or(n, |p| vs + p);
                i = (ve + 1).min(n);
                &inner[vs..ve]
            } else {
                let vs = i;
                while i < n && !is_space(inner[i]) {
                    i += 1;
                }
                &inner[vs..i]
            };
            out.push((name, value));
        } else {
            out.push((name, &inner[i..i]));
        }
    }
    out
}

/// Decodes the character references an attribute value may use for a URL (`&amp;`,
/// `&lt;`, `&gt;`, `&quot;`, `&apos;`, `&#NN;`, `&#xHH;`); others stay as written.
fn decode_references(v: &[u8]) -> String {
    let s = String::from_utf8_lossy(v);
    let mut out = String::with_capacity(s.len());
    let mut rest: &str = &s;
    while let Some(pos) = rest.find('&') {
        out.push_str(&rest[..pos]);
        rest = &rest[pos..];
        let end = rest.find(';').filter(|&e| e <= 10);
        let decoded = end.and_then(|e| {
            let name = &rest[1..e];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => {
                    let num = name.strip_prefix('#')?;
                    let code = match num.strip_prefix(['x', 'X']) {
                        Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                        None => num.parse().ok()?,
                    };
                    char::from_u32(code)
                }
            }?;
            Some((c, e))
        });
        match decoded {
            Some((c, e)) => {
                out.push(c);
                rest = &rest[e + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests;
