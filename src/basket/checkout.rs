//! Checkout and its challenge (SPEC section 8): the basket's bill becomes one
//! multi-item contract, claimed at once; a payer may answer the challenge with the
//! transaction that paid it, which speeds discovery but is never proof by itself.

use serde::Deserialize;
use serde_json::{json, Value};

use crate::amount::Amount;
use crate::app::App;
use crate::contract::{ContractItem, Offer};
use crate::payments::service::{ClaimError, ClaimProof, PaymentService};
use crate::payments::state::PaymentState;
use crate::store::basket::{Basket, BasketState, BasketWrite};
use crate::store::{Payment, StateChange, Transfer};

use super::service::{body, exceeded, load, payment_of, svc, Caller, CAS_ATTEMPTS};
use super::view::{bill_of, describe, signed_decimal};
use super::BasketError;

/// The challenge types a checkout may ask for.
const CHALLENGES: [&str; 3] = ["url", "text", "image"];

/// `POST /basket/{id}/checkout {challenge}`: mints the basket's contract, claims it
/// and locks the basket. Repeating it returns the same answer.
pub async fn checkout(
    app: &App,
    id: &str,
    caller: Caller<'_>,
    bytes: &[u8],
) -> Result<Value, BasketError> {
    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    struct Checkout {
        #[serde(default)]
        challenge: Option<String>,
    }
    let svc = svc(app)?;
    let cfg = app.cfg();
    // Who asks comes first: a stranger learns nothing, not even what a body needs.
    load(app, id, caller.secret(), app.clock.now_secs()).await?;
    let req: Checkout = body(bytes, "expected {challenge: \"url\"|\"text\"|\"image\"}")?;
    let challenge = req.challenge.unwrap_or_else(|| "url".into());
    if !CHALLENGES.contains(&challenge.as_str()) {
        return Err(BasketError::bad_request(
            "challenge must be \"url\", \"text\" or \"image\"",
        ));
    }
    for _ in 0..CAS_ATTEMPTS {
        let now = app.clock.now_secs();
        let b = load(app, id, caller.secret(), now).await?;
        match b.state {
            BasketState::Released => return Err(BasketError::not_open()),
            BasketState::CheckedOut => return finish_checkout(app, &b, caller).await,
            BasketState::Open => {}
        }
        if b.lines.is_empty() {
            return Err(BasketError::new(
                400,
                "basket_empty",
                "add an item before checking out",
            ));
        }
        let bill = bill_of(&cfg, &b.lines)?;
        if bill.total < 0 {
            return Err(BasketError::new(
                400,
                "payment_refund_not_supported",
                "the refunds exceed the purchases: tollgate holds no spending key and cannot pay money back; add purchases worth at least the refunds",
            ));
        }
        let total = Amount(bill.total.unsigned_abs());
        if total > cfg.basket.max_total {
            return Err(exceeded(app));
        }
        let d = cfg.chain.decimals;
        let items: Vec<ContractItem> = bill
            .items
            .iter()
            .chain(&bill.extras)
            .map(|l| ContractItem {
                id: l.product_id.clone(),
                description: describe(&cfg, l),
                quantity: l.count,
                price: signed_decimal(l.item_price, d),
            })
            .collect();
        let scope: Vec<String> = b
            .lines
            .iter()
            .filter(|l| !l.refund)
            .flat_map(|l| l.unlocks.iter().cloned())
            .collect();
        let n: u32 = b.lines.iter().filter(|l| !l.refund).map(|l| l.count).sum();
        let offer = Offer::mint_basket(
            &cfg,
            &app.keys,
            &format!("{}/basket/{}", cfg.server.pay_prefix, b.id),
            format!("Basket {} at {}: {n} item(s)", b.id, b.shop_id),
            items,
            total,
            scope,
            app.nonce(),
            now,
        );
        match svc
            .store
            .lock_basket(
                &b.id,
                b.revision,
                &offer.token,
                &challenge,
                offer.params.pay_deadline,
            )
            .await
            .map_err(BasketError::store)?
        {
            BasketWrite::Done => {
                let b = load(app, id, caller.secret(), now).await?;
                return finish_checkout(app, &b, caller).await;
            }
            _ => continue,
        }
    }
    Err(BasketError::new(
        409,
        "conflict",
        "the basket kept changing; try again",
    ))
}

