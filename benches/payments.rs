//! Payment benchmarks (a program that prints tables, not a test):
//!
//! ```sh
//! cargo bench --bench payments
//! ```
//!
//! 1. **Paid replay**: the release `tollgate` in front of `examples/fast_origin`, with
//!    N payments made through the HTTP API against a local anvil (402 JSON → `POST
//!    /pay` → token transfer → status.json `paid` → `POST /receipt`), then `wrk` with
//!    the same connections and script for: the free path; one receipt repeated (moka
//!    cache hit); all N receipts rotated (control: still cache hits); all N rotated on
//!    a second tollgate over a copy of the same store with `cache_capacity = 1`
//!    (nearly every replay reads SQLite). The same on PostgreSQL, in the same
//!    interleaved rounds: a tollgate with `[store] url = "postgres://…"` on a
//!    throwaway cluster (`tests/support/postgres.rs`), N payments of its own, one
//!    receipt repeated on it (`pg-hit`), and all N rotated on a second tollgate on the
//!    same database with `cache_capacity = 1` (`pg-miss`: a fleet instance that has
//!    not seen those receipts, so every replay reads PostgreSQL). Interleaved rounds,
//!    medians, per-round ratios, and each process's CPU time per request (PostgreSQL's
//!    too: the postmaster and its backends). Plus the receipt check alone, in-process.
//! 2. **Confirmation latency**: `anvil_mine` returns → status.json says `paid`
//!    (confirmations = 1, `poll_interval = 200ms`), polled every 3 ms.
//! 3. **Chain scan**: ≥ 50k token Transfer logs (airdrops, some to tollgate's own
//!    receiving addresses), then the rate at which tollgate's watcher gets through
//!    them (restart from its checkpoint; fresh store from block 0), the rate of
//!    `tollgate::chain::rpc::View::transfer_logs` over the same range in-process, and
//!    anvil's own share (the same `eth_getLogs`, unparsed).
//! 4. **RSS per cached receipt**: 1M `PaidFact`s in a moka cache built as
//!    `PaymentService` builds it, measured from `/proc/self/statm` in a child
//!    process, next to the data alone, moka with a heap-free value and a std HashMap.
//!
//! Results (markdown) go to stdout, progress to stderr. Knobs (environment):
//! `BENCH_PAY_DURATION` [5] seconds per wrk run, `BENCH_PAY_WARMUP` [2] seconds
//! (0 = none), `BENCH_PAY_ROUNDS` [5], `BENCH_PAY_PAYMENTS` [500],
//! `BENCH_PAY_CONFIRMS` [20], `BENCH_PAY_LOGS` [60000], `BENCH_PAY_ONLY` (comma list
//! of replay, latency, scan, rss), `BENCH_PAY_ROWS` (replay rows: comma list of free,
//! hit, rotate, miss, pg-hit, pg-miss, and the diagnostic free-auth), `BENCH_PAY_PG`
//! (`0` skips the PostgreSQL rows; they are skipped with a note anyway when no
//! PostgreSQL server binaries are installed), and, as in `benches/load.sh`,
//! `BENCH_CONNECTIONS` [64], `BENCH_WRK_THREADS` [2], `BENCH_THREADS` [2].
//!
//! Everything listens on 127.0.0.1 with ephemeral ports; every process started here
//! is stopped by pid when its guard drops (also on panic and on Ctrl-C); the
//! PostgreSQL cluster is stopped (`pg_ctl stop -m immediate`) and removed when its
//! last database handle drops.

#[path = "../tests/support/chain.rs"]
mod chain;
#[path = "../tests/support/postgres.rs"]
mod postgres;

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use alloy::primitives::Address;
use coins_bip32::enc::{MainnetEncoder, XKeyEncoder};
use coins_bip32::primitives::Hint;
use coins_bip32::xkeys::XPriv;
use coins_bip39::{English, Mnemonic};
use futures_util::stream::{self, StreamExt};
use serde_json::{json, Value};

use chain::{Anvil, DEV_MNEMONIC, ONE_TOKEN};
use postgres::PgDatabase;

const CHAIN_ID: u64 = 31337;
/// The receipt root key of every tollgate started here (a throwaway).
const BENCH_KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const PUBLIC_URL: &str = "http://tollgate.bench";
/// Price of every priced path, in base units ("0.01").
const PRICE: u128 = ONE_TOKEN / 100;
const POLL_MS: u64 = 200;
/// Recipients per airdrop transaction (≤ ~13M gas even when all are new).
const AIRDROP_BATCH: usize = 500;
/// Random (unwatched) addresses the airdrops spread over, besides tollgate's own.
const AIRDROP_STRANGERS: usize = 4000;
const ENTRIES: u64 = 1_000_000;

// ---------------------------------------------------------------- settings

struct Settings {
    duration: u64,
    warmup: u64,
    rounds: usize,
    payments: usize,
    confirms: usize,
    logs: usize,
    connections: usize,
    wrk_threads: usize,
    threads: usize,
    only: Option<HashSet<String>>,
    rows: Option<HashSet<String>>,
    /// `BENCH_PAY_PG`: false skips the PostgreSQL rows.
    pg: bool,
    clk_tck: f64,
}

fn env_num(name: &str, default: usize, min: usize) -> usize {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => match v.trim().trim_end_matches('s').parse::<usize>() {
            Ok(n) if n >= min => n,
            _ => {
                eprintln!("payments bench: {name} must be an integer ≥ {min} (got {v:?})");
                std::process::exit(2);
            }
        },
        _ => default,
    }
}

impl Settings {
    fn from_env() -> Settings {
        let only = std::env::var("BENCH_PAY_ONLY")
            .ok()
            .filter(|v| !v.trim().is_empty())
            .map(|v| {
                let set: HashSet<String> = v.split(',').map(|s| s.trim().to_string()).collect();
                for s in &set {
                    if !["replay", "latency", "scan", "rss"].contains(&s.as_str()) {
                        eprintln!("payments bench: BENCH_PAY_ONLY: unknown section {s:?}");
                        std::process::exit(2);
                    }
                }
                set
            });
        Settings {
            duration: env_num("BENCH_PAY_DURATION", 5, 1) as u64,
            warmup: env_num("BENCH_PAY_WARMUP", 2, 0) as u64,
            rounds: env_num("BENCH_PAY_ROUNDS", 5, 1),
            payments: env_num("BENCH_PAY_PAYMENTS", 500, 2),
            confirms: env_num("BENCH_PAY_CONFIRMS", 20, 1),
            logs: env_num("BENCH_PAY_LOGS", 60_000, 1),
            connections: env_num("BENCH_CONNECTIONS", 64, 1),
            wrk_threads: env_num("BENCH_WRK_THREADS", 2, 1),
            threads: env_num("BENCH_THREADS", 2, 1),
            only,
            clk_tck: clock_ticks_per_sec(),
            rows: std::env::var("BENCH_PAY_ROWS")
                .ok()
                .filter(|v| !v.trim().is_empty())
                .map(|v| v.split(',').map(|s| s.trim().to_string()).collect()),
            pg: match std::env::var("BENCH_PAY_PG").as_deref().map(str::trim) {
                Err(_) | Ok("" | "1" | "on" | "yes") => true,
                Ok("0" | "off" | "no") => false,
                Ok(v) => {
                    eprintln!("payments bench: BENCH_PAY_PG must be 0 or 1 (got {v:?})");
                    std::process::exit(2);
                }
            },
        }
    }

    fn wants(&self, section: &str) -> bool {
        self.only.as_ref().is_none_or(|s| s.contains(section))
    }

    /// Is replay row `name` measured? All but the diagnostic rows, unless
    /// `BENCH_PAY_ROWS` names them.
    fn wants_row(&self, name: &str) -> bool {
        match &self.rows {
            Some(r) => r.contains(name),
            None => name != "free-auth",
        }
    }

    /// Are the PostgreSQL replay rows measured? `Err` says why not.
    fn wants_pg(&self) -> Result<(), String> {
        if !self.wants_row("pg-hit") && !self.wants_row("pg-miss") {
            return Err("BENCH_PAY_ROWS names no pg row".into());
        }
        if !self.pg {
            return Err("BENCH_PAY_PG=0".into());
        }
        pg_missing().map_or(Ok(()), Err)
    }
}

