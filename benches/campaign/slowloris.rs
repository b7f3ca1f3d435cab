//! Campaign 2, slow and oversized requests, with `server.header_timeout` short:
//!
//! * `slowloris` connections, each sending a request line and then one header byte
//!   every `trickle_ms` (±50 %), never finishing its head; when tollgate closes
//!   one, it is opened again until the attack ends (first connects spread over one
//!   header timeout, so the reconnects are spread too);
//! * `oversized_rate` heads per second of 66 KiB (over the 64 KiB cap: 431);
//! * as many `POST /_tollgate/pay` bodies of 256 KiB (over the 16 KiB cap of the
//!   public endpoints: 413), alternately with `Content-Length` and chunked.
//!
//! The probe measures latency unloaded (before the attack and after it, pooled),
//! and while the attack is on. A slow
//! connection still open `2 × header_timeout + 2 s` after it opened counts as one
//! the limits did not close.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::http::read_response;
use super::probe::{self, p50_p99, Probe};
use super::support::{TempDir, Xorshift};
use super::{
    broke_text, closed_by_limits, closed_count, jitter, log, ms, panics_in, proc_kib, secs,
    start_tollgate, stop_tollgate, thousands, Row, Settings, World,
};

/// Bytes of an oversized head (over the 64 KiB cap).
const BIG_HEAD: usize = 66 * 1024;
/// Bytes of an oversized endpoint body (over the 16 KiB cap).
const BIG_BODY: usize = 256 * 1024;

/// What the attack saw.
#[derive(Debug, Default, Clone)]
pub struct SlowResult {
    pub slowloris: u64,
    pub header_timeout_secs: u64,
    pub attack_secs: f64,
    pub trickle_ms: u64,
    pub slow_opened: u64,
    pub slow_connect_errors: u64,
    /// Slow connections tollgate closed.
    pub slow_closed: u64,
    /// Slow connections that got any answer (an incomplete head must get none).
    pub slow_answered: u64,
    /// Slow connections still open past `2 × header_timeout + 2 s`.
    pub slow_outlived: u64,
    /// Connect → closed by tollgate.
    pub lifetimes: Vec<Duration>,
    pub heads_sent: u64,
    pub heads_431: u64,
    /// Oversized heads answered otherwise, or closed unanswered.
    pub heads_other: u64,
    pub bodies_sent: u64,
    pub bodies_413: u64,
    pub bodies_other: u64,
    pub server_errors: u64,
    /// `tollgate_connections_closed_total` growth during the attack, by reason.
    pub metric_slow_head: u64,
    pub metric_large_head: u64,
    pub metric_full: u64,
    pub unloaded: Probe,
    pub loaded: Probe,
    pub peak_kib: u64,
    pub panics: Vec<String>,
}

impl SlowResult {
    /// p99 under attack / p99 unloaded, all probe requests.
    pub fn p99_ratio(&self) -> f64 {
        p50_p99(&self.loaded.all()).1 / p50_p99(&self.unloaded.all()).1
    }
}

#[derive(Default)]
struct Counters {
    opened: AtomicU64,
    connect_errors: AtomicU64,
    closed: AtomicU64,
    answered: AtomicU64,
    outlived: AtomicU64,
    heads_sent: AtomicU64,
    heads_431: AtomicU64,
    heads_other: AtomicU64,
    bodies_sent: AtomicU64,
    bodies_413: AtomicU64,
    bodies_other: AtomicU64,
    server_errors: AtomicU64,
}

