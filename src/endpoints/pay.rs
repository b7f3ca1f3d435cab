//! `POST /pay`, `GET /{id}/status.json`, `GET /{id}/status` and `POST /{id}/receipt`.
//!
//! Claims go through the payment service; status and receipts read the store.
//! Store failures answer 503 (fail closed); a client's mistake answers 4xx JSON.

use serde::Serialize;
use serde_json::json;

use super::{percent_decode, EndpointRequest};
use crate::app::App;
use crate::pages;
use crate::payments::service::{eip681, ClaimError, ClaimProof};
use crate::payments::state::PaymentState;
use crate::reply::Reply;
use crate::store::Payment;

/// A client-visible problem: `{code, message}` JSON for programs, an HTML page for a
/// browser's form post (a form post never lands on raw JSON).
fn problem(req: &EndpointRequest<'_>, status: u16, code: &str, message: &str) -> Reply {
    answer(is_form(req), status, code, message)
}

/// [`problem`] with the choice made: `html` for a browser.
fn answer(html: bool, status: u16, code: &str, message: &str) -> Reply {
    if !html {
        return Reply::error(status, code, message);
    }
    let heading = match status {
        409 => "Not possible right now",
        410 => "This offer has expired",
        429 => "Too many requests",
        500.. => "Payments are unavailable",
        _ => "That did not work",
    };
    let mut page = pages::Message::new(heading, &crate::redact::redact(message));
    page.title = format!("{heading} ({code})");
    Reply::html(status, pages::render(&page))
}

fn payments_off(html: bool) -> Reply {
    answer(
        html,
        503,
        "payments_disabled",
        "this tollgate has no [chain] rpc_urls/xpub configured, so it cannot take payments",
    )
}

fn store_down(html: bool, e: impl std::fmt::Display) -> Reply {
    tracing::error!(error = %e, "store unavailable");
    answer(
        html,
        503,
        "store_unavailable",
        "payment store unavailable; try again shortly",
    )
    .with_header("Retry-After", "5".into())
}

/// The fields of a request body: a form (`application/x-www-form-urlencoded`) or a
/// JSON object.
enum Fields {
    Form(Vec<(String, String)>),
    Json(serde_json::Value),
}

impl Fields {
    /// Parses the body; a client's mistake is a 400 reply.
    fn parse(req: &EndpointRequest<'_>, example: &str) -> Result<Fields, Reply> {
        if req
            .content_type
            .starts_with("application/x-www-form-urlencoded")
        {
            let body = std::str::from_utf8(req.body)
                .map_err(|_| Reply::error(400, "bad_body", "form body is not UTF-8"))?;
            let mut pairs = Vec::new();
            for pair in body.split('&').filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                let v = String::from_utf8(percent_decode(v))
                    .map_err(|_| Reply::error(400, "bad_body", "field is not UTF-8"))?;
                pairs.push((k.to_string(), v));
            }
            return Ok(Fields::Form(pairs));
        }
        serde_json::from_slice(req.body)
            .map(Fields::Json)
            .map_err(|e| {
                Reply::error(
                    400,
                    "bad_json",
                    &format!("body must be JSON like {{\"{example}\": \"…\"}}: {e}"),
                )
            })
    }

    /// The string field `name`, if present.
    fn get(&self, name: &str) -> Option<String> {
        match self {
            Fields::Form(pairs) => pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone()),
            Fields::Json(v) => v.get(name).and_then(|s| s.as_str()).map(str::to_string),
        }
    }

    /// The string field `name`, or a 400 naming it.
    fn require(&self, name: &str) -> Result<String, Reply> {
        self.get(name).ok_or_else(|| {
            let what = match self {
                Fields::Form(_) => format!("form field {name:?} is required"),
                Fields::Json(_) => format!("JSON field {name:?} (a string) is required"),
            };
            Reply::error(400, "missing_field", &what)
        })
    }
}

/// The name prefix of the claim cookie; the full name is `tollgate_claim_<payment id>`.
const CLAIM_COOKIE: &str = "tollgate_claim_";

