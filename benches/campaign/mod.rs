//! Load and fault campaigns against the real `tollgate` binary (issue 13): what was
//! thrown at it, what it held, what broke. Shared by the bench program
//! (`benches/campaigns.rs`, release binary, full scale) and the CI smoke
//! (`tests/campaigns.rs`, debug binary, small scale), so both run the same code:
//!
//! 1. [`flood`]: thousands of concurrent kept-alive connections, each served,
//!    while a probe measures free-path and 402 latency (unloaded first, same run);
//! 2. [`slowloris`]: slow heads, heads over 64 KiB and oversized endpoint bodies,
//!    all closed by the limits, while the probe measures latency;
//! 3. [`faults`]: payment flows while the chain RPC flaps and the SQLite store's
//!    disk fills up and drains again;
//! 4. [`kills`]: payment flows while tollgate is killed with SIGKILL every few
//!    seconds and restarted on the same store;
//! 5. [`claims`]: a flood of unpaid claims while paid receipts are replayed from
//!    the store (replay latency unloaded first, same run).
//!
//! Everything listens on 127.0.0.1 with ephemeral ports. Every process started here
//! (anvil, each tollgate) is stopped by pid when its guard drops, on panic too; the
//! tmpfs of campaign 3 is unmounted the same way.

#![allow(dead_code)]

#[path = "../../tests/support/mod.rs"]
pub mod support;

pub mod claims;
pub mod faults;
pub mod flood;
pub mod http;
pub mod kills;
pub mod payflow;
pub mod probe;
pub mod slowloris;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use alloy::primitives::Address;

use support::background_server::BackgroundServer;
use support::chain::Anvil;
use support::{PaymentsConfig, Tollgate, TEST_KEY};

pub const CHAIN_ID: u64 = 31337;
/// The price of every priced path ("0.01" 0xBTC) in base units.
pub const PRICE: u128 = support::chain::ONE_TOKEN / 100;

// ---------------------------------------------------------------- settings

/// Which store-write fault campaign 3 uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreFaultKind {
    /// tmpfs if it can be mounted, else the write lock (saying why).
    Auto,
    /// The store on a small tmpfs that is filled with a file and drained again.
    Tmpfs,
    /// Another connection holds SQLite's write lock, so tollgate's writes time out
    /// (`SQLITE_BUSY` after its 5 s busy timeout): no root needed.
    Lock,
}

/// Scale and durations of every campaign.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Campaigns to run (`flood`, `slowloris`, `faults`, `kills`); all when `None`.
    pub only: Option<Vec<String>>,
    /// `server.threads` of every tollgate.
    pub threads: usize,
    /// Length of each probe run (unloaded, loaded), seconds.
    pub probe_secs: f64,
    /// Pause between two probe requests.
    pub probe_gap_ms: u64,
    /// 1: kept-alive connections.
    pub flood_connections: usize,
    /// 1: mean pause between two requests on one flood connection (jittered ±50 %).
    pub flood_interval_ms: u64,
    /// 1: floods one after the other on the same tollgate (memory must not add up).
    pub flood_waves: usize,
    /// 2: slowloris connections held open at once.
    pub slowloris: usize,
    /// 2: `server.header_timeout`, whole seconds.
    pub header_timeout_secs: u64,
    /// 2: how long the attack lasts, seconds.
    pub attack_secs: f64,
    /// 2: pause between two bytes of a slow head.
    pub trickle_ms: u64,
    /// 2: oversized heads per second, and as many oversized bodies.
    pub oversized_rate: f64,
    /// 3: payment flows.
    pub fault_flows: usize,
    /// 3: how long the faults go on, seconds (flows start spread over it).
    pub fault_secs: f64,
    /// 3: the RPC is down this long, then up this long, and so on.
    pub rpc_flap_secs: f64,
    /// 3: the store's disk stays full this long …
    pub disk_full_secs: f64,
    /// 3: … after having been free this long.
    pub disk_free_secs: f64,
    pub store_fault: StoreFaultKind,
    /// 3: size of the tmpfs.
    pub tmpfs_mib: u64,
    /// 4: payment flows.
    pub kill_flows: usize,
    /// 4: how long the killing goes on, seconds (flows start spread over it).
    pub kill_secs: f64,
    /// 4: mean time between two kills (jittered ±50 %).
    pub kill_every_ms: u64,
    /// 5: clients claiming as fast as tollgate answers.
    pub claim_clients: usize,
    /// 5: payments made first whose receipts are replayed.
    pub claim_paid: usize,
    /// 5: how long the claim flood lasts, seconds.
    pub claim_secs: f64,
    /// 3, 4: `chain.poll_interval`.
    pub poll_ms: u64,
    /// 3, 4: `chain.confirmations`.
    pub confirmations: u64,
    /// 3, 4: a block is mined this often (besides the transfers' own).
    pub mine_every_ms: u64,
    /// 3, 4: how long flows may take to finish once the faults stop, seconds.
    pub settle_secs: f64,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v.trim().parse().unwrap_or_else(|_| {
            eprintln!("campaigns: {name}={v:?} is not a valid value");
            std::process::exit(2);
        }),
        _ => default,
    }
}

