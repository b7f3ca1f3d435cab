//! 0xBTC payments end to end on real parts: anvil from npm with the TestToken
//! ERC-20 (8 decimals), the real tollgate binary on a real SQLite file, a real
//! origin. 402 → contract → claim → transfer → seen → confirmations → paid →
//! receipt → replay, plus the ways it must not go wrong.

mod support;

use std::time::Duration;

use alloy::primitives::Address;
use serde_json::{json, Value};
use support::chain::{Anvil, ONE_TOKEN};
use support::origin::Origin;
use support::payer::Payer;
use support::{eventually, funded_chain, PaymentsConfig, TempDir, Tollgate, TEST_KEY};

const CHAIN_ID: u64 = 31337;

/// A payment world: chain, token, origin, tollgate (restartable on the same store).
struct World {
    anvil: Anvil,
    token: Address,
    origin: Origin,
    dir: TempDir,
    config: String,
    tg: Tollgate,
    http: reqwest::Client,
    payer: Payer,
}

impl World {
    async fn new(confirmations: u64, expiry: &str, access_ttl: &str) -> World {
        Self::with_rpcs(confirmations, expiry, access_ttl, &[]).await
    }

    /// As [`World::new`], with `dead_first` RPC URLs listed before anvil's.
    async fn with_rpcs(
        confirmations: u64,
        expiry: &str,
        access_ttl: &str,
        dead_first: &[&str],
    ) -> World {
        let (anvil, token) = funded_chain(CHAIN_ID).await;
        let origin = Origin::start();
        let rest = format!(
            r#"
[payments]
expiry = "{expiry}"
access_ttl = "{access_ttl}"
claim_rate = "1000/min"
[[route]]
path = "/movies/*"
price = "0.5"
summary = "Movie {{path}}"
[[route]]
path = "/series/*"
price = "0.25"
scope = "route"
[[route]]
path = "/series/premium/*"
price = "2"
scope = "route"
[[route]]
path = "/movies/premium/*"
price = "10"
[[route]]
path = "/articles/{{slug}}"
price = "0.25"
scope = "route"
[[route]]
path = "/articles/premium"
price = "5"
"#
        );
        let config = PaymentsConfig {
            listen: "127.0.0.1:0",
            public_url: "http://tollgate.test",
            origin: origin.addr,
            rpc: anvil.rpc_url(),
            dead_rpcs: dead_first,
            chain_id: CHAIN_ID,
            token,
            confirmations,
            secrets_extra: "",
            rest: &rest,
        }
        .render();
        let dir = TempDir::new("pay");
        let tg = Tollgate::start_in(dir.path(), &config, &[("TOLLGATE_TEST_KEY", TEST_KEY)]);
        World {
            anvil,
            token,
            origin,
            dir,
            config,
            tg,
            http: reqwest::Client::new(),
            payer: Payer::new(),
        }
    }

    fn restart(&mut self) {
        self.tg = Tollgate::start_in(
            self.dir.path(),
            &self.config,
            &[("TOLLGATE_TEST_KEY", TEST_KEY)],
        );
    }

    fn url(&self, p: &str) -> String {
        self.tg.url(p)
    }

    fn local(&self, public: &str) -> String {
        Payer::local(&self.tg, public)
    }

    /// GET a priced path; returns the contract token.
    async fn contract(&self, path: &str) -> String {
        self.payer.contract(&self.tg, path).await
    }

    async fn claim(&self, token: &str) -> Value {
        self.payer.claim_contract(&self.tg, token).await
    }

    /// `POST /pay` as JSON, presenting `claim_token` in the body and/or `cookie`.
    async fn claim_as(
        &self,
        token: &str,
        claim_token: Option<&str>,
        cookie: Option<&str>,
    ) -> reqwest::Response {
        let mut body = json!({ "contract": token });
        if let Some(c) = claim_token {
            body["claim_token"] = json!(c);
        }
        let mut req = self.http.post(self.url("/_tollgate/pay")).json(&body);
        if let Some(c) = cookie {
            req = req.header("Cookie", c);
        }
        req.send().await.unwrap()
    }