/// What the request presents as proof of a claim: the body's `claim_token` and every
/// claim cookie (the payment id in its name).
fn claim_proof<'a>(req: &EndpointRequest<'a>, body_token: Option<&'a str>) -> ClaimProof<'a> {
    let cookies = req
        .cookies
        .iter()
        .flat_map(|h| h.split(';'))
        .filter_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            Some((name.strip_prefix(CLAIM_COOKIE)?, value.trim_matches('"')))
        })
        .collect();
    ClaimProof {
        token: body_token,
        cookies,
    }
}

/// The claim cookie for `p`: the payer's browser proves with it, also without
/// JavaScript, that a repeat claim is its own. Lives until the payment expires plus
/// the receipt lifetime (a late payer still fetches the receipt).
fn claim_cookie(app: &App, p: &Payment, claim_token: &str, now: u64) -> String {
    let max_age = p
        .expires_at
        .saturating_sub(now)
        .saturating_add(p.access_ttl_secs);
    format!(
        "{CLAIM_COOKIE}{}={claim_token}; Path={}; HttpOnly; SameSite=Lax; Max-Age={max_age}{}",
        p.id,
        app.cfg().server.pay_prefix,
        app.cfg().server.cookie_secure()
    )
}

fn is_form(req: &EndpointRequest<'_>) -> bool {
    req.content_type
        .starts_with("application/x-www-form-urlencoded")
        && !req.wants_json
}

/// `POST /pay {"contract": token[, "claim_token": …]}`.
pub async fn claim(app: &App, req: &EndpointRequest<'_>) -> Reply {
    let Some(svc) = &app.payments else {
        return payments_off(is_form(req));
    };
    let fields = match Fields::parse(req, "contract") {
        Ok(f) => f,
        Err(r) => return r,
    };
    let token = match fields.require("contract") {
        Ok(t) => t,
        Err(r) => return r,
    };
    let body_token = fields.get("claim_token");
    let proof = claim_proof(req, body_token.as_deref());
    let now = app.clock.now_secs();
    let claimed = match svc
        .claim(&app.cfg(), &app.keys, &token, &proof, req.client_ip, now)
        .await
    {
        Ok(c) => c,
        Err(ClaimError::BadToken(e)) => {
            return problem(req, 400, "bad_contract_token", &e.to_string())
        }
        Err(e @ ClaimError::Expired) => {
            return problem(req, 410, "contract_expired", &e.to_string())
        }
        Err(e @ ClaimError::WrongChain) => return problem(req, 409, "wrong_chain", &e.to_string()),
        Err(e @ ClaimError::RateLimited { retry_after }) => {
            return problem(req, 429, "rate_limited", &e.to_string())
                .with_header("Retry-After", retry_after.max(1).to_string())
        }
        Err(ref e @ ClaimError::AlreadyClaimed { ref resource }) => {
            return already_claimed(app, req, &e.to_string(), resource)
        }
        Err(ClaimError::Store(e)) => return store_down(is_form(req), e),
    };
    let p = &claimed.payment;
    let cfg = app.cfg();
    let base = cfg.server.pay_base();
    let uri = eip681(&cfg.chain.token, cfg.chain.chain_id, &p.address, p.amount.0);
    let cookie = claim_cookie(app, p, &claimed.claim_token, now);
    if is_form(req) {
        return instructions_page(app, p, &claimed.claim_token, &uri, &base)
            .with_header("Set-Cookie", cookie);
    }
    Reply::json(
        if claimed.created { 201 } else { 200 },
        &payment_json(app, p, &claimed.claim_token),
    )
    .with_header("Set-Cookie", cookie)
}

