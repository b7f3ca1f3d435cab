//! `tollgate fetch` end to end: the real binary as the server and as the paying
//! client, anvil from npm with the Test 0xBTC token, a real origin. Each test says
//! which fault or attack it rules out. Transfers are counted from the token's
//! Transfer logs, "nothing sent" from the payer's nonce.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use alloy::primitives::Address;
use serde_json::{json, Value};
use support::chain::{address_topic, Anvil};
use support::origin::Origin;
use support::{browser_tollgate, eventually, funded_chain, TempDir, Tollgate};

const CHAIN_ID: u64 = 31337;

/// Chain, token, origin, tollgate (its `public_url` is where it listens, so the URLs
/// in its 402s reach it), and a directory for the client's wallet and outputs.
struct World {
    anvil: Anvil,
    token: Address,
    origin: Origin,
    tg: Tollgate,
    dir: TempDir,
    payer: Address,
}

const ROUTES: &str = r#"
[payments]
expiry = "30m"
access_ttl = "1d"
claim_rate = "1000/min"
[[route]]
path = "/movies/*"
price = "0.5"
summary = "Movie {path}"
[[route]]
path = "/series/*"
price = "0.25"
scope = "route"
[[route]]
path = "/cheap/*"
price = "0.01"
confirmations = 0
"#;

impl World {
    async fn new(confirmations: u64) -> World {
        let (anvil, token) = funded_chain(CHAIN_ID).await;
        let origin = Origin::start();
        let tg = browser_tollgate(&anvil, token, origin.addr, confirmations, ROUTES);
        let payer = anvil.dev_account(1).await;
        World {
            anvil,
            token,
            origin,
            tg,
            dir: TempDir::new("fetch"),
            payer,
        }
    }

    fn url(&self, path: &str) -> String {
        self.tg.url(path)
    }

    fn wallet(&self) -> PathBuf {
        self.dir.path().join("wallet.json")
    }

    fn key(&self) -> String {
        self.anvil.dev_private_key(1).to_string()
    }

