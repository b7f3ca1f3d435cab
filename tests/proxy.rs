//! The core proxy on real sockets: free paths pass byte-exact, priced paths get the
//! 402 challenge, contracts verify, and no path trick reaches priced content free.

mod support;

use futures_util::{SinkExt, StreamExt};
use sha2::{Digest, Sha256};
use support::origin::{pattern_byte, Origin};
use support::{config, raw_request, Tollgate};

const ROUTES: &str = r#"
[[route]]
path = "/movies/*"
price = "0.5"
summary = "Movie {path}"

[[route]]
path = "/movies/trailers/*"
price = "0"

[[route]]
path = "/articles/{slug}"
methods = ["GET"]
price = "0.001"
summary = "Article {path}"
scope = "route"
access_ttl = "7d"

[[route]]
path = "/exact/page"
price = "1.25"
"#;

fn setup() -> (Origin, Tollgate) {
    let origin = Origin::start();
    let tg = Tollgate::start(&config(origin.addr, ROUTES));
    (origin, tg)
}

fn public_to_local(tg: &Tollgate, url: &str) -> String {
    let rest = url
        .strip_prefix("https://shop.test")
        .expect("absolute public URL");
    tg.url(rest)
}

// Rules out: a proxy that rewrites, drops or reorders what free paths carry.
#[tokio::test]
async fn free_path_is_proxied_unchanged() {
    let (origin, tg) = setup();
    let client = reqwest::Client::new();
    let r = client
        .get(tg.url("/free/page?b=2&a=1&a=3"))
        .header("X-Custom", "value 1")
        .header("Cookie", "session=abc")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-origin"], "yes");
    let echo: serde_json::Value = r.json().await.unwrap();
    assert_eq!(echo["method"], "GET");
    assert_eq!(echo["target"], "/free/page?b=2&a=1&a=3");
    let headers = echo["headers"].as_array().unwrap();
    let has = |k: &str, v: &str| headers.iter().any(|h| h[0] == k && h[1] == v);
    assert!(has("x-custom", "value 1"));
    assert!(has("cookie", "session=abc"));
    // A free sub-route under a priced prefix is free too.
    let r = client
        .get(tg.url("/movies/trailers/t1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        origin.hits(),
        vec!["/free/page?b=2&a=1&a=3", "/movies/trailers/t1"]
    );
}

// Rules out: buffering whole bodies in the proxy (memory blow-up, latency).
#[tokio::test]
async fn fifty_megabyte_bodies_stream_both_ways() {
    let (_origin, tg) = setup();
    let client = reqwest::Client::new();
    const N: u64 = 50 * 1024 * 1024;

    // Download: chunked from the origin, hashed as it arrives.
    let r = client
        .get(tg.url(&format!("/big/{N}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut stream = r.bytes_stream();
    let (mut got, mut expect) = (Sha256::new(), Sha256::new());
    let mut len = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        expect.update(
            (len..len + chunk.len() as u64)
                .map(pattern_byte)
                .collect::<Vec<_>>(),
        );
        len += chunk.len() as u64;
        got.update(&chunk);
    }
    assert_eq!(len, N);
    assert_eq!(got.finalize(), expect.finalize());

    // Upload: a chunked request body generated on the fly.
    let chunks = (0..N / 65536).map(|c| {
        let v: Vec<u8> = (c * 65536..(c + 1) * 65536).map(pattern_byte).collect();
        Ok::<_, std::io::Error>(bytes::Bytes::from(v))
    });
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let r = client
        .post(tg.url("/upload"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    let mut h = Sha256::new();
    h.update((0..N).map(pattern_byte).collect::<Vec<_>>());
    assert_eq!(v["len"], N);
    assert_eq!(v["sha256"], hex::encode(h.finalize()));

    // Neither body was held whole: peak RSS stays far below 50 MB.
    let peak = tg.peak_rss_kib();
    assert!(
        peak < 40 * 1024,
        "tollgate peak RSS {peak} KiB suggests buffering"
    );
}

// Rules out: breaking HTTP/1.1 connection reuse on the free path.
#[test]
fn keep_alive_connection_carries_several_requests() {
    use std::io::{Read, Write};
    let (origin, tg) = setup();
    let mut s = std::net::TcpStream::connect(tg.addr).unwrap();
    s.write_all(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut buf = vec![0u8; 4096];
    let mut got = Vec::new();
    while !String::from_utf8_lossy(&got).contains("\"target\":\"/a\"") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "connection closed after first response");
        got.extend_from_slice(&buf[..n]);
    }
    s.write_all(b"GET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    assert!(String::from_utf8_lossy(&rest).contains("\"target\":\"/b\""));
    assert_eq!(origin.hits(), vec!["/a", "/b"]);
}

// Rules out: breaking Upgrade (WebSocket) connections on free paths.
#[tokio::test]
async fn websocket_echo_passes_through() {
    let (_origin, tg) = setup();
    let (mut ws, resp) = tokio_tungstenite::connect_async(format!("ws://{}/ws", tg.addr))
        .await
        .unwrap();
    assert_eq!(resp.status(), 101);
    for msg in ["hello", "tollgate", "ünïcode"] {
        ws.send(tokio_tungstenite::tungstenite::Message::text(msg))
            .await
            .unwrap();
        let back = ws.next().await.unwrap().unwrap();
        assert_eq!(back.into_text().unwrap().as_str(), msg);
    }
    ws.close(None).await.unwrap();
}

// Rules out: a 402 that is incomplete, cacheable, or that leaks the request to the origin.
#[tokio::test]
async fn priced_path_gets_402_without_touching_origin() {
    let (origin, tg) = setup();
    let client = reqwest::Client::new();
    let r = client
        .get(tg.url("/movies/x"))
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 402);
    let h = r.headers().clone();
    assert_eq!(h["cache-control"], "no-store");
    let hash = h["x-taler-contract-hash"].to_str().unwrap().to_string();
    assert_eq!(hash.len(), 64);
    assert!(hash
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    let contract_url = h["x-taler-contract-url"].to_str().unwrap();
    assert!(contract_url.starts_with("https://shop.test/_tollgate/contract/"));
    assert_eq!(h["x-taler-pay-url"], "https://shop.test/_tollgate/pay");
    assert_eq!(
        h["x-taler-offer-url"],
        "https://shop.test/_tollgate/offer?resource=/movies/x"
    );
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["contract_hash"], hash);
    assert_eq!(body["contract"]["amount"], "0.5");
    assert_eq!(body["contract"]["summary"], "Movie /movies/x");
    assert_eq!(body["contract"]["resource"], "/movies/x");
    assert_eq!(body["contract"]["scope"], "/movies/x");
    assert_eq!(body["contract"]["currency"], "0xBTC");
    assert_eq!(body["contract"]["decimals"], 8);

    // Browsers get the HTML paywall, which works without JavaScript.
    let r = client
        .get(tg.url("/movies/x"))
        .header("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 402);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(r.headers().contains_key("x-taler-contract-hash"));
    let page = r.text().await.unwrap();
    assert!(page.contains("Movie /movies/x"));
    assert!(page.contains("0.5 0xBTC"));
    assert!(page.contains("/_tollgate/offer?resource=/movies/x"));
    // Without JavaScript the form posts the contract to the pay URL.
    assert!(page.contains(
        "<form id=\"pay-form\" method=\"post\" action=\"https://shop.test/_tollgate/pay\">"
    ));
    assert!(page.contains("name=\"contract\" value=\"ey"));

    // Each 402 carries a fresh nonce, so a fresh hash.
    let again = client.get(tg.url("/movies/x")).send().await.unwrap();
    assert_ne!(
        again.headers()["x-taler-contract-hash"].to_str().unwrap(),
        hash
    );

    assert!(origin.hits().is_empty(), "origin saw {:?}", origin.hits());
}

// Rules out: a hash that does not commit to the terms the contract URL serves.
#[tokio::test]
async fn contract_hash_matches_contract_url() {
    let (_origin, tg) = setup();
    let client = reqwest::Client::new();
    for path in ["/movies/x", "/articles/hello", "/exact/page"] {
        let r = client.get(tg.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 402, "{path}");
        let hash = r.headers()["x-taler-contract-hash"]
            .to_str()
            .unwrap()
            .to_string();
        let url = public_to_local(&tg, r.headers()["x-taler-contract-url"].to_str().unwrap());
        let terms: serde_json::Value = client.get(url).send().await.unwrap().json().await.unwrap();
        let jcs = serde_json_canonicalizer::to_string(&terms).unwrap();
        assert_eq!(hex::encode(Sha256::digest(jcs.as_bytes())), hash, "{path}");
        // The fulfillment URL carries the same token as the contract URL.
        let token = r.headers()["x-taler-contract-url"]
            .to_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_string();
        assert_eq!(
            terms["fulfillment_url"],
            format!("https://shop.test{path}?tollgate_contract={token}")
        );
        let keys: Vec<&str> = terms
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        for k in [
            "version",
            "merchant",
            "summary",
            "products",
            "amount",
            "currency",
            "chain_id",
            "token",
            "decimals",
            "resource",
            "scope",
            "fulfillment_url",
            "nonce",
            "created",
            "pay_deadline",
            "access_ttl",
        ] {
            assert!(keys.contains(&k), "terms lack {k}");
        }
        assert_eq!(
            terms["pay_deadline"].as_u64().unwrap() - terms["created"].as_u64().unwrap(),
            1800
        );
    }
    // scope = "route" puts "route:" and the pattern in the scope (the kind is part of the
    // MAC'd terms, never guessed from the characters); access_ttl follows the route.
    let r = client
        .get(tg.url("/articles/hello"))
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["contract"]["scope"], "route:/articles/{slug}");
    assert_eq!(body["contract"]["access_ttl"], 7 * 86400);
    assert_eq!(body["contract"]["amount"], "0.001");
}

// Rules out: accepting forged, truncated or foreign contract tokens.
#[tokio::test]
async fn tampered_tokens_are_rejected() {
    let (_origin, tg) = setup();
    let client = reqwest::Client::new();
    let r = client.get(tg.url("/movies/x")).send().await.unwrap();
    let url = public_to_local(&tg, r.headers()["x-taler-contract-url"].to_str().unwrap());
    let token = url.rsplit('/').next().unwrap().to_string();
    assert_eq!(client.get(&url).send().await.unwrap().status(), 200);

    let (payload, mac) = token.split_once('.').unwrap();
    // Change the price inside the payload: "p":"50000000" → "p":"1".
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let json = String::from_utf8(b64.decode(payload).unwrap()).unwrap();
    let cheap = json.replace("\"p\":\"50000000\"", "\"p\":\"1\"");
    assert_ne!(cheap, json);
    let forged = format!("{}.{mac}", b64.encode(cheap));
    // A token minted under another key.
    let foreign = {
        let origin = Origin::start();
        let other = Tollgate::start_with_env(
            &config(origin.addr, ROUTES),
            &[("TOLLGATE_TEST_KEY", support::OTHER_KEY)],
        );
        let r = client.get(other.url("/movies/x")).send().await.unwrap();
        let u = r.headers()["x-taler-contract-url"]
            .to_str()
            .unwrap()
            .to_string();
        u.rsplit('/').next().unwrap().to_string()
    };
    let mut flipped = token.clone().into_bytes();
    let i = flipped.len() / 3;
    flipped[i] = if flipped[i] == b'A' { b'B' } else { b'A' };
    let bad = [
        forged,
        token[..token.len() - 5].to_string(),
        payload.to_string(),
        String::from_utf8(flipped).unwrap(),
        foreign,
        "not-a-token".to_string(),
        "x".repeat(5000),
    ];
    for t in bad {
        let r = client
            .get(tg.url(&format!("/_tollgate/contract/{t}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "token {t:.40}…");
        let body: serde_json::Value = r.json().await.unwrap();
        assert!(body["code"].is_string() && body["message"].is_string());
    }
}

// Rules out: every known way to dress up a priced path so it reaches the origin unpaid.
#[test]
fn path_tricks_never_reach_priced_content_for_free() {
    let (origin, tg) = setup();
    let tricks: &[&[u8]] = &[
        b"/movies/x",
        b"/movies/./x",
        b"/free/../movies/x",
        b"/free/%2e%2e/movies/x",
        b"/free/.%2E/movies/x",
        b"//movies//x",
        b"/%6dovies/x",
        b"/m%6Fvies/%78",
        b"/movies%2Fx",
        b"/movies%2fx",
        b"/free%2F..%2Fmovies/x",
        b"/free\\..\\movies\\x",
        b"/movies\\x",
        b"/movies%5Cx",
        b"/movies/x%00.txt",
        b"/exact/page%00.free",
        b"/movies/%ff%fe",
        b"/free/..;/movies/x",
        b"/exact/page;jsessionid=1",
        b"/exact/page/",
        b"/exact//page",
        b"/exact/./page",
        b"/articles/hello/",
        b"/articles/%68ello",
        b"/movies",
        b"/movies/",
        b"http://tollgate.test/free/../movies/x",
    ];
    for t in tricks {
        let r = raw_request(tg.addr, "GET", t, &[]);
        assert!(
            r.status == 402 || r.status == 400,
            "{} got {}",
            String::from_utf8_lossy(t),
            r.status
        );
    }
    assert!(origin.hits().is_empty(), "origin saw {:?}", origin.hits());

    // Canonical forms are what the origin receives on free paths.
    let r = raw_request(tg.addr, "GET", b"/a/./b/../c//d?q=%2F", &[]);
    assert_eq!(r.status, 200);
    let r2 = raw_request(tg.addr, "GET", b"/%7Euser/%41", &[]);
    assert_eq!(r2.status, 200);
    // Encoded slashes on a path that is free under every reading pass through as sent.
    let r3 = raw_request(tg.addr, "GET", b"/files/a%2Fb", &[]);
    assert_eq!(r3.status, 200);
    assert_eq!(
        origin.hits(),
        vec!["/a/c/d?q=%2F", "/~user/A", "/files/a%2Fb"]
    );
}

// Rules out: HEAD (or an unlisted method on a default-deny route) slipping through.
#[test]
fn head_is_priced_like_get() {
    let (origin, tg) = setup();
    let r = raw_request(tg.addr, "HEAD", b"/movies/x", &[]);
    assert_eq!(r.status, 402);
    assert!(r.header("x-taler-contract-hash").is_some());
    // /articles/{slug} prices only GET: HEAD is priced with it, POST and OPTIONS pass.
    assert_eq!(
        raw_request(tg.addr, "HEAD", b"/articles/a", &[]).status,
        402
    );
    assert_eq!(raw_request(tg.addr, "GET", b"/articles/a", &[]).status, 402);
    assert_eq!(
        raw_request(tg.addr, "OPTIONS", b"/articles/a", &[]).status,
        200
    );
    assert_eq!(
        raw_request(tg.addr, "POST", b"/articles/a", &[("Content-Length", "0")]).status,
        200
    );
    // /movies/* lists no methods: every method is priced, OPTIONS included.
    for m in ["POST", "PUT", "DELETE", "OPTIONS", "PATCH"] {
        let r = raw_request(tg.addr, m, b"/movies/x", &[("Content-Length", "0")]);
        assert_eq!(r.status, 402, "{m}");
    }
    assert_eq!(origin.hits(), vec!["/articles/a", "/articles/a"]);
}

// Rules out: tollgate's own namespace leaking to the origin.
#[test]
fn pay_prefix_never_reaches_origin() {
    let (origin, tg) = setup();
    for t in [
        &b"/_tollgate"[..],
        b"/_tollgate/",
        b"/_tollgate/unknown",
        b"/_tollgate/contract",
        b"/free/../_tollgate/x",
        b"/_tollgate/offer?resource=/free/page",
    ] {
        let r = raw_request(tg.addr, "GET", t, &[]);
        assert!(
            r.status == 404 || r.status == 400,
            "{}: {}",
            String::from_utf8_lossy(t),
            r.status
        );
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert!(v["code"].is_string());
    }
    let r = raw_request(
        tg.addr,
        "POST",
        b"/_tollgate/contract/abc",
        &[("Content-Length", "0")],
    );
    assert_eq!(r.status, 405);
    assert!(origin.hits().is_empty());
}

// Rules out: a browser's form post landing on raw JSON (here: a tollgate without
// payments, as the demo without a chain was), while programs still get JSON.
#[test]
fn form_posts_get_html_pages_programs_get_json() {
    let (_origin, tg) = setup();
    let form = [
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Accept", "text/html"),
        ("Content-Length", "10"),
    ];
    let r = raw_request(tg.addr, "POST", b"/_tollgate/pay", &[]);
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    let mut req = b"POST /_tollgate/pay HTTP/1.1\r\nHost: t\r\nConnection: close\r\n".to_vec();
    for (k, v) in form {
        req.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    req.extend_from_slice(b"\r\ncontract=x");
    let mut s = std::net::TcpStream::connect(tg.addr).unwrap();
    std::io::Write::write_all(&mut s, &req).unwrap();
    let mut buf = Vec::new();
    std::io::Read::read_to_end(&mut s, &mut buf).unwrap();
    let r = support::parse_response(&buf, false);
    assert_eq!(r.status, 503);
    assert!(
        r.header("content-type").unwrap().starts_with("text/html"),
        "{:?}",
        r.headers
    );
    let page = String::from_utf8_lossy(&r.body);
    assert!(page.contains("<h1>Payments are unavailable</h1>"), "{page}");
}

// Rules out: a revisited fulfillment URL inviting a second, different contract
// (the seed's points 2 and 3), and the contract token leaking to the origin.
#[tokio::test]
async fn fulfillment_url_revisit_returns_same_contract() {
    let (origin, tg) = setup();
    let client = reqwest::Client::new();
    let first = client.get(tg.url("/movies/x")).send().await.unwrap();
    let hash = first.headers()["x-taler-contract-hash"]
        .to_str()
        .unwrap()
        .to_string();
    let url = first.headers()["x-taler-contract-url"]
        .to_str()
        .unwrap()
        .to_string();
    let token = url.rsplit('/').next().unwrap();
    for _ in 0..2 {
        let again = client
            .get(tg.url(&format!("/movies/x?tollgate_contract={token}")))
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 402);
        assert_eq!(
            again.headers()["x-taler-contract-hash"].to_str().unwrap(),
            hash
        );
        assert_eq!(
            again.headers()["x-taler-contract-url"].to_str().unwrap(),
            url
        );
    }
    // The same token on another resource is ignored: a fresh contract for that resource.
    let other = client
        .get(tg.url(&format!("/movies/y?tollgate_contract={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 402);
    assert_ne!(
        other.headers()["x-taler-contract-hash"].to_str().unwrap(),
        hash
    );
    // A tampered token is ignored the same way (one character in its middle changed,
    // always to a different one).
    let mut bytes = token.as_bytes().to_vec();
    let mid = bytes.len() / 2;
    bytes[mid] = if bytes[mid] == b'A' { b'B' } else { b'A' };
    let tampered_token = String::from_utf8(bytes).unwrap();
    let tampered = client
        .get(tg.url(&format!("/movies/x?tollgate_contract={tampered_token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(tampered.status(), 402);
    assert_ne!(
        tampered.headers()["x-taler-contract-hash"]
            .to_str()
            .unwrap(),
        hash
    );
    // On a free path the parameter is stripped before proxying.
    let r = client
        .get(tg.url(&format!("/free/p?a=1&tollgate_contract={token}&b=2")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(origin.hits(), vec!["/free/p?a=1&b=2"]);
}

// Rules out: an offer page for things that are not for sale, or one that reuses contracts.
#[tokio::test]
async fn offer_page_issues_fresh_contract_for_priced_resources_only() {
    let (origin, tg) = setup();
    let client = reqwest::Client::new();
    let r = client
        .get(tg.url("/_tollgate/offer?resource=/movies/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let h1 = r.headers()["x-taler-contract-url"]
        .to_str()
        .unwrap()
        .to_string();
    let page = r.text().await.unwrap();
    assert!(page.contains("Movie /movies/x") && page.contains("0.5 0xBTC"));
    assert!(page.contains("tollgate_contract="));
    let r2 = client
        .get(tg.url("/_tollgate/offer?resource=%2Fmovies%2Fx"))
        .send()
        .await
        .unwrap();
    assert_eq!(r2.status(), 200);
    assert_ne!(r2.headers()["x-taler-contract-url"].to_str().unwrap(), h1);
    for q in ["/free/page", "/movies/trailers/t", "/nothing"] {
        let r = client
            .get(tg.url(&format!("/_tollgate/offer?resource={q}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{q}");
    }
    let r = client.get(tg.url("/_tollgate/offer")).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(origin.hits().is_empty());
}

// Rules out: agents having to meet a 402 to learn a price, free routes advertised as
// priced, and a stale manifest after a change (ETag over the content).
#[tokio::test]
async fn prices_json_lists_every_priced_route_and_the_catalogue() {
    let origin = Origin::start();
    let routes = r#"
[[route]]
path = "/movies/*"
price = "0.5"
[[route]]
path = "/free/*"
price = "0"
[[route]]
path = "/api/{id}"
methods = ["GET"]
price = "0.001"
scope = "route"
access_ttl = "1h"
[[route]]
path = "/preview/*"
price = "0.2"
enforce = false
[[product]]
id = "cd-1"
description = "The CD"
price = "1.5"
unlocks = ["/movies/cd-1"]
"#;
    let tg = Tollgate::start(&config(origin.addr, routes));
    let http = reqwest::Client::new();
    let r = http
        .get(tg.url("/_tollgate/prices.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    let doc: serde_json::Value = r.json().await.unwrap();
    let routes = doc["routes"].as_array().unwrap();
    let patterns: Vec<&str> = routes
        .iter()
        .map(|r| r["pattern"].as_str().unwrap())
        .collect();
    assert_eq!(patterns.len(), 3, "{doc}");
    assert!(!patterns.contains(&"/free/*"), "{doc}");
    let api = routes.iter().find(|r| r["pattern"] == "/api/{id}").unwrap();
    assert_eq!(api["price"], "0.001");
    assert_eq!(api["price_base_units"], "100000");
    assert_eq!(api["methods"], serde_json::json!(["GET"]));
    assert_eq!(api["scope"], "route");
    assert_eq!(api["access_ttl"], 3600);
    assert_eq!(api["currency"], "0xBTC");
    assert!(api["chain_id"].is_u64() && api["token"].is_string());
    let preview = routes
        .iter()
        .find(|r| r["pattern"] == "/preview/*")
        .unwrap();
    assert_eq!(preview["enforce"], false);
    assert_eq!(doc["basket"]["products"][0]["id"], "cd-1");
    assert_eq!(
        doc["basket"]["products"][0]["price_base_units"],
        "150000000"
    );
    assert_eq!(doc["pay_url"], "https://shop.test/_tollgate/pay");
    // Unchanged: 304 without a body; HEAD: headers only.
    let r = http
        .get(tg.url("/_tollgate/prices.json"))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    assert!(r.bytes().await.unwrap().is_empty());
    let r = http
        .head(tg.url("/_tollgate/prices.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status().as_u16(), r.headers()["etag"].to_str().unwrap()),
        (200, etag.as_str())
    );
    assert_eq!(
        http.post(tg.url("/_tollgate/prices.json"))
            .send()
            .await
            .unwrap()
            .status(),
        405
    );
    // Every 402 points at it, in a header and in the paywall's head.
    let r = http.get(tg.url("/movies/x")).send().await.unwrap();
    assert_eq!(r.status(), 402);
    assert_eq!(
        r.headers()["link"],
        "<https://shop.test/_tollgate/prices.json>; rel=\"payment-manifest\""
    );
    let page = r.text().await.unwrap();
    assert!(
        page.contains(
            "<link rel=\"payment-manifest\" href=\"https://shop.test/_tollgate/prices.json\""
        ),
        "{page}"
    );
}
