//! The paywall in a real browser: Debian's headless Chromium, driven by
//! `tests/browser/paywall.mjs` (playwright-core from npm, no browser download),
//! against the real tollgate binary, a real origin and anvil with Test 0xBTC.
//!
//! With JavaScript (the paywall runs tollgate.js; this browser has no wallet): 402
//! paywall → "Get payment address" → the library's contract dialog → Confirm → address,
//! amount, EIP-681 link and QR → we pay on chain → the page polls, fetches the receipt
//! (cookie) and opens the resource from the origin → a new tab replays the cookie → a
//! fresh context still gets the paywall. Without JavaScript: the form POST gives the
//! instructions page → we pay → its status page says paid → "I have paid: unlock" → the
//! resource; its receipt cookie gone, that browser claims again with its claim cookie.
//! A stranger who opens that purchase's fulfillment URL is refused the claim and led
//! to the offer without JavaScript; with JavaScript the paywall's `executePayment`
//! takes them there at once; they buy a contract of their own there.
//! (tests/wallet_js.rs covers the one-click wallet flow through an in-page provider.)
//!
//! The node script and this test talk in lines (see the script's header): it prints
//! what it sees, we answer `PAID` once the transfer has its confirmations.

mod support;

use std::time::Duration;

use alloy::primitives::Address;
use support::chain::Anvil;
use support::node_script::NodeScript;
use support::origin::Origin;
use support::{base_units, browser_tollgate, funded_chain};

const CHAIN_ID: u64 = 31337;
const RESOURCE: &str = "/movies/big-buck-bunny.html";
const SUMMARY: &str = "Movie /movies/big-buck-bunny.html";
const PRICE: &str = "0.5";

/// Launching Chromium and loading the first page.
const FIRST_LINE: Duration = Duration::from_secs(90);
/// Any later step (the script bounds its own steps more tightly).
const NEXT_LINE: Duration = Duration::from_secs(60);

/// Pays `amount` (decimal) to `address` from dev account 1 and mines two more blocks.
async fn pay(anvil: &Anvil, token: Address, address: &str, amount: &str) -> Address {
    let to: Address = address
        .parse()
        .unwrap_or_else(|e| panic!("bad address {address:?}: {e}"));
    anvil.transfer(token, 1, to, base_units(amount)).await;
    anvil.mine(2).await;
    to
}

// Rules out: a paywall that works for programs but not for people — broken page
// script, QR that does not load, a receipt cookie the browser does not keep or
// replay, absolute URLs a browser cannot reach, a no-JavaScript path that dead-ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paywall_in_headless_chromium() {
    let (anvil, token) = funded_chain(CHAIN_ID).await;
    let origin = Origin::start();
    let rest = format!(
        r#"
[payments]
expiry = "30m"
access_ttl = "30d"
claim_rate = "1000/min"
[[route]]
path = "/movies/*"
price = "{PRICE}"
summary = "Movie {{path}}"
"#
    );
    let tg = browser_tollgate(&anvil, token, origin.addr, 2, &rest);
    let url = tg.url(RESOURCE);

    let mut b = NodeScript::start(
        "paywall.mjs",
        &[url.clone(), SUMMARY.to_string(), PRICE.to_string()],
    );

    // With JavaScript.
    let address = b.expect(&tg, "ADDRESS", FIRST_LINE);
    let amount = b.expect(&tg, "AMOUNT", NEXT_LINE);
    assert_eq!(amount, PRICE);
    let paid_js = pay(&anvil, token, &address, &amount).await;
    b.say(&tg, "PAID");
    b.expect(&tg, "UNLOCKED", NEXT_LINE);
    b.expect(&tg, "REPLAYED", NEXT_LINE);
    b.expect(&tg, "STRANGER402", NEXT_LINE);

    // Without JavaScript.
    let address = b.expect(&tg, "NOJS_ADDRESS", NEXT_LINE);
    let amount = b.expect(&tg, "NOJS_AMOUNT", NEXT_LINE);
    assert_eq!(amount, PRICE);
    let paid_nojs = pay(&anvil, token, &address, &amount).await;
    assert_ne!(paid_js, paid_nojs, "each purchase gets its own address");
    b.say(&tg, "PAID");
    b.expect(&tg, "NOJS_UNLOCKED", NEXT_LINE);
    // Its claim cookie lets that browser claim again; a stranger with its fulfillment
    // URL is led to the offer (without and with JavaScript) and buys their own.
    b.expect(&tg, "NOJS_RECLAIMED", NEXT_LINE);
    b.expect(&tg, "NOJS_STRANGER_OFFER", NEXT_LINE);
    let address = b.expect(&tg, "STRANGER_ADDRESS", NEXT_LINE);
    let amount = b.expect(&tg, "STRANGER_AMOUNT", NEXT_LINE);
    assert_eq!(amount, PRICE);
    let paid_stranger = pay(&anvil, token, &address, &amount).await;
    assert_ne!(
        paid_stranger, paid_nojs,
        "the stranger pays an address of their own"
    );
    b.say(&tg, "PAID");
    b.expect(&tg, "STRANGER_UNLOCKED", NEXT_LINE);
    b.expect(&tg, "DONE", NEXT_LINE);
    match b.exit_status(Duration::from_secs(30)) {
        Some(s) if s.success() => {}
        other => b.die(&tg, &format!("the script exited with {other:?} after DONE")),
    }

    // Shown with --nocapture: what the browser did.
    eprintln!("--- paywall.mjs stderr ---\n{}", b.stderr());

    // Four screenshots (paywall, contract dialog, instructions, no-JS page), each a PNG.
    assert_eq!(b.screenshots.len(), 4, "{:?}", b.screenshots);
    for p in &b.screenshots {
        let png = std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert!(
            png.starts_with(b"\x89PNG\r\n\x1a\n"),
            "{} is not a PNG",
            p.display()
        );
    }
    // Each payment received exactly the price, once.
    assert_eq!(anvil.balance_of(token, paid_js).await, base_units(PRICE));
    assert_eq!(anvil.balance_of(token, paid_nojs).await, base_units(PRICE));
    assert_eq!(
        anvil.balance_of(token, paid_stranger).await,
        base_units(PRICE)
    );
    // The origin served the resource exactly five times (unlocked, replayed, no-JS
    // unlocked, no-JS repeat claim, the stranger's own purchase): never for a 402,
    // never for the stranger's shared link, never with tollgate's parameter.
    let hits: Vec<String> = origin
        .hits()
        .into_iter()
        .filter(|h| h.starts_with("/movies/"))
        .collect();
    assert_eq!(hits, vec![RESOURCE; 5], "origin hits: {:?}", origin.hits());
}
