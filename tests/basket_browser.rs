//! The shopping basket in the browser (SPEC sections 8 and 9): tollgate.js's
//! `webinos.payment.createShoppingBasket` on the real tollgate binary, anvil with Test
//! 0xBTC and Debian's headless Chromium (`tests/browser/basket.mjs`, playwright-core).
//! The wallet is the in-page EIP-1193 shim of `tests/wallet_js.rs` (a script injected
//! before the page's own that forwards requests to anvil's unlocked dev accounts), not a
//! wallet extension.
//!
//! The shop sells two catalogue products, the seed's CDs: `ACD2346233` (14.99, unlocks
//! `/albums/ladytron-cd/*`) and `DCD2346233`, the deluxe edition (17.98, unlocks
//! `/albums/ladytron-deluxe/*`), with 20% tax. (1) The customer buys the CD through a
//! basket (a url challenge; the page pays the payment's EIP-681 URI through the shim).
//! (2) The seed's example program runs, with only its typos fixed: it refunds the CD and
//! buys the deluxe edition; its text challenge is answered with the transaction hash the
//! page paid through the shim (`tollgate.payEip681`). The driver checks every
//! transaction on chain and mines the confirming block itself: checkout's success
//! callback must wait for it.

mod support;

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
use support::{base_units, browser_tollgate, eventually, funded_chain, Tollgate};

const CHAIN_ID: u64 = 31337;
/// The payment's own block counts as one: "paid" needs one block more, mined here.
const CONFIRMATIONS: u64 = 2;
const SHOP_ID: &str = "ladytron-shop";
const CD: &str = "ACD2346233";
const DELUXE: &str = "DCD2346233";
const CD_PAGE: &str = "/albums/ladytron-cd/index.html";
const DELUXE_PAGE: &str = "/albums/ladytron-deluxe/index.html";

/// Launching Chromium and the first purchase's first steps.
const FIRST_LINE: Duration = Duration::from_secs(90);
/// Any later step (the script bounds its own steps more tightly).
const NEXT_LINE: Duration = Duration::from_secs(60);

/// tollgate's config after `[chain]`: the albums priced, the seed's two CDs in the
/// catalogue, 20% tax.
fn shop_config() -> String {
    format!(
        r#"
[payments]
expiry = "30m"
access_ttl = "30d"
claim_rate = "1000/min"

[[route]]
path = "/albums/*"
price = "1"
summary = "Album page {{path}}"

[[product]]
id = "{CD}"
description = "Best of Ladytron 00-10 by Ladytron (Audio CD - 2011)"
price = "14.99"
unlocks = ["/albums/ladytron-cd/*"]

[[product]]
id = "{DELUXE}"
description = "Best of Ladytron 00-10 (Deluxe Edition) by Ladytron (Audio CD - 2011)"
price = "17.98"
unlocks = ["/albums/ladytron-deluxe/*"]

[basket]
shop_id = "{SHOP_ID}"
tax_rate = "0.20"
"#
    )
}

// ---- the merchant's pages ------------------------------------------------------------

/// (1) Buys the CD through a basket: the default (url) challenge names the payment
/// page; this shopper pays the payment's EIP-681 URI from the browser wallet instead
/// and answers nothing (tollgate's watcher finds the transfer). The page's own
/// `window.webinos` (another implementation's) is extended, never replaced.
const BUY_CD_PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Ladytron shop: the CD</title>
<script>window.webinos = { keep: 1, payment: { other: 2 } };</script>
<script src="/_tollgate/tollgate.js"></script></head>
<body><main><h1>Ladytron shop</h1></main>
<script>
tollgate.config.pollMs = 200;
var myBasket = null;
window.__shop = { challenges: [], success: false, error: null };
function failed(e) { window.__shop.error = { code: e.code, message: e.message }; }
webinos.payment.createShoppingBasket(function (basket) {
  myBasket = basket;
  basket.addItem(function () {
    basket.checkout(function () {
      window.__shop.success = true;
      basket.release();
    }, failed, function (type, value) {
      window.__shop.challenges.push([type, value]);
      tollgate.payEip681(basket.payment.eip681).catch(failed);
    });
  }, failed, { productID: 'ACD2346233', description: 'Best of Ladytron 00-10 by Ladytron (Audio CD - 2011)',
               currency: '0xBTC', itemPrice: '14.99', itemCount: 1 });
}, failed, '0xBTC', 'mymail@provider.com', 'SHOP_ID');
</script></body></html>
"#;

