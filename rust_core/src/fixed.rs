//! Exact decimal text → scaled integer (`value × 10^decimals`), without floats.
//!
//! Exchanges send prices and sizes as decimal strings ("61659.70", "0.00100000"). The core
//! keeps them as `i64` counts of the smallest unit. Trailing zeros past the scale are fine
//! (Binance spot sends 8 decimals for a 0.01 tick); a non-zero digit past it is an error,
//! because rounding it away would silently change the number.

use std::fmt;

/// The largest supported number of decimals (10^18 still fits an i64).
pub const MAX_DECIMALS: u32 = 18;

const POW10: [i64; 19] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
    10_000_000_000,
    100_000_000_000,
    1_000_000_000_000,
    10_000_000_000_000,
    100_000_000_000_000,
    1_000_000_000_000_000,
    10_000_000_000_000_000,
    100_000_000_000_000_000,
    1_000_000_000_000_000_000,
];

/// `10^decimals`; `decimals` must be `<= MAX_DECIMALS` (every scale is checked where it enters,
/// by [`check_scale`]). Code that may see any `u32` uses [`checked_pow10`].
#[inline]
pub fn pow10(decimals: u32) -> i64 {
    POW10[decimals as usize]
}

/// `10^decimals`, or None past `MAX_DECIMALS`.
#[inline]
pub fn checked_pow10(decimals: u32) -> Option<i64> {
    POW10.get(decimals as usize).copied()
}

/// Why a decimal string was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FixedError {
    /// Nothing to parse.
    Empty,
    /// A character that has no place in a decimal number, at this byte offset.
    InvalidChar { pos: usize },
    /// A non-zero digit past the allowed number of decimals.
    TooPrecise { decimals: u32 },
    /// The scaled value does not fit an i64.
    Overflow,
    /// A negative value where only `>= 0` is allowed (sizes).
    Negative,
    /// More decimals requested than an i64 can scale.
    BadScale { decimals: u32 },
}

impl fmt::Display for FixedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FixedError::Empty => write!(f, "empty number"),
            FixedError::InvalidChar { pos } => write!(f, "invalid character at offset {pos}"),
            FixedError::TooPrecise { decimals } => {
                write!(f, "non-zero digit past {decimals} decimals")
            }
            FixedError::Overflow => write!(f, "value out of range"),
            FixedError::Negative => write!(f, "negative value not allowed"),
            FixedError::BadScale { decimals } => {
                write!(f, "{decimals} decimals is more than the supported {MAX_DECIMALS}")
            }
        }
    }
}

impl std::error::Error for FixedError {}

/// Check a scale once, at construction, so the hot path can index `POW10` freely.
pub fn check_scale(decimals: u32) -> Result<(), FixedError> {
    if decimals > MAX_DECIMALS {
        Err(FixedError::BadScale { decimals })
    } else {
        Ok(())
    }
}

/// Parse `s` (plain decimal notation, optional leading `-`) into `value × 10^decimals`.
///
/// This is the hot path for exchange strings: one pass, no allocation. Exponent notation
/// (`1e-5`) falls through to the slower [`parse_lenient`].
#[inline]
pub fn parse_fixed(s: &[u8], decimals: u32) -> Result<i64, FixedError> {
    check_scale(decimals)?;
    let (neg, digits) = match s.first() {
        None => return Err(FixedError::Empty),
        Some(b'-') => (true, &s[1..]),
        Some(_) => (false, s),
    };
    let off = neg as usize;
    let mut value: i64 = 0;
    let mut i = 0;
    // Integer part: at least one digit.
    while i < digits.len() {
        let d = digits[i].wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        value = value.checked_mul(10).and_then(|v| v.checked_add(d as i64)).ok_or(FixedError::Overflow)?;
        i += 1;
    }
    if i == 0 {
        return Err(if digits.is_empty() { FixedError::Empty } else { FixedError::InvalidChar { pos: off } });
    }
    let mut frac = 0u32;
    if i < digits.len() {
        match digits[i] {
            b'.' => {
                i += 1;
                let start = i;
                while i < digits.len() {
                    let d = digits[i].wrapping_sub(b'0');
                    if d > 9 {
                        break;
                    }
                    if frac < decimals {
                        value =
                            value.checked_mul(10).and_then(|v| v.checked_add(d as i64)).ok_or(FixedError::Overflow)?;
                        frac += 1;
                    } else if d != 0 {
                        // An exponent further on may still make it exact ("2.5e2").
                        if digits[i..].iter().any(|c| matches!(c, b'e' | b'E')) {
                            return parse_lenient(s, decimals);
                        }
                        return Err(FixedError::TooPrecise { decimals });
                    }
                    i += 1;
                }
                if i == start && i < digits.len() {
                    return Err(FixedError::InvalidChar { pos: off + i });
                }
            }
            b'e' | b'E' => return parse_lenient(s, decimals),
            _ => return Err(FixedError::InvalidChar { pos: off + i }),
        }
        if i < digits.len() {
            if matches!(digits[i], b'e' | b'E') {
                return parse_lenient(s, decimals);
            }
            return Err(FixedError::InvalidChar { pos: off + i });
        }
    }
    // frac <= decimals <= MAX_DECIMALS: the lookup cannot miss.
    let p = checked_pow10(decimals - frac).ok_or(FixedError::BadScale { decimals })?;
    let scaled = value.checked_mul(p).ok_or(FixedError::Overflow)?;
    Ok(if neg { -scaled } else { scaled })
}