/// Claims a locked basket's contract (idempotent: a crash between locking and
/// claiming is finished by the next call) and answers the checkout.
async fn finish_checkout(app: &App, b: &Basket, caller: Caller<'_>) -> Result<Value, BasketError> {
    let svc = svc(app)?;
    let token = b
        .contract_token
        .as_deref()
        .ok_or_else(|| BasketError::store("checked-out basket without a contract"))?;
    let offer = Offer::from_token(&app.keys, token).map_err(BasketError::store)?;
    let pid = PaymentService::payment_id(&app.keys, &offer.hash.0);
    let claim_token = PaymentService::claim_token(&app.keys, &pid);
    let p = match payment_of(svc, b).await? {
        Some(p) => p,
        None => {
            let proof = ClaimProof {
                token: Some(&claim_token),
                cookies: Vec::new(),
            };
            let now = app.clock.now_secs();
            let claimed = svc
                .claim(&app.cfg(), &app.keys, token, &proof, caller.ip, now)
                .await
                .map_err(|e| match e {
                    ClaimError::RateLimited { retry_after } => {
                        BasketError::rate_limited(&e.to_string(), retry_after)
                    }
                    ClaimError::Expired => charge_failed("the checkout's payment window passed"),
                    e => BasketError::store(e),
                })?;
            svc.store
                .set_basket_payment(&b.id, &claimed.payment.id)
                .await
                .map_err(BasketError::store)?;
            if claimed.payment.state.unlocks() {
                // Nothing was due: paid at once, so the refunds it holds are final
                // now, and the paid facts of the payments they refund change.
                svc.on_changes(&[StateChange {
                    payment: claimed.payment.clone(),
                    from: PaymentState::New,
                }])
                .await;
            }
            claimed.payment
        }
    };
    if matches!(p.state, PaymentState::Expired | PaymentState::Underpaid) {
        return Err(failed_payment(app, &p));
    }
    checkout_json(app, b, token, &p)
}

fn charge_failed(message: &str) -> BasketError {
    BasketError::new(409, "payment_charge_failed", message)
}

fn failed_payment(app: &App, p: &Payment) -> BasketError {
    let d = app.cfg().chain.decimals;
    charge_failed(&format!(
        "the checkout's payment {} is {}: received {} of {} 0xBTC before it expired; release this basket and open a new one",
        p.id,
        p.state.as_str(),
        p.received.to_decimal(d),
        p.amount.to_decimal(d)
    ))
}

/// The checkout answer: `{contract_token, contract_hash, contract_url, payment,
/// challenge}` (no challenge when nothing is due).
pub(super) fn checkout_json(
    app: &App,
    b: &Basket,
    token: &str,
    p: &Payment,
) -> Result<Value, BasketError> {
    let cfg = app.cfg();
    let base = cfg.server.pay_base();
    // The payment holds its contract's hash: no need to rebuild and rehash the terms.
    let hash = p
        .contract_hash
        .map(hex::encode)
        .ok_or_else(|| BasketError::store("basket payment without a contract hash"))?;
    let claim_token = PaymentService::claim_token(&app.keys, &p.id);
    let payment = crate::endpoints::pay::payment_json(app, p, &claim_token);
    let kind = b.challenge.as_deref().unwrap_or("url");
    let challenge = if p.amount.is_zero() {
        Value::Null
    } else {
        let value = match kind {
            "image" => format!("{base}/{}/qr.svg", p.id),
            "text" => format!(
                "Send {} 0xBTC to {} ({}) and enter the transaction hash",
                p.amount.to_decimal(cfg.chain.decimals),
                p.address,
                payment["eip681"].as_str().unwrap_or_default()
            ),
            _ => format!("{base}/{}/status", p.id),
        };
        json!({"type": kind, "value": value})
    };
    Ok(json!({
        "contract_token": token,
        "contract_hash": hash,
        "contract_url": format!("{base}/contract/{token}"),
        "payment": payment,
        "challenge": challenge,
    }))
}