/// Why the throwaway PostgreSQL cluster of `tests/support/postgres.rs` cannot start
/// here, checked before it is asked to (it panics instead): no server binaries
/// (`initdb` under Debian's `/usr/lib/postgresql/*/bin`), or, as root, no `postgres`
/// user or `runuser` to run them as.
fn pg_missing() -> Option<String> {
    let installed = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.flatten().any(|e| e.path().join("bin/initdb").is_file()))
        .unwrap_or(false);
    if !installed {
        return Some(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb; \
             scripts/install-test-deps installs it)"
                .into(),
        );
    }
    let ok = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if root && !(ok("id", &["-u", "postgres"]) && ok("runuser", &["--version"])) {
        return Some("running as root without a postgres user or runuser to run initdb as".into());
    }
    None
}

// ---------------------------------------------------------------- processes

/// A temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let mut rnd = [0u8; 6];
        getrandom::getrandom(&mut rnd).expect("getrandom");
        let p = std::env::temp_dir().join(format!("tollgate-paybench-{tag}-{}", hex::encode(rnd)));
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process, stopped by pid on drop (SIGINT, then SIGKILL after 5 s). Its
/// stdout lines arrive, time-stamped, on `lines`.
struct Proc {
    name: String,
    child: Child,
    spawned: Instant,
    lines: mpsc::Receiver<(Instant, String)>,
    stderr: PathBuf,
    stopped: bool,
}

impl Proc {
    fn spawn(name: &str, mut cmd: Command, stderr: PathBuf) -> Proc {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).expect("stderr file"));
        let spawned = Instant::now();
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        let out = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                // Nobody may listen any more: keep draining so the child never blocks.
                let _ = tx.send((Instant::now(), line));
            }
        });
        Proc {
            name: name.to_string(),
            child,
            spawned,
            lines,
            stderr,
            stopped: false,
        }
    }

    fn stderr_tail(&self) -> String {
        let s = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// Waits for a stdout line starting with `prefix`; returns when it was read
    /// and the rest of the line.
    fn wait_line(&mut self, prefix: &str, timeout: Duration) -> (Instant, String) {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((at, line)) => {
                    if let Some(rest) = line.strip_prefix(prefix) {
                        return (at, rest.trim().to_string());
                    }
                }
                Err(e) => {
                    let status = self.child.try_wait().ok().flatten();
                    panic!(
                        "{}: no stdout line {prefix:?} ({e:?}; exit status {status:?}); stderr:\n{}",
                        self.name,
                        self.stderr_tail()
                    );
                }
            }
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        let _ = Command::new("kill")
            .args(["-INT", &self.pid().to_string()])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The directory the release binaries are in (cargo bench builds `tollgate` there).
fn release_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_tollgate"))
        .parent()
        .expect("bin dir")
        .to_path_buf()
}

/// `target/release/examples/fast_origin`, built with `cargo build --release --example
/// fast_origin` only when it is missing or older than its source.
///
/// The nested cargo runs without the variables cargo sets for the bench process:
/// some dependencies' build scripts track `CARGO_MANIFEST_DIR` (ring does), and an
/// inherited value would make cargo rebuild the TLS stack here and again in the next
/// ordinary `cargo build --release`.
fn build_fast_origin() -> PathBuf {
    let bin = release_dir().join("examples/fast_origin");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/fast_origin.rs");
    let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let fresh = match (mtime(&bin), mtime(&src)) {
        (Some(b), Some(s)) => b >= s,
        _ => false,
    };
    if fresh {
        return bin;
    }
    log("building examples/fast_origin (cargo build --release --example fast_origin)");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet", "--release", "--example", "fast_origin"])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        let set_by_cargo_run = k.starts_with("CARGO_PKG_")
            || k.starts_with("CARGO_MANIFEST_")
            || matches!(
                &*k,
                "CARGO_CRATE_NAME"
                    | "CARGO_BIN_NAME"
                    | "CARGO_PRIMARY_PACKAGE"
                    | "CARGO_TARGET_TMPDIR"
                    | "OUT_DIR"
            );
        if set_by_cargo_run {
            cmd.env_remove(&*k);
        }
    }
    let status = cmd.status().expect("run cargo build --example fast_origin");
    assert!(status.success(), "cargo build --example fast_origin failed");
    assert!(bin.is_file(), "missing {}", bin.display());
    bin
}

fn start_origin(bin: &Path, dir: &Path) -> (Proc, SocketAddr) {
    let mut p = Proc::spawn("fast_origin", Command::new(bin), dir.join("origin.err"));
    let (_, addr) = p.wait_line("listening ", Duration::from_secs(30));
    (p, addr.parse().expect("origin address"))
}

/// A running `tollgate serve`.
struct Tg {
    proc: Proc,
    addr: SocketAddr,
    /// spawn → `tollgate ready: public` line.
    startup: Duration,
}

impl Tg {
    fn start(dir: &Path, config: &str, tag: &str) -> Tg {
        let mut p = Self::spawn(dir, config, tag);
        let (at, rest) = p.wait_line("tollgate ready: public http://", Duration::from_secs(60));
        let addr: SocketAddr = rest
            .split_whitespace()
            .next()
            .expect("address")
            .parse()
            .expect("tollgate address");
        log(&format!("tollgate ({tag}) pid {} on {addr}", p.pid()));
        Tg {
            startup: at - p.spawned,
            proc: p,
            addr,
        }
    }

    fn spawn(dir: &Path, config: &str, tag: &str) -> Proc {
        let cfg = dir.join("tollgate.toml");
        std::fs::write(&cfg, config).expect("write config");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tollgate"));
        cmd.args(["serve", "--config"])
            .arg(&cfg)
            .current_dir(dir)
            .env("RUST_LOG", "warn")
            .env("TOLLGATE_BENCH_KEY", BENCH_KEY);
        Proc::spawn(
            &format!("tollgate ({tag})"),
            cmd,
            dir.join(format!("{tag}.err")),
        )
    }

    fn base(&self) -> String {
        format!("http://{}", self.addr)
    }
}

// ---------------------------------------------------------------- config

/// A merchant account xpub: m/44'/60'/ACCOUNT'/0 of the dev mnemonic (the tests use
/// account 1).
fn merchant_xpub(account: u32) -> String {
    let m: Mnemonic<English> = Mnemonic::new_from_phrase(DEV_MNEMONIC).expect("mnemonic");
    let root = XPriv::root_from_seed(&m.to_seed(None).expect("seed"), Some(Hint::Legacy))
        .expect("root key");
    let account = root
        .derive_path(format!("m/44'/60'/{account}'/0").as_str())
        .expect("derive");
    MainnetEncoder::xpub_to_base58(&account.verify_key()).expect("xpub")
}

struct World {
    origin: SocketAddr,
    origin_pid: u32,
    rpc: String,
    token: Address,
    xpub: String,
    /// The PostgreSQL tollgates' merchant account (another account than `xpub`'s):
    /// two stores deriving from one xpub would hand out the same addresses.
    pg_xpub: String,
    threads: usize,
}

impl World {
    /// The config of a tollgate on its SQLite store (`tollgate.db` in its directory).
    fn config(&self, cache_capacity: Option<u64>) -> String {
        self.config_for("sqlite://tollgate.db", &self.xpub, cache_capacity)
    }

    /// The same config on the PostgreSQL database `url`: only `[store] url` and
    /// the merchant account differ.
    fn pg_config(&self, url: &str, cache_capacity: Option<u64>) -> String {
        self.config_for(url, &self.pg_xpub, cache_capacity)
    }

