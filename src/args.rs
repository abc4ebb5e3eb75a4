//! Integer arguments checked at the boundary: a scale, count, id or scaled amount that is out of
//! range raises the project's typed error (with the accepted range), never pyo3's bare
//! `OverflowError`. Each is a newtype whose `extract` is the plain integer extraction on the
//! good path, so the hot calls (`update_raw`) pay nothing for it; pyo3 notes the argument's
//! name on the error ("while processing 'price'"). A non-integer stays a `TypeError`.
use pyo3::exceptions::PyOverflowError;
use pyo3::prelude::*;

use mixmaker_core::fixed::MAX_DECIMALS;

use crate::errors::{amount_error, argument_error, client_id_arg_error, order_input_error};

/// Extract `T`, turning an overflow (negative for an unsigned type, or too large) into
/// `err("... must be <range>, got <value>")`.
#[inline(always)]
fn extract_in<'py, T>(obj: Borrowed<'_, 'py, PyAny>, what: &str, range: &str, err: fn(String) -> PyErr) -> PyResult<T>
where
    T: for<'a> FromPyObject<'a, 'py, Error = PyErr>,
{
    obj.extract::<T>().map_err(|e| {
        if e.is_instance_of::<PyOverflowError>(obj.py()) {
            let shown = obj.repr().map(|r| r.to_string()).unwrap_or_default();
            err(format!("{what} must be {range}, got {shown}"))
        } else {
            e
        }
    })
}

macro_rules! int_arg {
    ($(#[$doc:meta])* $name:ident($t:ty), $what:literal, $range:expr, $err:path) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug)]
        pub(crate) struct $name(pub $t);

        impl<'a, 'py> FromPyObject<'a, 'py> for $name {
            type Error = PyErr;

            #[inline(always)]
            fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
                extract_in::<$t>(obj, $what, $range, $err).map($name)
            }
        }
    };
}

int_arg!(
    /// A scaled price as an i64 (the book's `update_raw`).
    RawPrice(i64), "a scaled price", "a signed 64-bit integer", amount_error
);
int_arg!(
    /// A scaled size as an i64; the caller checks the sign.
    RawSize(i64), "a scaled size", "a signed 64-bit integer", amount_error
);
int_arg!(
    /// A venue update id (u64).
    UpdateId(u64), "an update id", "between 0 and 2**64-1", argument_error
);
int_arg!(
    /// A count of levels or messages.
    Count(usize), "a count", "a non-negative integer below 2**64", argument_error
);
int_arg!(
    /// An order's price, quantity or fee, in scaled units (i64).
    OrderInt(i64), "an order's price, quantity or fee", "a signed 64-bit integer", order_input_error
);
int_arg!(
    /// How many definitive "not found" answers make an order LOST (the core refuses 0).
    LostAfter(u32), "lost_after", "between 1 and 2**32-1", order_input_error
);
int_arg!(
    /// A client-id generator's length limit.
    MaxLen(usize), "max_len", "a non-negative integer below 2**64", client_id_arg_error
);
int_arg!(
    /// Microseconds (a client-id nonce or the clock).
    Micros(u64), "a nonce or time in microseconds", "between 0 and 2**64-1", client_id_arg_error
);

/// A number of decimals: 0..=18 (10^18 is the largest power of ten an i64 holds).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Decimals(pub u32);

impl<'a, 'py> FromPyObject<'a, 'py> for Decimals {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        let range = "between 0 and 18";
        let d = extract_in::<i64>(obj, "decimals", range, argument_error)?;
        match u32::try_from(d) {
            Ok(d) if d <= MAX_DECIMALS => Ok(Decimals(d)),
            _ => Err(argument_error(format!("decimals must be {range}, got {d}"))),
        }
    }
}
