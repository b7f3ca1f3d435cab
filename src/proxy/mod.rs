//! The Pingora `ProxyHttp` implementation: the thin IO shell around the gate.
//!
//! `request_filter` reads like the lifecycle in lib.rs: canonicalise → own endpoint?
//! → decide → forward, refuse (400) or challenge (402). Every decision is made by
//! the pure modules; this file only reads the request and writes the answer.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use pingora::proxy::{ProxyHttp, Session};

use crate::app::App;
use crate::challenge;
use crate::contract::Offer;
use crate::endpoints::{self, EndpointRequest};
use crate::gate::{decide, query_param, strip_query_param, Decision};
use crate::reply::{prefers_json, Reply};
use crate::routes::canonicalize;

/// The query parameter carrying a contract token on a fulfillment URL.
pub const CONTRACT_PARAM: &str = "tollgate_contract";

/// Bodies of early answers larger than this are not drained: the connection closes.
const MAX_DRAIN: u64 = 64 * 1024;

/// The proxy. One per server; shares [`App`] with background services.
pub struct Tollgate {
    app: Arc<App>,
}

impl Tollgate {
    /// A proxy over `app`.
    pub fn new(app: Arc<App>) -> Tollgate {
        Tollgate { app }
    }
}

/// Per-request state.
#[derive(Debug, Default)]
pub struct RequestCtx {
    /// The path and query to send upstream, when it differs from what arrived.
    rewrite: Option<String>,
}

#[async_trait]
impl ProxyHttp for Tollgate {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx::default()
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        match self.route_request(session, ctx) {
            None => Ok(false),
            Some(reply) => {
                write_reply(session, reply).await?;
                Ok(true)
            }
        }
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        _ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        let s = &self.app.cfg.server;
        Ok(Box::new(HttpPeer::new(
            s.upstream,
            s.upstream_tls,
            s.upstream_sni.clone(),
        )))
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        upstream_request: &mut pingora::http::RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if let Some(target) = ctx.rewrite.take() {
            upstream_request.set_raw_path(target.as_bytes())?;
        }
        Ok(())
    }
}

impl Tollgate {
    /// Decides what to do with the request. `None`: proxy it (with `ctx.rewrite`);
    /// `Some(reply)`: answer it here.
    fn route_request(&self, session: &Session, ctx: &mut RequestCtx) -> Option<Reply> {
        let app = &self.app;
        let cfg = &app.cfg;
        let req = session.req_header();
        let raw = req.raw_path();
        if raw == b"*" {
            return None; // OPTIONS * : nothing to price
        }
        let target = match canonicalize(raw) {
            Ok(t) => t,
            Err(e) => return Some(Reply::error(400, "bad_request_target", &e.to_string())),
        };
        let prefix = cfg.server.pay_prefix.as_str();
        if let Some(sub) = target.path.strip_prefix(prefix) {
            if sub.is_empty() || sub.starts_with('/') {
                return Some(endpoints::handle(
                    app,
                    &EndpointRequest {
                        method: &req.method,
                        sub_path: sub,
                        query: target.query.as_deref(),
                    },
                ));
            }
        }
        match decide(&cfg.routes, &req.method, &target) {
            Decision::Forward => {
                ctx.rewrite = forward_target(raw, &target.path, target.query.as_deref());
                None
            }
            Decision::Ambiguous(what) => Some(Reply::error(
                400,
                "ambiguous_path",
                &format!("the path contains {what} and would reach a priced resource"),
            )),
            Decision::Priced(route) => {
                let now = app.clock.now_secs();
                // A fulfillment URL revisited: the same contract again (SPEC section 5).
                let offer = query_param(target.query.as_deref(), CONTRACT_PARAM)
                    .and_then(|t| Offer::from_token(&app.keys, t).ok())
                    .filter(|o| o.params.resource == target.path && !o.expired(now))
                    .unwrap_or_else(|| {
                        Offer::mint(cfg, &app.keys, route, &target.path, app.nonce(), now)
                    });
                let json = prefers_json(req.headers.get("accept").map(|v| v.as_bytes()));
                Some(challenge::payment_required(cfg, &offer, json))
            }
        }
    }
}

/// The request-target to send upstream, or `None` when the received one is already
/// canonical and carries no contract token.
fn forward_target(raw: &[u8], path: &str, query: Option<&str>) -> Option<String> {
    let query_has_token = query.is_some_and(|q| q.contains(CONTRACT_PARAM));
    let raw_path = raw.split(|&b| b == b'?').next().unwrap_or(raw);
    if raw_path == path.as_bytes() && !query_has_token {
        return None;
    }
    let query = match query {
        Some(q) if query_has_token => strip_query_param(q, CONTRACT_PARAM),
        Some(q) => Some(q.to_string()),
        None => None,
    };
    Some(match query {
        Some(q) => format!("{path}?{q}"),
        None => path.to_string(),
    })
}

/// Writes a reply tollgate answers itself. A request body that is large or of
/// unknown length is not drained: the connection is closed after the reply instead.
async fn write_reply(session: &mut Session, reply: Reply) -> Result<()> {
    let mut header = ResponseHeader::build(reply.status, Some(reply.headers.len() + 3))?;
    header.insert_header("Content-Type", reply.content_type)?;
    header.insert_header("Content-Length", reply.body.len().to_string())?;
    for (name, value) in &reply.headers {
        header.append_header(*name, value.as_str())?;
    }
    let req = session.req_header();
    let body_len = req
        .headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let chunked = req.headers.contains_key("transfer-encoding");
    let head_only = req.method == http::Method::HEAD;
    if chunked || body_len.is_some_and(|n| n > MAX_DRAIN) {
        session.set_keepalive(None);
    }
    session
        .write_response_header(Box::new(header), head_only)
        .await?;
    if !head_only {
        session
            .write_response_body(Some(Bytes::clone(&reply.body)), true)
            .await?;
    }
    Ok(())
}
