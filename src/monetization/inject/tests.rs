//! Unit tests of the inject module.
use super::*;

const WALLET: &str = "https://wallet.example/alice";
const LINK: &str = "<link rel=\"monetization\" href=\"https://wallet.example/alice\">";

fn link() -> MonetizationLink {
    MonetizationLink::new(WALLET)
}

/// Runs `page` through a fresh injector in the given chunks.
fn run(chunks: &[&[u8]]) -> (Vec<u8>, Verdict) {
    let mut inj = HeadInjector::new(link());
    let mut out = Vec::new();
    for c in chunks {
        let mut piece = Vec::new();
        inj.push(c, &mut piece);
        out.extend_from_slice(&piece);
    }
    let mut piece = Vec::new();
    let v = inj.finish(&mut piece);
    out.extend_from_slice(&piece);
    (out, v)
}

fn whole(page: &str) -> (String, Verdict) {
    let (out, v) = run(&[page.as_bytes()]);
    (String::from_utf8(out).unwrap(), v)
}

fn injected(page: &str, after: &str) -> String {
    let at = page.find(after).unwrap() + after.len();
    format!("{}{LINK}{}", &page[..at], &page[at..])
}

const SMALL: &str = "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>A post</title>\n</head>\n<body><p>Hello</p></body>\n</html>\n";

// Rules out: a link lost or misplaced when the head arrives split at any byte.
#[test]
fn every_split_point_of_a_small_page_gives_the_same_result() {
    let expected = injected(SMALL, "<head>");
    let bytes = SMALL.as_bytes();
    for k in 0..=bytes.len() {
        let (out, v) = run(&[&bytes[..k], &bytes[k..]]);
        assert_eq!(v, Verdict::Injected, "split at {k}");
        assert_eq!(String::from_utf8(out).unwrap(), expected, "split at {k}");
    }
    for k in 0..bytes.len() {
        for j in k..=bytes.len() {
            let (out, _) = run(&[&bytes[..k], &bytes[k..j], &bytes[j..]]);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                expected,
                "split at {k},{j}"
            );
        }
    }
    let ones: Vec<&[u8]> = bytes.chunks(1).collect();
    let (out, _) = run(&ones);
    assert_eq!(String::from_utf8(out).unwrap(), expected);
}

// Rules out: a case-sensitive or attribute-blind match of the head tag.
#[test]
fn uppercase_head_with_attributes() {
    let page = "<HTML><HEAD profile='a>b' data-x=\"<head>\" lang=en><TITLE>x</TITLE></HEAD><BODY>y";
    let (out, v) = whole(page);
    assert_eq!(v, Verdict::Injected);
    assert_eq!(out, injected(page, "lang=en>"));
    let page = "<html><Head\n\tclass=\"x\"\n>\n<meta charset=utf-8></head>";
    assert_eq!(whole(page).0, injected(page, "\n>"));
    let page = "<head/><title>t</title>";
    assert_eq!(whole(page).0, injected(page, "<head/>"));
}

// Rules out: `<header>`, `<heading>` or a quoted "<head>" mistaken for the head.
#[test]
fn lookalikes_are_not_the_head() {
    for page in [
        "<html><header>x</header></html>",
        "<body><p title=\"<head>\">x</p><head></head>",
        "<html><body><head></head>",
        "<html><div><head>",
        "<html><title>no head</title><p>x",
    ] {
        let (out, v) = whole(page);
        assert_eq!(v, Verdict::Unchanged, "{page}");
        assert_eq!(out, page);
    }
}

