//! The bill of a basket (pure): items, extras (rebates, tax, shipping) and the
//! total, in signed integer base units. Nothing here touches a float.
//!
//! [`compute`] turns the basket's lines, priced by the catalogue (the client never
//! sets an amount), and the shop's [`Rules`] into a [`Bill`]. The rules, each a
//! decision of this module:
//!
//! 1. **Items**: one [`Line`] per input item, in input order: `item_price` is the
//!    catalogue's `unit_price`, negated for a refund; `items_price` is
//!    `item_price × count`.
//! 2. **Rebates** (`[[rebate]] product, buy, pay`: every `buy` units of the product are
//!    charged as `pay`, the seed's "3 for 2"): for each product with a rule, take its
//!    NET count `n` = purchased units − refunded units in the basket. When
//!    `q = |n| / buy` (integer division) is above zero, one extra
//!    `tollgate:rebate:<id>` line with `count` q and
//!    `item_price = −sign(n) × (buy − pay) × unit_price`. Purchases get a negative
//!    rebate; refunding units bought at a rebate takes the rebate back (a positive
//!    line), so refunding 3 of a 3-for-2 product credits 2 units, exactly what was
//!    paid. Rebate lines come in the order their product first appears among the
//!    items; the product's `unit_price` is that of its first line. Only the first rule
//!    naming a product counts, and a rule without `pay < buy` (which the
//!    configuration never lets through) is ignored rather than divided by.
//! 3. **Tax**: `base` = every item's `items_price` plus every rebate line;
//!    `tax = round_half_away(base × num, den)` for the rate `num / den`. It is negative
//!    when refunds outweigh purchases. One `tollgate:tax` line, count 1. Shipping is
//!    not taxed.
//! 4. **Shipping**: when any PURCHASE line (not a refund) ships, one
//!    `tollgate:shipping` line, count 1, of `rules.shipping`.
//! 5. Extras whose `items_price` is 0 are left out (no tax line at rate 0, no shipping
//!    line when shipping is free, no rebate line of a free product).
//! 6. Extras come in this order: rebates, tax, shipping.
//! 7. `total` is the exact sum of every line's `items_price`, items and extras. It may
//!    be zero or negative: what that means is the caller's business.
//! 8. Every operation is checked: a bill that does not fit (an amount beyond `i128`, a
//!    rebate count beyond `u32`, or a tax rate with `den == 0`, which
//!    [`TaxRate::parse`] never makes) is [`BillError::Overflow`], never a panic and
//!    never a wrapped number. No items give an empty bill with a total of 0.

use std::collections::HashSet;

/// Signed base units.
pub type Units = i128;

/// The productID prefix of a rebate extra (followed by the product's id).
pub const REBATE_PREFIX: &str = "tollgate:rebate:";
/// The productID of the tax extra.
pub const TAX_ID: &str = "tollgate:tax";
/// The productID of the shipping extra.
pub const SHIPPING_ID: &str = "tollgate:shipping";

/// One basket line as the catalogue prices it (the client never sets an amount).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ItemIn<'a> {
    /// The catalogue's product id.
    pub product_id: &'a str,
    /// The catalogue price in base units (> 0).
    pub unit_price: u128,
    /// 1..=max_count (the caller checked it).
    pub count: u32,
    /// A refund line (negative itemPrice).
    pub refund: bool,
    /// The product ships.
    pub ships: bool,
}

/// `[[rebate]]`: every `buy` units of `product_id` are charged as `pay`
/// (`buy >= 2`, `1 <= pay < buy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RebateRule<'a> {
    /// The product the rebate applies to.
    pub product_id: &'a str,
    /// Units in one group.
    pub buy: u32,
    /// Units charged for one group.
    pub pay: u32,
}

/// The shop's pricing rules.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    /// The tax on items and rebates.
    pub tax_rate: TaxRate,
    /// Flat shipping in base units, charged once when any purchase ships.
    pub shipping: u128,
    /// The rebates (the first rule naming a product counts).
    pub rebates: &'a [RebateRule<'a>],
}

/// One line of the bill, item or extra (a webinos ShoppingItem without
/// description/currency).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The product id, or one of [`REBATE_PREFIX`]`<id>`, [`TAX_ID`], [`SHIPPING_ID`].
    pub product_id: String,
    /// The signed price of one unit.
    pub item_price: Units,
    /// Units.
    pub count: u32,
    /// `item_price × count`.
    pub items_price: Units,
}

/// A computed bill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bill {
    /// One line per input item, in input order.
    pub items: Vec<Line>,
    /// Rebates, then tax, then shipping; none with `items_price` 0.
    pub extras: Vec<Line>,
    /// The sum of every line's `items_price`.
    pub total: Units,
}

/// Why a bill cannot be computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BillError {
    /// Some amount or count of the bill does not fit.
    #[error("the bill does not fit in 128 bits")]
    Overflow,
}

use BillError::Overflow;

fn units(v: u128) -> Result<Units, BillError> {
    Units::try_from(v).map_err(|_| Overflow)
}

fn add(a: Units, b: Units) -> Result<Units, BillError> {
    a.checked_add(b).ok_or(Overflow)
}

fn mul(a: Units, b: Units) -> Result<Units, BillError> {
    a.checked_mul(b).ok_or(Overflow)
}

