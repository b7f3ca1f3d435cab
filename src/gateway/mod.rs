//! The 0xbtcpay-compatible gateway and the admin listener (SPEC section 7).
//!
//! One Pingora HTTP app serves both listeners. `POST /` is JSON-RPC 2.0
//! `start_payment`, only for callers inside the `[admin] allow` CIDRs (403) and with
//! the bearer token when one is configured (401). `GET /{id}/status.json` is public
//! on the gateway listener (with CORS, as the seed's browser polling needs). The admin
//! listener is allowlisted for everything and also lists postback deliveries,
//! triggers redeliveries and serves `GET /metrics` ([`crate::metrics`]). Handlers
//! return [`Reply`]s; nothing here decides payments.

pub mod rpc;

use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use http::{Method, Response};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use serde_json::{json, Value};

use crate::app::App;
use crate::endpoints;
use crate::limits::budget::Budget;
use crate::payments::service::PaymentService;
use crate::reply::Reply;
use rpc::{Parsed, RpcError};

/// Largest JSON-RPC request body.
pub const MAX_BODY: usize = 64 * 1024;

/// Which listener an app serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// `[admin] listen`: everything allowlisted, plus delivery management.
    Admin,
    /// `[gateway] listen`: JSON-RPC allowlisted, status public.
    Gateway,
}

/// The gateway/admin HTTP app.
pub struct GatewayApp {
    app: Arc<App>,
    payments: Arc<PaymentService>,
    listener: Listener,
    /// `[gateway] start_rate` per client.
    start_budget: Option<Budget>,
}

impl GatewayApp {
    /// An app for `listener`.
    pub fn new(app: Arc<App>, payments: Arc<PaymentService>, listener: Listener) -> GatewayApp {
        let start_budget = match listener {
            Listener::Gateway => app
                .cfg()
                .gateway
                .as_ref()
                .map(|g| Budget::new(g.start_rate)),
            Listener::Admin => None,
        };
        GatewayApp {
            app,
            payments,
            listener,
            start_budget,
        }
    }

    fn allowed(&self, ip: Option<IpAddr>) -> bool {
        let Some(ip) = ip else { return false };
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match &self.app.cfg().admin {
            Some(a) => a.allow.iter().any(|n| n.contains(&ip)),
            None => ip.is_loopback(),
        }
    }

    fn token_ok(&self, authorization: Option<&[u8]>) -> bool {
        let cfg = self.app.cfg();
        let Some(want) = cfg.admin.as_ref().and_then(|a| a.token.as_ref()) else {
            return true;
        };
        let got = authorization
            .and_then(|a| std::str::from_utf8(a).ok())
            .and_then(|a| a.strip_prefix("Bearer "))
            .unwrap_or("");
        // Constant time: compare MACs of both under a fresh key.
        let key = self.app.keys.claim;
        crate::keys::mac(&key, &[got.as_bytes()]) == crate::keys::mac(&key, &[&want.0])
    }

    async fn route(&self, s: &mut ServerSession) -> Reply {
        let req = s.req_header();
        let method = req.method.clone();
        let path = req.uri.path().to_string();
        let ip = s.client_addr().and_then(|a| a.as_inet()).map(|a| a.ip());
        let auth = req
            .headers
            .get("authorization")
            .map(|v| v.as_bytes().to_vec());
        let allowed = self.allowed(ip);
        let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let public_status =
            matches!(segs.as_slice(), [_, "status.json"]) && self.listener == Listener::Gateway;
        if !allowed && !public_status {
            return Reply::error(403, "forbidden", "this address may not use this endpoint");
        }
        if !public_status && !self.token_ok(auth.as_deref()) {
            return Reply::error(
                401,
                "unauthorized",
                "a valid Authorization: Bearer token is required",
            )
            .with_header("WWW-Authenticate", "Bearer".into());
        }
        match (&method, segs.as_slice()) {
            (&Method::POST, [""]) => self.json_rpc(s, ip).await,
            (&Method::GET | &Method::HEAD, [pid, "status.json"]) if endpoints::is_pid(pid) => {
                endpoints::pay::status(&self.app, pid).await
            }
            (&Method::GET | &Method::HEAD, [_, "status.json"]) => {
                Reply::error(404, "unknown_payment", "no payment with this id")
                    .with_header("Access-Control-Allow-Origin", "*".into())
            }
            (&Method::OPTIONS, [_, "status.json"]) => endpoints::pay::cors_preflight(),
            (&Method::GET, ["metrics"]) if self.listener == Listener::Admin => self.metrics().await,
            (&Method::GET, ["deliveries"]) if self.listener == Listener::Admin => {
                self.deliveries().await
            }
            (&Method::POST, ["deliveries", id, "redeliver"])
                if self.listener == Listener::Admin =>
            {
                self.redeliver(id).await
            }
            _ => Reply::error(404, "not_found", "no such endpoint"),
        }
    }