    /// `POST /pay` as a browser without JavaScript: a form, HTML wanted.
    async fn claim_form(&self, token: &str, cookie: Option<&str>) -> reqwest::Response {
        let mut req = self
            .http
            .post(self.url("/_tollgate/pay"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("Accept", "text/html")
            .body(format!("contract={token}"));
        if let Some(c) = cookie {
            req = req.header("Cookie", c);
        }
        req.send().await.unwrap()
    }

    async fn pay(&self, claim: &Value, amount: u128) -> String {
        let tx = support::payer::pay(&self.anvil, self.token, claim, amount).await;
        format!("{tx:#x}")
    }

    async fn status(&self, claim: &Value) -> Value {
        self.payer.status(&self.tg, claim).await
    }

    /// Polls status.json until `state` (bounded: 30 s), returning the status.
    async fn wait_state(&self, claim: &Value, state: &str) -> Value {
        self.payer.wait_state(&self.tg, claim, state).await
    }

    /// Polls until the completing transfer has `n` confirmations (bounded: 30 s).
    async fn wait_confirmations(&self, claim: &Value, n: u64) -> Value {
        eventually(&format!("{n} confirmations"), || async {
            let s = self.status(claim).await;
            if s["confirmations"].as_u64() >= Some(n) {
                Ok(s)
            } else {
                Err(s.to_string())
            }
        })
        .await
    }

    async fn receipt(&self, claim: &Value) -> reqwest::Response {
        self.payer.receipt(&self.tg, claim).await
    }

    async fn get_with_receipt(&self, path: &str, receipt: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .header("Authorization", format!("Tollgate {receipt}"))
            .send()
            .await
            .unwrap()
    }
}

fn half() -> u128 {
    ONE_TOKEN / 2
}

// Rules out: any break in the payer's loop, and a replay that charges again or leaks
// tollgate's credentials to the origin.
#[tokio::test]
async fn full_loop_pays_and_replay_unlocks() {
    let w = World::new(3, "30m", "30d").await;
    let token = w.contract("/movies/x").await;
    let claim = w.claim(&token).await;
    assert_eq!(claim["amount"], "0.5");
    assert_eq!(claim["amount_base_units"], "50000000");
    assert_eq!(claim["chain_id"], CHAIN_ID);
    let address = claim["address"].as_str().unwrap();
    assert_eq!(
        claim["eip681"],
        format!(
            "ethereum:{}@{CHAIN_ID}/transfer?address={address}&uint256=50000000",
            w.token.to_string().to_lowercase()
        )
    );
    assert_eq!(w.status(&claim).await["state"], "new");
    // Claiming again is idempotent for the claimer (who presents the claim token):
    // same payment, same address.
    let again = w
        .claim_as(&token, claim["claim_token"].as_str(), None)
        .await;
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["payment_id"], claim["payment_id"]);
    assert_eq!(again["address"], claim["address"]);
    assert_eq!(again["claim_token"], claim["claim_token"]);
    // Not paid: the receipt endpoint says so.
    let r = w.receipt(&claim).await;
    assert_eq!(r.status(), 409);

    let tx = w.pay(&claim, half()).await;
    let s = w.wait_state(&claim, "confirming").await;
    assert!(s["seen_at"].is_u64() && s["paid_at"].is_null(), "{s}");
    assert_eq!(s["tx_hash"], tx);
    assert_eq!(s["required_confirmations"], 3);
    // While confirming: the receipt endpoint and the fulfillment URL say "wait", never
    // a fresh contract that invites paying twice.
    let r = w.receipt(&claim).await;
    assert_eq!(r.status(), 409);
    assert!(r.headers().contains_key("retry-after"));
    let r = w
        .http
        .get(w.url(&format!("/movies/x?tollgate_contract={token}")))
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 402);
    assert!(r.headers().contains_key("retry-after"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "payment_confirming");
    // A stranger who opened that link is shown the way to an offer of their own.
    assert_eq!(
        body["offer_url"],
        "http://tollgate.test/_tollgate/offer?resource=/movies/x"
    );
    assert!(body.get("claim_token").is_none());

    w.anvil.mine(2).await;
    let s = w.wait_state(&claim, "paid").await;
    assert!(s["paid_at"].is_u64());
    assert_eq!(s["confirmations"], 3);
    let r = w.receipt(&claim).await;
    assert_eq!(r.status(), 200);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.starts_with("tollgate_receipt=tg1."), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/")
    );
    assert!(!cookie.contains("Secure"), "public_url is http");
    let v: Value = r.json().await.unwrap();
    let receipt = v["receipt"].as_str().unwrap().to_string();

