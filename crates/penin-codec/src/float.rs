//! Python's `repr` of a float, which is what `json.dump` writes for finite floats.
//!
//! The digits are the shortest that read back to the same float (zmij computes them, as
//! Python's `dtoa` mode 0 does); the layout is Python's `format_float_short` with
//! `Py_DTSF_ADD_DOT_0`: positional when the decimal exponent is in `-4..16`, with `.0`
//! added to an integral value, otherwise `d.ddde±XX` with at least two exponent digits.

/// Appends the Python spelling of `f`: `NaN`, `Infinity`, `-Infinity` for non-finite values
/// (as `json.dump` with `allow_nan=True`), `repr(f)` otherwise.
pub(crate) fn write_float(out: &mut Vec<u8>, f: f64) {
    if !f.is_finite() {
        out.extend_from_slice(if f.is_nan() {
            b"NaN"
        } else if f > 0.0 {
            b"Infinity"
        } else {
            b"-Infinity"
        });
        return;
    }
    if f == 0.0 {
        out.extend_from_slice(if f.is_sign_negative() {
            b"-0.0"
        } else {
            b"0.0"
        });
        return;
    }
    let mut buffer = zmij::Buffer::new();
    let shortest = buffer.format_finite(f).as_bytes();
    // Fast path: for magnitudes in [1e-4, 1e16) zmij and Python both write the shortest digits
    // in positional form with `.0` on integral values, so zmij's text is Python's. (Tested
    // against the general path below and against CPython itself.)
    let magnitude = f.abs();
    // An exponent, if any, is in the last five bytes (`e-324`).
    let tail = &shortest[shortest.len().saturating_sub(5)..];
    if (1e-4..1e16).contains(&magnitude) && !tail.contains(&b'e') {
        out.extend_from_slice(shortest);
        return;
    }
    let (negative, digits, decpt) = decompose(shortest);
    if negative {
        out.push(b'-');
    }
    layout(out, &digits, decpt);
}

/// Splits zmij's output (`-1.25e-7`, `123.0`, `1e16`) into its sign, significant digits
/// without leading or trailing zeros, and `decpt`, the position of the decimal point
/// relative to the first digit: value = 0.d1d2... × 10^decpt.
fn decompose(text: &[u8]) -> (bool, DigitBuf, i32) {
    let (negative, text) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    let (mantissa, exponent) = match text.iter().position(|&b| b == b'e' || b == b'E') {
        Some(i) => (&text[..i], parse_exponent(&text[i + 1..])),
        None => (text, 0),
    };
    let mut digits = DigitBuf::default();
    let mut decpt = exponent;
    let mut seen_point = false;
    for &b in mantissa {
        match b {
            b'.' => seen_point = true,
            // A leading zero moves the point left when after it, and counts for nothing
            // before it ("0.5").
            b'0' if digits.len == 0 => decpt -= i32::from(seen_point),
            b'0'..=b'9' => {
                digits.push(b);
                if !seen_point {
                    decpt += 1;
                }
            }
            _ => {}
        }
    }
    while digits.len > 1 && digits.bytes[digits.len - 1] == b'0' {
        digits.len -= 1;
    }
    (negative, digits, decpt)
}

fn parse_exponent(text: &[u8]) -> i32 {
    let (sign, digits) = match text.split_first() {
        Some((b'-', rest)) => (-1, rest),
        Some((b'+', rest)) => (1, rest),
        _ => (1, text),
    };
    sign * digits
        .iter()
        .fold(0_i32, |acc, &d| acc * 10 + i32::from(d - b'0'))
}

/// At most 17 significant digits for an `f64`; 24 leaves room.
#[derive(Default)]
struct DigitBuf {
    bytes: [u8; 24],
    len: usize,
}

impl DigitBuf {
    fn push(&mut self, digit: u8) {
        if self.len < self.bytes.len() {
            self.bytes[self.len] = digit;
            self.len += 1;
        }
    }
}

