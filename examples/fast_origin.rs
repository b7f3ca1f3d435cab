//! A fast origin for `benches/load.sh`: answers every GET path with `200` and a
//! fixed 100-byte body over HTTP/1.1 keep-alive.
//!
//! Usage: `fast_origin [PORT] [THREADS]` — PORT defaults to 0 (ephemeral),
//! THREADS to the number of cores. Binds 127.0.0.1 only and prints
//! `listening 127.0.0.1:PORT` as its first stdout line once bound.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

/// The fixed response body: 100 bytes, the last one a newline.
const BODY: &str = concat!(
    "tollgate bench origin: a fixed body of exactly one hundred bytes, ",
    "for proxies to pass through......\n"
);

const _: () = assert!(BODY.len() == 100);

async fn handler() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain")], BODY)
}

fn usage() -> ! {
    eprintln!("usage: fast_origin [PORT] [THREADS]");
    std::process::exit(2);
}

fn main() {
    let mut args = std::env::args().skip(1);
    let port: u16 = match args.next() {
        Some(p) => p.parse().unwrap_or_else(|_| usage()),
        None => 0,
    };
    let threads: Option<usize> = args
        .next()
        .map(|t| t.parse().ok().filter(|&n| n > 0).unwrap_or_else(|| usage()));

    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(n) = threads {
        builder.worker_threads(n);
    }
    let runtime = match builder.build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("fast_origin: cannot start runtime: {e}");
            std::process::exit(1);
        }
    };
    runtime.block_on(serve(SocketAddr::from((Ipv4Addr::LOCALHOST, port))));
}

async fn serve(addr: SocketAddr) {
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("fast_origin: cannot listen on {addr}: {e}");
            std::process::exit(1);
        }
    };
    let bound = listener.local_addr().unwrap_or(addr);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "listening {bound}");
    let _ = out.flush();
    drop(out);

    let app = Router::new()
        .route("/", get(handler))
        .route("/{*rest}", get(handler));
    if let Err(e) = axum::serve(listener, app).await {
        eprintln!("fast_origin: {e}");
        std::process::exit(1);
    }
}