/// One slow connection, from connect to its close (by tollgate, or by us past
/// `outlive`).
async fn slow_connection(
    addr: std::net::SocketAddr,
    trickle: Duration,
    outlive: Duration,
    c: &Counters,
    rng: &mut Xorshift,
) -> Option<Duration> {
    let Ok(mut s) = TcpStream::connect(addr).await else {
        c.connect_errors.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(100)).await;
        return None;
    };
    c.opened.fetch_add(1, Ordering::Relaxed);
    let t0 = Instant::now();
    let give_up = tokio::time::Instant::now() + outlive;
    let mut answered = false;
    let closed = |c: &Counters| {
        c.closed.fetch_add(1, Ordering::Relaxed);
        Some(t0.elapsed())
    };
    if s.write_all(b"GET /free/slow HTTP/1.1\r\nHost: tollgate.test\r\nX-Slow: ")
        .await
        .is_err()
    {
        return closed(c);
    }
    let mut buf = [0u8; 512];
    let mut next = tokio::time::Instant::now() + jitter(rng, trickle);
    loop {
        tokio::select! {
            r = s.read(&mut buf) => match r {
                Ok(0) | Err(_) => return closed(c),
                Ok(_) => {
                    if !answered {
                        answered = true;
                        c.answered.fetch_add(1, Ordering::Relaxed);
                    }
                }
            },
            _ = tokio::time::sleep_until(next) => {
                if s.write_all(b"a").await.is_err() {
                    return closed(c);
                }
                next = tokio::time::Instant::now() + jitter(rng, trickle);
            }
            _ = tokio::time::sleep_until(give_up) => {
                c.outlived.fetch_add(1, Ordering::Relaxed);
                return None;
            }
        }
    }
}

/// Sends `bytes` on a fresh connection (from another task, so an early answer is
/// read while the rest is still being written) and reads the answer's status.
async fn oversized(addr: std::net::SocketAddr, bytes: Arc<Vec<u8>>) -> Option<u16> {
    let s = TcpStream::connect(addr).await.ok()?;
    let (rd, mut wr) = s.into_split();
    let writer = tokio::spawn(async move {
        let _ = wr.write_all(&bytes).await;
        // Keep the write half (an open socket) until the answer is read.
        wr
    });
    let mut rd = BufReader::new(rd);
    let status = tokio::time::timeout(Duration::from_secs(20), read_response(&mut rd))
        .await
        .ok()
        .and_then(|r| r.ok())
        .map(|r| r.status);
    writer.abort();
    status
}

fn big_head() -> Vec<u8> {
    let mut v = b"GET /free/big HTTP/1.1\r\nHost: tollgate.test\r\nX-Big: ".to_vec();
    v.resize(v.len() + BIG_HEAD, b'a');
    v.extend_from_slice(b"\r\n\r\n");
    v
}

fn big_body(chunked: bool) -> Vec<u8> {
    let mut v = b"POST /_tollgate/pay HTTP/1.1\r\nHost: tollgate.test\r\nContent-Type: application/json\r\n".to_vec();
    if chunked {
        v.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
        let chunk = 8 * 1024;
        for _ in 0..BIG_BODY / chunk {
            v.extend_from_slice(format!("{chunk:x}\r\n").as_bytes());
            v.resize(v.len() + chunk, b' ');
            v.extend_from_slice(b"\r\n");
        }
        v.extend_from_slice(b"0\r\n\r\n");
    } else {
        v.extend_from_slice(format!("Content-Length: {BIG_BODY}\r\n\r\n").as_bytes());
        v.resize(v.len() + BIG_BODY, b' ');
    }
    v
}

