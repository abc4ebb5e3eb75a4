//! `Tape` and `TapePlayer` for Python: a recording prepared for replay (see
//! `mixmaker_core::tape`), and a cursor that replays it into a `BookSync` in Rust, handing
//! control back only at the times and events the backtest asked for.
//!
//! Errors from building or loading a tape are `ValueError`s with a `kind` attribute
//! ("untimed", "bad_trade", "bad_file") and `line` (1-based, 0 when not about a line); the
//! Python layer turns them into its recording errors. I/O errors are `OSError`s.
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::sync::Arc;

use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyList;

use mixmaker_core::sync::BookSync;
use mixmaker_core::tape::{Event, Hold, Player, Tape, TapeBuilder, TapeError, Watch};
use mixmaker_core::{L2Book, Rule};

use crate::py_enums::PySyncRule;
use crate::py_sync::PyBookSync;

fn tape_error(e: TapeError) -> PyErr {
    let (kind, line) = match &e {
        TapeError::Untimed { line } => ("untimed", *line),
        TapeError::BadTrade { line, .. } => ("bad_trade", *line),
        TapeError::BadFile(_) => ("bad_file", 0),
        TapeError::Io(io) => return PyOSError::new_err(io.to_string()),
    };
    let err = PyValueError::new_err(e.to_string());
    Python::attach(|py| {
        let v = err.value(py);
        let _ = v.setattr("kind", kind);
        let _ = v.setattr("line", line);
    });
    err
}

/// A `SyncRule` or its value string.
fn rule_of(rule: &Bound<'_, PyAny>) -> PyResult<Rule> {
    match PySyncRule::parse(rule) {
        Some(r) => Ok(r),
        None => Err(PyValueError::new_err(format!(
            "unknown sync rule {}; choose one of {}",
            rule.repr()?,
            PySyncRule::choices()
        ))),
    }
}

fn check_decimals(pd: u32, sd: u32) -> PyResult<()> {
    for d in [pd, sd] {
        mixmaker_core::fixed::check_scale(d).map_err(|e| PyValueError::new_err(format!("bad book scale: {e}")))?;
    }
    Ok(())
}

/// A recording prepared for replay: immutable, shareable between players.
#[pyclass(module = "mixmaker._core", name = "Tape", frozen)]
pub struct PyTape {
    inner: Arc<Tape>,
}

#[pymethods]
impl PyTape {
    /// Read `<ts_ns> <json>` lines from a file (gzip or plain) in one pass, without the GIL.
    #[staticmethod]
    #[pyo3(signature = (path, rule, price_decimals, size_decimals, keep_tickers = false))]
    fn build(
        py: Python<'_>,
        path: &str,
        rule: &Bound<'_, PyAny>,
        price_decimals: u32,
        size_decimals: u32,
        keep_tickers: bool,
    ) -> PyResult<Self> {
        let rule = rule_of(rule)?;
        check_decimals(price_decimals, size_decimals)?;
        let path = path.to_string();
        let tape = py
            .detach(move || TapeBuilder::build_file(&path, rule, price_decimals, size_decimals, keep_tickers))
            .map_err(tape_error)?;
        Ok(PyTape { inner: Arc::new(tape) })
    }

    /// The same from the recording's bytes (already decompressed), e.g. a zip member.
    #[staticmethod]
    #[pyo3(signature = (data, rule, price_decimals, size_decimals, keep_tickers = false))]
    fn from_bytes(
        data: &[u8],
        rule: &Bound<'_, PyAny>,
        price_decimals: u32,
        size_decimals: u32,
        keep_tickers: bool,
    ) -> PyResult<Self> {
        let rule = rule_of(rule)?;
        check_decimals(price_decimals, size_decimals)?;
        let mut b = TapeBuilder::new(rule, price_decimals, size_decimals, keep_tickers);
        b.push_lines(&mut &data[..]).map_err(tape_error)?;
        Ok(PyTape { inner: Arc::new(b.finish()) })
    }

