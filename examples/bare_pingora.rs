//! The ceiling for `benches/load.sh`: a bare Pingora pass-through with no
//! tollgate logic. Every request goes to one fixed upstream over plain HTTP,
//! reusing Pingora's default upstream keep-alive pool.
//!
//! Usage: `bare_pingora UPSTREAM [LISTEN] [THREADS]`, e.g.
//! `bare_pingora 127.0.0.1:8081 127.0.0.1:8080 2`. LISTEN defaults to
//! `127.0.0.1:0` (a free port is picked) and THREADS to 1. The chosen address is
//! printed as `listening ADDR` before the server starts; wait for it to accept.

use std::net::{SocketAddr, TcpListener};

use async_trait::async_trait;
use pingora::prelude::HttpPeer;
use pingora::proxy::{http_proxy_service, ProxyHttp, Session};
use pingora::server::configuration::ServerConf;
use pingora::server::Server;

/// Proxies everything to one upstream; no filters, no request changes.
struct PassThrough {
    upstream: SocketAddr,
}

#[async_trait]
impl ProxyHttp for PassThrough {
    type CTX = ();

    fn new_ctx(&self) -> Self::CTX {}

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        _ctx: &mut Self::CTX,
    ) -> pingora::Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(self.upstream, false, String::new())))
    }
}

fn usage() -> ! {
    eprintln!("usage: bare_pingora UPSTREAM [LISTEN] [THREADS]");
    std::process::exit(2);
}

fn main() {
    let mut args = std::env::args().skip(1);
    let upstream: SocketAddr = match args.next().map(|a| a.parse()) {
        Some(Ok(a)) => a,
        _ => usage(),
    };
    let mut listen: SocketAddr = match args.next().map(|a| a.parse()) {
        Some(Ok(a)) => a,
        Some(Err(_)) => usage(),
        None => SocketAddr::from(([127, 0, 0, 1], 0)),
    };
    let threads: usize = match args.next().map(|t| t.parse()) {
        Some(Ok(n)) if n > 0 => n,
        Some(_) => usage(),
        None => 1,
    };

    if listen.port() == 0 {
        // Pingora needs a concrete port to announce; take a free one.
        match TcpListener::bind(listen).and_then(|l| l.local_addr()) {
            Ok(a) => listen = a,
            Err(e) => {
                eprintln!("bare_pingora: cannot listen on {listen}: {e}");
                std::process::exit(1);
            }
        }
    }

    let tmp = std::env::temp_dir();
    let pid = std::process::id();
    let conf = ServerConf {
        threads,
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(1),
        pid_file: tmp
            .join(format!("bare_pingora-{pid}.pid"))
            .display()
            .to_string(),
        upgrade_sock: tmp
            .join(format!("bare_pingora-{pid}-upgrade.sock"))
            .display()
            .to_string(),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();

    let mut proxy = http_proxy_service(&server.configuration, PassThrough { upstream });
    proxy.add_tcp(&listen.to_string());
    server.add_service(proxy);

    println!("listening {listen}");
    server.run_forever()
}
