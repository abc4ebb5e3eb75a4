//! `BookSync`, `BookState`, `SyncStats` and the raw-message helpers for Python.
//!
//! The hot path is `BookSync.on_message(bytes)`: the bytes are borrowed, parsed and applied in
//! Rust, and the answer is one of three cached `BookState` objects: nothing is allocated per
//! level or per message on the Python side.
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyInt, PyTuple};

use mixmaker_core::fixed::{format_fixed, parse_lenient};
use mixmaker_core::{BookSync, Levels, Rule, State, Stats};

use crate::args::{Count, Decimals, UpdateId};
use crate::convert::to_levels;
use crate::errors::{argument_error, decimal_error, message_error};
use crate::py_book::PyOrderBook;
use crate::py_enums::PySyncRule;

#[pyclass(module = "mixmaker._core", name = "BookState", eq, eq_int, frozen, hash)]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
pub enum PyBookState {
    AWAITING_SNAPSHOT,
    SYNCED,
    DESYNCED,
}

#[pymethods]
impl PyBookState {
    #[getter]
    fn name(&self) -> &'static str {
        self.state().name()
    }

    fn __repr__(&self) -> String {
        format!("BookState.{}", self.state().name())
    }
}

impl PyBookState {
    fn state(self) -> State {
        match self {
            PyBookState::AWAITING_SNAPSHOT => State::AwaitingSnapshot,
            PyBookState::SYNCED => State::Synced,
            PyBookState::DESYNCED => State::Desynced,
        }
    }
}

/// The type's own variant objects, fetched once: returning one is an incref, not an
/// allocation, and `sync.state is BookState.SYNCED` holds.
static STATES: PyOnceLock<[Py<PyBookState>; 3]> = PyOnceLock::new();

fn state_obj(py: Python<'_>, s: State) -> PyResult<Py<PyBookState>> {
    let states = STATES.get_or_try_init(py, || -> PyResult<_> {
        let ty = py.get_type::<PyBookState>();
        let get =
            |name: &str| -> PyResult<Py<PyBookState>> { Ok(ty.getattr(name)?.cast_into::<PyBookState>()?.unbind()) };
        Ok([get("AWAITING_SNAPSHOT")?, get("SYNCED")?, get("DESYNCED")?])
    })?;
    let i = match s {
        State::AwaitingSnapshot => 0,
        State::Synced => 1,
        State::Desynced => 2,
    };
    Ok(states[i].clone_ref(py))
}

/// A copy of the sync counters at one moment.
#[pyclass(module = "mixmaker._core", name = "SyncStats", frozen, get_all)]
pub struct PySyncStats {
    applied: u64,
    stale: u64,
    gaps: u64,
    crossed: u64,
    parse_errors: u64,
    resyncs: u64,
    snapshots: u64,
    snapshots_rejected: u64,
    ignored: u64,
    buffered: usize,
    buffer_dropped: u64,
}

impl PySyncStats {
    fn new(s: Stats, buffered: usize) -> Self {
        PySyncStats {
            applied: s.applied,
            stale: s.stale,
            gaps: s.gaps,
            crossed: s.crossed,
            parse_errors: s.parse_errors,
            resyncs: s.resyncs,
            snapshots: s.snapshots,
            snapshots_rejected: s.snapshots_rejected,
            ignored: s.ignored,
            buffered,
            buffer_dropped: s.buffer_dropped,
        }
    }

    fn items(&self) -> [(&'static str, u64); 11] {
        [
            ("applied", self.applied),
            ("stale", self.stale),
            ("gaps", self.gaps),
            ("crossed", self.crossed),
            ("parse_errors", self.parse_errors),
            ("resyncs", self.resyncs),
            ("snapshots", self.snapshots),
            ("snapshots_rejected", self.snapshots_rejected),
            ("ignored", self.ignored),
            ("buffered", self.buffered as u64),
            ("buffer_dropped", self.buffer_dropped),
        ]
    }
}

#[pymethods]
impl PySyncStats {
    fn as_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (k, v) in self.items() {
            d.set_item(k, v)?;
        }
        Ok(d)
    }