    /// Load a tape file: (tape, the source fingerprint it was saved with).
    #[staticmethod]
    fn load(py: Python<'_>, path: &str) -> PyResult<(Self, Vec<u8>)> {
        let path = path.to_string();
        let (tape, source) = py
            .detach(move || -> Result<(Tape, Vec<u8>), TapeError> {
                Tape::read_from(&mut BufReader::with_capacity(1 << 20, File::open(&path)?))
            })
            .map_err(tape_error)?;
        Ok((PyTape { inner: Arc::new(tape) }, source))
    }

    /// Only the source fingerprint of a tape file (to tell whether it is still fresh).
    #[staticmethod]
    fn read_source(path: &str) -> PyResult<Vec<u8>> {
        let mut f = BufReader::new(File::open(path).map_err(|e| PyOSError::new_err(e.to_string()))?);
        Tape::read_source(&mut f).map_err(tape_error)
    }

    /// Write the tape to `path` with `source`, the fingerprint of its recording.
    fn save(&self, py: Python<'_>, path: &str, source: &[u8]) -> PyResult<()> {
        let tape = Arc::clone(&self.inner);
        let (path, source) = (path.to_string(), source.to_vec());
        py.detach(move || -> std::io::Result<()> {
            let mut w = BufWriter::with_capacity(1 << 20, File::create(&path)?);
            tape.write_to(&mut w, &source)?;
            w.flush()?;
            w.into_inner().map_err(|e| e.into_error())?.sync_all()
        })
        .map_err(|e| PyOSError::new_err(e.to_string()))
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    #[getter]
    fn rule(&self) -> String {
        self.inner.rule_name.clone()
    }

    #[getter]
    fn price_decimals(&self) -> u32 {
        self.inner.price_decimals
    }

    #[getter]
    fn size_decimals(&self) -> u32 {
        self.inner.size_decimals
    }

    /// Market trades in the recording.
    #[getter]
    fn trades(&self) -> usize {
        self.inner.trades()
    }

    /// Book levels held (diffs and snapshots).
    #[getter]
    fn levels(&self) -> usize {
        self.inner.level_count()
    }

    /// Receive time of the first and the last line (None when empty).
    #[getter]
    fn first_ts(&self) -> Option<i64> {
        self.inner.ts.first().copied()
    }

    #[getter]
    fn last_ts(&self) -> Option<i64> {
        self.inner.ts.last().copied()
    }

    /// bookTickers kept by `keep_tickers=True`: (line index, update id, bid, bid size, ask, ask size).
    fn tickers(&self) -> Vec<(u64, i64, i64, i64, i64, i64)> {
        let t = &self.inner;
        t.tk_line.iter().zip(&t.tk).map(|(&l, k)| (l, k[0], k[1], k[2], k[3], k[4])).collect()
    }

    fn __repr__(&self) -> String {
        let t = &self.inner;
        format!(
            "Tape(rule={:?}, lines={}, book_messages={}, levels={}, trades={})",
            t.rule_name,
            t.len(),
            t.first.len(),
            t.level_count(),
            t.trades()
        )
    }
}

/// Replays a tape into a `BookSync`. `next(stop_ns)` runs in Rust until a line's time reaches
/// `stop_ns` (TIME: the line is held, and consumed by the next call), a trade or a book change
/// that may touch a watched order (TRADE, BOOK), or the end (END).
#[pyclass(module = "mixmaker._core", name = "TapePlayer")]
pub struct PyTapePlayer {
    tape: Arc<Tape>,
    sync: Py<PyBookSync>,
    player: Player,
    watch: Watch,
}

#[pymethods]
impl PyTapePlayer {
    #[classattr]
    const END: u8 = Event::End as u8;
    #[classattr]
    const TIME: u8 = Event::Time as u8;
    #[classattr]
    const TRADE: u8 = Event::Trade as u8;
    #[classattr]
    const BOOK: u8 = Event::Book as u8;

    #[new]
    #[pyo3(signature = (tape, sync, keep_trades = true))]
    fn new(py: Python<'_>, tape: &PyTape, sync: Py<PyBookSync>, keep_trades: bool) -> PyResult<Self> {
        {
            let s = sync.bind(py).borrow();
            let b = s.book.bind(py).borrow();
            let t = &tape.inner;
            if (b.inner.price_decimals(), b.inner.size_decimals()) != (t.price_decimals, t.size_decimals)
                || s.core.rule().name() != t.rule_name
            {
                return Err(PyValueError::new_err(format!(
                    "the tape is {} at price {} dp, size {} dp; the sync is {} at {} dp, {} dp",
                    t.rule_name,
                    t.price_decimals,
                    t.size_decimals,
                    s.core.rule().name(),
                    b.inner.price_decimals(),
                    b.inner.size_decimals()
                )));
            }
        }
        let player = Player::new(keep_trades);
        Ok(PyTapePlayer { tape: Arc::clone(&tape.inner), sync, player, watch: Watch::default() })
    }

