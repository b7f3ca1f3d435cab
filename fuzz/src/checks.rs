//! The property checks of tollgate's fuzz targets, one function per target.
//!
//! Each check takes arbitrary bytes, feeds them to a parser through tollgate's public
//! API and asserts what must hold for every input (a panic is a finding). The same
//! functions run under AFL++ (`fuzz/src/main.rs`) and, for every file of the committed
//! corpora, in the normal test suite (`tests/fuzz_corpus.rs` includes this file), so
//! the checks are written once.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::IpAddr;
use std::path::Path;
use std::sync::OnceLock;

use http::Method;
use tollgate::amount::Amount;
use tollgate::basket::bill::{self, ItemIn, RebateRule, Rules, TaxRate};
use tollgate::config::{self, Config, Product, Route, SecretKey};
use tollgate::contract::{ContractItem, Offer};
use tollgate::gate::{decide, Decision};
use tollgate::keys::Keys;
use tollgate::monetization::codec::{Coding, Emit, Transcoder};
use tollgate::monetization::inject::{rewritable, HeadInjector, MonetizationLink, Verdict};
use tollgate::monetization::op::{IncomingPayment, WalletAddress, MAX_WALLET_CACHE};
use tollgate::receipt::{self, ReceiptClaims, ReceiptError, Scope};
use tollgate::routes::{canonicalize, pattern_covers, patterns_overlap, Pattern, RouteTable};

/// A property check: panics when the input breaks a property.
pub type Check = fn(&[u8]);

/// Every target: its name (also its corpus folder, `fuzz/corpus/<name>/`) and check.
pub const TARGETS: &[(&str, Check)] = &[
    ("canonical", canonical),
    ("route", route),
    ("receipt", receipt),
    ("contract", contract),
    ("accept", accept),
    ("cookie", cookie),
    ("config", config_text),
    ("rpc", rpc),
    ("basket", basket),
    ("inject", inject),
    ("op", op),
    ("head", head),
];

/// The check named `name`, if any.
pub fn target(name: &str) -> Option<Check> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

/// Reads structured values off the front of a fuzz input (zeros once it runs out).
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }

    fn u64(&mut self) -> u64 {
        (0..8).fold(0, |acc, _| (acc << 8) | u64::from(self.u8()))
    }

    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }

    /// A string of at most 255 bytes (length first), lossily UTF-8.
    fn string(&mut self) -> String {
        let n = usize::from(self.u8());
        String::from_utf8_lossy(self.bytes(n)).into_owned()
    }

    fn rest(self) -> &'a [u8] {
        self.0
    }
}

const TEST_KEY: &str = "4242424242424242424242424242424242424242424242424242424242424242";

/// The routes of `tests/path_guard.rs`, plus a product catalogue and a rebate.
const CONFIG: &str = r#"
[server]
listen = "127.0.0.1:0"
public_url = "https://shop.example"
upstream = "127.0.0.1:3000"
[secrets]
receipt_key_env = "K"

[[route]]
path = "/movies/*"
price = "0.5"

[[route]]
path = "/movies/trailers/*"
price = "0"

[[route]]
path = "/exact/page"
price = "1.25"

[[route]]
path = "/articles/{slug}"
methods = ["GET"]
price = "0.001"
scope = "route"

[[route]]
path = "/albums/*"
price = "20"

[[route]]
path = "/singles/*"
price = "0.1"

[[route]]
path = "/big/*"
price = "1000"

[[product]]
id = "ALBUM"
description = "An album"
price = "17.98"
unlocks = ["/albums/a/*"]
ships = true
max_count = 100

[[product]]
id = "single.1"
description = "A single"
price = "0.00000001"
unlocks = ["/singles/1"]
max_count = 3

[[product]]
id = "big"
description = "A big one"
price = "999999.99999999"
unlocks = ["/big/{x}"]
max_count = 10000
"#;

fn test_env(_: &str) -> Option<String> {
    Some(TEST_KEY.to_string())
}

fn cfg() -> &'static Config {
    static CFG: OnceLock<Config> = OnceLock::new();
    CFG.get_or_init(|| {
        config::parse(Path::new("fuzz.toml"), CONFIG, &test_env)
            .unwrap_or_else(|p| panic!("the fuzz config does not load: {p:?}"))
    })
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| Keys::derive(&cfg().secrets.receipt_key))
}

fn other_keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| Keys::derive(&SecretKey(vec![7; 32])))
}

// ---------------------------------------------------------------------------------
// canonical: the path canonicaliser and gate::decide

/// Percent-decodes every valid `%XX` once (but `%2F` when `keep_slash`).
fn decode_all(p: &[u8], keep_slash: bool) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(p.len());
    let mut i = 0;
    while i < p.len() {
        if p[i] == b'%' {
            if let (Some(h), Some(l)) = (
                p.get(i + 1).copied().and_then(hex),
                p.get(i + 2).copied().and_then(hex),
            ) {
                if !(keep_slash && h << 4 | l == b'/') {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
            }
        }
        out.push(p[i]);
        i += 1;
    }
    out
}

