//! The 0xbtcpay-compatible gateway on real parts: the real binary with its admin and
//! gateway listeners, anvil with Test 0xBTC, a real postback receiver on
//! 127.0.0.1:0 that verifies signatures, the seed's own curl command and its
//! browser polling JavaScript (in headless Chromium).

mod support;

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alloy::primitives::Address;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use support::chain::{Anvil, ONE_TOKEN};
use support::origin::Origin;
use support::{eventually, funded_chain, PaymentsConfig, TempDir, Tollgate, TEST_KEY};

const CHAIN_ID: u64 = 31337;
const POSTBACK_KEY: &str = "5f5e5d5c5b5a595857565554535251504f4e4d4c4b4a49484746454443424140";

/// One postback as the receiver saw it.
#[derive(Debug, Clone)]
struct Received {
    delivery: String,
    signature_ok: bool,
    body: Value,
}

/// A shop's postback endpoint on 127.0.0.1:0: answers each POST with the next
/// scripted status (then 200), and verifies `X-Tollgate-Signature`.
struct Receiver {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Received>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

#[derive(Clone)]
struct ReceiverState {
    seen: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<VecDeque<u16>>>,
}

impl Receiver {
    async fn start(script: &[u16]) -> Receiver {
        Self::start_on("127.0.0.1:0", script).await
    }

