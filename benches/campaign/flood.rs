//! Campaign 1, the keep-alive flood: `flood_connections` connections are opened
//! (256 connects in flight at most) and each is served a first request; then every
//! connection keeps sending a request every `flood_interval_ms` (±50 %) while the
//! probe measures latency; the unloaded latency comes from the same probe just
//! before and after the waves (pooled), on the same tollgate. Even connections ask
//! for the free path, odd ones for a priced one (402). tollgate's
//! `max_connections` is set above the flood. Later waves (each served, one round
//! of requests) show whether the memory a wave leaves behind adds up.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{watch, Semaphore};

use super::http::{get, Conn};
use super::probe::{self, p50_p99, Probe};
use super::support::{TempDir, Xorshift};
use super::{
    broke_text, closed_by_limits, closed_count, jitter, log, ms, open_fds, panics_in, proc_kib,
    secs, start_tollgate, stop_tollgate, thousands, Row, Settings, World,
};

/// What the flood saw.
#[derive(Debug, Default, Clone)]
pub struct FloodResult {
    /// Connections of one wave.
    pub connections: u64,
    /// Connections whose first request was answered, over all waves.
    pub served: u64,
    pub connect_errors: u64,
    /// First requests that failed (closed or reset before an answer).
    pub first_failed: u64,
    /// Connections tollgate closed (or reset) while they were held.
    pub dropped: u64,
    /// Requests answered with the expected status (200 free, 402 priced).
    pub requests_ok: u64,
    pub requests_bad_status: u64,
    pub server_errors: u64,
    /// Seconds from the first connect to the last first answer.
    pub connect_secs: f64,
    /// Requests per second the flood sent while the loaded probe ran.
    pub loaded_rps: f64,
    pub unloaded: Probe,
    pub loaded: Probe,
    /// tollgate's open descriptors while the flood was held.
    pub fds_held: usize,
    pub rss_start_kib: u64,
    pub rss_held_kib: u64,
    pub peak_kib: u64,
    /// `tollgate_connections_closed_total{reason="full"}`.
    pub closed_full: u64,
    pub panics: Vec<String>,
    pub max_connections: usize,
    pub interval_ms: u64,
    /// Floods one after the other on the same tollgate (the probe runs in the
    /// first): memory that a wave leaves behind would add up.
    pub waves: usize,
    /// tollgate's RSS once each wave was released.
    pub rss_after_waves_kib: Vec<u64>,
    /// tollgate's descriptors once the last wave was released.
    pub fds_after: usize,
}

#[derive(Default)]
struct Counters {
    served: AtomicU64,
    connect_errors: AtomicU64,
    first_failed: AtomicU64,
    dropped: AtomicU64,
    ok: AtomicU64,
    bad: AtomicU64,
    server_errors: AtomicU64,
    settled: AtomicU64,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    Load,
    Stop,
    Release,
}