    fn __repr__(&self) -> String {
        let body: Vec<String> = self.items().iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("SyncStats({})", body.join(", "))
    }
}

/// Keeps one `OrderBook` true under one venue rule, fed raw exchange bytes.
#[pyclass(module = "mixmaker._core", name = "BookSync")]
pub struct PyBookSync {
    pub(crate) core: BookSync,
    pub(crate) book: Py<PyOrderBook>,
}

impl PyBookSync {
    fn finish(&self, py: Python<'_>, book: &mut PyOrderBook, s: State) -> PyResult<Py<PyBookState>> {
        book.ready = s == State::Synced;
        state_obj(py, s)
    }
}

#[pymethods]
impl PyBookSync {
    /// The rules' names, in `SyncRule.ALL`'s order (kept for callers that want strings).
    #[classattr]
    #[allow(non_snake_case)]
    fn RULES(py: Python<'_>) -> PyResult<Py<PyTuple>> {
        Ok(PyTuple::new(py, Rule::ALL.map(Rule::name))?.unbind())
    }

    #[new]
    #[pyo3(signature = (rule, price_decimals, size_decimals, max_buffer = Count(10_000)), text_signature = "(rule, price_decimals, size_decimals, max_buffer=10000)")]
    fn new(
        py: Python<'_>,
        rule: &Bound<'_, PyAny>,
        price_decimals: Decimals,
        size_decimals: Decimals,
        max_buffer: Count,
    ) -> PyResult<Self> {
        let Some(rule) = PySyncRule::parse(rule) else {
            let choices = PySyncRule::choices();
            return Err(argument_error(format!("unknown sync rule {}; choose one of {choices}", rule.repr()?)));
        };
        let Count(max_buffer) = max_buffer;
        if max_buffer == 0 {
            return Err(argument_error("max_buffer must be at least 1".to_string()));
        }
        let mut book = PyOrderBook::create(price_decimals, size_decimals)?;
        book.ready = false;
        book.locked = true;
        Ok(PyBookSync { core: BookSync::new(rule, max_buffer), book: Py::new(py, book)? })
    }

    /// Feed one raw WebSocket message (bytes). Returns the new state; never raises on bad
    /// data: an unreadable message desyncs the book and is counted.
    fn on_message(&mut self, py: Python<'_>, raw: &[u8]) -> PyResult<Py<PyBookState>> {
        let mut book = self.book.bind(py).borrow_mut();
        let s = self.core.on_message(&mut book.inner, raw);
        self.finish(py, &mut book, s)
    }

    /// Feed a raw REST depth snapshot (bytes).
    fn on_snapshot(&mut self, py: Python<'_>, raw: &[u8]) -> PyResult<Py<PyBookState>> {
        let mut book = self.book.bind(py).borrow_mut();
        let s = self.core.on_snapshot(&mut book.inner, raw);
        self.finish(py, &mut book, s)
    }

    /// Feed an already-parsed snapshot (e.g. from ccxt): (price, size) pairs and its update id.
    fn on_snapshot_levels(
        &mut self,
        py: Python<'_>,
        bids: &Bound<'_, PyAny>,
        asks: &Bound<'_, PyAny>,
        update_id: UpdateId,
    ) -> PyResult<Py<PyBookState>> {
        let mut book = self.book.bind(py).borrow_mut();
        let (pd, sd) = (book.inner.price_decimals(), book.inner.size_decimals());
        let levels = Levels { bids: to_levels(bids, pd, sd)?, asks: to_levels(asks, pd, sd)? };
        let s = self.core.on_snapshot_levels(&mut book.inner, update_id.0, &levels);
        self.finish(py, &mut book, s)
    }

