//! Campaign 5, a claim flood: do unpaid claims slow the replays of paid receipts?
//! `claim_paid` payments are made and paid first; then their receipts are replayed
//! one after another for `probe_secs` (unloaded), and again for `claim_secs` while
//! `claim_clients` clients claim fresh contracts as fast as tollgate answers (each
//! a 402 for a new path, then `POST /_tollgate/pay`: a new payment row and a new
//! derived address, never paid). The store is SQLite with `cache_capacity = 1`, so
//! nearly every replay reads the store: the reads a flood could slow.
//!
//! Broke: a replay not answered 200, a claim answered anything but 201 (or a 5xx
//! anywhere), a panic. Held: every replay served, and the replay p99 under the
//! flood beside the unloaded one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::http::{get, Conn};
use super::payflow::{run_flows, start_payer, FlowRecord};
use super::probe::p50_p99;
use super::support::TempDir;
use super::{
    broke_text, log, ms, panics_in, proc_kib, secs, start_tollgate, stop_tollgate, thousands, Row,
    Settings, World,
};

/// What campaign 5 saw.
pub struct ClaimResult {
    pub clients: usize,
    pub claim_secs: f64,
    pub paid: usize,
    /// Claims answered 201 during the flood.
    pub claims: u64,
    /// Claims (or their 402s) answered otherwise; of them 5xx.
    pub claims_bad: u64,
    pub claims_5xx: u64,
    /// Claim connections that failed on the socket.
    pub claim_errors: u64,
    pub unloaded: Replays,
    pub loaded: Replays,
    /// Payments in the store at the end.
    pub payments_in_store: u64,
    pub peak_kib: u64,
    pub panics: Vec<String>,
}

/// One replay run.
#[derive(Debug, Default, Clone)]
pub struct Replays {
    /// Latencies of replays answered 200.
    pub ok: Vec<Duration>,
    /// Replays answered otherwise (a paid receipt refused, an error page).
    pub refused: u64,
    /// Replays that failed on the socket.
    pub errors: u64,
}

/// `GET path` with the receipt, as a program replays it.
fn replay_request(rec: &FlowRecord) -> Vec<u8> {
    get(
        &rec.path,
        &format!(
            "Authorization: Tollgate {}\r\nAccept: application/json\r\n",
            rec.receipt
        ),
    )
}