    async fn start_on(addr: &str, script: &[u16]) -> Receiver {
        let seen: Arc<Mutex<Vec<Received>>> = Arc::default();
        let state = ReceiverState {
            seen: seen.clone(),
            script: Arc::new(Mutex::new(script.iter().copied().collect())),
        };
        let app = Router::new()
            .route("/postback", post(receive))
            .route(
                "/redirect",
                post(|| async { (StatusCode::FOUND, [("location", "/postback")]) }),
            )
            .with_state(state);
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        });
        Receiver {
            addr,
            seen,
            stop: Some(tx),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn seen(&self) -> Vec<Received> {
        self.seen.lock().unwrap().clone()
    }

    /// Waits (bounded) until `n` postbacks arrived.
    async fn wait_for(&self, n: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let s = self.seen();
            if s.len() >= n {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "only {} postbacks arrived",
                s.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

async fn receive(State(st): State<ReceiverState>, headers: HeaderMap, body: String) -> StatusCode {
    let sig = headers
        .get("x-tollgate-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let (t, v1) = sig
        .split_once(",v1=")
        .map(|(t, v)| (t.trim_start_matches("t="), v))
        .unwrap_or(("", ""));
    let mut mac = Hmac::<Sha256>::new_from_slice(&hex::decode(POSTBACK_KEY).unwrap()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    let signature_ok = hex::decode(v1).is_ok_and(|v| mac.verify_slice(&v).is_ok());
    st.seen.lock().unwrap().push(Received {
        delivery: headers
            .get("x-tollgate-delivery")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string(),
        signature_ok,
        body: serde_json::from_str(&body).unwrap_or(Value::Null),
    });
    let code = st.script.lock().unwrap().pop_front().unwrap_or(200);
    StatusCode::from_u16(code).unwrap()
}

struct Gw {
    anvil: Anvil,
    token: Address,
    _origin: Origin,
    dir: TempDir,
    config: String,
    tg: Tollgate,
    http: reqwest::Client,
}

fn config(
    origin: SocketAddr,
    rpc: &str,
    token: Address,
    allow: &str,
    postback_allow: &str,
    extra: &str,
) -> String {
    let rest = format!(
        r#"
[admin]
listen = "127.0.0.1:0"
allow = [{allow}]
[gateway]
listen = "127.0.0.1:0"
[postback]
allow_networks = [{postback_allow}]
retry_base = "50ms"
{extra}
"#
    );
    PaymentsConfig {
        listen: "127.0.0.1:0",
        public_url: "http://tollgate.test",
        origin,
        rpc,
        dead_rpcs: &[],
        chain_id: CHAIN_ID,
        token,
        confirmations: 2,
        secrets_extra: "postback_key_env = \"TOLLGATE_POSTBACK_KEY\"",
        rest: &rest,
    }
    .render()
}

const ENV: &[(&str, &str)] = &[
    ("TOLLGATE_TEST_KEY", TEST_KEY),
    ("TOLLGATE_POSTBACK_KEY", POSTBACK_KEY),
];

impl Gw {
    async fn new(allow: &str, postback_allow: &str) -> Gw {
        Self::with(allow, postback_allow, "").await
    }

    async fn with(allow: &str, postback_allow: &str, extra: &str) -> Gw {
        Self::with_gateway(allow, postback_allow, extra, "").await
    }

    /// With `gateway_extra` lines in `[gateway]`.
    async fn with_gateway(
        allow: &str,
        postback_allow: &str,
        extra: &str,
        gateway_extra: &str,
    ) -> Gw {
        let (anvil, token) = funded_chain(CHAIN_ID).await;
        let origin = Origin::start();
        let config = config(
            origin.addr,
            anvil.rpc_url(),
            token,
            allow,
            postback_allow,
            extra,
        )
        .replace(
            "[gateway]\nlisten = \"127.0.0.1:0\"",
            &format!("[gateway]\nlisten = \"127.0.0.1:0\"\n{gateway_extra}"),
        );
        let dir = TempDir::new("gw");
        let tg = Tollgate::start_in(dir.path(), &config, ENV);
        Gw {
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
        self.tg = Tollgate::start_in(self.dir.path(), &self.config, ENV);
    }

    fn gateway(&self, path: &str) -> String {
        format!("http://{}{path}", self.tg.gateway.unwrap())
    }

    fn admin(&self, path: &str) -> String {
        format!("http://{}{path}", self.tg.admin.unwrap())
    }

    async fn rpc(&self, body: Value) -> (u16, Value) {
        self.rpc_raw(body.to_string().into_bytes()).await
    }

    async fn rpc_raw(&self, body: Vec<u8>) -> (u16, Value) {
        let r = self
            .http
            .post(self.gateway("/"))
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn start_payment(&self, params: Value) -> Value {
        let (status, v) = self
            .rpc(json!({"jsonrpc": "2.0", "id": 1, "method": "start_payment", "params": params}))
            .await;
        assert_eq!(status, 200, "{v}");
        assert!(v["error"].is_null(), "{v}");
        v["result"].clone()
    }

    async fn pay(&self, address: &str, amount: u128) {
        let to: Address = address.parse().unwrap();
        self.anvil.transfer(self.token, 1, to, amount).await;
    }

    async fn status(&self, id: &str) -> Value {
        self.http
            .get(self.gateway(&format!("/{id}/status.json")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Waits (bounded) until the admin listener shows the delivery for payment `id`
    /// with at least `attempts` attempts; returns it.
    async fn wait_delivery(&self, id: &str, attempts: u64) -> Value {
        eventually(
            &format!("{attempts} delivery attempts for {id}"),
            || async {
                let d: Value = self
                    .http
                    .get(self.admin("/deliveries"))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                d["deliveries"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|x| x["payment_id"] == id && x["attempts"].as_u64() >= Some(attempts))
                    .cloned()
                    .ok_or_else(|| d.to_string())
            },
        )
        .await
    }

    async fn wait_paid(&self, id: &str) -> Value {
        eventually("paid_at", || async {
            let s = self.status(id).await;
            if s["paid_at"].is_null() {
                Err(format!("{s}\n{}", self.tg.stderr()))
            } else {
                Ok(s)
            }
        })
        .await
    }
}

// Rules out: any drift from the seed's wire format (its own curl line, verbatim).
#[tokio::test]
async fn seed_curl_example_works_verbatim() {
    let gw = Gw::new("\"127.0.0.1/32\"", "\"127.0.0.1/32\"").await;
    let out = Command::new("curl")
        .args([
            "-s",
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-d",
            r#"{"jsonrpc":"2.0", "id":111, "method":"start_payment", "params":{"amount":"222.333"}}"#,
            &gw.gateway("/"),
        ])
        .output()
        .expect("curl");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["jsonrpc"], "2.0");
    assert_eq!(v["id"], 111);
    let r = &v["result"];
    let id = r["id"].as_str().unwrap();
    assert_eq!(id.len(), 16);
    assert!(
        id.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{id}"
    );
    assert_eq!(r["amount"], "222.333");
    assert!(r["address"].as_str().unwrap().starts_with("0x"));
    assert_eq!(r.as_object().unwrap().len(), 3);
    // status.json: exactly the seed's fields (plus tollgate's extras), nulls at first.
    let s = gw.status(id).await;
    assert_eq!(s["address"], r["address"]);
    assert_eq!(s["amount"], "222.333");
    assert!(s["seen_at"].is_null() && s["paid_at"].is_null() && s["tx_hash"].is_null());
    // Also through the public listener, under pay_prefix.
    let p: Value = gw
        .http
        .get(gw.tg.url(&format!("/_tollgate/{id}/status.json")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(p["address"], r["address"]);
    // Unknown ids are a JSON 404.
    let r = gw
        .http
        .get(gw.gateway("/0000000000000000/status.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.json::<Value>().await.unwrap()["code"].is_string());
}

// Rules out: a status endpoint the seed's browser code cannot poll (CORS), or one
// that reports progress differently from what the seed's messages expect.
#[tokio::test]
async fn seed_javascript_polling_loop_shows_progress() {
    let gw = Gw::new("\"127.0.0.1/32\"", "").await;
    let r = gw
        .start_payment(json!({"amount": "0.5", "data": {"order_id": "444"}}))
        .await;
    let id = r["id"].as_str().unwrap().to_string();
    let address = r["address"].as_str().unwrap().to_string();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/seed_poll.mjs");
    let mut cmd = Command::new("node");
    cmd.arg(&script)
        .args([gw.gateway(""), id.clone()])
        .current_dir(script.parent().unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd.spawn().expect("node");
    let pid = child.id();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let next = |rx: &std::sync::mpsc::Receiver<String>| {
        rx.recv_timeout(Duration::from_secs(90))
            .expect("node output")
    };
    let mut messages = Vec::new();
    let first = next(&rx);
    assert_eq!(
        first,
        format!("MESSAGE Please send 0.5 0xBTC to {address}.")
    );
    messages.push(first);
    gw.pay(&address, ONE_TOKEN / 2).await; // one confirmation of two
    let detected = next(&rx);
    assert_eq!(detected, "MESSAGE Payment detected! Please wait...");
    messages.push(detected);
    gw.anvil.mine(1).await;
    let done = next(&rx);
    assert_eq!(done, "MESSAGE Payment complete!");
    let status = child.wait().unwrap();
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pid}")])
        .status();
    assert!(status.success());
}

// Rules out: anyone outside the allowlist creating payments (or a missing token passing).
#[tokio::test]
async fn allowlist_and_token_guard_start_payment() {
    let gw = Gw::with("\"10.0.0.0/8\"", "", "").await;
    let (status, v) = gw
        .rpc(json!({"jsonrpc":"2.0","id":1,"method":"start_payment","params":{"amount":"1"}}))
        .await;
    assert_eq!(status, 403, "{v}");
    let r = gw.http.get(gw.admin("/deliveries")).send().await.unwrap();
    assert_eq!(r.status(), 403);
    // status.json on the gateway stays public.
    let r = gw
        .http
        .get(gw.gateway("/0123456789abcdef/status.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    drop(gw);

    // With a bearer token configured, the allowlisted caller needs it too.
    let mut env = ENV.to_vec();
    env.push(("TOLLGATE_ADMIN_TOKEN", "s3cret-admin-token"));
    let anvil = Anvil::start(CHAIN_ID);
    let token = anvil.deploy_token().await;
    let origin = Origin::start();
    let cfg = config(
        origin.addr,
        anvil.rpc_url(),
        token,
        "\"127.0.0.1/32\"",
        "",
        "",
    )
    .replace(
        "allow = [\"127.0.0.1/32\"]",
        "allow = [\"127.0.0.1/32\"]\ntoken_env = \"TOLLGATE_ADMIN_TOKEN\"",
    );
    let tg = Tollgate::start_with_env(&cfg, &env);
    let http = reqwest::Client::new();
    let url = format!("http://{}/", tg.gateway.unwrap());
    let body = json!({"jsonrpc":"2.0","id":1,"method":"start_payment","params":{"amount":"1"}});
    let r = http.post(&url).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .post(&url)
        .bearer_auth("wrong")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .post(&url)
        .bearer_auth("s3cret-admin-token")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(!tg.stderr().contains("s3cret-admin-token"));
}

// Rules out: non-standard or missing JSON-RPC errors, and unbounded bodies.
#[tokio::test]
async fn json_rpc_errors_use_standard_codes() {
    let gw = Gw::new("\"127.0.0.1/32\"", "").await;
    let code = |v: &Value| v["error"]["code"].as_i64().unwrap();
    let (s, v) = gw
        .rpc_raw(b"{\"jsonrpc\": \"2.0\", \"id\": 1,".to_vec())
        .await;
    assert_eq!((s, code(&v), v["id"].clone()), (200, -32700, Value::Null));
    let (_, v) = gw
        .rpc(json!({"jsonrpc": "1.0", "id": 5, "method": "start_payment"}))
        .await;
    assert_eq!((code(&v), v["id"].clone()), (-32600, json!(5)));
    let (_, v) = gw.rpc(json!("start_payment")).await;
    assert_eq!(code(&v), -32600);
    let (_, v) = gw
        .rpc(json!({"jsonrpc": "2.0", "id": "a", "method": "stop_payment"}))
        .await;
    assert_eq!((code(&v), v["id"].clone()), (-32601, json!("a")));
    for (params, field) in [
        (json!({"amount": 222.333}), "amount"),
        (json!({"amount": "-1"}), "amount"),
        (json!({"amount": "0"}), "amount"),
        (json!({"amount": "0.000000001"}), "amount"),
        (json!({}), "amount"),
        (
            json!({"amount": "1", "postback_url": "ftp://x"}),
            "postback_url",
        ),
        (json!(["1"]), "params"),
    ] {
        let (_, v) = gw
            .rpc(json!({"jsonrpc": "2.0", "id": 9, "method": "start_payment", "params": params}))
            .await;
        assert_eq!(code(&v), -32602, "{params}: {v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(field),
            "{v}"
        );
    }
    // Batches are answered per JSON-RPC 2.0; notifications get no answer.
    let (_, v) = gw
        .rpc(json!([
            {"jsonrpc": "2.0", "id": 1, "method": "start_payment", "params": {"amount": "1"}},
            {"jsonrpc": "2.0", "id": 2, "method": "nope"},
            {"jsonrpc": "2.0", "method": "nope"},
        ]))
        .await;
    let answers = v.as_array().unwrap();
    assert_eq!(answers.len(), 2);
    assert_eq!(answers[0]["id"], 1);
    assert!(answers[0]["result"]["address"].is_string());
    assert_eq!(
        (answers[1]["id"].clone(), code(&answers[1])),
        (json!(2), -32601)
    );
    let (_, v) = gw.rpc(json!([])).await;
    assert_eq!(code(&v), -32600);
    // Oversized bodies are refused before parsing.
    let big = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"start_payment\",\"params\":{{\"amount\":\"1\",\"data\":\"{}\"}}}}",
        "x".repeat(100_000)
    );
    let (s, v) = gw.rpc_raw(big.into_bytes()).await;
    assert_eq!((s, code(&v)), (413, -32600));
}

// Rules out: a shop's server (or whoever got onto the allowlist) creating payments
// without bound: `[gateway] start_rate` per client, 429 with Retry-After.
#[tokio::test]
async fn start_payment_has_a_per_client_budget() {
    let gw = Gw::with_gateway("\"127.0.0.1/32\"", "", "", "start_rate = \"2/min\"").await;
    let call = |id: u32| json!({"jsonrpc": "2.0", "id": id, "method": "start_payment", "params": {"amount": "1"}});
    for id in 0..2 {
        let (s, v) = gw.rpc(call(id)).await;
        assert_eq!(s, 200, "{v}");
        assert!(v["result"]["address"].is_string(), "{v}");
    }
    let r = gw
        .http
        .post(gw.gateway("/"))
        .json(&call(3))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], -32005, "{v}");
    assert_eq!(v["id"], 3);
    // In a batch: each start_payment is refused on its own; other answers stand.
    let (s, v) = gw
        .rpc(json!([call(4), {"jsonrpc": "2.0", "id": 5, "method": "nope"}]))
        .await;
    assert_eq!(s, 200);
    assert_eq!(v[0]["error"]["code"], -32005, "{v}");
    assert_eq!(v[1]["error"]["code"], -32601, "{v}");
    // Nothing was written for the refused calls.
    let listed = tollgate_addresses(&gw);
    assert_eq!(listed, 2, "payments in the store");
}

/// How many payments `tollgate addresses --used` lists.
fn tollgate_addresses(gw: &Gw) -> usize {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["addresses", "--used", "--config", "tollgate.toml"])
        .current_dir(gw.dir.path())
        .envs(ENV.iter().copied())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).lines().count() - 1
}

// Rules out: postback targets that reach internal services (SSRF).
#[tokio::test]
async fn ssrf_postback_targets_are_refused() {
    let gw = Gw::new("\"127.0.0.1/32\"", "").await;
    for url in [
        "http://127.0.0.1:9/postback",
        "http://localhost/postback",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/x",
        "http://192.168.1.1/x",
        "http://[::1]/x",
        "http://[::ffff:127.0.0.1]/x",
        "http://0.0.0.0/x",
        "http://user:pw@shop.example/x",
        "file:///etc/passwd",
        "gopher://127.0.0.1/",
    ] {
        let (_, v) = gw
            .rpc(json!({"jsonrpc": "2.0", "id": 1, "method": "start_payment",
                "params": {"amount": "1", "postback_url": url}}))
            .await;
        assert_eq!(v["error"]["code"], -32602, "{url}: {v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("postback_url"),
            "{v}"
        );
    }
}

// Rules out: retries under new ids, unsigned postbacks, lost failures, followed redirects.
#[tokio::test]
async fn failing_receiver_gets_the_same_signed_delivery_until_it_succeeds() {
    let rx = Receiver::start(&[500, 503, 502]).await;
    let gw = Gw::new("\"127.0.0.1/32\"", "\"127.0.0.1/32\"").await;
    let r = gw
        .start_payment(json!({"amount": "0.5", "data": {"order_id": "444"}, "postback_url": rx.url("/postback")}))
        .await;
    let id = r["id"].as_str().unwrap();
    gw.pay(r["address"].as_str().unwrap(), ONE_TOKEN / 2).await;
    gw.anvil.mine(1).await;
    let status = gw.wait_paid(id).await;
    let seen = rx.wait_for(4).await;
    assert_eq!(seen.len(), 4);
    let first = &seen[0];
    assert!(first.delivery.starts_with("dlv_"));
    for s in &seen {
        assert_eq!(
            s.delivery, first.delivery,
            "delivery id changed between attempts"
        );
        assert!(s.signature_ok, "bad signature");
        assert_eq!(s.body, first.body);
    }
    assert_eq!(first.body["id"], id);
    assert_eq!(first.body["data"], json!({"order_id": "444"}));
    assert_eq!(first.body["tx_hash"], status["tx_hash"]);
    assert_eq!(first.body["amount"], "0.5");
    assert_eq!(first.body["paid_at"], status["paid_at"]);
    // The admin listener shows the history and can redeliver.
    let d = &gw.wait_delivery(id, 4).await;
    assert_eq!(d["id"], first.delivery.as_str());
    assert_eq!(d["attempts"], 4);
    assert!(d["delivered_at"].is_u64());
    let r = gw
        .http
        .post(gw.admin(&format!("/deliveries/{}/redeliver", first.delivery)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let seen = rx.wait_for(5).await;
    assert_eq!(seen[4].delivery, first.delivery);
    let r = gw
        .http
        .post(gw.admin("/deliveries/dlv_nope/redeliver"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // A redirect is a failure, never followed.
    let r = gw
        .start_payment(json!({"amount": "0.25", "postback_url": rx.url("/redirect")}))
        .await;
    gw.pay(r["address"].as_str().unwrap(), ONE_TOKEN / 4).await;
    gw.anvil.mine(1).await;
    gw.wait_paid(r["id"].as_str().unwrap()).await;
    let m = gw.wait_delivery(r["id"].as_str().unwrap(), 2).await;
    assert!(m["delivered_at"].is_null());
    assert!(m["last_error"].as_str().unwrap().contains("302"), "{m}");
    assert_eq!(rx.seen().len(), 5, "the redirect target must not be hit");
}

// Rules out: a paid payment's postback lost to a crash.
#[tokio::test]
async fn pending_postback_survives_kill_9_and_restart() {
    // The receiver's port is reserved now; nothing listens on it until after the crash.
    let reserved = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = reserved.local_addr().unwrap().port();
    drop(reserved);
    let url = format!("http://127.0.0.1:{port}/postback");
    let mut gw = Gw::new("\"127.0.0.1/32\"", "\"127.0.0.1/32\"").await;
    let r = gw
        .start_payment(json!({"amount": "0.5", "postback_url": url}))
        .await;
    let id = r["id"].as_str().unwrap().to_string();
    gw.pay(r["address"].as_str().unwrap(), ONE_TOKEN / 2).await;
    gw.anvil.mine(1).await;
    gw.wait_paid(&id).await;
    // It has failed at least once (connection refused) before the crash.
    let m = gw.wait_delivery(&id, 1).await;
    assert!(m["delivered_at"].is_null());
    gw.tg.kill9();
    let rx = Receiver::start_on(&format!("127.0.0.1:{port}"), &[]).await;
    gw.restart();
    let seen = rx.wait_for(1).await;
    assert_eq!(seen[0].body["id"], id.as_str());
    assert!(seen[0].signature_ok);
    assert_eq!(seen[0].delivery, format!("dlv_{id}"));
}

// Rules out: two shops' concurrent checkouts sharing a receiving address.
#[tokio::test]
async fn concurrent_start_payments_never_share_an_address() {
    let gw = Gw::new("\"127.0.0.1/32\"", "").await;
    let n = 24;
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let http = gw.http.clone();
            let url = gw.gateway("/");
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                let v: Value = http
                    .post(url)
                    .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "start_payment", "params": {"amount": "1"}}))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                (v["result"]["id"].as_str().unwrap().to_string(), v["result"]["address"].as_str().unwrap().to_string())
            })
        })
        .collect();
    let mut ids = std::collections::HashSet::new();
    let mut addrs = std::collections::HashSet::new();
    for t in tasks {
        let (id, a) = t.await.unwrap();
        ids.insert(id);
        addrs.insert(a);
    }
    assert_eq!((ids.len(), addrs.len()), (n, n));
}