    /// `tollgate fetch URL --wallet W --rpc R ARGS…` with the payer's key; waits.
    fn fetch(&self, path: &str, args: &[&str]) -> Run {
        let out = self.command(path, args).output().unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `tollgate fetch URL --wallet W --rpc R --token T ARGS…` (the test token is
    /// not mainnet 0xBTC: it must be trusted by name).
    fn command(&self, path: &str, args: &[&str]) -> Command {
        let mut cmd = self.untrusting_command(&self.url(path), args);
        cmd.args(["--token", &self.token.to_string()]);
        cmd
    }

    /// As [`World::command`] for any URL, without `--token`.
    fn untrusting_command(&self, url: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tollgate"));
        cmd.arg("fetch")
            .arg(url)
            .arg("--wallet")
            .arg(self.wallet())
            .args(["--rpc", self.anvil.rpc_url()])
            .args(args)
            .env("TOLLGATE_PAYER_KEY", self.key())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null());
        cmd
    }

    /// Starts a fetch in the background, its stderr in `stderr`.
    fn spawn_fetch(&self, path: &str, args: &[&str], stderr: &Path) -> Child {
        self.command(path, args)
            .stdout(std::fs::File::create(stderr.with_extension("out")).unwrap())
            .stderr(std::fs::File::create(stderr).unwrap())
            .spawn()
            .unwrap()
    }

    /// How many Transfer logs of the token come from the payer.
    async fn transfers_from_payer(&self) -> usize {
        let logs = self.anvil.transfer_logs(self.token, 0, None).await;
        let from = json!(address_topic(self.payer))
            .as_str()
            .unwrap()
            .to_string();
        logs.iter()
            .filter(|l| l["topics"][1].as_str() == Some(from.as_str()))
            .count()
    }

    async fn nonce(&self) -> u64 {
        let v = self
            .anvil
            .rpc("eth_getTransactionCount", json!([self.payer, "pending"]))
            .await;
        support::chain::parse_u64(&v)
    }

    fn wallet_json(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.wallet()).unwrap()).unwrap()
    }

    /// Neither the key nor a whole receipt in any output or file the client wrote.
    fn assert_no_secrets(&self, texts: &[&str]) {
        let key = self.key();
        let bare = key.trim_start_matches("0x");
        let wallet = std::fs::read_to_string(self.wallet()).unwrap_or_default();
        assert!(!wallet.contains(bare), "the key is in the wallet file");
        for t in texts {
            assert!(!t.contains(bare), "the key was printed:\n{t}");
            assert!(!t.contains("tg1."), "a receipt was printed:\n{t}");
        }
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// The origin's echo of a request that reached it.
fn echoed(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not the origin's echo ({e}): {body}"))
}

/// Rules out paying twice for what the wallet already holds, and the key or a
/// receipt leaking: pay once (one transfer on chain), then replay (none more).
#[tokio::test]
async fn pays_once_then_replays_from_the_wallet() {
    let w = World::new(1).await;
    let out = w.dir.path().join("movie.json");
    let first = w.fetch(
        "/movies/x.html",
        &["--max", "1", "--json", "-o", out.to_str().unwrap()],
    );
    assert_eq!(first.code, 0, "{first}");
    let summary: Value = serde_json::from_str(first.stdout.trim()).expect("one JSON summary");
    assert_eq!(summary["ok"], true, "{first}");
    assert_eq!(summary["how"], "paid");
    assert_eq!(summary["status"], 200);
    assert_eq!(summary["payment"]["amount"], "0.5");
    assert_eq!(summary["payment"]["amount_base_units"], "50000000");
    assert!(summary["payment"]["tx_hash"]
        .as_str()
        .unwrap()
        .starts_with("0x"));
    assert_eq!(summary["receipt"]["scope"], "/movies/x.html");
    assert_eq!(
        summary["receipt"]["contract_hash"],
        summary["payment"]["contract_hash"]
    );
    assert!(summary.get("body").is_none(), "the body went to -o");
    let body = std::fs::read_to_string(&out).unwrap();
    assert_eq!(echoed(&body)["target"], "/movies/x.html");
    for step in [
        "costs 0.5 0xBTC",
        "claimed payment",
        "sent transfer",
        "receipt stored",
    ] {
        assert!(first.stderr.contains(step), "no {step:?} in:\n{first}");
    }
    assert_eq!(w.transfers_from_payer().await, 1);
    let nonce = w.nonce().await;

    // The wallet file: private, holding the receipt and no payment in progress.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(w.wallet()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "wallet mode {mode:o}");
    let wallet = w.wallet_json();
    assert_eq!(wallet["receipts"].as_object().unwrap().len(), 1);
    assert!(wallet["pending"].as_object().unwrap().is_empty());

    let second = w.fetch("/movies/x.html", &["--max", "1"]);
    assert_eq!(second.code, 0, "{second}");
    assert_eq!(echoed(&second.stdout)["target"], "/movies/x.html");
    assert!(second.stderr.contains("replayed"), "{second}");
    assert_eq!(w.transfers_from_payer().await, 1, "a replay paid again");
    assert_eq!(w.nonce().await, nonce);

    // Without --max too: a replay pays nothing, so it needs no permission.
    let third = w.fetch("/movies/x.html", &["--json"]);
    assert_eq!(third.code, 0, "{third}");
    let summary: Value = serde_json::from_str(third.stdout.trim()).unwrap();
    assert_eq!(summary["how"], "replayed");
    assert_eq!(summary["paid"], false);
    assert_eq!(
        echoed(summary["body"].as_str().unwrap())["target"],
        "/movies/x.html"
    );
    assert_eq!(w.transfers_from_payer().await, 1);
    w.assert_no_secrets(&[
        &first.stdout,
        &first.stderr,
        &second.stdout,
        &second.stderr,
        &third.stdout,
        &third.stderr,
        &body,
    ]);
}

/// Rules out paying without consent: a price above `--max`, or no `--max`, is
/// refused with its own exit code before anything is claimed or sent.
#[tokio::test]
async fn max_below_the_price_refuses_and_sends_nothing() {
    let w = World::new(1).await;
    let nonce = w.nonce().await;
    let low = w.fetch("/movies/y.html", &["--max", "0.49999999", "--json"]);
    assert_eq!(low.code, 3, "{low}");
    let v: Value = serde_json::from_str(low.stdout.trim()).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["code"], "price_above_max");
    assert_eq!(v["exit_code"], 3);
    assert_eq!(v["price"], "0.5");
    assert_eq!(v["max"], "0.49999999");
    assert!(low.stderr.contains("above --max"), "{low}");

    let none = w.fetch("/movies/y.html", &[]);
    assert_eq!(none.code, 3, "{none}");
    assert!(none.stderr.contains("no --max"), "{none}");
    assert!(none.stdout.is_empty(), "{none}");

    let bad = w.fetch("/movies/y.html", &["--max", "0.5e1"]);
    assert_eq!(bad.code, 1, "{bad}");

    assert_eq!(w.nonce().await, nonce, "a transaction was sent");
    assert_eq!(w.transfers_from_payer().await, 0);
    let wallet = std::fs::read_to_string(w.wallet()).unwrap_or_default();
    assert!(
        !wallet.contains("claim_token"),
        "something was claimed: {wallet}"
    );
    assert!(w.origin.hits().is_empty(), "the origin was reached");
    w.assert_no_secrets(&[&low.stdout, &low.stderr, &none.stderr]);
}