/// The answer of a claim (`POST /pay`, and a basket checkout's `payment`). A payment
/// of nothing (a basket whose refunds cover it) has no address to pay.
pub fn payment_json(app: &App, p: &Payment, claim_token: &str) -> serde_json::Value {
    let cfg = app.cfg();
    let base = cfg.server.pay_base();
    let due = !p.amount.is_zero();
    json!({
        "payment_id": p.id,
        "claim_token": claim_token,
        "address": due.then_some(&p.address),
        "amount": p.amount.to_decimal(cfg.chain.decimals),
        "amount_base_units": p.amount.0.to_string(),
        "token": cfg.chain.token,
        "chain_id": cfg.chain.chain_id,
        "eip681": due.then(|| eip681(&cfg.chain.token, cfg.chain.chain_id, &p.address, p.amount.0)),
        "status_url": format!("{base}/{}/status.json", p.id),
        "receipt_url": format!("{base}/{}/receipt", p.id),
        "expires_at": p.expires_at,
        "state": p.state.as_str(),
    })
}

/// The 409 for a contract someone else claimed: never its payment's secrets, always
/// the way to an offer of one's own.
fn already_claimed(app: &App, req: &EndpointRequest<'_>, message: &str, resource: &str) -> Reply {
    let offer_url = crate::challenge::offer_url(&app.cfg(), resource);
    if is_form(req) {
        let page = pages::Message::new(
            "This offer was already taken",
            &format!("Someone else claimed this contract (a shared link?). Buy your own copy of {resource} on its offer page."),
        )
        .link(&offer_url, "Go to the offer", true);
        return Reply::html(409, pages::render(&page));
    }
    Reply::json(
        409,
        &json!({
            "code": "contract_already_claimed",
            "message": message,
            "offer_url": offer_url,
        }),
    )
}

/// The body of `GET /{id}/status.json`.
#[derive(Debug, Serialize)]
pub struct Status<'a> {
    address: &'a str,
    amount: String,
    seen_at: Option<u64>,
    paid_at: Option<u64>,
    tx_hash: Option<&'a str>,
    confirmations: u64,
    required_confirmations: u64,
    state: &'static str,
    received: String,
    expires_at: u64,
}

/// The status of `p` (with the state as the payer sees it: a fully refunded basket payment reads `refunded`).
pub fn status_of<'a>(app: &App, p: &'a Payment) -> Status<'a> {
    let d = app.cfg().chain.decimals;
    Status {
        address: &p.address,
        amount: p.amount.to_decimal(d),
        seen_at: p.seen_at,
        paid_at: p.paid_at,
        tx_hash: p.tx_hash.as_deref(),
        confirmations: p.confirmations,
        required_confirmations: p.required_confirmations,
        state: p.state.as_str(),
        received: p.received.to_decimal(d),
        expires_at: p.expires_at,
    }
}

/// The payment `pid`; errors as JSON, or as HTML pages when `html`.
async fn load(app: &App, pid: &str, html: bool) -> Result<Payment, Reply> {
    let Some(svc) = &app.payments else {
        return Err(payments_off(html));
    };
    match svc.store.payment(pid).await {
        Ok(Some(mut p)) => match svc.effective_state(&p).await {
            Ok(state) => {
                // A paid basket payment whose products were all refunded is `refunded`.
                p.state = state;
                Ok(p)
            }
            Err(e) => Err(store_down(html, e)),
        },
        Ok(None) => Err(answer(
            html,
            404,
            "unknown_payment",
            "no payment with this id",
        )),
        Err(e) => Err(store_down(html, e)),
    }
}

/// `GET /{id}/status.json`: public, CORS-readable.
pub async fn status(app: &App, pid: &str) -> Reply {
    match load(app, pid, false).await {
        Ok(p) => Reply::json(200, &status_of(app, &p))
            .with_header("Access-Control-Allow-Origin", "*".into()),
        Err(r) => r.with_header("Access-Control-Allow-Origin", "*".into()),
    }
}

/// CORS preflight for status.json.
pub fn cors_preflight() -> Reply {
    Reply {
        status: 204,
        headers: vec![
            ("Access-Control-Allow-Origin", "*".into()),
            ("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS".into()),
            ("Access-Control-Max-Age", "86400".into()),
        ],
        content_type: "text/plain",
        body: bytes::Bytes::new(),
    }
}

