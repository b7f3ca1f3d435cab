//! The connection limits of SPEC section 12 on the real binary, on all three
//! listeners (public, admin, gateway): 431 for heads over 64 KiB, slow heads and
//! idle keep-alive connections closed, `max_connections` enforced and released,
//! and each closing counted in `/metrics`.
//!
//! The timeouts are set to 1 s here; a test waits for a connection to be closed
//! (bounded by the socket's read timeout), it never sleeps to synchronise.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use support::origin::Origin;
use support::{eventually, parse_response, PaymentsConfig, Tollgate};

/// tollgate with payments (so the admin and gateway listeners run; the chain RPC
/// is a closed port: nothing here pays) and the given `[server]` limits.
fn start(origin: &Origin, limits: &str) -> Tollgate {
    let rest = "[admin]\nlisten = \"127.0.0.1:0\"\nallow = [\"127.0.0.1/32\"]\n\
                [gateway]\nlisten = \"127.0.0.1:0\"\n\
                [[route]]\npath = \"/movies/*\"\nprice = \"0.5\"\n";
    let token: alloy::primitives::Address = "0x00000000000000000000000000000000000000aa"
        .parse()
        .unwrap();
    let config = PaymentsConfig {
        secrets_extra: "postback_key_env = \"TOLLGATE_TEST_KEY\"",
        ..PaymentsConfig::local(origin.addr, "http://127.0.0.1:9", 31337, token, rest)
    }
    .render()
    .replace(
        "grace_period = \"1s\"",
        &format!("grace_period = \"1s\"\n{limits}"),
    );
    let dir = support::TempDir::new("limits");
    let mut tg = Tollgate::start_keyed(dir.path(), &config);
    tg.dir = Some(dir);
    tg
}

fn listeners(tg: &Tollgate) -> [(&'static str, SocketAddr); 3] {
    [
        ("public", tg.addr),
        ("admin", tg.admin.unwrap()),
        ("gateway", tg.gateway.unwrap()),
    ]
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

/// Reads until the peer closes; the bytes it sent first. Panics if it stays open
/// for the whole read timeout.
fn read_until_closed(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return out,
            Err(e) => panic!("connection still open after the read timeout: {e}"),
        }
    }
}

/// One request on `s` (keep-alive), its whole response.
fn request(s: &mut TcpStream, path: &str) -> support::RawResponse {
    write!(s, "GET {path} HTTP/1.1\r\nHost: tollgate.test\r\n\r\n").unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "closed before a response");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            if buf.len() >= end + 4 + len {
                return parse_response(&buf, false);
            }
        }
    }
}

/// `GET /metrics` on the admin listener.
fn scrape(tg: &Tollgate) -> String {
    let r = request(&mut connect(tg.admin.unwrap()), "/metrics");
    assert_eq!(r.status, 200);
    String::from_utf8(r.body).unwrap()
}

#[test]
fn heads_over_64_kib_get_431_on_every_listener_and_smaller_ones_pass() {
    let origin = Origin::start();
    let tg = start(&origin, "");
    for (name, addr) in listeners(&tg) {
        let mut s = connect(addr);
        let big = "a".repeat(70 * 1024);
        write!(
            s,
            "GET /free HTTP/1.1\r\nHost: tollgate.test\r\nX-Big: {big}\r\n\r\n"
        )
        .unwrap();
        let got = read_until_closed(&mut s);
        let r = parse_response(&got, false);
        assert_eq!(r.status, 431, "{name}");
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["code"], "header_too_large", "{name}");

        // A head of 60 KiB is read and answered as usual.
        let mut s = connect(addr);
        let ok = "b".repeat(60 * 1024);
        write!(
            s,
            "GET /movies/x HTTP/1.1\r\nHost: tollgate.test\r\nX-Ok: {ok}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let r = parse_response(&read_until_closed(&mut s), false);
        assert_ne!(r.status, 431, "{name}");
        assert!(r.status < 500, "{name}: {}", r.status);
    }
    // The same head sent in many small writes is counted as a whole.
    let mut s = connect(tg.addr);
    s.write_all(b"GET /free HTTP/1.1\r\nHost: tollgate.test\r\n")
        .unwrap();
    let line = format!("X-Pad: {}\r\n", "c".repeat(1000));
    for _ in 0..70 {
        if s.write_all(line.as_bytes()).is_err() {
            break;
        }
    }
    let _ = s.write_all(b"\r\n");
    let r = parse_response(&read_until_closed(&mut s), false);
    assert_eq!(r.status, 431);
}

