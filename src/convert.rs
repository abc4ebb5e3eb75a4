//! Python numbers and strings → exact scaled integers.
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyFloat, PyInt, PyString};

use mixmaker_core::fixed::{parse_lenient, pow10, FixedError};

use crate::errors::decimal_error;

/// `value × 10^decimals` for a str, int, float or Decimal, exactly (a float goes through its
/// shortest repr, so `0.1` is 0.1, not 0.1000000000000000055...).
pub(crate) fn to_scaled(v: &Bound<'_, PyAny>, decimals: u32, what: &str) -> PyResult<i64> {
    if let Ok(s) = v.cast::<PyString>() {
        let text = s.to_str()?;
        return parse_lenient(text.as_bytes(), decimals).map_err(|e| decimal_error(what, text, decimals, e));
    }
    if v.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err(format!("{what} must be a number or a decimal string, not bool")));
    }
    if v.is_instance_of::<PyInt>() {
        let n: i64 = v.extract().map_err(|_| decimal_error(what, &v.to_string(), decimals, FixedError::Overflow))?;
        return n
            .checked_mul(pow10(decimals))
            .ok_or_else(|| decimal_error(what, &n.to_string(), decimals, FixedError::Overflow));
    }
    let text = if v.is_instance_of::<PyFloat>() { v.repr()?.to_string() } else { v.str()?.to_string() };
    parse_lenient(text.as_bytes(), decimals).map_err(|e| decimal_error(what, &text, decimals, e))
}

/// Like [`to_scaled`], and negative values are an error.
pub(crate) fn to_size(v: &Bound<'_, PyAny>, decimals: u32, what: &str) -> PyResult<i64> {
    let n = to_scaled(v, decimals, what)?;
    if n < 0 {
        return Err(decimal_error(what, &v.to_string(), decimals, FixedError::Negative));
    }
    Ok(n)
}

/// (price, size) pairs from any iterable of 2-sequences.
pub(crate) fn to_levels(v: &Bound<'_, PyAny>, pd: u32, sd: u32) -> PyResult<Vec<(i64, i64)>> {
    let mut out = Vec::new();
    for item in v.try_iter()? {
        let item = item?;
        // Any 2-sequence: tuples, and the lists JSON, REST payloads and ccxt hand out.
        let pair = match item.len() {
            Ok(2) => Some((item.get_item(0)?, item.get_item(1)?)),
            _ => None,
        };
        let Some((p, s)) = pair else {
            let shown = item.repr().map(|r| r.to_string()).unwrap_or_default();
            return Err(PyTypeError::new_err(format!("a level must be a (price, size) pair, got {shown}")));
        };
        out.push((to_scaled(&p, pd, "price")?, to_size(&s, sd, "size")?));
    }
    Ok(out)
}
