use std::fmt;

use crate::error::{Error, Result};

/// A JSON number as Python reads it: an integer of any size or a float.
///
/// Python keeps `1` and `1.0` apart (an `int` and a `float`) and writes them back as they
/// were; so does penin. Integers that fit in 64 bits are [`Number::Int`]; larger ones are
/// kept exactly as [`Number::Big`], never rounded to a float.
#[derive(Clone, Debug, PartialEq)]
pub enum Number {
    /// An integer within `i64`.
    Int(i64),
    /// An integer outside `i64`, kept exactly.
    Big(BigInt),
    /// A float, including NaN, the infinities and `-0.0`.
    Float(f64),
}

impl Number {
    /// Parses a decimal integer of any size: [`Number::Int`] when it fits in `i64`,
    /// otherwise [`Number::Big`].
    ///
    /// ```
    /// use penin_artifacts::Number;
    /// assert_eq!(Number::parse_integer("-42").unwrap(), Number::Int(-42));
    /// let big = Number::parse_integer("123456789012345678901234567890").unwrap();
    /// assert_eq!(big.to_string(), "123456789012345678901234567890");
    /// assert!(Number::parse_integer("1.5").is_err());
    /// ```
    pub fn parse_integer(text: &str) -> Result<Number> {
        if !is_decimal_integer(text) {
            return Err(Error::InvalidInteger {
                text: text.chars().take(40).collect(),
            });
        }
        Ok(match text.parse::<i64>() {
            Ok(n) => Number::Int(n),
            // `-0` is the integer 0, as in Python.
            Err(_) => Number::Big(BigInt(text.into())),
        })
    }

    /// An unsigned size as an integer, exactly ([`Number::Big`] beyond `i64`).
    #[must_use]
    pub fn from_usize(n: usize) -> Number {
        i64::try_from(n).map_or_else(|_| Number::Big(BigInt(n.to_string().into())), Number::Int)
    }

    /// The number as an `f64`: exact for floats, nearest for integers (as Python's
    /// `float(n)`), infinite for integers beyond the `f64` range.
    #[must_use]
    #[allow(clippy::cast_precision_loss)] // documented: nearest float, as Python's float(n)
    pub fn to_f64(&self) -> f64 {
        match self {
            Number::Int(n) => *n as f64,
            // The text is a validated decimal integer, which `f64` parsing always accepts.
            Number::Big(b) => b.0.parse().unwrap_or(f64::NAN),
            Number::Float(f) => *f,
        }
    }

    /// The float this number stands for exactly, if there is one: floats themselves, and
    /// integers that an `f64` represents without rounding.
    #[must_use]
    pub fn to_f64_exact(&self) -> Option<f64> {
        match self {
            Number::Float(f) => Some(*f),
            Number::Int(n) => {
                let f = self.to_f64();
                // `i64::MAX as f64` rounds up to 2^63, which does not fit back: compare in i128.
                #[allow(clippy::cast_possible_truncation)]
                let back = f as i128;
                (f.is_finite() && back == i128::from(*n)).then_some(f)
            }
            // Beyond i64 only powers-of-two-ish values are exact; refuse them all rather
            // than compare digit strings: a vector element this large is not an embedding.
            Number::Big(_) => None,
        }
    }
}

impl fmt::Display for Number {
    /// Integers in decimal; floats in Rust's shortest form (the codec has Python's spelling).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Number::Int(n) => write!(f, "{n}"),
            Number::Big(b) => write!(f, "{b}"),
            Number::Float(x) => write!(f, "{x:?}"),
        }
    }
}

impl From<f64> for Number {
    fn from(f: f64) -> Self {
        Number::Float(f)
    }
}

impl From<i64> for Number {
    fn from(n: i64) -> Self {
        Number::Int(n)
    }
}

/// An integer outside the `i64` range, kept as its exact decimal digits.
///
/// Made only by [`Number::parse_integer`], so the text is always a canonical decimal
/// integer (optional `-`, no leading zeros) that does not fit in `i64`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BigInt(Box<str>);

impl BigInt {
    /// The decimal digits, with a leading `-` when negative.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BigInt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `-?(0|[1-9][0-9]*)`
fn is_decimal_integer(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text).as_bytes();
    match digits {
        [b'0'] => true,
        [] | [b'0', ..] => false,
        _ => digits.iter().all(u8::is_ascii_digit),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_parse_by_size() {
        let rows: &[(&str, Option<Number>)] = &[
            ("0", Some(Number::Int(0))),
            ("-0", Some(Number::Int(0))),
            ("9223372036854775807", Some(Number::Int(i64::MAX))),
            ("-9223372036854775808", Some(Number::Int(i64::MIN))),
            ("", None),
            ("-", None),
            ("01", None),
            ("1e5", None),
            ("+1", None),
            (" 1", None),
        ];
        for (text, expected) in rows {
            assert_eq!(Number::parse_integer(text).ok(), *expected, "{text:?}");
        }
        for text in [
            "9223372036854775808",
            "-9223372036854775809",
            "1".repeat(100).as_str(),
        ] {
            let n = Number::parse_integer(text).unwrap();
            assert!(matches!(n, Number::Big(_)), "{text}");
            assert_eq!(n.to_string(), text);
        }
    }

    #[test]
    fn exact_floats_from_integers() {
        assert_eq!(Number::Int(3).to_f64_exact(), Some(3.0));
        assert_eq!(
            Number::Int(1 << 53).to_f64_exact(),
            Some(9_007_199_254_740_992.0)
        );
        assert_eq!(Number::Int((1 << 53) + 1).to_f64_exact(), None);
        assert_eq!(Number::Int(i64::MAX).to_f64_exact(), None);
        assert_eq!(
            Number::Int(i64::MIN).to_f64_exact(),
            Some(-9_223_372_036_854_775_808.0)
        );
        let big = Number::parse_integer("18446744073709551616").unwrap();
        assert_eq!(big.to_f64_exact(), None);
        assert_eq!(big.to_f64(), 18_446_744_073_709_551_616.0);
    }
}
