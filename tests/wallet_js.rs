//! tollgate.js, the browser wallet library (SPEC section 9): how tollgate serves it,
//! and the library itself in a real browser paying on a real chain.
//!
//! `tollgate_js_is_served_with_a_strong_etag` checks `GET`/`HEAD
//! {pay_prefix}/tollgate.js` through the real binary (type, ETag, Cache-Control, 304),
//! under a non-default pay_prefix.
//!
//! `wallet_library_in_headless_chromium` runs `tests/browser/wallet.mjs` in Debian's
//! headless Chromium against the real tollgate binary, a test origin (the merchant's
//! pages, which include `<script src="/_tollgate/tollgate.js">`, and the priced
//! content) and anvil with Test 0xBTC. The browser's wallet is an **in-page shim**,
//! not a wallet extension: a script injected before the page's own (playwright
//! `addInitScript`) that defines `window.ethereum` and forwards EIP-1193
//! `request({method, params})` calls to anvil over HTTP; anvil's dev accounts are
//! unlocked, so its `eth_sendTransaction` really moves tokens. Every payment is
//! checked on chain here, and the payer's Transfer logs are counted after every
//! step: a replay, a cancel or a refusal must not add one.
//!
//! `/shop/seed.html` is the seed's own fulfillment page, verbatim, calling
//! `taler.executePayment(<hash>, <pay URL>, <offer URL>)` from its `<head>`.
//!
//! The merchant's fulfillment page (`/shop/fulfil.html?u=<fulfillment URL>`) fetches
//! the fulfillment URL and, on a 402, calls `taler.executePayment` with the 402's hash
//! and pay URL, as tollgate's own paywall does for a revisited fulfillment URL; step (p)
//! buys through tollgate's own paywall (which includes the library) with one click.

mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use alloy::primitives::{Address, B256};
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use support::background_server::BackgroundServer;
use support::chain::{address_topic, transfer_topic, Anvil};
use support::node_script::NodeScript;
use support::{base_units, browser_tollgate, config, funded_chain, raw_request, Tollgate};

const CHAIN_ID: u64 = 31337;
const PRICE: &str = "0.5";
const API_PRICE: &str = "0.25";
const CONFIRMATIONS: u64 = 2;

/// Launching Chromium and the first checks.
const FIRST_LINE: Duration = Duration::from_secs(90);
/// Any later step (the script bounds its own steps more tightly).
const NEXT_LINE: Duration = Duration::from_secs(60);

const SCRIPT: &str = include_str!("../assets/tollgate.js");

// ---- serving the library -----------------------------------------------------------

