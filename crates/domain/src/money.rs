//! Money as integer fen (1 CNY = 100 fen). Never a float.

use std::fmt;

use crate::Invalid;

/// An amount of money in fen (hundredths of a yuan), never negative.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Fen(i64);

impl Fen {
    /// The largest amount accepted: 1,000,000,000.00 CNY.
    pub const MAX: Fen = Fen(100_000_000_000);
    /// Zero.
    pub const ZERO: Fen = Fen(0);

    /// From a whole number of fen; refuses negative or over-large values.
    pub fn from_fen(fen: i64) -> Result<Fen, Invalid> {
        if fen < 0 {
            return Err(Invalid::new("must not be negative"));
        }
        if fen > Fen::MAX.0 {
            return Err(Invalid::new("is larger than the largest accepted amount"));
        }
        Ok(Fen(fen))
    }

    /// From whole yuan.
    pub fn from_yuan(yuan: u32) -> Fen {
        Fen(i64::from(yuan) * 100)
    }

    /// The amount in fen.
    pub fn as_fen(self) -> i64 {
        self.0
    }

    /// Parses a decimal amount of yuan: `123`, `123.4`, `123.45`, `0.5`.
    ///
    /// Accepts the text of a JSON number (including an exponent form such as
    /// `1e2` as long as the value has at most two decimals) or of a numeric
    /// string. Refuses negatives, more than two decimals, non-finite and
    /// over-large values. Surrounding white space is ignored.
    ///
    /// ```
    /// use zhima_domain::money::Fen;
    /// assert_eq!(Fen::parse_yuan("123.45").unwrap().as_fen(), 12345);
    /// assert_eq!(Fen::parse_yuan("3200").unwrap().as_fen(), 320000);
    /// assert!(Fen::parse_yuan("1.234").is_err());
    /// ```
    pub fn parse_yuan(text: &str) -> Result<Fen, Invalid> {
        let text = text.trim();
        if text.is_empty() {
            return Err(Invalid::new("is empty"));
        }
        if text.len() > 40 {
            return Err(Invalid::new("is not a reasonable amount"));
        }
        let (mantissa, exponent) = match text.find(['e', 'E']) {
            Some(i) => {
                let exp: i32 = text[i + 1..]
                    .parse()
                    .map_err(|_| Invalid::new(format!("{text:?} is not a number")))?;
                (&text[..i], exp)
            }
            None => (text, 0),
        };
        let unsigned = mantissa.strip_prefix('+').unwrap_or(mantissa);
        if let Some(magnitude) = unsigned.strip_prefix('-') {
            // "-0" and "-0.00" are zero; any other negative is refused
            return match Fen::parse_yuan(magnitude) {
                Ok(Fen::ZERO) => Ok(Fen::ZERO),
                Ok(_) => Err(Invalid::new("must not be negative")),
                Err(e) => Err(e),
            };
        }
        let (int_part, frac_part) = match unsigned.split_once('.') {
            Some((i, f)) => (i, f),
            None => (unsigned, ""),
        };
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if (int_part.is_empty() && frac_part.is_empty())
            || !all_digits(int_part)
            || !all_digits(frac_part)
        {
            return Err(Invalid::new(format!("{text:?} is not a number")));
        }
        // digits of the value and the power of ten to apply to get fen
        let digits: String = format!("{int_part}{frac_part}");
        let digits = digits.trim_start_matches('0');
        let scale = exponent
            .checked_add(2)
            .and_then(|s| s.checked_sub(i32::try_from(frac_part.len()).ok()?))
            .ok_or_else(|| Invalid::new("is not a reasonable amount"))?;
        if digits.is_empty() {
            return Ok(Fen::ZERO);
        }
        let (digits, scale) = if scale < 0 {
            // the last -scale digits must be zeros (no fraction of a fen)
            let cut =
                usize::try_from(-scale).map_err(|_| Invalid::new("is not a reasonable amount"))?;
            if cut > digits.len() || !digits[digits.len() - cut..].bytes().all(|b| b == b'0') {
                return Err(Invalid::new("has more than two decimals"));
            }
            (&digits[..digits.len() - cut], 0)
        } else {
            (digits, scale)
        };
        if digits.len() + usize::try_from(scale).unwrap_or(usize::MAX) > 15 {
            return Err(Invalid::new("is larger than the largest accepted amount"));
        }
        let mut fen: i64 = digits
            .parse()
            .map_err(|_| Invalid::new("is not a number"))?;
        for _ in 0..scale {
            fen *= 10;
        }
        Fen::from_fen(fen)
    }

    /// Checked sum.
    pub fn checked_add(self, other: Fen) -> Option<Fen> {
        self.0.checked_add(other.0).map(Fen)
    }
}

impl fmt::Display for Fen {
    /// Yuan with exactly two decimals: `123.45`, `3200.00`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_decimal_amounts() {
        let cases = [
            ("0", 0),
            ("0.00", 0),
            ("-0", 0),
            ("1", 100),
            ("1.5", 150),
            ("123.45", 12345),
            (".5", 50),
            ("5.", 500),
            ("3200", 320000),
            ("  42.10 ", 4210),
            ("+7", 700),
            ("007.07", 707),
            ("1e2", 10000),
            ("1.5E1", 1500),
            ("12345e-2", 12345),
            ("100.0", 10000),
            ("1000000000", 100_000_000_000),
        ];
        for (text, fen) in cases {
            assert_eq!(Fen::parse_yuan(text).map(Fen::as_fen), Ok(fen), "{text}");
        }
    }

    #[test]
    fn refuses_bad_amounts() {
        for bad in [
            "",
            " ",
            "-1",
            "-0.01",
            "1.234",
            "0.001",
            "1e-3",
            "abc",
            "1,5",
            "1.2.3",
            "NaN",
            "inf",
            "0x10",
            "1e400",
            "1000000000.01",
            "99999999999999999999",
            "1e",
            "e5",
            ".",
            "--1",
            "1 000",
        ] {
            assert!(Fen::parse_yuan(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn displays_two_decimals() {
        assert_eq!(Fen::parse_yuan("123.4").unwrap().to_string(), "123.40");
        assert_eq!(Fen::ZERO.to_string(), "0.00");
        assert_eq!(Fen::from_yuan(200).to_string(), "200.00");
        assert_eq!(Fen::from_fen(5).unwrap().to_string(), "0.05");
    }

    #[test]
    fn bounds() {
        assert!(Fen::from_fen(-1).is_err());
        assert!(Fen::from_fen(Fen::MAX.as_fen() + 1).is_err());
        assert_eq!(Fen::from_fen(Fen::MAX.as_fen()), Ok(Fen::MAX));
    }
}
