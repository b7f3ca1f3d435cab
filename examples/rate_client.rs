//! Open-loop, fixed-rate HTTP/1.1 load client for `benches/load.sh` (`BENCH_MODE=rate`).
//!
//! ```text
//! rate_client URL --rate R --connections C --duration SECS [--expect STATUS]
//!             [--timeout SECS] [-H 'Name: value']…
//! ```
//!
//! C keep-alive connections share R requests/s: connection `i` sends request `k` at
//! `start + (i + k·C) / R`, whatever the earlier answers did (open loop). A connection
//! sends one request at a time, so when an answer is late the next request goes out late,
//! and its latency counts from its *scheduled* time (no coordinated omission). When the
//! connection was idle at the scheduled time, latency counts from the moment the request
//! was written instead: tokio's timer wakes up to 1 ms late, and that is the client's
//! lateness, not the server's.
//!
//! Prints one JSON line: `sent` (requests written), `ok` (answers with the expected status:
//! `--expect`, default any 2xx), `status_other` (other statuses), `errors` (connect, IO,
//! parse or timeout failures, and scheduled requests never sent before the deadline),
//! `p50_ms`/`p99_ms`/`max_ms` over all answers, and `elapsed_s` (start to the last answer).
//! It never panics on what a server does; a broken connection is counted and reopened.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};

struct Args {
    addr: SocketAddr,
    request: Vec<u8>,
    rate: f64,
    connections: usize,
    duration: Duration,
    expect: Option<u16>,
    timeout: Duration,
}

#[derive(Default)]
struct Tally {
    sent: u64,
    ok: u64,
    status_other: u64,
    errors: u64,
    latencies_us: Vec<u64>,
    last: Option<Instant>,
}

fn usage() -> String {
    "usage: rate_client URL --rate R --connections C --duration SECS [--expect STATUS] \
     [--timeout SECS] [-H 'Name: value']…"
        .to_string()
}

fn parse_secs(s: &str) -> Result<Duration, String> {
    let t = s.strip_suffix('s').unwrap_or(s);
    match t.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(Duration::from_secs_f64(v)),
        _ => Err(format!("bad duration {s:?} (seconds, e.g. 8 or 8s)")),
    }
}

fn parse_args() -> Result<Args, String> {
    let mut url = None;
    let mut rate = None;
    let mut connections = 16usize;
    let mut duration = None;
    let mut expect = None;
    let mut req_timeout = Duration::from_secs(10);
    let mut headers: Vec<String> = Vec::new();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
            "--rate" => {
                let v = value("--rate")?;
                rate = Some(
                    v.parse::<f64>()
                        .ok()
                        .filter(|r| *r > 0.0 && r.is_finite())
                        .ok_or_else(|| format!("bad --rate {v:?}"))?,
                );
            }
            "--connections" => {
                let v = value("--connections")?;
                connections = v
                    .parse::<usize>()
                    .ok()
                    .filter(|c| *c > 0)
                    .ok_or_else(|| format!("bad --connections {v:?}"))?;
            }
            "--duration" => duration = Some(parse_secs(&value("--duration")?)?),
            "--timeout" => req_timeout = parse_secs(&value("--timeout")?)?,
            "--expect" => {
                let v = value("--expect")?;
                expect = Some(
                    v.parse::<u16>()
                        .ok()
                        .filter(|s| (100..=999).contains(s))
                        .ok_or_else(|| format!("bad --expect {v:?}"))?,
                );
            }
            "-H" => {
                let h = value("-H")?;
                if !h.contains(':') || h.contains('\r') || h.contains('\n') {
                    return Err(format!("bad header {h:?} (want 'Name: value')"));
                }
                headers.push(h);
            }
            "-h" | "--help" => return Err(usage()),
            _ if url.is_none() && !a.starts_with('-') => url = Some(a),
            _ => return Err(format!("unexpected argument {a:?}\n{}", usage())),
        }
    }
    let url = url.ok_or_else(usage)?;
    let rate = rate.ok_or("--rate is required")?;
    let duration = duration.ok_or("--duration is required")?;
    let rest = url
        .strip_prefix("http://")
        .ok_or("only http:// URLs are supported")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr: SocketAddr = authority
        .parse()
        .map_err(|_| format!("the URL's host must be IP:PORT (got {authority:?})"))?;
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\n");
    let has = |name: &str| {
        headers.iter().any(|h| {
            h.split(':')
                .next()
                .is_some_and(|n| n.trim().eq_ignore_ascii_case(name))
        })
    };
    if !has("user-agent") {
        request.push_str("User-Agent: rate_client\r\n");
    }
    for h in &headers {
        request.push_str(h);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    Ok(Args {
        addr,
        request: request.into_bytes(),
        rate,
        connections,
        duration,
        expect,
        timeout: req_timeout,
    })
}

