//! The well-behaved client whose latency a campaign reports: one kept-alive
//! connection, requests one after another with a short gap, alternating the free
//! path (`GET /free/probe`, proxied to the origin: 200) and a priced one (`GET
//! /movies/probe` as a program: the 402 JSON challenge).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::http::{get, Conn};

/// What one probe run saw.
#[derive(Debug, Default, Clone)]
pub struct Probe {
    /// Latencies of free-path requests (answered 200).
    pub free: Vec<Duration>,
    /// Latencies of priced requests (answered 402).
    pub priced: Vec<Duration>,
    /// Requests that failed on the socket (the connection is opened again).
    pub errors: u64,
    /// Answers with another status than expected.
    pub bad_status: u64,
    /// Of those, 5xx answers.
    pub server_errors: u64,
}

impl Probe {
    /// Adds `other`'s samples and counts to these.
    pub fn merge(&mut self, other: Probe) {
        self.free.extend(other.free);
        self.priced.extend(other.priced);
        self.errors += other.errors;
        self.bad_status += other.bad_status;
        self.server_errors += other.server_errors;
    }

    /// Every latency, both kinds.
    pub fn all(&self) -> Vec<Duration> {
        let mut v = self.free.clone();
        v.extend_from_slice(&self.priced);
        v
    }
}

/// The `q` quantile (0..=1) in milliseconds, nearest rank; NaN when empty.
pub fn quantile_ms(v: &[Duration], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s: Vec<f64> = v.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    s.sort_by(f64::total_cmp);
    let rank = ((q * s.len() as f64).ceil() as usize).clamp(1, s.len());
    s[rank - 1]
}

/// p50 and p99 in ms.
pub fn p50_p99(v: &[Duration]) -> (f64, f64) {
    (quantile_ms(v, 0.50), quantile_ms(v, 0.99))
}

/// Runs the probe against `addr` for `dur`, sleeping `gap` between requests.
pub async fn run(addr: SocketAddr, dur: Duration, gap: Duration) -> Probe {
    let free = get("/free/probe", "");
    let priced = get("/movies/probe", "Accept: application/json\r\n");
    let mut out = Probe::default();
    let mut conn: Option<Conn> = None;
    let end = Instant::now() + dur;
    let mut i = 0u64;
    while Instant::now() < end {
        i += 1;
        let is_free = i % 2 == 0;
        let t0 = Instant::now();
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
        let c = conn.as_mut().expect("connected");
        let req = if is_free { &free } else { &priced };
        match tokio::time::timeout(Duration::from_secs(30), c.send(req)).await {
            Ok(Ok(r)) => {
                let took = t0.elapsed();
                let want = if is_free { 200 } else { 402 };
                if r.status != want {
                    out.bad_status += 1;
                    if r.status >= 500 {
                        out.server_errors += 1;
                    }
                } else if is_free {
                    out.free.push(took);
                } else {
                    out.priced.push(took);
                }
                if r.header("connection")
                    .is_some_and(|v| v.eq_ignore_ascii_case("close"))
                {
                    conn = None;
                }
            }
            _ => {
                out.errors += 1;
                conn = None;
            }
        }
        tokio::time::sleep(gap).await;
    }
    out
}

/// [`run`] on a thread and runtime of its own, so the probe's requests do not
/// queue behind the load generator's tasks in the caller's runtime.
pub async fn run_isolated(addr: SocketAddr, dur: Duration, gap: Duration) -> Probe {
    isolated(move || run(addr, dur, gap)).await
}

/// The future `make` builds, run on a thread and current-thread runtime of its own
/// (a measuring client must not wait behind the load generator's tasks).
pub async fn isolated<T, F, Fut>(make: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T>,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("isolated runtime");
        let _ = tx.send(rt.block_on(make()));
    });
    rx.await.expect("isolated thread")
}