/// Rules out a site naming a token the payer did not agree to pay in: any ERC-20
/// the payer holds could be named (with decimals of the site's choosing) and
/// `--max`, in 0xBTC, would bound nothing. Without `--token` only mainnet 0xBTC is
/// paid; a trusted token whose own `decimals()` differ from the contract's (here a
/// tollgate that counts the 8-decimal token in 10) is refused too. Nothing is
/// claimed or sent either way.
#[tokio::test]
async fn an_untrusted_token_or_wrong_decimals_is_refused() {
    let w = World::new(1).await;
    let nonce = w.nonce().await;
    let run = |cmd: &mut Command| {
        let out = cmd.output().unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    };
    let untrusted = run(&mut w.untrusting_command(&w.url("/movies/t.html"), &["--max", "1"]));
    assert_eq!(untrusted.code, 7, "{untrusted}");
    assert!(untrusted.stderr.contains("--token"), "{untrusted}");

    let listen = format!("127.0.0.1:{}", support::free_port());
    let public_url = format!("http://{listen}");
    let config = support::PaymentsConfig {
        listen: &listen,
        public_url: &public_url,
        origin: w.origin.addr,
        rpc: w.anvil.rpc_url(),
        dead_rpcs: &[],
        chain_id: CHAIN_ID,
        token: w.token,
        confirmations: 1,
        secrets_extra: "",
        rest: ROUTES,
    }
    .render()
    .replace("[chain]\n", "[chain]\ndecimals = 10\n");
    assert!(config.contains("decimals = 10"), "{config}");
    let dir = TempDir::new("fetch-decimals");
    let tg = Tollgate::start_in(
        dir.path(),
        &config,
        &[("TOLLGATE_TEST_KEY", support::TEST_KEY)],
    );
    let token = w.token.to_string();
    let wrong = run(&mut w.untrusting_command(
        &tg.url("/movies/t.html"),
        &["--max", "1", "--token", &token],
    ));
    assert_eq!(wrong.code, 7, "{wrong}");
    assert!(wrong.stderr.contains("decimals"), "{wrong}");

    assert_eq!(w.nonce().await, nonce, "a transaction was sent");
    assert_eq!(w.transfers_from_payer().await, 0);
    let wallet = std::fs::read_to_string(w.wallet()).unwrap_or_default();
    assert!(!wallet.contains("claim_token"), "claimed: {wallet}");
}

