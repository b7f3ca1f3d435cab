//! `POST {pay_prefix}/wm/verify {incomingPayment, resource}` (SPEC section 10).
//!
//! The `monetization` event only says a payment was *started*; this reads the
//! incoming payment from the receiver's Open Payments server as an authenticated
//! client and checks it: it lives under the configured wallet address's resource
//! server (else 400 `foreign_incoming_payment`), it pays into that wallet address
//! (else 403 `wrong_wallet`: the unauthenticated view does not name its wallet, so
//! it is never used), in its asset (else 400 `wrong_asset`). Then the store credits
//! what it received and was not consumed before, once per unit, even under
//! concurrent verifies; when that reaches the route's `wm_price`, that much is
//! consumed and an ordinary receipt is answered (JSON and the receipt cookie),
//! backed by a stored unlock; otherwise 402 `insufficient` with `{received,
//! required}`. The Open Payments server down, slow (a deadline) or refusing
//! tollgate's credentials: 503 with `Retry-After`, never success.

use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::amount::Amount;
use crate::app::App;
use crate::receipt::{self, ReceiptClaims};
use crate::reply::Reply;
use crate::store::wm::{NewWmUnlock, WmCredit};

use super::op::{OpError, WalletAddress};

/// The request body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyBody {
    #[serde(rename = "incomingPayment")]
    incoming_payment: String,
    resource: String,
}

/// The receipt hash of a Web Monetization unlock: never a contract hash (those are
/// SHA-256 of JCS terms), domain-separated by its prefix.
pub fn unlock_hash(id: &str) -> [u8; 32] {
    Sha256::digest(format!("tollgate/wm-unlock/v1:{id}").as_bytes()).into()
}

/// `wm_price` (a decimal in the wallet's asset) in units of `scale` decimals,
/// rounded up: what cannot be paid exactly is asked for in full.
pub fn required_units(wm_price: &str, scale: u8) -> Option<u128> {
    if let Ok(a) = Amount::parse_decimal(wm_price, u32::from(scale)) {
        return Some(a.0);
    }
    // More decimals than the asset has: round up to its smallest unit.
    let (int, frac) = wm_price.split_once('.')?;
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let keep = &frac[..usize::from(scale).min(frac.len())];
    let rest = &frac[keep.len()..];
    let base = Amount::parse_decimal(
        &if keep.is_empty() {
            int.to_string()
        } else {
            format!("{int}.{keep}")
        },
        u32::from(scale),
    )
    .ok()?;
    let up = rest.bytes().any(|b| b != b'0');
    Some(base.0 + u128::from(up))
}

fn op_failed(e: &OpError) -> Reply {
    tracing::warn!(error = %e, "web monetization: Open Payments read failed");
    match e {
        OpError::NotFound => Reply::error(
            400,
            "unknown_incoming_payment",
            "the Open Payments server has no such incoming payment",
        ),
        OpError::BadUrl(_) => Reply::error(400, "foreign_incoming_payment", &e.to_string()),
        _ => Reply::error(
            503,
            "open_payments_unavailable",
            "the receiver's Open Payments server could not be read; try again shortly",
        )
        .with_header("Retry-After", "5".into()),
    }
}

/// True when `incoming_payment` is an incoming payment on `resource_server` (the
/// wallet's): `{resource_server}/incoming-payments/{id}` with `id` one path segment
/// of unreserved characters (nothing that could lead the read anywhere but that
/// server's incoming payments), and an allowed Open Payments URL. Public for the fuzz
/// targets (`fuzz/`).
pub fn on_resource_server(incoming_payment: &str, resource_server: &str) -> bool {
    let prefix = format!(
        "{}/incoming-payments/",
        resource_server.trim_end_matches('/')
    );
    let id = incoming_payment.strip_prefix(&prefix).unwrap_or("");
    let id_ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id.len() <= 200
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'));
    id_ok && crate::config::op_url_allowed(incoming_payment)
}