fn layout(out: &mut Vec<u8>, digits: &DigitBuf, decpt: i32) {
    let d = &digits.bytes[..digits.len];
    // At most 24 digits (`DigitBuf`).
    let n = i32::try_from(d.len()).unwrap_or(i32::MAX);
    if decpt <= -4 || decpt > 16 {
        out.push(d[0]);
        if d.len() > 1 {
            out.push(b'.');
            out.extend_from_slice(&d[1..]);
        }
        let exponent = decpt - 1;
        out.push(b'e');
        out.push(if exponent < 0 { b'-' } else { b'+' });
        let magnitude = exponent.unsigned_abs();
        if magnitude < 10 {
            out.push(b'0');
        }
        out.extend_from_slice(itoa_buf(magnitude).as_slice());
    } else if decpt <= 0 {
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(b'0', decpt.unsigned_abs() as usize));
        out.extend_from_slice(d);
    } else if decpt < n {
        let point = decpt.unsigned_abs() as usize;
        out.extend_from_slice(&d[..point]);
        out.push(b'.');
        out.extend_from_slice(&d[point..]);
    } else {
        out.extend_from_slice(d);
        out.extend(std::iter::repeat_n(
            b'0',
            (decpt - n).unsigned_abs() as usize,
        ));
        out.extend_from_slice(b".0");
    }
}

struct SmallBuf {
    bytes: [u8; 10],
    len: usize,
}

impl SmallBuf {
    fn as_slice(&self) -> &[u8] {
        &self.bytes[self.bytes.len() - self.len..]
    }
}

fn itoa_buf(mut n: u32) -> SmallBuf {
    let mut buf = SmallBuf {
        bytes: [0; 10],
        len: 0,
    };
    loop {
        buf.len += 1;
        let i = buf.bytes.len() - buf.len;
        buf.bytes[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return buf;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repr(f: f64) -> String {
        let mut out = Vec::new();
        write_float(&mut out, f);
        String::from_utf8(out).unwrap()
    }

    /// Each row was checked against `CPython` 3.11's `repr`; literals as Python spells them.
    #[test]
    #[allow(clippy::unreadable_literal)]
    fn python_spellings() {
        let rows: &[(f64, &str)] = &[
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (-2.5, "-2.5"),
            (0.1, "0.1"),
            (0.30000000000000004, "0.30000000000000004"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (0.00012345, "0.00012345"),
            (1.2345e-5, "1.2345e-05"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (1234567890123456.0, "1234567890123456.0"),
            (12345678901234567.0, "1.2345678901234568e+16"),
            (123456789012345680.0, "1.2345678901234568e+17"),
            (123456789.0, "123456789.0"),
            (1e22, "1e+22"),
            (2.5e-7, "2.5e-07"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (2.2250738585072014e-308, "2.2250738585072014e-308"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
            (100.0, "100.0"),
            (0.5, "0.5"),
            (123.456, "123.456"),
            (-1e100, "-1e+100"),
            (9007199254740993.0, "9007199254740992.0"),
            (1658206780088562.2, "1658206780088562.2"),
        ];
        for &(f, expected) in rows {
            assert_eq!(repr(f), expected, "{f:e}");
        }
    }

    /// Read back, the text is the same float. (Whether the digits are Python's, ties
    /// included, is checked against `CPython` itself in the workspace tests: Rust's own `{:e}`
    /// breaks ties differently, 1658206780088562.25 → `…562.3` where Python and zmij write `…562.2`.)
    /// The general path, without the fast path, for comparison.
    fn repr_general(f: f64) -> String {
        let mut buffer = zmij::Buffer::new();
        let (negative, digits, decpt) = decompose(buffer.format_finite(f).as_bytes());
        let mut out = Vec::new();
        if negative {
            out.push(b'-');
        }
        layout(&mut out, &digits, decpt);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn fast_path_agrees_with_the_general_path() {
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut checked = 0;
        for i in 0..400_000_u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Random bit patterns, and random values spread over the fast path's range.
            #[allow(clippy::cast_precision_loss)]
            let f = if i % 2 == 0 {
                f64::from_bits(x)
            } else {
                (x >> 11) as f64 / (1_u64 << 53) as f64
                    * 10_f64.powi(i32::try_from(i % 24).unwrap() - 6)
            };
            if !f.is_finite() || f == 0.0 {
                continue;
            }
            assert_eq!(repr(f), repr_general(f), "{f:e}");
            checked += 1;
        }
        for f in [
            1e-4,
            1e-4 * (1.0 + f64::EPSILON),
            9_999_999_999_999_998.0,
            1e15,
            0.1,
            1.0,
            123_456_789.0,
        ] {
            assert_eq!(repr(f), repr_general(f), "{f:e}");
            assert_eq!(repr(-f), repr_general(-f), "{f:e}");
        }
        assert!(checked > 300_000);
    }

    #[test]
    fn reads_back_exactly() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let f = f64::from_bits(x);
            if !f.is_finite() {
                continue;
            }
            let text = repr(f);
            let back: f64 = text.parse().unwrap();
            assert_eq!(back.to_bits(), f.to_bits(), "{text}");
        }
    }
}
