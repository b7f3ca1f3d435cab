//! The bill of a basket (pure): items, extras (rebates, tax, shipping) and the
//! total, in signed integer base units. Nothing here touches a float.

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

/// Signed base units.
pub type Units = i128;

/// One basket line as the catalogue prices it (the client never sets an amount).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ItemIn<'a> {
    /// Product id.
    pub product_id: &'a str,
    /// The catalogue price in base units (> 0).
    pub unit_price: u128,
    /// 1..=max_count.
    pub count: u32,
    /// A refund line.
    pub refund: bool,
    /// The product ships.
    pub ships: bool,
}

/// A `[[rebate]]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RebateRule<'a> {
    /// Product id.
    pub product_id: &'a str,
    /// Buy.
    pub buy: u32,
    /// Pay.
    pub pay: u32,
}

/// The shop's rules.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    /// Tax.
    pub tax_rate: TaxRate,
    /// Shipping.
    pub shipping: u128,
    /// Rebates.
    pub rebates: &'a [RebateRule<'a>],
}

/// One line of the bill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Product id.
    pub product_id: String,
    /// Unit price.
    pub item_price: Units,
    /// Count.
    pub count: u32,
    /// Line total.
    pub items_price: Units,
}

/// A bill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bill {
    /// Items.
    pub items: Vec<Line>,
    /// Extras.
    pub extras: Vec<Line>,
    /// Total.
    pub total: Units,
}

/// Overflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BillError {
    /// Overflow.
    #[error("the bill does not fit in 128 bits")]
    Overflow,
}

/// Rebate id prefix.
pub const REBATE_PREFIX: &str = "tollgate:rebate:";
/// Tax id.
pub const TAX_ID: &str = "tollgate:tax";
/// Shipping id.
pub const SHIPPING_ID: &str = "tollgate:shipping";

/// TEMPORARY stand-in until the full implementation lands (no rebates).
pub fn compute(items: &[ItemIn<'_>], rules: &Rules<'_>) -> Result<Bill, BillError> {
    let mut lines = Vec::new();
    let mut sum: i128 = 0;
    for i in items {
        let p = i128::try_from(i.unit_price).map_err(|_| BillError::Overflow)?;
        let p = if i.refund { -p } else { p };
        let t = p
            .checked_mul(i128::from(i.count))
            .ok_or(BillError::Overflow)?;
        sum = sum.checked_add(t).ok_or(BillError::Overflow)?;
        lines.push(Line {
            product_id: i.product_id.into(),
            item_price: p,
            count: i.count,
            items_price: t,
        });
    }
    let mut extras = Vec::new();
    let tax = round_half_away(sum * rules.tax_rate.num as i128, rules.tax_rate.den as i128);
    if tax != 0 {
        extras.push(Line {
            product_id: TAX_ID.into(),
            item_price: tax,
            count: 1,
            items_price: tax,
        });
    }
    if rules.shipping > 0 && items.iter().any(|i| i.ships && !i.refund) {
        let s = rules.shipping as i128;
        extras.push(Line {
            product_id: SHIPPING_ID.into(),
            item_price: s,
            count: 1,
            items_price: s,
        });
    }
    let total = lines.iter().chain(&extras).map(|l| l.items_price).sum();
    Ok(Bill {
        items: lines,
        extras,
        total,
    })
}

/// n / d rounded half away from zero.
pub fn round_half_away(n: i128, d: i128) -> i128 {
    let q = n.abs() / d;
    let r = n.abs() % d;
    let q = if 2 * r >= d { q + 1 } else { q };
    if n < 0 {
        -q
    } else {
        q
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
}