/// Replays `records`' receipts in turn on one kept-alive connection for `dur`.
async fn replay_run(addr: std::net::SocketAddr, records: &[FlowRecord], dur: Duration) -> Replays {
    let reqs: Vec<Vec<u8>> = records.iter().map(replay_request).collect();
    let mut out = Replays::default();
    let mut conn: Option<Conn> = None;
    let end = Instant::now() + dur;
    let mut i = 0usize;
    while Instant::now() < end && !reqs.is_empty() {
        let req = &reqs[i % reqs.len()];
        i += 1;
        if conn.is_none() {
            match Conn::connect(addr).await {
                Ok(c) => conn = Some(c),
                Err(_) => {
                    out.errors += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            }
        }
        let t0 = Instant::now();
        let c = conn.as_mut().expect("connected");
        match tokio::time::timeout(Duration::from_secs(30), c.send(req)).await {
            Ok(Ok(r)) if r.status == 200 => out.ok.push(t0.elapsed()),
            Ok(Ok(_)) => out.refused += 1,
            _ => {
                out.errors += 1;
                conn = None;
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    out
}

/// [`replay_run`] on a thread and runtime of its own (the flood's tasks must not
/// delay the replayer's).
async fn replay_isolated(
    addr: std::net::SocketAddr,
    records: Vec<FlowRecord>,
    dur: Duration,
) -> Replays {
    super::probe::isolated(move || async move { replay_run(addr, &records, dur).await }).await
}

#[derive(Default)]
struct Counters {
    claims: AtomicU64,
    bad: AtomicU64,
    server_errors: AtomicU64,
    errors: AtomicU64,
}

/// One flooding client: a 402 for a fresh path, its contract claimed, again, on one
/// kept-alive connection, until `stop` says so.
async fn claimer(
    addr: std::net::SocketAddr,
    client: usize,
    c: Arc<Counters>,
    mut stop: watch::Receiver<bool>,
) {
    let mut conn: Option<Conn> = None;
    let mut n = 0u64;
    loop {
        if *stop.borrow() {
            return;
        }
        if conn.is_none() {
            match Conn::connect(addr).await {
                Ok(x) => conn = Some(x),
                Err(_) => {
                    c.errors.fetch_add(1, Ordering::Relaxed);
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(50)) => continue,
                        _ = super::until(&mut stop, |s| *s) => return,
                    }
                }
            }
        }
        n += 1;
        let x = conn.as_mut().expect("connected");
        let challenge = get(
            &format!("/movies/claim-flood-{client}-{n}"),
            "Accept: application/json\r\n",
        );
        let r = match x.send(&challenge).await {
            Ok(r) => r,
            Err(_) => {
                c.errors.fetch_add(1, Ordering::Relaxed);
                conn = None;
                continue;
            }
        };
        let token = (r.status == 402)
            .then(|| serde_json::from_slice::<serde_json::Value>(&r.body).ok())
            .flatten()
            .and_then(|v| v["contract_token"].as_str().map(str::to_string));
        let Some(token) = token else {
            c.bad.fetch_add(1, Ordering::Relaxed);
            if r.status >= 500 {
                c.server_errors.fetch_add(1, Ordering::Relaxed);
            }
            continue;
        };
        let body = serde_json::json!({ "contract": token }).to_string();
        let claim = format!(
            "POST /_tollgate/pay HTTP/1.1\r\nHost: tollgate.test\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        match x.send(claim.as_bytes()).await {
            Ok(r) if r.status == 201 => {
                c.claims.fetch_add(1, Ordering::Relaxed);
            }
            Ok(r) => {
                c.bad.fetch_add(1, Ordering::Relaxed);
                if r.status >= 500 {
                    c.server_errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(_) => {
                c.errors.fetch_add(1, Ordering::Relaxed);
                conn = None;
            }
        }
    }
}

pub async fn run(s: &Settings, world: &World) -> ClaimResult {
    log(&format!(
        "5. claim flood: {} paid receipts replayed while {} clients claim for {} s",
        s.claim_paid, s.claim_clients, s.claim_secs
    ));
    let dir = TempDir::new("campaign-claims");
    let config = world
        .config(s, world.anvil.rpc_url(), "sqlite://tollgate.db", "")
        .replace("[store]\n", "[store]\ncache_capacity = 1\n");
    assert!(config.contains("cache_capacity = 1"), "{config}");
    let tg = start_tollgate(dir.path(), &config).await;
    let (flows, miner_stop, miner) = start_payer(world, s, tg.addr);
    let records: Vec<FlowRecord> = run_flows(
        &flows,
        s.claim_paid,
        "claims-paid",
        Duration::ZERO,
        Instant::now() + secs(s.settle_secs),
    )
    .await
    .into_iter()
    .filter(|r| r.completed)
    .collect();
    let _ = miner_stop.send(true);
    let _ = miner.await;
    log(&format!(
        "   {} payments paid; replaying unloaded for {} s",
        records.len(),
        s.probe_secs
    ));
    let unloaded = replay_isolated(tg.addr, records.clone(), secs(s.probe_secs)).await;
    log(&format!(
        "   flooding with claims for {} s while replaying",
        s.claim_secs
    ));
    let counters = Arc::new(Counters::default());
    let (stop, stop_rx) = watch::channel(false);
    let clients: Vec<_> = (0..s.claim_clients)
        .map(|i| tokio::spawn(claimer(tg.addr, i, counters.clone(), stop_rx.clone())))
        .collect();
    let loaded = replay_isolated(tg.addr, records.clone(), secs(s.claim_secs)).await;
    let _ = stop.send(true);
    for c in clients {
        let _ = c.await;
    }
    let peak_kib = proc_kib(tg.child.id(), "VmHWM");
    stop_tollgate(tg).await;
    let payments_in_store = rusqlite::Connection::open(dir.path().join("tollgate.db"))
        .and_then(|c| c.query_row("SELECT COUNT(*) FROM payments", [], |r| r.get::<_, i64>(0)))
        .map_or(0, |n| n as u64);
    let panics = panics_in(dir.path());
    super::keep_logs(dir.path(), "claims");
    let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let r = ClaimResult {
        clients: s.claim_clients,
        claim_secs: s.claim_secs,
        paid: records.len(),
        claims: g(&counters.claims),
        claims_bad: g(&counters.bad),
        claims_5xx: g(&counters.server_errors),
        claim_errors: g(&counters.errors),
        unloaded,
        loaded,
        payments_in_store,
        peak_kib,
        panics,
    };
    log(&format!("   {}", r.row().key));
    r
}

impl ClaimResult {
    /// Loaded replay p99 over unloaded replay p99.
    pub fn p99_ratio(&self) -> f64 {
        p50_p99(&self.loaded.ok).1 / p50_p99(&self.unloaded.ok).1
    }

    pub fn row(&self) -> Row {
        let (u50, u99) = p50_p99(&self.unloaded.ok);
        let (l50, l99) = p50_p99(&self.loaded.ok);
        let (broke, broken) = broke_text(&[
            (
                self.unloaded.refused + self.loaded.refused,
                "replays of paid receipts refused".into(),
            ),
            (
                self.unloaded.errors + self.loaded.errors,
                "replays failed on the socket".into(),
            ),
            (self.claims_5xx, "5xx to claims".into()),
            (
                self.claims_bad - self.claims_5xx,
                "claims answered other than 201".into(),
            ),
            (self.panics.len() as u64, "panics".into()),
        ]);
        Row {
            campaign: "5. claim flood".into(),
            thrown: format!(
                "{} clients claiming fresh contracts for {} s: {} claims ({} /s), each a new payment row and address; store SQLite, `cache_capacity = 1` so replays read the store",
                self.clients,
                self.claim_secs,
                thousands(self.claims),
                thousands((self.claims as f64 / self.claim_secs.max(0.001)) as u64),
            ),
            held: format!(
                "{} replays of {} paid receipts, all 200; {} payments in the store at the end; peak RSS {} MiB",
                thousands((self.unloaded.ok.len() + self.loaded.ok.len()) as u64),
                self.paid,
                thousands(self.payments_in_store),
                self.peak_kib / 1024,
            ),
            broke,
            broken,
            key: format!(
                "replay p50/p99 unloaded {} / {}, during the flood {} / {} (p99 ×{:.2})",
                ms(u50),
                ms(u99),
                ms(l50),
                ms(l99),
                self.p99_ratio()
            ),
        }
    }
}
