//! Builds and runs the Pingora server for a validated config.
//!
//! Owns the wiring: listeners (port 0 is resolved to a free port before start so it
//! can be announced), the proxy service, and the readiness announcement on stdout
//! that scripts and tests wait for. It never makes a request decision.

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pingora::server::configuration::ServerConf;
use pingora::server::{Server, ShutdownWatch};
use pingora::services::background::{background_service, BackgroundService};

use crate::app::App;
use crate::chain::rpc::Rpc;
use crate::chain::watcher::Watcher;
use crate::chain::xpub::AccountXpub;
use crate::clock::SystemClock;
use crate::config::Config;
use crate::gateway::{GatewayApp, Listener};
use crate::limits::conn::Limited;
use crate::monetization::op::OpClient;
use crate::payments::listener::PaidFactListener;
use crate::payments::service::{Derive, PaymentService};
use crate::postback::sender::Sender;
use crate::proxy::Tollgate;
use crate::reload::Reloader;
use pingora::listeners::{L4BufferSettings, ListenerConfig};
use pingora::services::listening::Service;

/// Replaces a port-0 listen address by a concrete free port.
pub fn resolve_port(addr: SocketAddr) -> std::io::Result<SocketAddr> {
    if addr.port() != 0 {
        return Ok(addr);
    }
    let l = TcpListener::bind(addr)?;
    l.local_addr()
}

/// Runs tollgate until a signal stops it. Never returns.
pub fn run(mut cfg: Config) -> ! {
    let as_loaded = cfg.clone();
    if let Some(token) = cfg.admin.as_ref().and_then(|a| a.token.as_ref()) {
        crate::redact::register_secret(&token.0);
    }
    let resolve = |a: SocketAddr| match resolve_port(a) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("tollgate: cannot listen on {a}: {e}");
            std::process::exit(1);
        }
    };
    let listen = resolve(cfg.server.listen);
    cfg.server.listen = listen;
    if let Some(a) = cfg.admin.as_mut() {
        a.listen = resolve(a.listen);
    }
    if let Some(g) = cfg.gateway.as_mut() {
        g.listen = resolve(g.listen);
    }
    let conf = ServerConf {
        threads: cfg.server.threads,
        grace_period_seconds: Some(cfg.server.grace_period_secs),
        graceful_shutdown_timeout_seconds: Some(cfg.server.grace_period_secs.max(1)),
        pid_file: std::env::temp_dir()
            .join(format!("tollgate-{}.pid", std::process::id()))
            .display()
            .to_string(),
        upgrade_sock: std::env::temp_dir()
            .join(format!("tollgate-{}-upgrade.sock", std::process::id()))
            .display()
            .to_string(),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();

    let (payments, rpc) = match start_payments(&cfg) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("tollgate: {e}");
            std::process::exit(1);
        }
    };
    let lookups = match rpc.is_some().then(|| Rpc::new(&cfg.chain.rpc_urls)) {
        Some(Ok(r)) => Some(Arc::new(r)),
        Some(Err(e)) => {
            eprintln!("tollgate: chain.rpc_urls: {e}");
            std::process::exit(1);
        }
        None => None,
    };
    let op = match cfg.web_monetization.as_ref().map(OpClient::new) {
        Some(Ok(op)) => op.map(Arc::new),
        Some(Err(e)) => {
            eprintln!("tollgate: {e}");
            std::process::exit(1);
        }
        None => None,
    };
    let app = Arc::new(
        App::new(cfg, Arc::new(SystemClock), payments.clone())
            .with_rpc(lookups)
            .with_op(op),
    );
    let limits = app.cfg().server.limits;
    let mut proxy = Service::new(
        "tollgate public".to_string(),
        Limited::new(
            pingora::proxy::http_proxy(&server.configuration, Tollgate::new(app.clone())),
            limits,
        ),
    );
    listen_on(&mut proxy, listen);
    server.add_service(proxy);
    if let Some(payments) = &payments {
        let listeners = [
            (
                app.cfg().admin.as_ref().map(|a| a.listen),
                Listener::Admin,
                "admin",
            ),
            (
                app.cfg().gateway.as_ref().map(|g| g.listen),
                Listener::Gateway,
                "gateway",
            ),
        ];
        for (addr, kind, name) in listeners {
            if let Some(addr) = addr {
                let mut svc = Service::new(
                    format!("tollgate {name}"),
                    Limited::new(GatewayApp::new(app.clone(), payments.clone(), kind), limits),
                );
                listen_on(&mut svc, addr);
                server.add_service(svc);
            }
        }
        if let Some(sender) = Sender::new(app.clone(), payments.clone()) {
            server.add_service(background_service("postback sender", sender));
        }
        if let Some(l) = PaidFactListener::for_store(&app.cfg().store.backend, payments.clone()) {
            server.add_service(background_service("paid-fact listener", l));
        }
    }
    if let (Some(payments), Some(rpc)) = (payments, rpc) {
        match Watcher::new(app.clone(), payments, rpc) {
            Ok(w) => {
                server.add_service(background_service("chain watcher", w));
            }
            Err(e) => {
                eprintln!("tollgate: {e}");
                std::process::exit(1);
            }
        }
    }
    server.add_service(background_service(
        "config reloader",
        Reloader::new(app.clone(), as_loaded),
    ));
    server.add_service(background_service("ready announcer", Announcer { app }));
    tracing::info!(%listen, "tollgate starting");
    server.run_forever()
}

