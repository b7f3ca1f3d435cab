//! The Pingora `ProxyHttp` implementation: the thin IO shell around the gate.
//!
//! `request_filter` reads like the lifecycle in lib.rs: canonicalise → own endpoint?
//! → decide → forward, refuse (400) or challenge (402). Every decision is made by
//! the pure modules; this file only reads the request and writes the answer.
//! Who the client is behind a load balancer is decided by [`forwarded`].

pub mod forwarded;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::prelude::*;
use pingora::proxy::{ProxyHttp, Session};

use crate::app::App;
use crate::challenge::{self, Visit};
use crate::config::Route;
use crate::contract::Offer;
use crate::endpoints::{self, EndpointRequest};
use crate::gate::{decide, query_param, strip_query_param, Decision};
use crate::metrics::Outcome;
use crate::monetization::codec::{Emit, Transcoder};
use crate::monetization::inject::{self, Framing, HeadInjector, LinkInjection};
use crate::payments::service::PaymentService;
use crate::payments::state::PaymentState;
use crate::receipt;
use crate::reply::{prefers_json, Reply};
use crate::routes::canonicalize;

/// The query parameter carrying a contract token on a fulfillment URL.
pub const CONTRACT_PARAM: &str = "tollgate_contract";

/// Bodies of early answers larger than this are not drained: the connection closes.
const MAX_DRAIN: u64 = 64 * 1024;

/// The proxy. One per server; shares [`App`] with background services.
pub struct Tollgate {
    app: Arc<App>,
    /// The Web Monetization link and the paths whose HTML gets it (`inject_link`).
    link_injection: Option<LinkInjection>,
}

impl Tollgate {
    /// A proxy over `app`.
    pub fn new(app: Arc<App>) -> Tollgate {
        let link_injection = LinkInjection::from_config(
            app.cfg().web_monetization.as_ref(),
            app.cfg().server.upstream_case_insensitive,
        );
        Tollgate {
            app,
            link_injection,
        }
    }
}

/// Per-request state.
#[derive(Debug, Default)]
pub struct RequestCtx {
    /// The path and query to send upstream, when it differs from what arrived.
    rewrite: Option<String>,
    /// Remove tollgate's receipt header and cookie before forwarding.
    strip_credentials: bool,
    /// The canonical path is an `inject_link` one: its HTML may get the monetization link.
    inject_link: bool,
    /// The response body is being run through the link injector (set by
    /// `response_filter` for a response it may change).
    link_rewrite: Option<Box<Transcoder<HeadInjector>>>,
    /// When the request head arrived (for the duration histogram).
    started: Option<Instant>,
    /// What tollgate did with the request (for `tollgate_requests_total`).
    outcome: Option<Outcome>,
    /// The TCP peer.
    peer: Option<IpAddr>,
    /// The peer is inside `[server] trusted_proxies`: its forwarding headers count.
    trusted_peer: bool,
    /// The client address: the peer, or what a trusted peer forwarded.
    client: Option<IpAddr>,
}

#[async_trait]
impl ProxyHttp for Tollgate {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            started: Some(Instant::now()),
            ..RequestCtx::default()
        }
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        self.resolve_client(session, ctx);
        let reply = self.route_request(session, ctx).await;
        let outcome = match &reply {
            None if ctx.strip_credentials => Outcome::Unlocked,
            None => Outcome::Forwarded,
            Some(r) if r.status == 402 => Outcome::Challenged,
            Some(_) => Outcome::Refused,
        };
        ctx.outcome.get_or_insert(outcome);
        match reply {
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
        let s = &self.app.cfg().server;
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
        if ctx.strip_credentials {
            strip_credentials(upstream_request)?;
        }
        self.forwarding_headers(upstream_request, ctx)?;
        Ok(())
    }

    async fn logging(&self, session: &mut Session, _e: Option<&Error>, ctx: &mut RequestCtx) {
        let outcome = ctx.outcome.unwrap_or(Outcome::Refused);
        if let Some(m) = crate::metrics::global() {
            let secs = ctx.started.map_or(0.0, |t| t.elapsed().as_secs_f64());
            m.observe_request(outcome, secs);
        }
        tracing::debug!(
            client = ?ctx.client,
            status = session.response_written().map_or(0, |r| r.status.as_u16()),
            outcome = outcome.as_str(),
            "request"
        );
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if ctx.inject_link {
            self.start_link_injection(session, upstream_response, ctx)?;
        }
        Ok(())
    }

    fn response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<Option<Duration>> {
        if let Some(rewrite) = ctx.link_rewrite.as_deref_mut() {
            inject_link_into_body(rewrite, body, end_of_stream);
        }
        Ok(None)
    }
}

