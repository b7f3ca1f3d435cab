//! No secret reaches a log line or an error body: a real receipt, a claim token and
//! the admin bearer token are driven, in valid and malformed requests, through every
//! listener (public, admin, gateway) of the real binary with debug logging, and then
//! looked for in everything tollgate wrote and answered.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use alloy::primitives::Address;
use serde_json::{json, Value};
use support::origin::Origin;
use support::payer::Payer;
use support::{eventually, funded_chain, PaymentsConfig, TempDir, Tollgate, TEST_KEY};

const CHAIN_ID: u64 = 31337;
const ADMIN_TOKEN: &str = "adm1n-T0ken-4f9c2e7d1b8a6e3c5d0f";
const POSTBACK_KEY: &str = "aa0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1eaa";

/// Writes `raw` to `addr` and reads whatever comes back until the server closes or
/// goes quiet (a malformed request may get no answer at all).
fn exchange(addr: SocketAddr, raw: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.write_all(raw);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

// Rules out: a receipt, claim token or admin token reaching the log (pingora's
// "invalid request" lines carry the raw head; debug lines carry header maps) or an
// error body, on any listener.
#[tokio::test]
async fn secrets_never_reach_logs_or_error_bodies() {
    let (anvil, token) = funded_chain(CHAIN_ID).await;
    let origin = Origin::start();
    let rest = r#"
[payments]
claim_rate = "1000/min"
[admin]
listen = "127.0.0.1:0"
allow = ["127.0.0.1/32"]
token_env = "TOLLGATE_ADMIN_TOKEN"
[gateway]
listen = "127.0.0.1:0"
[[route]]
path = "/movies/*"
price = "0.5"
"#;
    let config = PaymentsConfig {
        listen: "127.0.0.1:0",
        public_url: "http://tollgate.test",
        origin: origin.addr,
        rpc: anvil.rpc_url(),
        dead_rpcs: &[],
        chain_id: CHAIN_ID,
        token,
        confirmations: 1,
        secrets_extra: "postback_key_env = \"TOLLGATE_POSTBACK_KEY\"",
        rest,
    }
    .render();
    let dir = TempDir::new("redact");
    let tg = Tollgate::start_in(
        dir.path(),
        &config,
        &[
            ("TOLLGATE_TEST_KEY", TEST_KEY),
            ("TOLLGATE_POSTBACK_KEY", POSTBACK_KEY),
            ("TOLLGATE_ADMIN_TOKEN", ADMIN_TOKEN),
            ("RUST_LOG", "debug"),
        ],
    );
    let http = reqwest::Client::new();
    let public = |p: &str| tg.url(p);

    // A real receipt, bought on chain.
    let claim = Payer::new().claim(&tg, "/movies/x").await;
    let pid = claim["payment_id"].as_str().unwrap().to_string();
    let claim_token = claim["claim_token"].as_str().unwrap().to_string();
    let to: Address = claim["address"].as_str().unwrap().parse().unwrap();
    anvil
        .transfer(token, 1, to, support::chain::ONE_TOKEN / 2)
        .await;
    let receipt = eventually("a receipt", || async {
        let r = http
            .post(public(&format!("/_tollgate/{pid}/receipt")))
            .json(&json!({ "claim_token": claim_token }))
            .send()
            .await
            .unwrap();
        if r.status() == 200 {
            let v: Value = r.json().await.unwrap();
            Ok(v["receipt"].as_str().unwrap().to_string())
        } else {
            Err(r.status().to_string())
        }
    })
    .await;
    assert!(receipt.starts_with("tg1."));

    let listeners = [
        ("public", tg.addr),
        ("admin", tg.admin.unwrap()),
        ("gateway", tg.gateway.unwrap()),
    ];
    let mut answers: Vec<(String, Vec<u8>)> = Vec::new();
    for (name, addr) in listeners {
        let secrets_head = format!(
            "Authorization: Tollgate {receipt}\r\nCookie: a=1; tollgate_receipt={receipt}; tollgate_claim_{pid}={claim_token}\r\nProxy-Authorization: Bearer {ADMIN_TOKEN}\r\nX-Note: {receipt}\r\n"
        );
        let malformed: Vec<Vec<u8>> = vec![
            // A header line without a colon.
            format!("GET /movies/x HTTP/1.1\r\nHost: t\r\n{secrets_head}this is not a header\r\n\r\n")
                .into_bytes(),
            // A control byte in a header value.
            format!("GET / HTTP/1.1\r\nHost: t\r\n{secrets_head}X-Bad: a\x01b\r\n\r\n").into_bytes(),
            // A bearer token, then a broken request line.
            format!("POST / HTTP/1.1\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\nHost t\r\n\r\n")
                .into_bytes(),
            // The secrets in the request line itself.
            format!("GET /{receipt} HT TP/9\r\n\r\n").into_bytes(),
            // A body that lies about its length.
            format!("POST / HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\nContent-Length: zz\r\n\r\n")
                .into_bytes(),
        ];
        for raw in malformed {
            answers.push((format!("{name} malformed"), exchange(addr, &raw)));
        }
        // Well-formed requests carrying the secrets, including JSON-RPC calls that put
        // them where error messages could echo them.
        for body in [
            json!({"jsonrpc": "2.0", "id": 1, "method": format!("Bearer {ADMIN_TOKEN}"), "params": {}}),
            json!({"jsonrpc": "2.0", "id": 2, "method": receipt, "params": {}}),
            json!({"jsonrpc": "2.0", "id": 3, "method": "start_payment", "params": {"amount": receipt}}),
            json!({"jsonrpc": "2.0", "id": 4, "method": "start_payment", "params": {"amount": "1", "postback_url": format!("https://u:{ADMIN_TOKEN}@example.com/{receipt}")}}),
            json!({"jsonrpc": "2.0", "id": 5, "method": "start_payment", "params": {"amount": "1"}}),
        ] {
            let r = http
                .post(format!("http://{addr}/"))
                .bearer_auth(ADMIN_TOKEN)
                .header("Cookie", format!("tollgate_receipt={receipt}"))
                .json(&body)
                .send()
                .await
                .unwrap();
            if r.headers().get("x-origin").is_none() {
                answers.push((
                    format!("{name} POST / {body}"),
                    r.bytes().await.unwrap().to_vec(),
                ));
            }
        }
        for path in [
            "/movies/x".to_string(),
            format!("/movies/x?r={receipt}"),
            "/deliveries".to_string(),
            format!("/_tollgate/{pid}/receipt"),
            format!("/_tollgate/contract/{receipt}"),
        ] {
            let r = http
                .get(format!("http://{addr}{path}"))
                .header("Authorization", format!("Tollgate {receipt}"))
                .header("Cookie", format!("tollgate_receipt={receipt}"))
                .send()
                .await
                .unwrap();
            if r.headers().get("x-origin").is_none() {
                answers.push((
                    format!("{name} GET {path}"),
                    r.bytes().await.unwrap().to_vec(),
                ));
            }
        }
        let r = http
            .post(format!("http://{addr}/_tollgate/pay"))
            .json(&json!({"contract": receipt, "claim_token": claim_token}))
            .send()
            .await
            .unwrap();
        answers.push((format!("{name} pay"), r.bytes().await.unwrap().to_vec()));
    }
    // The receipt still works (the requests above really carried it).
    let r = http
        .get(public("/movies/x"))
        .header("Authorization", format!("Tollgate {receipt}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let receipt_mac = receipt.rsplit('.').next().unwrap().to_string();
    let secrets = [
        ("receipt", receipt.as_str()),
        ("receipt MAC", receipt_mac.as_str()),
        ("admin token", ADMIN_TOKEN),
        ("claim token", claim_token.as_str()),
        ("receipt key", TEST_KEY),
        ("postback key", POSTBACK_KEY),
    ];
    // What tollgate logged, at debug level, across all of it.
    drop(tg);
    let log = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("stderr-"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect::<String>();
    for (name, secret) in secrets {
        if let Some(at) = log.find(secret) {
            let line = log[..at].rsplit('\n').next().unwrap_or("");
            panic!("the {name} is in the log: {line}…");
        }
    }
    // The malformed requests were logged (redacted): the test saw the dangerous path.
    assert!(
        log.contains("[redacted]"),
        "the malformed requests left no trace in the log:\n{log}"
    );
    // What tollgate answered itself: no error body echoes a secret. (The receipt
    // endpoint's answer is where a receipt belongs, and none of the requests above got
    // one; what the origin answered for a proxied request is the origin's business.)
    for (what, body) in &answers {
        let text = String::from_utf8_lossy(body);
        for (name, secret) in secrets {
            assert!(
                !text.contains(secret),
                "the {name} is in the answer to {what}:\n{text}"
            );
        }
    }
}