impl Settings {
    /// The full campaigns of issue 13.
    pub fn full() -> Settings {
        Settings {
            only: None,
            threads: 2,
            probe_secs: 10.0,
            probe_gap_ms: 5,
            flood_connections: 10_000,
            flood_interval_ms: 5000,
            flood_waves: 3,
            slowloris: 2000,
            header_timeout_secs: 3,
            attack_secs: 20.0,
            trickle_ms: 1000,
            oversized_rate: 20.0,
            fault_flows: 100,
            fault_secs: 60.0,
            rpc_flap_secs: 3.0,
            disk_full_secs: 6.0,
            disk_free_secs: 6.0,
            store_fault: StoreFaultKind::Auto,
            tmpfs_mib: 32,
            kill_flows: 200,
            kill_secs: 60.0,
            kill_every_ms: 3000,
            claim_clients: 32,
            claim_paid: 20,
            claim_secs: 20.0,
            poll_ms: 200,
            confirmations: 2,
            mine_every_ms: 1000,
            settle_secs: 120.0,
        }
    }

    /// A short run of every campaign for CI (debug binary, well under a minute).
    pub fn smoke() -> Settings {
        Settings {
            only: None,
            threads: 2,
            probe_secs: 1.0,
            probe_gap_ms: 5,
            flood_connections: 200,
            flood_interval_ms: 500,
            flood_waves: 2,
            slowloris: 50,
            header_timeout_secs: 1,
            attack_secs: 3.0,
            trickle_ms: 300,
            oversized_rate: 10.0,
            fault_flows: 5,
            fault_secs: 8.0,
            rpc_flap_secs: 1.5,
            disk_full_secs: 2.0,
            disk_free_secs: 1.5,
            store_fault: StoreFaultKind::Auto,
            tmpfs_mib: 16,
            kill_flows: 10,
            kill_secs: 8.0,
            kill_every_ms: 1500,
            claim_clients: 4,
            claim_paid: 3,
            claim_secs: 2.0,
            poll_ms: 100,
            confirmations: 2,
            mine_every_ms: 300,
            settle_secs: 60.0,
        }
    }

