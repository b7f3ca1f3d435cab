//! A `ShoppingItem` as a client sends it (SPEC section 8), checked against the
//! catalogue (pure). Nothing the client sends sets an amount: `itemPrice` must be
//! the catalogue price or its negative, read exactly from the JSON text (a number
//! such as `-14.99` is never parsed through a float).

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::amount::Amount;
use crate::config::Product;

use super::BasketError;

/// The body of `POST /basket/{id}/items`, as sent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ItemBody<'a> {
    #[serde(rename = "productID")]
    product_id: String,
    #[serde(default)]
    description: Option<String>,
    currency: String,
    #[serde(rename = "itemPrice", borrow)]
    item_price: &'a RawValue,
    #[serde(rename = "itemCount")]
    item_count: u64,
    /// Ignored: the bill computes it.
    #[serde(rename = "itemsPrice", default, borrow)]
    _items_price: Option<&'a RawValue>,
    /// For a refund: a receipt proving the customer holds the product.
    #[serde(default)]
    receipt: Option<String>,
}

/// A checked item: a catalogue product, a sign and a count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemRequest<'c> {
    /// The catalogue product.
    pub product: &'c Product,
    /// A refund (negative `itemPrice`).
    pub refund: bool,
    /// 1..=`max_count`.
    pub count: u32,
    /// The refund proof the body carried, if any.
    pub receipt: Option<String>,
}

/// Reads a JSON number or decimal string exactly: an optional `-`, digits, an
/// optional fraction; no exponent. Returns (negative, base units).
pub fn exact_price(raw: &str, decimals: u32) -> Option<(bool, Amount)> {
    let text = raw.trim();
    let text = match text.strip_prefix('"') {
        Some(rest) => rest.strip_suffix('"')?,
        None => text,
    };
    let (negative, digits) = match text.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, text),
    };
    Amount::parse_decimal(digits, decimals)
        .ok()
        .map(|a| (negative, a))
}

/// Parses and checks an item body against `catalogue`.
pub fn parse<'c>(
    body: &[u8],
    catalogue: &'c [Product],
    decimals: u32,
) -> Result<ItemRequest<'c>, BasketError> {
    let item: ItemBody<'_> = serde_json::from_slice(body).map_err(|e| {
        BasketError::bad_request(&format!(
            "expected a ShoppingItem {{productID, currency, itemPrice, itemCount}}: {e}"
        ))
    })?;
    let _ = item.description; // the bill always uses the catalogue's
    let product = catalogue
        .iter()
        .find(|p| p.id == item.product_id)
        .ok_or_else(|| {
            BasketError::new(
                400,
                "unknown_product",
                &format!("no product {:?} in this shop's catalogue", item.product_id),
            )
        })?;
    if item.currency != "0xBTC" {
        return Err(BasketError::new(
            400,
            "currency_mismatch",
            "this shop charges in 0xBTC: currency must be \"0xBTC\"",
        ));
    }
    let price = product.price.to_decimal(decimals);
    let refund = match exact_price(item.item_price.get(), decimals) {
        Some((negative, p)) if p == product.price => negative,
        _ => {
            return Err(BasketError::new(
                400,
                "price_mismatch",
                &format!(
                    "itemPrice of {} must be {price} (or -{price} for a refund)",
                    product.id
                ),
            ))
        }
    };
    let count = u32::try_from(item.item_count)
        .ok()
        .filter(|c| (1..=product.max_count).contains(c))
        .ok_or_else(|| {
            BasketError::bad_request(&format!(
                "itemCount must be 1..{} for {}",
                product.max_count, product.id
            ))
        })?;
    Ok(ItemRequest {
        product,
        refund,
        count,
        receipt: item.receipt,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalogue() -> Vec<Product> {
        vec![Product {
            id: "DCD2346233".into(),
            description: "Deluxe".into(),
            price: Amount(1_498_999_999),
            unlocks: vec!["/albums/d/*".into()],
            ships: false,
            max_count: 3,
        }]
    }

    fn item(price: &str, count: &str) -> String {
        format!(
            r#"{{"productID":"DCD2346233","description":"x","currency":"0xBTC","itemPrice":{price},"itemCount":{count}}}"#
        )
    }

    #[test]
    fn prices_are_read_exactly_from_the_text() {
        let c = catalogue();
        // 14.98999999 has no exact binary float; read from its text it matches.
        let ok = parse(item("14.98999999", "1").as_bytes(), &c, 8).unwrap();
        assert!(!ok.refund);
        let r = parse(item("-14.98999999", "2").as_bytes(), &c, 8).unwrap();
        assert!(r.refund && r.count == 2);
        assert!(parse(item("\"-14.98999999\"", "1").as_bytes(), &c, 8).is_ok());
        assert!(parse(item("14.989999990", "1").as_bytes(), &c, 8).is_err());
        for bad in [
            "14.99",
            "14.9899999900001",
            "1.498999999e1",
            "0",
            "-0",
            "\"x\"",
        ] {
            let e = parse(item(bad, "1").as_bytes(), &c, 8).unwrap_err();
            assert_eq!(e.code, "price_mismatch", "{bad}");
        }
        for bad in ["0", "4", "-1", "1.5", "99999999999"] {
            let e = parse(item("14.98999999", bad).as_bytes(), &c, 8).unwrap_err();
            assert_eq!(e.code, "bad_request", "{bad}");
        }
        let e = parse(
            br#"{"productID":"nope","currency":"0xBTC","itemPrice":1,"itemCount":1}"#,
            &c,
            8,
        )
        .unwrap_err();
        assert_eq!(e.code, "unknown_product");
        let e = parse(
            item("14.98999999", "1").replace("0xBTC", "EUR").as_bytes(),
            &c,
            8,
        )
        .unwrap_err();
        assert_eq!(e.code, "currency_mismatch");
        let e = parse(b"[1]", &c, 8).unwrap_err();
        assert_eq!(e.code, "bad_request");
    }
}
