//! Web Monetization link injection through the real binary (SPEC section 10, "Link
//! injection"): HTML of `inject_link` routes gets `<link rel="monetization">` right after
//! its `<head …>` tag as it streams, in every encoding the origin chose, wherever the
//! chunks split the head; everything else passes byte-exact.

mod support;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use support::wm_origin::{
    big_page_byte, content_encoding, decode, small_page_with_link, wire_body, WmOrigin, BIG_PREFIX,
    JSON_BODY, LINK, SMALL_PAGE,
};
use support::{config, TempDir, Tollgate, TEST_KEY};

const WM: &str = r#"
[web_monetization]
wallet_address = "https://wallet.example/alice"
inject_link = ["/blog/*"]
"#;

const ENCODINGS: [&str; 5] = ["identity", "gzip", "br", "deflate", "deflate-raw"];

fn setup() -> (WmOrigin, Tollgate) {
    let origin = WmOrigin::start();
    let tg = Tollgate::start(&config(origin.addr, WM));
    (origin, tg)
}

/// A client that neither asks for nor decodes compressed bodies: the test sees the
/// bytes tollgate sent.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

async fn get(c: &reqwest::Client, url: &str) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let r = c.get(url).send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.bytes().await.unwrap().to_vec();
    (status, headers, body)
}

fn header<'h>(h: &'h reqwest::header::HeaderMap, name: &str) -> Option<&'h str> {
    h.get(name).map(|v| v.to_str().unwrap())
}

// Rules out: a link missing or misplaced in compressed HTML, a body re-encoded in
// another coding (or left decoded under the origin's Content-Encoding), a stale
// Content-Length, or a strong ETag kept for changed bytes.
#[tokio::test]
async fn html_gets_the_link_after_head_in_every_encoding() {
    let (_origin, tg) = setup();
    let c = client();
    let expected = small_page_with_link();
    for enc in ENCODINGS {
        for cl in ["0", "1"] {
            let what = format!("enc={enc} cl={cl}");
            let (status, h, body) =
                get(&c, &tg.url(&format!("/blog/post?enc={enc}&cl={cl}"))).await;
            assert_eq!(status, 200, "{what}");
            assert_eq!(
                header(&h, "content-encoding"),
                content_encoding(enc),
                "{what}"
            );
            assert_eq!(header(&h, "content-length"), None, "{what}");
            assert_eq!(header(&h, "transfer-encoding"), Some("chunked"), "{what}");
            assert_eq!(header(&h, "etag"), Some("W/\"v1\""), "{what}");
            assert_eq!(header(&h, "vary"), Some("Accept-Encoding"), "{what}");
            assert_eq!(header(&h, "accept-ranges"), None, "{what}");
            // Decoded strictly in the origin's own format (raw deflate stays raw).
            let decoded = decode(enc, &body).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(String::from_utf8(decoded).unwrap(), expected, "{what}");
        }
    }
}

// Rules out: a link lost, doubled or misplaced when the chunks cut the head (or the
// compressed bytes) at any byte, including one byte per chunk.
#[tokio::test]
async fn link_goes_in_wherever_the_chunks_split_the_head() {
    let (_origin, tg) = setup();
    let c = client();
    let expected = small_page_with_link();
    for k in 0..=SMALL_PAGE.len() {
        let (_, _, body) = get(&c, &tg.url(&format!("/blog/post?split={k}"))).await;
        assert_eq!(
            String::from_utf8(body).unwrap(),
            expected,
            "identity split at {k}"
        );
    }
    let gz_len = wire_body("enc=gzip").len();
    for k in 0..=gz_len {
        let (_, _, body) = get(&c, &tg.url(&format!("/blog/post?enc=gzip&split={k}"))).await;
        let decoded = decode("gzip", &body).unwrap();
        assert_eq!(
            String::from_utf8(decoded).unwrap(),
            expected,
            "gzip split at {k}"
        );
    }
    for enc in ENCODINGS {
        let (_, _, body) = get(&c, &tg.url(&format!("/blog/post?enc={enc}&split=each"))).await;
        let decoded = decode(enc, &body).unwrap();
        assert_eq!(
            String::from_utf8(decoded).unwrap(),
            expected,
            "{enc} byte by byte"
        );
    }
}