impl Tollgate {
    /// Decides what to do with the request. `None`: proxy it (with `ctx`'s rewrite);
    /// `Some(reply)`: answer it here.
    async fn route_request(&self, session: &mut Session, ctx: &mut RequestCtx) -> Option<Reply> {
        let app = &self.app;
        let cfg = app.cfg();
        let raw = session.req_header().raw_path();
        if raw == b"*" {
            return None; // OPTIONS * : nothing to price
        }
        let mut target = match canonicalize(raw) {
            Ok(t) => t,
            Err(e) => return Some(Reply::error(400, "bad_request_target", &e.to_string())),
        };
        let prefix = cfg.server.pay_prefix.as_str();
        if let Some(sub) = under_prefix(&target.path, prefix) {
            ctx.outcome = Some(Outcome::Endpoint);
            return Some(
                self.endpoint(session, sub, target.query.as_deref(), ctx.client)
                    .await,
            );
        }
        let case_insensitive = cfg.server.upstream_case_insensitive;
        if case_insensitive {
            // One canonical path for matching and forwarding (invariant 1).
            target.path.make_ascii_lowercase();
            if under_prefix(&target.path, &prefix.to_ascii_lowercase()).is_some() {
                return Some(Reply::error(404, "not_found", "no such tollgate endpoint"));
            }
        }
        // Computed while the raw target is at hand; no allocation when nothing changes.
        let rewrite = forward_target(raw, &target.path, target.query.as_deref());
        ctx.inject_link = self
            .link_injection
            .as_ref()
            .is_some_and(|l| l.covers(&target.path));
        let req = session.req_header();
        let route = match decide(&cfg.routes, &req.method, &target, case_insensitive) {
            Decision::Forward => {
                ctx.rewrite = rewrite;
                return None;
            }
            Decision::Ambiguous(what) => {
                return Some(Reply::error(
                    400,
                    "ambiguous_path",
                    &format!("the path contains {what} and would reach a priced resource"),
                ))
            }
            Decision::Priced(route) => route,
        };
        let now = app.clock.now_secs();
        if let Some(payments) = &app.payments {
            match self
                .receipt_unlocks(payments, req, &target.path, route, now)
                .await
            {
                Ok(true) => {
                    ctx.rewrite = rewrite;
                    ctx.strip_credentials = true;
                    return None;
                }
                Ok(false) => {}
                // A dry run never fails a request the route would serve free.
                Err(_) if !route.enforce => {}
                Err(reply) => return Some(reply),
            }
        }
        if !route.enforce {
            // Dry run (`enforce = false`): served as a free route would be, counted
            // and logged with what it would have cost.
            tracing::info!(
                path = %target.path,
                route = %route.pattern,
                price = %route.price.to_decimal(cfg.chain.decimals),
                price_base_units = %route.price.0,
                "would_challenge"
            );
            ctx.outcome = Some(Outcome::DryRun);
            ctx.rewrite = rewrite;
            return None;
        }
        // A fulfillment URL revisited: the same contract again (SPEC section 5).
        let revisit = query_param(target.query.as_deref(), CONTRACT_PARAM)
            .and_then(|t| Offer::from_token(&app.keys, t).ok())
            .filter(|o| o.params.resource == target.path && !o.expired(now));
        let json = prefers_json(req.headers.get("accept").map(|v| v.as_bytes()));
        if let (Some(offer), Some(payments)) = (&revisit, &app.payments) {
            // Never invite a second payment while the first is confirming (invariant 6).
            match payments.payment_by_contract(&offer.hash.0).await {
                Ok(Some(p)) if matches!(p.state, PaymentState::Seen | PaymentState::Confirming) => {
                    return Some(challenge::confirming(&cfg, offer, &p, json));
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = %e, "store unavailable");
                    return Some(unavailable());
                }
            }
        }
        let (offer, visit) = match revisit {
            Some(offer) => (offer, Visit::Revisit),
            None => (
                Offer::mint(&cfg, &app.keys, route, &target.path, app.nonce(), now),
                Visit::Fresh,
            ),
        };
        Some(challenge::payment_required(&cfg, &offer, visit, json))
    }

    /// True when the request carries a receipt that unlocks `path`, which `route`
    /// prices: MAC (constant time), expiry, scope (the path itself, or this very
    /// route), then the contract-hash store (cache first). `Err` is a reply for when
    /// the store cannot answer: fail closed.
    async fn receipt_unlocks(
        &self,
        payments: &PaymentService,
        req: &pingora::http::RequestHeader,
        path: &str,
        route: &Route,
        now: u64,
    ) -> std::result::Result<bool, Reply> {
        let auth = req.headers.get("authorization").map(|v| v.as_bytes());
        let cookies = req.headers.get_all("cookie").iter().map(|v| v.as_bytes());
        for candidate in receipt::candidates(auth, cookies) {
            let Ok(claims) = receipt::verify(&self.app.keys, candidate, now) else {
                continue;
            };
            if !receipt::scope_covers(&claims.scope, path, &route.pattern) {
                continue;
            }
            let mut hash = [0u8; 32];
            if hex::decode_to_slice(&claims.h, &mut hash).is_err() {
                continue;
            }
            match payments.paid_fact(&hash).await {
                Ok(Some(fact))
                    if fact.scope == claims.scope
                        && fact.pid == claims.pid
                        && receipt::list_pattern_for(&fact.revoked, path).is_none() =>
                {
                    return Ok(true)
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = %e, "store unavailable: refusing priced request");
                    return Err(unavailable());
                }
            }
        }
        Ok(false)
    }

    /// Reads the (bounded) body when the endpoint needs it and answers.
    async fn endpoint(
        &self,
        session: &mut Session,
        sub: &str,
        query: Option<&str>,
        client_ip: Option<IpAddr>,
    ) -> Reply {
        let method = session.req_header().method.clone();
        let mut body = Vec::new();
        if endpoints::reads_body(&method, sub) {
            loop {
                match session.read_request_body().await {
                    Ok(Some(chunk)) => {
                        if body.len() + chunk.len() > endpoints::MAX_BODY {
                            session.set_keepalive(None);
                            return Reply::error(413, "body_too_large", "request body too large");
                        }
                        body.extend_from_slice(&chunk);
                    }
                    Ok(None) => break,
                    Err(_) => {
                        return Reply::error(400, "bad_body", "could not read the request body")
                    }
                }
            }
        }
        let req = session.req_header();
        let content_type = req
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let wants_json = prefers_json(req.headers.get("accept").map(|v| v.as_bytes()));
        let cookies: Vec<&str> = req
            .headers
            .get_all("cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        endpoints::handle(
            &self.app,
            &EndpointRequest {
                method: &method,
                sub_path: sub,
                query,
                body: &body,
                content_type: &content_type,
                wants_json,
                client_ip,
                cookies: &cookies,
                authorization: req
                    .headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok()),
                if_none_match: req
                    .headers
                    .get("if-none-match")
                    .and_then(|v| v.to_str().ok()),
            },
        )
        .await
    }

    /// Sets the peer, whether it is a trusted proxy, and the client address it
    /// stands for ([`forwarded::client_address`]). Nothing is allocated unless the
    /// peer is trusted.
    fn resolve_client(&self, session: &Session, ctx: &mut RequestCtx) {
        let Some(peer) = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip())
        else {
            return;
        };
        let peer = forwarded::canonical_ip(peer);
        let trusted = &self.app.cfg().server.trusted_proxies;
        ctx.peer = Some(peer);
        ctx.trusted_peer = forwarded::is_trusted(peer, trusted);
        ctx.client = Some(if ctx.trusted_peer {
            let h = &session.req_header().headers;
            let xff: Vec<&[u8]> = h
                .get_all("x-forwarded-for")
                .iter()
                .map(|v| v.as_bytes())
                .collect();
            let fwd: Vec<&[u8]> = h
                .get_all("forwarded")
                .iter()
                .map(|v| v.as_bytes())
                .collect();
            forwarded::client_address(peer, trusted, &xff, &fwd)
        } else {
            peer
        });
    }

    /// `X-Forwarded-For` (the chain of a trusted peer plus the peer; otherwise the
    /// peer alone), `X-Forwarded-Proto` and `X-Forwarded-Host` toward the origin, as
    /// nginx and Caddy send them. An untrusted peer's `Forwarded` is dropped.
    fn forwarding_headers(
        &self,
        req: &mut pingora::http::RequestHeader,
        ctx: &RequestCtx,
    ) -> Result<()> {
        let Some(peer) = ctx.peer else {
            return Ok(());
        };
        let server = &self.app.cfg().server;
        let trusted = ctx.trusted_peer;
        let h = &req.headers;
        let xff: Vec<&[u8]> = h
            .get_all("x-forwarded-for")
            .iter()
            .map(|v| v.as_bytes())
            .collect();
        let chain = forwarded::upstream_xff(peer, trusted, &xff);
        let proto = trusted
            .then(|| {
                let fwd: Vec<&[u8]> = h
                    .get_all("forwarded")
                    .iter()
                    .map(|v| v.as_bytes())
                    .collect();
                forwarded::forwarded_proto(h.get("x-forwarded-proto").map(|v| v.as_bytes()), &fwd)
            })
            .flatten()
            .unwrap_or(if server.public_https { "https" } else { "http" });
        let keep_host = trusted && h.contains_key("x-forwarded-host");
        let host = (!keep_host).then(|| {
            h.get("host")
                .map(|v| v.as_bytes().to_vec())
                .or_else(|| req.uri.authority().map(|a| a.as_str().as_bytes().to_vec()))
                .unwrap_or_else(|| {
                    let u = &server.public_url;
                    u.split_once("://")
                        .map_or(u.as_str(), |(_, r)| r)
                        .as_bytes()
                        .to_vec()
                })
        });
        req.insert_header("X-Forwarded-For", chain)?;
        req.insert_header("X-Forwarded-Proto", proto)?;
        if let Some(host) = host {
            req.insert_header("X-Forwarded-Host", host)?;
        }
        if !trusted {
            req.remove_header("forwarded");
        }
        Ok(())
    }

    /// For a response the link may go into (SPEC section 10): re-frames its header
    /// and starts the body rewrite. Others are left alone.
    fn start_link_injection(
        &self,
        session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let Some(link) = &self.link_injection else {
            return Ok(());
        };
        let req = session.req_header();
        let Some(coding) = inject::rewritable(&req.method, resp.status.as_u16(), &resp.headers)
        else {
            return Ok(());
        };
        let framing = Framing::for_request(req.version);
        inject::prepare_headers(resp, framing)?;
        if framing == Framing::CloseDelimited {
            session.set_keepalive(None);
        }
        let injector = HeadInjector::new(link.link().clone());
        ctx.link_rewrite = Some(Box::new(Transcoder::new(coding, injector)));
        Ok(())
    }
}