/// What the seed's program needs around it: its `alert`s (and `window.open`) recorded,
/// not shown; the text challenge's "prompt" (pay the EIP-681 transfer the text names
/// from the browser wallet; the answer is the transaction hash).
const SEED_PREAMBLE: &str = r#"tollgate.config.pollMs = 200;
window.__alerts = [];
window.alert = function (m) { window.__alerts.push(String(m)); };
window.open = function (url) { window.__alerts.push('open ' + url); return null; };
function payFromText(text) {
  var m = /\((ethereum:[^)\s]+)\)/.exec(text);
  return tollgate.payEip681(m ? m[1] : text);
}"#;

/// The seed's example program (webinos Payment API), its typos fixed: `webinos`, the
/// refund's success callback (`refundSuccess`), the missing `)`s, "PayPal" → "0xBTC",
/// the shop name → the configured shop id, EUR → 0xBTC, `totalBill` and the tax extra
/// instead of `totalAmount`/`tax`, `myBasket.answerChallenge`, the stray `*`; the
/// refunded CD has its own product id. The page asks for a text challenge, and its
/// "prompt" pays through the wallet (the preamble's `payFromText`).
const SEED_PROGRAM: &str = r#"webinos.payment.createShoppingBasket(openBasketSuccess, paymentFailure, "0xBTC", "mymail@provider.com", "SHOP_ID");
var myBasket = null;
// Define the openBasketSuccess success callback.
function openBasketSuccess(basket) {
alert("Shopping basket was opened successfully");
myBasket = basket;
myBasket.challengeType = "text";
// refound for a CD
myBasket.addItem(refundSuccess, paymentFailure,
{ productID: 'ACD2346233',
description: 'Best of Ladytron 00-10 by Ladytron (Audio CD - 2011)',
currency: '0xBTC',
itemPrice: -14.99,
itemCount: 1});
}
// Define the refundItemSuccess success callback.
function refundSuccess() {
alert("Adding of refunding item was handled successfully");
// charge for the deluxe CD
myBasket.addItem(addItemSuccess, paymentFailure,
{ productID: 'DCD2346233',
description: 'Best of Ladytron 00-10 (Deluxe Edition) by Ladytron (Audio CD - 2011)',
currency: '0xBTC',
itemPrice: 17.98,
itemCount: 1});
}
// Define the addItemSuccess success callback.
function addItemSuccess() {
alert("Adding of new item was handled successfully");
// now close the bill and perform the actual payment
myBasket.update(updateSuccess, paymentFailure);
}
// Define the updateSuccess success callback.
function updateSuccess() {
alert("Total amount is: "+myBasket.totalBill+" Tax is "+myBasket.extras.filter(function (e) { return e.productID == "tollgate:tax"; })[0].itemsPrice);
// now close the bill and perform the actual payment
myBasket.checkout(checkoutSuccess, paymentFailure, paymentChallenge);
}
// Define the checkoutSuccess success callback.
function checkoutSuccess() {
alert("Checkout handled successfully - payment was performed.");
if (myBasket != null) myBasket.release();
}
// Define the paymentFailure failure callback.
function paymentFailure(e) {
alert("Failure occured during payment.");
if (myBasket != null) myBasket.release();
}
// Define the paymentChallenge callback.
function paymentChallenge(cType, cValue) {
if(cType=="url"){
// direct web page of payment provider
window.open(cValue, "Confirm Payment", "width=300,height=200,scrollbars=yes");
}
else if(cType=="text"){
payFromText(cValue).then(function (userInput) {
myBasket.answerChallenge(userInput);
}, paymentFailure);
}
else if(cType=="image"){
// this would need a custom prompt, which would make this example
// too large - just pretent it's here.
userInput = graphicPrompt(cValue, "");
myBasket.answerChallenge(userInput);
}
else alert("Unknown challenge type "+cType+" issued by payment provider.");
}"#;