    fn config_for(&self, url: &str, xpub: &str, cache_capacity: Option<u64>) -> String {
        let store = match cache_capacity {
            Some(n) => format!("url = \"{url}\"\ncache_capacity = {n}"),
            None => format!("url = \"{url}\""),
        };
        format!(
            r#"
[server]
listen = "127.0.0.1:0"
public_url = "{PUBLIC_URL}"
upstream = "{origin}"
threads = {threads}
grace_period = "1s"
[store]
{store}
[secrets]
receipt_key_env = "TOLLGATE_BENCH_KEY"
[chain]
rpc_urls = ["{rpc}"]
chain_id = {CHAIN_ID}
token = "{token}"
confirmations = 1
poll_interval = "{POLL_MS}ms"
xpub = "{xpub}"
start_block = 0
[payments]
expiry = "30m"
access_ttl = "30d"
claim_rate = "100000/min"
[[route]]
path = "/movies/*"
price = "0.01"
summary = "Movie {{path}}"
"#,
            origin = self.origin,
            threads = self.threads,
            rpc = self.rpc,
            token = self.token,
        )
    }
}

// ---------------------------------------------------------------- the HTTP API

struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    fn new(base: String) -> Api {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("http client");
        Api { http, base }
    }

    fn local(&self, public: &str) -> String {
        let path = public
            .strip_prefix(PUBLIC_URL)
            .unwrap_or_else(|| panic!("not under {PUBLIC_URL}: {public}"));
        format!("{}{path}", self.base)
    }

    /// GET a priced path: the 402 JSON's contract token.
    async fn contract(&self, path: &str) -> String {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .header("Accept", "application/json")
            .send()
            .await
            .expect("GET priced path");
        assert_eq!(r.status(), 402, "GET {path}");
        let v: Value = r.json().await.expect("402 JSON");
        v["contract_token"]
            .as_str()
            .expect("contract_token")
            .to_string()
    }

    /// `POST /_tollgate/pay`.
    async fn claim(&self, token: &str) -> Value {
        let r = self
            .http
            .post(format!("{}/_tollgate/pay", self.base))
            .json(&json!({ "contract": token }))
            .send()
            .await
            .expect("POST pay");
        assert!(
            r.status() == 201 || r.status() == 200,
            "claim: {}",
            r.status()
        );
        r.json().await.expect("claim JSON")
    }

    async fn status(&self, claim: &Value) -> Value {
        let url = self.local(claim["status_url"].as_str().expect("status_url"));
        self.http
            .get(url)
            .send()
            .await
            .expect("GET status.json")
            .json()
            .await
            .expect("status JSON")
    }

    async fn wait_paid(&self, claim: &Value) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let s = self.status(claim).await;
            if s["state"] == "paid" {
                return;
            }
            assert!(Instant::now() < deadline, "never paid: {s}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `POST /{id}/receipt`: the receipt.
    async fn receipt(&self, claim: &Value) -> String {
        let url = self.local(claim["receipt_url"].as_str().expect("receipt_url"));
        let r = self
            .http
            .post(url)
            .json(&json!({ "claim_token": claim["claim_token"] }))
            .send()
            .await
            .expect("POST receipt");
        assert_eq!(r.status(), 200, "receipt");
        let v: Value = r.json().await.expect("receipt JSON");
        v["receipt"].as_str().expect("receipt").to_string()
    }

    async fn get_status(&self, path: &str, receipt: Option<&str>) -> u16 {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(r) = receipt {
            req = req.header("Authorization", format!("Tollgate {r}"));
        }
        req.send().await.expect("GET").status().as_u16()
    }
}

fn claim_address(claim: &Value) -> Address {
    claim["address"]
        .as_str()
        .expect("address")
        .parse()
        .expect("address parses")
}

/// Pays for every path through the HTTP API; returns (path, claim, receipt).
async fn pay_all(
    api: &Api,
    anvil: &Anvil,
    token: Address,
    paths: Vec<String>,
) -> Vec<(String, Value, String)> {
    let claims: Vec<(String, Value)> = stream::iter(paths)
        .map(|p| async move {
            let c = api.claim(&api.contract(&p).await).await;
            (p, c)
        })
        .buffered(8)
        .collect()
        .await;
    // Transfers go into blocks of 100 (one block's gas holds ~500 such transfers).
    anvil.set_automine(false).await;
    for chunk in claims.chunks(100) {
        for (_, c) in chunk {
            anvil.transfer(token, 1, claim_address(c), PRICE).await;
        }
        anvil.mine(1).await;
    }
    anvil.set_automine(true).await;
    for (_, c) in &claims {
        api.wait_paid(c).await;
    }
    stream::iter(claims)
        .map(|(p, c)| async move {
            let r = api.receipt(&c).await;
            (p, c, r)
        })
        .buffered(8)
        .collect()
        .await
}

// ---------------------------------------------------------------- wrk

#[derive(Clone, Copy, Debug, Default)]
struct WrkRun {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    requests: u64,
    bad: u64,
    /// CPU time per request (µs) of tollgate, the origin, wrk itself and PostgreSQL
    /// (the postmaster and all its children; NaN when no cluster runs).
    cpu_us: [f64; 4],
    /// Context switches of all tollgate threads per request.
    switches: f64,
}

/// Context switches (voluntary + involuntary) summed over every thread of `pid`.
fn context_switches(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .map(|t| {
            std::fs::read_to_string(t.path().join("status"))
                .unwrap_or_default()
                .lines()
                .filter(|l| l.contains("ctxt_switches:"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum::<u64>()
        })
        .sum()
}

/// The CPU clock ticks (user + system) of process `pid`; with `children`, those of
/// its reaped children instead.
fn cpu_ticks(pid: &str, children: bool) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which ends at the last ')': field 3 is index 0.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let (a, b) = if children { (13, 14) } else { (11, 12) };
    f.get(a).copied().unwrap_or(0) + f.get(b).copied().unwrap_or(0)
}

/// The CPU clock ticks of the PostgreSQL server whose postmaster is `postmaster`:
/// its own and those of every process whose parent it is (backends, checkpointer,
/// walwriter, autovacuum, …). Backends are the pool's long-lived connections, so
/// the difference across a run is the server's work for it.
fn pg_ticks(postmaster: u32) -> u64 {
    let mut total = cpu_ticks(&postmaster.to_string(), false);
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return total;
    };
    for e in procs.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        // Field 4 (ppid) is the second after the command name.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, r)| r.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(postmaster) {
            total += cpu_ticks(pid, false);
        }
    }
    total
}

/// The pid of the postmaster listening on `port`, from its command line
/// (`postgres -D DATA -p PORT …`, as `tests/support/postgres.rs` starts it).
fn postmaster_pid(port: u16) -> Option<u32> {
    let port = port.to_string();
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let is_postgres = args.first()?.ends_with(b"/postgres") || args[0] == b"postgres";
        let on_port = args
            .windows(2)
            .any(|w| w[0] == b"-p" && w[1] == port.as_bytes());
        (is_postgres && on_port).then_some(pid)
    })
}

fn clock_ticks_per_sec() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

fn parse_latency_ms(s: &str) -> Option<f64> {
    let s = s.trim();
    let (num, mult) = if let Some(n) = s.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1000.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60_000.0)
    } else {
        return None;
    };
    num.trim().parse::<f64>().ok().map(|v| v * mult)
}

fn parse_wrk(out: &str) -> Option<WrkRun> {
    let mut r = WrkRun::default();
    let mut have_rps = false;
    for line in out.lines() {
        let t = line.trim();
        if let Some(v) = t.strip_prefix("Requests/sec:") {
            r.rps = v.trim().parse().ok()?;
            have_rps = true;
        } else if let Some(v) = t.strip_prefix("50%") {
            r.p50_ms = parse_latency_ms(v)?;
        } else if let Some(v) = t.strip_prefix("99%") {
            r.p99_ms = parse_latency_ms(v)?;
        } else if let Some(v) = t.strip_prefix("Non-2xx or 3xx responses:") {
            r.bad += v.trim().parse::<u64>().ok()?;
        } else if let Some(v) = t.strip_prefix("Socket errors:") {
            // "connect 0, read 0, write 0, timeout 0"
            for part in v.split(',') {
                if let Some(n) = part.split_whitespace().nth(1) {
                    r.bad += n.parse::<u64>().unwrap_or(0);
                }
            }
        } else if t.contains(" requests in ") {
            r.requests = t.split_whitespace().next()?.parse().ok()?;
        }
    }
    have_rps.then_some(r)
}