// Rules out: a library served with a type browsers refuse to execute (nosniff), no
// validator (every page view re-downloads it) or a weak one, a 304 with a body, a
// HEAD with a body, and a library only reachable under the default prefix.
#[test]
fn tollgate_js_is_served_with_a_strong_etag() {
    let origin = support::origin::Origin::start();
    let cfg = config(origin.addr, "").replace(
        "grace_period = \"1s\"",
        "grace_period = \"1s\"\npay_prefix = \"/shop/pay\"",
    );
    let tg = Tollgate::start(&cfg);
    let path = b"/shop/pay/tollgate.js";

    let r = raw_request(tg.addr, "GET", path, &[]);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("application/javascript; charset=utf-8")
    );
    assert_eq!(r.header("cache-control"), Some("public, max-age=300"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    let etag = r.header("etag").expect("an ETag").to_string();
    assert!(
        etag.starts_with('"') && etag.ends_with('"') && etag.len() > 10,
        "a strong ETag: {etag}"
    );
    assert_eq!(r.body, SCRIPT.as_bytes(), "the library, byte for byte");
    assert_eq!(
        r.header("content-length"),
        Some(SCRIPT.len().to_string().as_str())
    );
    assert!(
        origin.hits().is_empty(),
        "never proxied: {:?}",
        origin.hits()
    );

    let head = raw_request(tg.addr, "HEAD", path, &[]);
    assert_eq!(head.status, 200);
    assert_eq!(head.header("etag"), Some(etag.as_str()));
    assert!(head.body.is_empty());

    for inm in [etag.clone(), format!("W/{etag}"), format!("\"x\", {etag}")] {
        let nm = raw_request(tg.addr, "GET", path, &[("If-None-Match", &inm)]);
        assert_eq!(nm.status, 304, "If-None-Match: {inm}");
        assert!(nm.body.is_empty(), "a 304 has no body");
        assert_eq!(nm.header("etag"), Some(etag.as_str()));
        assert_eq!(nm.header("cache-control"), Some("public, max-age=300"));
        assert_eq!(nm.header("content-length"), None, "a 304 describes the 200");
    }
    let stale = raw_request(tg.addr, "GET", path, &[("If-None-Match", "\"stale\"")]);
    assert_eq!(stale.status, 200);
    assert_eq!(stale.body, SCRIPT.as_bytes());

    let post = raw_request(tg.addr, "POST", path, &[("Content-Length", "0")]);
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
    let default_prefix = raw_request(tg.addr, "GET", b"/_tollgate/tollgate.js", &[]);
    assert_ne!(
        default_prefix.body,
        SCRIPT.as_bytes(),
        "only under pay_prefix"
    );
}

// ---- the merchant's test origin -------------------------------------------------------

/// The merchant's offer page: gets a fresh contract from the priced resource's 402
/// and calls `taler.offerContractFrom` (the seed's JavaScript offer). `tamper=terms`
/// fetches the terms through `/shop/tampered-contract/` (cheaper terms, the real
/// hash); `tamper=hash` announces a wrong hash. The outcome lands in #shop-result.
const OFFER_PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Test shop: offer</title>
<script src="/_tollgate/tollgate.js"></script></head>
<body><main><h1>Test shop</h1><p id="shop-result" data-done="no">Loading the offer…</p></main>
<script>
tollgate.config.pollMs = 200;
function result(text) {
  var p = document.getElementById('shop-result');
  p.textContent = text;
  p.dataset.done = 'yes';
}
(async function () {
  var q = new URLSearchParams(location.search);
  var r = await fetch(q.get('resource'), { headers: { Accept: 'application/json' } });
  if (r.status !== 402) { result('status ' + r.status); return; }
  var contractUrl = r.headers.get('X-Taler-Contract-Url');
  var hash = r.headers.get('X-Taler-Contract-Hash');
  if (q.get('tamper') === 'terms') contractUrl = '/shop/tampered-contract/' + contractUrl.split('/').pop();
  if (q.get('tamper') === 'hash') hash = 'f'.repeat(64);
  try {
    var done = await taler.offerContractFrom(contractUrl, hash);
    result('bought ' + done.payment_id);
  } catch (e) {
    result('error ' + e.code + ': ' + e.message);
  }
})();
</script></body></html>
"#;

/// The fulfillment page's JavaScript interaction (the seed's `executePayment`): the
/// content when the browser may see it, else the 402's contract hash and pay URL
/// handed to the wallet, with the merchant's offer page for strangers.
const FULFIL_PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Test shop: fulfillment</title>
<script src="/_tollgate/tollgate.js"></script></head>
<body><main><p id="shop-result" data-done="no">Opening…</p></main>
<script>
tollgate.config.pollMs = 200;
(async function () {
  var u = new URLSearchParams(location.search).get('u');
  var r = await fetch(u, { headers: { Accept: 'application/json' } });
  if (r.ok) { location.replace(u); return; }
  var offer = '/shop/offer.html?resource=' + encodeURIComponent(new URL(u).pathname);
  taler.executePayment(r.headers.get('X-Taler-Contract-Hash'), r.headers.get('X-Taler-Pay-Url'), offer)
    .catch(function (e) {
      var p = document.getElementById('shop-result');
      p.textContent = 'error ' + e.code + ': ' + e.message;
      p.dataset.done = 'yes';
    });
})();
</script></body></html>
"#;

/// The seed's fulfillment page, character for character (taler-merchant-interaction,
/// "JavaScript based"), with the library's path and the three placeholders filled in.
const SEED_FULFILLMENT: &str = r#"<html>
  <head>
    <script src="path/to/taler-wallet-lib.js"></script>
    <script type="application/javascript">
      // Imported from taler-wallet-lib.js
      taler.executePayment(<CONTRACT-HASHCODE>, <PAY-URL>, <OFFERING-URL>);
    </script>
  </head>
  ..

</html>"#;

/// [`SEED_FULFILLMENT`] for `?h=<hash>&p=<pay URL>&o=<offer URL>`: each value a
/// JavaScript string literal (JSON, with `<` escaped so no value ends the script).
async fn seed_fulfillment(
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Html<String> {
    let lit = |k: &str| {
        serde_json::to_string(q.get(k).map(String::as_str).unwrap_or_default())
            .unwrap()
            .replace('<', "\\u003c")
    };
    Html(
        SEED_FULFILLMENT
            .replace("path/to/taler-wallet-lib.js", "/_tollgate/tollgate.js")
            .replace("<CONTRACT-HASHCODE>", &lit("h"))
            .replace("<PAY-URL>", &lit("p"))
            .replace("<OFFERING-URL>", &lit("o")),
    )
}

/// A page of the merchant's web app that calls `tollgate.fetch` (from the test).
const API_PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Test shop: app</title>
<script src="/_tollgate/tollgate.js"></script></head>
<body><main><h1>App</h1></main><script>tollgate.config.pollMs = 200;</script></body></html>
"#;

/// The merchant's origin behind tollgate: free pages under /shop/, priced content
/// under /paid/ and /api/.
struct Shop {
    server: BackgroundServer,
    /// tollgate's address, set once it runs (for the tampering contract proxy).
    tollgate: Arc<OnceLock<SocketAddr>>,
}

impl Shop {
    fn start() -> Shop {
        let tollgate: Arc<OnceLock<SocketAddr>> = Arc::default();
        let tg = tollgate.clone();
        let server = BackgroundServer::start(move || {
            Router::new()
                .route("/shop/offer.html", get(|| async { Html(OFFER_PAGE) }))
                .route("/shop/fulfil.html", get(|| async { Html(FULFIL_PAGE) }))
                .route("/shop/api.html", get(|| async { Html(API_PAGE) }))
                .route("/shop/seed.html", get(seed_fulfillment))
                .route(
                    "/shop/tampered-contract/{token}",
                    get(move |Path(token): Path<String>| tampered_contract(tg.clone(), token)),
                )
                .route("/paid/{name}", get(paid_page))
                .route(
                    "/api/data.json",
                    get(|| async { axum::Json(json!({"secret": "the paid data"})) }),
                )
        });
        Shop { server, tollgate }
    }
}

async fn paid_page(Path(name): Path<String>) -> Response {
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    {
        return StatusCode::NOT_FOUND.into_response();
    }
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Paid: {name}</title></head>\
         <body><h1>Unlocked</h1><main id=\"content\">Paid content of /paid/{name}</main></body></html>"
    ))
    .into_response()
}