fn retry_after(state: PaymentState) -> Option<&'static str> {
    matches!(
        state,
        PaymentState::New | PaymentState::Seen | PaymentState::Confirming
    )
    .then_some("5")
}

/// Most bytes of receipts the receipt cookie holds (browsers keep about 4 KiB).
const RECEIPT_COOKIE_BUDGET: usize = 3600;

/// The `Set-Cookie` value of the receipt cookie for a new receipt expiring at
/// `new_exp`, keeping what the browser already holds ([`receipt_cookie_value`]).
pub(crate) fn receipt_set_cookie(
    app: &App,
    new: &str,
    new_exp: u64,
    cookies: &[&str],
    now: u64,
) -> String {
    let (value, exp) = receipt_cookie_value(app, new, new_exp, cookies, now);
    format!(
        "{RECEIPT_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{}",
        exp.saturating_sub(now),
        app.cfg().server.cookie_secure()
    )
}

/// The receipt cookie's value: the new receipt first, then the receipts the
/// browser already holds that still verify (a browser that bought two things keeps
/// both), joined by `~`, within [`RECEIPT_COOKIE_BUDGET`]; and the latest expiry.
fn receipt_cookie_value(
    app: &App,
    new: &str,
    new_exp: u64,
    cookies: &[&str],
    now: u64,
) -> (String, u64) {
    let mut value = new.to_string();
    let mut exp = new_exp;
    let held = crate::receipt::candidates(None, cookies.iter().map(|c| c.as_bytes()));
    for r in held {
        let Ok(c) = crate::receipt::verify(&app.keys, r, now) else {
            continue;
        };
        if r == new || value.split('~').any(|v| v == r) {
            continue;
        }
        if value.len() + 1 + r.len() > RECEIPT_COOKIE_BUDGET {
            break;
        }
        value.push('~');
        value.push_str(r);
        exp = exp.max(c.exp);
    }
    (value, exp)
}

/// The name of the receipt cookie.
const RECEIPT_COOKIE: &str = "tollgate_receipt";

/// `POST /{id}/receipt {"claim_token": …}`: the receipt once paid, 409 before. The
/// claim token may also come from this payment's claim cookie (a browser without
/// JavaScript pressing "open" on the status page).
pub async fn receipt(app: &App, pid: &str, req: &EndpointRequest<'_>) -> Reply {
    let html = is_form(req);
    let Some(svc) = &app.payments else {
        return payments_off(html);
    };
    let fields = match Fields::parse(req, "claim_token") {
        Ok(f) => f,
        Err(r) => return r,
    };
    let body_token = fields.get("claim_token");
    let proof = claim_proof(req, body_token.as_deref());
    if body_token.is_none() && proof.cookies.iter().all(|(id, _)| *id != pid) {
        return problem(
            req,
            400,
            "missing_field",
            "a claim_token (in the body, or this payment's claim cookie) is required",
        );
    }
    if !proof.proves(&app.keys, pid) {
        return problem(
            req,
            403,
            "bad_claim_token",
            "the claim token does not match this payment: only its claimer can fetch its receipt",
        );
    }
    let p = match load(app, pid, html).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let base = app.cfg().server.pay_base();
    match svc.receipt_for(&app.keys, &p) {
        Ok((receipt, claims)) => {
            let cookie =
                receipt_set_cookie(app, &receipt, claims.exp, req.cookies, app.clock.now_secs());
            if html {
                // Browsers without JavaScript: back to the resource, now unlocked.
                let to = contract_of(app, &p)
                    .map(|o| o.terms.fulfillment_url)
                    .unwrap_or_else(|| app.cfg().server.public_url.clone());
                let page = pages::Message::new("Paid", "Your receipt is stored in this browser.")
                    .link(&to, "Open it", true);
                return Reply::html(303, pages::render(&page))
                    .with_header("Location", to)
                    .with_header("Set-Cookie", cookie);
            }
            Reply::json(
                200,
                &json!({
                    "receipt": receipt,
                    "payment_id": p.id,
                    "contract_hash": claims.h,
                    "scope": crate::receipt::scope_value(&claims.scope),
                    "expires_at": claims.exp,
                    "state": p.state.as_str(),
                }),
            )
            .with_header("Set-Cookie", cookie)
        }
        Err(state) if html => {
            let d = app.cfg().chain.decimals;
            let page = pages::Message::new(
                "Not paid yet",
                &format!(
                    "State: {}. Received {} of {} 0xBTC.",
                    state.as_str(),
                    p.received.to_decimal(d),
                    p.amount.to_decimal(d)
                ),
            )
            .paragraph("Watch the payment status, then press the unlock button again.")
            .link(&format!("{base}/{}/status", p.id), "Payment status", false);
            Reply::html(409, pages::render(&page))
        }
        Err(state) => {
            let msg = match state {
                PaymentState::Seen | PaymentState::Confirming => {
                    "payment seen on chain; waiting for confirmations"
                }
                PaymentState::New => "no payment seen yet",
                PaymentState::Expired => "the payment expired unpaid",
                PaymentState::Underpaid => "the payment expired with less than the amount received",
                _ => "no receipt for this payment",
            };
            let reply = Reply::json(
                409,
                &json!({"code": "not_paid", "message": msg, "state": state.as_str(), "status": status_of(app, &p)}),
            );
            match retry_after(state) {
                Some(s) => reply.with_header("Retry-After", s.into()),
                None => reply,
            }
        }
    }
}