/// Same URL, ignoring a trailing `/`.
fn same_url(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// Answers `POST /wm/verify`.
pub async fn verify(
    app: &App,
    body: &[u8],
    cookies: &[&str],
    ip: Option<std::net::IpAddr>,
) -> Reply {
    let cfg = app.cfg();
    let (Some(wm), Some(op), Some(svc)) = (&cfg.web_monetization, &app.op, &app.payments) else {
        return Reply::error(
            404,
            "not_found",
            "Web Monetization verification is not configured ([web_monetization] client identity, and payments)",
        );
    };
    let req: VerifyBody = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => {
            return Reply::error(
                400,
                "bad_request",
                &format!("expected {{incomingPayment, resource}}: {e}"),
            )
        }
    };
    let Ok(target) = crate::routes::canonicalize(req.resource.as_bytes()) else {
        return Reply::error(
            400,
            "bad_resource",
            "resource must be a path like /articles/x",
        );
    };
    let path = target.path;
    let Some(route) = cfg.routes.lookup(&path).filter(|r| r.wm_price.is_some()) else {
        return Reply::error(
            400,
            "not_wm_priced",
            "that resource is not priced for Web Monetization (no wm_price)",
        );
    };
    let wm_price = route.wm_price.clone().unwrap_or_default();
    if let Err(retry_after) = svc.spend_write_budget(ip, app.clock.now_secs()) {
        return Reply::error(
            429,
            "rate_limited",
            "too many verifications; try again later",
        )
        .with_header("Retry-After", retry_after.max(1).to_string());
    }
    let wallet: WalletAddress = match op.wallet_address(&wm.wallet_address).await {
        Ok(w) => w,
        Err(e) => return op_failed(&e),
    };
    if !on_resource_server(&req.incoming_payment, &wallet.resource_server) {
        return Reply::error(
            400,
            "foreign_incoming_payment",
            "that incoming payment is not on the receiver's Open Payments server",
        );
    }
    let ip_doc = match op
        .incoming_payment(&req.incoming_payment, &wallet.auth_server)
        .await
    {
        Ok(p) => p,
        Err(e) => return op_failed(&e),
    };
    if !(same_url(&ip_doc.wallet_address, &wm.wallet_address)
        || same_url(&ip_doc.wallet_address, &wallet.id))
        || !same_url(&ip_doc.id, &req.incoming_payment)
    {
        return Reply::error(
            403,
            "wrong_wallet",
            "that incoming payment pays another wallet address",
        );
    }
    let amount = &ip_doc.received_amount;
    if amount.asset_code != wallet.asset_code || amount.asset_scale != wallet.asset_scale {
        return Reply::error(
            400,
            "wrong_asset",
            &format!(
                "that incoming payment is in {} (scale {}), not the wallet's {} (scale {})",
                amount.asset_code, amount.asset_scale, wallet.asset_code, wallet.asset_scale
            ),
        );
    }
    let (Ok(received), Some(required)) = (
        amount.value.parse::<u128>(),
        required_units(&wm_price, wallet.asset_scale),
    ) else {
        return op_failed(&OpError::Malformed("receivedAmount.value".into()));
    };
    let scale = u32::from(wallet.asset_scale);
    let mut rnd = [0u8; 8];
    if getrandom::getrandom(&mut rnd).is_err() {
        return Reply::error(503, "unavailable", "no randomness")
            .with_header("Retry-After", "5".into());
    }
    let unlock_id = hex::encode(rnd);
    let scope = route.scope_for(&path);
    let unlock = NewWmUnlock {
        id: unlock_id.clone(),
        hash: unlock_hash(&unlock_id),
        scope: scope.clone(),
        access_ttl_secs: route.access_ttl_secs,
    };
    let now = app.clock.now_secs();
    let credit = svc
        .store
        .wm_credit(
            &req.incoming_payment,
            &wallet.id,
            received,
            required,
            unlock.clone(),
            now,
        )
        .await;
    match credit {
        Err(e) => {
            tracing::error!(error = %e, "store unavailable");
            Reply::error(
                503,
                "store_unavailable",
                "payment store unavailable; try again shortly",
            )
            .with_header("Retry-After", "5".into())
        }
        Ok(WmCredit::Insufficient { available }) => Reply::json(
            402,
            &json!({
                "code": "insufficient",
                "message": "not enough received on that incoming payment yet (money can lag the event); try again",
                "received": Amount(available).to_decimal(scale),
                "required": Amount(required).to_decimal(scale),
                "asset_code": wallet.asset_code,
            }),
        ),
        Ok(WmCredit::Unlocked { left }) => {
            let claims = ReceiptClaims {
                h: hex::encode(unlock.hash),
                scope,
                exp: now.saturating_add(route.access_ttl_secs),
                pid: unlock_id,
            };
            let r = receipt::mint(&app.keys, &claims);
            let cookie =
                crate::endpoints::pay::receipt_set_cookie(app, &r, claims.exp, cookies, now);
            Reply::json(
                200,
                &json!({
                    "receipt": r,
                    "scope": receipt::scope_value(&claims.scope),
                    "expires_at": claims.exp,
                    "received": Amount(required + left).to_decimal(scale),
                    "required": Amount(required).to_decimal(scale),
                    "left": Amount(left).to_decimal(scale),
                    "asset_code": wallet.asset_code,
                }),
            )
            .with_header("Set-Cookie", cookie)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Rules out (found by the op fuzz target): a price that is not a decimal panicking
    // (a multi-byte character cut by the fraction's slice) or rounding a non-digit up.
    // A validated config never holds one; the function refuses it all the same.
    #[test]
    fn malformed_prices_are_refused_not_rounded() {
        assert_eq!(required_units("1.\u{e9}", 1), None);
        assert_eq!(required_units("0.01\"", 2), None);
        assert_eq!(required_units("0.01x", 1), None);
        assert_eq!(required_units("0.019", 2), Some(2));
    }

    #[test]
    fn prices_round_up_to_the_asset_scale() {
        assert_eq!(required_units("0.05", 2), Some(5));
        assert_eq!(required_units("0.05", 9), Some(50_000_000));
        assert_eq!(required_units("0.051", 2), Some(6));
        assert_eq!(required_units("0.050", 2), Some(5));
        assert_eq!(required_units("1", 0), Some(1));
        assert_eq!(required_units("0.5", 0), Some(1));
    }

    #[test]
    fn unlock_hashes_are_distinct_per_id() {
        assert_ne!(unlock_hash("a"), unlock_hash("b"));
    }
}