/// tollgate's terms for `token` made cheaper, still announced with the real hash: a
/// man in the middle the library must catch.
async fn tampered_contract(tg: Arc<OnceLock<SocketAddr>>, token: String) -> Response {
    let Some(addr) = tg.get() else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let r = http
        .get(format!("http://{addr}/_tollgate/contract/{token}"))
        .send()
        .await
        .unwrap();
    let hash = r
        .headers()
        .get("x-taler-contract-hash")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let mut terms: Value = r.json().await.unwrap();
    terms["amount"] = json!("0.00000001");
    terms["products"][0]["price"] = json!("0.00000001");
    (
        [
            ("content-type", "application/json".to_string()),
            ("x-taler-contract-hash", hash),
        ],
        terms.to_string(),
    )
        .into_response()
}

// ---- helpers ----------------------------------------------------------------------

/// Where screenshots land: a fresh directory under Cargo's temporary directory for
/// integration tests (`target/tmp/`), kept after the run.
fn screenshot_dir() -> PathBuf {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("wallet_js-{stamp}"))
}

/// Every token Transfer log sent from `from`.
async fn transfers_from(anvil: &Anvil, token: Address, from: Address) -> Vec<Value> {
    let filter = json!({
        "address": token,
        "fromBlock": "0x0",
        "toBlock": "latest",
        "topics": [transfer_topic(), address_topic(from)],
    });
    serde_json::from_value(anvil.rpc("eth_getLogs", json!([filter])).await).unwrap()
}

