//! The basket calls (SPEC section 8) over the store and the payment engine: the IO
//! shell around [`super::item`], [`super::bill`] and [`super::view`].
//!
//! Every call after creation proves the basket secret (`Authorization: Basket <s>`
//! or the `tollgate_basket` cookie); only its SHA-256 is stored, and a basket is
//! found by that hash, so a wrong secret and an unknown basket look the same
//! (`basket_not_open`). Changes are compare-and-swap on the basket's revision: two
//! concurrent calls never both pass a check (`max_total`) the other invalidates.

use std::net::IpAddr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::app::App;
use crate::payments::service::PaymentService;
use crate::payments::state::PaymentState;
use crate::receipt;
use crate::store::basket::{Basket, BasketLine, BasketState, BasketWrite, NewBasket};
use crate::store::Payment;

use super::checkout::checkout_json;
use super::item::{self, ItemRequest};
use super::view::{bill_json, bill_of};
use super::BasketError;

/// The basket cookie's name.
pub const BASKET_COOKIE: &str = "tollgate_basket";

/// Most lines (distinct product and sign) a basket holds: its contract token
/// carries them all.
pub const MAX_LINES: usize = 20;

/// How often a change is retried when a concurrent change moved the revision.
pub(super) const CAS_ATTEMPTS: usize = 8;

/// What a request carries to prove it holds a basket, and its receipts.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    /// The `Authorization` header.
    pub authorization: Option<&'a str>,
    /// The `Cookie` header values.
    pub cookies: &'a [&'a str],
    /// The client's address (claim budget).
    pub ip: Option<IpAddr>,
}

impl<'a> Caller<'a> {
    /// The basket secret it presents: `Authorization: Basket <s>`, else the cookie.
    pub(super) fn secret(&self) -> Option<&'a str> {
        if let Some((scheme, s)) = self.authorization.and_then(|a| a.trim().split_once(' ')) {
            if scheme.eq_ignore_ascii_case("basket") && !s.trim().is_empty() {
                return Some(s.trim());
            }
        }
        self.cookies
            .iter()
            .flat_map(|h| h.split(';'))
            .find_map(|p| p.trim().strip_prefix("tollgate_basket="))
            .map(|v| v.trim_matches('"'))
            .filter(|v| !v.is_empty())
    }
}

fn secret_hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

fn random<const N: usize>() -> Result<[u8; N], BasketError> {
    let mut b = [0u8; N];
    getrandom::getrandom(&mut b).map_err(BasketError::store)?;
    Ok(b)
}

pub(super) fn svc(app: &App) -> Result<&PaymentService, BasketError> {
    if app.cfg().products.is_empty() {
        return Err(BasketError::new(
            404,
            "not_found",
            "this shop has no catalogue ([[product]]), so it has no baskets",
        ));
    }
    app.payments.as_deref().ok_or_else(|| {
        BasketError::new(
            503,
            "payments_disabled",
            "this tollgate has no [chain] rpc_urls/xpub configured, so it cannot take payments",
        )
    })
}

pub(super) fn body<'b, T: Deserialize<'b>>(bytes: &'b [u8], what: &str) -> Result<T, BasketError> {
    let bytes = if bytes.iter().all(u8::is_ascii_whitespace) {
        &b"{}"[..]
    } else {
        bytes
    };
    serde_json::from_slice(bytes).map_err(|e| BasketError::bad_request(&format!("{what}: {e}")))
}