// Rules out: adding the link twice to a page that already has it.
#[test]
fn existing_link_is_left_alone() {
    for page in [
        format!("<html><head><meta charset=utf-8>{LINK}</head><body>x"),
        "<head><title>t</title><LINK HREF='https://wallet.example/alice' REL='Monetization'></head>".to_string(),
        "<head><link rel=\"preload monetization\" href=\" https://wallet.example/alice \"/></head>".to_string(),
        "<head><link rel=monetization href=https://wallet.example/alice></head>".to_string(),
        "<head><link rel=monetization href=\"https:&#x2F;&#47;wallet.example/alice\">".to_string(),
    ] {
        let (out, v) = whole(&page);
        assert_eq!(v, Verdict::Unchanged, "{page}");
        assert_eq!(out, page);
        // Split at every byte too.
        let b = page.as_bytes();
        for k in 0..=b.len() {
            let (out, v) = run(&[&b[..k], &b[k..]]);
            assert_eq!(v, Verdict::Unchanged, "{page} split at {k}");
            assert_eq!(out, b);
        }
    }
}

// Rules out: treating another wallet's link, a commented-out link, one in a script or
// one after the head as "already there".
#[test]
fn other_links_do_not_count() {
    for page in [
        "<head><link rel=monetization href=https://wallet.example/bob></head>",
        "<head><link rel=stylesheet href=https://wallet.example/alice></head>",
        "<head><!-- <link rel=monetization href=https://wallet.example/alice> --></head>",
        "<head><script>var s='<link rel=monetization href=https://wallet.example/alice>'</script></head>",
        "<head><title></head><link rel=monetization href=https://wallet.example/alice></title></head>",
        "<head></head><body><link rel=monetization href=https://wallet.example/alice>",
        "<head><p>x</p><link rel=monetization href=https://wallet.example/alice>",
    ] {
        let (out, v) = whole(page);
        assert_eq!(v, Verdict::Injected, "{page}");
        assert_eq!(out, injected(page, "<head>"), "{page}");
    }
}

// Rules out: a page without a head getting a link (or being changed at all).
#[test]
fn no_head_passes_unchanged() {
    for page in [
        "",
        "plain text, not really html",
        "<p>fragment</p>",
        "<!doctype html><html><body>x</body></html>",
        "<html>",
    ] {
        let (out, v) = whole(page);
        assert_eq!(v, Verdict::Unchanged, "{page}");
        assert_eq!(out, page);
    }
}

// Rules out: a BOM, doctype, XML declaration or comments (even ones mentioning
// <head>) before the head hiding it or attracting the link.
#[test]
fn bom_doctype_and_comments_before_head() {
    let page = "\u{feff}<?xml version=\"1.0\"?>\n<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0//EN\">\n<!-- <head> is below -->\n<!---->\n<!-->\n<html>\n<!-- x --><head><title>t</title></head>";
    let (out, v) = whole(page);
    assert_eq!(v, Verdict::Injected);
    assert_eq!(out, injected(page, "<!-- x --><head>"));
    let b = page.as_bytes();
    for k in 0..=b.len() {
        let (out, _) = run(&[&b[..k], &b[k..]]);
        assert_eq!(
            out,
            injected(page, "<!-- x --><head>").as_bytes(),
            "split {k}"
        );
    }
}

// Rules out: unbounded buffering when no head (or no end of it) comes.
#[test]
fn holding_is_bounded() {
    // No head within the limit: unchanged, released as soon as the limit is read.
    let mut inj = HeadInjector::new(link());
    let filler = vec![b' '; 1024];
    let mut released = 0;
    for _ in 0..100 {
        let mut out = Vec::new();
        inj.push(&filler, &mut out);
        released += out.len();
        assert!(inj.held.len() <= HEAD_LIMIT + filler.len());
    }
    assert_eq!(inj.verdict(), Verdict::Unchanged);
    assert_eq!(released, 100 * 1024);
    // A head that does not end within the limit: the link goes in at the limit.
    let mut inj = HeadInjector::new(link());
    let mut out = Vec::new();
    inj.push(b"<head>", &mut out);
    assert!(out.is_empty());
    let comment = format!("<!--{}-->", "x".repeat(HEAD_LIMIT));
    inj.push(comment.as_bytes(), &mut out);
    assert_eq!(inj.verdict(), Verdict::Injected);
    assert!(out.starts_with(format!("<head>{LINK}<!--").as_bytes()));
    let mut more = Vec::new();
    inj.push(b"</head>", &mut more);
    assert_eq!(more, b"</head>");
}

