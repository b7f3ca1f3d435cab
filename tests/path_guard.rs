//! The path guard (invariant 1) against a real origin that reads paths leniently
//! (tests/support/lenient_origin.rs: Tomcat-style `;params` stripping, decoding before
//! or after it, `\` and `%5C` and `%2F` as `/`, cut at NUL, double decoding, and
//! optionally case-insensitive matching). Every spelling generated from the known
//! tricks, up to three of them around each priced route, goes through the real
//! tollgate binary; none may come back with priced content without a receipt.

mod support;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Mutex;
use std::time::Duration;

use support::lenient_origin::LenientOrigin;
use support::{config, raw_request, Tollgate};

const ROUTES: &str = r#"
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
"#;

/// The price list above, as the origin sees it (written independently of tollgate's
/// route table, so a bug there cannot hide here).
fn is_priced(p: &str) -> bool {
    let under = |p: &str, base: &str| p == base || p.starts_with(&format!("{base}/"));
    let article = p.strip_prefix("/articles/").is_some_and(|s| {
        let s = s.strip_suffix('/').unwrap_or(s);
        !s.is_empty() && !s.contains('/')
    });
    (under(p, "/movies") && !under(p, "/movies/trailers"))
        || p == "/exact/page"
        || p == "/exact/page/"
        || article
}

/// The tricks: combined up to three deep.
const TRICKS: &[&str] = &[
    ";x", "%2F", "%2f", "%5C", "\\", "%00", "%2e", "..", ".", "//",
];

/// The tricks plus more case variants, double encoding and encoded delimiters:
/// combined up to two deep.
const MORE_TRICKS: &[&str] = &[
    ";x", "%2F", "%2f", "%5C", "%5c", "\\", "%00", "%2e", "%2E", "..", ".", "//", "/", "%252e",
    "%3B", "%3F",
];

/// Every generated spelling around the priced `samples`.
fn all_spellings(samples: &[&str]) -> Vec<Vec<u8>> {
    let mut targets: BTreeSet<Vec<u8>> = BTreeSet::new();
    for sample in samples {
        targets.extend(spellings(sample, TRICKS, 3));
        targets.extend(spellings(sample, MORE_TRICKS, 2));
    }
    targets.into_iter().collect()
}

/// Every spelling of `sample` (a priced path) with up to `depth` tokens placed at each
/// segment boundary: glued to the next segment, as a segment of their own, or in place
/// of the separating `/`; and appended at the end.
fn spellings(sample: &str, tokens: &[&str], depth: usize) -> BTreeSet<Vec<u8>> {
    let segs: Vec<&str> = sample.trim_start_matches('/').split('/').collect();
    let mut seqs: Vec<String> = vec![String::new()];
    let mut all = Vec::new();
    for _ in 0..depth {
        seqs = seqs
            .iter()
            .flat_map(|s| tokens.iter().map(move |t| format!("{s}{t}")))
            .collect();
        all.extend(seqs.iter().cloned());
    }
    let mut out = BTreeSet::new();
    for seq in &all {
        for k in 0..=segs.len() {
            let before = segs[..k].join("/");
            let after = segs[k..].join("/");
            let lead = if k == 0 {
                String::new()
            } else {
                format!("/{before}")
            };
            if k < segs.len() {
                out.insert(format!("{lead}/{seq}{after}"));
                out.insert(format!("{lead}/{seq}/{after}"));
                if k > 0 {
                    out.insert(format!("{lead}{seq}{after}"));
                }
            } else {
                out.insert(format!("{lead}{seq}"));
                out.insert(format!("{lead}/{seq}"));
            }
        }
    }
    out.into_iter()
        .filter(|s| s.starts_with('/'))
        .map(String::into_bytes)
        .collect()
}

/// One keep-alive HTTP/1.1 connection that reconnects when the server closes it.
struct Client {
    addr: SocketAddr,
    conn: Option<TcpStream>,
}

impl Client {
    fn get(&mut self, target: &[u8]) -> (u16, String) {
        for _ in 0..3 {
            if self.conn.is_none() {
                let s = TcpStream::connect(self.addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                self.conn = Some(s);
            }
            if let Some(r) = self.try_get(target) {
                return r;
            }
            self.conn = None;
        }
        panic!("no response for {}", String::from_utf8_lossy(target));
    }

    fn try_get(&mut self, target: &[u8]) -> Option<(u16, String)> {
        let s = self.conn.as_mut()?;
        let mut req = b"GET ".to_vec();
        req.extend_from_slice(target);
        req.extend_from_slice(b" HTTP/1.1\r\nHost: tollgate.test\r\n\r\n");
        s.write_all(&req).ok()?;
        let mut buf = Vec::new();
        let mut byte = [0u8; 1024];
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let n = s.read(&mut byte).ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&byte[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let status: u16 = head.split(' ').nth(1)?.parse().ok()?;
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())?;
        while buf.len() < head_end + len {
            let n = s.read(&mut byte).ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&byte[..n]);
        }
        if head.contains("connection: close") {
            self.conn = None;
        }
        Some((
            status,
            String::from_utf8_lossy(&buf[head_end..head_end + len]).into_owned(),
        ))
    }
}

