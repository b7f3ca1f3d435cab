//! The shopping basket (SPEC section 8) end to end on real parts: the real tollgate
//! binary on a real SQLite file, anvil from npm with the TestToken ERC-20, a real
//! origin. Buying through a basket, exchanging (refund + purchase), zero totals,
//! challenge answers, every error code by name, restarts, and concurrent refunds.

mod support;

use alloy::primitives::Address;
use serde_json::{json, Value};
use support::chain::Anvil;
use support::origin::Origin;
use support::payer::Payer;
use support::{eventually, funded_chain, PaymentsConfig, TempDir, Tollgate};

const CHAIN_ID: u64 = 31337;
const SHOP: &str = "tollgate.test";

const CD: &str = "ACD2346233";
const DELUXE: &str = "DCD2346233";
const POSTER: &str = "POSTER1";
const SAME: &str = "CDSAME";

struct Shop {
    anvil: Anvil,
    token: Address,
    _origin: Origin,
    dir: TempDir,
    config: String,
    tg: Tollgate,
    http: reqwest::Client,
}

/// A basket a test holds: its id and secret.
#[derive(Clone, Debug)]
struct Held {
    id: String,
    secret: String,
}

impl Shop {
    async fn new(expiry: &str, ttl: &str, confirmations: u64) -> Shop {
        let (anvil, token) = funded_chain(CHAIN_ID).await;
        let origin = Origin::start();
        let rest = format!(
            r#"
[payments]
expiry = "{expiry}"
claim_rate = "1000/min"
[[route]]
path = "/albums/*"
price = "1"
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
[[product]]
id = "{POSTER}"
description = "Poster"
price = "2"
unlocks = ["/albums/poster"]
ships = true
[[product]]
id = "{SAME}"
description = "Same price as the CD"
price = "14.99"
unlocks = ["/albums/same/*"]
[basket]
tax_rate = "0.20"
shipping = "0.5"
max_total = "100"
ttl = "{ttl}"
[[rebate]]
product = "{POSTER}"
buy = 3
pay = 2
"#
        );
        let config = PaymentsConfig {
            confirmations,
            ..PaymentsConfig::local(origin.addr, anvil.rpc_url(), CHAIN_ID, token, &rest)
        }
        .render();
        let dir = TempDir::new("basket");
        let tg = Tollgate::start_keyed(dir.path(), &config);
        Shop {
            anvil,
            token,
            _origin: origin,
            dir,
            config,
            tg,
            http: reqwest::Client::new(),
        }
    }

    fn restart(&mut self) {
        self.tg = Tollgate::start_keyed(self.dir.path(), &self.config);
    }

    fn url(&self, p: &str) -> String {
        self.tg.url(&format!("/_tollgate/basket{p}"))
    }

