//! Token amounts as integer base units.
//!
//! Owns parsing and formatting of decimal amount strings ("0.5", "17.98") into
//! base units of a token with a fixed number of decimals (0xBTC: 8). It must never
//! touch floating point: every amount on every path is a `u128` of base units.

use std::fmt;

/// An amount of a token in integer base units (for 0xBTC, 1 unit = 10^-8 0xBTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Amount(pub u128);

/// Why a decimal amount string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// The string is empty or contains something other than digits and one dot.
    #[error("not a decimal number (expected digits with an optional '.', e.g. \"0.5\")")]
    Syntax,
    /// More fractional digits than the token has decimals.
    #[error("more than {0} decimal places")]
    TooPrecise(u32),
    /// The value does not fit.
    #[error("amount too large")]
    Overflow,
}

impl Amount {
    /// Zero base units.
    pub const ZERO: Amount = Amount(0);

    /// Parses a non-negative decimal string such as `"0.5"` or `"17"` into base units
    /// of a token with `decimals` decimals. Leading `+`/`-`, exponents, spaces and
    /// more than `decimals` fractional digits are refused; nothing goes through a float.
    pub fn parse_decimal(s: &str, decimals: u32) -> Result<Amount, AmountError> {
        let (int_part, frac_part) = match s.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (s, None),
        };
        let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
        if int_part.is_empty() || !all_digits(int_part) {
            return Err(AmountError::Syntax);
        }
        let frac = frac_part.unwrap_or("");
        if frac_part.is_some() && (frac.is_empty() || !all_digits(frac)) {
            return Err(AmountError::Syntax);
        }
        if frac.len() > decimals as usize {
            return Err(AmountError::TooPrecise(decimals));
        }
        let scale = 10u128.checked_pow(decimals).ok_or(AmountError::Overflow)?;
        let mut whole: u128 = 0;
        for b in int_part.bytes() {
            whole = whole
                .checked_mul(10)
                .and_then(|w| w.checked_add(u128::from(b - b'0')))
                .ok_or(AmountError::Overflow)?;
        }
        let mut fraction: u128 = 0;
        for b in frac.bytes() {
            fraction = fraction * 10 + u128::from(b - b'0');
        }
        fraction *= 10u128.pow(decimals - frac.len() as u32);
        whole
            .checked_mul(scale)
            .and_then(|w| w.checked_add(fraction))
            .map(Amount)
            .ok_or(AmountError::Overflow)
    }

    /// Formats as the shortest decimal string: `50000000` with 8 decimals is `"0.5"`,
    /// `0` is `"0"`, `1798000000` is `"17.98"`.
    pub fn to_decimal(self, decimals: u32) -> String {
        let scale = 10u128.pow(decimals);
        let whole = self.0 / scale;
        let frac = self.0 % scale;
        if frac == 0 {
            return whole.to_string();
        }
        let digits = format!("{frac:0width$}", width = decimals as usize);
        format!("{whole}.{}", digits.trim_end_matches('0'))
    }

    /// True when this is zero base units.
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats_without_floats() {
        let cases = [
            ("0", 0u128, "0"),
            ("0.5", 50_000_000, "0.5"),
            ("17.98", 1_798_000_000, "17.98"),
            ("222.333", 22_233_300_000, "222.333"),
            ("0.00000001", 1, "0.00000001"),
            ("1.10000000", 110_000_000, "1.1"),
            ("21000000", 2_100_000_000_000_000, "21000000"),
        ];
        for (s, units, back) in cases {
            let a = Amount::parse_decimal(s, 8).unwrap();
            assert_eq!(a.0, units, "{s}");
            assert_eq!(a.to_decimal(8), back, "{s}");
        }
    }

    #[test]
    fn refuses_what_is_not_a_plain_decimal() {
        for s in [
            "", ".", ".5", "5.", "-1", "+1", "1e3", " 1", "1 ", "0x10", "1.2.3", "NaN", "١",
        ] {
            assert_eq!(
                Amount::parse_decimal(s, 8),
                Err(AmountError::Syntax),
                "{s:?}"
            );
        }
        assert_eq!(
            Amount::parse_decimal("0.000000001", 8),
            Err(AmountError::TooPrecise(8))
        );
        assert_eq!(
            Amount::parse_decimal("999999999999999999999999999999999999999999", 8),
            Err(AmountError::Overflow)
        );
    }
}