/// Parse a size: like [`parse_fixed`] but negative values are an error ("-0" is zero).
#[inline]
pub fn parse_size(s: &[u8], decimals: u32) -> Result<i64, FixedError> {
    if s.first() == Some(&b'-') {
        let v = parse_fixed(s, decimals)?;
        return if v == 0 { Ok(0) } else { Err(FixedError::Negative) };
    }
    parse_fixed(s, decimals)
}

/// Parse any decimal text a person or a library may hand us: surrounding whitespace, a
/// leading `+`, exponent notation (`6.1e-05`, `1E+3`). Still exact: the mantissa digits are
/// shifted by the exponent, never converted through a float.
pub fn parse_lenient(s: &[u8], decimals: u32) -> Result<i64, FixedError> {
    check_scale(decimals)?;
    let start = s.iter().position(|c| !c.is_ascii_whitespace()).unwrap_or(s.len());
    let end = s.iter().rposition(|c| !c.is_ascii_whitespace()).map_or(start, |p| p + 1);
    let t = &s[start..end];
    let mut i = 0;
    let neg = match t.first() {
        None => return Err(FixedError::Empty),
        Some(b'-') => {
            i = 1;
            true
        }
        Some(b'+') => {
            i = 1;
            false
        }
        _ => false,
    };
    // Mantissa as an i128 with the count of digits after the point.
    let mut mant: i128 = 0;
    let mut point_digits: i64 = 0;
    let mut seen_digit = false;
    let mut seen_point = false;
    let mut dropped_nonzero = false;
    let mut extra_zeros: i64 = 0; // digits past i128 capacity, as a power of ten
    while i < t.len() {
        let c = t[i];
        match c {
            b'0'..=b'9' => {
                seen_digit = true;
                let d = (c - b'0') as i128;
                if mant < i128::MAX / 100 {
                    mant = mant * 10 + d;
                    if seen_point {
                        point_digits += 1;
                    }
                } else if seen_point {
                    // Beyond 36 significant digits: only zeros can be dropped exactly.
                    dropped_nonzero |= d != 0;
                } else {
                    extra_zeros += 1;
                    dropped_nonzero |= d != 0;
                }
            }
            b'.' if !seen_point => seen_point = true,
            b'e' | b'E' => break,
            _ => return Err(FixedError::InvalidChar { pos: start + i }),
        }
        i += 1;
    }
    if !seen_digit {
        return Err(if i < t.len() { FixedError::InvalidChar { pos: start + i } } else { FixedError::Empty });
    }
    if dropped_nonzero {
        return Err(FixedError::Overflow);
    }
    let mut exp: i64 = 0;
    if i < t.len() {
        // t[i] is 'e' or 'E'
        i += 1;
        let exp_neg = match t.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let exp_start = i;
        while i < t.len() && t[i].is_ascii_digit() {
            exp = (exp * 10 + (t[i] - b'0') as i64).min(1_000_000);
            i += 1;
        }
        if i == exp_start || i < t.len() {
            return Err(FixedError::InvalidChar { pos: start + i });
        }
        if exp_neg {
            exp = -exp;
        }
    }
    // value = mant × 10^(exp + extra_zeros - point_digits); scaled = value × 10^decimals.
    let shift = exp + extra_zeros - point_digits + decimals as i64;
    let scaled: i128 = if mant == 0 {
        0
    } else if shift >= 0 {
        if shift > 38 {
            return Err(FixedError::Overflow);
        }
        mant.checked_mul(10i128.pow(shift as u32)).ok_or(FixedError::Overflow)?
    } else {
        let div = if -shift > 38 { None } else { Some(10i128.pow((-shift) as u32)) };
        match div {
            Some(d) if mant % d == 0 => mant / d,
            _ => return Err(FixedError::TooPrecise { decimals }),
        }
    };
    let scaled = i64::try_from(scaled).map_err(|_| FixedError::Overflow)?;
    Ok(if neg { -scaled } else { scaled })
}

/// `raw / 10^decimals` as a float, for analytics and display only.
#[inline]
pub fn to_f64(raw: i64, decimals: u32) -> f64 {
    match checked_pow10(decimals) {
        Some(p) => raw as f64 / p as f64,
        None => raw as f64 / 10f64.powi(decimals.min(i32::MAX as u32) as i32),
    }
}

