//! `OrderBook`: the Python face of `mixmaker_core::L2Book`.
//!
//! Readers return None (scalars) or empty results while the book is not ready, i.e. while the
//! BookSync that owns it is not synced: never stale data.
use std::borrow::Cow;

use numpy::{PyArray1, PyArrayMethods, PyReadonlyArray1};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;

use mixmaker_core::fixed::{format_fixed, pow10, to_f64, FixedError};
use mixmaker_core::{BookSide, L2Book};

use crate::args::{Count, Decimals, RawPrice, RawSize, UpdateId};
use crate::convert::{to_levels, to_scaled, to_size};
use crate::errors::{argument_error, decimal_error, locked_error};

type F64Arrays<'py> =
    (Bound<'py, PyArray1<f64>>, Bound<'py, PyArray1<f64>>, Bound<'py, PyArray1<f64>>, Bound<'py, PyArray1<f64>>);
type I64Arrays<'py> =
    (Bound<'py, PyArray1<i64>>, Bound<'py, PyArray1<i64>>, Bound<'py, PyArray1<i64>>, Bound<'py, PyArray1<i64>>);

#[pyclass(module = "mixmaker._core", name = "OrderBook")]
pub struct PyOrderBook {
    pub(crate) inner: L2Book,
    /// False while an owning BookSync is not synced.
    pub(crate) ready: bool,
    /// Owned by a BookSync: writes from Python are refused.
    pub(crate) locked: bool,
}

impl PyOrderBook {
    pub(crate) fn create(price_decimals: Decimals, size_decimals: Decimals) -> PyResult<Self> {
        let inner = L2Book::new(price_decimals.0, size_decimals.0)
            .map_err(|e| argument_error(format!("bad book scale: {e}")))?;
        Ok(PyOrderBook { inner, ready: true, locked: false })
    }

    fn writable(&self) -> PyResult<()> {
        if self.locked {
            Err(locked_error())
        } else {
            Ok(())
        }
    }

    fn ready_side(&self, is_bid: bool) -> Option<&BookSide> {
        self.ready.then(|| self.inner.side(is_bid))
    }

    fn px(&self, raw: i64) -> f64 {
        to_f64(raw, self.inner.price_decimals())
    }

    fn sz(&self, raw: i64) -> f64 {
        to_f64(raw, self.inner.size_decimals())
    }

    fn pair(&self, level: Option<(i64, i64)>) -> Option<(f64, f64)> {
        level.map(|(p, s)| (self.px(p), self.sz(s)))
    }

    fn levels(&self, is_bid: bool, n: Option<Count>) -> Vec<(i64, i64)> {
        match self.ready_side(is_bid) {
            Some(side) => side.iter().take(n.map_or(usize::MAX, |n| n.0)).collect(),
            None => Vec::new(),
        }
    }

    fn volume_arg(&self, volume: &Bound<'_, PyAny>) -> PyResult<i64> {
        let v = to_size(volume, self.inner.size_decimals(), "volume")?;
        if v == 0 {
            return Err(decimal_error("volume", &volume.to_string(), self.inner.size_decimals(), FixedError::Empty));
        }
        Ok(v)
    }
}

/// An `is_bid` column (numpy bool or int8: one byte, nonzero for a bid) as bytes, read in
/// place when contiguous and copied once when strided.
fn side_bytes<'a, T: numpy::Element + Copy + Into<i16>>(a: &'a PyReadonlyArray1<'_, T>) -> Cow<'a, [u8]> {
    const { assert!(std::mem::size_of::<T>() == 1) };
    match a.as_slice() {
        // SAFETY: T is one byte (checked above), and every byte is a valid u8.
        Ok(v) => Cow::Borrowed(unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), v.len()) }),
        Err(_) => Cow::Owned(a.as_array().iter().map(|&b| (b.into() != 0) as u8).collect()),
    }
}

#[pymethods]
impl PyOrderBook {
    #[new]
    #[pyo3(signature = (price_decimals, size_decimals))]
    fn new(price_decimals: Decimals, size_decimals: Decimals) -> PyResult<Self> {
        Self::create(price_decimals, size_decimals)
    }

    /// Replace the book with these levels; `bids`/`asks` are (price, size) pairs.
    #[pyo3(signature = (bids, asks, update_id = UpdateId(0)), text_signature = "($self, bids, asks, update_id=0)")]
    fn apply_snapshot(
        &mut self,
        bids: &Bound<'_, PyAny>,
        asks: &Bound<'_, PyAny>,
        update_id: UpdateId,
    ) -> PyResult<()> {
        self.writable()?;
        let (pd, sd) = (self.inner.price_decimals(), self.inner.size_decimals());
        // Convert everything first: bad input leaves the book as it was.
        let b = to_levels(bids, pd, sd)?;
        let a = to_levels(asks, pd, sd)?;
        self.inner.load(&b, &a, update_id.0);
        Ok(())
    }