    /// Forget the book and the buffer: back to AWAITING_SNAPSHOT (e.g. after a reconnect).
    fn reset(&mut self, py: Python<'_>) {
        let mut book = self.book.bind(py).borrow_mut();
        self.core.reset(&mut book.inner);
        book.ready = false;
    }

    #[getter]
    fn state(&self, py: Python<'_>) -> PyResult<Py<PyBookState>> {
        state_obj(py, self.core.state())
    }

    #[getter]
    fn book(&self, py: Python<'_>) -> Py<PyOrderBook> {
        self.book.clone_ref(py)
    }

    #[getter]
    fn rule(&self, py: Python<'_>) -> PyResult<Py<PySyncRule>> {
        PySyncRule::object(py, self.core.rule())
    }

    #[getter]
    fn last_update_id(&self) -> Option<u64> {
        self.core.last_update_id()
    }

    #[getter]
    fn stats(&self) -> PySyncStats {
        PySyncStats::new(self.core.stats(), self.core.buffered())
    }

    /// Why the book last left SYNCED (None while synced).
    #[getter]
    fn desync_reason(&self) -> Option<String> {
        if self.core.state() == State::Synced {
            return None;
        }
        self.core.desync_reason().map(|r| r.to_string())
    }

    fn __repr__(&self) -> String {
        format!(
            "BookSync(rule={:?}, state={}, last_update_id={}, buffered={})",
            self.core.rule().name(),
            self.core.state().name(),
            self.core.last_update_id().map_or("None".to_string(), |u| u.to_string()),
            self.core.buffered()
        )
    }
}

/// A best bid/offer message: update id and scaled prices and sizes.
#[pyclass(module = "mixmaker._core", name = "BookTicker", frozen, get_all)]
pub struct PyBookTicker {
    update_id: u64,
    bid_price: i64,
    bid_size: i64,
    ask_price: i64,
    ask_size: i64,
}

#[pymethods]
impl PyBookTicker {
    fn __repr__(&self) -> String {
        format!(
            "BookTicker(update_id={}, bid_price={}, bid_size={}, ask_price={}, ask_size={})",
            self.update_id, self.bid_price, self.bid_size, self.ask_price, self.ask_size
        )
    }
}

/// Parse a Binance `bookTicker` message; None for any other message.
#[pyfunction]
pub fn parse_book_ticker(
    raw: &[u8],
    price_decimals: Decimals,
    size_decimals: Decimals,
) -> PyResult<Option<PyBookTicker>> {
    let t = mixmaker_core::parse_book_ticker(raw, price_decimals.0, size_decimals.0).map_err(message_error)?;
    Ok(t.map(|t| PyBookTicker {
        update_id: t.update_id,
        bid_price: t.bid_price,
        bid_size: t.bid_size,
        ask_price: t.ask_price,
        ask_size: t.ask_size,
    }))
}

/// Exact decimal text → `value × 10^decimals` (exponents allowed; no rounding, ever).
#[pyfunction]
pub fn parse_decimal(text: &str, decimals: Decimals) -> PyResult<i64> {
    let Decimals(decimals) = decimals;
    parse_lenient(text.as_bytes(), decimals).map_err(|e| decimal_error("value", text, decimals, e))
}

/// `value × 10^-decimals` as exact decimal text for each of `values` (a report's series of
/// thousands); None when one is not a plain int or does not fit an i64 (the caller, `mixmaker.money`,
/// formats those itself).
#[pyfunction]
pub fn format_fixed_many(values: &Bound<'_, PyAny>, decimals: Decimals) -> PyResult<Option<Vec<String>>> {
    let mut out = Vec::with_capacity(values.len().unwrap_or(0));
    for v in values.try_iter()? {
        let v = v?;
        if !v.is_exact_instance_of::<PyInt>() {
            return Ok(None);
        }
        let Ok(x) = v.extract::<i64>() else {
            return Ok(None);
        };
        out.push(format_fixed(x, decimals.0));
    }
    Ok(Some(out))
}