    /// [`Settings::full`] (or [`Settings::smoke`] with `CAMPAIGN_PRESET=smoke`)
    /// with every `CAMPAIGN_*` variable that is set.
    pub fn from_env() -> Settings {
        let d = match std::env::var("CAMPAIGN_PRESET").as_deref() {
            Ok("smoke") => Settings::smoke(),
            Ok("full") | Ok("") | Err(_) => Settings::full(),
            Ok(v) => {
                eprintln!("campaigns: CAMPAIGN_PRESET={v:?}: one of full, smoke");
                std::process::exit(2);
            }
        };
        let store_fault = match std::env::var("CAMPAIGN_STORE_FAULT").as_deref() {
            Ok("tmpfs") => StoreFaultKind::Tmpfs,
            Ok("lock") => StoreFaultKind::Lock,
            Ok("auto") | Ok("") | Err(_) => StoreFaultKind::Auto,
            Ok(v) => {
                eprintln!("campaigns: CAMPAIGN_STORE_FAULT={v:?}: one of auto, tmpfs, lock");
                std::process::exit(2);
            }
        };
        let only = std::env::var("CAMPAIGN_ONLY")
            .ok()
            .filter(|v| !v.trim().is_empty())
            .map(|v| {
                let list: Vec<String> = v.split(',').map(|s| s.trim().to_string()).collect();
                for c in &list {
                    if !CAMPAIGNS.contains(&c.as_str()) {
                        eprintln!("campaigns: CAMPAIGN_ONLY: unknown campaign {c:?} (one of {CAMPAIGNS:?})");
                        std::process::exit(2);
                    }
                }
                list
            });
        Settings {
            only,
            threads: env_or("CAMPAIGN_THREADS", d.threads),
            probe_secs: env_or("CAMPAIGN_PROBE_SECS", d.probe_secs),
            probe_gap_ms: env_or("CAMPAIGN_PROBE_GAP_MS", d.probe_gap_ms),
            flood_connections: env_or("CAMPAIGN_FLOOD_CONNECTIONS", d.flood_connections),
            flood_interval_ms: env_or("CAMPAIGN_FLOOD_INTERVAL_MS", d.flood_interval_ms),
            flood_waves: env_or("CAMPAIGN_FLOOD_WAVES", d.flood_waves),
            slowloris: env_or("CAMPAIGN_SLOWLORIS", d.slowloris),
            header_timeout_secs: env_or("CAMPAIGN_HEADER_TIMEOUT", d.header_timeout_secs),
            attack_secs: env_or("CAMPAIGN_ATTACK_SECS", d.attack_secs),
            trickle_ms: env_or("CAMPAIGN_TRICKLE_MS", d.trickle_ms),
            oversized_rate: env_or("CAMPAIGN_OVERSIZED_RATE", d.oversized_rate),
            fault_flows: env_or("CAMPAIGN_FAULT_FLOWS", d.fault_flows),
            fault_secs: env_or("CAMPAIGN_FAULT_SECS", d.fault_secs),
            rpc_flap_secs: env_or("CAMPAIGN_RPC_FLAP_SECS", d.rpc_flap_secs),
            disk_full_secs: env_or("CAMPAIGN_DISK_FULL_SECS", d.disk_full_secs),
            disk_free_secs: env_or("CAMPAIGN_DISK_FREE_SECS", d.disk_free_secs),
            store_fault,
            tmpfs_mib: env_or("CAMPAIGN_TMPFS_MIB", d.tmpfs_mib),
            kill_flows: env_or("CAMPAIGN_KILL_FLOWS", d.kill_flows),
            kill_secs: env_or("CAMPAIGN_KILL_SECS", d.kill_secs),
            kill_every_ms: env_or("CAMPAIGN_KILL_EVERY_MS", d.kill_every_ms),
            claim_clients: env_or("CAMPAIGN_CLAIM_CLIENTS", d.claim_clients),
            claim_paid: env_or("CAMPAIGN_CLAIM_PAID", d.claim_paid),
            claim_secs: env_or("CAMPAIGN_CLAIM_SECS", d.claim_secs),
            poll_ms: env_or("CAMPAIGN_POLL_MS", d.poll_ms),
            confirmations: env_or("CAMPAIGN_CONFIRMATIONS", d.confirmations),
            mine_every_ms: env_or("CAMPAIGN_MINE_EVERY_MS", d.mine_every_ms),
            settle_secs: env_or("CAMPAIGN_SETTLE_SECS", d.settle_secs),
        }
    }

    pub fn wants(&self, campaign: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|l| l.iter().any(|c| c == campaign))
    }
}

/// The campaigns, in the order they run.
pub const CAMPAIGNS: [&str; 5] = ["flood", "slowloris", "faults", "kills", "claims"];

// ---------------------------------------------------------------- progress

static STARTED: OnceLock<Instant> = OnceLock::new();

/// A progress line on stderr.
pub fn log(msg: &str) {
    let t = STARTED.get_or_init(Instant::now).elapsed().as_secs_f64();
    eprintln!("[campaigns {t:6.1}s] {msg}");
}

pub fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

/// `base` jittered by ±50 % with `rng`.
pub fn jitter(rng: &mut support::Xorshift, base: Duration) -> Duration {
    let f = 0.5 + (rng.next() % 1001) as f64 / 1000.0;
    base.mul_f64(f)
}

/// Waits until `rx` holds a value for which `f` is true (or its sender is gone).
/// The value is not returned: a `watch::Ref` must not live in a task's state.
pub async fn until<T>(rx: &mut tokio::sync::watch::Receiver<T>, f: impl FnMut(&T) -> bool) {
    let _ = rx.wait_for(f).await;
}

// ---------------------------------------------------------------- limits of this process

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (children inherit it: tollgate
/// needs one descriptor per connection too). Returns (soft, hard) after.
pub fn raise_nofile() -> (u64, u64) {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    if soft < hard {
        if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            log(&format!(
                "could not raise RLIMIT_NOFILE from {soft} to {hard}: {e}"
            ));
            return (soft, hard);
        }
    }
    (hard, hard)
}

// ---------------------------------------------------------------- the world

/// The fixed answer of the campaign origin.
const ORIGIN_BODY: &str = "tollgate campaign origin: a fixed body\n";

