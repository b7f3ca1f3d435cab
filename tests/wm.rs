//! Web Monetization verification (SPEC section 10) end to end: the real tollgate
//! binary reading incoming payments, as an authenticated Open Payments client, from
//! a local Open Payments server.
//!
//! No Open Payments server (Rafiki) installs here, so the server is the project's own
//! (tests/support/op_server.mjs). It is strict where it matters: it verifies
//! tollgate's RFC 9421 signatures with Interledger's own `@interledger/http-signature-utils`
//! against the JWKS of tollgate's client wallet address, and checks every request and
//! its own answers against the OpenAPI documents shipped in `@interledger/open-payments`;
//! each test ends by asserting it recorded no violation.

mod support;

use serde_json::{json, Value};
use support::op_server::{OpServer, TestCa};
use support::origin::Origin;
use support::{funded_chain, PaymentsConfig, TempDir, Tollgate, TEST_KEY};

struct Site {
    op: OpServer,
    _anvil: support::chain::Anvil,
    _origin: Origin,
    dir: TempDir,
    config: String,
    tg: Tollgate,
    http: reqwest::Client,
}

impl Site {
    /// tollgate with `/articles/*` priced 0.02 0xBTC or 0.05 received through Web
    /// Monetization into `op`'s alice (USD, scale 2); `wm` replaces the default
    /// `[web_monetization]` section.
    async fn new(op: OpServer, wm: Option<String>) -> Site {
        Self::logged(op, wm, "warn").await
    }