/// Opens the store and builds the payment engine when `[chain]` has `rpc_urls`
/// and an `xpub`; `(None, None)` runs tollgate without payments (402s only).
pub fn start_payments(cfg: &Config) -> Result<(Option<Arc<PaymentService>>, Option<Rpc>), String> {
    let (Some(xpub), false) = (&cfg.chain.xpub, cfg.chain.rpc_urls.is_empty()) else {
        return Ok((None, None));
    };
    let xpub = AccountXpub::parse(xpub).map_err(|e| format!("chain.xpub: {e}"))?;
    let rpc = Rpc::new(&cfg.chain.rpc_urls).map_err(|e| format!("chain.rpc_urls: {e}"))?;
    let derive: Derive = Arc::new(move |i| xpub.address(i).map_err(|e| e.to_string()));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    // A PostgreSQL pool's connections opened here close with this runtime; the
    // pool replaces them on first use (they are checked when taken).
    let store = rt
        .block_on(crate::store::open(&cfg.store.backend))
        .map_err(|e| format!("store.url: {e}"))?;
    let svc = rt
        .block_on(PaymentService::new(cfg, store, derive))
        .map_err(|e| format!("store: {e}"))?;
    Ok((Some(Arc::new(svc)), Some(rpc)))
}

/// Waits until `listen` accepts connections; returns the address probed.
async fn wait_listening(listen: SocketAddr) -> Option<SocketAddr> {
    let probe = if listen.ip().is_unspecified() {
        SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), listen.port())
    } else {
        listen
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ok = tokio::task::spawn_blocking(move || {
            TcpStream::connect_timeout(&probe, Duration::from_millis(200)).is_ok()
        })
        .await
        .unwrap_or(false);
        if ok {
            return Some(probe);
        }
        if Instant::now() > deadline {
            tracing::error!(%listen, "listener did not come up");
            return None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Prints `tollgate ready: public http://ADDR` once the public listener accepts.
struct Announcer {
    app: Arc<App>,
}

#[async_trait]
impl BackgroundService for Announcer {
    async fn start(&self, _shutdown: ShutdownWatch) {
        let cfg = self.app.cfg();
        // The side listeners first: the public line means "everything is up".
        if let Some(a) = &cfg.admin {
            if let Some(p) = wait_listening(a.listen).await {
                println!("tollgate ready: admin http://{p}");
            }
        }
        if let Some(g) = &cfg.gateway {
            if let Some(p) = wait_listening(g.listen).await {
                println!("tollgate ready: gateway http://{p}");
            }
        }
        if let Some(p) = wait_listening(cfg.server.listen).await {
            println!(
                "tollgate ready: public http://{p} (public_url {}) -> origin {}",
                cfg.server.public_url, cfg.server.upstream_name
            );
        }
        let _ = std::io::stdout().flush();
    }
}

/// Adds `addr` to `svc` without pingora's L4 read buffer: the connection guard
/// ([`Limited`]) reads every head into a buffer of its own and pingora's HTTP/1
/// session reads on from that, so a 64 KiB read buffer per connection (pingora's
/// default, meant for TLS records; tollgate's listeners are plain HTTP) only added
/// a copy and most of an idle connection's memory. The write buffer keeps its
/// default (one MSS).
fn listen_on<A>(svc: &mut Service<A>, addr: SocketAddr) {
    svc.add_listener(
        ListenerConfig::tcp(addr.to_string()).l4_buffer(L4BufferSettings::default().read(0)),
    );
}
