//! Web Monetization end to end in Debian's headless Chromium (SPEC section 10):
//! tollgate.js `monetize()` on tollgate's own 402 paywall, the real tollgate binary
//! verifying incoming payments as an authenticated Open Payments client (GNAP grant,
//! RFC 9421 signatures) against the strict local Open Payments server
//! (`tests/support/op_server.mjs`, over https with a test CA: tollgate's `ca_file`),
//! and the origin serving the article once unlocked.
//!
//! No Web Monetization agent (browser extension) can be installed here: the page
//! gets SYNTHETIC `monetization` events (`new Event('monetization', {bubbles: true})`
//! with `incomingPayment`, `amountSent` and `paymentPointer` defined, dispatched on
//! the page's `<link rel="monetization">`), fired after this test has made the
//! server's incoming payment receive what the step needs. Since tollgate's paywall
//! neither injects that link nor calls `monetize()` yet, the browser script's init
//! script adds the link (when missing) and calls `tollgate.monetize()` there, as a
//! paywall page of a `wm_price` route will. See `tests/browser/wm.mjs`.
//!
//! The flow: too little received (0.03 of 0.05 USD; two events, one verify in flight
//! at a time, retried, the page stays locked); then enough, with every token the
//! server issued expired meanwhile (tollgate renews its grant on the 401): a third
//! event unlocks, the receipt is stored and the page reloads into the article (200
//! from the origin). `monetize({reload: false})` resolves with the receipt; an
//! incoming payment of another wallet address is refused (403 `wrong_wallet`); with
//! the server refusing every signature, tollgate answers 503 + Retry-After and the
//! page retries after it, unlocking once the server is mended. At the end the Open
//! Payments server has seen no violation.

mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::Path;
use axum::response::Html;
use axum::routing::get;
use axum::Router;
use serde_json::json;
use support::background_server::BackgroundServer;
use support::node_script::NodeScript;
use support::op_server::{OpServer, TestCa};
use support::{browser_tollgate, funded_chain};

const CHAIN_ID: u64 = 31337;
/// Launching Chromium and the first page.
const FIRST_LINE: Duration = Duration::from_secs(90);
const NEXT_LINE: Duration = Duration::from_secs(60);

/// The merchant's origin: an article page per slug, every request-target logged.
struct Origin {
    addr: SocketAddr,
    hits: Arc<Mutex<Vec<String>>>,
    _server: BackgroundServer,
}

impl Origin {
    fn start() -> Origin {
        let hits: Arc<Mutex<Vec<String>>> = Arc::default();
        let log = hits.clone();
        let server = BackgroundServer::start(move || {
            Router::new().route(
                "/articles/{slug}",
                get(move |Path(slug): Path<String>| {
                    let log = log.clone();
                    async move {
                        log.lock().unwrap().push(format!("/articles/{slug}"));
                        Html(format!(
                            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
                             <title>Article {slug}</title></head><body>\
                             <h1 id=\"article\">Article {slug}</h1><p>The full text.</p></body></html>"
                        ))
                    }
                }),
            )
        });
        Origin {
            addr: server.addr,
            hits,
            _server: server,
        }
    }

    fn hits(&self) -> Vec<String> {
        self.hits.lock().unwrap().clone()
    }
}

fn screenshot_dir() -> PathBuf {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("wm_browser-{stamp}"))
}