    /// Set one level's absolute size; 0 deletes it.
    fn update(&mut self, is_bid: bool, price: &Bound<'_, PyAny>, size: &Bound<'_, PyAny>) -> PyResult<()> {
        self.writable()?;
        let p = to_scaled(price, self.inner.price_decimals(), "price")?;
        let s = to_size(size, self.inner.size_decimals(), "size")?;
        self.inner.set(is_bid, p, s);
        Ok(())
    }

    /// `update` with already-scaled integers: the fast single-call path.
    fn update_raw(&mut self, is_bid: bool, price: RawPrice, size: RawSize) -> PyResult<()> {
        self.writable()?;
        let (RawPrice(price), RawSize(size)) = (price, size);
        if size < 0 {
            return Err(decimal_error("size", &size.to_string(), 0, FixedError::Negative));
        }
        self.inner.set(is_bid, price, size);
        Ok(())
    }

    /// Apply many levels at once from numpy arrays (is_bid: bool/int8, prices/sizes: int64).
    fn update_many(
        &mut self,
        is_bid: &Bound<'_, PyAny>,
        prices: PyReadonlyArray1<'_, i64>,
        sizes: PyReadonlyArray1<'_, i64>,
    ) -> PyResult<()> {
        self.writable()?;
        // A type check first: a failed `extract` builds a Python exception, about 50 ns.
        let bools = match is_bid.cast::<PyArray1<bool>>() {
            Ok(a) => Some(a.try_readonly()?),
            Err(_) => None,
        };
        let bytes = match is_bid.cast::<PyArray1<i8>>() {
            Ok(a) if bools.is_none() => Some(a.try_readonly()?),
            _ => None,
        };
        let sides = match (&bools, &bytes) {
            (Some(a), _) => side_bytes(a),
            (_, Some(a)) => side_bytes(a),
            _ => return Err(PyTypeError::new_err("is_bid must be a 1-d numpy array of bool or int8")),
        };
        let n_sides = sides.len();
        let (p, s) = (prices.as_array(), sizes.as_array());
        if n_sides != p.len() || p.len() != s.len() {
            return Err(argument_error(format!(
                "update_many: arrays differ in length (is_bid {n_sides}, prices {}, sizes {})",
                p.len(),
                s.len()
            )));
        }
        // Contiguous input (the usual case) is read in place; strided views are copied once.
        let p = p.as_slice().map_or_else(|| p.to_vec().into(), Cow::Borrowed);
        let s = s.as_slice().map_or_else(|| s.to_vec().into(), Cow::Borrowed);
        // Validate before touching the book: a bad batch changes nothing. An OR of all sizes
        // is negative iff one is, and, unlike an early-exit search, it vectorizes.
        if s.iter().fold(0i64, |acc, &x| acc | x) < 0 {
            let i = s.iter().position(|&x| x < 0).expect("a negative size");
            return Err(decimal_error("size", &format!("{} at index {i}", s[i]), 0, FixedError::Negative));
        }
        self.inner.set_columns(&sides, &p, &s);
        Ok(())
    }

    /// Remove every level (update_id back to 0).
    fn clear(&mut self) -> PyResult<()> {
        self.writable()?;
        self.inner.clear();
        Ok(())
    }

    fn best_bid(&self) -> Option<(f64, f64)> {
        self.pair(self.ready_side(true)?.best())
    }

    fn best_ask(&self) -> Option<(f64, f64)> {
        self.pair(self.ready_side(false)?.best())
    }

    fn best_bid_raw(&self) -> Option<(i64, i64)> {
        self.ready_side(true)?.best()
    }

    fn best_ask_raw(&self) -> Option<(i64, i64)> {
        self.ready_side(false)?.best()
    }

    /// Up to `n` bid levels as (price, size) floats, best first (all when n is None).
    #[pyo3(signature = (n = None))]
    fn bids(&self, n: Option<Count>) -> Vec<(f64, f64)> {
        self.levels(true, n).into_iter().map(|(p, s)| (self.px(p), self.sz(s))).collect()
    }

    #[pyo3(signature = (n = None))]
    fn asks(&self, n: Option<Count>) -> Vec<(f64, f64)> {
        self.levels(false, n).into_iter().map(|(p, s)| (self.px(p), self.sz(s))).collect()
    }

    #[pyo3(signature = (n = None))]
    fn bids_raw(&self, n: Option<Count>) -> Vec<(i64, i64)> {
        self.levels(true, n)
    }

    #[pyo3(signature = (n = None))]
    fn asks_raw(&self, n: Option<Count>) -> Vec<(i64, i64)> {
        self.levels(false, n)
    }