/// Escapes every byte but unreserved ones and `/` (the bytes taken literally).
fn escape_literal(p: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(p.len());
    for &b in p {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b);
        } else {
            out.extend_from_slice(format!("%{b:02X}").as_bytes());
        }
    }
    out
}

/// Paths a lenient origin (written here independently of tollgate's own list) may
/// read `path` as: decoded up to twice (or once but `%2F`), `\` as `/`, cut at NUL or a
/// decoded `?`/`#`, `;…` stripped from segments, and then taken encoded or literally, in
/// canonical form.
fn origin_readings(path: &[u8], lowercase: bool) -> BTreeSet<String> {
    // Most of the 64 ways read a path alike (no `\`, NUL, `?` or `;` in it): the
    // distinct raw readings are gathered first and canonicalised once each.
    let mut raw = BTreeSet::new();
    for decodes in 0..4 {
        for mask in 0u8..16 {
            let mut r = path.to_vec();
            match decodes {
                0 => {}
                1 => r = decode_all(&r, false),
                2 => r = decode_all(&decode_all(&r, false), false),
                _ => r = decode_all(&r, true),
            }
            if mask & 1 != 0 {
                r.iter_mut()
                    .filter(|b| **b == b'\\')
                    .for_each(|b| *b = b'/');
            }
            if mask & 2 != 0 {
                if let Some(i) = r.iter().position(|&b| b == 0) {
                    r.truncate(i);
                }
            }
            if mask & 4 != 0 {
                if let Some(i) = r.iter().position(|&b| b == b'?' || b == b'#') {
                    r.truncate(i);
                }
            }
            if mask & 8 != 0 {
                r = r
                    .split(|&b| b == b'/')
                    .map(|s| s.split(|&b| b == b';').next().unwrap_or(s))
                    .collect::<Vec<_>>()
                    .join(&b'/');
            }
            if r.first() != Some(&b'/') {
                r.insert(0, b'/');
            }
            raw.insert(escape_literal(&r));
            raw.insert(r);
        }
    }
    let mut out = BTreeSet::new();
    for reading in raw {
        if let Ok(t) = canonicalize(&reading) {
            let mut p = t.path;
            if lowercase {
                p.make_ascii_lowercase();
            }
            out.insert(p);
        }
    }
    out
}

/// The longest request-target the `canonical` target checks.
const MAX_CANONICAL_INPUT: usize = 1024;

fn same_decision(a: &Decision<'_>, b: &Decision<'_>) -> bool {
    match (a, b) {
        (Decision::Forward, Decision::Forward) => true,
        (Decision::Ambiguous(_), Decision::Ambiguous(_)) => true,
        (Decision::Priced(x), Decision::Priced(y)) => std::ptr::eq(*x, *y),
        _ => false,
    }
}