    fn next(&mut self, py: Python<'_>, stop_ns: i64) -> u8 {
        self.replay(py, |p, tape, sync, book, watch| p.run(tape, sync, book, stop_ns, watch))
    }

    /// `next` with the clock boundary `tick_ns` as the time stop (`due_ns` when it comes first),
    /// passing every boundary before `until_ns` at which the book is synced with best bid `bid`
    /// and best ask `ask` (and the last trade at `last_trade_price`, when given): the caller's
    /// decision stands there. `skipped` says how many passed; the next boundary is then
    /// `tick_ns + skipped * step_ns`.
    #[pyo3(signature = (tick_ns, step_ns, due_ns, until_ns, bid, ask, last_trade_price = None))]
    #[allow(clippy::too_many_arguments)]
    fn next_held(
        &mut self,
        py: Python<'_>,
        tick_ns: i64,
        step_ns: i64,
        due_ns: i64,
        until_ns: i64,
        bid: i64,
        ask: i64,
        last_trade_price: Option<i64>,
    ) -> PyResult<u8> {
        if step_ns <= 0 {
            return Err(PyValueError::new_err(format!("step_ns must be positive, got {step_ns}")));
        }
        let hold = Hold { tick_ns, step_ns, until_ns, bid, ask, last_trade_price };
        Ok(self.replay(py, |p, tape, sync, book, watch| p.run_held(tape, sync, book, due_ns, hold, watch)))
    }

    /// Clock boundaries the last `next_held` passed.
    #[getter]
    fn skipped(&self) -> u64 {
        self.player.skipped
    }

    /// Our live orders: (price, size queued ahead) of each buy and of each sell.
    fn watch(&mut self, bids: Vec<(i64, i64)>, asks: Vec<(i64, i64)>) {
        self.watch.bids = bids;
        self.watch.asks = asks;
    }

    /// Market trades consumed since the last call: [(ts_ns, price, size)], oldest first.
    fn take_trades<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::new(py, self.player.trades.iter())?;
        self.player.trades.clear();
        Ok(out)
    }

    /// Time of the line the last event is about.
    #[getter]
    fn ts(&self) -> i64 {
        self.player.ts
    }

    /// The last consumed line had first stopped on time (the caller already advanced to it).
    #[getter]
    fn held(&self) -> bool {
        self.player.held
    }

    /// (price, size, buyer is maker) of the last TRADE.
    #[getter]
    fn trade(&self) -> (i64, i64, bool) {
        self.player.trade
    }

    /// Price of the last market trade consumed, or None before the first (whether or not the
    /// trades themselves are kept).
    #[getter]
    fn last_trade_price(&self) -> Option<i64> {
        self.player.last_trade_price
    }

    /// Lines consumed so far.
    #[getter]
    fn position(&self) -> usize {
        self.player.pos
    }

    #[getter]
    fn market_trades(&self) -> u64 {
        self.player.market_trades
    }

    fn __len__(&self) -> usize {
        self.tape.len()
    }
}

impl PyTapePlayer {
    /// Runs the player on the sync and its book (borrowed for the call) and says what stopped it.
    fn replay(
        &mut self,
        py: Python<'_>,
        run: impl FnOnce(&mut Player, &Tape, &mut BookSync, &mut L2Book, &Watch) -> Event,
    ) -> u8 {
        let sync = self.sync.bind(py);
        let mut s = sync.borrow_mut();
        let book = s.book.clone_ref(py);
        let mut b = book.bind(py).borrow_mut();
        let ev = run(&mut self.player, &self.tape, &mut s.core, &mut b.inner, &self.watch);
        b.ready = s.core.state() == mixmaker_core::State::Synced;
        ev as u8
    }
}