/// One wrk run of `secs` seconds against `base` with the request lines in `lines`.
/// `pids` = [tollgate, origin]: their CPU time is sampled around the run, and that
/// of the PostgreSQL server of postmaster `pg` when one runs.
async fn wrk(
    s: &Settings,
    base: &str,
    lines: &Path,
    secs: u64,
    pids: [u32; 2],
    pg: Option<u32>,
) -> WrkRun {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/payments.lua");
    let mut cmd = Command::new("wrk");
    cmd.arg(format!("-t{}", s.wrk_threads))
        .arg(format!("-c{}", s.connections))
        .arg(format!("-d{secs}s"))
        .arg("--latency")
        .arg("-s")
        .arg(&script)
        .arg(base)
        .arg("--")
        .arg(lines);
    let ticks = || {
        [
            cpu_ticks(&pids[0].to_string(), false),
            cpu_ticks(&pids[1].to_string(), false),
            cpu_ticks("self", true), // wrk, once reaped
            pg.map_or(0, pg_ticks),
        ]
    };
    let before = ticks();
    let switches = context_switches(pids[0]);
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("wrk task")
        .expect("run wrk (apt-get install wrk)");
    let after = ticks();
    let switches = context_switches(pids[0]).saturating_sub(switches);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "wrk failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut r = parse_wrk(&text).unwrap_or_else(|| panic!("cannot parse wrk output:\n{text}"));
    for i in 0..4 {
        let secs = after[i].saturating_sub(before[i]) as f64 / s.clk_tck;
        r.cpu_us[i] = secs * 1e6 / r.requests.max(1) as f64;
    }
    if pg.is_none() {
        r.cpu_us[3] = f64::NAN;
    }
    r.switches = switches as f64 / r.requests.max(1) as f64;
    r
}

// ---------------------------------------------------------------- statistics

fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn thousands(n: f64) -> String {
    let s = format!("{n:.0}");
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn ms(v: f64) -> String {
    if v < 10.0 {
        format!("{v:.2} ms")
    } else {
        format!("{v:.1} ms")
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "**missed**"
    }
}

/// A small deterministic generator (xorshift64*), for jitter and address mixes.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

static STARTED: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

fn log(msg: &str) {
    let t = STARTED.get_or_init(Instant::now).elapsed().as_secs_f64();
    eprintln!("[payments bench {t:6.1}s] {msg}");
}

// ---------------------------------------------------------------- 1. replay

struct ReplayResult {
    rows: Vec<(String, Vec<WrkRun>)>,
    startup: Duration,
    /// The PostgreSQL tollgates' startup, when they ran.
    pg_startup: Option<Duration>,
    /// Why the PostgreSQL rows were not measured.
    pg_skipped: Option<String>,
    /// In-process cost of the receipt check alone, µs per request.
    check_us: f64,
}

/// The receipt check of a cache hit, in-process and single-threaded, as the proxy
/// does it (`receipt_unlocks`): find the `Authorization` receipt, verify its MAC,
/// expiry and scope, decode the hash, get the fact from a moka cache built like
/// `PaymentService`'s, compare. Returns the median µs per check over 3 batches.
fn receipt_check_us(paid: &[(String, Value, String)]) -> f64 {
    use tollgate::payments::service::PaidFact;
    let key = tollgate::config::SecretKey(hex::decode(BENCH_KEY).expect("key hex"));
    let keys = tollgate::keys::Keys::derive(&key);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let cache: moka::sync::Cache<[u8; 32], PaidFact> =
        moka::sync::Cache::builder().max_capacity(100_000).build();
    let headers: Vec<(String, String)> = paid
        .iter()
        .map(|(path, _, r)| (path.clone(), format!("Tollgate {r}")))
        .collect();
    for (_, h) in &headers {
        let r = h.strip_prefix("Tollgate ").expect("prefix");
        let c = tollgate::receipt::verify(&keys, r, now).expect("receipt verifies");
        let mut hash = [0u8; 32];
        hex::decode_to_slice(&c.h, &mut hash).expect("hash hex");
        cache.insert(
            hash,
            PaidFact {
                scope: c.scope,
                pid: c.pid,
                paid_at: now,
                access_ttl_secs: 86_400,
                revoked: Vec::new(),
            },
        );
    }
    let check = |path: &str, auth: &str| -> bool {
        for candidate in tollgate::receipt::candidates(Some(auth.as_bytes()), std::iter::empty()) {
            let Ok(claims) = tollgate::receipt::verify(&keys, candidate, now) else {
                continue;
            };
            // Every benchmarked path is priced by the one route, "/movies/*".
            if !tollgate::receipt::scope_covers(&claims.scope, path, "/movies/*") {
                continue;
            }
            let mut hash = [0u8; 32];
            if hex::decode_to_slice(&claims.h, &mut hash).is_err() {
                continue;
            }
            if let Some(f) = cache.get(&hash) {
                if f.scope == claims.scope && f.pid == claims.pid {
                    return true;
                }
            }
        }
        false
    };
    const N: usize = 100_000;
    let mut batches = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        for i in 0..N {
            let (path, auth) = &headers[i % headers.len()];
            assert!(std::hint::black_box(check(path, auth)));
        }
        batches.push(t.elapsed().as_secs_f64() * 1e6 / N as f64);
    }
    median(&batches)
}

/// The PostgreSQL side of the replay section: a database on a throwaway cluster
/// and the tollgate the payments were made through. Fields drop in order: the
/// tollgate stops before its database is dropped.
struct PgSide {
    tg: Tg,
    /// (path, claim, receipt) of the payments made through `tg`.
    paid: Vec<(String, Value, String)>,
    /// The postmaster, whose CPU time (with its backends') is sampled around runs.
    postmaster: Option<u32>,
    _dir: TempDir,
    db: PgDatabase,
}

/// Starts a throwaway PostgreSQL cluster (`tests/support/postgres.rs`, as the tests
/// do), a database on it and a tollgate on that database, and pays for `paths`
/// through that tollgate's HTTP API, as for the SQLite store.
async fn pg_setup(world: &World, anvil: &Anvil, token: Address, paths: Vec<String>) -> PgSide {
    log("starting a throwaway PostgreSQL cluster (tests/support/postgres.rs)");
    let db = PgDatabase::new("paybench").await;
    let port: Option<u16> = db
        .url
        .rsplit_once(':')
        .and_then(|(_, r)| r.split('/').next()?.parse().ok());
    let postmaster = port.and_then(postmaster_pid);
    log(&format!(
        "PostgreSQL database {} (postmaster pid {postmaster:?})",
        db.url
    ));
    let dir = TempDir::new("pg");
    let tg = Tg::start(dir.path(), &world.pg_config(&db.url, None), "pg");
    let api = Api::new(tg.base());
    log(&format!(
        "making {} payments through the PostgreSQL tollgate's HTTP API",
        paths.len()
    ));
    let t = Instant::now();
    let paid = pay_all(&api, anvil, token, paths).await;
    log(&format!(
        "{} payments paid on PostgreSQL, receipts in hand ({:.1} s)",
        paid.len(),
        t.elapsed().as_secs_f64()
    ));
    PgSide {
        tg,
        paid,
        postmaster,
        _dir: dir,
        db,
    }
}