/// Sends every target on 4 connections; returns the ones that got priced content.
fn leaks(addr: SocketAddr, targets: &[Vec<u8>]) -> (Vec<String>, usize) {
    let leaked = Mutex::new(Vec::new());
    let forwarded = Mutex::new(0usize);
    std::thread::scope(|scope| {
        for chunk in targets.chunks(targets.len().div_ceil(4).max(1)) {
            let (leaked, forwarded) = (&leaked, &forwarded);
            scope.spawn(move || {
                let mut c = Client { addr, conn: None };
                for t in chunk {
                    let (status, body) = c.get(t);
                    if status == 200 {
                        *forwarded.lock().unwrap() += 1;
                    }
                    if body.starts_with("PRICED") {
                        leaked
                            .lock()
                            .unwrap()
                            .push(format!("{} -> {status} {body}", String::from_utf8_lossy(t)));
                    }
                }
            });
        }
    });
    (
        leaked.into_inner().unwrap(),
        forwarded.into_inner().unwrap(),
    )
}

// Rules out: any combination of path tricks (the mixed spelling `/;%5C%00/movies/x`
// among them) reaching priced content through a lenient origin without a receipt.
#[test]
fn generated_spellings_never_reach_priced_content_for_free() {
    let origin = LenientOrigin::start(false, is_priced);
    let tg = Tollgate::start(&config(origin.addr, ROUTES));
    // The reported reproduction, and the origin really is that lenient.
    let direct = raw_request(origin.addr, "GET", b"/;%5C%00/movies/x", &[]);
    assert!(String::from_utf8_lossy(&direct.body).starts_with("PRICED"));

    let mut targets = all_spellings(&["/movies/x", "/exact/page", "/articles/a"]);
    targets.push(b"/;%5C%00/movies/x".to_vec());
    let (leaked, forwarded) = leaks(tg.addr, &targets);
    assert!(
        leaked.is_empty(),
        "{} of {} spellings reached priced content, e.g.:\n{}",
        leaked.len(),
        targets.len(),
        leaked[..leaked.len().min(20)].join("\n")
    );
    // The guard is not "refuse everything": spellings that are free under every
    // reading (e.g. a trick that lands outside every priced route) still pass.
    assert!(forwarded > 0, "nothing of {} was forwarded", targets.len());
    let r = raw_request(tg.addr, "GET", b"/;%5C%00/movies/x", &[]);
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    eprintln!(
        "{} spellings, {forwarded} forwarded (free under every reading), none priced",
        targets.len()
    );
}

// Rules out: `/MOVIES/x` and friends reaching a case-insensitive (IIS-style) origin for
// free once the operator has declared it so, and free paths being broken by it.
#[test]
fn case_insensitive_origin_is_priced_in_every_case() {
    let origin = LenientOrigin::start(true, is_priced);
    let ci = config(origin.addr, ROUTES).replace(
        "grace_period = \"1s\"",
        "grace_period = \"1s\"\nupstream_case_insensitive = true",
    );
    let tg = Tollgate::start(&ci);
    for t in [
        &b"/MOVIES/x"[..],
        b"/Movies/X",
        b"/EXACT/Page",
        b"/Articles/A",
        b"/%4Dovies/x",
    ] {
        let r = raw_request(tg.addr, "GET", t, &[]);
        assert_eq!(r.status, 402, "{}", String::from_utf8_lossy(t));
    }
    // tollgate's own prefix in another case never reaches the origin either.
    let r = raw_request(tg.addr, "GET", b"/_TOLLGATE/offer", &[]);
    assert_eq!(r.status, 404, "{}", String::from_utf8_lossy(&r.body));
    // Trailers stay free in any case, and the origin gets the lower-cased path.
    let r = raw_request(tg.addr, "GET", b"/Movies/TRAILERS/t", &[]);
    assert_eq!((r.status, r.body.as_slice()), (200, &b"FREE"[..]));

    let mut targets = BTreeSet::new();
    for sample in ["/MOVIES/x", "/Exact/PAGE", "/ARTICLES/a"] {
        targets.extend(spellings(sample, MORE_TRICKS, 2));
    }
    let targets: Vec<Vec<u8>> = targets.into_iter().collect();
    let (leaked, _) = leaks(tg.addr, &targets);
    assert!(leaked.is_empty(), "{}", leaked.join("\n"));

    // Without the declaration, the same origin would serve `/MOVIES/x` free: the
    // option is what prices it.
    let plain = Tollgate::start(&config(origin.addr, ROUTES));
    let r = raw_request(plain.addr, "GET", b"/MOVIES/x", &[]);
    assert!(String::from_utf8_lossy(&r.body).starts_with("PRICED"));
}