fn seed_page() -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Ladytron shop: exchange the CD</title>\n\
         <script src=\"/_tollgate/tollgate.js\"></script>\n<script>\n{SEED_PREAMBLE}\n</script></head>\n\
         <body><main><h1>Ladytron shop</h1></main>\n<script>\n{}\n</script></body></html>\n",
        SEED_PROGRAM.replace("SHOP_ID", SHOP_ID)
    )
}

async fn album_page(Path((album, page)): Path<(String, String)>) -> Response {
    let ok = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    };
    if !ok(&album) || !ok(&page) {
        return StatusCode::NOT_FOUND.into_response();
    }
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{album}</title></head>\
         <body><main id=\"content\">Album page /albums/{album}/{page}</main></body></html>"
    ))
    .into_response()
}

fn shop() -> BackgroundServer {
    BackgroundServer::start(|| {
        let buy = BUY_CD_PAGE.replace("SHOP_ID", SHOP_ID);
        let seed = seed_page();
        Router::new()
            .route("/shop/buy-cd.html", get(move || async move { Html(buy) }))
            .route(
                "/shop/seed-basket.html",
                get(move || async move { Html(seed) }),
            )
            .route("/albums/{album}/{page}", get(album_page))
    })
}

// ---- the driver's side ---------------------------------------------------------------