/// One keep-alive connection with its read buffer.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

impl Conn {
    /// Reads more bytes into the buffer; an error at end of stream.
    async fn fill(&mut self) -> Result<(), String> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self
            .stream
            .read(&mut chunk)
            .await
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed".into());
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    /// Reads one line (CRLF-terminated) from the buffer, consuming it.
    async fn line(&mut self) -> Result<Vec<u8>, String> {
        loop {
            if let Some(i) = find(&self.buf, b"\r\n") {
                let line = self.buf[..i].to_vec();
                self.buf.drain(..i + 2);
                return Ok(line);
            }
            if self.buf.len() > 64 * 1024 {
                return Err("line too long".into());
            }
            self.fill().await?;
        }
    }

    async fn skip(&mut self, mut n: usize) -> Result<(), String> {
        loop {
            let take = n.min(self.buf.len());
            self.buf.drain(..take);
            n -= take;
            if n == 0 {
                return Ok(());
            }
            self.fill().await?;
        }
    }

    /// Sends the request and reads one whole response. Returns (status, keep-alive?).
    async fn exchange(&mut self, request: &[u8]) -> Result<(u16, bool), String> {
        self.stream
            .write_all(request)
            .await
            .map_err(|e| e.to_string())?;
        loop {
            let (status, keep, body) = self.head().await?;
            if (100..200).contains(&status) {
                continue; // an interim answer: the real one follows
            }
            match body {
                Body::Length(n) => self.skip(n).await?,
                Body::Chunked => loop {
                    let line = self.line().await?;
                    let text = String::from_utf8_lossy(&line);
                    let size = text.split(';').next().unwrap_or("").trim();
                    let size = usize::from_str_radix(size, 16)
                        .map_err(|_| format!("bad chunk size {size:?}"))?;
                    if size == 0 {
                        // trailers until the empty line
                        while !self.line().await?.is_empty() {}
                        break;
                    }
                    self.skip(size).await?;
                    if !self.line().await?.is_empty() {
                        return Err("chunk not followed by CRLF".into());
                    }
                },
                Body::UntilClose => {
                    while self.fill().await.is_ok() {
                        self.buf.clear();
                    }
                    return Ok((status, false));
                }
            }
            return Ok((status, keep));
        }
    }

    async fn head(&mut self) -> Result<(u16, bool, Body), String> {
        let status_line = self.line().await?;
        let text = String::from_utf8_lossy(&status_line).into_owned();
        let mut parts = text.split(' ');
        let version = parts.next().unwrap_or("");
        let status = parts
            .next()
            .and_then(|s| s.parse::<u16>().ok())
            .filter(|_| version.starts_with("HTTP/1."))
            .ok_or_else(|| format!("bad status line {text:?}"))?;
        let mut keep = version == "HTTP/1.1";
        let mut length = None;
        let mut chunked = false;
        loop {
            let line = self.line().await?;
            if line.is_empty() {
                break;
            }
            let line = String::from_utf8_lossy(&line);
            let Some((name, value)) = line.split_once(':') else {
                return Err(format!("bad header line {line:?}"));
            };
            let (name, value) = (name.trim(), value.trim());
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(
                    value
                        .parse::<usize>()
                        .map_err(|_| format!("bad content-length {value:?}"))?,
                );
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.to_ascii_lowercase().contains("chunked");
            } else if name.eq_ignore_ascii_case("connection") {
                let v = value.to_ascii_lowercase();
                if v.contains("close") {
                    keep = false;
                } else if v.contains("keep-alive") {
                    keep = true;
                }
            }
        }
        let body = if status == 204 || status == 304 || (100..200).contains(&status) {
            Body::Length(0)
        } else if chunked {
            Body::Chunked
        } else if let Some(n) = length {
            Body::Length(n)
        } else {
            Body::UntilClose
        };
        Ok((status, keep, body))
    }
}