// Rules out: a head that never ends (truncated page) staying held forever.
#[test]
fn body_end_decides() {
    let (out, v) = whole("<html><head><title>x</title>");
    assert_eq!(v, Verdict::Injected);
    assert_eq!(out, format!("<html><head>{LINK}<title>x</title>"));
    let (out, v) = whole("<html><hea");
    assert_eq!(v, Verdict::Unchanged);
    assert_eq!(out, "<html><hea");
}

// Rules out: markup or quotes in the wallet address breaking out of the attribute.
#[test]
fn href_is_escaped() {
    let l = MonetizationLink::new("https://w.example/a?b=1&c=\"<x>'");
    assert_eq!(
        std::str::from_utf8(l.tag()).unwrap(),
        "<link rel=\"monetization\" href=\"https://w.example/a?b=1&amp;c=&quot;&lt;x&gt;&#39;\">"
    );
    // And an existing link written with references is recognised.
    let mut inj = HeadInjector::new(l);
    let mut out = Vec::new();
    inj.push(b"<head><link rel=monetization href=\"https://w.example/a?b=1&amp;c=&quot;&lt;x&gt;&#39;\"></head>", &mut out);
    assert_eq!(inj.verdict(), Verdict::Unchanged);
}

// Rules out: random bytes panicking the tokenizer or changing anything but the one
// insertion point.
#[test]
fn arbitrary_bytes_never_panic_and_only_insert() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let alphabet = b"<>/!-?'\"= abcdehlkmnorstyHEAD\n\xef\xbb\xbf\x00";
    for _ in 0..300 {
        let mut page = Vec::new();
        for _ in 0..(seed % 300) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            page.push(alphabet[(seed % alphabet.len() as u64) as usize]);
        }
        let split = (seed % (page.len() as u64 + 1)) as usize;
        let (out, v) = run(&[&page[..split], &page[split..]]);
        let (whole_out, whole_v) = run(&[&page]);
        assert_eq!((&out, v), (&whole_out, whole_v));
        match v {
            Verdict::Unchanged => assert_eq!(out, page),
            Verdict::Injected => {
                let at = (0..out.len())
                    .find(|&i| out[i..].starts_with(LINK.as_bytes()))
                    .unwrap();
                let mut back = out[..at].to_vec();
                back.extend_from_slice(&out[at + LINK.len()..]);
                assert_eq!(back, page);
            }
            Verdict::Holding => panic!("finish must decide"),
        }
    }
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    h
}

// Rules out: touching HEAD, 304, 204, non-GET, non-HTML or unknown codings.
#[test]
fn which_responses_are_rewritable() {
    let html = headers(&[("content-type", "text/html; charset=utf-8")]);
    assert_eq!(rewritable(&Method::GET, 200, &html), Some(Coding::Identity));
    assert_eq!(rewritable(&Method::GET, 404, &html), Some(Coding::Identity));
    assert_eq!(rewritable(&Method::HEAD, 200, &html), None);
    assert_eq!(rewritable(&Method::POST, 200, &html), None);
    for s in [100, 204, 205, 206, 304] {
        assert_eq!(rewritable(&Method::GET, s, &html), None, "{s}");
    }
    let with = |extra: &[(&str, &str)]| {
        let mut pairs = vec![("content-type", "TEXT/HTML")];
        pairs.extend_from_slice(extra);
        rewritable(&Method::GET, 200, &headers(&pairs))
    };
    assert_eq!(with(&[("content-encoding", "gzip")]), Some(Coding::Gzip));
    assert_eq!(with(&[("content-encoding", "x-gzip")]), Some(Coding::Gzip));
    assert_eq!(with(&[("content-encoding", "BR")]), Some(Coding::Brotli));
    assert_eq!(
        with(&[("content-encoding", "deflate")]),
        Some(Coding::Deflate)
    );
    assert_eq!(
        with(&[("content-encoding", "identity")]),
        Some(Coding::Identity)
    );
    assert_eq!(with(&[("content-encoding", "zstd")]), None);
    assert_eq!(with(&[("content-encoding", "gzip, br")]), None);
    assert_eq!(
        with(&[("content-encoding", "gzip"), ("content-encoding", "br")]),
        None
    );
    assert_eq!(with(&[("cache-control", "public, No-Transform")]), None);
    assert_eq!(with(&[("content-length", "0")]), None);
    assert_eq!(with(&[("content-range", "bytes 0-1/2")]), None);
    for ct in [
        "application/json",
        "text/htmlx",
        "application/xhtml+xml",
        "",
    ] {
        let h = headers(&[("content-type", ct)]);
        assert_eq!(rewritable(&Method::GET, 200, &h), None, "{ct}");
    }
    assert_eq!(rewritable(&Method::GET, 200, &HeaderMap::new()), None);
}