    async fn json_rpc(&self, s: &mut ServerSession, ip: Option<IpAddr>) -> Reply {
        let mut body = Vec::new();
        loop {
            match s.read_request_body().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > MAX_BODY {
                        s.set_keepalive(None);
                        let e = RpcError {
                            id: Value::Null,
                            code: rpc::INVALID_REQUEST,
                            message: format!("invalid request: body larger than {MAX_BODY} bytes"),
                        };
                        return Reply::json(413, &rpc::error(&e));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(_) => return Reply::error(400, "bad_body", "could not read the request body"),
            }
        }
        // A spent budget: 429 for a single call, per-call errors in a batch; both
        // with Retry-After.
        let mut limited = None;
        let (out, single) = match rpc::parse(&body) {
            Parsed::Single(c) => (self.answer(c, ip, &mut limited).await, true),
            Parsed::Batch(calls) => {
                let mut answers = Vec::new();
                for c in calls {
                    if let Some(a) = self.answer(c, ip, &mut limited).await {
                        answers.push(a);
                    }
                }
                (
                    (!answers.is_empty()).then_some(Value::Array(answers)),
                    false,
                )
            }
        };
        let status = if single && limited.is_some() {
            429
        } else {
            200
        };
        let reply = match out {
            Some(v) => Reply::json(status, &v),
            None => Reply {
                status: 204,
                headers: Vec::new(),
                content_type: "application/json",
                body: Bytes::new(),
            },
        };
        match limited {
            Some(secs) => reply.with_header("Retry-After", secs.max(1).to_string()),
            None => reply,
        }
    }

    /// Answers one call; `None` for a notification. A call refused for a spent
    /// budget sets `limited` to the seconds until it is renewed.
    async fn answer(
        &self,
        call: Result<rpc::Call, RpcError>,
        ip: Option<IpAddr>,
        limited: &mut Option<u64>,
    ) -> Option<Value> {
        let call = match call {
            Ok(c) => c,
            Err(e) => return Some(rpc::error(&e)),
        };
        let reply_id = call.id.clone().unwrap_or(Value::Null);
        let budget = match (&self.start_budget, ip) {
            (Some(b), Some(ip)) if call.method == "start_payment" => {
                b.spend(ip, self.app.clock.now_secs())
            }
            _ => Ok(()),
        };
        let outcome = if let Err(secs) = budget {
            *limited = Some(secs);
            Err((
                rpc::LIMIT_EXCEEDED,
                format!("too many new payments from this address; retry after {secs} s"),
            ))
        } else if call.method == "start_payment" {
            self.start_payment(&call.params).await
        } else {
            Err((
                rpc::METHOD_NOT_FOUND,
                format!("method not found: {:?}", call.method),
            ))
        };
        call.id.as_ref()?;
        Some(match outcome {
            Ok(v) => rpc::result(&reply_id, v),
            Err((code, message)) => rpc::error(&RpcError {
                id: reply_id,
                code,
                message,
            }),
        })
    }

    async fn start_payment(&self, params: &Value) -> Result<Value, (i64, String)> {
        let cfg = self.app.cfg();
        let sp = rpc::start_payment_params(params, cfg.chain.decimals)
            .map_err(|m| (rpc::INVALID_PARAMS, format!("invalid params: {m}")))?;
        if let Some(url) = &sp.postback_url {
            crate::postback::check_url(url, &cfg.postback.allow_networks)
                .await
                .map_err(|e| {
                    (
                        rpc::INVALID_PARAMS,
                        format!("invalid params: postback_url {e}"),
                    )
                })?;
        }
        let now = self.app.clock.now_secs();
        let p = self
            .payments
            .start_payment(
                &cfg,
                sp.amount,
                sp.data.as_ref(),
                sp.postback_url.as_deref(),
                now,
            )
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "start_payment: store unavailable");
                (
                    rpc::SERVER_ERROR,
                    "payment store unavailable; try again".to_string(),
                )
            })?;
        Ok(json!({"id": p.id, "amount": sp.amount_text, "address": p.address}))
    }

    /// `GET /metrics` (admin): the Prometheus text format.
    async fn metrics(&self) -> Reply {
        let Some(m) = crate::metrics::global() else {
            return Reply::error(503, "metrics_unavailable", "metrics could not be set up");
        };
        match m.scrape(Some(&self.payments)).await {
            Ok(text) => Reply {
                status: 200,
                headers: vec![("Cache-Control", "no-store".into())],
                content_type: crate::metrics::CONTENT_TYPE,
                body: Bytes::from(text),
            },
            Err(e) => Reply::error(503, "store_unavailable", &e),
        }
    }

    async fn deliveries(&self) -> Reply {
        match self.payments.store.deliveries(100).await {
            Ok(list) => Reply::json(
                200,
                &json!({"deliveries": list.iter().map(|d| json!({
                    "id": d.id,
                    "payment_id": d.payment_id,
                    "url": d.url,
                    "attempts": d.attempts,
                    "created_at": d.created_at,
                    "next_attempt_at": d.next_attempt_at,
                    "delivered_at": d.delivered_at,
                    "last_error": d.last_error,
                })).collect::<Vec<_>>()}),
            ),
            Err(e) => Reply::error(503, "store_unavailable", &e.to_string()),
        }
    }

    async fn redeliver(&self, id: &str) -> Reply {
        match self
            .payments
            .store
            .redeliver(id, self.app.clock.now_secs())
            .await
        {
            Ok(true) => Reply::json(202, &json!({"id": id, "status": "scheduled"})),
            Ok(false) => Reply::error(404, "unknown_delivery", "no delivery with this id"),
            Err(e) => Reply::error(503, "store_unavailable", &e.to_string()),
        }
    }
}

#[async_trait]
impl ServeHttp for GatewayApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let reply = self.route(session).await;
        let head_only = session.req_header().method == Method::HEAD;
        let mut b = Response::builder()
            .status(reply.status)
            .header("Content-Type", reply.content_type)
            .header("Content-Length", reply.body.len().to_string());
        for (k, v) in &reply.headers {
            b = b.header(*k, v.as_str());
        }
        let body = if head_only {
            Vec::new()
        } else {
            reply.body.to_vec()
        };
        b.body(body).unwrap_or_else(|_| Response::new(Vec::new()))
    }
}
