//! The basket as JSON: its lines priced by the catalogue and the rules through
//! [`bill::compute`], amounts as decimal strings (SPEC section 8).

use serde_json::{json, Value};

use crate::amount::Amount;
use crate::config::{Config, Product};
use crate::store::basket::BasketLine;

use super::bill::{self, Bill, ItemIn, Line, RebateRule, Rules, Units};
use super::BasketError;

/// A signed amount of base units as a decimal string (`-14.99`).
pub fn signed_decimal(units: Units, decimals: u32) -> String {
    let abs = Amount(units.unsigned_abs());
    if units < 0 {
        format!("-{}", abs.to_decimal(decimals))
    } else {
        abs.to_decimal(decimals)
    }
}

/// The catalogue product of `id`.
pub fn product<'c>(cfg: &'c Config, id: &str) -> Result<&'c Product, BasketError> {
    cfg.products.iter().find(|p| p.id == id).ok_or_else(|| {
        BasketError::new(
            400,
            "unknown_product",
            &format!("product {id:?} is no longer in this shop's catalogue"),
        )
    })
}

/// The bill of `lines` under the configured catalogue and rules.
pub fn bill_of(cfg: &Config, lines: &[BasketLine]) -> Result<Bill, BasketError> {
    let mut items = Vec::with_capacity(lines.len());
    for l in lines {
        let p = product(cfg, &l.product_id)?;
        items.push(ItemIn {
            product_id: &l.product_id,
            unit_price: p.price.0,
            count: l.count,
            refund: l.refund,
            ships: p.ships,
        });
    }
    let rebates: Vec<RebateRule<'_>> = cfg
        .rebates
        .iter()
        .map(|r| RebateRule {
            product_id: &r.product,
            buy: r.buy,
            pay: r.pay,
        })
        .collect();
    let rules = Rules {
        tax_rate: cfg.basket.tax_rate,
        shipping: cfg.basket.shipping.0,
        rebates: &rebates,
    };
    bill::compute(&items, &rules)
        .map_err(|e| BasketError::new(400, "payment_chargeable_exceeded", &e.to_string()))
}

/// The description of a bill line: the catalogue's for a product, a fixed text for
/// an extra.
pub fn describe(cfg: &Config, line: &Line) -> String {
    if let Some(id) = line.product_id.strip_prefix(bill::REBATE_PREFIX) {
        let rule = cfg.rebates.iter().find(|r| r.product == id);
        let name = cfg
            .products
            .iter()
            .find(|p| p.id == id)
            .map_or(id, |p| p.description.as_str());
        return match rule {
            Some(r) => format!("Rebate: {} for {} on {name}", r.buy, r.pay),
            None => format!("Rebate on {name}"),
        };
    }
    match line.product_id.as_str() {
        bill::TAX_ID => {
            let r = cfg.basket.tax_rate;
            let percent = bill::TaxRate {
                num: r.num.saturating_mul(100),
                den: r.den,
            };
            format!("Tax at {}%", percent.to_decimal())
        }
        bill::SHIPPING_ID => "Shipping".to_string(),
        id => cfg
            .products
            .iter()
            .find(|p| p.id == id)
            .map_or_else(|| id.to_string(), |p| p.description.clone()),
    }
}

/// A bill line as a webinos `ShoppingItem`.
pub fn shopping_item(cfg: &Config, line: &Line) -> Value {
    let d = cfg.chain.decimals;
    json!({
        "productID": line.product_id,
        "description": describe(cfg, line),
        "currency": "0xBTC",
        "itemPrice": signed_decimal(line.item_price, d),
        "itemCount": line.count,
        "itemsPrice": signed_decimal(line.items_price, d),
    })
}

/// The `items`, `extras`, `totalBill` and `totalBill_base_units` of a bill.
pub fn bill_json(cfg: &Config, bill: &Bill) -> Value {
    json!({
        "currency": "0xBTC",
        "items": bill.items.iter().map(|l| shopping_item(cfg, l)).collect::<Vec<_>>(),
        "extras": bill.extras.iter().map(|l| shopping_item(cfg, l)).collect::<Vec<_>>(),
        "totalBill": signed_decimal(bill.total, cfg.chain.decimals),
        "totalBill_base_units": bill.total.to_string(),
    })
}