// Rules out: a page unlocked by an event alone (no money behind it), by too little,
// or by another wallet's payment; a verify storm (two requests at once for one
// incoming payment); a receipt not stored or not used by the reload; a client that
// does not renew an expired grant; and any request of tollgate's that a strict Open
// Payments server would refuse (spec, signature, grant).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monetize_unlocks_the_paywall_in_headless_chromium() {
    let (anvil, token) = funded_chain(CHAIN_ID).await;
    let ca = TestCa::new();
    let op = OpServer::start(Some(&ca));
    let origin = Origin::start();
    let rest = format!(
        r#"
[payments]
access_ttl = "1h"
claim_rate = "1000/min"
[[route]]
path = "/articles/*"
price = "0.5"
wm_price = "0.05"
summary = "Article {{path}}"
{wm}"#,
        wm = op.wm_config("alice"),
    );
    let tg = browser_tollgate(&anvil, token, origin.addr, 1, &rest);

    // ip1: 0.03 USD so far (the price is 0.05); ip2: 0.07; ip3 pays bob, not alice.
    let ip1 = op.create_incoming("alice", "3").await;
    let ip2 = op.create_incoming("alice", "7").await;
    let ip3 = op.create_incoming("bob", "100").await;
    let ip4 = op.create_incoming("alice", "5").await;
    let shots = screenshot_dir();
    eprintln!("screenshots: {}", shots.display());
    let cfg = json!({
        "base": tg.url(""),
        "wallet": op.wallet("alice"),
        "ip1": ip1,
        "ip2": ip2,
        "ip3": ip3,
        "ip4": ip4,
        "shots": shots,
    });
    let mut b = NodeScript::start("wm.mjs", &[cfg.to_string()]);

    let locked = b.expect(&tg, "LOCKED", FIRST_LINE);
    let parts: Vec<&str> = locked.split(' ').collect();
    assert_eq!(
        &parts[..2],
        ["0.03", "0.05"],
        "received, required: {locked}"
    );
    let verifies: u64 = parts[2].parse().unwrap();
    let c = op.counters().await;
    assert_eq!(c["grants"], 1, "one grant, cached: {c}");
    assert_eq!(
        c["incoming_reads_auth"], verifies,
        "each verify read the payment, authenticated: {c}"
    );
    assert_eq!(c["incoming_reads_public"], 0, "never the public view: {c}");
    assert!(origin.hits().is_empty(), "{:?}", origin.hits());

    // Enough now; and the cached token is no longer accepted.
    op.set_received(&ip1, "5").await;
    assert_eq!(op.expire_tokens().await, 1);
    b.say(&tg, "FIRE");
    let scope = b.expect(&tg, "UNLOCKED", NEXT_LINE);
    assert_eq!(scope, "/articles/one");
    assert_eq!(origin.hits(), ["/articles/one"]);
    let c = op.counters().await;
    assert_eq!(c["expired_token_refusals"], 1, "{c}");
    assert_eq!(c["grants"], 2, "renewed once after the 401: {c}");

    let resolved = b.expect(&tg, "RESOLVED", NEXT_LINE);
    assert_eq!(resolved, "/articles/two 0.07 0.05");
    assert_eq!(origin.hits(), ["/articles/one", "/articles/two"]);

    let rejected = b.expect(&tg, "REJECTED", NEXT_LINE);
    assert_eq!(rejected, "wrong_wallet 403");
    assert_eq!(origin.hits(), ["/articles/one", "/articles/two"]);

    // The server refuses every signature (a misconfigured key): tollgate's read and
    // its grant renewal are refused, the page hears 503 + Retry-After and retries.
    op.break_signatures().await;
    b.say(&tg, "BROKEN");
    b.expect(&tg, "UNAVAILABLE", NEXT_LINE);
    let c = op.counters().await;
    assert_eq!(
        c["forced_signature_refusals"], 2,
        "the read, then the new grant: {c}"
    );
    op.mend_signatures().await;
    b.say(&tg, "MENDED");
    let recovered = b.expect(&tg, "RECOVERED", NEXT_LINE);
    assert_eq!(recovered, "/articles/four 503,200");
    assert_eq!(
        origin.hits(),
        ["/articles/one", "/articles/two", "/articles/four"]
    );

    b.expect(&tg, "DONE", NEXT_LINE);
    match b.exit_status(Duration::from_secs(30)) {
        Some(s) if s.success() => {}
        other => b.die(&tg, &format!("the script exited with {other:?} after DONE")),
    }
    eprintln!("--- wm.mjs stderr ---\n{}", b.stderr());
    op.assert_no_violations().await;
    let c = op.counters().await;
    assert_eq!(
        c["grants"], 3,
        "the first, after the expiry, after the mend: {c}"
    );
    assert_eq!(c["grants_refused"], 0, "{c}");
    assert_eq!(c["forced_signature_refusals"], 2, "{c}");
    eprintln!("op_server counters: {c}");
    for p in &b.screenshots {
        let png = std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{}", p.display());
    }
}