/// `POST /basket`: 201 `{basket_id, basket_secret, basket}` and the cookie's
/// `Set-Cookie` value.
pub async fn create(
    app: &App,
    caller: Caller<'_>,
    bytes: &[u8],
) -> Result<(Value, String), BasketError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Create {
        #[serde(rename = "serviceProviderID")]
        provider: String,
        #[serde(rename = "customerID")]
        customer: String,
        #[serde(rename = "shopID")]
        shop: String,
    }
    let svc = svc(app)?;
    let cfg = app.cfg();
    let req: Create = body(bytes, "expected {serviceProviderID, customerID, shopID}")?;
    if req.provider != "0xBTC" {
        return Err(BasketError::new(
            400,
            "unknown_provider",
            "serviceProviderID must be \"0xBTC\"",
        ));
    }
    if req.shop != cfg.basket.shop_id {
        return Err(BasketError::new(
            400,
            "unknown_shop",
            &format!("shopID must be {:?}", cfg.basket.shop_id),
        ));
    }
    if req.customer.len() > 200 || req.customer.chars().any(char::is_control) {
        return Err(BasketError::bad_request(
            "customerID must be at most 200 printable characters",
        ));
    }
    let now = app.clock.now_secs();
    svc.store
        .release_expired_baskets(now)
        .await
        .map_err(BasketError::store)?;
    if let Some(secret) = caller.secret() {
        let held = svc
            .store
            .basket_by_secret(&secret_hash(secret))
            .await
            .map_err(BasketError::store)?;
        if let Some(b) = held {
            if is_open(svc, &b).await? {
                return Err(BasketError::new(
                    409,
                    "basket_already_open",
                    &format!("this client holds open basket {}: release it first", b.id),
                ));
            }
        }
    }
    if let Err(retry_after) = svc.spend_write_budget(caller.ip, now) {
        return Err(BasketError::rate_limited(
            "too many new baskets and payments from this address; try again later",
            retry_after,
        ));
    }
    let secret = B64.encode(random::<32>()?);
    let new = NewBasket {
        id: hex::encode(random::<8>()?),
        secret_hash: secret_hash(&secret),
        customer_id: req.customer,
        shop_id: req.shop,
        created_at: now,
        expires_at: now.saturating_add(cfg.basket.ttl_secs),
    };
    svc.store
        .create_basket(new.clone())
        .await
        .map_err(BasketError::store)?;
    let b = load(app, &new.id, Some(&secret), now).await?;
    let cookie = format!(
        "{BASKET_COOKIE}={secret}; Path={}/basket; HttpOnly; SameSite=Lax; Max-Age={}{}",
        cfg.server.pay_prefix,
        cfg.basket.ttl_secs,
        cfg.server.cookie_secure()
    );
    let view = view(app, &b).await?;
    Ok((
        json!({"basket_id": b.id, "basket_secret": secret, "basket": view}),
        cookie,
    ))
}

/// True while a basket is open for its holder: not released, and not checked out
/// into a payment that is paid or failed.
async fn is_open(svc: &PaymentService, b: &Basket) -> Result<bool, BasketError> {
    Ok(match b.state {
        BasketState::Released => false,
        BasketState::Open => true,
        BasketState::CheckedOut => match payment_of(svc, b).await? {
            Some(p) => matches!(
                p.state,
                PaymentState::New | PaymentState::Seen | PaymentState::Confirming
            ),
            None => true,
        },
    })
}

pub(super) async fn payment_of(
    svc: &PaymentService,
    b: &Basket,
) -> Result<Option<Payment>, BasketError> {
    match &b.payment_id {
        Some(pid) => svc.store.payment(pid).await.map_err(BasketError::store),
        None => Ok(None),
    }
}

/// The basket `id` for the caller presenting `secret`; an expired basket whose
/// payment is not paid is released on the way (its refund holds dropped).
pub(super) async fn load(
    app: &App,
    id: &str,
    secret: Option<&str>,
    now: u64,
) -> Result<Basket, BasketError> {
    let svc = svc(app)?;
    let secret = secret.ok_or_else(BasketError::not_open)?;
    let mut b = svc
        .store
        .basket_by_secret(&secret_hash(secret))
        .await
        .map_err(BasketError::store)?
        .filter(|b| b.id == id)
        .ok_or_else(BasketError::not_open)?;
    if b.state != BasketState::Released && b.expires_at < now {
        // Released unless a payment is paid or on its way (seen, confirming).
        let idle = payment_of(svc, &b).await?.is_none_or(|p| {
            matches!(
                p.state,
                PaymentState::New | PaymentState::Expired | PaymentState::Underpaid
            )
        });
        if idle {
            svc.store
                .release_basket(&b.id)
                .await
                .map_err(BasketError::store)?;
            b.state = BasketState::Released;
        }
    }
    Ok(b)
}