    // Replay: header, then cookie; the origin sees neither.
    w.origin.clear_hits();
    let r = w.get_with_receipt("/movies/x", &receipt).await;
    assert_eq!(r.status(), 200);
    let echo: Value = r.json().await.unwrap();
    let headers = echo["headers"].as_array().unwrap();
    assert!(!headers.iter().any(|h| h[0] == "authorization"), "{echo}");
    let r = w
        .http
        .get(w.url("/movies/x"))
        .header("Cookie", format!("a=1; tollgate_receipt={receipt}; b=2"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let echo: Value = r.json().await.unwrap();
    let cookies: Vec<&Value> = echo["headers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h[0] == "cookie")
        .collect();
    assert_eq!(cookies.len(), 1);
    assert_eq!(cookies[0][1], "a=1; b=2");
    // The receipt endpoint is repeatable (a wallet that lost its cookie).
    let r2: Value = w.receipt(&claim).await.json().await.unwrap();
    assert_eq!(r2["receipt"], receipt.as_str());
    // Paid once: exactly one transfer's worth received.
    assert_eq!(w.status(&claim).await["received"], "0.5");
}

/// The `name=value` of a `Set-Cookie` header named `name…` on `r`, with its attributes.
fn set_cookie(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(name))
        .map(str::to_string)
}

// Rules out: a shared fulfillment URL being a free pass (the Taler seed's third rule).
// A stranger holding only the fulfillment URL, and so the contract token, tries every
// public call; none yields the claim token, a receipt or the content. The payer keeps
// access: its browser without JavaScript through the claim cookie, its wallet through
// the stored claim token. The stranger is led to the offer and buys there.
#[tokio::test]
async fn shared_fulfillment_url_gives_a_stranger_nothing() {
    let w = World::new(1, "30m", "30d").await;
    let r = w
        .http
        .get(w.url("/movies/shared"))
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    let challenge: Value = r.json().await.unwrap();
    let token = challenge["contract_token"].as_str().unwrap().to_string();
    let hash = challenge["contract_hash"].as_str().unwrap().to_string();
    let fulfillment = w.local(challenge["contract"]["fulfillment_url"].as_str().unwrap());

    // The payer claims: JSON answer plus the claim cookie, HttpOnly, on pay_prefix.
    let r = w.claim_as(&token, None, None).await;
    assert_eq!(r.status(), 201);
    let cookie = set_cookie(&r, "tollgate_claim_").expect("claim cookie");
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/_tollgate", "Max-Age="] {
        assert!(cookie.contains(attr), "{attr} missing: {cookie}");
    }
    let cookie_pair = cookie.split(';').next().unwrap().to_string();
    let claim: Value = r.json().await.unwrap();
    let (pid, secret) = (
        claim["payment_id"].as_str().unwrap().to_string(),
        claim["claim_token"].as_str().unwrap().to_string(),
    );
    assert_eq!(cookie_pair, format!("tollgate_claim_{pid}={secret}"));
    w.pay(&claim, half()).await;
    w.wait_state(&claim, "paid").await;
    w.origin.clear_hits();

    // The stranger, with the fulfillment URL only.
    let stranger = reqwest::Client::new();
    let r = stranger
        .get(&fulfillment)
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 402);
    assert_eq!(r.headers()["x-taler-contract-hash"], hash.as_str());
    let text = r.text().await.unwrap();
    assert!(!text.contains(&secret) && !text.contains(&pid), "{text}");
    let terms = stranger
        .get(w.local(challenge["contract_url"].as_str().unwrap()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!terms.contains(&secret) && !terms.contains(&pid));
    // Claiming it again: 409 with the offer, never the payment or its secret, with any
    // made-up proof (a claim token or a cookie that is not the claimer's).
    let forged_cookie = format!("tollgate_claim_{pid}=AAAA");
    for (proof, cookie) in [
        (None, None),
        (Some(token.as_str()), None),
        (Some(hash.as_str()), Some(forged_cookie.as_str())),
        (None, Some("tollgate_claim_x=1; tollgate_receipt=tg1.a.b")),
    ] {
        let r = w.claim_as(&token, proof, cookie).await;
        assert_eq!(r.status(), 409);
        assert!(set_cookie(&r, "tollgate_claim_").is_none());
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["code"], "contract_already_claimed");
        assert_eq!(
            v["offer_url"],
            "http://tollgate.test/_tollgate/offer?resource=/movies/shared"
        );
        let t = v.to_string();
        assert!(!t.contains(&secret) && !t.contains(&pid), "{t}");
    }
    let r = w.claim_form(&token, None).await;
    assert_eq!(r.status(), 409);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("/_tollgate/offer?resource=/movies/shared"),
        "{page}"
    );
    assert!(!page.contains(&secret) && !page.contains(&pid));
    // Even knowing the payment id (say the payer shared a status link), the receipt
    // needs the claim token; the contract token, hash or a guess do not do.
    for guess in ["", token.as_str(), hash.as_str(), "AAAA"] {
        let r = stranger
            .post(w.url(&format!("/_tollgate/{pid}/receipt")))
            .json(&json!({ "claim_token": guess }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{guess}");
        assert!(set_cookie(&r, "tollgate_receipt").is_none());
    }
    // The contract token is no receipt either.
    for auth in [format!("Tollgate {token}"), format!("Tollgate tg1.{token}")] {
        let r = stranger
            .get(&fulfillment)
            .header("Authorization", auth)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 402);
    }
    assert!(w.origin.hits().is_empty(), "{:?}", w.origin.hits());

    // The payer's browser without JavaScript: the same form post, with its claim
    // cookie, gets the instructions again, whose unlock button gives the receipt.
    // (Its cookie counts however many other purchases' claim cookies come first.)
    let jar: Vec<String> = (0..40)
        .map(|i| format!("tollgate_claim_{i:016x}=AAAA"))
        .chain([cookie_pair.clone()])
        .collect();
    let r = w.claim_form(&token, Some(&jar.join("; "))).await;
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    assert!(
        page.contains(&format!("name=\"claim_token\" value=\"{secret}\"")),
        "{page}"
    );
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = browser
        .post(w.url(&format!("/_tollgate/{pid}/receipt")))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Accept", "text/html")
        .body(format!("claim_token={secret}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(set_cookie(&r, "tollgate_receipt=tg1.").is_some());
    // The payer's wallet, with the stored claim token.
    let r = w.claim_as(&token, Some(&secret), None).await;
    assert_eq!(r.status(), 200);
    let again: Value = r.json().await.unwrap();
    assert_eq!(again["payment_id"], pid.as_str());
    let v: Value = w.receipt(&again).await.json().await.unwrap();
    let receipt = v["receipt"].as_str().unwrap();
    assert_eq!(
        w.get_with_receipt("/movies/shared", receipt).await.status(),
        200
    );

    // The stranger follows the offer URL: a fresh contract of their own, paid by them.
    let r = stranger
        .get(w.url("/_tollgate/offer?resource=/movies/shared"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let own_contract = r.headers()["x-taler-contract-url"]
        .to_str()
        .unwrap()
        .to_string();
    let own_token = own_contract.rsplit('/').next().unwrap();
    assert_ne!(own_token, token);
    let r = stranger
        .post(w.url("/_tollgate/pay"))
        .json(&json!({ "contract": own_token }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let own: Value = r.json().await.unwrap();
    assert_ne!(own["payment_id"], pid.as_str());
    assert_ne!(own["address"], claim["address"]);
    w.pay(&own, half()).await;
    w.wait_state(&own, "paid").await;
    let v: Value = w.receipt(&own).await.json().await.unwrap();
    let r = stranger
        .get(w.url("/movies/shared"))
        .header(
            "Authorization",
            format!("Tollgate {}", v["receipt"].as_str().unwrap()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

// Rules out: a browser without JavaScript landing on raw JSON after a form post, and a
// paid payment's status page that dead-ends: once paid it opens the resource, for the
// browser holding the claim cookie only.
#[tokio::test]
async fn no_javascript_pages_lead_from_claim_to_the_resource() {
    let w = World::new(1, "30m", "30d").await;
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let html = |r: &reqwest::Response| {
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    };
    // A broken contract token in a form post: an HTML page.
    let r = w.claim_form("not.a-token", None).await;
    assert_eq!(r.status(), 400);
    assert!(html(&r));
    // The claim: the instructions page and the claim cookie.
    let token = w.contract("/movies/nojs").await;
    let r = w.claim_form(&token, None).await;
    assert_eq!(r.status(), 200);
    let cookie = set_cookie(&r, "tollgate_claim_").expect("claim cookie");
    let cookie = cookie.split(';').next().unwrap().to_string();
    let pid = cookie["tollgate_claim_".len()..][..16].to_string();
    let page = r.text().await.unwrap();
    let address = page
        .split("<code id=\"address\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap()
        .to_string();
    let claim = json!({
        "address": address,
        "status_url": format!("http://tollgate.test/_tollgate/{pid}/status.json"),
    });
    // Unlocking before paying: an HTML "not paid yet" page.
    let receipt_url = w.url(&format!("/_tollgate/{pid}/receipt"));
    let unlock = |cookie: Option<String>| {
        let mut req = browser
            .post(&receipt_url)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("Accept", "text/html");
        if let Some(c) = cookie {
            req = req.header("Cookie", c);
        }
        req.send()
    };
    let r = unlock(Some(cookie.clone())).await.unwrap();
    assert_eq!(r.status(), 409);
    assert!(html(&r));
    w.pay(&claim, half()).await;
    w.wait_state(&claim, "paid").await;
    // The status page now offers to open the resource…
    let status = w
        .http
        .get(w.url(&format!("/_tollgate/{pid}/status")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(status.contains("Paid: open /movies/nojs"), "{status}");
    assert!(status.contains(&format!(
        "action=\"http://tollgate.test/_tollgate/{pid}/receipt\""
    )));
    assert!(
        !status.contains("http-equiv=\"refresh\""),
        "a paid page stops refreshing"
    );
    // …which works with this browser's claim cookie (no claim token in the form)…
    let r = unlock(Some(cookie.clone())).await.unwrap();
    assert_eq!(r.status(), 303);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with("http://tollgate.test/movies/nojs?tollgate_contract="));
    let receipt_cookie = set_cookie(&r, "tollgate_receipt=tg1.").expect("receipt cookie");
    let r = w
        .http
        .get(w.local(&location))
        .header("Cookie", receipt_cookie.split(';').next().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // …and not without it, or with a forged one.
    let r = unlock(None).await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(html(&r));
    let r = unlock(Some(format!("tollgate_claim_{pid}=AAAA")))
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(html(&r));
    assert!(set_cookie(&r, "tollgate_receipt").is_none());
}

// Rules out: two simultaneous first claims of one contract both getting its secret
// (the store's atomic claim decides who claimed; the other is a stranger).
#[tokio::test]
async fn concurrent_first_claims_give_the_secret_to_one() {
    let w = World::new(1, "30m", "30d").await;
    for round in 0..5 {
        let token = w.contract(&format!("/movies/race{round}")).await;
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(8));
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (http, url, barrier) =
                    (w.http.clone(), w.url("/_tollgate/pay"), barrier.clone());
                let token = token.clone();
                tokio::spawn(async move {
                    barrier.wait().await;
                    let r = http
                        .post(url)
                        .json(&json!({ "contract": token }))
                        .send()
                        .await
                        .unwrap();
                    (r.status().as_u16(), r.json::<Value>().await.unwrap())
                })
            })
            .collect();
        let mut winners = 0;
        for t in tasks {
            let (status, v) = t.await.unwrap();
            match status {
                201 => winners += 1,
                409 => assert!(v.get("claim_token").is_none(), "{v}"),
                other => panic!("claim answered {other}: {v}"),
            }
        }
        assert_eq!(winners, 1, "round {round}");
    }
}

// Rules out: receipts that die with the process (the cache is not the authority).
#[tokio::test]
async fn receipt_survives_restart() {
    let mut w = World::new(1, "30m", "30d").await;
    let claim = w.claim(&w.contract("/movies/r").await).await;
    w.pay(&claim, half()).await;
    w.wait_state(&claim, "paid").await;
    let receipt: Value = w.receipt(&claim).await.json().await.unwrap();
    let receipt = receipt["receipt"].as_str().unwrap().to_string();
    w.restart();
    assert_eq!(
        w.get_with_receipt("/movies/r", &receipt).await.status(),
        200
    );
    assert_eq!(w.status(&claim).await["state"], "paid");
}

// Rules out: a receipt for one thing opening another, forged receipts, and
// receipts past their lifetime.
#[tokio::test]
async fn forged_expired_and_wrong_scope_receipts_are_refused() {
    let w = World::new(1, "30m", "2s").await;
    let claim = w.claim(&w.contract("/movies/a").await).await;
    w.pay(&claim, half()).await;
    w.wait_state(&claim, "paid").await;
    let v: Value = w.receipt(&claim).await.json().await.unwrap();
    let receipt = v["receipt"].as_str().unwrap().to_string();
    assert_eq!(
        w.get_with_receipt("/movies/a", &receipt).await.status(),
        200
    );
    // Scope is the resource: another movie is not unlocked.
    assert_eq!(
        w.get_with_receipt("/movies/b", &receipt).await.status(),
        402
    );
    // Forged: change the scope inside the payload, keep the MAC.
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = receipt.split('.').collect();
    let payload = String::from_utf8(b64.decode(parts[1]).unwrap()).unwrap();
    let forged_payload = payload.replace("/movies/a", "/movies/*");
    let forged = format!("tg1.{}.{}", b64.encode(forged_payload), parts[2]);
    assert_eq!(
        w.get_with_receipt("/movies/zzz", &forged).await.status(),
        402
    );
    assert_eq!(
        w.get_with_receipt("/movies/a", "tg1.garbage.x")
            .await
            .status(),
        402
    );
    // Expired: access_ttl is 2 s from paid_at.
    let exp = v["expires_at"].as_u64().unwrap();
    while std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        <= exp
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        w.get_with_receipt("/movies/a", &receipt).await.status(),
        402
    );
}

// Rules out: "route" scope not covering the route, or covering more than it: a cheap
// route's receipt opening a pricier route nested under it (`/series/premium/*` under
// `/series/*`, the exact `/articles/premium` beside `/articles/{slug}`).
#[tokio::test]
async fn route_scope_unlocks_the_whole_route() {
    let w = World::new(1, "30m", "30d").await;
    let claim = w.claim(&w.contract("/series/s1/e1").await).await;
    w.pay(&claim, ONE_TOKEN / 4).await;
    let article = w.claim(&w.contract("/articles/a").await).await;
    w.pay(&article, ONE_TOKEN / 4).await;
    w.wait_state(&claim, "paid").await;
    w.wait_state(&article, "paid").await;
    let v: Value = w.receipt(&claim).await.json().await.unwrap();
    assert_eq!(v["scope"], "route:/series/*");
    let receipt = v["receipt"].as_str().unwrap();
    assert_eq!(
        w.get_with_receipt("/series/s2/e9", receipt).await.status(),
        200
    );
    assert_eq!(w.get_with_receipt("/series", receipt).await.status(), 200);
    assert_eq!(w.get_with_receipt("/movies/x", receipt).await.status(), 402);
    for nested in ["/series/premium/e1", "/series/premium", "/series/premium/"] {
        assert_eq!(
            w.get_with_receipt(nested, receipt).await.status(),
            402,
            "{nested}"
        );
    }
    let v: Value = w.receipt(&article).await.json().await.unwrap();
    assert_eq!(v["scope"], "route:/articles/{slug}");
    let receipt = v["receipt"].as_str().unwrap();
    assert_eq!(
        w.get_with_receipt("/articles/b", receipt).await.status(),
        200
    );
    for pricier in ["/articles/premium", "/articles/premium/"] {
        assert_eq!(
            w.get_with_receipt(pricier, receipt).await.status(),
            402,
            "{pricier}"
        );
    }
}

// Rules out: a receipt bought for the literal path `/movies/*` (a legal path, priced by
// the `/movies/*` route as that one resource) being read as the pattern and opening
// every movie, nested pricier routes included.
#[tokio::test]
async fn literal_star_resource_receipt_opens_only_that_path() {
    let w = World::new(1, "30m", "30d").await;
    // Offered through the offer page too: `%2A` is the same resource.
    let offer = w
        .http
        .get(w.url("/_tollgate/offer?resource=/movies/%2A"))
        .send()
        .await
        .unwrap();
    assert_eq!(offer.status(), 200);
    let claim = w.claim(&w.contract("/movies/*").await).await;
    w.pay(&claim, half()).await;
    w.wait_state(&claim, "paid").await;
    let v: Value = w.receipt(&claim).await.json().await.unwrap();
    assert_eq!(v["scope"], "/movies/*");
    let receipt = v["receipt"].as_str().unwrap();
    assert_eq!(w.get_with_receipt("/movies/*", receipt).await.status(), 200);
    for other in ["/movies/y", "/movies/a/b", "/movies/premium/z", "/movies"] {
        assert_eq!(
            w.get_with_receipt(other, receipt).await.status(),
            402,
            "{other}"
        );
    }
}

// Rules out: double-crediting, or one contract's transfer paying another.
#[tokio::test]
async fn same_transfer_cannot_pay_two_contracts() {
    let w = World::new(1, "30m", "30d").await;
    let a = w.claim(&w.contract("/movies/a").await).await;
    let b = w.claim(&w.contract("/movies/b").await).await;
    assert_ne!(a["address"], b["address"]);
    assert_ne!(a["payment_id"], b["payment_id"]);
    w.pay(&a, half()).await;
    w.wait_state(&a, "paid").await;
    // The watcher passes the paying block several times over as blocks come.
    w.anvil.mine(3).await;
    let s = w.wait_confirmations(&a, 4).await;
    assert_eq!(s["received"], "0.5", "credited more than once: {s}");
    let sb = w.status(&b).await;
    assert_eq!(sb["state"], "new", "{sb}");
    assert_eq!(sb["received"], "0");
}

// Rules out: partial payments being lost, or unlocking before the full amount.
#[tokio::test]
async fn partial_transfers_sum_and_underpaid_stays_locked() {
    let w = World::new(1, "4s", "30d").await;
    let full = w.claim(&w.contract("/movies/p").await).await;
    let short = w.claim(&w.contract("/movies/q").await).await;
    w.pay(&full, ONE_TOKEN / 5).await;
    w.pay(&short, ONE_TOKEN / 5).await;
    let s = w.wait_state(&full, "seen").await;
    assert_eq!(s["received"], "0.2");
    assert_eq!(w.receipt(&full).await.status(), 409);
    w.pay(&full, ONE_TOKEN * 3 / 10).await;
    let s = w.wait_state(&full, "paid").await;
    assert_eq!(s["received"], "0.5");
    // The short one expires underpaid and stays locked.
    let s = w.wait_state(&short, "underpaid").await;
    assert_eq!(s["received"], "0.2");
    assert_eq!(w.receipt(&short).await.status(), 409);
}

// Rules out: dropping money that arrives after the deadline.
#[tokio::test]
async fn late_payment_is_recorded_as_paid_late() {
    let w = World::new(1, "2s", "30d").await;
    let token = w.contract("/movies/late").await;
    let claim = w.claim(&token).await;
    w.wait_state(&claim, "expired").await;
    // The payment that was claimed still records money sent after its deadline.
    w.pay(&claim, half()).await;
    let s = w.wait_state(&claim, "paid_late").await;
    assert_eq!(s["received"], "0.5");
    assert!(s["paid_at"].is_u64());
}

// Rules out: claims of expired contracts starting payments nobody can finish in time.
#[tokio::test]
async fn expired_contract_cannot_be_claimed() {
    let w = World::new(1, "1s", "30d").await;
    let r = w
        .http
        .get(w.url("/movies/old"))
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    let deadline = v["contract"]["pay_deadline"].as_u64().unwrap();
    while std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        <= deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = w
        .http
        .post(w.url("/_tollgate/pay"))
        .json(&json!({"contract": v["contract_token"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 410);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "contract_expired");
}

// Rules out: a reorg leaving a dropped transfer credited (and a receipt for it).
#[tokio::test]
async fn reorg_that_drops_the_paying_transfer_reverts_it() {
    let w = World::new(3, "30m", "30d").await;
    let claim = w.claim(&w.contract("/movies/reorg").await).await;
    let snap = w.anvil.snapshot().await;
    w.pay(&claim, half()).await;
    w.wait_state(&claim, "confirming").await;
    // Another history without the transfer, longer than the old one.
    w.anvil.revert(&snap).await;
    w.anvil.mine(4).await;
    let s = w.wait_state(&claim, "new").await;
    assert!(s["seen_at"].is_null() && s["tx_hash"].is_null(), "{s}");
    assert_eq!(w.receipt(&claim).await.status(), 409);

    // Paid, receipt in hand, then a deep reorg drops it: the replay is refused.
    let snap = w.anvil.snapshot().await;
    w.pay(&claim, half()).await;
    w.anvil.mine(2).await;
    w.wait_state(&claim, "paid").await;
    let v: Value = w.receipt(&claim).await.json().await.unwrap();
    let receipt = v["receipt"].as_str().unwrap().to_string();
    assert_eq!(
        w.get_with_receipt("/movies/reorg", &receipt).await.status(),
        200
    );
    w.anvil.revert(&snap).await;
    w.anvil.mine(6).await;
    w.wait_state(&claim, "new").await;
    assert_eq!(
        w.get_with_receipt("/movies/reorg", &receipt).await.status(),
        402
    );
    assert_eq!(w.receipt(&claim).await.status(), 409);
}

// Rules out: two claims racing for the same derivation index.
#[tokio::test]
async fn concurrent_claims_get_distinct_addresses() {
    let w = World::new(1, "30m", "30d").await;
    let mut tokens = Vec::new();
    for i in 0..24 {
        tokens.push(w.contract(&format!("/movies/c{i}")).await);
    }
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(tokens.len()));
    let tasks: Vec<_> = tokens
        .into_iter()
        .map(|t| {
            let http = w.http.clone();
            let url = w.url("/_tollgate/pay");
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                let r = http
                    .post(url)
                    .json(&json!({"contract": t}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 201);
                r.json::<Value>().await.unwrap()["address"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
        })
        .collect();
    let mut addrs = Vec::new();
    for t in tasks {
        addrs.push(t.await.unwrap());
    }
    let unique: std::collections::HashSet<_> = addrs.iter().collect();
    assert_eq!(unique.len(), addrs.len());
}

// Rules out: losing a paid payment or crediting a transfer twice when the process
// dies at any point (kill -9, no shutdown) across 20 payment flows.
#[tokio::test]
async fn kill_9_at_random_points_loses_nothing_and_double_counts_nothing() {
    let mut w = World::new(2, "30m", "30d").await;
    let mut rng = support::Xorshift(0x9e37_79b9_7f4a_7c15);
    let mut claims = Vec::new();
    for i in 0..20 {
        let token = w.contract(&format!("/movies/k{i}")).await;
        if rng.one_in(3) {
            w.tg.kill9();
            w.restart();
        }
        let claim = w.claim(&token).await;
        if rng.one_in(3) {
            w.tg.kill9();
            w.restart();
        }
        w.pay(&claim, half()).await;
        if rng.one_in(2) {
            w.anvil.mine(1).await;
        }
        if rng.one_in(3) {
            w.tg.kill9();
            w.restart();
        }
        claims.push(claim);
    }
    w.anvil.mine(2).await;
    for c in &claims {
        let s = w.wait_state(c, "paid").await;
        assert_eq!(s["received"], "0.5", "credited wrongly: {s}");
    }
    w.tg.kill9();
    w.restart();
    for c in &claims {
        let s = w.status(c).await;
        assert_eq!(s["state"], "paid");
        assert_eq!(s["received"], "0.5");
        assert_eq!(w.receipt(c).await.status(), 200);
    }
}

// Rules out: one dead RPC endpoint stopping payments (failover in order).
#[tokio::test]
async fn rpc_failover_keeps_payments_moving() {
    // Port 1 on loopback refuses connections at once.
    let w = World::with_rpcs(1, "30m", "30d", &["http://127.0.0.1:1"]).await;
    let claim = w.claim(&w.contract("/movies/f").await).await;
    w.pay(&claim, half()).await;
    w.wait_state(&claim, "paid").await;
}

// Rules out: an RPC outage unlocking anything, losing paid access, or crashing tollgate.
#[tokio::test]
async fn rpc_outage_fails_closed_without_losing_paid_access() {
    let mut w = World::new(1, "30m", "30d").await;
    let paid = w.claim(&w.contract("/movies/o1").await).await;
    w.pay(&paid, half()).await;
    w.wait_state(&paid, "paid").await;
    let v: Value = w.receipt(&paid).await.json().await.unwrap();
    let receipt = v["receipt"].as_str().unwrap().to_string();
    let pending = w.claim(&w.contract("/movies/o2").await).await;
    // The chain goes away.
    let dead = std::mem::replace(&mut w.anvil, Anvil::start(CHAIN_ID + 1));
    drop(dead);
    // Paid access still replays (the store is the authority, not the node)…
    assert_eq!(
        w.get_with_receipt("/movies/o1", &receipt).await.status(),
        200
    );
    // …after a restart too, with the node still down.
    w.restart();
    assert_eq!(
        w.get_with_receipt("/movies/o1", &receipt).await.status(),
        200
    );
    // Nothing unpaid unlocks; status still answers; tollgate keeps serving 402s.
    assert_eq!(w.status(&pending).await["state"], "new");
    assert_eq!(w.receipt(&pending).await.status(), 409);
    let r = w.http.get(w.url("/movies/o2")).send().await.unwrap();
    assert_eq!(r.status(), 402);
}

// Rules out: merchants losing sight of funds at indexes past a wallet's gap limit.
#[tokio::test]
async fn addresses_used_lists_every_handed_out_index() {
    let w = World::new(1, "30m", "30d").await;
    let mut claims = Vec::new();
    for i in 0..3 {
        claims.push(w.claim(&w.contract(&format!("/movies/u{i}")).await).await);
    }
    w.pay(&claims[1], half()).await;
    w.wait_state(&claims[1], "paid").await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["addresses", "--config", "tollgate.toml", "--used"])
        .current_dir(w.dir.path())
        .env("TOLLGATE_TEST_KEY", TEST_KEY)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(rows.len(), 3, "{text}");
    for (i, c) in claims.iter().enumerate() {
        let row = rows[i];
        assert!(row.trim_start().starts_with(&i.to_string()), "{row}");
        assert!(row.contains(c["address"].as_str().unwrap()), "{row}");
        assert!(row.contains(c["payment_id"].as_str().unwrap()), "{row}");
    }
    assert!(
        rows[1].contains("paid") && rows[1].contains("0.5"),
        "{}",
        rows[1]
    );
    assert!(rows[0].contains(" new "), "{}", rows[0]);
}

// Rules out: a transfer to an address claimed by another instance on the same
// database (here: this test, writing to tollgate's store directly, as a second
// tollgate would) being skipped by this instance's watcher, and its checkpoint moving
// past it. The store, not an in-memory set, decides which addresses are ours.
#[tokio::test]
async fn addresses_claimed_by_another_instance_are_credited() {
    use tollgate::store::{NewPayment, Store};
    let w = World::new(1, "30m", "30d").await;
    let other = tollgate::store::sqlite::SqliteStore::open(&w.dir.path().join("tollgate.db"))
        .expect("the same database");
    let address = support::chain::random_address();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let new = NewPayment {
        id: "00000000000000aa".into(),
        contract_hash: None,
        contract_token: None,
        scope: None,
        amount: tollgate::amount::Amount(half()),
        required_confirmations: 1,
        access_ttl_secs: 3600,
        created_at: now,
        expires_at: now + 1800,
        data: None,
        postback_url: None,
    };
    let derive = |_: u32| Ok(format!("{address}"));
    let (p, created) = other.claim(new, &derive).await.unwrap();
    assert!(created);
    w.anvil.transfer(w.token, 1, address, half()).await;
    w.anvil.mine(1).await;
    let claim =
        json!({ "status_url": format!("http://tollgate.test/_tollgate/{}/status.json", p.id) });
    let s = w.wait_state(&claim, "paid").await;
    assert_eq!(s["received"], "0.5");
}
