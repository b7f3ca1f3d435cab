//! tollgate.js in Firefox: Debian's Firefox ESR, headless, driven by
//! `tests/browser/firefox.mjs` (puppeteer-core over WebDriver BiDi, no browser
//! download), through tollgate's own paywall on the real binary, a real origin and
//! anvil with Test 0xBTC. The library's canonicaliser must agree with the Rust one;
//! its dialog shows the contract after checking its hash with Firefox's WebCrypto;
//! Confirm claims; without a wallet it shows the manual instructions; we pay on chain;
//! it polls, fetches the receipt and opens the resource. (Chromium, and every wallet
//! path through an in-page provider, are covered by tests/browser.rs and
//! tests/wallet_js.rs.)

mod support;

use std::time::Duration;

use alloy::primitives::Address;
use serde_json::{json, Value};
use support::node_script::NodeScript;
use support::origin::Origin;
use support::{base_units, browser_tollgate, funded_chain};

const PRICE: &str = "0.25";
const RESOURCE: &str = "/movies/firefox.html";
/// Launching Firefox and loading the first page.
const FIRST_LINE: Duration = Duration::from_secs(90);
/// Any later step (the script bounds its own steps more tightly).
const NEXT_LINE: Duration = Duration::from_secs(60);

// Rules out: a wallet library (and so a paywall) that only works in Chromium.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paywall_library_in_headless_firefox() {
    let (anvil, token) = funded_chain(31337).await;
    let origin = Origin::start();
    let rest = format!(
        r#"
[payments]
expiry = "30m"
claim_rate = "1000/min"
[[route]]
path = "/movies/*"
price = "{PRICE}"
summary = "Movie {{path}}"
"#
    );
    let tg = browser_tollgate(&anvil, token, origin.addr, 2, &rest);
    let jcs_input =
        r#"{"b":1,"a":[{"z":"é\u0001\"\\","y":null}],"€":true,"😀":false,"A":-0,"":[]}"#;
    let canonical =
        serde_json_canonicalizer::to_string(&serde_json::from_str::<Value>(jcs_input).unwrap())
            .unwrap();
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "firefox-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
    ));
    let cfg = json!({
        "url": tg.url(RESOURCE),
        "summary": format!("Movie {RESOURCE}"),
        "price": PRICE,
        "shots": shots,
        "jcs": {"input": jcs_input, "canonical": canonical},
    });
    let mut b = NodeScript::start("firefox.mjs", &[cfg.to_string()]);
    let version = b.expect(&tg, "VERSION", FIRST_LINE);
    assert!(version.to_lowercase().contains("firefox"), "{version}");
    b.expect(&tg, "JCS_OK", NEXT_LINE);
    let instructions = b.expect(&tg, "ADDRESS", NEXT_LINE);
    let (address, amount) = instructions.split_once(' ').unwrap();
    assert_eq!(amount, PRICE);
    let to: Address = address.parse().unwrap();
    anvil.transfer(token, 1, to, base_units(PRICE)).await;
    anvil.mine(1).await;
    b.say(&tg, "PAID");
    b.expect(&tg, "UNLOCKED", NEXT_LINE);
    b.expect(&tg, "DONE", NEXT_LINE);
    match b.exit_status(Duration::from_secs(30)) {
        Some(s) if s.success() => {}
        other => b.die(&tg, &format!("the script exited with {other:?} after DONE")),
    }
    eprintln!("Firefox {version}; screenshots in {}", shots.display());
    assert_eq!(b.screenshots.len(), 2, "{:?}", b.screenshots);
    assert_eq!(anvil.balance_of(token, to).await, base_units(PRICE));
    // The origin served the resource once: after the payment, never for the 402.
    let hits: Vec<String> = origin
        .hits()
        .into_iter()
        .filter(|h| h.starts_with("/movies/"))
        .collect();
    assert_eq!(hits, vec![RESOURCE], "origin hits: {:?}", origin.hits());
}