/// Exact decimal text of a scaled integer, e.g. `(6165970, 2)` → `"61659.70"`; any scale.
pub fn format_fixed(raw: i64, decimals: u32) -> String {
    let sign = if raw < 0 { "-" } else { "" };
    let a = raw.unsigned_abs();
    match checked_pow10(decimals) {
        Some(1) => format!("{sign}{a}"),
        Some(p) => {
            let p = p.unsigned_abs();
            format!("{sign}{}.{:0width$}", a / p, a % p, width = decimals as usize)
        }
        // Past 18 decimals every i64 is below 1: all digits go after the point.
        None => format!("{sign}0.{a:0>width$}", width = decimals as usize),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str, d: u32) -> Result<i64, FixedError> {
        parse_fixed(s.as_bytes(), d)
    }

    #[test]
    fn parses_exchange_strings_exactly() {
        assert_eq!(p("61659.70", 2), Ok(6_165_970));
        assert_eq!(p("61659.7", 2), Ok(6_165_970));
        assert_eq!(p("61659", 2), Ok(6_165_900));
        assert_eq!(p("0.00100000", 8), Ok(100_000));
        assert_eq!(p("0", 3), Ok(0));
        assert_eq!(p("0.000", 3), Ok(0));
        // Binance spot: 8 dp strings for a 0.01 tick.
        assert_eq!(p("61685.99000000", 2), Ok(6_168_599));
        assert_eq!(p("1.9537", 4), Ok(19_537));
        assert_eq!(p("12", 0), Ok(12));
        assert_eq!(p("12.000", 0), Ok(12));
        assert_eq!(p("-1.5", 1), Ok(-15));
        assert_eq!(p("1.", 2), Ok(100));
    }

    #[test]
    fn rejects_junk_and_precision_loss() {
        assert_eq!(p("", 2), Err(FixedError::Empty));
        assert_eq!(p("-", 2), Err(FixedError::Empty));
        assert_eq!(p("abc", 2), Err(FixedError::InvalidChar { pos: 0 }));
        assert_eq!(p("1.2.3", 2), Err(FixedError::InvalidChar { pos: 3 }));
        assert_eq!(p("1,5", 2), Err(FixedError::InvalidChar { pos: 1 }));
        assert_eq!(p(" 1", 2), Err(FixedError::InvalidChar { pos: 0 }));
        assert_eq!(p(".5", 2), Err(FixedError::InvalidChar { pos: 0 }));
        assert_eq!(p("61659.701", 2), Err(FixedError::TooPrecise { decimals: 2 }));
        assert_eq!(p("0.5", 0), Err(FixedError::TooPrecise { decimals: 0 }));
        assert_eq!(p("99999999999999999999", 0), Err(FixedError::Overflow));
        assert_eq!(p("9223372036854775807", 1), Err(FixedError::Overflow));
        assert_eq!(parse_size(b"-1", 2), Err(FixedError::Negative));
        assert_eq!(parse_size(b"-0.00", 2), Ok(0));
        assert_eq!(parse_size(b"1.25", 2), Ok(125));
    }

    #[test]
    fn lenient_handles_exponents_exactly() {
        let l = |s: &str, d| parse_lenient(s.as_bytes(), d);
        assert_eq!(l("6.1e-05", 8), Ok(6_100));
        assert_eq!(l("1E+3", 0), Ok(1_000));
        assert_eq!(l(" +2.50 ", 2), Ok(250));
        assert_eq!(l("1e-9", 8), Err(FixedError::TooPrecise { decimals: 8 }));
        assert_eq!(l("0e-50", 2), Ok(0));
        assert_eq!(l("1e400", 2), Err(FixedError::Overflow));
        assert_eq!(l("1e", 2), Err(FixedError::InvalidChar { pos: 2 }));
        assert_eq!(l("e5", 2), Err(FixedError::InvalidChar { pos: 0 }));
        assert_eq!(l("nan", 2), Err(FixedError::InvalidChar { pos: 0 }));
        assert_eq!(l("", 2), Err(FixedError::Empty));
        // Fast path falls through to the lenient one on an exponent.
        assert_eq!(p("2.5e2", 0), Ok(250));
    }

    #[test]
    fn formats_back_exactly() {
        assert_eq!(format_fixed(6_165_970, 2), "61659.70");
        assert_eq!(format_fixed(-15, 1), "-1.5");
        assert_eq!(format_fixed(7, 0), "7");
        assert_eq!(format_fixed(100_000, 8), "0.00100000");
        assert_eq!(check_scale(19), Err(FixedError::BadScale { decimals: 19 }));
        assert_eq!(format_fixed(-15, 20), "-0.00000000000000000015");
        assert_eq!(format_fixed(i64::MIN, 0), "-9223372036854775808");
    }

    #[test]
    fn any_scale_is_an_error_or_a_value_never_a_panic() {
        assert_eq!(p("1", 19), Err(FixedError::BadScale { decimals: 19 }));
        assert_eq!(p("0.1", 19), Err(FixedError::BadScale { decimals: 19 }));
        assert_eq!(p("1", u32::MAX), Err(FixedError::BadScale { decimals: u32::MAX }));
        assert_eq!(parse_size(b"-1", 25), Err(FixedError::BadScale { decimals: 25 }));
        assert_eq!(parse_lenient(b"0.5", u32::MAX), Err(FixedError::BadScale { decimals: u32::MAX }));
        assert!((to_f64(15, 40) - 15e-40).abs() < 1e-52);
        assert_eq!(checked_pow10(18), Some(1_000_000_000_000_000_000));
        assert_eq!(checked_pow10(19), None);
    }
}