// Rules out: a stale Content-Length, a strong ETag or digests for changed bytes.
#[test]
fn headers_for_a_changed_body() {
    let mut resp = ResponseHeader::build(200, None).unwrap();
    resp.insert_header("Content-Length", "100").unwrap();
    resp.insert_header("ETag", "\"abc\"").unwrap();
    resp.insert_header("Accept-Ranges", "bytes").unwrap();
    resp.insert_header("Content-Encoding", "gzip").unwrap();
    resp.insert_header("Vary", "Accept-Encoding").unwrap();
    resp.insert_header("Repr-Digest", "sha-256=:x:").unwrap();
    prepare_headers(&mut resp, Framing::Chunked).unwrap();
    let h = &resp.headers;
    assert!(h.get("content-length").is_none());
    assert!(h.get("accept-ranges").is_none());
    assert!(h.get("repr-digest").is_none());
    assert_eq!(h["transfer-encoding"], "chunked");
    assert_eq!(h["etag"], "W/\"abc\"");
    assert_eq!(h["content-encoding"], "gzip");
    assert_eq!(h["vary"], "Accept-Encoding");

    let mut resp = ResponseHeader::build(200, None).unwrap();
    resp.insert_header("ETag", "W/\"abc\"").unwrap();
    resp.insert_header("Content-Length", "100").unwrap();
    prepare_headers(&mut resp, Framing::CloseDelimited).unwrap();
    assert_eq!(resp.headers["etag"], "W/\"abc\"");
    assert!(resp.headers.get("transfer-encoding").is_none());
    assert!(resp.headers.get("content-length").is_none());

    let mut resp = ResponseHeader::build(200, None).unwrap();
    resp.insert_header("ETag", "abc").unwrap();
    prepare_headers(&mut resp, Framing::Chunked).unwrap();
    assert!(resp.headers.get("etag").is_none());
    assert_eq!(
        Framing::for_request(Version::HTTP_10),
        Framing::CloseDelimited
    );
    assert_eq!(Framing::for_request(Version::HTTP_11), Framing::Chunked);
}

// Rules out: inject_link patterns matched differently from route patterns.
#[test]
fn inject_link_patterns() {
    let wm = WebMonetization {
        wallet_address: WALLET.into(),
        inject_link: vec!["/blog/*".into(), "/Pages/{slug}".into(), "/about".into()],
        client: None,
        ca_pem: None,
    };
    let l = LinkInjection::from_config(Some(&wm), false).unwrap();
    assert!(l.covers("/blog"));
    assert!(l.covers("/blog/a/b"));
    assert!(l.covers("/Pages/x"));
    assert!(l.covers("/about"));
    assert!(!l.covers("/blogger"));
    assert!(!l.covers("/pages/x"));
    assert!(!l.covers("/about/x"));
    let l = LinkInjection::from_config(Some(&wm), true).unwrap();
    assert!(l.covers("/pages/x"));
    assert_eq!(l.link().href(), WALLET);
    let none = WebMonetization {
        inject_link: vec![],
        ..wm
    };
    assert!(LinkInjection::from_config(Some(&none), false).is_none());
    assert!(LinkInjection::from_config(None, false).is_none());
}