/// `POST /basket/{id}/challenge {response}`: the payer's transaction hash. Its
/// receipt (over RPC) must hold a `Transfer` of the configured token to this
/// payment's address; those transfers are recorded at once, provisionally (the
/// scanner still confirms and counts them). Otherwise 400
/// `payment_authentication_failed`.
pub async fn answer_challenge(
    app: &App,
    id: &str,
    caller: Caller<'_>,
    bytes: &[u8],
) -> Result<Value, BasketError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Answer {
        response: String,
    }
    let svc = svc(app)?;
    let cfg = app.cfg();
    let now = app.clock.now_secs();
    let b = load(app, id, caller.secret(), now).await?;
    let req: Answer = body(bytes, "expected {response: \"0x<transaction hash>\"}")?;
    let p = match (b.state, payment_of(svc, &b).await?) {
        (BasketState::Released, _) => return Err(BasketError::not_open()),
        (_, Some(p)) => p,
        (_, None) => {
            return Err(BasketError::bad_request(
                "there is no checkout to answer: check out first",
            ))
        }
    };
    if matches!(p.state, PaymentState::Expired | PaymentState::Underpaid) {
        return Err(failed_payment(app, &p));
    }
    let auth_failed = |m: &str| BasketError::new(400, "payment_authentication_failed", m);
    let hash = req.response.trim();
    let tx = hash
        .strip_prefix("0x")
        .filter(|h| h.len() == 64 && h.bytes().all(|c| c.is_ascii_hexdigit()))
        .and_then(|h| h.parse::<alloy::primitives::B256>().ok())
        .ok_or_else(|| {
            auth_failed("the answer must be a transaction hash (0x and 64 hex digits)")
        })?;
    let token: alloy::primitives::Address = cfg
        .chain
        .token
        .parse()
        .map_err(|_| BasketError::store("configured token address"))?;
    let rpc = app
        .rpc
        .as_ref()
        .ok_or_else(|| BasketError::store("no chain client"))?;
    let found = rpc.transfers_in_tx(token, tx).await.map_err(|e| {
        tracing::warn!(error = %e, "challenge answer: RPC failed");
        BasketError::new(
            503,
            "chain_unavailable",
            "could not reach the chain to look the transaction up; try again shortly",
        )
    })?;
    let (logs, head) = found.ok_or_else(|| {
        auth_failed("no successful transaction with this hash is on chain (yet?)")
    })?;
    let ours: Vec<Transfer> = logs
        .into_iter()
        .filter(|l| l.to.eq_ignore_ascii_case(&p.address))
        .map(|l| Transfer {
            chain_id: cfg.chain.chain_id,
            tx_hash: l.tx_hash,
            log_index: l.log_index,
            block_number: l.block_number,
            block_hash: l.block_hash,
            to: l.to,
            from: l.from,
            value: l.value,
        })
        .collect();
    if ours.is_empty() {
        return Err(auth_failed(
            "that transaction holds no transfer of the token to this payment's address",
        ));
    }
    let changes = svc
        .store
        .record_provisional(ours, head, now)
        .await
        .map_err(BasketError::store)?;
    svc.on_changes(&changes).await;
    let p = svc
        .store
        .payment(&p.id)
        .await
        .map_err(BasketError::store)?
        .ok_or_else(|| BasketError::store("payment vanished"))?;
    let status = serde_json::to_value(crate::endpoints::pay::status_of(app, &p))
        .map_err(BasketError::store)?;
    Ok(json!({"accepted": true, "payment": status}))
}