async fn bench_replay(
    s: &Settings,
    world: &World,
    work: &Path,
    tg_dir: &Path,
    tg: &Tg,
    paid: &[(String, Value, String)],
    pg: Result<&PgSide, String>,
) -> ReplayResult {
    // The miss tollgate: a copy of the same store (so every receipt is valid there),
    // with a one-entry cache.
    let miss_dir = TempDir::new("miss");
    {
        // VACUUM INTO: a consistent copy while the first tollgate runs.
        let conn = rusqlite::Connection::open(tg_db(tg_dir)).expect("open store");
        let target = miss_dir.path().join("tollgate.db");
        conn.execute("VACUUM INTO ?1", [target.to_str().unwrap()])
            .expect("VACUUM INTO");
    }
    let mut miss_tg = Tg::start(miss_dir.path(), &world.config(Some(1)), "miss");
    // The PostgreSQL miss tollgate: a second instance on the same database (no copy:
    // that is what a fleet shares) with a one-entry cache.
    let pg_miss_dir = TempDir::new("pg-miss");
    let mut pg_miss_tg = pg.as_ref().ok().map(|pg| {
        Tg::start(
            pg_miss_dir.path(),
            &world.pg_config(&pg.db.url, Some(1)),
            "pg-miss",
        )
    });
    let pg_pid = pg.as_ref().ok().and_then(|pg| pg.postmaster);

    // Sanity: every receipt opens its path on both, the free path is free.
    let hit_api = Api::new(tg.base());
    let miss_api = Api::new(miss_tg.base());
    for (path, _, receipt) in paid.iter().take(5) {
        assert_eq!(hit_api.get_status(path, Some(receipt)).await, 200);
        assert_eq!(miss_api.get_status(path, Some(receipt)).await, 200);
        assert_eq!(hit_api.get_status(path, None).await, 402);
    }
    assert_eq!(hit_api.get_status("/free/x", None).await, 200);
    if let (Ok(pg), Some(pg_miss_tg)) = (&pg, &pg_miss_tg) {
        // The same on PostgreSQL; and a SQLite store's receipt opens nothing there
        // (so the PostgreSQL rows do read PostgreSQL).
        let pg_api = Api::new(pg.tg.base());
        let pg_miss_api = Api::new(pg_miss_tg.base());
        for (path, _, receipt) in pg.paid.iter().take(5) {
            assert_eq!(pg_api.get_status(path, Some(receipt)).await, 200);
            assert_eq!(pg_miss_api.get_status(path, Some(receipt)).await, 200);
            assert_eq!(pg_api.get_status(path, None).await, 402);
        }
        assert_eq!(pg_api.get_status(&paid[0].0, Some(&paid[0].2)).await, 402);
        assert_eq!(pg_miss_api.get_status("/free/x", None).await, 200);
    }

    let free_lines = work.join("free.txt");
    std::fs::write(&free_lines, "/free/x\n").unwrap();
    let hit_lines = work.join("hit.txt");
    std::fs::write(&hit_lines, format!("{} {}\n", paid[0].0, paid[0].2)).unwrap();
    let miss_lines = work.join("miss.txt");
    let all: String = paid.iter().map(|(p, _, r)| format!("{p} {r}\n")).collect();
    std::fs::write(&miss_lines, all).unwrap();

    let (main_pid, miss_pid) = (tg.proc.pid(), miss_tg.proc.pid());
    let mut rows: Vec<(String, String, PathBuf, u32)> = vec![
        ("free".into(), tg.base(), free_lines, main_pid),
        ("hit".into(), tg.base(), hit_lines, main_pid),
        ("rotate".into(), tg.base(), miss_lines.clone(), main_pid),
        ("miss".into(), miss_tg.base(), miss_lines, miss_pid),
    ];
    if let (Ok(pg), Some(pg_miss_tg)) = (&pg, &pg_miss_tg) {
        let pg_hit_lines = work.join("pg-hit.txt");
        let (p0, _, r0) = &pg.paid[0];
        std::fs::write(&pg_hit_lines, format!("{p0} {r0}\n")).unwrap();
        let pg_miss_lines = work.join("pg-miss.txt");
        let all: String = pg
            .paid
            .iter()
            .map(|(p, _, r)| format!("{p} {r}\n"))
            .collect();
        std::fs::write(&pg_miss_lines, all).unwrap();
        rows.push((
            "pg-hit".into(),
            pg.tg.base(),
            pg_hit_lines,
            pg.tg.proc.pid(),
        ));
        rows.push((
            "pg-miss".into(),
            pg_miss_tg.base(),
            pg_miss_lines,
            pg_miss_tg.proc.pid(),
        ));
    }
    // A diagnostic row, only when BENCH_PAY_ROWS names it: the free path carrying a
    // receipt header (the same request bytes as "hit", no receipt check).
    let free_auth_lines = work.join("free-auth.txt");
    std::fs::write(&free_auth_lines, format!("/free/x {}\n", paid[0].2)).unwrap();
    rows.push(("free-auth".into(), tg.base(), free_auth_lines, main_pid));
    let rows: Vec<_> = rows
        .into_iter()
        .filter(|(name, _, _, _)| s.wants_row(name))
        .collect();
    if s.warmup > 0 {
        for (name, base, lines, pid) in &rows {
            log(&format!("warm-up {name} ({} s)", s.warmup));
            wrk(s, base, lines, s.warmup, [*pid, world.origin_pid], pg_pid).await;
        }
    }
    let mut results: Vec<Vec<WrkRun>> = vec![Vec::new(); rows.len()];
    for round in 0..s.rounds {
        for k in 0..rows.len() {
            let i = (k + round) % rows.len();
            let (name, base, lines, pid) = &rows[i];
            let r = wrk(s, base, lines, s.duration, [*pid, world.origin_pid], pg_pid).await;
            log(&format!(
                "round {}/{} {name}: {:.0} req/s p50 {:.2} ms p99 {:.2} ms, {} bad of {}; \
                 CPU µs/req tollgate {:.1} origin {:.1} wrk {:.1} postgres {:.1}; \
                 tollgate context switches/req {:.2}",
                round + 1,
                s.rounds,
                r.rps,
                r.p50_ms,
                r.p99_ms,
                r.bad,
                r.requests,
                r.cpu_us[0],
                r.cpu_us[1],
                r.cpu_us[2],
                r.cpu_us[3],
                r.switches
            ));
            results[i].push(r);
        }
    }
    miss_tg.proc.stop();
    if let Some(t) = &mut pg_miss_tg {
        t.proc.stop();
    }
    let check_us = receipt_check_us(paid);
    log(&format!("receipt check in-process: {check_us:.2} µs"));
    let startup = tg.startup.max(miss_tg.startup);
    let pg_startup = match (&pg, &pg_miss_tg) {
        (Ok(pg), Some(m)) => Some(pg.tg.startup.max(m.startup)),
        _ => None,
    };
    ReplayResult {
        rows: rows
            .into_iter()
            .zip(results)
            .map(|((n, _, _, _), r)| (n, r))
            .collect(),
        startup,
        pg_startup,
        pg_skipped: pg.err(),
        check_us,
    }
}

fn tg_db(dir: &Path) -> PathBuf {
    dir.join("tollgate.db")
}