#[test]
fn slow_heads_and_idle_keep_alive_connections_are_closed() {
    let origin = Origin::start();
    let tg = start(
        &origin,
        "header_timeout = \"1s\"\nidle_timeout = \"1s\"\nmax_connections = 100",
    );
    for (name, addr) in listeners(&tg) {
        // Slowloris: a byte every 100 ms never completes a head; closed by the
        // deadline although bytes keep coming.
        let mut s = connect(addr);
        s.write_all(b"GET /free HTTP/1.1\r\nHost: tollgate.test\r\n")
            .unwrap();
        let started = Instant::now();
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let mut closed = false;
        while started.elapsed() < Duration::from_secs(20) {
            if s.write_all(b"X").is_err() {
                closed = true;
                break;
            }
            let mut b = [0u8; 64];
            match s.read(&mut b) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(_) => panic!("{name}: answered an incomplete head"),
                Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                    closed = true;
                    break;
                }
                Err(_) => {}
            }
        }
        assert!(closed, "{name}: slow head still open after 20 s");
        assert!(
            started.elapsed() >= Duration::from_millis(900),
            "{name}: closed before header_timeout"
        );

        // A new connection that never says anything is closed too.
        let mut silent = connect(addr);
        assert!(read_until_closed(&mut silent).is_empty(), "{name}");

        // Keep-alive: a request is served, then the idle connection is closed.
        let mut s = connect(addr);
        let path = if name == "public" {
            "/free"
        } else {
            "/metrics"
        };
        let r = request(&mut s, path);
        assert!(r.status < 500, "{name}: {}", r.status);
        // ... and a second request on it within the idle time is served as well.
        let r = request(&mut s, path);
        assert!(r.status < 500, "{name}: {}", r.status);
        assert!(read_until_closed(&mut s).is_empty(), "{name}");
    }
    let metrics = scrape(&tg);
    let slow = metrics
        .lines()
        .find(|l| l.starts_with("tollgate_connections_closed_total{reason=\"slow_head\"}"))
        .unwrap();
    let n: u64 = slow.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(n >= 6, "{slow}");
}

#[tokio::test]
async fn max_connections_are_enforced_and_released() {
    let origin = Origin::start();
    let tg = start(&origin, "idle_timeout = \"60s\"\nmax_connections = 4");
    let addr = tg.addr;
    // Four kept-alive connections, each having been served.
    let mut held: Vec<TcpStream> = (0..4)
        .map(|_| {
            let mut s = connect(addr);
            assert_eq!(request(&mut s, "/free").status, 200);
            s
        })
        .collect();
    // The fifth is closed at once, unanswered.
    let mut fifth = connect(addr);
    let _ = fifth.write_all(b"GET /free HTTP/1.1\r\nHost: tollgate.test\r\n\r\n");
    assert!(read_until_closed(&mut fifth).is_empty());
    // The held ones still work.
    assert_eq!(request(&mut held[0], "/free").status, 200);
    // One closes: its place is free again.
    drop(held.pop());
    eventually("a connection slot after one closed", || async move {
        let mut s = connect(addr);
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ =
            s.write_all(b"GET /free HTTP/1.1\r\nHost: tollgate.test\r\nConnection: close\r\n\r\n");
        let got = read_until_closed(&mut s);
        if got.is_empty() {
            Err("still full".to_string())
        } else {
            Ok(parse_response(&got, false).status)
        }
    })
    .await;
    let metrics = scrape(&tg);
    assert!(
        metrics.lines().any(|l| l
            .starts_with("tollgate_connections_closed_total{reason=\"full\"}")
            && !l.ends_with(" 0")),
        "{metrics}"
    );
    drop(held);
}

#[test]
fn limits_are_validated_with_every_problem() {
    let dir = support::TempDir::new("limits-config");
    let cfg = support::config("127.0.0.1:9".parse().unwrap(), "").replace(
        "grace_period = \"1s\"",
        "grace_period = \"1s\"\nheader_timeout = \"0s\"\nidle_timeout = \"soon\"\nmax_connections = 0",
    );
    std::fs::write(dir.path().join("t.toml"), cfg).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["check", "--config"])
        .arg(dir.path().join("t.toml"))
        .env("TOLLGATE_TEST_KEY", support::TEST_KEY)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    for key in [
        "server.header_timeout",
        "server.idle_timeout",
        "server.max_connections",
    ] {
        assert!(err.contains(key), "{key} in {err}");
    }
}