    /// As [`Site::new`], with tollgate logging at `level` (`RUST_LOG`).
    async fn logged(op: OpServer, wm: Option<String>, level: &str) -> Site {
        let (anvil, token) = funded_chain(31337).await;
        let origin = Origin::start();
        let wm = wm.unwrap_or_else(|| op.wm_config("alice"));
        let rest = format!(
            "[payments]\nclaim_rate = \"1000/min\"\n[[route]]\npath = \"/articles/*\"\nprice = \"0.02\"\nwm_price = \"0.05\"\n[[route]]\npath = \"/movies/*\"\nprice = \"1\"\n{wm}"
        );
        let config =
            PaymentsConfig::local(origin.addr, anvil.rpc_url(), 31337, token, &rest).render();
        let dir = TempDir::new("wm");
        let tg = Tollgate::start_in(
            dir.path(),
            &config,
            &[("TOLLGATE_TEST_KEY", TEST_KEY), ("RUST_LOG", level)],
        );
        Site {
            op,
            _anvil: anvil,
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

    async fn verify_body(&self, body: Value) -> (u16, Value, Option<String>) {
        let r = self
            .http
            .post(self.tg.url("/_tollgate/wm/verify"))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let retry = r
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string());
        let v = r.json().await.unwrap_or(Value::Null);
        (status, v, retry)
    }

    async fn verify(&self, incoming: &str) -> (u16, Value) {
        let (s, v, _) = self
            .verify_body(json!({"incomingPayment": incoming, "resource": "/articles/a"}))
            .await;
        (s, v)
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
}

fn code(v: &Value) -> &str {
    v["code"].as_str().unwrap_or("")
}

// Rules out: a `monetization` event (or a replayed one) unlocking without money, one
// incoming payment's units paying twice (also concurrently), and a receipt that is
// not an ordinary, store-backed one.
#[tokio::test]
async fn received_money_unlocks_once_per_unit() {
    let mut site = Site::new(OpServer::start(None), None).await;
    let url = site.op.create_incoming("alice", "0").await;
    let (s, v) = site.verify(&url).await;
    assert_eq!((s, code(&v)), (402, "insufficient"), "{v}");
    assert_eq!(
        (v["received"].as_str(), v["required"].as_str()),
        (Some("0"), Some("0.05"))
    );
    site.op.set_received(&url, "3").await;
    let (s, v) = site.verify(&url).await;
    assert_eq!((s, v["received"].as_str()), (402, Some("0.03")), "{v}");
    site.op.set_received(&url, "7").await;
    let (s, v) = site.verify(&url).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (v["required"].as_str(), v["left"].as_str()),
        (Some("0.05"), Some("0.02"))
    );
    assert_eq!(v["scope"], "/articles/a");
    let receipt = v["receipt"].as_str().unwrap().to_string();
    assert_eq!(site.get("/articles/a", &receipt).await, 200);
    assert_eq!(site.get("/articles/b", &receipt).await, 402);
    // The same event again: nothing left to credit.
    let (s, v) = site.verify(&url).await;
    assert_eq!((s, v["received"].as_str()), (402, Some("0.02")), "{v}");
    // It grows to 0.17 (0.12 available): four verifies at once unlock exactly twice.
    site.op.set_received(&url, "17").await;
    let (a, b, c, d) = tokio::join!(
        site.verify(&url),
        site.verify(&url),
        site.verify(&url),
        site.verify(&url)
    );
    let ok = [&a, &b, &c, &d].iter().filter(|(s, _)| *s == 200).count();
    assert_eq!(ok, 2, "{a:?} {b:?} {c:?} {d:?}");
    // One grant served every read (the token is cached).
    let counters = site.op.counters().await;
    assert_eq!(counters["grants"], 1, "{counters}");
    assert_eq!(counters["incoming_reads_public"], 0, "{counters}");
    site.op.assert_no_violations().await;
    // Backed by the store: a restart still honours it.
    site.restart();
    assert_eq!(site.get("/articles/a", &receipt).await, 200);
}

// Rules out: tollgate's Open Payments key or a grant token (access or continue)
// reaching its log, at debug level, through a verification, a token renewal and
// refusals; and the receipt it minted being logged.
#[tokio::test]
async fn op_keys_and_grant_tokens_never_reach_the_log() {
    let site = Site::logged(OpServer::start(None), None, "debug").await;
    let url = site.op.create_incoming("alice", "9").await;
    let (s, v) = site.verify(&url).await;
    assert_eq!(s, 200, "{v}");
    let receipt = v["receipt"].as_str().unwrap().to_string();
    // A renewal (the token expires), a refusal, a broken signature.
    site.op.expire_tokens().await;
    site.op.set_received(&url, "20").await;
    assert_eq!(site.verify(&url).await.0, 200);
    site.op.break_signatures().await;
    let other = site.op.create_incoming("alice", "9").await;
    assert_eq!(site.verify(&other).await.0, 503);
    site.op.mend_signatures().await;
    let tokens = site.op.issued_tokens().await;
    assert!(tokens.len() >= 4, "{tokens:?}");
    let pem = std::fs::read_to_string(site.op.client_key_pem_path()).unwrap();
    let key_b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let log = site.tg.stderr();
    assert!(log.contains("DEBUG"), "not a debug log");
    for t in &tokens {
        assert!(!log.contains(t.as_str()), "grant token {t} in the log");
    }
    assert!(!log.contains(&key_b64), "the client key is in the log");
    assert!(!log.contains(&receipt), "the receipt is in the log");
    assert!(!log.contains(TEST_KEY), "the receipt key is in the log");
}

// Rules out: tollgate reading (or crediting) a URL the visitor chose on another
// server, another wallet's payment, another asset, or a resource not sold this way.
#[tokio::test]
async fn foreign_payments_other_wallets_and_assets_are_refused() {
    let site = Site::new(OpServer::start(None), None).await;
    let base = site.op.base().to_string();
    for foreign in [
        "https://evil.example/rs/incoming-payments/1".to_string(),
        format!("{base}/rs/outgoing-payments/1"),
        format!("{base}/rs/incoming-payments/a/../../_control/violations"),
        format!("{base}/rs/incoming-payments/1?x=1"),
        "ftp://127.0.0.1/x".to_string(),
        "not a url".to_string(),
    ] {
        let (s, v) = site.verify(&foreign).await;
        assert_eq!(
            (s, code(&v)),
            (400, "foreign_incoming_payment"),
            "{foreign}: {v}"
        );
    }
    let bobs = site.op.create_incoming("bob", "100").await;
    let (s, v) = site.verify(&bobs).await;
    assert_eq!((s, code(&v)), (403, "wrong_wallet"), "{v}");
    let euros = site
        .op
        .create_incoming_with(
            json!({"wallet": "alice", "value": "100", "assetCode": "EUR", "assetScale": 2}),
        )
        .await;
    let (s, v) = site.verify(&euros).await;
    assert_eq!((s, code(&v)), (400, "wrong_asset"), "{v}");
    let (s, v) = site
        .verify(&format!("{base}/rs/incoming-payments/nope"))
        .await;
    assert_eq!((s, code(&v)), (400, "unknown_incoming_payment"), "{v}");
    let good = site.op.create_incoming("alice", "100").await;
    let (s, v, _) = site
        .verify_body(json!({"incomingPayment": good, "resource": "/movies/x"}))
        .await;
    assert_eq!((s, code(&v)), (400, "not_wm_priced"), "{v}");
    let (s, v, _) = site.verify_body(json!({"incomingPayment": good})).await;
    assert_eq!((s, code(&v)), (400, "bad_request"), "{v}");
    // None of that consumed anything.
    assert_eq!(site.verify(&good).await.0, 200);
    site.op.assert_no_violations().await;
}

// Rules out: a refused signature, an expired grant, a slow or dead server being read
// as "paid" or as a client's mistake.
#[tokio::test]
async fn server_trouble_is_503_and_grants_are_renewed() {
    let site = Site::new(OpServer::start(None), None).await;
    let url = site.op.create_incoming("alice", "20").await;
    assert_eq!(site.verify(&url).await.0, 200);
    // The grant expires: tollgate renews it on the 401 and goes on.
    site.op.expire_tokens().await;
    assert_eq!(site.verify(&url).await.0, 200);
    assert_eq!(site.op.counters().await["grants"], 2);
    // The server refuses tollgate's signature: 503, never success.
    site.op.break_signatures().await;
    let (s, v, retry) = site
        .verify_body(json!({"incomingPayment": url, "resource": "/articles/a"}))
        .await;
    assert_eq!(
        (s, code(&v), retry.is_some()),
        (503, "open_payments_unavailable", true),
        "{v}"
    );
    site.op.mend_signatures().await;
    assert_eq!(site.verify(&url).await.0, 200);
    // Slower than the deadline: 503.
    site.op.set_delay_ms(6_000).await;
    let (s, v, retry) = site
        .verify_body(json!({"incomingPayment": url, "resource": "/articles/a"}))
        .await;
    assert_eq!((s, retry.is_some()), (503, true), "{v}");
    site.op.set_delay_ms(0).await;
    site.op.assert_no_violations().await;
    // Gone: 503.
    let url2 = site.op.create_incoming("alice", "20").await;
    drop(site.op);
    let r = site
        .http
        .post(site.tg.url("/_tollgate/wm/verify"))
        .json(&json!({"incomingPayment": url2, "resource": "/articles/a"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
}

// Rules out: https Open Payments servers being trusted without a root, and `ca_file`
// not being used.
#[tokio::test]
async fn https_servers_need_a_trusted_root() {
    let ca = TestCa::new();
    let op = OpServer::start(Some(&ca));
    let with_ca = op.wm_config("alice");
    let without: String = with_ca
        .lines()
        .filter(|l| !l.starts_with("ca_file"))
        .map(|l| format!("{l}\n"))
        .collect();
    let site = Site::new(op, Some(without)).await;
    let url = site.op.create_incoming("alice", "5").await;
    let (s, v) = site.verify(&url).await;
    assert_eq!((s, code(&v)), (503, "open_payments_unavailable"), "{v}");
    let Site { op, .. } = site;
    let site = Site::new(op, Some(with_ca)).await;
    let (s, v) = site.verify(&url).await;
    assert_eq!(s, 200, "{v}");
    site.op.assert_no_violations().await;
}