fn print_replay(s: &Settings, n: usize, r: &ReplayResult) {
    println!("### 1. Paid replay\n");
    println!(
        "wrk -t{} -c{} -d{}s --latency, `benches/payments.lua` for every row; {} interleaved \
         round(s), median per metric; tollgate threads = {}; {} payments made through the HTTP \
         API (per store).\n",
        s.wrk_threads, s.connections, s.duration, s.rounds, s.threads, n
    );
    let with_pg = r.pg_startup.is_some();
    if with_pg {
        println!(
            "| row | req/s | p50 | p99 | CPU µs/req: tollgate | origin | wrk | postgres | \
             non-2xx / errors |"
        );
        println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    } else {
        println!(
            "| row | req/s | p50 | p99 | CPU µs/req: tollgate | origin | wrk | non-2xx / errors |"
        );
        println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    }
    let label = |name: &str| match name {
        "free" => "free path (`GET /free/x`, no receipt)".to_string(),
        "hit" => "cache hit (one receipt repeated)".to_string(),
        "rotate" => format!("cache hit, control ({n} receipts rotated, default cache)"),
        "free-auth" => "free path carrying a receipt header (diagnostic)".to_string(),
        "pg-hit" => "PostgreSQL store: cache hit (one receipt repeated)".to_string(),
        "pg-miss" => format!(
            "PostgreSQL store: cache miss ({n} receipts rotated on a second instance, \
             `cache_capacity = 1`)"
        ),
        _ => format!("cache miss ({n} receipts rotated, `cache_capacity = 1`)"),
    };
    let runs_of = |name: &str| -> Option<&[WrkRun]> {
        r.rows
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, runs)| runs.as_slice())
    };
    for (name, runs) in &r.rows {
        let rps = median(&runs.iter().map(|x| x.rps).collect::<Vec<_>>());
        let p50 = median(&runs.iter().map(|x| x.p50_ms).collect::<Vec<_>>());
        let p99 = median(&runs.iter().map(|x| x.p99_ms).collect::<Vec<_>>());
        let cpu = |k: usize| median(&runs.iter().map(|x| x.cpu_us[k]).collect::<Vec<_>>());
        let bad: u64 = runs.iter().map(|x| x.bad).sum();
        let total: u64 = runs.iter().map(|x| x.requests).sum();
        let pg_cpu = if with_pg {
            format!(" {:.1} |", cpu(3))
        } else {
            String::new()
        };
        println!(
            "| {} | {} | {} | {} | {:.1} | {:.1} | {:.1} |{pg_cpu} {bad} of {} |",
            label(name),
            thousands(rps),
            ms(p50),
            ms(p99),
            cpu(0),
            cpu(1),
            cpu(2),
            thousands(total as f64)
        );
    }
    if runs_of("free").is_some() {
        println!(
            "\n| ratio of req/s | median of per-round ratios | ratio of medians | goal | | \
             tollgate CPU/req, ratio |"
        );
        println!("| --- | ---: | ---: | ---: | --- | ---: |");
        // (row, against, goal): rows against the free path, then the PostgreSQL rows
        // against their SQLite counterparts of the same rounds.
        for (name, base, goal) in [
            ("hit", "free", Some(0.95)),
            ("rotate", "free", None),
            ("miss", "free", Some(0.5)),
            ("free-auth", "free", None),
            ("pg-hit", "free", None),
            ("pg-miss", "free", None),
            ("pg-hit", "hit", None),
            ("pg-miss", "miss", None),
        ] {
            let (Some(runs), Some(against)) = (runs_of(name), runs_of(base)) else {
                continue;
            };
            let paired: Vec<f64> = runs
                .iter()
                .zip(against)
                .map(|(a, f)| a.rps / f.rps)
                .collect();
            let per_round = median(&paired);
            let of_medians = median(&runs.iter().map(|x| x.rps).collect::<Vec<_>>())
                / median(&against.iter().map(|x| x.rps).collect::<Vec<_>>());
            let shown: Vec<String> = paired.iter().map(|x| format!("{x:.2}")).collect();
            let cpu_ratio = median(
                &runs
                    .iter()
                    .zip(against)
                    .map(|(a, f)| a.cpu_us[0] / f.cpu_us[0])
                    .collect::<Vec<_>>(),
            );
            let (goal, met) = match goal {
                Some(g) => (format!("≥ {g:.2}"), verdict(per_round >= g)),
                None => (String::new(), ""),
            };
            println!(
                "| {name} / {base} | {per_round:.3} ({}) | {of_medians:.3} | {goal} | {met} | \
                 {cpu_ratio:.2} |",
                shown.join(", "),
            );
        }
    }
    println!(
        "\nThe receipt check alone (`receipt::candidates` → `verify` → `scope_covers` → moka \
         `get` → compare, as `receipt_unlocks` does it), in-process on one thread: {:.2} µs per \
         request. tollgate startup (spawn → `tollgate ready: public`): {:.0} ms on SQLite{}.\n",
        r.check_us,
        r.startup.as_secs_f64() * 1000.0,
        r.pg_startup.map_or(String::new(), |d| format!(
            ", {:.0} ms on PostgreSQL",
            d.as_secs_f64() * 1000.0
        ))
    );
    if let Some(why) = &r.pg_skipped {
        println!("PostgreSQL rows not measured: {why}.\n");
    }
}

// ---------------------------------------------------------------- 2. latency

async fn bench_latency(
    s: &Settings,
    anvil: &Anvil,
    token: Address,
    api: &Api,
) -> (Vec<f64>, Vec<Address>) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut lat = Vec::new();
    let mut addrs = Vec::new();
    anvil.set_automine(false).await;
    for i in 0..s.confirms {
        let c = api
            .claim(&api.contract(&format!("/movies/confirm-{i}")).await)
            .await;
        addrs.push(claim_address(&c));
        anvil.transfer(token, 1, claim_address(&c), PRICE).await;
        // A random phase against the watcher's poll timer.
        tokio::time::sleep(Duration::from_millis(rng.next_u64() % POLL_MS)).await;
        anvil.mine(1).await;
        let mined = Instant::now();
        let deadline = mined + Duration::from_secs(10);
        loop {
            let st = api.status(&c).await;
            if st["state"] == "paid" && st["paid_at"].is_u64() {
                lat.push(mined.elapsed().as_secs_f64() * 1000.0);
                break;
            }
            assert!(Instant::now() < deadline, "payment {i} never paid: {st}");
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
    }
    anvil.set_automine(true).await;
    log(&format!(
        "confirmation latency: median {:.0} ms, max {:.0} ms",
        median(&lat),
        lat.iter().cloned().fold(0.0, f64::max)
    ));
    (lat, addrs)
}

fn print_latency(lat: &[f64]) {
    let max = lat.iter().cloned().fold(0.0, f64::max);
    let min = lat.iter().cloned().fold(f64::INFINITY, f64::min);
    let goal = POLL_MS as f64 + 100.0;
    println!("### 2. Confirmation latency\n");
    println!(
        "`anvil_mine` returns → status.json shows `paid` with `paid_at` (polled every 3 ms); \
         confirmations = 1, poll_interval = {POLL_MS}ms, {} payments, each mined after a random \
         0–{POLL_MS} ms delay.\n",
        lat.len()
    );
    println!("| payments | min | median | max | goal (max) | |");
    println!("| ---: | ---: | ---: | ---: | ---: | --- |");
    println!(
        "| {} | {:.0} ms | {:.0} ms | {:.0} ms | ≤ {goal:.0} ms | {} |\n",
        lat.len(),
        min,
        median(lat),
        max,
        verdict(max <= goal)
    );
}

// ---------------------------------------------------------------- 3. scan

struct ScanRow {
    name: String,
    logs: usize,
    secs: Vec<f64>,
    /// Whether the ≥ 50k logs/s goal applies (not to anvil's own share).
    goal: bool,
}

fn checkpoint_of(db: &Path) -> Option<u64> {
    let conn = rusqlite::Connection::open(db).ok()?;
    conn.query_row(
        "SELECT number FROM checkpoints WHERE chain_id = ?1",
        [CHAIN_ID as i64],
        |r| r.get::<_, i64>(0),
    )
    .ok()
    .map(|n| n as u64)
}

/// Copies the store files of a stopped tollgate.
fn copy_store(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).expect("read store dir").flatten() {
        let name = e.file_name();
        if name.to_string_lossy().starts_with("tollgate.db") {
            std::fs::copy(e.path(), to.join(&name)).expect("copy store file");
        }
    }
}

/// Starts tollgate in `dir` and times spawn → "chain watcher synced" (the end of
/// its first watcher tick, which scans up to the head it read at its start).
fn time_sync(dir: &Path, config: &str, tag: &str, head: u64) -> f64 {
    let mut p = Tg::spawn(dir, config, tag);
    let (at, _) = p.wait_line(
        "tollgate ready: chain watcher synced",
        Duration::from_secs(180),
    );
    let secs = (at - p.spawned).as_secs_f64();
    p.stop();
    let cp = checkpoint_of(&tg_db(dir));
    assert_eq!(
        cp,
        Some(head),
        "{tag}: checkpoint after the first tick is {cp:?}, head is {head}; stderr:\n{}",
        p.stderr_tail()
    );
    secs
}

