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
