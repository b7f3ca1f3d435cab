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
mod tests {
    use super::*;

    #[test]
    fn tax_rates_parse_exactly() {
        assert_eq!(TaxRate::parse("0.20"), Some(TaxRate { num: 20, den: 100 }));
        assert_eq!(TaxRate::parse("1"), Some(TaxRate { num: 1, den: 1 }));
        assert_eq!(TaxRate::parse("0"), Some(TaxRate { num: 0, den: 1 }));
        for bad in [
            "", "-0.1", "1.01", "2", ".5", "5.", "0.2e1", " 0.2", "+0.2", "0,2",
        ] {
            assert_eq!(TaxRate::parse(bad), None, "{bad}");
        }
        assert_eq!(TaxRate::parse("0.20").unwrap().to_decimal(), "0.2");
    }

    // ---- the bill ------------------------------------------------------------------

    /// 1 (one unit at 8 decimals, 0xBTC's).
    const COIN: u128 = 100_000_000;

    fn item(product_id: &str, unit_price: u128, count: u32) -> ItemIn<'_> {
        ItemIn {
            product_id,
            unit_price,
            count,
            refund: false,
            ships: false,
        }
    }

    fn refund(product_id: &str, unit_price: u128, count: u32) -> ItemIn<'_> {
        ItemIn {
            refund: true,
            ..item(product_id, unit_price, count)
        }
    }

    fn shipped(it: ItemIn<'_>) -> ItemIn<'_> {
        ItemIn { ships: true, ..it }
    }

    fn l(product_id: &str, item_price: Units, count: u32) -> Line {
        Line {
            product_id: product_id.to_owned(),
            item_price,
            count,
            items_price: item_price * Units::from(count),
        }
    }

    const NO_RULES: Rules<'static> = Rules {
        tax_rate: TaxRate::ZERO,
        shipping: 0,
        rebates: &[],
    };

    const THREE_FOR_TWO: [RebateRule<'static>; 1] = [RebateRule {
        product_id: "mug",
        buy: 3,
        pay: 2,
    }];

    fn three_for_two() -> Rules<'static> {
        Rules {
            rebates: &THREE_FOR_TWO,
            ..NO_RULES
        }
    }

    #[test]
    fn seed_example_refund_one_buy_one_with_tax() {
        // return the CD (14.99), buy the deluxe edition (17.98), tax 0.20 on the difference
        let rules = Rules {
            tax_rate: TaxRate::parse("0.20").unwrap(),
            ..NO_RULES
        };
        let bill = compute(
            &[
                refund("cd", 1499 * COIN / 100, 1),
                item("deluxe", 1798 * COIN / 100, 1),
            ],
            &rules,
        )
        .unwrap();
        assert_eq!(
            bill,
            Bill {
                items: vec![l("cd", -1_499_000_000, 1), l("deluxe", 1_798_000_000, 1)],
                extras: vec![l(TAX_ID, 59_800_000, 1)],
                total: 358_800_000,
            }
        );
    }

    #[test]
    fn round_half_away_from_zero_in_both_signs() {
        assert_eq!(round_half_away(5, 10), 1); // 0.5
        assert_eq!(round_half_away(-5, 10), -1); // -0.5
        assert_eq!(round_half_away(49, 100), 0); // 0.49
        assert_eq!(round_half_away(-49, 100), 0);
        assert_eq!(round_half_away(499_999_999, 1_000_000_000), 0);
        assert_eq!(round_half_away(-499_999_999, 1_000_000_000), 0);
        assert_eq!(round_half_away(51, 100), 1);
        assert_eq!(round_half_away(-51, 100), -1);
        assert_eq!(round_half_away(15, 10), 2); // 1.5
        assert_eq!(round_half_away(-25, 10), -3); // -2.5
        assert_eq!(round_half_away(24, 10), 2);
        assert_eq!(round_half_away(-24, 10), -2);
        assert_eq!(round_half_away(0, 7), 0);
        assert_eq!(round_half_away(7, 1), 7);
        assert_eq!(round_half_away(-7, 1), -7);
        assert_eq!(round_half_away(2, 3), 1);
        assert_eq!(round_half_away(1, 3), 0);
        // the extremes neither overflow nor panic
        assert_eq!(round_half_away(i128::MIN, 1), i128::MIN);
        assert_eq!(round_half_away(i128::MAX, 1), i128::MAX);
        assert_eq!(round_half_away(i128::MIN, 2), i128::MIN / 2);
        assert_eq!(round_half_away(i128::MAX, 2), i128::MAX / 2 + 1);
        assert_eq!(round_half_away(i128::MIN, i128::MAX), -1);
        assert_eq!(round_half_away(i128::MAX, i128::MAX), 1);
        assert_eq!(round_half_away(i128::MAX / 2, i128::MAX), 0);
        assert_eq!(round_half_away(i128::MAX / 2 + 1, i128::MAX), 1);
        assert_eq!(checked_round_half_away(1, 0), None);
        assert_eq!(checked_round_half_away(1, -10), None);
    }

    #[test]
    fn three_for_two_on_counts_2_3_4_7() {
        for (count, rebates, total) in [(2, 0, 200), (3, 1, 200), (4, 1, 300), (7, 2, 500)] {
            let bill = compute(&[item("mug", 100, count)], &three_for_two()).unwrap();
            let want: Vec<Line> = (rebates > 0)
                .then(|| l("tollgate:rebate:mug", -100, rebates))
                .into_iter()
                .collect();
            assert_eq!(bill.extras, want, "{count}");
            assert_eq!(bill.total, total, "{count}");
        }
        // the count is per product over all its lines, not per line
        let bill = compute(
            &[
                item("mug", 100, 2),
                item("pen", 100, 5),
                item("mug", 100, 1),
            ],
            &three_for_two(),
        )
        .unwrap();
        assert_eq!(bill.extras, vec![l("tollgate:rebate:mug", -100, 1)]);
        assert_eq!(bill.total, 200 + 500);
    }

    #[test]
    fn three_for_two_on_refunds_takes_the_rebate_back() {
        // refunding 3 of a 3-for-2 product credits the 2 units that were paid
        let bill = compute(&[refund("mug", 100, 3)], &three_for_two()).unwrap();
        assert_eq!(bill.items, vec![l("mug", -100, 3)]);
        assert_eq!(bill.extras, vec![l("tollgate:rebate:mug", 100, 1)]);
        assert_eq!(bill.total, -200);
        // 7 refunded: 2 groups back
        let bill = compute(&[refund("mug", 100, 7)], &three_for_two()).unwrap();
        assert_eq!(bill.extras, vec![l("tollgate:rebate:mug", 100, 2)]);
        assert_eq!(bill.total, -500);
        // the NET count decides: buy 7, refund 3 = 4 held, charged as 3
        let bill = compute(
            &[item("mug", 100, 7), refund("mug", 100, 3)],
            &three_for_two(),
        )
        .unwrap();
        assert_eq!(bill.extras, vec![l("tollgate:rebate:mug", -100, 1)]);
        assert_eq!(bill.total, 300);
        // buy 3, refund 3: nothing held, nothing rebated, nothing owed
        let bill = compute(
            &[refund("mug", 100, 3), item("mug", 100, 3)],
            &three_for_two(),
        )
        .unwrap();
        assert_eq!(bill.extras, vec![]);
        assert_eq!(bill.total, 0);
    }

    #[test]
    fn rebates_follow_first_appearance_then_tax_then_shipping() {
        let rules = [
            RebateRule {
                product_id: "a",
                buy: 2,
                pay: 1,
            },
            RebateRule {
                product_id: "b",
                buy: 3,
                pay: 1,
            },
            // only the first rule of a product counts
            RebateRule {
                product_id: "a",
                buy: 4,
                pay: 1,
            },
        ];
        let rules = Rules {
            tax_rate: TaxRate::parse("0.1").unwrap(),
            shipping: 7,
            rebates: &rules,
        };
        let bill = compute(
            &[
                item("b", 10, 3),
                shipped(item("a", 20, 4)),
                item("b", 10, 1),
            ],
            &rules,
        )
        .unwrap();
        // base: 30 + 80 + 10 - 20 (b: 1 group of 2 free) - 40 (a: 2 groups of 1 free) = 60
        assert_eq!(
            bill.extras,
            vec![
                l("tollgate:rebate:b", -20, 1),
                l("tollgate:rebate:a", -20, 2),
                l(TAX_ID, 6, 1),
                l(SHIPPING_ID, 7, 1),
            ]
        );
        assert_eq!(bill.total, 60 + 6 + 7);
    }

    #[test]
    fn refund_larger_than_purchases_gives_negative_tax_and_total() {
        let rules = Rules {
            tax_rate: TaxRate::parse("0.25").unwrap(),
            ..NO_RULES
        };
        let bill = compute(&[item("pen", 100, 1), refund("book", 303, 1)], &rules).unwrap();
        // base -203, tax -50.75 -> -51
        assert_eq!(bill.extras, vec![l(TAX_ID, -51, 1)]);
        assert_eq!(bill.total, -254);
        // -202 * 0.25 = -50.5, half away from zero -> -51
        let bill = compute(&[item("pen", 101, 1), refund("book", 303, 1)], &rules).unwrap();
        assert_eq!(bill.extras, vec![l(TAX_ID, -51, 1)]);
        assert_eq!(bill.total, -253);
    }

    #[test]
    fn shipping_only_when_a_purchase_ships() {
        let rules = Rules {
            shipping: 500,
            ..NO_RULES
        };
        let ship = || l(SHIPPING_ID, 500, 1);
        // a shipping product refunded alone ships nothing
        let bill = compute(&[shipped(refund("lp", 1000, 1))], &rules).unwrap();
        assert_eq!(bill.extras, vec![]);
        assert_eq!(bill.total, -1000);
        // nor does a purchase of a product that does not ship
        let bill = compute(
            &[shipped(refund("lp", 1000, 1)), item("mp3", 100, 1)],
            &rules,
        );
        assert_eq!(bill.unwrap().extras, vec![]);
        // one shipping purchase: shipping once, untaxed
        let rules = Rules {
            tax_rate: TaxRate::parse("0.5").unwrap(),
            ..rules
        };
        let bill = compute(
            &[
                shipped(item("lp", 1000, 2)),
                shipped(item("cd", 100, 1)),
                item("mp3", 10, 1),
            ],
            &rules,
        )
        .unwrap();
        assert_eq!(bill.extras, vec![l(TAX_ID, 1055, 1), ship()]);
        assert_eq!(bill.total, 2110 + 1055 + 500);
    }

    #[test]
    fn zero_extras_are_left_out_and_no_items_bill_nothing() {
        let free = Rules {
            tax_rate: TaxRate::parse("0.000").unwrap(),
            shipping: 0,
            rebates: &THREE_FOR_TWO,
        };
        let bill = compute(&[shipped(item("lp", 100, 2))], &free).unwrap();
        assert_eq!(bill.extras, vec![]);
        assert_eq!(bill.total, 200);
        // a tax that rounds to zero is left out too
        let rules = Rules {
            tax_rate: TaxRate::parse("0.01").unwrap(),
            ..NO_RULES
        };
        assert_eq!(compute(&[item("x", 49, 1)], &rules).unwrap().extras, vec![]);
        assert_eq!(
            compute(&[item("x", 50, 1)], &rules).unwrap().extras,
            vec![l(TAX_ID, 1, 1)]
        );
        let rules = Rules {
            tax_rate: TaxRate::parse("1").unwrap(),
            shipping: 9,
            rebates: &THREE_FOR_TWO,
        };
        assert_eq!(
            compute(&[], &rules).unwrap(),
            Bill {
                items: vec![],
                extras: vec![],
                total: 0,
            }
        );
    }

    #[test]
    fn huge_prices_and_counts_are_an_overflow_error() {
        let max = i128::MAX as u128;
        let err = Err(BillError::Overflow);
        // a price beyond i128
        assert_eq!(compute(&[item("x", max + 1, 1)], &NO_RULES), err);
        assert_eq!(compute(&[refund("x", u128::MAX, 1)], &NO_RULES), err);
        // price × count
        assert_eq!(compute(&[item("x", max / 2 + 1, 2)], &NO_RULES), err);
        assert_eq!(compute(&[item("x", max, u32::MAX)], &NO_RULES), err);
        // the largest price alone fits, in both signs
        assert_eq!(
            compute(&[item("x", max, 1)], &NO_RULES).unwrap().total,
            i128::MAX
        );
        assert_eq!(
            compute(&[refund("x", max, 1)], &NO_RULES).unwrap().total,
            -i128::MAX
        );
        // the sum of the items
        assert_eq!(
            compute(
                &[item("x", max / 2 + 1, 1), item("y", max / 2 + 1, 1)],
                &NO_RULES
            ),
            err
        );
        // base × tax numerator
        let taxed = Rules {
            tax_rate: TaxRate::parse("0.20").unwrap(),
            ..NO_RULES
        };
        assert_eq!(compute(&[item("x", max / 10, 1)], &taxed), err);
        // shipping beyond i128, and shipping pushing the total over
        let ships = |shipping| Rules {
            shipping,
            ..NO_RULES
        };
        assert_eq!(compute(&[shipped(item("x", 1, 1))], &ships(u128::MAX)), err);
        assert_eq!(compute(&[shipped(item("x", max, 1))], &ships(1)), err);
        // a rebate pushing the base past i128::MIN: two x for one, with refunds of y
        // bringing the base to -i128::MAX first
        let rebate = [RebateRule {
            product_id: "x",
            buy: 2,
            pay: 1,
        }];
        let rules = Rules {
            rebates: &rebate,
            ..NO_RULES
        };
        let basket = [
            item("x", 1 << 100, 2),
            refund("y", max, 1),
            refund("y", 1 << 101, 1),
        ];
        assert_eq!(compute(&basket, &rules), err);
        assert_eq!(compute(&basket, &NO_RULES).unwrap().total, -i128::MAX);
        // a rebate count beyond u32 (a rule of one for none, which the configuration
        // refuses, over two lines of u32::MAX units)
        let rebate = [RebateRule {
            product_id: "x",
            buy: 1,
            pay: 0,
        }];
        let rules = Rules {
            rebates: &rebate,
            ..NO_RULES
        };
        let basket = [item("x", 1, u32::MAX), item("x", 1, u32::MAX)];
        assert_eq!(compute(&basket, &rules), err);
        assert_eq!(compute(&basket[1..], &rules).unwrap().total, 0);
        // a tax rate with a zero denominator (parse never makes one) does not panic
        let broken = Rules {
            tax_rate: TaxRate { num: 1, den: 0 },
            ..NO_RULES
        };
        assert_eq!(compute(&[item("x", 1, 1)], &broken), err);
    }

    // ---- properties against a reference --------------------------------------------

    use proptest::prelude::*;

    const PRODUCTS: [&str; 5] = ["p0", "p1", "p2", "p3", "p4"];

    /// A generated basket and its rules, by product index.
    #[derive(Debug, Clone)]
    struct Case {
        /// The catalogue price of each product.
        prices: [u128; 5],
        /// (product, count, refund, ships)
        lines: Vec<(usize, u32, bool, bool)>,
        /// A rule per product, maybe: (buy, pay).
        rebates: [Option<(u32, u32)>; 5],
        tax: TaxRate,
        shipping: u128,
    }

    impl Case {
        fn items(&self) -> Vec<ItemIn<'static>> {
            self.lines
                .iter()
                .map(|&(p, count, refund, ships)| ItemIn {
                    product_id: PRODUCTS[p],
                    unit_price: self.prices[p],
                    count,
                    refund,
                    ships,
                })
                .collect()
        }

        fn rules(&self) -> Vec<RebateRule<'static>> {
            (0..5)
                .filter_map(|p| {
                    self.rebates[p].map(|(buy, pay)| RebateRule {
                        product_id: PRODUCTS[p],
                        buy,
                        pay,
                    })
                })
                .collect()
        }

        fn compute(&self) -> Result<Bill, BillError> {
            let rebates = self.rules();
            compute(
                &self.items(),
                &Rules {
                    tax_rate: self.tax,
                    shipping: self.shipping,
                    rebates: &rebates,
                },
            )
        }
    }

    fn rebate() -> impl Strategy<Value = Option<(u32, u32)>> {
        prop::option::of((2u32..=10).prop_flat_map(|buy| (Just(buy), 1..buy)))
    }

    fn tax() -> impl Strategy<Value = TaxRate> {
        prop::sample::select(vec![1u128, 10, 100, 1000, 100_000_000])
            .prop_flat_map(|den| (0..=den).prop_map(move |num| TaxRate { num, den }))
    }

    fn case() -> impl Strategy<Value = Case> {
        (
            prop::array::uniform5(1u128..=1_000_000_000_000),
            prop::collection::vec(
                (0usize..5, 1u32..=1000, any::<bool>(), any::<bool>()),
                0..40,
            ),
            [rebate(), rebate(), rebate(), rebate(), rebate()],
            tax(),
            0u128..=10_000_000_000,
        )
            .prop_map(|(prices, lines, rebates, tax, shipping)| Case {
                prices,
                lines,
                rebates,
                tax,
                shipping,
            })
    }

    /// The bill's (total, tax, sum of rebates), computed another way: unit by unit,
    /// rebates by counting groups as units go by, rounding as floor((2|x| + d) / 2d).
    fn reference(c: &Case) -> (i128, i128, i128) {
        let price = |p: usize| i128::try_from(c.prices[p]).unwrap();
        let mut goods = 0i128;
        let mut held = [0i64; 5];
        for &(p, count, refund, _) in &c.lines {
            for _ in 0..count {
                if refund {
                    goods -= price(p);
                    held[p] -= 1;
                } else {
                    goods += price(p);
                    held[p] += 1;
                }
            }
        }
        let mut rebates = 0i128;
        for (p, (&held, rule)) in held.iter().zip(c.rebates).enumerate() {
            let Some((buy, pay)) = rule else {
                continue;
            };
            let mut in_group = 0;
            for _ in 0..held.unsigned_abs() {
                in_group += 1;
                if in_group == buy {
                    in_group = 0;
                    let free = i128::from(buy - pay) * price(p);
                    // a rebate on what is bought, taken back on what is returned
                    rebates += if held > 0 { -free } else { free };
                }
            }
        }
        let base = goods + rebates;
        let (num, den) = (c.tax.num as i128, c.tax.den as i128);
        let exact = base * num; // the tax is exact / den
        let tax = exact.signum() * ((2 * exact.abs() + den) / (2 * den));
        let ships = c
            .lines
            .iter()
            .any(|&(_, _, refund, ships)| ships && !refund);
        let shipping = if ships { c.shipping as i128 } else { 0 };
        (base + tax + shipping, tax, rebates)
    }

    fn extra(bill: &Bill, id: &str) -> i128 {
        bill.extras
            .iter()
            .filter(|l| l.product_id == id)
            .map(|l| l.items_price)
            .sum()
    }

    fn rebates_of(bill: &Bill) -> i128 {
        bill.extras
            .iter()
            .filter(|l| l.product_id.starts_with(REBATE_PREFIX))
            .map(|l| l.items_price)
            .sum()
    }

    proptest! {
        #[test]
        fn prop_total_is_the_sum_of_every_line(c in case()) {
            let bill = c.compute().unwrap();
            let sum: i128 = bill.items.iter().chain(&bill.extras).map(|l| l.items_price).sum();
            prop_assert_eq!(bill.total, sum);
        }

        #[test]
        fn prop_total_tax_and_rebates_match_the_reference(c in case()) {
            let bill = c.compute().unwrap();
            let (total, tax, rebates) = reference(&c);
            prop_assert_eq!(bill.total, total);
            prop_assert_eq!(extra(&bill, TAX_ID), tax);
            prop_assert_eq!(rebates_of(&bill), rebates);
        }

        #[test]
        fn prop_items_mirror_the_input_and_price_times_count(c in case()) {
            let bill = c.compute().unwrap();
            prop_assert_eq!(bill.items.len(), c.lines.len());
            for (line, &(p, count, refund, _)) in bill.items.iter().zip(&c.lines) {
                prop_assert_eq!(&line.product_id, PRODUCTS[p]);
                prop_assert_eq!(line.count, count);
                prop_assert_eq!(line.item_price.unsigned_abs(), c.prices[p]);
                prop_assert_eq!(line.item_price < 0, refund);
                prop_assert_eq!(line.items_price, line.item_price * i128::from(line.count));
            }
            for line in &bill.extras {
                prop_assert_eq!(line.items_price, line.item_price * i128::from(line.count));
            }
        }

        #[test]
        fn prop_tax_is_within_half_a_unit_of_the_exact_rate(c in case()) {
            let bill = c.compute().unwrap();
            let base: i128 = bill.items.iter().map(|l| l.items_price).sum::<i128>() + rebates_of(&bill);
            let tax = extra(&bill, TAX_ID);
            let (num, den) = (c.tax.num as i128, c.tax.den as i128);
            // |tax - base·num/den| <= 1/2, cross-multiplied by 2·den
            prop_assert!((2 * tax * den - 2 * base * num).abs() <= den);
        }

        #[test]
        fn prop_extras_are_never_zero_and_come_in_order(c in case()) {
            let bill = c.compute().unwrap();
            let rank = |id: &str| match id {
                _ if id.starts_with(REBATE_PREFIX) => 0,
                TAX_ID => 1,
                SHIPPING_ID => 2,
                _ => 3,
            };
            for line in &bill.extras {
                prop_assert_ne!(line.items_price, 0);
                prop_assert!(rank(&line.product_id) < 3, "{}", line.product_id);
            }
            for pair in bill.extras.windows(2) {
                prop_assert!(rank(&pair[0].product_id) <= rank(&pair[1].product_id));
                prop_assert_ne!(&pair[0].product_id, &pair[1].product_id);
            }
        }

        #[test]
        fn prop_permuting_lines_changes_neither_total_nor_tax(
            (c, shuffled) in case().prop_flat_map(|c| {
                let lines = Just(c.lines.clone()).prop_shuffle();
                (Just(c), lines)
            })
        ) {
            let bill = c.compute().unwrap();
            let other = Case { lines: shuffled, ..c.clone() }.compute().unwrap();
            prop_assert_eq!(bill.total, other.total);
            prop_assert_eq!(extra(&bill, TAX_ID), extra(&other, TAX_ID));
            prop_assert_eq!(rebates_of(&bill), rebates_of(&other));
        }

        #[test]
        fn prop_any_input_is_a_bill_or_an_overflow_never_a_panic(
            lines in prop::collection::vec(
                (0usize..3, any::<u128>(), any::<u32>(), any::<bool>(), any::<bool>()),
                0..8,
            ),
            rebate in (0usize..3, any::<u32>(), any::<u32>()),
            num in any::<u128>(),
            den in any::<u128>(),
            shipping in any::<u128>(),
        ) {
            let items: Vec<ItemIn<'_>> = lines
                .iter()
                .map(|&(p, unit_price, count, refund, ships)| ItemIn {
                    product_id: PRODUCTS[p],
                    unit_price,
                    count,
                    refund,
                    ships,
                })
                .collect();
            let rebates = [RebateRule { product_id: PRODUCTS[rebate.0], buy: rebate.1, pay: rebate.2 }];
            let rules = Rules { tax_rate: TaxRate { num, den }, shipping, rebates: &rebates };
            if let Ok(bill) = compute(&items, &rules) {
                let sum = bill.items.iter().chain(&bill.extras)
                    .try_fold(0i128, |acc, l| acc.checked_add(l.items_price));
                prop_assert_eq!(Some(bill.total), sum);
            }
        }
    }
}