fn unavailable() -> Reply {
    Reply::error(
        503,
        "store_unavailable",
        "cannot verify payments right now; try again shortly",
    )
    .with_header("Retry-After", "5".into())
}

/// The part of `path` below `prefix` (empty or starting with `/`), if it is under it.
fn under_prefix<'p>(path: &'p str, prefix: &str) -> Option<&'p str> {
    path.strip_prefix(prefix)
        .filter(|sub| sub.is_empty() || sub.starts_with('/'))
}

/// Runs one body chunk through the link injector, replacing it with what to send.
fn inject_link_into_body(
    rewrite: &mut Transcoder<HeadInjector>,
    body: &mut Option<Bytes>,
    end_of_stream: bool,
) {
    let was_truncated = rewrite.truncated();
    match rewrite.filter(body.as_deref(), end_of_stream) {
        Emit::AsIs => {}
        Emit::Bytes(out) if out.is_empty() => *body = None,
        Emit::Bytes(out) => *body = Some(Bytes::from(out)),
    }
    if rewrite.truncated() && !was_truncated {
        tracing::warn!(
            "origin sent a corrupt compressed HTML body after the monetization link went in; \
             the response ends with what decoded cleanly"
        );
    }
}

/// Removes `Authorization: Tollgate …` and the `tollgate_receipt` cookie.
fn strip_credentials(req: &mut pingora::http::RequestHeader) -> Result<()> {
    let is_ours = req
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("tollgate "));
    if is_ours {
        req.remove_header("authorization");
    }
    let cookies: Vec<String> = req
        .headers
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect();
    if !cookies.is_empty() {
        req.remove_header("cookie");
        let kept: Vec<String> = cookies
            .iter()
            .filter_map(|c| receipt::strip_cookie(c))
            .collect();
        if !kept.is_empty() {
            req.insert_header("cookie", kept.join("; "))?;
        }
    }
    Ok(())
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
    // A 304 describes the cached 200: no Content-Type or Content-Length of its own.
    if reply.status != 304 {
        header.insert_header("Content-Type", reply.content_type)?;
        header.insert_header("Content-Length", reply.body.len().to_string())?;
    }
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