pub async fn run(s: &Settings, world: &World) -> SlowResult {
    let timeout = Duration::from_secs(s.header_timeout_secs);
    log(&format!(
        "2. slowloris: {} slow connections, header_timeout {} s, {} oversized heads and bodies per second, {} s",
        s.slowloris, s.header_timeout_secs, s.oversized_rate, s.attack_secs
    ));
    let dir = TempDir::new("campaign-slow");
    let config = world.config(
        s,
        world.anvil.rpc_url(),
        "sqlite://tollgate.db",
        &format!(
            "header_timeout = \"{}s\"\nmax_connections = {}",
            s.header_timeout_secs,
            s.slowloris * 2 + 1000
        ),
    );
    let tg = start_tollgate(dir.path(), &config).await;
    let addr = tg.addr;
    let admin = tg.admin.expect("admin listener");
    let mut out = SlowResult {
        slowloris: s.slowloris as u64,
        header_timeout_secs: s.header_timeout_secs,
        attack_secs: s.attack_secs,
        trickle_ms: s.trickle_ms,
        ..Default::default()
    };
    let gap = Duration::from_millis(s.probe_gap_ms);
    log(&format!("   unloaded probe, {} s", s.probe_secs));
    out.unloaded = probe::run_isolated(addr, secs(s.probe_secs), gap).await;
    let before = closed_by_limits(admin).await;

    let c = Arc::new(Counters::default());
    let lifetimes = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let end = started + secs(s.attack_secs);
    let outlive = timeout * 2 + Duration::from_secs(2);
    let trickle = Duration::from_millis(s.trickle_ms);
    let mut tasks = Vec::new();
    for i in 0..s.slowloris {
        let c = c.clone();
        let lifetimes = lifetimes.clone();
        let ramp = timeout.mul_f64(i as f64 / s.slowloris as f64);
        tasks.push(tokio::spawn(async move {
            let mut rng = Xorshift(0x51_0710_5150 ^ (i as u64 + 1).wrapping_mul(0x9e37_79b9));
            tokio::time::sleep(ramp).await;
            while Instant::now() < end {
                if let Some(t) = slow_connection(addr, trickle, outlive, &c, &mut rng).await {
                    lifetimes.lock().unwrap().push(t);
                }
            }
        }));
    }
    // Oversized heads and bodies at a steady rate.
    let head = Arc::new(big_head());
    let bodies = [Arc::new(big_body(false)), Arc::new(big_body(true))];
    let rate = s.oversized_rate.max(0.001);
    {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            let mut inflight = Vec::new();
            let mut k = 0u64;
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while Instant::now() < end {
                tick.tick().await;
                let (c1, c2) = (c.clone(), c.clone());
                let head = head.clone();
                let body = bodies[(k % 2) as usize].clone();
                k += 1;
                inflight.push(tokio::spawn(async move {
                    c1.heads_sent.fetch_add(1, Ordering::Relaxed);
                    match oversized(addr, head).await {
                        Some(431) => c1.heads_431.fetch_add(1, Ordering::Relaxed),
                        other => {
                            if other.is_some_and(|st| st >= 500) {
                                c1.server_errors.fetch_add(1, Ordering::Relaxed);
                            }
                            c1.heads_other.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                }));
                inflight.push(tokio::spawn(async move {
                    c2.bodies_sent.fetch_add(1, Ordering::Relaxed);
                    match oversized(addr, body).await {
                        Some(413) => c2.bodies_413.fetch_add(1, Ordering::Relaxed),
                        other => {
                            if other.is_some_and(|st| st >= 500) {
                                c2.server_errors.fetch_add(1, Ordering::Relaxed);
                            }
                            c2.bodies_other.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                }));
            }
            for t in inflight {
                t.await.expect("oversized request task");
            }
        }));
    }
    // The probe under attack, once every slow connection is open.
    tokio::time::sleep(timeout).await;
    let left = end.saturating_duration_since(Instant::now());
    let probe_for = secs(s.probe_secs).min(left);
    log(&format!(
        "   {} slow connections opened so far; loaded probe, {:.1} s",
        c.opened.load(Ordering::Relaxed),
        probe_for.as_secs_f64()
    ));
    out.loaded = probe::run_isolated(addr, probe_for, gap).await;
    for t in tasks {
        t.await.expect("attack task");
    }
    // The unloaded half after the attack too: the baseline is both, pooled, so
    // a burst of the machine's other work during one of them weighs less.
    log(&format!("   unloaded probe again, {} s", s.probe_secs));
    let again = probe::run_isolated(addr, secs(s.probe_secs), gap).await;
    out.unloaded.merge(again);
    let after = closed_by_limits(admin).await;
    let delta =
        |reason: &str| closed_count(&after, reason).saturating_sub(closed_count(&before, reason));
    out.metric_slow_head = delta("slow_head");
    out.metric_large_head = delta("large_head");
    out.metric_full = delta("full");
    out.slow_opened = c.opened.load(Ordering::Relaxed);
    out.slow_connect_errors = c.connect_errors.load(Ordering::Relaxed);
    out.slow_closed = c.closed.load(Ordering::Relaxed);
    out.slow_answered = c.answered.load(Ordering::Relaxed);
    out.slow_outlived = c.outlived.load(Ordering::Relaxed);
    out.lifetimes = std::mem::take(&mut *lifetimes.lock().unwrap());
    out.heads_sent = c.heads_sent.load(Ordering::Relaxed);
    out.heads_431 = c.heads_431.load(Ordering::Relaxed);
    out.heads_other = c.heads_other.load(Ordering::Relaxed);
    out.bodies_sent = c.bodies_sent.load(Ordering::Relaxed);
    out.bodies_413 = c.bodies_413.load(Ordering::Relaxed);
    out.bodies_other = c.bodies_other.load(Ordering::Relaxed);
    out.server_errors = c.server_errors.load(Ordering::Relaxed)
        + out.loaded.server_errors
        + out.unloaded.server_errors;
    out.peak_kib = proc_kib(tg.child.id(), "VmHWM");
    stop_tollgate(tg).await;
    out.panics = panics_in(dir.path());
    super::keep_logs(dir.path(), "slowloris");
    log(&format!(
        "   slowloris done: {} opened, {} closed by tollgate, {} outlived, {} answered; 431 {}/{}, 413 {}/{}; p99 ratio {:.2}",
        out.slow_opened,
        out.slow_closed,
        out.slow_outlived,
        out.slow_answered,
        out.heads_431,
        out.heads_sent,
        out.bodies_413,
        out.bodies_sent,
        out.p99_ratio()
    ));
    out
}

impl SlowResult {
    pub fn row(&self) -> Row {
        let (l50, lmax) = (
            super::probe::quantile_ms(&self.lifetimes, 0.5),
            super::probe::quantile_ms(&self.lifetimes, 1.0),
        );
        let (_, u99) = p50_p99(&self.unloaded.all());
        let (_, l99) = p50_p99(&self.loaded.all());
        let (_, fu99) = p50_p99(&self.unloaded.free);
        let (_, fl99) = p50_p99(&self.loaded.free);
        let (_, pu99) = p50_p99(&self.unloaded.priced);
        let (_, pl99) = p50_p99(&self.loaded.priced);
        let ratio = self.p99_ratio();
        let (broke, broken) = broke_text(&[
            (self.slow_outlived, "slow heads not closed in time".into()),
            (self.slow_answered, "slow heads answered".into()),
            (self.heads_other, "oversized heads not answered 431".into()),
            (
                self.bodies_other,
                "oversized bodies not answered 413".into(),
            ),
            (self.server_errors, "5xx".into()),
            (
                u64::from(ratio.is_nan() || ratio > 2.0),
                format!("probe p99 over 2× unloaded ({ratio:.2}×)"),
            ),
            (
                self.loaded.errors + self.unloaded.errors,
                "probe requests failed".into(),
            ),
            (self.panics.len() as u64, "panics".into()),
        ]);
        Row {
            campaign: "2. slowloris + oversized".into(),
            thrown: format!(
                "{} slowloris connections held for {:.0} s (a header byte every {} ms ±50 %, reopened when closed: {} opened), `header_timeout` {} s; {} heads of 66 KiB; {} endpoint bodies of 256 KiB (half chunked)",
                thousands(self.slowloris),
                self.attack_secs,
                self.trickle_ms,
                thousands(self.slow_opened),
                self.header_timeout_secs,
                thousands(self.heads_sent),
                thousands(self.bodies_sent),
            ),
            held: format!(
                "{} of {} slow connections closed by tollgate, {} answered (metric `slow_head` +{}); {} of {} heads → 431 (`large_head` +{}); {} of {} bodies → 413; probe p99 {:.2}× unloaded",
                thousands(self.slow_closed),
                thousands(self.slow_opened),
                thousands(self.slow_answered),
                thousands(self.metric_slow_head),
                thousands(self.heads_431),
                thousands(self.heads_sent),
                thousands(self.metric_large_head),
                thousands(self.bodies_413),
                thousands(self.bodies_sent),
                ratio,
            ),
            broke,
            broken,
            key: format!(
                "slow connection lifetime p50 {} / max {} (limit {} s); probe p99 unloaded {} → under attack {} (free {} → {}, 402 {} → {}); tollgate peak RSS {} MiB",
                ms(l50),
                ms(lmax),
                self.header_timeout_secs,
                ms(u99),
                ms(l99),
                ms(fu99),
                ms(fl99),
                ms(pu99),
                ms(pl99),
                self.peak_kib / 1024,
            ),
        }
    }
}