async fn bench_scan(
    s: &Settings,
    world: &World,
    anvil: &Anvil,
    token: Address,
    base_dir: &Path,
    watched: &[Address],
) -> (Vec<ScanRow>, usize, usize) {
    let cp_before = checkpoint_of(&tg_db(base_dir)).expect("checkpoint of the stopped tollgate");
    // Fill: airdrops to a mix of strangers and tollgate's own receiving addresses.
    let mut pool: Vec<Address> = (0..AIRDROP_STRANGERS)
        .map(|_| chain::random_address())
        .collect();
    pool.extend_from_slice(watched);
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let started = Instant::now();
    let mut sent = 0;
    while sent < s.logs {
        let n = AIRDROP_BATCH.min(s.logs - sent);
        let to: Vec<Address> = (0..n)
            .map(|_| pool[(rng.next_u64() % pool.len() as u64) as usize])
            .collect();
        anvil.airdrop(token, &to, 1).await;
        sent += n;
    }
    let head = anvil.block_number().await;
    log(&format!(
        "filled {sent} Transfer logs in {} blocks ({:.1} s)",
        head - cp_before,
        started.elapsed().as_secs_f64()
    ));

    let rpc = tollgate::chain::rpc::Rpc::new(std::slice::from_ref(&world.rpc)).expect("Rpc");
    let rpc = rpc.view(0, head).expect("the one endpoint's view");
    let range = rpc
        .transfer_logs(token, cp_before + 1, head)
        .await
        .expect("transfer_logs")
        .0;
    let watched_set: HashSet<String> = watched.iter().map(|a| a.to_checksum(None)).collect();
    let to_watched = range.iter().filter(|l| watched_set.contains(&l.to)).count();
    let range_logs = range.len();
    drop(range);
    let all_logs = rpc
        .transfer_logs(token, 0, head)
        .await
        .expect("transfer_logs")
        .0
        .len();

    let mut rows = vec![
        ScanRow {
            name: format!(
                "tollgate watcher, restart from its checkpoint (blocks {}–{head}; {} watched addresses, \
                 {to_watched} logs to them)",
                cp_before + 1,
                watched.len()
            ),
            logs: range_logs,
            secs: Vec::new(),
            goal: true,
        },
        ScanRow {
            name: format!("tollgate watcher, fresh store, `start_block = 0` (blocks 0–{head}; nothing watched)"),
            logs: all_logs,
            secs: Vec::new(),
            goal: true,
        },
        ScanRow {
            name: format!(
                "`View::transfer_logs` in-process, one call (blocks {}–{head})",
                cp_before + 1
            ),
            logs: range_logs,
            secs: Vec::new(),
            goal: true,
        },
        ScanRow {
            name: String::new(), // named below, once the response size is known
            logs: range_logs,
            secs: Vec::new(),
            goal: false,
        },
    ];
    // The node's share: the same eth_getLogs as raw HTTP, body read but not parsed.
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(120))
        .build()
        .expect("http client");
    let raw_request = json!({
        "jsonrpc": "2.0", "id": 1, "method": "eth_getLogs",
        "params": [{
            "address": token,
            "topics": [chain::transfer_topic()],
            "fromBlock": format!("{:#x}", cp_before + 1),
            "toBlock": format!("{head:#x}"),
        }],
    });
    let raw_get_logs = || async {
        let body = http
            .post(&world.rpc)
            .json(&raw_request)
            .send()
            .await
            .expect("eth_getLogs")
            .bytes()
            .await
            .expect("eth_getLogs body");
        body.len()
    };
    let raw_bytes = raw_get_logs().await;
    rows[3].name = format!(
        "anvil's part: the same `eth_getLogs` as raw HTTP, {:.1} MB read, not parsed",
        raw_bytes as f64 / 1e6
    );
    let config = world.config(None);
    for round in 0..s.rounds {
        for k in 0..rows.len() {
            let i = (k + round) % rows.len();
            let secs = match i {
                0 => {
                    let d = TempDir::new("scan");
                    copy_store(base_dir, d.path());
                    time_sync(d.path(), &config, "scan-restart", head)
                }
                1 => {
                    let d = TempDir::new("fresh");
                    time_sync(d.path(), &config, "scan-fresh", head)
                }
                3 => {
                    let t = Instant::now();
                    let n = raw_get_logs().await;
                    assert_eq!(n, raw_bytes);
                    t.elapsed().as_secs_f64()
                }
                _ => {
                    let t = Instant::now();
                    let n = rpc
                        .transfer_logs(token, cp_before + 1, head)
                        .await
                        .expect("transfer_logs")
                        .0
                        .len();
                    assert_eq!(n, range_logs);
                    t.elapsed().as_secs_f64()
                }
            };
            log(&format!(
                "round {}/{} scan row {i}: {} logs in {:.3} s = {:.0} logs/s",
                round + 1,
                s.rounds,
                rows[i].logs,
                secs,
                rows[i].logs as f64 / secs
            ));
            rows[i].secs.push(secs);
        }
    }
    (rows, range_logs, (head - cp_before) as usize)
}

fn print_scan(s: &Settings, rows: &[ScanRow], fill_logs: usize, fill_blocks: usize) {
    println!("### 3. Chain-scan throughput\n");
    println!(
        "{fill_logs} token Transfer logs from `airdrop` batches of {AIRDROP_BATCH} (one block each, \
         {fill_blocks} blocks) to {AIRDROP_STRANGERS} random addresses and tollgate's receiving \
         addresses. Watcher rows time spawn → `tollgate ready: chain watcher synced` (the end of \
         its first tick; the checkpoint is then checked to be the head), so they include process \
         start. {} interleaved round(s), median.\n",
        s.rounds
    );
    println!("| measure | logs | time | logs/s | goal | |");
    println!("| --- | ---: | ---: | ---: | ---: | --- |");
    for r in rows {
        let t = median(&r.secs);
        let rate = r.logs as f64 / t;
        let (goal, met) = if r.goal {
            ("≥ 50,000", verdict(rate >= 50_000.0))
        } else {
            ("", "")
        };
        println!(
            "| {} | {} | {} | {} | {goal} | {met} |",
            r.name,
            thousands(r.logs as f64),
            ms(t * 1000.0),
            thousands(rate),
        );
    }
    println!();
}

// ---------------------------------------------------------------- 4. RSS

fn page_size() -> u64 {
    Command::new("getconf")
        .arg("PAGESIZE")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(4096)
}

fn rss_bytes(page: u64) -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let resident: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("statm resident");
    resident * page
}

fn key_of(i: u64) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(i.to_le_bytes()).into()
}