/// Loads a basket that may still change: open, else `basket_not_open` or
/// `basket_locked`.
async fn load_open(app: &App, id: &str, caller: Caller<'_>) -> Result<Basket, BasketError> {
    let b = load(app, id, caller.secret(), app.clock.now_secs()).await?;
    match b.state {
        BasketState::Open => Ok(b),
        BasketState::Released => Err(BasketError::not_open()),
        BasketState::CheckedOut => Err(BasketError::new(
            409,
            "basket_locked",
            "this basket was checked out: it can no longer change (release it and open a new one)",
        )),
    }
}

/// The view: `{basket_id, state, serviceProviderID, customerID, shopID, currency,
/// items, extras, totalBill, totalBill_base_units, checkout}`.
async fn view(app: &App, b: &Basket) -> Result<Value, BasketError> {
    let svc = svc(app)?;
    let bill = bill_of(&app.cfg(), &b.lines)?;
    let payment = payment_of(svc, b).await?;
    let state = match (b.state, &payment) {
        (_, Some(p)) if p.state.unlocks() => "paid",
        (_, Some(p)) if matches!(p.state, PaymentState::Expired | PaymentState::Underpaid) => {
            "failed"
        }
        (BasketState::Released, _) => "released",
        (BasketState::Open, _) => "open",
        (BasketState::CheckedOut, _) => "checked_out",
    };
    let checkout = match (&b.contract_token, &payment) {
        (Some(token), Some(p)) => checkout_json(app, b, token, p)?,
        _ => Value::Null,
    };
    let mut v = bill_json(&app.cfg(), &bill);
    let o = v
        .as_object_mut()
        .ok_or_else(|| BasketError::store("view"))?;
    o.insert("basket_id".into(), json!(b.id));
    o.insert("state".into(), json!(state));
    o.insert("serviceProviderID".into(), json!("0xBTC"));
    o.insert("customerID".into(), json!(b.customer_id));
    o.insert("shopID".into(), json!(b.shop_id));
    o.insert("checkout".into(), checkout);
    Ok(v)
}

/// `GET /basket/{id}`.
pub async fn read(app: &App, id: &str, caller: Caller<'_>) -> Result<Value, BasketError> {
    let b = load(app, id, caller.secret(), app.clock.now_secs()).await?;
    view(app, &b).await
}

/// `POST /basket/{id}/update`: the bill recomputed (it always is).
pub async fn update(app: &App, id: &str, caller: Caller<'_>) -> Result<Value, BasketError> {
    let b = load(app, id, caller.secret(), app.clock.now_secs()).await?;
    if b.state == BasketState::Released {
        return Err(BasketError::not_open());
    }
    view(app, &b).await
}

/// `DELETE /basket/{id}`: released (an unpaid checkout is cancelled; refund holds
/// are dropped unless its payment is paid). Idempotent.
pub async fn release(app: &App, id: &str, caller: Caller<'_>) -> Result<Value, BasketError> {
    let svc = svc(app)?;
    let mut b = load(app, id, caller.secret(), app.clock.now_secs()).await?;
    if b.state != BasketState::Released {
        svc.store
            .release_basket(&b.id)
            .await
            .map_err(BasketError::store)?;
        b.state = BasketState::Released;
    }
    view(app, &b).await
}