    /// Sends a call; returns (status, JSON body).
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        secret: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method, self.url(path));
        if let Some(s) = secret {
            req = req.header("Authorization", format!("Basket {s}"));
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, v)
    }

    async fn create(&self) -> Held {
        let (s, v) = self
            .call(
                reqwest::Method::POST,
                "",
                None,
                Some(json!({"serviceProviderID": "0xBTC", "customerID": "me@example", "shopID": SHOP})),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        assert_eq!(v["basket"]["state"], "open");
        Held {
            id: v["basket_id"].as_str().unwrap().into(),
            secret: v["basket_secret"].as_str().unwrap().into(),
        }
    }

    /// addItem with `price` given as raw JSON text (a number or a string).
    async fn add(&self, b: &Held, product: &str, price: &str, count: u32) -> (u16, Value) {
        self.add_with(b, product, price, count, None).await
    }

    async fn add_with(
        &self,
        b: &Held,
        product: &str,
        price: &str,
        count: u32,
        receipt: Option<&str>,
    ) -> (u16, Value) {
        // Sent as written: a JSON library would re-print `1.798e1` as `17.98`.
        let receipt = receipt.map_or(String::new(), |r| format!(r#", "receipt": "{r}""#));
        let body = format!(
            r#"{{"productID": "{product}", "description": "what the client says", "currency": "0xBTC", "itemPrice": {price}, "itemCount": {count}{receipt}}}"#
        );
        let r = self
            .http
            .post(self.url(&format!("/{}/items", b.id)))
            .header("Authorization", format!("Basket {}", b.secret))
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap())
    }

    async fn checkout(&self, b: &Held, challenge: &str) -> (u16, Value) {
        self.call(
            reqwest::Method::POST,
            &format!("/{}/checkout", b.id),
            Some(&b.secret),
            Some(json!({ "challenge": challenge })),
        )
        .await
    }

    async fn answer(&self, b: &Held, response: &str) -> (u16, Value) {
        self.call(
            reqwest::Method::POST,
            &format!("/{}/challenge", b.id),
            Some(&b.secret),
            Some(json!({ "response": response })),
        )
        .await
    }

    async fn read(&self, b: &Held) -> (u16, Value) {
        self.call(
            reqwest::Method::GET,
            &format!("/{}", b.id),
            Some(&b.secret),
            None,
        )
        .await
    }

    async fn pay_to(&self, address: &str, amount: u128) -> String {
        let to: Address = address.parse().unwrap();
        let tx = self.anvil.transfer(self.token, 1, to, amount).await;
        format!("{tx:#x}")
    }

    async fn status(&self, payment: &Value) -> Value {
        Payer::new().status(&self.tg, payment).await
    }

    async fn wait_state(&self, payment: &Value, state: &str) -> Value {
        Payer::new().wait_state(&self.tg, payment, state).await
    }

    /// The receipt of a paid checkout's payment.
    async fn receipt(&self, payment: &Value) -> String {
        let r = Payer::new().receipt(&self.tg, payment).await;
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        v["receipt"].as_str().unwrap().to_string()
    }

    async fn get(&self, path: &str, receipt: &str) -> u16 {
        self.http
            .get(self.tg.url(path))
            .header("Authorization", format!("Tollgate {receipt}"))
            .header("Accept", "application/json")
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// Buys `items` through a basket, pays in full and waits for paid: the receipt.
    async fn buy(&self, items: &[(&str, &str, u32)]) -> String {
        let b = self.create().await;
        for (p, price, n) in items {
            let (s, v) = self.add(&b, p, price, *n).await;
            assert_eq!(s, 200, "{v}");
        }
        let (s, co) = self.checkout(&b, "url").await;
        assert_eq!(s, 200, "{co}");
        let pay = &co["payment"];
        self.pay_to(
            pay["address"].as_str().unwrap(),
            pay["amount_base_units"].as_str().unwrap().parse().unwrap(),
        )
        .await;
        self.anvil.mine(2).await;
        self.wait_state(pay, "paid").await;
        self.receipt(pay).await
    }
}

fn lines(v: &Value, key: &str) -> Vec<(String, String, u64, String)> {
    v[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["productID"].as_str().unwrap().to_string(),
                i["itemPrice"].as_str().unwrap().to_string(),
                i["itemCount"].as_u64().unwrap(),
                i["itemsPrice"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn l(id: &str, price: &str, n: u64, total: &str) -> (String, String, u64, String) {
    (id.into(), price.into(), n, total.into())
}

// Rules out: a client setting an amount, a float reading of itemPrice, extras that do
// not add up to totalBill, and a refund that unlocks twice what was paid for.
#[tokio::test]
async fn exchange_refunds_one_product_and_keeps_the_rest_unlocked() {
    let shop = Shop::new("30m", "1h", 1).await;
    // First purchase: the CD and a poster, paid in full.
    let old = shop.buy(&[(CD, "14.99", 1), (POSTER, "\"2\"", 1)]).await;
    assert_eq!(shop.get("/albums/ladytron-cd/1", &old).await, 200);
    assert_eq!(shop.get("/albums/poster", &old).await, 200);
    assert_eq!(shop.get("/albums/ladytron-deluxe/1", &old).await, 402);

    // The seed's exchange: return the CD (itemPrice -14.99 as a JSON number), buy the
    // deluxe edition.
    let b = shop.create().await;
    let (s, v) = shop.add_with(&b, CD, "-14.99", 1, Some(&old)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(lines(&v, "items"), vec![l(CD, "-14.99", 1, "-14.99")]);
    // The description on the bill is the catalogue's, never the client's.
    assert_eq!(
        v["items"][0]["description"],
        "Best of Ladytron 00-10 by Ladytron (Audio CD - 2011)"
    );
    let (s, v) = shop.add(&b, DELUXE, "17.98", 1).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = shop
        .call(
            reqwest::Method::POST,
            &format!("/{}/update", b.id),
            Some(&b.secret),
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        lines(&v, "items"),
        vec![l(CD, "-14.99", 1, "-14.99"), l(DELUXE, "17.98", 1, "17.98")]
    );
    assert_eq!(
        lines(&v, "extras"),
        vec![l("tollgate:tax", "0.598", 1, "0.598")]
    );
    assert_eq!(v["totalBill"], "3.588");
    assert_eq!(v["totalBill_base_units"], "358800000");

    // Checkout with a text challenge; the answer is the payer's transaction.
    let (s, co) = shop.checkout(&b, "text").await;
    assert_eq!(s, 200, "{co}");
    let pay = co["payment"].clone();
    assert_eq!(pay["amount"], "3.588");
    assert_eq!(co["challenge"]["type"], "text");
    let text = co["challenge"]["value"].as_str().unwrap();
    assert!(
        text.starts_with("Send 3.588 0xBTC to ") && text.contains(pay["address"].as_str().unwrap()),
        "{text}"
    );
    // The contract: one products entry per item and extra; amount = totalBill; its
    // hash is what the contract URL serves.
    let terms: reqwest::Response = shop
        .http
        .get(Payer::local(&shop.tg, co["contract_url"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        terms.headers()["x-taler-contract-hash"].to_str().unwrap(),
        co["contract_hash"].as_str().unwrap()
    );
    let terms: Value = terms.json().await.unwrap();
    assert_eq!(terms["amount"], "3.588");
    let ids: Vec<&str> = terms["products"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![CD, DELUXE, "tollgate:tax"]);
    assert_eq!(terms["products"][0]["price"], "-14.99");
    assert_eq!(terms["scope"], json!(["/albums/ladytron-deluxe/*"]));
    // The basket is locked now.
    let (s, v) = shop.add(&b, POSTER, "2", 1).await;
    assert_eq!((s, v["code"].as_str()), (409, Some("basket_locked")));

    let tx = shop
        .pay_to(pay["address"].as_str().unwrap(), 358_800_000)
        .await;
    let (s, v) = shop.answer(&b, &tx).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["accepted"], true);
    // Recorded at once, but never confirmed by a hash alone: the watcher decides.
    assert!(
        ["confirming", "paid"].contains(&v["payment"]["state"].as_str().unwrap()),
        "{v}"
    );
    // Until the exchange is paid, the old receipt still opens the CD.
    shop.anvil.mine(2).await;
    shop.wait_state(&pay, "paid").await;
    let new = shop.receipt(&pay).await;
    let (_, view) = shop.read(&b).await;
    assert_eq!(view["state"], "paid");

    assert_eq!(shop.get("/albums/ladytron-deluxe/1", &new).await, 200);
    assert_eq!(shop.get("/albums/ladytron-cd/1", &new).await, 402);
    // The old receipt stops opening the refunded CD and keeps opening the poster.
    assert_eq!(shop.get("/albums/ladytron-cd/1", &old).await, 402);
    assert_eq!(shop.get("/albums/poster", &old).await, 200);

    // The CD cannot be refunded a second time.
    let b2 = shop.create_after(&b).await;
    let (s, v) = shop.add_with(&b2, CD, "-14.99", 1, Some(&old)).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (403, Some("payment_refund_failed")),
        "{v}"
    );

    // Refunding the poster too (for something of the same value or more): the old
    // payment's products are all refunded, so it is `refunded`.
    let (s, v) = shop.add_with(&b2, POSTER, "-2", 1, Some(&old)).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = shop.add(&b2, POSTER, "2", 1).await;
    assert_eq!(s, 200, "{v}");
    // -2 + 2 + shipping (the new poster ships) + tax on 0.
    assert_eq!(v["totalBill"], "0.5");
    let (s, co2) = shop.checkout(&b2, "image").await;
    assert_eq!(s, 200, "{co2}");
    assert!(co2["challenge"]["value"]
        .as_str()
        .unwrap()
        .ends_with("/qr.svg"));
    let pay2 = co2["payment"].clone();
    shop.pay_to(pay2["address"].as_str().unwrap(), 50_000_000)
        .await;
    shop.anvil.mine(2).await;
    shop.wait_state(&pay2, "paid").await;
    let old_claim = old_payment(&shop, &old).await;
    eventually("the old payment is refunded", || async {
        let s = shop.status(&old_claim).await;
        if s["state"] == "refunded" {
            Ok(())
        } else {
            Err(s.to_string())
        }
    })
    .await;
    assert_eq!(shop.get("/albums/poster", &old).await, 402);
}

/// A status URL for the payment a receipt names (to read status.json).
async fn old_payment(shop: &Shop, receipt: &str) -> Value {
    let payload = receipt.split('.').nth(1).unwrap();
    use base64::Engine;
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    let pid = claims["pid"].as_str().unwrap();
    let _ = shop;
    json!({ "status_url": format!("http://tollgate.test/_tollgate/{pid}/status.json") })
}

impl Shop {
    /// A new basket by a client that held `prev` (its secret as the cookie): allowed
    /// once `prev` is not open any more.
    async fn create_after(&self, prev: &Held) -> Held {
        let r = self
            .http
            .post(self.url(""))
            .header("Cookie", format!("tollgate_basket={}", prev.secret))
            .json(&json!({"serviceProviderID": "0xBTC", "customerID": "me", "shopID": SHOP}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let v: Value = r.json().await.unwrap();
        Held {
            id: v["basket_id"].as_str().unwrap().into(),
            secret: v["basket_secret"].as_str().unwrap().into(),
        }
    }
}

// Rules out: a checkout that charges nothing hanging forever waiting for a transfer of
// zero, and a refund larger than the purchases turning into money owed by tollgate.
#[tokio::test]
async fn zero_totals_complete_at_once_and_negative_totals_are_refused() {
    let shop = Shop::new("30m", "1h", 1).await;
    let old = shop.buy(&[(CD, "14.99", 1)]).await;
    // Refund alone: below zero.
    let b = shop.create().await;
    let (s, _) = shop.add_with(&b, CD, "\"-14.99\"", 1, Some(&old)).await;
    assert_eq!(s, 200);
    let (s, v) = shop.checkout(&b, "url").await;
    assert_eq!(
        (s, v["code"].as_str()),
        (400, Some("payment_refund_not_supported"))
    );
    // Exchanged for a product of the same price: exactly zero, paid at once.
    let (s, v) = shop.add(&b, SAME, "14.99", 1).await;
    assert_eq!((s, v["totalBill"].as_str()), (200, Some("0")), "{v}");
    let (s, co) = shop.checkout(&b, "text").await;
    assert_eq!(s, 200, "{co}");
    assert_eq!(co["payment"]["state"], "paid");
    assert!(co["payment"]["address"].is_null());
    assert!(co["challenge"].is_null());
    let new = shop.receipt(&co["payment"]).await;
    assert_eq!(shop.get("/albums/same/1", &new).await, 200);
    // Paid means the exchange is final: the CD is no longer the old receipt's.
    assert_eq!(shop.get("/albums/ladytron-cd/1", &old).await, 402);
    let old_claim = old_payment(&shop, &old).await;
    assert_eq!(shop.status(&old_claim).await["state"], "refunded");
}

// Rules out: two baskets (or two racing requests) refunding one purchase twice.
#[tokio::test]
async fn concurrent_refunds_of_one_purchase_credit_it_once() {
    let shop = Shop::new("30m", "1h", 1).await;
    let old = shop.buy(&[(CD, "14.99", 1)]).await;
    let baskets = [
        shop.create().await,
        shop.create().await,
        shop.create().await,
    ];
    let barrier = tokio::sync::Barrier::new(baskets.len());
    let refund = |b: &Held| {
        let (shop, old, barrier) = (&shop, &old, &barrier);
        let b = b.clone();
        async move {
            barrier.wait().await;
            shop.add_with(&b, CD, "-14.99", 1, Some(old)).await
        }
    };
    let (r0, r1, r2) = tokio::join!(
        refund(&baskets[0]),
        refund(&baskets[1]),
        refund(&baskets[2])
    );
    let results = [r0, r1, r2];
    let ok = results.iter().filter(|(s, _)| *s == 200).count();
    let refused: Vec<_> = results
        .iter()
        .filter(|(s, v)| *s == 403 && v["code"] == "payment_refund_failed")
        .collect();
    assert_eq!((ok, refused.len()), (1, 2), "{results:?}");
    // Releasing the basket that holds the refund frees it for another basket.
    let holder = baskets
        .iter()
        .zip(&results)
        .find(|(_, (s, _))| *s == 200)
        .unwrap()
        .0;
    let (s, v) = shop
        .call(
            reqwest::Method::DELETE,
            &format!("/{}", holder.id),
            Some(&holder.secret),
            None,
        )
        .await;
    assert_eq!((s, v["state"].as_str()), (200, Some("released")));
    let other = baskets.iter().find(|b| b.id != holder.id).unwrap();
    let (s, v) = shop.add_with(other, CD, "-14.99", 1, Some(&old)).await;
    assert_eq!(s, 200, "{v}");
}

// Rules out: an open basket or a checkout lost to a restart.
#[tokio::test]
async fn restart_loses_no_basket_and_no_checkout() {
    let mut shop = Shop::new("30m", "1h", 1).await;
    let open = shop.create().await;
    shop.add(&open, POSTER, "2", 4).await;
    let (_, before) = shop.read(&open).await;
    let b = shop.create().await;
    shop.add(&b, DELUXE, "17.98", 1).await;
    let (s, co) = shop.checkout(&b, "url").await;
    assert_eq!(s, 200);
    shop.restart();
    let (s, after) = shop.read(&open).await;
    assert_eq!((s, &after), (200, &before));
    // 4 posters, 3 for 2: one rebate line; shipping once; tax on items + rebate.
    assert_eq!(
        lines(&after, "extras"),
        vec![
            l("tollgate:rebate:POSTER1", "-2", 1, "-2"),
            l("tollgate:tax", "1.2", 1, "1.2"),
            l("tollgate:shipping", "0.5", 1, "0.5"),
        ]
    );
    assert_eq!(after["totalBill"], "7.7");
    let (s, again) = shop.checkout(&b, "url").await;
    assert_eq!(s, 200);
    assert_eq!(again["payment"], co["payment"]);
    assert_eq!(again["contract_hash"], co["contract_hash"]);
    let pay = &co["payment"];
    shop.pay_to(
        pay["address"].as_str().unwrap(),
        pay["amount_base_units"].as_str().unwrap().parse().unwrap(),
    )
    .await;
    shop.anvil.mine(2).await;
    shop.wait_state(pay, "paid").await;
}

// Rules out: a transaction hash accepted as proof by itself, or one paying someone
// else; and a checkout that never paid being reported as anything but failed.
#[tokio::test]
async fn challenge_answers_need_a_transfer_to_this_payment() {
    let shop = Shop::new("3s", "1h", 1).await;
    let b = shop.create().await;
    shop.add(&b, DELUXE, "17.98", 1).await;
    let (_, co) = shop.checkout(&b, "text").await;
    let failed = |v: &Value| v["code"] == "payment_authentication_failed";
    for bad in ["", "hello", "0x12", &format!("0x{}", "ab".repeat(32))] {
        let (s, v) = shop.answer(&b, bad).await;
        assert!(s == 400 && failed(&v), "{bad}: {s} {v}");
    }
    // A real transfer of the token, to another address.
    let elsewhere = shop
        .pay_to(&format!("{:?}", support::chain::random_address()), 1)
        .await;
    let (s, v) = shop.answer(&b, &elsewhere).await;
    assert!(s == 400 && failed(&v), "{s} {v}");
    // Nothing paid: once the payment window passes the checkout failed.
    let pay = co["payment"].clone();
    shop.wait_state(&pay, "expired").await;
    let (s, v) = shop.answer(&b, &elsewhere).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (409, Some("payment_charge_failed"))
    );
    let (s, v) = shop.checkout(&b, "text").await;
    assert_eq!(
        (s, v["code"].as_str()),
        (409, Some("payment_charge_failed"))
    );
    let (_, v) = shop.read(&b).await;
    assert_eq!(v["state"], "failed");
}

// Rules out: any error of SPEC section 8 unreachable, or reached under another name.
#[tokio::test]
async fn every_basket_error_code_is_reachable() {
    let shop = Shop::new("30m", "1h", 1).await;
    let create = |body: Value, cookie: Option<String>| {
        let mut r = shop.http.post(shop.url("")).json(&body);
        if let Some(c) = cookie {
            r = r.header("Cookie", c);
        }
        async move {
            let r = r.send().await.unwrap();
            let s = r.status().as_u16();
            let v: Value = r.json().await.unwrap();
            (s, v["code"].as_str().unwrap_or("").to_string())
        }
    };
    let ok = json!({"serviceProviderID": "0xBTC", "customerID": "c", "shopID": SHOP});
    let code = |s: u16, c: &str| (s, c.to_string());
    assert_eq!(
        create(
            json!({"serviceProviderID": "PayPal", "customerID": "c", "shopID": SHOP}),
            None
        )
        .await,
        code(400, "unknown_provider")
    );
    assert_eq!(
        create(
            json!({"serviceProviderID": "0xBTC", "customerID": "c", "shopID": "ShopName12345"}),
            None
        )
        .await,
        code(400, "unknown_shop")
    );
    assert_eq!(
        create(json!({"x": 1}), None).await,
        code(400, "bad_request")
    );
    let b = shop.create().await;
    assert_eq!(
        create(ok.clone(), Some(format!("tollgate_basket={}", b.secret))).await,
        code(409, "basket_already_open")
    );
    // basket_not_open: no secret, a wrong one, another basket's, an unknown id.
    let other = shop.create().await;
    for secret in [None, Some("wrong"), Some(other.secret.as_str())] {
        let (s, v) = shop
            .call(reqwest::Method::GET, &format!("/{}", b.id), secret, None)
            .await;
        assert_eq!(
            (s, v["code"].as_str()),
            (404, Some("basket_not_open")),
            "{secret:?}"
        );
    }
    let (s, v) = shop
        .call(
            reqwest::Method::GET,
            "/0123456789abcdef",
            Some(&b.secret),
            None,
        )
        .await;
    assert_eq!((s, v["code"].as_str()), (404, Some("basket_not_open")));

    let add = |p: &'static str, price: &'static str, n: u32| {
        let b = b.clone();
        let shop = &shop;
        async move {
            let (s, v) = shop.add(&b, p, price, n).await;
            (s, v["code"].as_str().unwrap_or("").to_string())
        }
    };
    assert_eq!(add("NOPE", "1", 1).await, code(400, "unknown_product"));
    assert_eq!(add(DELUXE, "17.99", 1).await, code(400, "price_mismatch"));
    assert_eq!(
        add(DELUXE, "17.979999999", 1).await,
        code(400, "price_mismatch")
    );
    assert_eq!(add(DELUXE, "1.798e1", 1).await, code(400, "price_mismatch"));
    assert_eq!(add(DELUXE, "17.98", 0).await, code(400, "bad_request"));
    let (s, v) = shop
        .call(
            reqwest::Method::POST,
            &format!("/{}/items", b.id),
            Some(&b.secret),
            Some(
                json!({"productID": DELUXE, "currency": "EUR", "itemPrice": 17.98, "itemCount": 1}),
            ),
        )
        .await;
    assert_eq!((s, v["code"].as_str()), (400, Some("currency_mismatch")));
    // Refund without proof of holding it.
    assert_eq!(
        add(CD, "-14.99", 1).await,
        code(403, "payment_refund_failed")
    );
    // An empty basket cannot be checked out.
    let (s, v) = shop.checkout(&b, "url").await;
    assert_eq!((s, v["code"].as_str()), (400, Some("basket_empty")));
    // max_total is 100: 5 deluxe (89.9) + tax 17.98 = 107.88 > 100; the item is not added.
    assert_eq!(add(DELUXE, "17.98", 4).await.0, 200);
    assert_eq!(
        add(DELUXE, "17.98", 1).await,
        code(400, "payment_chargeable_exceeded")
    );
    let (_, v) = shop.read(&b).await;
    assert_eq!(v["items"][0]["itemCount"], 4);
    let (s, v) = shop.checkout(&b, "sms").await;
    assert_eq!((s, v["code"].as_str()), (400, Some("bad_request")));
    assert_eq!(shop.checkout(&b, "url").await.0, 200);
    assert_eq!(add(DELUXE, "17.98", 1).await, code(409, "basket_locked"));
    // Released: every change is basket_not_open; creating a new one is allowed again.
    let (s, _) = shop
        .call(
            reqwest::Method::DELETE,
            &format!("/{}", b.id),
            Some(&b.secret),
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(add(DELUXE, "17.98", 1).await, code(404, "basket_not_open"));
    let (s, v) = shop.checkout(&b, "url").await;
    assert_eq!((s, v["code"].as_str()), (404, Some("basket_not_open")));
    assert_eq!(
        create(ok.clone(), Some(format!("tollgate_basket={}", b.secret)))
            .await
            .0,
        201
    );
    // A body too large for an endpoint is 413, never a 500.
    let big = "x".repeat(100 * 1024);
    let r = shop
        .http
        .post(shop.url(&format!("/{}/items", other.id)))
        .header("Authorization", format!("Basket {}", other.secret))
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
}

// Rules out: an abandoned basket holding a refund (or a place) forever.
#[tokio::test]
async fn baskets_are_released_after_their_ttl() {
    let shop = Shop::new("30m", "2s", 1).await;
    let old = shop.buy(&[(CD, "14.99", 1)]).await;
    let b = shop.create().await;
    assert_eq!(shop.add_with(&b, CD, "-14.99", 1, Some(&old)).await.0, 200);
    // Another basket cannot take the held refund while b is open ...
    let c = shop.create().await;
    assert_eq!(shop.add_with(&c, CD, "-14.99", 1, Some(&old)).await.0, 403);
    // ... and can once b's ttl has passed (c's too: a fresh one).
    eventually("basket b expires", || async {
        match shop.read(&b).await {
            (200, v) if v["state"] == "released" => Ok(()),
            (s, v) => Err(format!("{s} {v}")),
        }
    })
    .await;
    let d = shop.create().await;
    let (s, v) = shop.add_with(&d, CD, "-14.99", 1, Some(&old)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        shop.add(&b, DELUXE, "17.98", 1).await.1["code"],
        "basket_not_open"
    );
}

// Rules out: a shared basket id, contract token or fulfillment URL yielding the
// basket, its payment's claim token or its receipt; calls out of order doing harm;
// two checkouts at once minting two payments.
#[tokio::test]
async fn strangers_get_nothing_from_a_basket() {
    let shop = Shop::new("30m", "1h", 1).await;
    let b = shop.create().await;
    shop.add(&b, DELUXE, "17.98", 1).await;
    // Out of order: answering before checking out changes nothing.
    let (s, v) = shop.answer(&b, &format!("0x{}", "11".repeat(32))).await;
    assert_eq!((s, v["code"].as_str()), (400, Some("bad_request")), "{v}");
    // Two checkouts at once: one contract, one payment.
    let (c1, c2) = tokio::join!(shop.checkout(&b, "url"), shop.checkout(&b, "url"));
    assert_eq!((c1.0, c2.0), (200, 200));
    assert_eq!(c1.1["payment"]["payment_id"], c2.1["payment"]["payment_id"]);
    assert_eq!(c1.1["contract_hash"], c2.1["contract_hash"]);
    let co = c1.1;
    let pid = co["payment"]["payment_id"].as_str().unwrap();
    // A stranger who knows the basket id (not the secret) gets nothing from any call.
    for (m, path) in [
        (reqwest::Method::GET, format!("/{}", b.id)),
        (reqwest::Method::POST, format!("/{}/update", b.id)),
        (reqwest::Method::POST, format!("/{}/checkout", b.id)),
        (reqwest::Method::POST, format!("/{}/challenge", b.id)),
        (reqwest::Method::DELETE, format!("/{}", b.id)),
    ] {
        let (s, v) = shop
            .call(
                m.clone(),
                &path,
                Some("guess"),
                Some(json!({"response": "x"})),
            )
            .await;
        assert_eq!(
            (s, v["code"].as_str()),
            (404, Some("basket_not_open")),
            "{m} {path}"
        );
    }
    // ... nor from the contract: its terms hold no secret, and claiming it is refused.
    let terms = shop
        .http
        .get(Payer::local(&shop.tg, co["contract_url"].as_str().unwrap()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let claim_token = co["payment"]["claim_token"].as_str().unwrap();
    assert!(!terms.contains(claim_token) && !terms.contains(&b.secret));
    let r = shop
        .http
        .post(shop.tg.url("/_tollgate/pay"))
        .json(&json!({"contract": co["contract_token"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "contract_already_claimed");
    assert!(v.get("claim_token").is_none() && !v.to_string().contains(claim_token));
    // ... nor from the fulfillment URL (the basket's own path).
    let r = shop
        .http
        .get(shop.url(&format!(
            "/{}?tollgate_contract={}",
            b.id,
            co["contract_token"].as_str().unwrap()
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // ... nor the receipt once it is paid.
    shop.pay_to(co["payment"]["address"].as_str().unwrap(), 2_157_600_000)
        .await;
    shop.anvil.mine(2).await;
    shop.wait_state(&co["payment"], "paid").await;
    let r = shop
        .http
        .post(shop.tg.url(&format!("/_tollgate/{pid}/receipt")))
        .json(&json!({"claim_token": "forged"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // The holder's checkout and answer are repeatable once paid.
    let (s, again) = shop.checkout(&b, "url").await;
    assert_eq!(
        (s, &again["payment"]["payment_id"]),
        (200, &co["payment"]["payment_id"])
    );
    assert_eq!(again["payment"]["state"], "paid");
}

// Rules out: a browser losing what it bought earlier when it buys again (one receipt
// cookie, overwritten), and a forged receipt riding along in the merged cookie.
#[tokio::test]
async fn a_browser_keeps_every_receipt_in_its_cookie() {
    let shop = Shop::new("30m", "1h", 1).await;
    let first = shop.buy(&[(CD, "14.99", 1)]).await;
    let b = shop.create().await;
    shop.add(&b, DELUXE, "17.98", 1).await;
    let (_, co) = shop.checkout(&b, "url").await;
    let pay = &co["payment"];
    shop.pay_to(pay["address"].as_str().unwrap(), 2_157_600_000)
        .await;
    shop.anvil.mine(2).await;
    shop.wait_state(pay, "paid").await;
    let forged = format!("{}x", &first[..first.len() - 1]);
    let r = shop
        .http
        .post(Payer::local(&shop.tg, pay["receipt_url"].as_str().unwrap()))
        .header("Cookie", format!("a=1; tollgate_receipt={first}~{forged}"))
        .json(&json!({ "claim_token": pay["claim_token"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let set = r.headers()["set-cookie"].to_str().unwrap().to_string();
    let value = set
        .strip_prefix("tollgate_receipt=")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let v: Value = r.json().await.unwrap();
    let second = v["receipt"].as_str().unwrap();
    assert_eq!(
        value,
        format!("{second}~{first}"),
        "the forged one is dropped"
    );
    for path in ["/albums/ladytron-cd/1", "/albums/ladytron-deluxe/1"] {
        let r = shop
            .http
            .get(shop.tg.url(path))
            .header("Cookie", format!("tollgate_receipt={value}"))
            .header("Accept", "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
}