/// A line of `count` units at `item_price`.
fn line(product_id: String, item_price: Units, count: u32) -> Result<Line, BillError> {
    Ok(Line {
        product_id,
        item_price,
        count,
        items_price: mul(item_price, Units::from(count))?,
    })
}

/// Computes the bill of `items` under `rules` (the rules are in the module doc).
pub fn compute(items: &[ItemIn<'_>], rules: &Rules<'_>) -> Result<Bill, BillError> {
    // 1. items
    let lines = items
        .iter()
        .map(|it| {
            let price = units(it.unit_price)?;
            let price = if it.refund { -price } else { price };
            line(it.product_id.to_owned(), price, it.count)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut base = lines.iter().try_fold(0, |acc, l| add(acc, l.items_price))?;

    let mut extras = Vec::new();
    // 2. rebates, per product in order of first appearance
    let mut seen = HashSet::new();
    for first in items {
        if !seen.insert(first.product_id) {
            continue;
        }
        let Some(rule) = rules
            .rebates
            .iter()
            .find(|r| r.product_id == first.product_id)
        else {
            continue;
        };
        if rule.pay >= rule.buy {
            continue;
        }
        let net = items
            .iter()
            .filter(|it| it.product_id == first.product_id)
            .try_fold(0, |acc: Units, it| {
                let c = Units::from(it.count);
                add(acc, if it.refund { -c } else { c })
            })?;
        let groups = net.unsigned_abs() / u128::from(rule.buy);
        if groups == 0 {
            continue;
        }
        let groups = u32::try_from(groups).map_err(|_| Overflow)?;
        let off = mul(Units::from(rule.buy - rule.pay), units(first.unit_price)?)?;
        let price = if net > 0 { -off } else { off };
        let rebate = line(
            format!("{REBATE_PREFIX}{}", first.product_id),
            price,
            groups,
        )?;
        base = add(base, rebate.items_price)?;
        extras.push(rebate);
    }

    // 3. tax on items and rebates
    let TaxRate { num, den } = rules.tax_rate;
    let tax = checked_round_half_away(mul(base, units(num)?)?, units(den)?).ok_or(Overflow)?;
    extras.push(line(TAX_ID.to_owned(), tax, 1)?);

    // 4. shipping when a purchase ships
    if items.iter().any(|it| it.ships && !it.refund) {
        extras.push(line(SHIPPING_ID.to_owned(), units(rules.shipping)?, 1)?);
    }

    // 5. no zero extras
    extras.retain(|l| l.items_price != 0);

    // 7. the exact total of every line
    let total = lines
        .iter()
        .chain(&extras)
        .try_fold(0, |acc, l| add(acc, l.items_price))?;
    Ok(Bill {
        items: lines,
        extras,
        total,
    })
}

/// `n / d` rounded half away from zero (`d > 0`).
///
/// # Panics
///
/// When `d <= 0`; [`checked_round_half_away`] answers `None` instead.
pub fn round_half_away(n: i128, d: i128) -> i128 {
    checked_round_half_away(n, d).expect("round_half_away needs a positive divisor")
}

/// `n / d` rounded half away from zero, or `None` when `d <= 0`. Never overflows
/// otherwise, for any `n`.
pub fn checked_round_half_away(n: i128, d: i128) -> Option<i128> {
    if d <= 0 {
        return None;
    }
    let (q, r) = (n / d, n % d);
    // |r| >= d - |r| is 2|r| >= d without overflowing
    let (r, d) = (r.unsigned_abs(), d.unsigned_abs());
    if r != 0 && r >= d - r {
        q.checked_add(n.signum())
    } else {
        Some(q)
    }
}

/// A tax rate as an exact decimal fraction `num / den` (`den` a power of ten),
/// `0 <= num <= den`: `"0.20"` is `20 / 100`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaxRate {
    /// Numerator.
    pub num: u128,
    /// Denominator, a power of ten.
    pub den: u128,
}

impl TaxRate {
    /// No tax.
    pub const ZERO: TaxRate = TaxRate { num: 0, den: 1 };

    /// Parses a decimal fraction between 0 and 1 (`"0.20"`, `"0.075"`, `"1"`), at most
    /// 18 fractional digits. Signs, exponents and spaces are refused.
    pub fn parse(s: &str) -> Option<TaxRate> {
        let (int_part, frac) = match s.split_once('.') {
            Some((i, f)) if !f.is_empty() => (i, f),
            Some(_) => return None,
            None => (s, ""),
        };
        let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
        if !digits(int_part) || (!frac.is_empty() && !digits(frac)) || frac.len() > 18 {
            return None;
        }
        let den = 10u128.pow(u32::try_from(frac.len()).ok()?);
        let int: u128 = int_part.parse().ok()?;
        let f: u128 = if frac.is_empty() {
            0
        } else {
            frac.parse().ok()?
        };
        let num = int.checked_mul(den)?.checked_add(f)?;
        (num <= den).then_some(TaxRate { num, den })
    }

    /// The rate as a decimal string (`"0.2"` for 20/100).
    pub fn to_decimal(self) -> String {
        let scale = self.den.ilog10();
        crate::amount::Amount(self.num).to_decimal(scale)
    }
}

#[cfg(test)]
mod tests;