enum Body {
    Length(usize),
    Chunked,
    UntilClose,
}

async fn connection(args: std::sync::Arc<Args>, index: usize, start: Instant) -> Tally {
    let mut tally = Tally::default();
    let step = Duration::from_secs_f64(args.connections as f64 / args.rate);
    let first = Duration::from_secs_f64(index as f64 / args.rate);
    let end = start + args.duration;
    // Requests still queued this long after the end are given up (counted as errors).
    let give_up = end + args.timeout;
    let mut conn: Option<Conn> = None;
    let mut k: u32 = 0;
    loop {
        let scheduled = start + first + step * k;
        if scheduled >= end {
            break;
        }
        k += 1;
        let now = Instant::now();
        if now >= give_up {
            tally.errors += 1;
            continue;
        }
        // Idle at the scheduled time: wait for it and count from the actual write.
        // Busy past it (a late answer): send now and count from the schedule.
        let from = if now < scheduled {
            tokio::time::sleep_until(scheduled).await;
            Instant::now()
        } else {
            scheduled
        };
        let c = match conn.take() {
            Some(c) => c,
            None => match timeout(args.timeout, TcpStream::connect(args.addr)).await {
                Ok(Ok(stream)) => {
                    let _ = stream.set_nodelay(true);
                    Conn {
                        stream,
                        buf: Vec::with_capacity(16 * 1024),
                    }
                }
                _ => {
                    tally.errors += 1;
                    continue;
                }
            },
        };
        let mut c = c;
        tally.sent += 1;
        match timeout(args.timeout, c.exchange(&args.request)).await {
            Ok(Ok((status, keep))) => {
                let done = Instant::now();
                tally
                    .latencies_us
                    .push(done.saturating_duration_since(from).as_micros() as u64);
                tally.last = Some(done);
                let good = match args.expect {
                    Some(want) => status == want,
                    None => (200..300).contains(&status),
                };
                if good {
                    tally.ok += 1;
                } else {
                    tally.status_other += 1;
                }
                if keep {
                    conn = Some(c);
                }
            }
            _ => tally.errors += 1, // dropped: the next request reconnects
        }
    }
    tally
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    // nearest rank
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => std::sync::Arc::new(a),
        Err(e) => {
            eprintln!("rate_client: {e}");
            return ExitCode::from(2);
        }
    };
    // One thread: the client shares the cores with the servers it measures.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rate_client: cannot start tokio: {e}");
            return ExitCode::from(1);
        }
    };
    let total = rt.block_on(async {
        let start = Instant::now() + Duration::from_millis(20);
        let tasks: Vec<_> = (0..args.connections)
            .map(|i| tokio::spawn(connection(args.clone(), i, start)))
            .collect();
        let mut total = Tally::default();
        for t in tasks {
            match t.await {
                Ok(t) => {
                    total.sent += t.sent;
                    total.ok += t.ok;
                    total.status_other += t.status_other;
                    total.errors += t.errors;
                    total.latencies_us.extend(t.latencies_us);
                    total.last = total.last.max(t.last);
                }
                Err(_) => total.errors += 1,
            }
        }
        let elapsed = total
            .last
            .map(|l| l.saturating_duration_since(start))
            .unwrap_or_default()
            .max(args.duration);
        (total, elapsed)
    });
    let (mut t, elapsed) = total;
    t.latencies_us.sort_unstable();
    let max = t.latencies_us.last().copied().unwrap_or(0) as f64 / 1000.0;
    println!(
        "{{\"offered_rps\":{:.1},\"connections\":{},\"sent\":{},\"ok\":{},\"errors\":{},\
         \"status_other\":{},\"p50_ms\":{:.3},\"p99_ms\":{:.3},\"max_ms\":{:.3},\"elapsed_s\":{:.3}}}",
        args.rate,
        args.connections,
        t.sent,
        t.ok,
        t.errors,
        t.status_other,
        percentile(&t.latencies_us, 50.0),
        percentile(&t.latencies_us, 99.0),
        max,
        elapsed.as_secs_f64(),
    );
    ExitCode::SUCCESS
}