/// What every campaign shares: anvil with Test 0xBTC (the payer, dev account 1,
/// funded) and an origin answering every path with 200.
pub struct World {
    pub anvil: Arc<Anvil>,
    pub token: Address,
    pub origin: SocketAddr,
    _origin: BackgroundServer,
}

impl World {
    pub async fn start() -> World {
        let (anvil, token) = support::funded_chain(CHAIN_ID).await;
        let origin = BackgroundServer::start(|| {
            axum::Router::new()
                .fallback(|| async { ([("content-type", "text/plain")], ORIGIN_BODY) })
        });
        log(&format!(
            "anvil pid {} at {}, token {token}, origin {}",
            anvil.pid(),
            anvil.rpc_url(),
            origin.addr
        ));
        World {
            anvil: Arc::new(anvil),
            token,
            origin: origin.addr,
            _origin: origin,
        }
    }

    /// A tollgate config: `rpc`, the store at `store_url`, `[server]` extras
    /// (limits), confirmations and poll interval from `s`; an admin listener (for
    /// `/metrics`), a generous claim budget and one priced route `/movies/*`.
    pub fn config(&self, s: &Settings, rpc: &str, store_url: &str, server_extra: &str) -> String {
        let rest = r#"
[payments]
expiry = "30m"
access_ttl = "30d"
claim_rate = "1000000/min"
[admin]
listen = "127.0.0.1:0"
allow = ["127.0.0.1/32"]
[[route]]
path = "/movies/*"
price = "0.01"
summary = "Movie {path}"
"#;
        PaymentsConfig {
            confirmations: s.confirmations,
            secrets_extra: "postback_key_env = \"TOLLGATE_TEST_KEY\"",
            ..PaymentsConfig::local(self.origin, rpc, CHAIN_ID, self.token, rest)
        }
        .render_on(store_url, &format!("{}ms", s.poll_ms))
        .replace(
            "threads = 2\n",
            &format!("threads = {}\n{server_extra}\n", s.threads),
        )
    }
}

/// Starts tollgate in `dir` (its working directory: config, logs, and the store
/// when the URL is relative) off the async threads.
pub async fn start_tollgate(dir: &Path, config: &str) -> Tollgate {
    let dir = dir.to_path_buf();
    let config = config.to_string();
    tokio::task::spawn_blocking(move || {
        Tollgate::start_in(&dir, &config, &[("TOLLGATE_TEST_KEY", TEST_KEY)])
    })
    .await
    .expect("start tollgate")
}

/// Stops `tg` (SIGINT, waited for) off the async threads.
pub async fn stop_tollgate(tg: Tollgate) {
    tokio::task::spawn_blocking(move || drop(tg))
        .await
        .expect("stop tollgate");
}

/// A `/proc/PID/status` field in KiB (`VmRSS`, `VmHWM`); 0 when unreadable.
pub fn proc_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Open file descriptors of `pid`.
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// `tollgate_connections_closed_total` by reason (`full`, `slow_head`,
/// `large_head`), from `/metrics` on the admin listener.
pub async fn closed_by_limits(admin: SocketAddr) -> Vec<(String, u64)> {
    let text = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
        .get(format!("http://{admin}/metrics"))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .filter_map(|l| l.strip_prefix("tollgate_connections_closed_total{reason=\""))
        .filter_map(|l| {
            let (reason, rest) = l.split_once("\"}")?;
            Some((reason.to_string(), rest.trim().parse().ok()?))
        })
        .collect()
}

pub fn closed_count(m: &[(String, u64)], reason: &str) -> u64 {
    m.iter().find(|(r, _)| r == reason).map_or(0, |(_, n)| *n)
}

/// Lines of tollgate's logs in `dir` (every `stderr-*.log` the harness wrote, one
/// per start) that report a panic.
pub fn panics_in(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("stderr-") {
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            out.extend(
                text.lines()
                    .filter(|l| l.contains("panicked"))
                    .map(|l| format!("{name}: {l}")),
            );
        }
    }
    out
}

/// Copies tollgate's logs in `dir` to `$CAMPAIGN_LOGS/<campaign>-<file>` when
/// `CAMPAIGN_LOGS` is set (the campaign's directories are removed at its end).
pub fn keep_logs(dir: &Path, campaign: &str) {
    let Some(to) = std::env::var_os("CAMPAIGN_LOGS") else {
        return;
    };
    let to = Path::new(&to);
    let _ = std::fs::create_dir_all(to);
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("stderr-") {
            let _ = std::fs::copy(e.path(), to.join(format!("{campaign}-{name}")));
        }
    }
}