    /// Top `n` levels as numpy arrays: (bid_px, bid_sz, ask_px, ask_sz), float64.
    fn top<'py>(&self, py: Python<'py>, n: Count) -> F64Arrays<'py> {
        let (pd, sd) = (pow10(self.inner.price_decimals()) as f64, pow10(self.inner.size_decimals()) as f64);
        let split = |is_bid| {
            let lv = self.levels(is_bid, Some(n));
            let px: Vec<f64> = lv.iter().map(|l| l.0 as f64 / pd).collect();
            let sz: Vec<f64> = lv.iter().map(|l| l.1 as f64 / sd).collect();
            (PyArray1::from_vec(py, px), PyArray1::from_vec(py, sz))
        };
        let (bp, bs) = split(true);
        let (ap, asz) = split(false);
        (bp, bs, ap, asz)
    }

    /// Top `n` levels as int64 numpy arrays of scaled integers.
    fn top_raw<'py>(&self, py: Python<'py>, n: Count) -> I64Arrays<'py> {
        let split = |is_bid| {
            let lv = self.levels(is_bid, Some(n));
            let (px, sz): (Vec<i64>, Vec<i64>) = lv.into_iter().unzip();
            (PyArray1::from_vec(py, px), PyArray1::from_vec(py, sz))
        };
        let (bp, bs) = split(true);
        let (ap, asz) = split(false);
        (bp, bs, ap, asz)
    }

    /// The size of the level at `price` (scaled) when it lies within the best `within` levels
    /// of its side, 0 when no level sits there (or the side is empty or not readable), None
    /// when it lies beyond those levels: what a lookup in `top_raw(within)` answers, without
    /// building the arrays.
    fn level_within_raw(&self, is_bid: bool, price: i64, within: usize) -> Option<i64> {
        let Some(side) = self.ready_side(is_bid) else {
            return Some(0);
        };
        let mut seen = 0;
        for (p, s) in side.iter().take(within) {
            seen += 1;
            if p == price {
                return Some(s);
            }
            if (is_bid && p < price) || (!is_bid && p > price) {
                return Some(0);
            }
        }
        if seen == 0 {
            Some(0)
        } else {
            None
        }
    }

    fn mid(&self) -> Option<f64> {
        self.ready.then(|| self.inner.mid_f64()).flatten()
    }

    fn spread(&self) -> Option<f64> {
        let pd = pow10(self.inner.price_decimals()) as f64;
        self.ready.then(|| self.inner.spread().map(|s| s as f64 / pd)).flatten()
    }

    /// Total size at `price` or better on that side.
    fn volume_to_price(&self, is_bid: bool, price: &Bound<'_, PyAny>) -> PyResult<Option<f64>> {
        let p = to_scaled(price, self.inner.price_decimals(), "price")?;
        Ok(self
            .ready_side(is_bid)
            .map(|side| side.volume_to_price(p) as f64 / pow10(self.inner.size_decimals()) as f64))
    }

    /// Price of the level where the cumulative size from the best reaches `volume`.
    fn price_for_volume(&self, is_bid: bool, volume: &Bound<'_, PyAny>) -> PyResult<Option<f64>> {
        let v = self.volume_arg(volume)?;
        Ok(self.ready_side(is_bid).and_then(|side| side.price_for_volume(v)).map(|p| self.px(p)))
    }

    /// Volume-weighted average price of taking `volume` from that side (None if too thin).
    fn vwap_for_volume(&self, is_bid: bool, volume: &Bound<'_, PyAny>) -> PyResult<Option<f64>> {
        let v = self.volume_arg(volume)?;
        let pd = pow10(self.inner.price_decimals()) as f64;
        Ok(self
            .ready_side(is_bid)
            .and_then(|side| side.notional_for_volume(v))
            .map(|notional| notional as f64 / v as f64 / pd))
    }

    /// A price as this book's scaled integer (exact; errors if finer than the scale).
    fn to_price_raw(&self, price: &Bound<'_, PyAny>) -> PyResult<i64> {
        to_scaled(price, self.inner.price_decimals(), "price")
    }

    fn to_size_raw(&self, size: &Bound<'_, PyAny>) -> PyResult<i64> {
        to_size(size, self.inner.size_decimals(), "size")
    }

    #[getter]
    fn price_decimals(&self) -> u32 {
        self.inner.price_decimals()
    }

    #[getter]
    fn size_decimals(&self) -> u32 {
        self.inner.size_decimals()
    }

    /// Level counts are readers too: 0 while the book is not ready.
    #[getter]
    fn bid_levels(&self) -> usize {
        self.ready_side(true).map_or(0, BookSide::len)
    }

    #[getter]
    fn ask_levels(&self) -> usize {
        self.ready_side(false).map_or(0, BookSide::len)
    }

    #[getter]
    fn update_id(&self) -> u64 {
        self.inner.update_id()
    }

    #[getter]
    fn is_ready(&self) -> bool {
        self.ready
    }

    /// Best bid >= best ask (crossed or locked), evaluated on every read in O(1).
    #[getter]
    fn is_crossed(&self) -> bool {
        self.inner.is_crossed()
    }

    fn __repr__(&self) -> String {
        let (pd, sd) = (self.inner.price_decimals(), self.inner.size_decimals());
        let fmt = |l: Option<(i64, i64)>| {
            l.map_or("-".to_string(), |(p, s)| format!("{}x{}", format_fixed(p, pd), format_fixed(s, sd)))
        };
        format!(
            "OrderBook(price_decimals={pd}, size_decimals={sd}, bids={}, asks={}, best_bid={}, best_ask={}, update_id={}, ready={})",
            self.inner.bids.len(),
            self.inner.asks.len(),
            fmt(self.inner.best_bid()),
            fmt(self.inner.best_ask()),
            self.inner.update_id(),
            self.ready
        )
    }
}