/// Checks a streamed body against the big page with the link, byte by byte, without
/// keeping it.
#[derive(Default)]
struct BigPageCheck {
    pos: usize,
    first_difference: Option<usize>,
}

impl Write for BigPageCheck {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let head = BIG_PREFIX.len() + LINK.len();
        for &b in buf {
            let pos = self.pos;
            let want = if pos < BIG_PREFIX.len() {
                BIG_PREFIX.as_bytes()[pos]
            } else if pos < head {
                LINK.as_bytes()[pos - BIG_PREFIX.len()]
            } else {
                big_page_byte(pos - LINK.len())
            };
            if b != want && self.first_difference.is_none() {
                self.first_difference = Some(pos);
            }
            self.pos += 1;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// Rules out: buffering the page (or more than its head) to inject, plain or while
// decoding and re-encoding: 50 MiB of HTML streams through with tollgate's peak memory
// growing by far less than the body.
#[tokio::test]
async fn fifty_megabyte_html_streams_with_bounded_memory() {
    let (_origin, tg) = setup();
    let c = client();
    const N: usize = 50 * 1024 * 1024;
    for enc in ["identity", "gzip"] {
        // Warm up (allocator arenas, pools, codec state) with a small page of the kind.
        let (_, _, warm) = get(
            &c,
            &tg.url(&format!("/blog/big?page=big&enc={enc}&size=1000000")),
        )
        .await;
        assert_eq!(decode(enc, &warm).unwrap().len(), 1_000_000 + LINK.len());

        let before = tg.peak_rss_kib();
        let r = c
            .get(tg.url(&format!("/blog/big?page=big&enc={enc}&size={N}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let mut stream = r.bytes_stream();
        let mut check = flate2::write::GzDecoder::new(BigPageCheck::default());
        let mut plain = BigPageCheck::default();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.unwrap();
            if enc == "gzip" {
                check.write_all(&chunk).unwrap();
            } else {
                plain.write_all(&chunk).unwrap();
            }
        }
        let after = tg.peak_rss_kib();
        let seen = if enc == "gzip" {
            check.try_finish().expect("a complete gzip stream");
            check.finish().unwrap()
        } else {
            plain
        };
        assert_eq!(seen.first_difference, None, "{enc}");
        assert_eq!(seen.pos, N + LINK.len(), "{enc}");
        let growth_kib = after.saturating_sub(before);
        eprintln!(
            "tollgate VmHWM ({enc}): {before} KiB before, {after} KiB after 50 MiB of HTML (+{growth_kib} KiB)"
        );
        assert!(
            growth_kib < 16 * 1024,
            "{enc}: peak memory grew by {growth_kib} KiB while streaming 50 MiB"
        );
    }
}

// Rules out: touching responses that have no body to change or are not a GET's.
#[tokio::test]
async fn head_304_204_and_post_are_untouched() {
    let (_origin, tg) = setup();
    let c = client();
    let wire = wire_body("enc=gzip");
    let r = c.head(tg.url("/blog/post?enc=gzip")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        header(r.headers(), "content-length"),
        Some(wire.len().to_string().as_str())
    );
    assert_eq!(header(r.headers(), "etag"), Some("\"v1\""));
    assert_eq!(header(r.headers(), "transfer-encoding"), None);
    assert_eq!(header(r.headers(), "accept-ranges"), Some("bytes"));

    let (status, h, body) = get(&c, &tg.url("/blog/post?page=notmod")).await;
    assert_eq!(status, 304);
    assert_eq!(header(&h, "etag"), Some("\"v1\""));
    assert_eq!(header(&h, "transfer-encoding"), None);
    assert!(body.is_empty());

    let (status, h, body) = get(&c, &tg.url("/blog/post?page=nocontent")).await;
    assert_eq!(status, 204);
    assert_eq!(header(&h, "transfer-encoding"), None);
    assert!(body.is_empty());

    for query in ["enc=gzip&cl=1", "cl=1"] {
        let r = c
            .post(tg.url(&format!("/blog/post?{query}")))
            .body("a=1")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let wire = wire_body(query);
        assert_eq!(
            header(r.headers(), "content-length"),
            Some(wire.len().to_string().as_str())
        );
        assert_eq!(header(r.headers(), "etag"), Some("\"v1\""));
        assert_eq!(r.bytes().await.unwrap().as_ref(), &wire[..], "POST {query}");
    }
}

// Rules out: changing bytes of anything but HTML on an inject_link route.
#[tokio::test]
async fn non_html_on_the_same_route_is_byte_exact() {
    let (_origin, tg) = setup();
    let c = client();
    for query in [
        "page=json&cl=1",
        "page=json&split=3",
        "page=json&enc=gzip&cl=1",
    ] {
        let (status, h, body) = get(&c, &tg.url(&format!("/blog/data?{query}"))).await;
        assert_eq!(status, 200);
        assert_eq!(body, wire_body(query), "{query}");
        assert_eq!(header(&h, "etag"), Some("\"v1\""), "{query}");
        if query.contains("cl=1") {
            assert_eq!(
                header(&h, "content-length"),
                Some(body.len().to_string().as_str())
            );
        }
    }
    assert_eq!(wire_body("page=json"), JSON_BODY.as_bytes());
}

// Rules out: a second link in a page that has it, and any change to a page without a
// head: both go out byte for byte as the origin sent them, in every encoding.
#[tokio::test]
async fn pages_with_the_link_or_without_a_head_are_unchanged() {
    let (_origin, tg) = setup();
    let c = client();
    for page in ["linked", "nohead"] {
        for enc in ENCODINGS {
            for split in ["", "&split=each"] {
                let query = format!("page={page}&enc={enc}{split}");
                let (status, _, body) = get(&c, &tg.url(&format!("/blog/post?{query}"))).await;
                assert_eq!(status, 200);
                assert_eq!(body, wire_body(&query), "{query}");
            }
        }
    }
}

// Rules out: a 500, a hang, or a mangled body when the origin's gzip is corrupt: the
// raw bytes are passed on with the origin's 200, quickly.
#[tokio::test]
async fn corrupt_gzip_passes_untouched_with_200() {
    let (_origin, tg) = setup();
    let c = client();
    for query in [
        "corrupt=early",
        "corrupt=early&split=5",
        "corrupt=early&cl=1",
    ] {
        let started = Instant::now();
        let (status, h, body) = get(&c, &tg.url(&format!("/blog/post?{query}"))).await;
        assert_eq!(status, 200, "{query}");
        assert_eq!(header(&h, "content-encoding"), Some("gzip"));
        assert_eq!(body, wire_body(query), "{query}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{query} took {:?}",
            started.elapsed()
        );
    }
    // The garbage arrives in the same chunk that completes the head: nothing was sent
    // yet, so the raw bytes still go out untouched.
    let late = wire_body("corrupt=late");
    let (status, _, body) = get(&c, &tg.url("/blog/post?corrupt=late&split=40")).await;
    assert_eq!(status, 200);
    assert_eq!(body, late);
    // The garbage arrives after the page with the link was sent: the response ends
    // cleanly with what decoded (the whole page, with the link) in a well-formed gzip
    // stream.
    let started = Instant::now();
    let clean = late.len() - 64;
    let (status, _, body) = get(
        &c,
        &tg.url(&format!("/blog/post?corrupt=late&split={clean}")),
    )
    .await;
    assert_eq!(status, 200);
    let decoded = decode("gzip", &body).expect("a complete gzip stream");
    assert_eq!(String::from_utf8(decoded).unwrap(), small_page_with_link());
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        tg.stderr().contains("corrupt compressed HTML body"),
        "the cut is logged: {}",
        tg.stderr()
    );
}

// Rules out: injecting outside the configured inject_link patterns.
#[tokio::test]
async fn route_not_in_inject_link_is_untouched() {
    let (_origin, tg) = setup();
    let c = client();
    for query in ["enc=gzip&cl=1", "cl=1", "split=10"] {
        for path in ["/other/post", "/blogger/post", "/"] {
            let (status, h, body) = get(&c, &tg.url(&format!("{path}?{query}"))).await;
            assert_eq!(status, 200);
            assert_eq!(body, wire_body(query), "{path}?{query}");
            assert_eq!(header(&h, "etag"), Some("\"v1\""));
        }
    }
    // The pattern's own root matches, as route patterns do.
    let (_, _, body) = get(&c, &tg.url("/blog?cl=1")).await;
    assert_eq!(String::from_utf8(body).unwrap(), small_page_with_link());
}

// Rules out: a chunked body sent to an HTTP/1.0 client, which cannot read it: the
// changed body is delimited by closing the connection instead.
#[tokio::test]
async fn http_1_0_clients_get_a_close_delimited_body() {
    let (_origin, tg) = setup();
    let mut s = std::net::TcpStream::connect(tg.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /blog/post?enc=gzip HTTP/1.0\r\nHost: tollgate.test\r\n\r\n")
        .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let r = support::parse_response(&buf, false);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("transfer-encoding"), None);
    assert_eq!(r.header("content-length"), None);
    let decoded = decode("gzip", &r.body).unwrap();
    assert_eq!(String::from_utf8(decoded).unwrap(), small_page_with_link());
}

// Rules out: a paywall of a route payable by Web Monetization without the link the
// browser needs to start paying (or with it twice), and the link on other paywalls.
#[tokio::test]
async fn paywall_of_a_wm_price_route_carries_the_link() {
    use ed25519_dalek::pkcs8::{spki::der::pem::LineEnding, EncodePrivateKey};
    let origin = WmOrigin::start();
    let dir = TempDir::new("wm-paywall");
    let key = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
    let pem = key.to_pkcs8_pem(LineEnding::LF).unwrap();
    std::fs::write(dir.path().join("wm-client.pem"), pem.as_bytes()).unwrap();
    let routes = r#"
[[route]]
path = "/articles/*"
price = "0.02"
wm_price = "0.05"
summary = "Article {path}"

[[route]]
path = "/movies/*"
price = "0.5"

[web_monetization]
wallet_address = "https://wallet.example/alice"
inject_link = ["/blog/*", "/articles/*"]
client_wallet_address = "https://wallet.example/tollgate"
client_key_file = "wm-client.pem"
client_key_id = "tollgate-1"
"#;
    let tg = Tollgate::start_in(
        dir.path(),
        &config(origin.addr, routes),
        &[("TOLLGATE_TEST_KEY", TEST_KEY)],
    );
    let c = client();
    let html = |url: String| {
        let c = c.clone();
        async move {
            let r = c
                .get(url)
                .header("Accept", "text/html")
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let first_in_head = format!("<head>{LINK}\n<meta charset=\"utf-8\">");
    let (status, page) = html(tg.url("/articles/a-post")).await;
    assert_eq!(status, 402);
    assert!(page.contains(&first_in_head), "{page}");
    assert_eq!(page.matches("rel=\"monetization\"").count(), 1);
    let (status, page) = html(tg.url("/_tollgate/offer?resource=/articles/a-post")).await;
    assert_eq!(status, 200);
    assert!(page.contains(&first_in_head), "{page}");
    assert_eq!(page.matches("rel=\"monetization\"").count(), 1);
    // A route without wm_price: no link.
    let (status, page) = html(tg.url("/movies/m")).await;
    assert_eq!(status, 402);
    assert!(page.contains("<head>\n<meta charset=\"utf-8\">"), "{page}");
    assert!(!page.contains("monetization"), "{page}");
    drop(tg);
}