fn word_to_address(topic: &Value) -> Address {
    let s = topic.as_str().unwrap();
    Address::from_slice(&hex::decode(&s[s.len() - 40..]).unwrap())
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

async fn get_json(http: &reqwest::Client, url: &str) -> Value {
    let r = http.get(url).send().await.unwrap();
    assert_eq!(r.status(), 200, "GET {url}");
    r.json().await.unwrap()
}

/// GET `path` through tollgate with `Authorization: Tollgate <receipt>` and no cookie.
async fn with_receipt(http: &reqwest::Client, tg: &Tollgate, path: &str, receipt: &str) -> u16 {
    http.get(tg.url(path))
        .header("Authorization", format!("Tollgate {receipt}"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// `<label> <json>` from a BILL line: its lines as `[productID, itemPrice, itemCount,
/// itemsPrice]`, its extras by productID (itemsPrice), the total, the alert.
fn bill(b: &mut NodeScript, tg: &Tollgate, label: &str, timeout: Duration) -> Value {
    let line = b.expect(tg, "BILL", timeout);
    let (got, json) = line.split_once(' ').unwrap_or((&line, "null"));
    assert_eq!(got, label, "BILL for another basket: {line}");
    serde_json::from_str(json).unwrap_or_else(|e| panic!("BILL {line}: {e}"))
}

/// The extras of a bill as (productID, itemsPrice) pairs.
fn extras(bill: &Value) -> Vec<(String, String)> {
    bill["extras"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l[0].as_str().unwrap().to_string(),
                l[3].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// A checkout's payment, from the page's SENT to its success callback: the
/// transaction is a successful transfer of exactly `total` from `payer` to the
/// payment's address; while it confirms the success callback has not run; the driver
/// mines the confirming block; the success callback runs, and at that moment tollgate
/// says paid. Returns the payment id and status.json's address.
#[allow(clippy::too_many_arguments)]
async fn pay_and_confirm(
    b: &mut NodeScript,
    tg: &Tollgate,
    anvil: &Anvil,
    http: &reqwest::Client,
    token: Address,
    payer: Address,
    label: &str,
    total: &str,
    answered: bool,
) -> (String, Address) {
    let sent = b.expect(tg, "SENT", NEXT_LINE);
    let parts: Vec<&str> = sent.split(' ').collect();
    assert_eq!(parts.len(), 3, "SENT {sent}");
    assert_eq!(parts[0], label, "SENT for another basket: {sent}");
    let tx: B256 = parts[1]
        .parse()
        .unwrap_or_else(|e| panic!("bad tx hash {}: {e}", parts[1]));
    let status_url = parts[2].to_string();
    let payment_id = status_url
        .strip_prefix(&tg.url("/_tollgate/"))
        .and_then(|r| r.strip_suffix("/status.json"))
        .unwrap_or_else(|| panic!("status URL {status_url}"))
        .to_string();

    let receipt = anvil.wait_success(tx).await;
    assert_eq!(word_to_address(&receipt["from"]), payer, "{label}: sender");
    assert_eq!(
        word_to_address(&receipt["to"]),
        token,
        "{label}: to the token"
    );
    let logs = receipt["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 1, "{label}: one Transfer: {receipt}");
    assert_eq!(logs[0]["topics"][0], json!(transfer_topic()), "{label}");
    assert_eq!(word_to_address(&logs[0]["topics"][1]), payer, "{label}");
    let to = word_to_address(&logs[0]["topics"][2]);
    let value = u128::from_str_radix(
        logs[0]["data"].as_str().unwrap().trim_start_matches("0x"),
        16,
    )
    .unwrap();
    assert_eq!(value, base_units(total), "{label}: exactly the total");
    let status = get_json(http, &status_url).await;
    let address: Address = status["address"].as_str().unwrap().parse().unwrap();
    assert_eq!(to, address, "{label}: paid to the payment's address");
    assert_eq!(status["amount"], total, "{label}: {status}");
    b.say(tg, "OK");
    if answered {
        let state = b.expect(tg, "ANSWERED", NEXT_LINE);
        assert!(
            state.starts_with(&format!("{label} ")),
            "ANSWERED for another basket: {state}"
        );
    }

    // One confirmation (the transaction's own block): not paid yet.
    let confirming = eventually(&format!("{label}: status confirming"), || async {
        let s = get_json(http, &status_url).await;
        if s["state"] == "confirming" {
            Ok(s)
        } else {
            Err(format!("{s}"))
        }
    })
    .await;
    assert_eq!(confirming["confirmations"], 1, "{confirming}");
    b.say(tg, "CONFIRMING");
    assert_eq!(b.expect(tg, "PENDING", NEXT_LINE), label);
    assert_eq!(
        get_json(http, &status_url).await["state"],
        "confirming",
        "{label}: nothing mined meanwhile"
    );
    anvil.mine(1).await;
    b.say(tg, "MINED");
    assert_eq!(
        b.expect(tg, "CHECKOUT_OK", NEXT_LINE),
        format!("{label} {payment_id}")
    );
    let paid = get_json(http, &status_url).await;
    assert_eq!(
        paid["state"], "paid",
        "{label}: checkout's success callback ran at: {paid}"
    );
    (payment_id, to)
}

/// The STORED line's receipt for `label`.
fn stored_receipt(b: &mut NodeScript, tg: &Tollgate, label: &str) -> String {
    let line = b.expect(tg, "STORED", NEXT_LINE);
    let (got, receipt) = line.split_once(' ').unwrap_or((&line, ""));
    assert_eq!(got, label, "STORED for another basket: {line}");
    assert!(receipt.starts_with("tg1."), "{line}");
    receipt.to_string()
}

// Rules out: a basket library that reports success before the payment is paid, sends
// amounts through floats, loses the refund's proof (the stored receipt of the refunded
// product), or leaves the old receipt unlocking a product the customer returned; and a
// seed program that does not run as written (with its typos fixed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_basket_program_in_headless_chromium() {
    let (anvil, token) = funded_chain(CHAIN_ID).await;
    let payer = anvil.dev_account(1).await;
    let shop = shop();
    let tg = browser_tollgate(&anvil, token, shop.addr, CONFIRMATIONS, &shop_config());
    let base = tg.url("");
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let cfg = json!({
        "base": base,
        "rpc": anvil.rpc_url(),
        "chainId": CHAIN_ID,
        "payer": payer.to_string(),
        "shopId": SHOP_ID,
    });
    let mut b = NodeScript::start("basket.mjs", &[cfg.to_string()]);

    // (1) The CD, through a basket: 14.99 + 20% tax.
    let cd = bill(&mut b, &tg, "cd", FIRST_LINE);
    assert_eq!(cd["items"], json!([[CD, "14.99", 1, "14.99"]]), "{cd}");
    assert_eq!(
        extras(&cd),
        [("tollgate:tax".to_string(), "2.998".to_string())],
        "{cd}"
    );
    assert_eq!(cd["totalBill"], "17.988", "{cd}");
    assert_eq!(
        cd["totalBill_base_units"],
        base_units("17.988").to_string(),
        "{cd}"
    );
    let challenge = b.expect(&tg, "CHALLENGE", NEXT_LINE);
    let (cd_payment, _) = pay_and_confirm(
        &mut b, &tg, &anvil, &http, token, payer, "cd", "17.988", false,
    )
    .await;
    assert_eq!(
        challenge,
        format!("cd url {base}/_tollgate/{cd_payment}/status"),
        "the url challenge is the payment page"
    );
    let old = stored_receipt(&mut b, &tg, "cd");
    assert_eq!(b.expect(&tg, "OPENED", NEXT_LINE), format!("{CD_PAGE} 200"));
    assert_eq!(
        b.expect(&tg, "OPENED", NEXT_LINE),
        format!("{DELUXE_PAGE} 402")
    );
    // The CD's receipt, presented explicitly, opens the CD's pages (only).
    assert_eq!(with_receipt(&http, &tg, CD_PAGE, &old).await, 200);
    assert_eq!(
        with_receipt(&http, &tg, "/albums/ladytron-cd/track-01.html", &old).await,
        200
    );
    assert_eq!(with_receipt(&http, &tg, DELUXE_PAGE, &old).await, 402);

    // (2) The seed's program: refund the CD, buy the deluxe edition, pay the difference.
    b.say(&tg, "EXCHANGE");
    let seed = bill(&mut b, &tg, "seed", NEXT_LINE);
    assert_eq!(
        seed["items"],
        json!([[CD, "-14.99", 1, "-14.99"], [DELUXE, "17.98", 1, "17.98"]]),
        "{seed}"
    );
    assert_eq!(
        extras(&seed),
        [("tollgate:tax".to_string(), "0.598".to_string())],
        "{seed}"
    );
    assert_eq!(seed["totalBill"], "3.588", "{seed}");
    assert_eq!(
        seed["totalBill_base_units"],
        base_units("3.588").to_string(),
        "{seed}"
    );
    assert_eq!(seed["alert"], "Total amount is: 3.588 Tax is 0.598");
    b.expect(&tg, "REFUND_PROOF", NEXT_LINE);
    let challenge = b.expect(&tg, "CHALLENGE", NEXT_LINE);
    let (_, deluxe_address) = pay_and_confirm(
        &mut b, &tg, &anvil, &http, token, payer, "seed", "3.588", true,
    )
    .await;
    let text = challenge
        .strip_prefix("seed text ")
        .unwrap_or_else(|| panic!("not a text challenge: {challenge}"));
    let prefix = format!("send 3.588 0xbtc to {deluxe_address:#x} (ethereum:");
    assert!(text.to_lowercase().starts_with(&prefix), "{text}");
    assert!(text.ends_with(") and enter the transaction hash"), "{text}");
    let new = stored_receipt(&mut b, &tg, "seed");
    assert_eq!(
        b.expect(&tg, "OPENED", NEXT_LINE),
        format!("{DELUXE_PAGE} 200")
    );
    b.expect(&tg, "DONE", NEXT_LINE);
    match b.exit_status(Duration::from_secs(30)) {
        Some(s) if s.success() => {}
        other => b.die(&tg, &format!("the script exited with {other:?} after DONE")),
    }
    eprintln!("--- basket.mjs stderr ---\n{}", b.stderr());
    eprintln!("--- basket.mjs events ---\n{}", b.seen.join("\n"));

    // After the exchange: the deluxe edition opens with the new receipt; the old
    // receipt no longer opens the CD it refunded, nor does the new one.
    assert_eq!(with_receipt(&http, &tg, DELUXE_PAGE, &new).await, 200);
    assert_eq!(with_receipt(&http, &tg, CD_PAGE, &old).await, 402);
    assert_eq!(
        with_receipt(&http, &tg, "/albums/ladytron-cd/track-01.html", &old).await,
        402
    );
    assert_eq!(with_receipt(&http, &tg, CD_PAGE, &new).await, 402);
    // Two transfers from the payer: the CD's total, then only the difference.
    let transfers = transfers_from(&anvil, token, payer).await;
    assert_eq!(transfers.len(), 2, "{transfers:?}");
    assert_eq!(
        anvil.balance_of(token, deluxe_address).await,
        base_units("3.588")
    );
}
