//! A fault-injecting JSON-RPC proxy on 127.0.0.1:0 (axum), in front of a real node.
//!
//! It forwards every HTTP request body unchanged to its upstream and relays the
//! answer, so the node's own answers (anvil's) are what the client sees. Switches:
//!
//! * [`RpcProxy::fail_next_logs`]: the next `n` requests that carry an
//!   `eth_getLogs` (alone or inside a batch) are refused with HTTP 429, as a rate
//!   limit does;
//! * [`RpcProxy::fail_all`]: every request is refused with HTTP 503 (a node that is
//!   down behind its load balancer);
//! * [`RpcProxy::route_logs_to`]: requests that carry an `eth_getLogs` go to another
//!   upstream: a load balancer whose log queries land on a lagging backend. A batch
//!   is one HTTP request, so it goes to one backend as a whole.
//!
//! Counters tell the test what reached the proxy. The server runs on its own thread
//! and runtime; it is stopped (and the thread joined) on drop.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::Value;

use super::background_server::BackgroundServer;

struct Shared {
    upstream: String,
    logs_upstream: Mutex<Option<String>>,
    fail_logs: AtomicU64,
    fail_all: AtomicBool,
    requests: AtomicU64,
    served_logs: AtomicU64,
    refused_logs: AtomicU64,
    http: reqwest::Client,
}

/// A running proxy.
pub struct RpcProxy {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    _server: BackgroundServer,
}

impl RpcProxy {
    /// A healthy proxy in front of `upstream` (`http://127.0.0.1:PORT`).
    pub fn start(upstream: &str) -> RpcProxy {
        let shared = Arc::new(Shared {
            upstream: upstream.to_string(),
            logs_upstream: Mutex::new(None),
            fail_logs: AtomicU64::new(0),
            fail_all: AtomicBool::new(false),
            requests: AtomicU64::new(0),
            served_logs: AtomicU64::new(0),
            refused_logs: AtomicU64::new(0),
            http: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("reqwest client"),
        });
        let state = shared.clone();
        let server =
            BackgroundServer::start(move || Router::new().fallback(forward).with_state(state));
        RpcProxy {
            addr: server.addr,
            shared,
            _server: server,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Refuses the next `n` requests that carry an `eth_getLogs` with HTTP 429.
    pub fn fail_next_logs(&self, n: u64) {
        self.shared.fail_logs.store(n, Ordering::SeqCst);
    }

    /// Refuses every request with HTTP 503 while `on`.
    pub fn fail_all(&self, on: bool) {
        self.shared.fail_all.store(on, Ordering::SeqCst);
    }

    /// Sends requests that carry an `eth_getLogs` to `upstream` (`None`: the usual one).
    pub fn route_logs_to(&self, upstream: Option<&str>) {
        *self.shared.logs_upstream.lock().unwrap() = upstream.map(str::to_string);
    }

    /// HTTP requests received.
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// Requests carrying an `eth_getLogs` that were forwarded and answered.
    pub fn served_logs(&self) -> u64 {
        self.shared.served_logs.load(Ordering::SeqCst)
    }

    /// Requests carrying an `eth_getLogs` that the proxy refused (429 or 503).
    pub fn refused_logs(&self) -> u64 {
        self.shared.refused_logs.load(Ordering::SeqCst)
    }
}

/// The JSON-RPC methods in a request body (one object or a batch array).
fn methods(body: &[u8]) -> Vec<String> {
    let method = |v: &Value| v["method"].as_str().map(str::to_string);
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(calls)) => calls.iter().filter_map(method).collect(),
        Ok(v) => method(&v).into_iter().collect(),
        Err(_) => Vec::new(),
    }
}

async fn forward(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    s.requests.fetch_add(1, Ordering::SeqCst);
    let logs = methods(&body).iter().any(|m| m == "eth_getLogs");
    if s.fail_all.load(Ordering::SeqCst) {
        if logs {
            s.refused_logs.fetch_add(1, Ordering::SeqCst);
        }
        return (StatusCode::SERVICE_UNAVAILABLE, "upstream unavailable").into_response();
    }
    if logs
        && s.fail_logs
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    {
        s.refused_logs.fetch_add(1, Ordering::SeqCst);
        let body =
            r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32005,"message":"rate limited"}}"#;
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("content-type", "application/json")],
            body,
        )
            .into_response();
    }
    let upstream = match (logs, s.logs_upstream.lock().unwrap().clone()) {
        (true, Some(u)) => u,
        _ => s.upstream.clone(),
    };
    let answer = s
        .http
        .post(&upstream)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await;
    match answer {
        Ok(r) => {
            let status = StatusCode::from_u16(r.status().as_u16()).unwrap();
            let bytes = r.bytes().await.unwrap_or_default();
            if logs {
                s.served_logs.fetch_add(1, Ordering::SeqCst);
            }
            (status, [("content-type", "application/json")], bytes).into_response()
        }
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}