/// A raw request-target: its canonical path is a fixed point (with no new hazard), has
/// no empty or dot segment, and decides as itself (both case modes, GET and POST); and
/// when a reading of the forwarded canonical path is priced, the decision is 400 or
/// priced by that very route: never forwarded for free, whatever the spelling.
pub fn canonical(data: &[u8]) {
    // Longer targets add length, not new shapes, and make every reading slower.
    if data.len() > MAX_CANONICAL_INPUT {
        return;
    }
    let Ok(t) = canonicalize(data) else {
        return;
    };
    assert!(t.path.starts_with('/'), "{:?}", t.path);
    assert!(!t.path.contains('?') && !t.path.contains('#'));
    let again = canonicalize(t.path.as_bytes()).expect("a canonical path canonicalises");
    assert_eq!(again.path, t.path, "not a fixed point");
    // The hazards describe the spelling: dot segments may remove some of them (the
    // canonical form of `/a%5C/../b` has none), never add one.
    let (h, h2) = (t.hazards, again.hazards);
    assert!(
        (!h2.encoded_slash || h.encoded_slash)
            && (!h2.backslash || h.backslash)
            && (!h2.nul || h.nul)
            && (!h2.invalid_utf8 || h.invalid_utf8)
            && (!h2.semicolon || h.semicolon),
        "the canonical form has hazards the spelling has not: {h:?} {h2:?}"
    );
    assert!(again.query.is_none());
    assert!(!t.path.contains("//"), "{:?}", t.path);
    assert!(
        t.path.split('/').all(|s| s != "." && s != ".."),
        "{:?}",
        t.path
    );
    let routes = &cfg().routes;
    for case_insensitive in [false, true] {
        let mut t = t.clone();
        let mut again = again.clone();
        if case_insensitive {
            t.path.make_ascii_lowercase();
            again.path.make_ascii_lowercase();
        }
        // What the origin gets is the canonical path, never the spelling (a raw `\`
        // and a `%5C` both arrive as `%5C`), so the readings are of that path.
        let readings = origin_readings(t.path.as_bytes(), case_insensitive);
        for method in [Method::GET, Method::POST] {
            let d = decide(routes, &method, &t, case_insensitive);
            let d2 = decide(routes, &method, &again, case_insensitive);
            assert!(same_decision(&d, &d2), "{d:?} vs {d2:?} for {:?}", t.path);
            let priced = |p: &str| routes.lookup(p).filter(|r| r.prices(&method));
            for r in &readings {
                let Some(route) = priced(r) else { continue };
                let ok = match d {
                    Decision::Ambiguous(_) => true,
                    Decision::Priced(direct) => std::ptr::eq(direct, route),
                    Decision::Forward => false,
                };
                assert!(
                    ok,
                    "{:?} ({method}, case-insensitive {case_insensitive}) decided {d:?}, \
                     but an origin may read it as {r:?}, priced by {}",
                    String::from_utf8_lossy(data),
                    route.pattern
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// route: route patterns and the route table

fn table_matches(p: &Pattern, path: &str) -> bool {
    RouteTable::new(vec![(p.clone(), ())])
        .lookup(path)
        .is_some()
}

/// Two patterns and a path (three lines): the table finds what the patterns match,
/// `patterns_overlap` never misses a path both match, `pattern_covers` never claims
/// a path the outer one does not match, and a pattern's canonical spelling parses.
pub fn route(data: &[u8]) {
    let mut lines = data.splitn(3, |&b| b == b'\n');
    let a = String::from_utf8_lossy(lines.next().unwrap_or_default()).into_owned();
    let b = String::from_utf8_lossy(lines.next().unwrap_or_default()).into_owned();
    let path = lines.next().unwrap_or_default();
    let Ok(path) = canonicalize(path).map(|t| t.path) else {
        return;
    };
    let pa = Pattern::parse(&a);
    let pb = Pattern::parse(&b);
    for p in [&pa, &pb].into_iter().flatten() {
        assert!(patterns_overlap(p, p) && pattern_covers(p, p), "{p:?}");
        let in_table = table_matches(p, &path);
        assert!(!p.matches(&path) || in_table, "{p:?} {path:?}");
    }
    if let (Ok(pa), Ok(pb)) = (&pa, &pb) {
        let (ma, mb) = (table_matches(pa, &path), table_matches(pb, &path));
        assert_eq!(patterns_overlap(pa, pb), patterns_overlap(pb, pa));
        if ma && mb {
            assert!(
                patterns_overlap(pa, pb),
                "{a:?} and {b:?} both match {path:?}"
            );
        }
        if mb && pattern_covers(pa, pb) {
            assert!(ma, "{a:?} covers {b:?} but not {path:?}");
        }
        if ma && pattern_covers(pb, pa) {
            assert!(mb, "{b:?} covers {a:?} but not {path:?}");
        }
        let both = RouteTable::new(vec![(pa.clone(), 0), (pb.clone(), 1)]);
        assert_eq!(
            both.lookup(&path).is_some(),
            ma || mb,
            "{a:?} {b:?} {path:?}"
        );
    }
}

// ---------------------------------------------------------------------------------
// receipt: receipt minting, parsing and verification

/// What a scope string reads back as after the JSON round trip of a receipt.
fn scope_after_round_trip(scope: &str) -> String {
    match scope
        .starts_with('[')
        .then(|| serde_json::from_str::<Vec<String>>(scope).ok())
        .flatten()
    {
        Some(list) => Scope::list(&list),
        None => scope.to_string(),
    }
}

/// Mints claims drawn from the input, verifies them back, then mutates the receipt:
/// it verifies only as minted, only before expiry and only under its key; anything
/// else in the input is verified as a receipt and must not verify.
pub fn receipt(data: &[u8]) {
    let mut r = Reader(data);
    let kind = r.u8();
    let text = r.string();
    let scope = match kind % 4 {
        0 => canonicalize(text.as_bytes()).map_or(text, |t| t.path),
        1 => Scope::route(&text),
        2 => Scope::list(&text.split(' ').map(String::from).collect::<Vec<_>>()),
        _ => text,
    };
    let claims = ReceiptClaims {
        h: r.string(),
        scope,
        exp: r.u64(),
        pid: r.string(),
    };
    let now = r.u64();
    let minted = receipt::mint(keys(), &claims);
    let expect = ReceiptClaims {
        scope: scope_after_round_trip(&claims.scope),
        ..claims.clone()
    };
    let got = receipt::verify(keys(), &minted, now);
    if minted.len() > receipt::MAX_RECEIPT_LEN {
        assert_eq!(got, Err(ReceiptError::Malformed));
    } else if now > claims.exp {
        assert_eq!(got, Err(ReceiptError::Expired));
    } else {
        assert_eq!(got.as_ref(), Ok(&expect));
        assert!(receipt::verify(other_keys(), &minted, now).is_err());
    }
    // Mutations: a few bytes changed, one cut or one insertion.
    let mut m = minted.clone().into_bytes();
    for _ in 0..(r.u8() % 4) {
        let at = usize::from(r.u8()) << 8 | usize::from(r.u8());
        let v = r.u8();
        match v % 3 {
            0 if !m.is_empty() => {
                let i = at % m.len();
                m[i] ^= v | 1;
            }
            1 => m.truncate(at % (m.len() + 1)),
            _ => m.insert(at % (m.len() + 1), v),
        }
    }
    if let Ok(s) = std::str::from_utf8(&m) {
        if s != minted {
            let v = receipt::verify(keys(), s, 0);
            assert!(v.is_err(), "a changed receipt verified: {s:?} {v:?}");
        }
    }
    // The rest of the input as a receipt of its own.
    let rest = String::from_utf8_lossy(r.rest());
    if let Ok(c) = receipt::verify(keys(), &rest, 0) {
        assert_eq!(
            receipt::mint(keys(), &c),
            rest,
            "verified but not as minted"
        );
    }
    // Scopes never panic, and a path is covered as the scope's kind says.
    if let Ok(t) = canonicalize(rest.as_bytes()) {
        let covered = receipt::scope_covers(&claims.scope, &t.path, "/movies/*");
        if let Some(Scope::Resource(p)) = Scope::parse(&claims.scope) {
            assert_eq!(covered, p == t.path);
        }
        if Scope::parse(&claims.scope).is_none() {
            assert!(!covered);
        }
    }
}

// ---------------------------------------------------------------------------------
// contract: contract tokens and Offer::from_token

fn assert_round_trip(offer: &Offer) {
    let back = Offer::from_token(keys(), &offer.token).expect("a minted token verifies");
    assert_eq!(back.params, offer.params);
    assert_eq!(back.token, offer.token);
    assert_eq!(back.hash.0, offer.hash.0);
    assert_eq!(back.terms.canonical_json(), offer.terms.canonical_json());
    assert!(Offer::from_token(other_keys(), &offer.token).is_err());
}

/// Mints an offer (a route's, or a basket's) from the input: its token rebuilds the
/// same parameters, terms and hash; any change to the token is refused; a token from
/// the rest of the input verifies only if it is exactly one tollgate minted.
pub fn contract(data: &[u8]) {
    let mut r = Reader(data);
    let kind = r.u8();
    let resource = r.string();
    let mut nonce = [0u8; 16];
    nonce.iter_mut().for_each(|b| *b = r.u8());
    let now = r.u64();
    let cfg = cfg();
    let offer = if kind % 2 == 0 {
        let path =
            canonicalize(resource.as_bytes()).map_or_else(|_| "/movies/x".into(), |t| t.path);
        let route = cfg
            .routes
            .lookup(&path)
            .or_else(|| cfg.routes.lookup("/movies/x"));
        let route: &Route = route.expect("the fuzz config prices /movies/*");
        Offer::mint(cfg, keys(), route, &path, nonce, now)
    } else {
        let items: Vec<ContractItem> = (0..r.u8() % 4)
            .map(|_| ContractItem {
                id: r.string(),
                description: r.string(),
                quantity: r.u64() as u32,
                price: r.string(),
            })
            .collect();
        let scope = vec![resource.clone(), r.string()];
        let total = Amount(u128::from(r.u64()) << 32 | u128::from(r.u64()));
        Offer::mint_basket(
            cfg,
            keys(),
            &resource,
            r.string(),
            items,
            total,
            scope,
            nonce,
            now,
        )
    };
    assert_round_trip(&offer);
    assert_eq!(offer.expired(now), now > offer.params.pay_deadline);
    // One changed byte, one cut, one insertion: never accepted.
    let token = offer.token.as_bytes();
    let at = usize::from(r.u8()) << 8 | usize::from(r.u8());
    let v = r.u8();
    let mut changed = token.to_vec();
    let i = at % changed.len();
    changed[i] ^= v | 1;
    let mut cut = token.to_vec();
    cut.truncate(at % token.len());
    let mut longer = token.to_vec();
    longer.insert(at % (token.len() + 1), v);
    for t in [changed, cut, longer] {
        if let Ok(t) = String::from_utf8(t) {
            assert!(Offer::from_token(keys(), &t).is_err(), "tampered: {t:?}");
        }
    }
    let rest = String::from_utf8_lossy(r.rest());
    if let Ok(o) = Offer::from_token(keys(), &rest) {
        assert_eq!(o.token, rest, "verified but not as minted");
    }
}

// ---------------------------------------------------------------------------------
// accept: the Accept header

/// `prefers_json` never panics, answers false without a header or for bytes that are
/// not UTF-8, answers true only when JSON is named, and unrelated media types around
/// the header change nothing.
pub fn accept(data: &[u8]) {
    use tollgate::reply::prefers_json;
    assert!(!prefers_json(None));
    let answer = prefers_json(Some(data));
    let Ok(text) = std::str::from_utf8(data) else {
        assert!(!answer);
        return;
    };
    if answer {
        assert!(text.to_ascii_lowercase().contains("json"), "{text:?}");
    }
    for more in [
        format!("{text},image/png"),
        format!("{text}, image/webp;q=1"),
        format!("{text},text/plain;q=0.5"),
        format!("text/plain,{text}"),
    ] {
        assert_eq!(prefers_json(Some(more.as_bytes())), answer, "{more:?}");
    }
}

// ---------------------------------------------------------------------------------
// cookie: receipts in Authorization and Cookie, cookie stripping, forwarding headers

/// The first line is an `Authorization` value, the others `Cookie` header values:
/// at most 16 non-empty receipt candidates, none from a cookie holding `;` or `~`;
/// stripping the receipt cookie keeps every other pair in order and leaves no
/// candidate behind. The same lines as forwarding headers never panic and never
/// make an untrusted peer another address.
pub fn cookie(data: &[u8]) {
    let mut lines = data.split(|&b| b == b'\n');
    let authorization = lines.next();
    let cookies: Vec<&[u8]> = lines.collect();
    let c = receipt::candidates(authorization, cookies.iter().copied());
    assert!(c.len() <= 16);
    assert!(c.iter().all(|r| !r.is_empty()), "{c:?}");
    let from_cookies = receipt::candidates(None, cookies.iter().copied());
    assert!(from_cookies
        .iter()
        .all(|r| !r.contains(';') && !r.contains('~')));
    for h in cookies.iter().filter_map(|h| std::str::from_utf8(h).ok()) {
        let kept: Vec<&str> = h
            .split(';')
            .map(str::trim)
            .filter(|p| !p.is_empty() && !p.starts_with("tollgate_receipt="))
            .collect();
        match receipt::strip_cookie(h) {
            None => assert!(kept.is_empty()),
            Some(s) => {
                assert_eq!(s, kept.join("; "));
                let left = receipt::candidates(None, std::iter::once(s.as_bytes()));
                assert!(left.is_empty(), "{h:?} -> {s:?} still has {left:?}");
            }
        }
    }
    use tollgate::proxy::forwarded::{client_address, forwarded_proto, upstream_xff};
    let peer: IpAddr = [203, 0, 113, 9].into();
    let trusted: Vec<ipnet::IpNet> = vec!["203.0.113.0/24".parse().expect("a network")];
    assert_eq!(client_address(peer, &[], &cookies, &cookies), peer);
    let _ = client_address(peer, &trusted, &cookies, &[]);
    let _ = client_address(peer, &trusted, &[], &cookies);
    let _ = forwarded_proto(authorization, &cookies);
    let xff = upstream_xff(peer, true, &cookies);
    assert!(xff.ends_with("203.0.113.9"), "{xff:?}");
}

// ---------------------------------------------------------------------------------
// config: the config loader on arbitrary text

/// Any text: `config::parse_offline` (no DNS) answers a config or at least one problem, never panics,
/// and every route of a config it accepts is a valid pattern found by its table.
pub fn config_text(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match config::parse_offline(Path::new("fuzz.toml"), text, &test_env) {
        Err(p) => assert!(!p.0.is_empty()),
        Ok(cfg) => {
            for (pattern, route) in cfg.routes.iter_by_specificity() {
                assert_eq!(Pattern::parse(&route.pattern).as_ref(), Ok(pattern));
                if let Pattern::Exact(p) = pattern {
                    assert!(cfg.routes.lookup(p).is_some(), "{p:?}");
                }
            }
            for p in &cfg.products {
                assert!(p.max_count >= 1 && !p.price.is_zero(), "{p:?}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// rpc: JSON-RPC framing of the gateway

/// Any body: a batch has 1..=MAX_BATCH answers, errors carry the standard codes, a
/// call's params are an object, an array or null, and `start_payment` params that
/// pass have an amount > 0 that reads back from its own text and decimal form.
pub fn rpc(data: &[u8]) {
    use tollgate::gateway::rpc::{self, Parsed};
    let (decimals, body) = match data.split_first() {
        Some((d, body)) => (u32::from(d % 19), body),
        None => (8, data),
    };
    let items = match rpc::parse(body) {
        Parsed::Single(one) => vec![one],
        Parsed::Batch(all) => {
            assert!((1..=rpc::MAX_BATCH).contains(&all.len()));
            all
        }
    };
    for item in items {
        match item {
            Err(e) => {
                assert!(
                    [rpc::PARSE_ERROR, rpc::INVALID_REQUEST].contains(&e.code),
                    "{e:?}"
                );
                assert!(e.id.is_null() || e.id.is_string() || e.id.is_number());
                let v = rpc::error(&e);
                assert_eq!(v["error"]["code"], e.code);
            }
            Ok(call) => {
                assert!(call.params.is_object() || call.params.is_array() || call.params.is_null());
                if let Some(id) = &call.id {
                    assert!(id.is_null() || id.is_string() || id.is_number());
                }
                if let Ok(sp) = rpc::start_payment_params(&call.params, decimals) {
                    assert!(!sp.amount.is_zero());
                    assert_eq!(
                        Amount::parse_decimal(&sp.amount_text, decimals),
                        Ok(sp.amount)
                    );
                    let shortest = sp.amount.to_decimal(decimals);
                    assert_eq!(Amount::parse_decimal(&shortest, decimals), Ok(sp.amount));
                    assert!(sp.data.as_ref().is_none_or(|d| !d.is_null()));
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// basket: ShoppingItem bodies and the bill

/// The first byte picks the shop's rules, each further line is a `ShoppingItem` body
/// checked against the catalogue: an accepted item is a catalogue product with a
/// count in range, priced exactly as the catalogue (or its negative); the bill of the
/// accepted items is the sum of its lines, each line its price × count, and its tax
/// the rounded share of items and rebates.
pub fn basket(data: &[u8]) {
    use tollgate::basket::item;
    let cfg = cfg();
    let catalogue: &[Product] = &cfg.products;
    let decimals = cfg.chain.decimals;
    let (pick, body) = data.split_first().unwrap_or((&0, data));
    let mut accepted = Vec::new();
    for line in body.split(|&b| b == b'\n') {
        let Ok(req) = item::parse(line, catalogue, decimals) else {
            continue;
        };
        assert!(catalogue.iter().any(|p| std::ptr::eq(p, req.product)));
        assert!((1..=req.product.max_count).contains(&req.count));
        accepted.push(ItemIn {
            product_id: &req.product.id,
            unit_price: req.product.price.0,
            count: req.count,
            refund: req.refund,
            ships: req.product.ships,
        });
        let text = req.product.price.to_decimal(decimals);
        assert_eq!(
            item::exact_price(&text, decimals),
            Some((false, req.product.price))
        );
        let negative = format!("\"-{text}\"");
        assert_eq!(
            item::exact_price(&negative, decimals),
            Some((true, req.product.price))
        );
    }
    let rates = ["0", "0.2", "0.075", "1", "0.333333333333333333"];
    let tax_rate = TaxRate::parse(rates[usize::from(pick % 5)]).expect("a tax rate");
    let rebates = [
        RebateRule {
            product_id: "ALBUM",
            buy: 3,
            pay: 2,
        },
        RebateRule {
            product_id: "single.1",
            buy: 2,
            pay: 1,
        },
        RebateRule {
            product_id: "big",
            buy: 7,
            pay: 3,
        },
    ];
    let rules = Rules {
        tax_rate,
        shipping: u128::from(pick / 5) * 1_000_000,
        rebates: if pick & 0x80 != 0 { &rebates } else { &[] },
    };
    let Ok(b) = bill::compute(&accepted, &rules) else {
        return;
    };
    assert_eq!(b.items.len(), accepted.len());
    let mut sum: i128 = 0;
    for (l, it) in b.items.iter().zip(&accepted) {
        let unit = i128::try_from(it.unit_price).expect("a price");
        assert_eq!(l.item_price, if it.refund { -unit } else { unit });
        assert_eq!(l.count, it.count);
        assert_eq!(l.items_price, l.item_price * i128::from(l.count));
        sum += l.items_price;
    }
    let mut taxed = sum;
    for l in &b.extras {
        assert_ne!(l.items_price, 0, "a zero extra: {l:?}");
        assert_eq!(l.items_price, l.item_price * i128::from(l.count));
        if l.product_id.starts_with(bill::REBATE_PREFIX) {
            taxed += l.items_price;
        }
        sum += l.items_price;
    }
    assert_eq!(b.total, sum, "the total is not the sum of its lines: {b:?}");
    let tax = b
        .extras
        .iter()
        .find(|l| l.product_id == bill::TAX_ID)
        .map_or(0, |l| l.items_price);
    let (num, den) = (tax_rate.num as i128, tax_rate.den as i128);
    assert_eq!(tax, bill::round_half_away(taxed * num, den), "{b:?}");
}

// ---------------------------------------------------------------------------------
// inject: the streaming HTML link injector

fn link() -> MonetizationLink {
    MonetizationLink::new("https://wallet.example/alice")
}

/// Injects into `body` cut at `cuts`; returns the output and the final verdict.
fn inject_chunked(body: &[u8], cuts: &[usize]) -> (Vec<u8>, Verdict) {
    let mut inj = HeadInjector::new(link());
    let mut out = Vec::new();
    let mut from = 0;
    for &c in cuts {
        inj.push(&body[from..c], &mut out);
        from = c;
    }
    inj.push(&body[from..], &mut out);
    let v = inj.finish(&mut out);
    (out, v)
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).expect("gzip in memory");
    e.finish().expect("gzip in memory")
}

/// Runs `encoded` through a transcoder cut at `cuts`: what is sent downstream.
fn transcode(coding: Coding, encoded: &[u8], cuts: &[usize]) -> Vec<u8> {
    let mut t = Transcoder::new(coding, HeadInjector::new(link()));
    let mut out = Vec::new();
    let mut from = 0;
    let ends = cuts.iter().copied().chain([encoded.len()]);
    let n = cuts.len() + 1;
    for (i, c) in ends.enumerate() {
        let chunk = &encoded[from..c];
        match t.filter(Some(chunk), i + 1 == n) {
            Emit::AsIs => out.extend_from_slice(chunk),
            Emit::Bytes(b) => out.extend_from_slice(&b),
        }
        from = c;
    }
    out
}

/// The first two bytes seed the chunking, the rest is a body: fed in any chunking the
/// injector writes exactly what it writes for the body in one piece, which is the
/// body unchanged or the body with the link inserted once (and only after a `<head`);
/// a body without `<head` passes byte-exact; the same holds through the gzip and
/// identity transcoders; a non-HTML content type is never rewritten.
pub fn inject(data: &[u8]) {
    let mut r = Reader(data);
    let seed = u32::from(r.u8()) << 8 | u32::from(r.u8());
    let body = r.rest();
    let (whole, verdict) = inject_chunked(body, &[]);
    let tag = link().tag().to_vec();
    match verdict {
        Verdict::Holding => panic!("finish left the verdict open"),
        Verdict::Unchanged => assert!(whole == body, "unchanged but not byte-exact"),
        Verdict::Injected => {
            assert!(body.to_ascii_lowercase().windows(5).any(|w| w == b"<head"));
            assert_eq!(whole.len(), body.len() + tag.len());
            let same = whole.iter().zip(body).take_while(|(a, b)| a == b).count();
            let at = (0..=same)
                .find(|&i| whole[i..].starts_with(&tag) && whole[i + tag.len()..] == body[i..]);
            assert!(at.is_some(), "the output is not the body plus one link");
        }
    }
    if !body.to_ascii_lowercase().windows(5).any(|w| w == b"<head") {
        assert_eq!(verdict, Verdict::Unchanged);
    }
    // Cuts from a small generator seeded by the input: single bytes to large pieces.
    let mut x = seed.wrapping_mul(2654435761) | 1;
    let mut cuts = Vec::new();
    let mut at = 0;
    let max_piece = [1, 2, 7, 64, 4096][(seed % 5) as usize];
    while !body.is_empty() {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        at += 1 + (x as usize % max_piece);
        if at >= body.len() {
            break;
        }
        cuts.push(at);
    }
    let (chunked, v2) = inject_chunked(body, &cuts);
    assert_eq!(v2, verdict);
    assert!(chunked == whole, "the chunking changed the output");
    if seed & 1 == 0 {
        assert!(transcode(Coding::Identity, body, &cuts) == whole);
    } else {
        let gz = gzip(body);
        let gz_cuts: Vec<usize> = cuts
            .iter()
            .map(|c| c * gz.len() / body.len().max(1))
            .collect();
        let mut gz_cuts: Vec<usize> = gz_cuts
            .into_iter()
            .filter(|&c| c > 0 && c < gz.len())
            .collect();
        gz_cuts.dedup();
        let sent = transcode(Coding::Gzip, &gz, &gz_cuts);
        let mut plain = Vec::new();
        flate2::read::MultiGzDecoder::new(&sent[..])
            .read_to_end(&mut plain)
            .expect("the transcoder sends valid gzip");
        assert!(
            plain == whole,
            "gzip output differs from the identity output"
        );
    }
    // The content type comes from the input: only text/html is ever rewritten.
    if let Ok(ct) = http::HeaderValue::from_bytes(body.get(..64).unwrap_or(body)) {
        let mut h = http::HeaderMap::new();
        let media = ct
            .to_str()
            .ok()
            .map(|s| s.split(';').next().unwrap_or("").trim().to_string());
        h.insert(http::header::CONTENT_TYPE, ct);
        let is_html = media.is_some_and(|m| m.eq_ignore_ascii_case("text/html"));
        let rw = rewritable(&Method::GET, 200, &h);
        assert_eq!(rw.is_some(), is_html);
        assert!(rewritable(&Method::HEAD, 200, &h).is_none());
        assert!(rewritable(&Method::GET, 206, &h).is_none());
    }
}

// ---------------------------------------------------------------------------------
// op: Open Payments answers

/// Any body as a wallet address document and as an incoming payment never panics;
/// `required_units` never asks for less than the price; `op_url_allowed` admits only
/// https:// URLs and http:// on a loopback host; `max-age` stays within its bound.
pub fn op(data: &[u8]) {
    use tollgate::monetization::op::max_age;
    use tollgate::monetization::verify::{on_resource_server, required_units};
    let _ = serde_json::from_slice::<WalletAddress>(data);
    if let Ok(p) = serde_json::from_slice::<IncomingPayment>(data) {
        let _ = p.received_amount.value.parse::<u128>();
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let first = lines.next().unwrap_or_default();
    for scale in [0u8, 2, 9, 18, 38, 39, 255] {
        if let Some(units) = required_units(first, scale) {
            // units / 10^scale >= price > (units - 1) / 10^scale, in exact arithmetic.
            let (int, frac) = first.split_once('.').unwrap_or((first, ""));
            let int = int.trim_start_matches('0');
            let digits = format!("{int}{frac}");
            let price_scale = frac.len();
            // Compare units * 10^price_scale with price_digits * 10^scale as strings.
            let lhs = format!("{}{}", units, "0".repeat(price_scale));
            let rhs = format!("{digits}{}", "0".repeat(usize::from(scale)));
            let num = |s: &str| s.trim_start_matches('0').to_string();
            let (l, r) = (num(&lhs), num(&rhs));
            let ge = l.len() > r.len() || (l.len() == r.len() && l >= r);
            assert!(ge, "{first:?} at scale {scale}: {units} is too little");
            if units > 0 {
                let lhs = format!("{}{}", units - 1, "0".repeat(price_scale));
                let l = num(&lhs);
                let lt = l.len() < r.len() || (l.len() == r.len() && l < r);
                assert!(lt, "{first:?} at scale {scale}: {units} is too much");
            }
        }
    }
    for line in text.split('\n') {
        if config::op_url_allowed(line) {
            let u = url::Url::parse(line).expect("an allowed URL parses");
            let loopback = match u.host() {
                Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                None => false,
            };
            assert!(
                u.scheme() == "https" || (u.scheme() == "http" && loopback),
                "{line:?}"
            );
        }
    }
    let age = max_age(Some(text));
    assert!(age <= MAX_WALLET_CACHE);
    let lower = text.to_ascii_lowercase();
    if lower.contains("no-store") || lower.contains("no-cache") || !lower.contains("max-age=") {
        assert!(age.is_zero());
    }
    // Line pairs as (incoming payment, resource server): one accepted is an https://
    // (or loopback http://) URL on the resource server's origin, under its path's
    // incoming-payments/, with no query or fragment, and no dot segment.
    let all: Vec<&str> = text.split('\n').collect();
    for pair in all.windows(2) {
        let (incoming, server) = (pair[0], pair[1]);
        if !on_resource_server(incoming, server) {
            continue;
        }
        let u = url::Url::parse(incoming).expect("an accepted URL parses");
        assert!((u.query().is_none() && u.fragment().is_none()) || server.contains(['?', '#']));
        if let Ok(s) = url::Url::parse(server) {
            if s.query().is_none() && s.fragment().is_none() && !s.cannot_be_a_base() {
                assert_eq!(u.origin(), s.origin(), "{incoming:?} on {server:?}");
                let base = s.path().trim_end_matches('/');
                let id = u.path().strip_prefix(&format!("{base}/incoming-payments/"));
                assert!(
                    id.is_some_and(|id| !id.is_empty() && !id.contains('/') && id != ".."),
                    "{incoming:?} on {server:?} reads {:?}",
                    u.path()
                );
            }
        }
    }
    let _ = lines.count();
}

// ---------------------------------------------------------------------------------
// head: the request-head end finder

/// A plain reference: skip leading empty lines, then the first LF followed by an LF or
/// a CRLF ends the head.
fn head_len_reference(buf: &[u8]) -> Option<usize> {
    let mut start = 0;
    loop {
        if buf[start..].starts_with(b"\r\n") {
            start += 2;
        } else if buf[start..].starts_with(b"\n") {
            start += 1;
        } else {
            break;
        }
    }
    (start..buf.len()).find_map(|i| {
        if buf[i] != b'\n' {
            None
        } else if buf[i + 1..].starts_with(b"\n") {
            Some(i + 2)
        } else if buf[i + 1..].starts_with(b"\r\n") {
            Some(i + 3)
        } else {
            None
        }
    })
}

/// `head_len` agrees with the reference on the input and on every prefix of it (a
/// head that arrives in pieces ends in the same place, and not before it is whole).
pub fn head(data: &[u8]) {
    use tollgate::limits::head::head_len;
    let end = head_len(data);
    assert_eq!(
        end,
        head_len_reference(data),
        "{:?}",
        String::from_utf8_lossy(data)
    );
    if let Some(e) = end {
        assert!(e <= data.len());
        assert!(data[..e].ends_with(b"\n\n") || data[..e].ends_with(b"\n\r\n"));
    }
    // Every cut of a short input; about 256 spread over a long one.
    let step = (data.len() / 256).max(1);
    for cut in (0..data.len()).step_by(step) {
        let got = head_len(&data[..cut]);
        match end {
            Some(e) if cut >= e => assert_eq!(got, Some(e), "cut at {cut}"),
            _ => assert_eq!(got, None, "cut at {cut} ends early"),
        }
    }
}