/// Failed chain-watcher ticks in tollgate's logs in `dir`: (store failures, RPC
/// failures).
pub fn watcher_failures(dir: &Path) -> (u64, u64) {
    let (mut store, mut rpc) = (0, 0);
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if !e.file_name().to_string_lossy().starts_with("stderr-") {
            continue;
        }
        let text = std::fs::read_to_string(e.path()).unwrap_or_default();
        for l in text
            .lines()
            .filter(|l| l.contains("chain watcher tick failed"))
        {
            if l.contains("store unavailable") {
                store += 1;
            } else {
                rpc += 1;
            }
        }
    }
    (store, rpc)
}

// ---------------------------------------------------------------- the report

/// One row of the table.
#[derive(Debug, Clone)]
pub struct Row {
    pub campaign: String,
    pub thrown: String,
    pub held: String,
    /// What broke, in words ("nothing" when nothing did).
    pub broke: String,
    /// How many things broke (0 = the campaign held).
    pub broken: u64,
    pub key: String,
}

/// Every campaign's outcome.
#[derive(Default)]
pub struct Report {
    pub flood: Option<flood::FloodResult>,
    pub slowloris: Option<slowloris::SlowResult>,
    pub faults: Option<faults::FaultResult>,
    pub kills: Option<kills::KillResult>,
    pub claims: Option<claims::ClaimResult>,
}

impl Report {
    pub fn rows(&self) -> Vec<Row> {
        let mut rows = Vec::new();
        if let Some(r) = &self.flood {
            rows.push(r.row());
        }
        if let Some(r) = &self.slowloris {
            rows.push(r.row());
        }
        if let Some(r) = &self.faults {
            rows.push(r.row());
        }
        if let Some(r) = &self.kills {
            rows.push(r.row());
        }
        if let Some(r) = &self.claims {
            rows.push(r.row());
        }
        rows
    }

    /// Things broken over all campaigns.
    pub fn broken(&self) -> u64 {
        self.rows().iter().map(|r| r.broken).sum()
    }

    /// The markdown table.
    pub fn table(&self) -> String {
        let mut t = String::from(
            "| campaign | thrown | held | broke | key numbers |\n| --- | --- | --- | --- | --- |\n",
        );
        for r in self.rows() {
            let _ = writeln!(
                t,
                "| {} | {} | {} | {} | {} |",
                r.campaign, r.thrown, r.held, r.broke, r.key
            );
        }
        t
    }
}

/// A decimal 0xBTC amount ("0.01") in base units (8 decimals).
pub fn parse_units(s: &str) -> Option<u128> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if frac.len() > 8 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let int: u128 = int.parse().ok()?;
    let frac: u128 = format!("{frac:0<8}").parse().ok()?;
    Some(int * 100_000_000 + frac)
}

/// Formats `n` with thousands separators.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A latency in ms with sensible precision.
pub fn ms(v: f64) -> String {
    if v.is_nan() {
        "n/a".into()
    } else if v < 10.0 {
        format!("{v:.2} ms")
    } else {
        format!("{v:.1} ms")
    }
}

/// "nothing" or the list of what broke.
pub fn broke_text(items: &[(u64, String)]) -> (String, u64) {
    let hit: Vec<&(u64, String)> = items.iter().filter(|(n, _)| *n > 0).collect();
    let total = hit.iter().map(|(n, _)| *n).sum();
    if hit.is_empty() {
        ("nothing".into(), 0)
    } else {
        (
            hit.iter()
                .map(|(n, w)| format!("**{} {w}**", thousands(*n)))
                .collect::<Vec<_>>()
                .join("; "),
            total,
        )
    }
}

/// Runs the campaigns `s` selects, in order, on one shared world.
pub async fn run_all(s: &Settings) -> Report {
    STARTED.get_or_init(Instant::now);
    let (soft, hard) = raise_nofile();
    log(&format!("RLIMIT_NOFILE {soft}/{hard}; settings: {s:?}"));
    let world = World::start().await;
    let mut report = Report::default();
    if s.wants("flood") {
        report.flood = Some(flood::run(s, &world).await);
    }
    if s.wants("slowloris") {
        report.slowloris = Some(slowloris::run(s, &world).await);
    }
    if s.wants("faults") {
        report.faults = Some(faults::run(s, &world).await);
    }
    if s.wants("kills") {
        report.kills = Some(kills::run(s, &world).await);
    }
    if s.wants("claims") {
        report.claims = Some(claims::run(s, &world).await);
    }
    report
}