fn word_to_address(topic: &Value) -> Address {
    let s = topic.as_str().unwrap();
    Address::from_slice(&hex::decode(&s[s.len() - 40..]).unwrap())
}

/// The driver's side of a shim payment: `SENT <label> <tx>` → the transaction is a
/// successful transfer of `price` from the payer to a fresh address, the payer's
/// `expected`-th → `OK`; `CONFIRMING <label> 1/2` → one more block → `MINED`.
/// Returns the address paid.
#[allow(clippy::too_many_arguments)]
async fn shim_payment(
    b: &mut NodeScript,
    tg: &Tollgate,
    anvil: &Anvil,
    token: Address,
    payer: Address,
    label: &str,
    price: &str,
    expected: usize,
) -> Address {
    let sent = b.expect(tg, "SENT", NEXT_LINE);
    let (got_label, tx) = sent.split_once(' ').unwrap_or((&sent, ""));
    assert_eq!(got_label, label, "SENT for another payment: {sent}");
    let tx: B256 = tx
        .parse()
        .unwrap_or_else(|e| panic!("bad tx hash {tx:?}: {e}"));
    let receipt = anvil.wait_success(tx).await;
    assert_eq!(word_to_address(&receipt["from"]), payer, "{label}: sender");
    assert_eq!(
        word_to_address(&receipt["to"]),
        token,
        "{label}: to the token"
    );
    let logs = receipt["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 1, "{label}: one Transfer: {receipt}");
    let log = &logs[0];
    assert_eq!(log["topics"][0], json!(transfer_topic()), "{label}");
    assert_eq!(word_to_address(&log["topics"][1]), payer, "{label}");
    let to = word_to_address(&log["topics"][2]);
    let value =
        u128::from_str_radix(log["data"].as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
    assert_eq!(value, base_units(price), "{label}: exactly the price");
    assert_eq!(
        transfers_from(anvil, token, payer).await.len(),
        expected,
        "{label}: the payer's transfers so far"
    );
    b.say(tg, "OK");
    let progress = b.expect(tg, "CONFIRMING", NEXT_LINE);
    assert_eq!(progress, format!("{label} 1/{CONFIRMATIONS}"));
    anvil.mine(1).await;
    b.say(tg, "MINED");
    to
}

// ---- the library in a browser -----------------------------------------------------------

/// tollgate on a port chosen first (the browser must reach it at its `public_url`)
/// in front of `shop`, pricing `/paid/*` and `/api/*`, offers valid for `expiry`.
fn start_tollgate(anvil: &Anvil, token: Address, shop: &Shop, expiry: &str) -> (Tollgate, String) {
    let rest = format!(
        r#"
[payments]
expiry = "{expiry}"
access_ttl = "30d"
claim_rate = "1000/min"
[[route]]
path = "/paid/*"
price = "{PRICE}"
summary = "Article {{path}}"
[[route]]
path = "/api/*"
price = "{API_PRICE}"
summary = "Data {{path}}"
"#
    );
    let tg = browser_tollgate(anvil, token, shop.server.addr, CONFIRMATIONS, &rest);
    shop.tollgate.set(tg.addr).unwrap();
    let public_url = tg.url("");
    (tg, public_url)
}

// Rules out: a wallet library that pays without the user's confirmation, pays twice
// (a replay, a new tab, a reload, a second fetch), pays for terms it did not check
// (a tampered contract or a substituted hash), swallows a wallet's refusal, sends on
// the wrong chain or without funds, loses a payment in progress on reload, leaves a
// stranger with a shared link stuck, or only works with a wallet installed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wallet_library_in_headless_chromium() {
    let (anvil, token) = funded_chain(CHAIN_ID).await;
    let payer = anvil.dev_account(1).await;
    let empty = anvil.dev_account(2).await;
    let shop = Shop::start();
    let (tg, public_url) = start_tollgate(&anvil, token, &shop, "30m");
    // A JSON text whose canonical form exercises key order by UTF-16 code units
    // (U+20AC before U+1F600's surrogates), escapes and -0.
    let jcs_input = r#"{"b":1,"a":[{"z":"é\u0001\"\\","y":null}],"€":true,"😀":false,"A":-0,"aa":"\u2028\t","":[]}"#;
    let canonical =
        serde_json_canonicalizer::to_string(&serde_json::from_str::<Value>(jcs_input).unwrap())
            .unwrap();

    let shots = screenshot_dir();
    let cfg = json!({
        "base": public_url,
        "rpc": anvil.rpc_url(),
        "chainId": CHAIN_ID,
        "payer": payer.to_string(),
        "empty": empty.to_string(),
        "token": token.to_string(),
        "price": PRICE,
        "priceBaseUnits": base_units(PRICE).to_string(),
        "apiPrice": API_PRICE,
        "shots": shots,
        "jcs": {"input": jcs_input, "canonical": canonical},
    });
    eprintln!("screenshots: {}", shots.display());
    let mut b = NodeScript::start("wallet.mjs", &[cfg.to_string()]);
    let mut paid_to = Vec::new();

    b.expect(&tg, "BASE_OK", FIRST_LINE);
    b.expect(&tg, "JCS_OK", NEXT_LINE);

    // (a) One click: the dialog, Confirm, the shim's one transaction, paid, content.
    b.expect(&tg, "DIALOG", NEXT_LINE);
    paid_to.push(shim_payment(&mut b, &tg, &anvil, token, payer, "a", PRICE, 1).await);
    b.expect(&tg, "UNLOCKED", NEXT_LINE);
    b.expect(&tg, "STORED", NEXT_LINE);
    // New tabs replay (cookie; wallet store via executePayment; a fresh offer for
    // the same resource) without a second transaction.
    b.expect(&tg, "REPLAYED_COOKIE", NEXT_LINE);
    b.expect(&tg, "REPLAYED_STORE", NEXT_LINE);
    b.expect(&tg, "REPLAYED_SEED", NEXT_LINE);
    b.expect(&tg, "REPLAYED_OFFER", NEXT_LINE);
    assert_eq!(transfers_from(&anvil, token, payer).await.len(), 1);

    // (p) tollgate's own paywall runs the library: one click, one transaction.
    paid_to.push(shim_payment(&mut b, &tg, &anvil, token, payer, "p", PRICE, 2).await);
    b.expect(&tg, "PAYWALL_UNLOCKED", NEXT_LINE);

    // (b) Cancel and Escape: nothing claimed or sent.
    b.expect(&tg, "CANCELLED", NEXT_LINE);
    b.expect(&tg, "ESCAPED", NEXT_LINE);
    // (d) Terms that do not hash to the announced hash: refused, nothing shown or sent.
    b.expect(&tg, "REFUSED_TERMS", NEXT_LINE);
    b.expect(&tg, "REFUSED_HASH", NEXT_LINE);
    assert_eq!(transfers_from(&anvil, token, payer).await.len(), 2);

    // (f) tollgate.fetch: paid once, content returned; the second call pays nothing.
    paid_to.push(shim_payment(&mut b, &tg, &anvil, token, payer, "f", API_PRICE, 3).await);
    b.expect(&tg, "FETCHED", NEXT_LINE);
    b.expect(&tg, "FETCHED_AGAIN", NEXT_LINE);
    assert_eq!(transfers_from(&anvil, token, payer).await.len(), 3);

    // (c) In a fresh context: the first buyer's contract is refused at the claim (409)
    // and leads to the offer; its shared fulfillment URL leads to the merchant's offer
    // page (executePayment), and the stranger buys there.
    b.expect(&tg, "ALREADY_CLAIMED", NEXT_LINE);
    b.expect(&tg, "SHARED_TO_OFFER", NEXT_LINE);
    paid_to.push(shim_payment(&mut b, &tg, &anvil, token, payer, "c", PRICE, 4).await);
    b.expect(&tg, "UNLOCKED", NEXT_LINE);

    // (e) Wrong chain, switch refused; (h) payment rejected; (i) no tokens: each in
    // words, nothing sent.
    b.expect(&tg, "WRONG_CHAIN", NEXT_LINE);
    b.expect(&tg, "REJECTED", NEXT_LINE);
    b.expect(&tg, "INSUFFICIENT", NEXT_LINE);
    assert_eq!(transfers_from(&anvil, token, payer).await.len(), 4);
    assert!(transfers_from(&anvil, token, empty).await.is_empty());

    // (g) No wallet: manual instructions; a reload resumes; we pay by hand.
    let manual = b.expect(&tg, "MANUAL", NEXT_LINE);
    let (address, amount) = manual.split_once(' ').unwrap();
    assert_eq!(amount, PRICE);
    let to: Address = address.parse().unwrap();
    anvil.transfer(token, 1, to, base_units(PRICE)).await;
    anvil.mine(CONFIRMATIONS - 1).await;
    b.say(&tg, "PAID");
    b.expect(&tg, "MANUAL_UNLOCKED", NEXT_LINE);
    paid_to.push(to);

    b.expect(&tg, "DONE", NEXT_LINE);
    match b.exit_status(Duration::from_secs(30)) {
        Some(s) if s.success() => {}
        other => b.die(&tg, &format!("the script exited with {other:?} after DONE")),
    }
    eprintln!("--- wallet.mjs stderr ---\n{}", b.stderr());

    // Five purchases, five fresh addresses, each paid exactly its price once.
    assert_eq!(transfers_from(&anvil, token, payer).await.len(), 5);
    let mut distinct = paid_to.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 5, "{paid_to:?}");
    let prices = [PRICE, PRICE, API_PRICE, PRICE, PRICE];
    for (addr, price) in paid_to.iter().zip(prices) {
        assert_eq!(anvil.balance_of(token, *addr).await, base_units(price));
    }

    // The screenshots: the contract dialog, the unlocked page, a refusal, the wrong
    // chain message and the manual instructions, each a PNG.
    let names: Vec<String> = b
        .screenshots
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "contract-dialog.png",
            "unlocked.png",
            "refused.png",
            "wrong-chain.png",
            "manual.png"
        ]
    );
    for p in &b.screenshots {
        assert!(p.starts_with(&shots), "{}", p.display());
        let png = std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{}", p.display());
    }
}

// Rules out: an offer or a payment that expires while the buyer watches, without the
// buyer being told in words (the library's dialog, on tollgate's own paywall).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_is_said_in_words() {
    let (anvil, token) = funded_chain(CHAIN_ID).await;
    let shop = Shop::start();
    let (tg, public_url) = start_tollgate(&anvil, token, &shop, "5s");
    let cfg = json!({
        "scenario": "expiry",
        "base": public_url,
        "rpc": anvil.rpc_url(),
        "chainId": CHAIN_ID,
        "token": token.to_string(),
        "price": PRICE,
        "shots": screenshot_dir(),
    });
    let mut b = NodeScript::start("wallet.mjs", &[cfg.to_string()]);
    let offer = b.expect(&tg, "EXPIRED_OFFER", FIRST_LINE);
    assert!(offer.contains("expired before it was claimed"), "{offer}");
    let payment = b.expect(&tg, "EXPIRED_PAYMENT", NEXT_LINE);
    assert!(payment.contains("Nothing was paid"), "{payment}");
    b.expect(&tg, "DONE", NEXT_LINE);
    match b.exit_status(Duration::from_secs(30)) {
        Some(s) if s.success() => {}
        other => b.die(&tg, &format!("the script exited with {other:?} after DONE")),
    }
}