fn fact_of(i: u64) -> tollgate::payments::service::PaidFact {
    tollgate::payments::service::PaidFact {
        scope: format!("/movies/some-title-{i}"),
        pid: format!("{:016x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
        paid_at: 1_795_925_016 + i,
        access_ttl_secs: 30 * 86_400,
        revoked: Vec::new(),
    }
}

/// In the child: builds one structure of 1M entries and prints
/// `entries BEFORE AFTER` (RSS bytes).
fn rss_child(kind: &str, page: u64) {
    let before = rss_bytes(page);
    let (entries, after) = match kind {
        "moka" => {
            // Exactly as PaymentService::new builds its cache.
            let cache: moka::sync::Cache<[u8; 32], tollgate::payments::service::PaidFact> =
                moka::sync::Cache::builder().max_capacity(ENTRIES).build();
            for i in 0..ENTRIES {
                cache.insert(key_of(i), fact_of(i));
            }
            cache.run_pending_tasks();
            let n = cache.entry_count();
            let after = rss_bytes(page);
            std::hint::black_box(&cache);
            (n, after)
        }
        "moka-fixed" => {
            // moka's own cost: the same keys, a 24-byte value with nothing on the heap.
            let cache: moka::sync::Cache<[u8; 32], (u64, u64, u64)> =
                moka::sync::Cache::builder().max_capacity(ENTRIES).build();
            for i in 0..ENTRIES {
                cache.insert(key_of(i), (i, i, i));
            }
            cache.run_pending_tasks();
            let n = cache.entry_count();
            let after = rss_bytes(page);
            std::hint::black_box(&cache);
            (n, after)
        }
        "hashmap" | "hashmap-fixed" => {
            // A plain std HashMap (no eviction bookkeeping), for comparison.
            if kind == "hashmap" {
                let mut m = std::collections::HashMap::new();
                for i in 0..ENTRIES {
                    m.insert(key_of(i), fact_of(i));
                }
                let after = rss_bytes(page);
                std::hint::black_box(&m);
                (m.len() as u64, after)
            } else {
                let mut m = std::collections::HashMap::new();
                for i in 0..ENTRIES {
                    m.insert(key_of(i), (i, i, i));
                }
                let after = rss_bytes(page);
                std::hint::black_box(&m);
                (m.len() as u64, after)
            }
        }
        "vec" => {
            // The data alone: keys and facts (with their heap strings) in a Vec.
            let mut v = Vec::with_capacity(ENTRIES as usize);
            for i in 0..ENTRIES {
                v.push((key_of(i), fact_of(i)));
            }
            let after = rss_bytes(page);
            std::hint::black_box(&v);
            (v.len() as u64, after)
        }
        other => panic!("unknown rss kind {other}"),
    };
    println!("{entries} {before} {after}");
}

struct RssRow {
    kind: &'static str,
    entries: u64,
    delta: u64,
}

fn bench_rss(page: u64) -> Vec<RssRow> {
    let exe = std::env::current_exe().expect("current_exe");
    let mut rows = Vec::new();
    for kind in ["moka", "vec", "moka-fixed", "hashmap", "hashmap-fixed"] {
        let out = Command::new(&exe)
            .args(["--rss-child", kind, &page.to_string()])
            .stderr(Stdio::inherit())
            .output()
            .expect("run rss child");
        assert!(out.status.success(), "rss child {kind} failed");
        let text = String::from_utf8_lossy(&out.stdout);
        let v: Vec<u64> = text
            .split_whitespace()
            .map(|x| x.parse().expect("rss child output"))
            .collect();
        let row = RssRow {
            kind,
            entries: v[0],
            delta: v[2].saturating_sub(v[1]),
        };
        log(&format!(
            "rss {kind}: {} entries, {:.1} B/entry",
            row.entries,
            row.delta as f64 / row.entries as f64
        ));
        rows.push(row);
    }
    rows
}

/// glibc's chunk for a `len`-byte allocation on 64-bit: 8 B header, 16 B aligned, 32 B minimum.
fn malloc_chunk(len: usize) -> usize {
    ((len + 8 + 15) & !15).max(32)
}

fn print_rss(rows: &[RssRow]) {
    let size = std::mem::size_of::<tollgate::payments::service::PaidFact>();
    let sample = fact_of(123_456);
    println!("### 4. RSS per cached receipt\n");
    println!(
        "{} entries, RSS from `/proc/self/statm` before and after (after `run_pending_tasks()`), \
         each structure in its own child process. Key `[u8; 32]` (32 B); `PaidFact` is {size} B \
         inline plus two heap strings: scope like `{}` ({} B, a {} B malloc chunk), pid `{}` \
         ({} B, a {} B chunk).\n",
        thousands(ENTRIES as f64),
        sample.scope,
        sample.scope.len(),
        malloc_chunk(sample.scope.len()),
        sample.pid,
        sample.pid.len(),
        malloc_chunk(sample.pid.len()),
    );
    println!("| structure | entries | RSS growth | bytes / entry | goal | |");
    println!("| --- | ---: | ---: | ---: | ---: | --- |");
    for r in rows {
        let per = r.delta as f64 / r.entries.max(1) as f64;
        let (name, goal) = match r.kind {
            "moka" => (
                "`moka::sync::Cache<[u8; 32], PaidFact>`, max_capacity 1M (as `PaymentService`)",
                Some(300.0),
            ),
            "vec" => (
                "`Vec<([u8; 32], PaidFact)>`: the data alone, no cache",
                None,
            ),
            "hashmap" => (
                "`std::collections::HashMap<[u8; 32], PaidFact>` (no eviction)",
                None,
            ),
            "hashmap-fixed" => (
                "`std::collections::HashMap<[u8; 32], (u64, u64, u64)>` (no eviction)",
                None,
            ),
            _ => (
                "`moka::sync::Cache<[u8; 32], (u64, u64, u64)>`: moka with a 24 B heap-free value",
                None,
            ),
        };
        match goal {
            Some(g) => println!(
                "| {name} | {} | {:.1} MiB | {per:.0} | ≤ {g:.0} | {} |",
                thousands(r.entries as f64),
                r.delta as f64 / 1048576.0,
                verdict(per <= g)
            ),
            None => println!(
                "| {name} | {} | {:.1} MiB | {per:.0} | | |",
                thousands(r.entries as f64),
                r.delta as f64 / 1048576.0
            ),
        }
    }
    println!();
}

// ---------------------------------------------------------------- main

async fn run(s: Settings) {
    let page = page_size();
    let needs_chain = s.wants("replay") || s.wants("latency") || s.wants("scan");
    println!("## tollgate payment benchmarks\n");
    println!(
        "host: {} cores; tollgate `{}`; generated by `cargo bench --bench payments`\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        Path::new(env!("CARGO_BIN_EXE_tollgate")).display()
    );
    if needs_chain {
        let origin_bin = build_fast_origin();
        let work = TempDir::new("work");
        let (origin_proc, origin) = start_origin(&origin_bin, work.path());
        log("starting anvil");
        let anvil = Anvil::start(CHAIN_ID);
        let token = anvil.deploy_token().await;
        let payer = anvil.dev_account(1).await;
        anvil.mint(token, payer, 1_000_000 * ONE_TOKEN).await;
        let world = World {
            origin,
            origin_pid: origin_proc.pid(),
            rpc: anvil.rpc_url().to_string(),
            token,
            xpub: merchant_xpub(1),
            pg_xpub: merchant_xpub(2),
            threads: s.threads,
        };
        let main_dir = TempDir::new("main");
        let mut tg = Tg::start(main_dir.path(), &world.config(None), "main");
        let api = Api::new(tg.base());
        let mut watched: Vec<Address> = Vec::new();

        if s.wants("replay") {
            log(&format!(
                "making {} payments through the HTTP API",
                s.payments
            ));
            let t = Instant::now();
            let paths: Vec<String> = (0..s.payments)
                .map(|i| format!("/movies/some-title-{i}"))
                .collect();
            let paid = pay_all(&api, &anvil, token, paths.clone()).await;
            log(&format!(
                "{} payments paid, receipts in hand ({:.1} s)",
                paid.len(),
                t.elapsed().as_secs_f64()
            ));
            watched.extend(paid.iter().map(|(_, c, _)| claim_address(c)));
            // The PostgreSQL store gets payments of its own, for the same paths, made
            // the same way through its own tollgate.
            let pg = match s.wants_pg() {
                Ok(()) => Ok(pg_setup(&world, &anvil, token, paths).await),
                Err(why) => {
                    log(&format!("PostgreSQL rows skipped: {why}"));
                    Err(why)
                }
            };
            let r = bench_replay(
                &s,
                &world,
                work.path(),
                main_dir.path(),
                &tg,
                &paid,
                pg.as_ref().map_err(String::clone),
            )
            .await;
            print_replay(&s, paid.len(), &r);
            drop(pg);
        }
        if s.wants("latency") {
            log(&format!(
                "confirmation latency over {} payments",
                s.confirms
            ));
            let (lat, addrs) = bench_latency(&s, &anvil, token, &api).await;
            watched.extend(addrs);
            print_latency(&lat);
        }
        if s.wants("scan") {
            if watched.is_empty() {
                // Give the store some receiving addresses of its own.
                for i in 0..20 {
                    let c = api
                        .claim(&api.contract(&format!("/movies/scan-{i}")).await)
                        .await;
                    watched.push(claim_address(&c));
                }
            }
            tg.proc.stop();
            log(&format!("filling the chain with {} Transfer logs", s.logs));
            let (rows, fill_logs, fill_blocks) =
                bench_scan(&s, &world, &anvil, token, main_dir.path(), &watched).await;
            print_scan(&s, &rows, fill_logs, fill_blocks);
        }
        tg.proc.stop();
    }
    if s.wants("rss") {
        log("RSS per cached receipt (1M entries)");
        let rows = bench_rss(page);
        print_rss(&rows);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--rss-child") {
        let kind = args.get(i + 1).expect("kind");
        let page = args.get(i + 2).and_then(|p| p.parse().ok()).unwrap_or(4096);
        rss_child(kind, page);
        return;
    }
    // `cargo bench -- FILTER` passes arguments meant for the libtest harness; a
    // `--list` (from tools enumerating benchmarks) lists nothing and exits.
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let s = Settings::from_env();
    let started = *STARTED.get_or_init(Instant::now);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        tokio::select! {
            () = run(s) => {}
            _ = tokio::signal::ctrl_c() => {
                log("interrupted: stopping everything started");
            }
        }
    });
    log(&format!("done in {:.0} s", started.elapsed().as_secs_f64()));
}