/// `POST /basket/{id}/items`: adds the item (or raises the count of the line with
/// the same product and sign); 200 with the view.
pub async fn add_item(
    app: &App,
    id: &str,
    caller: Caller<'_>,
    bytes: &[u8],
) -> Result<Value, BasketError> {
    let svc = svc(app)?;
    let cfg = app.cfg();
    // Who asks comes first: a stranger learns nothing about the catalogue.
    load_open(app, id, caller).await?;
    let req = item::parse(bytes, &cfg.products, cfg.chain.decimals)?;
    for _ in 0..CAS_ATTEMPTS {
        let b = load_open(app, id, caller).await?;
        let existing = b
            .lines
            .iter()
            .position(|l| l.product_id == req.product.id && l.refund == req.refund);
        let refund_of = match (req.refund, existing) {
            (false, _) => None,
            (true, Some(_)) => {
                return Err(BasketError::new(
                    403,
                    "payment_refund_failed",
                    &format!(
                        "{} is already being refunded in this basket: a product is refunded once",
                        req.product.id
                    ),
                ))
            }
            (true, None) => Some(refund_proof(app, &req, caller).await?),
        };
        let count = existing
            .map_or(0, |i| b.lines[i].count)
            .saturating_add(req.count);
        if count > req.product.max_count {
            return Err(BasketError::bad_request(&format!(
                "at most {} of {} per basket",
                req.product.max_count, req.product.id
            )));
        }
        if existing.is_none() && b.lines.len() >= MAX_LINES {
            return Err(BasketError::bad_request(&format!(
                "a basket holds at most {MAX_LINES} different lines"
            )));
        }
        let line = BasketLine {
            product_id: req.product.id.clone(),
            refund: req.refund,
            count,
            refund_of,
            unlocks: req.product.unlocks.clone(),
        };
        let mut lines = b.lines.clone();
        match existing {
            Some(i) => lines[i] = line.clone(),
            None => lines.push(line.clone()),
        }
        let bill = bill_of(&cfg, &lines)?;
        if bill.total > 0 && bill.total.unsigned_abs() > cfg.basket.max_total.0 {
            return Err(exceeded(app));
        }
        let now = app.clock.now_secs();
        match svc
            .store
            .put_line(&b.id, b.revision, line, now)
            .await
            .map_err(BasketError::store)?
        {
            BasketWrite::Done => {
                let b = load(app, id, caller.secret(), now).await?;
                return view(app, &b).await;
            }
            BasketWrite::RefundTaken => {
                return Err(BasketError::new(
                    403,
                    "payment_refund_failed",
                    &format!(
                    "{} of that purchase is already refunded, or held for refund by another basket",
                    req.product.id
                ),
                ))
            }
            BasketWrite::Stale => continue,
        }
    }
    Err(BasketError::new(
        409,
        "conflict",
        "the basket kept changing; try again",
    ))
}

pub(super) fn exceeded(app: &App) -> BasketError {
    BasketError::new(
        400,
        "payment_chargeable_exceeded",
        &format!(
            "the total would pass this shop's limit of {} 0xBTC; the item was not added",
            app.cfg()
                .basket
                .max_total
                .to_decimal(app.cfg().chain.decimals)
        ),
    )
}

/// The payment whose receipt proves the caller holds `req.product` (bought it in a
/// paid basket, not refunded since, exactly `req.count` of it): the item's
/// `receipt`, else a receipt cookie. Otherwise 403 `payment_refund_failed`.
async fn refund_proof(
    app: &App,
    req: &ItemRequest<'_>,
    caller: Caller<'_>,
) -> Result<String, BasketError> {
    let svc = svc(app)?;
    let now = app.clock.now_secs();
    let cookies = caller.cookies.iter().map(|c| c.as_bytes());
    let mut candidates: Vec<&str> = req.receipt.as_deref().into_iter().collect();
    candidates.extend(receipt::candidates(None, cookies));
    let mut why = format!(
        "refunding {} needs the receipt of a paid basket that bought it (\"receipt\" in the item, or the receipt cookie)",
        req.product.id
    );
    for r in candidates {
        let Ok(claims) = receipt::verify(&app.keys, r, now) else {
            continue;
        };
        let Some(p) = svc
            .store
            .payment(&claims.pid)
            .await
            .map_err(BasketError::store)?
        else {
            continue;
        };
        if p.contract_hash.map(hex::encode).as_deref() != Some(claims.h.as_str())
            || !p.state.unlocks()
        {
            continue;
        }
        let bought = svc
            .store
            .purchases(&p.id)
            .await
            .map_err(BasketError::store)?;
        match bought.iter().find(|b| b.product_id == req.product.id) {
            Some(b) if b.refunded => {
                why = format!("{} of that purchase was already refunded", req.product.id);
            }
            Some(b) if b.count != req.count => {
                why = format!(
                    "that purchase holds {} of {}: a refund returns all of them (itemCount {})",
                    b.count, req.product.id, b.count
                );
            }
            Some(_) => return Ok(p.id),
            None => {}
        }
    }
    Err(BasketError::new(403, "payment_refund_failed", &why))
}