/// Rules out paying terms altered on the way: a man in the middle serves the
/// contract with a lower amount under the genuine hash; the client refuses before
/// claiming (the genuine contract stays unclaimed) or sending anything.
#[tokio::test]
async fn a_tampered_contract_is_refused() {
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    use axum::routing::get;

    let w = World::new(1).await;
    let http = reqwest::Client::new();
    let real = http.get(w.url("/movies/z.html")).send().await.unwrap();
    assert_eq!(real.status(), 402);
    let header = |n: &str| real.headers()[n].to_str().unwrap().to_string();
    let (hash, pay_url, contract_url) = (
        header("x-taler-contract-hash"),
        header("x-taler-pay-url"),
        header("x-taler-contract-url"),
    );
    let mut terms: Value = http
        .get(&contract_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    terms["amount"] = json!("0.05");
    let token = contract_url.rsplit('/').next().unwrap().to_string();
    let stub = support::background_server::BackgroundServer::start(move || {
        let terms = terms.clone();
        let (hash, pay_url, token) = (hash.clone(), pay_url.clone(), token.clone());
        axum::Router::new()
            .route(
                "/movies/z.html",
                get(move |h: HeaderMap| {
                    let (hash, pay_url, token) = (hash.clone(), pay_url.clone(), token.clone());
                    async move {
                        let host = h["host"].to_str().unwrap().to_string();
                        (
                            StatusCode::PAYMENT_REQUIRED,
                            [
                                ("x-taler-contract-url", format!("http://{host}/c/{token}")),
                                ("x-taler-contract-hash", hash),
                                ("x-taler-pay-url", pay_url),
                            ],
                            "pay up",
                        )
                            .into_response()
                    }
                }),
            )
            .route(
                "/c/{token}",
                get(move || async move { axum::Json(terms.clone()) }),
            )
    });
    let nonce = w.nonce().await;
    let mut cmd = w.command("/", &[]);
    let mut args: Vec<std::ffi::OsString> = cmd.get_args().map(|a| a.to_owned()).collect();
    args[1] = format!("http://{}/movies/z.html", stub.addr).into();
    args.extend(["--max".into(), "1".into()]);
    cmd = Command::new(env!("CARGO_BIN_EXE_tollgate"));
    cmd.args(&args)
        .env("TOLLGATE_PAYER_KEY", w.key())
        .env("RUST_LOG", "warn");
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(7), "{stderr}");
    assert!(stderr.contains("contract hash mismatch"), "{stderr}");
    assert_eq!(w.nonce().await, nonce, "a transaction was sent");
    // The genuine contract was never claimed: a first claim still gets 201.
    let claim = http
        .post(w.url("/_tollgate/pay"))
        .json(&json!({ "contract": contract_url.rsplit('/').next().unwrap() }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        claim.status(),
        201,
        "the client claimed a tampered contract"
    );
}

/// Rules out paying twice after a crash: kill -9 the client while it waits for
/// confirmations, run it again: it resumes the same payment, one transfer in all.
#[tokio::test]
async fn killed_while_confirming_then_rerun_pays_once() {
    let w = World::new(3).await;
    let log = w.dir.path().join("first.err");
    let mut child = w.spawn_fetch("/movies/k.html", &["--max", "1"], &log);
    eventually("the client to wait for confirmations 1/3", || async {
        let s = std::fs::read_to_string(&log).unwrap_or_default();
        if s.contains("confirmations 1/3") {
            Ok(())
        } else {
            Err(s)
        }
    })
    .await;
    child.kill().unwrap(); // SIGKILL: no chance to tidy up
    child.wait().unwrap();
    let wallet = w.wallet_json();
    let pending = wallet["pending"].as_object().unwrap();
    assert_eq!(pending.len(), 1, "{wallet}");
    let (_, entry) = pending.iter().next().unwrap();
    assert_eq!(entry["step"], "signed");
    assert!(entry["tx_hash"].as_str().is_some());
    assert_eq!(w.transfers_from_payer().await, 1);

    let log2 = w.dir.path().join("second.err");
    let mut rerun = w.spawn_fetch("/movies/k.html", &["--max", "1"], &log2);
    eventually("the rerun to resume the payment", || async {
        let s = std::fs::read_to_string(&log2).unwrap_or_default();
        if s.contains("resuming payment") && s.contains("confirmations 1/3") {
            Ok(())
        } else {
            Err(s)
        }
    })
    .await;
    w.anvil.mine(2).await;
    let status = eventually("the rerun to finish", || {
        let done = rerun.try_wait().unwrap();
        let seen = std::fs::read_to_string(&log2).unwrap_or_default();
        async move { done.ok_or(seen) }
    })
    .await;
    let err = std::fs::read_to_string(&log2).unwrap();
    let body = std::fs::read_to_string(log2.with_extension("out")).unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    assert_eq!(echoed(&body)["target"], "/movies/k.html");
    assert_eq!(w.transfers_from_payer().await, 1, "paid twice");
    let wallet = w.wallet_json();
    assert!(
        wallet["pending"].as_object().unwrap().is_empty(),
        "{wallet}"
    );
    assert_eq!(wallet["receipts"].as_object().unwrap().len(), 1);
    let first_err = std::fs::read_to_string(&log).unwrap();
    w.assert_no_secrets(&[&first_err, &err, &body]);
}

/// Rules out a second transfer when the first is still in the node's pool (sent,
/// not mined) as the client dies: the rerun finds it there and only waits.
#[tokio::test]
async fn killed_with_the_transfer_in_the_pool_then_rerun_pays_once() {
    let w = World::new(1).await;
    w.anvil.set_automine(false).await;
    let log = w.dir.path().join("first.err");
    let mut child = w.spawn_fetch("/series/s1/e1", &["--max", "1"], &log);
    eventually("the client to send its transfer", || async {
        let s = std::fs::read_to_string(&log).unwrap_or_default();
        if s.contains("sent transfer") && s.contains("waiting for the transfer") {
            Ok(())
        } else {
            Err(s)
        }
    })
    .await;
    child.kill().unwrap();
    child.wait().unwrap();
    let rerun = w.fetch_after_mining("/series/s1/e1", &["--max", "1"]).await;
    assert_eq!(rerun.code, 0, "{rerun}");
    assert!(rerun.stderr.contains("resuming payment"), "{rerun}");
    assert!(!rerun.stderr.contains("sent transfer"), "{rerun}");
    assert_eq!(echoed(&rerun.stdout)["target"], "/series/s1/e1");
    assert_eq!(w.transfers_from_payer().await, 1, "paid twice");
    // A route scope: another episode replays the same receipt.
    let other = w.fetch("/series/s1/e2", &["--max", "1"]);
    assert_eq!(other.code, 0, "{other}");
    assert!(other.stderr.contains("replayed"), "{other}");
    assert_eq!(w.transfers_from_payer().await, 1);
}

impl World {
    /// Runs a fetch in the background and mines a block once it is watching, then
    /// waits for it (automine is off).
    async fn fetch_after_mining(&self, path: &str, args: &[&str]) -> Run {
        let log = self.dir.path().join("rerun.err");
        let mut child = self.spawn_fetch(path, args, &log);
        eventually("the rerun to watch the payment", || async {
            let s = std::fs::read_to_string(&log).unwrap_or_default();
            if s.contains("waiting for the transfer") {
                Ok(())
            } else {
                Err(s)
            }
        })
        .await;
        self.anvil.mine(1).await;
        let status = eventually("the rerun to finish", || {
            let done = child.try_wait().unwrap();
            let seen = std::fs::read_to_string(&log).unwrap_or_default();
            async move { done.ok_or(seen) }
        })
        .await;
        Run {
            code: status.code().unwrap_or(-1),
            stdout: std::fs::read_to_string(log.with_extension("out")).unwrap(),
            stderr: std::fs::read_to_string(&log).unwrap(),
        }
    }
}

/// Rules out a `confirmations = 0` route waiting for depth it does not require:
/// with 5 confirmations elsewhere and no block mined after the transfer's own, the
/// fetch completes.
#[tokio::test]
async fn zero_confirmation_route_completes_at_first_sight() {
    let w = World::new(5).await;
    let head = w.anvil.block_number().await;
    let run = w.fetch("/cheap/a", &["--max", "0.01"]);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(echoed(&run.stdout)["target"], "/cheap/a");
    assert_eq!(
        w.anvil.block_number().await,
        head + 1,
        "only the transfer's block"
    );
    assert_eq!(w.transfers_from_payer().await, 1);
}

/// Rules out expired receipts and dead payments piling up in the wallet: any run
/// prunes them, and keeps what is still good.
#[tokio::test]
async fn expired_receipts_are_pruned_from_the_wallet() {
    let w = World::new(1).await;
    let receipt = |exp: u64| {
        json!({"origin": "http://elsewhere", "merchant": "http://elsewhere", "resource": "/a",
               "scope": "/a", "receipt": "tg1.x.y", "expires_at": exp, "payment_id": "p"})
    };
    let far = 4_000_000_000u64;
    let wallet = json!({
        "version": 1,
        "receipts": {"dead": receipt(1), "alive": receipt(far)},
        "pending": {"stale": {
            "origin": "http://elsewhere", "merchant": "m", "resource": "/a", "scope": "/a",
            "payment_id": "p", "claim_token": "c", "address": "0x0", "amount": "0.5",
            "amount_base_units": "50000000", "decimals": 8, "chain_id": 1, "token": "0x1",
            "status_url": "s", "receipt_url": "r", "expires_at": 1, "access_ttl": 1, "step": "claimed"}},
    });
    std::fs::write(w.wallet(), wallet.to_string()).unwrap();
    let run = w.fetch("/free/page", &[]);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(echoed(&run.stdout)["target"], "/free/page");
    let after = w.wallet_json();
    let receipts: Vec<&String> = after["receipts"].as_object().unwrap().keys().collect();
    assert_eq!(receipts, ["alive"]);
    assert!(after["pending"].as_object().unwrap().is_empty(), "{after}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(w.wallet()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "rewritten wallet mode {mode:o}");
}

/// `--prices`: the manifest found through a 402's Link header, or given directly;
/// a table for people, the document for programs. Paying nothing.
#[tokio::test]
async fn prices_lists_the_manifest() {
    let w = World::new(1).await;
    let table = w.fetch("/movies/x.html", &["--prices"]);
    assert_eq!(table.code, 0, "{table}");
    let movies = table
        .stdout
        .lines()
        .find(|l| l.starts_with("/movies/*"))
        .unwrap_or_else(|| panic!("{table}"));
    for want in ["0.5", "50000000", "resource", "1d"] {
        assert!(movies.contains(want), "{movies}");
    }
    let cheap = table
        .stdout
        .lines()
        .find(|l| l.starts_with("/cheap/*"))
        .unwrap();
    assert!(cheap.trim_end().ends_with(" 0"), "{cheap}");
    let direct = w.fetch("/_tollgate/prices.json", &["--prices", "--json"]);
    assert_eq!(direct.code, 0, "{direct}");
    let doc: Value = serde_json::from_str(&direct.stdout).unwrap();
    let patterns: Vec<&str> = doc["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["pattern"].as_str().unwrap())
        .collect();
    assert!(patterns.contains(&"/series/*"), "{patterns:?}");
    let none = w.fetch("/free/page", &["--prices"]);
    assert_eq!(none.code, 6, "{none}");
    assert!(!w.wallet().exists() || w.wallet_json()["receipts"].as_object().unwrap().is_empty());
}

/// Exit codes a script can tell apart: an HTTP error, an unreachable RPC.
#[tokio::test]
async fn http_and_network_errors_have_their_exit_codes() {
    let w = World::new(1).await;
    let missing = w.fetch("/_tollgate/0123456789abcdef/status.json", &["--json"]);
    assert_eq!(missing.code, 6, "{missing}");
    let v: Value = serde_json::from_str(missing.stdout.trim()).unwrap();
    assert_eq!(v["code"], "http");
    assert_eq!(v["status"], 404);
    // An RPC nobody listens on: refused before anything is claimed.
    let dead = format!("http://127.0.0.1:{}", support::free_port());
    let mut cmd = w.command("/movies/n.html", &["--max", "1"]);
    let args: Vec<String> = cmd
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let at = args.iter().position(|a| a == "--rpc").unwrap();
    let mut args = args;
    args[at + 1] = dead;
    cmd = Command::new(env!("CARGO_BIN_EXE_tollgate"));
    cmd.args(&args).env("TOLLGATE_PAYER_KEY", w.key());
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert!(stderr.contains("RPC"), "{stderr}");
    w.assert_no_secrets(&[&stderr, &missing.stderr]);
}
