//! tollgate's own HTTP endpoints under `pay_prefix` (SPEC section 6): handlers over
//! the core that take a parsed request and return a [`Reply`]. They never reach
//! the origin.

pub mod basket;
pub mod pay;
pub mod prices;
pub mod wallet_js;

use std::net::IpAddr;

use http::Method;

use crate::app::App;
use crate::challenge;
use crate::contract::Offer;
use crate::gate::{decide, query_param, Decision};
use crate::reply::Reply;
use crate::routes::canonicalize;

/// Largest request body an endpoint reads.
pub const MAX_BODY: usize = 16 * 1024;

/// A request for one of tollgate's endpoints, already split from the prefix.
#[derive(Debug)]
pub struct EndpointRequest<'a> {
    /// Method.
    pub method: &'a Method,
    /// The canonical path below `pay_prefix`, starting with `/` (or empty).
    pub sub_path: &'a str,
    /// The raw query.
    pub query: Option<&'a str>,
    /// The request body (read only for POST, at most [`MAX_BODY`]).
    pub body: &'a [u8],
    /// `Content-Type`, lowercased.
    pub content_type: &'a str,
    /// True when the client prefers JSON.
    pub wants_json: bool,
    /// The client's address.
    pub client_ip: Option<IpAddr>,
    /// The `Cookie` header values (for the claim cookie).
    pub cookies: &'a [&'a str],
    /// `Authorization` (the basket secret).
    pub authorization: Option<&'a str>,
    /// `If-None-Match` (for `tollgate.js`).
    pub if_none_match: Option<&'a str>,
}

/// True when the endpoint at `sub_path` reads a request body.
pub fn reads_body(method: &Method, sub_path: &str) -> bool {
    method == Method::POST
        && (sub_path == "/pay"
            || sub_path == "/wm/verify"
            || sub_path.ends_with("/receipt")
            || sub_path.starts_with("/basket"))
}

/// Answers an endpoint request.
pub async fn handle(app: &App, req: &EndpointRequest<'_>) -> Reply {
    let segs: Vec<&str> = req.sub_path.trim_start_matches('/').split('/').collect();
    match segs.as_slice() {
        ["contract", token] => only(req.method, Method::GET, || contract(app, token)),
        ["offer"] => only(req.method, Method::GET, || offer(app, req.query)),
        ["tollgate.js"] => only(req.method, Method::GET, || {
            wallet_js::serve(req.if_none_match)
        }),
        ["prices.json"] => match *req.method {
            Method::GET | Method::HEAD => prices::serve(&app.cfg(), req.if_none_match),
            _ => method_not_allowed("GET, HEAD"),
        },
        ["pay"] if req.method == Method::POST => pay::claim(app, req).await,
        ["pay"] => method_not_allowed("POST"),
        [pid, "status.json"] if is_pid(pid) => match *req.method {
            Method::GET | Method::HEAD => pay::status(app, pid).await,
            Method::OPTIONS => pay::cors_preflight(),
            _ => method_not_allowed("GET, HEAD, OPTIONS"),
        },
        [pid, "status"] if is_pid(pid) => match *req.method {
            Method::GET | Method::HEAD => pay::status_page(app, pid).await,
            _ => method_not_allowed("GET, HEAD"),
        },
        [pid, "qr.svg"] if is_pid(pid) => match *req.method {
            Method::GET | Method::HEAD => pay::qr(app, pid).await,
            _ => method_not_allowed("GET, HEAD"),
        },
        [pid, "receipt"] if is_pid(pid) && req.method == Method::POST => {
            pay::receipt(app, pid, req).await
        }
        [pid, "receipt"] if is_pid(pid) => method_not_allowed("POST"),
        ["basket", rest @ ..] => basket::handle(app, req, rest).await,
        ["wm", "verify"] if req.method == Method::POST => {
            crate::monetization::verify::verify(app, req.body, req.cookies, req.client_ip).await
        }
        ["wm", "verify"] => method_not_allowed("POST"),
        _ => Reply::error(404, "not_found", "no such tollgate endpoint"),
    }
}

/// True for a well-formed payment id (16 lowercase hex).
pub fn is_pid(s: &str) -> bool {
    s.len() == 16 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn only(method: &Method, want: Method, f: impl FnOnce() -> Reply) -> Reply {
    if method == want || (want == Method::GET && method == Method::HEAD) {
        f()
    } else {
        method_not_allowed(if want == Method::GET {
            "GET, HEAD"
        } else {
            want.as_str()
        })
    }
}

pub(crate) fn method_not_allowed(allow: &str) -> Reply {
    Reply::error(405, "method_not_allowed", &format!("use {allow}"))
        .with_header("Allow", allow.to_string())
}

/// `GET /contract/{token}`: the terms rebuilt from the token; 400 when it does not verify.
fn contract(app: &App, token: &str) -> Reply {
    match Offer::from_token(&app.keys, token) {
        Ok(offer) => Reply::json(200, &offer.terms)
            .with_header("X-Taler-Contract-Hash", offer.hash.to_string()),
        Err(e) => Reply::error(400, "bad_contract_token", &e.to_string()),
    }
}

/// `GET /offer?resource=/path`: the human offer page with a fresh contract;
/// 404 when the resource is not priced for GET.
fn offer(app: &App, query: Option<&str>) -> Reply {
    let Some(raw) = query_param(query, "resource") else {
        return Reply::error(
            400,
            "missing_resource",
            "add ?resource=/path/to/priced/page",
        );
    };
    let decoded = percent_decode(raw);
    let mut target = match canonicalize(&decoded) {
        Ok(t) if t.query.is_none() => t,
        _ => {
            return Reply::error(
                400,
                "bad_resource",
                "resource must be a plain absolute path",
            )
        }
    };
    let cfg = app.cfg();
    let case_insensitive = cfg.server.upstream_case_insensitive;
    if case_insensitive {
        target.path.make_ascii_lowercase();
    }
    // The gate's own rule: the offer is for exactly what a GET of it would be priced as.
    let route = match decide(&cfg.routes, &Method::GET, &target, case_insensitive) {
        Decision::Priced(route) => route,
        Decision::Ambiguous(what) => {
            return Reply::error(
                400,
                "ambiguous_path",
                &format!("the resource contains {what} and could be read as another path"),
            )
        }
        Decision::Forward => {
            return Reply::error(404, "not_for_sale", "this resource is not priced")
        }
    };
    let offer = Offer::mint(
        &cfg,
        &app.keys,
        route,
        &target.path,
        app.nonce(),
        app.clock.now_secs(),
    );
    challenge::offer_page(&cfg, &offer)
}

/// Decodes `%XX` and `+` in a query or form value; malformed escapes stay literal.
pub fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h << 4) | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    out
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}
