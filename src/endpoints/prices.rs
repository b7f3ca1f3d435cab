//! `GET {pay_prefix}/prices.json`: the machine-readable price manifest (issue 15),
//! so programs and agents can see what costs what before they meet a 402.
//!
//! Built from the config snapshot of the request (a reload changes it at once),
//! with a strong ETag over the body: an unchanged manifest answers 304. Free routes
//! are not listed; dry-run routes are, marked `"enforce": false`.

use serde_json::{json, Value};

use crate::config::{Config, Scope};
use crate::endpoints::wallet_js::{etag_of, none_match};
use crate::reply::Reply;

/// The manifest document for `cfg`.
pub fn manifest(cfg: &Config) -> Value {
    let d = cfg.chain.decimals;
    let routes: Vec<Value> = cfg
        .routes
        .iter_by_specificity()
        .map(|(_, r)| r)
        .filter(|r| !r.price.is_zero())
        .map(|r| {
            let mut v = json!({
                "pattern": r.pattern,
                "methods": r.methods.as_ref().map(|ms| ms.iter().map(|m| m.as_str()).collect::<Vec<_>>()),
                "price": r.price.to_decimal(d),
                "price_base_units": r.price.0.to_string(),
                "currency": "0xBTC",
                "chain_id": cfg.chain.chain_id,
                "token": cfg.chain.token,
                "scope": match r.scope { Scope::Resource => "resource", Scope::Route => "route" },
                "access_ttl": r.access_ttl_secs,
                "confirmations": r.confirmations,
                "enforce": r.enforce,
            });
            if let Some(wm) = &r.wm_price {
                v["wm_price"] = json!(wm);
            }
            v
        })
        .collect();
    let products: Vec<Value> = cfg
        .products
        .iter()
        .map(|p| {
            json!({
                "id": p.id,
                "description": p.description,
                "price": p.price.to_decimal(d),
                "price_base_units": p.price.0.to_string(),
                "unlocks": p.unlocks,
                "ships": p.ships,
                "max_count": p.max_count,
            })
        })
        .collect();
    let mut doc = json!({
        "version": 1,
        "merchant": cfg.server.public_url,
        "currency": "0xBTC",
        "decimals": d,
        "chain_id": cfg.chain.chain_id,
        "token": cfg.chain.token,
        "pay_url": format!("{}/pay", cfg.server.pay_base()),
        "routes": routes,
    });
    if !products.is_empty() {
        let b = &cfg.basket;
        doc["basket"] = json!({
            "url": format!("{}/basket", cfg.server.pay_base()),
            "shop_id": b.shop_id,
            "tax_rate": b.tax_rate.to_decimal(),
            "shipping": b.shipping.to_decimal(d),
            "max_total": b.max_total.to_decimal(d),
            "ttl": b.ttl_secs,
            "products": products,
            "rebates": cfg.rebates.iter().map(|r| json!({"product": r.product, "buy": r.buy, "pay": r.pay})).collect::<Vec<_>>(),
        });
    }
    doc
}

/// The reply for `GET`/`HEAD prices.json` given the request's `If-None-Match`.
pub fn serve(cfg: &Config, if_none_match: Option<&str>) -> Reply {
    let body = serde_json::to_vec_pretty(&manifest(cfg)).unwrap_or_default();
    let etag = etag_of(&body);
    let headers = vec![
        ("ETag", etag.clone()),
        // Revalidate every time (a reload may change prices); 304 keeps it cheap.
        ("Cache-Control", "no-cache".to_string()),
        ("Access-Control-Allow-Origin", "*".to_string()),
    ];
    let not_modified = if_none_match.is_some_and(|v| none_match(v, &etag));
    Reply {
        status: if not_modified { 304 } else { 200 },
        headers,
        content_type: "application/json",
        body: if not_modified {
            bytes::Bytes::new()
        } else {
            bytes::Bytes::from(body)
        },
    }
}