/// The contract a payment pays (`None` for gateway payments), rebuilt from its token.
fn contract_of(app: &App, p: &Payment) -> Option<crate::contract::Offer> {
    let token = p.contract_token.as_ref()?;
    crate::contract::Offer::from_token(&app.keys, token).ok()
}

/// `GET /{id}/status`: a self-refreshing HTML status page (works without JavaScript);
/// once paid, a button that opens the resource (the claim cookie proves the claimer).
pub async fn status_page(app: &App, pid: &str) -> Reply {
    let p = match load(app, pid, true).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let s = status_of(app, &p);
    let base = app.cfg().server.pay_base();
    let resource = contract_of(app, &p).map(|o| o.params.resource);
    let page = pages::Status {
        base: &base,
        payment_id: &p.id,
        state: s.state,
        received: &s.received,
        amount: &s.amount,
        address: &p.address,
        confirmations: s.confirmations,
        required_confirmations: s.required_confirmations,
        waiting: retry_after(p.state).is_some(),
        unlocks: p.state.unlocks() && resource.is_some(),
        resource: resource.as_deref().unwrap_or(""),
    };
    Reply::html(200, pages::render(&page))
}

/// The HTML answer to a form `POST /pay`: manual payment instructions.
fn instructions_page(app: &App, p: &Payment, claim_token: &str, uri: &str, base: &str) -> Reply {
    let amount = p.amount.to_decimal(app.cfg().chain.decimals);
    Reply::html(
        200,
        pages::render(&pages::Instructions {
            base,
            payment_id: &p.id,
            amount: &amount,
            address: &p.address,
            token: &app.cfg().chain.token,
            chain_id: app.cfg().chain.chain_id,
            eip681: uri,
            claim_token,
        }),
    )
}

/// `GET /{id}/qr.svg`: the EIP-681 payment URI as a QR code.
pub async fn qr(app: &App, pid: &str) -> Reply {
    let p = match load(app, pid, false).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let uri = eip681(
        &app.cfg().chain.token,
        app.cfg().chain.chain_id,
        &p.address,
        p.amount.0,
    );
    match qrcode::QrCode::new(uri.as_bytes()) {
        Ok(code) => {
            let svg = code
                .render::<qrcode::render::svg::Color<'_>>()
                .min_dimensions(220, 220)
                .build();
            Reply {
                status: 200,
                headers: vec![("Cache-Control", "private, max-age=3600".into())],
                content_type: "image/svg+xml",
                body: bytes::Bytes::from(svg),
            }
        }
        Err(_) => Reply::error(500, "qr_failed", "could not render the QR code"),
    }
}