/// One wave of `n` connections: opened (256 connects in flight at most), each
/// served a first request, then each sending a request every `interval` (±50 %)
/// until the phase leaves [`Phase::Load`], then held idle until
/// [`Phase::Release`].
fn open_wave(
    addr: std::net::SocketAddr,
    n: usize,
    interval: Duration,
    c: &Arc<Counters>,
    phase_rx: &watch::Receiver<Phase>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let connects = Arc::new(Semaphore::new(256));
    (0..n)
        .map(|i| {
            let c = c.clone();
            let mut phase = phase_rx.clone();
            let connects = connects.clone();
            tokio::spawn(async move {
                let req = if i % 2 == 0 {
                    get(&format!("/free/flood-{i}"), "")
                } else {
                    get(
                        &format!("/movies/flood-{i}"),
                        "Accept: application/json\r\n",
                    )
                };
                let want = if i % 2 == 0 { 200 } else { 402 };
                let check = |status: u16| {
                    if status == want {
                        c.ok.fetch_add(1, Ordering::Relaxed);
                    } else {
                        c.bad.fetch_add(1, Ordering::Relaxed);
                        if status >= 500 {
                            c.server_errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                };
                let permit = connects.acquire().await.expect("semaphore");
                let Ok(mut conn) = Conn::connect(addr).await else {
                    c.connect_errors.fetch_add(1, Ordering::Relaxed);
                    c.settled.fetch_add(1, Ordering::Relaxed);
                    return;
                };
                match tokio::time::timeout(Duration::from_secs(60), conn.send(&req)).await {
                    Ok(Ok(r)) => {
                        check(r.status);
                        c.served.fetch_add(1, Ordering::Relaxed);
                        c.settled.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        c.first_failed.fetch_add(1, Ordering::Relaxed);
                        c.settled.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                }
                drop(permit);
                let mut rng =
                    Xorshift(0x9e37_79b9_7f4a_7c15 ^ (i as u64 + 1).wrapping_mul(0x2545_f491));
                // Spread the first repeat over one interval.
                let mut wait = interval.mul_f64((rng.next() % 1000) as f64 / 1000.0);
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = super::until(&mut phase, |p| *p != Phase::Load) => break,
                    }
                    match tokio::time::timeout(Duration::from_secs(60), conn.send(&req)).await {
                        Ok(Ok(r)) => check(r.status),
                        _ => {
                            c.dropped.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                    }
                    wait = jitter(&mut rng, interval);
                }
                super::until(&mut phase, |p| *p == Phase::Release).await;
                drop(conn);
            })
        })
        .collect()
}

/// Waits until every connection of the wave settled (served or failed); seconds.
async fn settle(c: &Counters, target: u64, n: usize) -> f64 {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(120 + n as u64 / 100);
    let mut last_note = Instant::now();
    while c.settled.load(Ordering::Relaxed) < target {
        assert!(
            Instant::now() < deadline,
            "flood: only {} of {target} connections settled in time",
            c.settled.load(Ordering::Relaxed)
        );
        if last_note.elapsed() > Duration::from_secs(5) {
            log(&format!(
                "   {} connections served so far",
                c.served.load(Ordering::Relaxed)
            ));
            last_note = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    started.elapsed().as_secs_f64()
}

/// Stops and releases a wave, then waits until tollgate's open descriptors stop
/// falling (bounded): (descriptors then, RSS then in KiB).
async fn release(
    phase_tx: watch::Sender<Phase>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    pid: u32,
) -> (usize, u64) {
    let _ = phase_tx.send(Phase::Stop);
    // Requests in flight finish first.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _ = phase_tx.send(Phase::Release);
    for t in tasks {
        t.await.expect("flood task");
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = open_fds(pid);
    let mut stable_since = Instant::now();
    while Instant::now() < deadline && stable_since.elapsed() < Duration::from_secs(1) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = open_fds(pid);
        if now != last {
            last = now;
            stable_since = Instant::now();
        }
    }
    (last, proc_kib(pid, "VmRSS"))
}

pub async fn run(s: &Settings, world: &World) -> FloodResult {
    let n = s.flood_connections;
    let max_connections = n + n / 5 + 100;
    log(&format!(
        "1. keep-alive flood: {n} connections (max_connections = {max_connections}), {} waves",
        s.flood_waves
    ));
    let dir = TempDir::new("campaign-flood");
    let config = world.config(
        s,
        world.anvil.rpc_url(),
        "sqlite://tollgate.db",
        &format!("max_connections = {max_connections}\nidle_timeout = \"120s\""),
    );
    let mut tg = start_tollgate(dir.path(), &config).await;
    let addr = tg.addr;
    let pid = tg.child.id();
    let mut out = FloodResult {
        connections: n as u64,
        waves: s.flood_waves.max(1),
        max_connections,
        interval_ms: s.flood_interval_ms,
        rss_start_kib: proc_kib(pid, "VmRSS"),
        ..Default::default()
    };
    let gap = Duration::from_millis(s.probe_gap_ms);
    log(&format!("   unloaded probe, {} s", s.probe_secs));
    out.unloaded = probe::run_isolated(addr, secs(s.probe_secs), gap).await;

    let counters = Arc::new(Counters::default());
    let interval = Duration::from_millis(s.flood_interval_ms);
    for wave in 1..=out.waves {
        let (phase_tx, phase_rx) = watch::channel(Phase::Load);
        let tasks = open_wave(addr, n, interval, &counters, &phase_rx);
        let took = settle(&counters, (wave * n) as u64, n).await;
        log(&format!(
            "   wave {wave}: {} connections served in all, this wave's opened in {took:.1} s",
            counters.served.load(Ordering::Relaxed),
        ));
        if wave == 1 {
            out.connect_secs = took;
            log(&format!("   loaded probe, {} s", s.probe_secs));
            let sent_before =
                counters.ok.load(Ordering::Relaxed) + counters.bad.load(Ordering::Relaxed);
            let t0 = Instant::now();
            out.loaded = probe::run_isolated(addr, secs(s.probe_secs), gap).await;
            let sent = counters.ok.load(Ordering::Relaxed) + counters.bad.load(Ordering::Relaxed)
                - sent_before;
            out.loaded_rps = sent as f64 / t0.elapsed().as_secs_f64();
        } else {
            // One round of requests on every connection of the later waves.
            tokio::time::sleep(interval).await;
        }
        out.fds_held = out.fds_held.max(open_fds(pid));
        out.rss_held_kib = out.rss_held_kib.max(proc_kib(pid, "VmRSS"));
        let (fds, rss) = release(phase_tx, tasks, pid).await;
        log(&format!(
            "   wave {wave} released: tollgate has {fds} descriptors open, RSS {} MiB",
            rss / 1024
        ));
        out.rss_after_waves_kib.push(rss);
        out.fds_after = fds;
    }
    // The unloaded half after the waves too: the baseline is both, pooled.
    log(&format!("   unloaded probe again, {} s", s.probe_secs));
    let again = probe::run_isolated(addr, secs(s.probe_secs), gap).await;
    out.unloaded.merge(again);
    out.peak_kib = proc_kib(pid, "VmHWM");
    let m = closed_by_limits(tg.admin.expect("admin listener")).await;
    out.closed_full = closed_count(&m, "full");
    out.served = counters.served.load(Ordering::Relaxed);
    out.connect_errors = counters.connect_errors.load(Ordering::Relaxed);
    out.first_failed = counters.first_failed.load(Ordering::Relaxed);
    out.dropped = counters.dropped.load(Ordering::Relaxed);
    out.requests_ok = counters.ok.load(Ordering::Relaxed);
    out.requests_bad_status = counters.bad.load(Ordering::Relaxed);
    out.server_errors = counters.server_errors.load(Ordering::Relaxed)
        + out.loaded.server_errors
        + out.unloaded.server_errors;
    assert!(
        tg.child.try_wait().expect("try_wait").is_none(),
        "tollgate exited during the flood"
    );
    stop_tollgate(tg).await;
    out.panics = panics_in(dir.path());
    super::keep_logs(dir.path(), "flood");
    log(&format!(
        "   flood done: served {} of {}, dropped {}, {} ok / {} bad requests",
        out.served,
        n * out.waves,
        out.dropped,
        out.requests_ok,
        out.requests_bad_status,
    ));
    out
}

impl FloodResult {
    /// Connections over all waves.
    pub fn total(&self) -> u64 {
        self.connections * self.waves as u64
    }

    pub fn row(&self) -> Row {
        let (u50, u99) = p50_p99(&self.unloaded.free);
        let (l50, l99) = p50_p99(&self.loaded.free);
        let (pu50, pu99) = p50_p99(&self.unloaded.priced);
        let (pl50, pl99) = p50_p99(&self.loaded.priced);
        let unserved = self.total() - self.served;
        let (broke, broken) = broke_text(&[
            (unserved, "connections not served".into()),
            (self.dropped, "held connections dropped".into()),
            (self.requests_bad_status, "unexpected statuses".into()),
            (self.server_errors, "5xx".into()),
            (
                self.loaded.errors + self.unloaded.errors,
                "probe requests failed".into(),
            ),
            (self.panics.len() as u64, "panics".into()),
        ]);
        let after: Vec<String> = self
            .rss_after_waves_kib
            .iter()
            .map(|k| (k / 1024).to_string())
            .collect();
        Row {
            campaign: "1. keep-alive flood".into(),
            thrown: format!(
                "{} concurrent keep-alive connections (`max_connections` {}), each a request every {} ms ±50 % (half free, half 402): {} req/s while the probe ran; then {} more wave(s) of {} on the same tollgate; {} requests in all",
                thousands(self.connections),
                thousands(self.max_connections as u64),
                self.interval_ms,
                thousands(self.loaded_rps as u64),
                self.waves - 1,
                thousands(self.connections),
                thousands(self.requests_ok + self.requests_bad_status),
            ),
            held: format!(
                "{} of {} connections served (a wave opened in {:.1} s), {} dropped while held ({} descriptors open in tollgate, {} after); closed as `full`: {}",
                thousands(self.served),
                thousands(self.total()),
                self.connect_secs,
                thousands(self.dropped),
                thousands(self.fds_held as u64),
                self.fds_after,
                thousands(self.closed_full),
            ),
            broke,
            broken,
            key: format!(
                "free p50/p99: unloaded {} / {}, loaded {} / {}; 402 p50/p99: unloaded {} / {}, loaded {} / {} ({} + {} probe requests); tollgate RSS {} MiB → {} MiB held → {} MiB after each wave (peak {} MiB)",
                ms(u50), ms(u99), ms(l50), ms(l99),
                ms(pu50), ms(pu99), ms(pl50), ms(pl99),
                thousands((self.unloaded.free.len() + self.unloaded.priced.len()) as u64),
                thousands((self.loaded.free.len() + self.loaded.priced.len()) as u64),
                self.rss_start_kib / 1024,
                self.rss_held_kib / 1024,
                after.join(" / "),
                self.peak_kib / 1024,
            ),
        }
    }
}
