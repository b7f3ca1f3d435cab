//! tollgate's own HTTP endpoints under `pay_prefix` (SPEC section 6): handlers over
//! the core that take a parsed request and return a [`Reply`]. They never reach
//! the origin.

use http::Method;

use crate::app::App;
use crate::challenge;
use crate::contract::Offer;
use crate::gate::query_param;
use crate::reply::Reply;
use crate::routes::canonicalize;

/// A request for one of tollgate's endpoints, already split from the prefix.
#[derive(Debug)]
pub struct EndpointRequest<'a> {
    /// Method.
    pub method: &'a Method,
    /// The canonical path below `pay_prefix`, starting with `/` (or empty).
    pub sub_path: &'a str,
    /// The raw query.
    pub query: Option<&'a str>,
}

/// Answers an endpoint request.
pub fn handle(app: &App, req: &EndpointRequest<'_>) -> Reply {
    let segs: Vec<&str> = req.sub_path.trim_start_matches('/').split('/').collect();
    match segs.as_slice() {
        ["contract", token] => only_get(req.method, || contract(app, token)),
        ["offer"] => only_get(req.method, || offer(app, req.query)),
        _ => Reply::error(404, "not_found", "no such tollgate endpoint"),
    }
}

fn only_get(method: &Method, f: impl FnOnce() -> Reply) -> Reply {
    if method == Method::GET || method == Method::HEAD {
        f()
    } else {
        Reply::error(405, "method_not_allowed", "use GET").with_header("Allow", "GET, HEAD".into())
    }
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
    let target = match canonicalize(&decoded) {
        Ok(t) if !t.hazards.any() && t.query.is_none() => t,
        _ => {
            return Reply::error(
                400,
                "bad_resource",
                "resource must be a plain absolute path",
            )
        }
    };
    let route = app
        .cfg
        .routes
        .lookup(&target.path)
        .filter(|r| r.prices(&Method::GET));
    let Some(route) = route else {
        return Reply::error(404, "not_for_sale", "this resource is not priced");
    };
    let offer = Offer::mint(
        &app.cfg,
        &app.keys,
        route,
        &target.path,
        app.nonce(),
        app.clock.now_secs(),
    );
    challenge::offer_page(&app.cfg, &offer)
}

/// Decodes `%XX` and `+` in a query value; malformed escapes stay literal.
fn percent_decode(s: &str) -> Vec<u8> {
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
