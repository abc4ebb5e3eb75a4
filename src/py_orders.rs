//! `OrderSet`, `OrderView`, `Outcome`, `Exposure` and `ClientIdGenerator`: the Python face of
//! `mixmaker_core::orders`. States, events and sides are the enums of `py_enums` (an event or
//! side argument may also be its value string, `"fill"`, `"buy"`); events carry exact integers;
//! `apply_many` applies a list of venue updates in one call.
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::{SystemTime, UNIX_EPOCH};

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::types::PyTuple;

use mixmaker_core::orders::{
    ClientIdGenerator, Event, EventKind, Exposure, Fill, IdKind, Order, OrderError, OrderSet, Outcome, Side,
    DEFAULT_LOST_AFTER,
};

use crate::args::{LostAfter, MaxLen, Micros, OrderInt};
use crate::errors::{client_id_error, order_error, order_error_name, order_input_error};
use crate::py_enums::{PyOrderEvent, PyOrderState, PySide};

/// What one event did. `applied` is False when the event was ignored (`ignored` says why) or,
/// in a batch, failed (`error` names the exception class, `message` says why).
#[pyclass(module = "mixmaker._core", name = "Outcome", frozen, get_all)]
pub struct PyOutcome {
    applied: bool,
    before: Option<Py<PyOrderState>>,
    after: Option<Py<PyOrderState>>,
    ignored: Option<&'static str>,
    error: Option<&'static str>,
    message: Option<String>,
}

#[pymethods]
impl PyOutcome {
    fn __repr__(&self) -> String {
        let name = |s: &Option<Py<PyOrderState>>| s.as_ref().map_or("?", |s| s.get().core().name());
        match (self.applied, self.ignored, self.error) {
            (true, _, _) => format!("Outcome({} -> {})", name(&self.before), name(&self.after)),
            (false, Some(why), _) => format!("Outcome(ignored: {why})"),
            (false, _, Some(err)) => format!("Outcome({err}: {})", self.message.as_deref().unwrap_or("")),
            _ => "Outcome()".to_string(),
        }
    }
}

impl PyOutcome {
    fn new(py: Python<'_>, o: Outcome) -> PyResult<Self> {
        Ok(match o {
            Outcome::Applied { from, to } => PyOutcome {
                applied: true,
                before: Some(PyOrderState::object(py, from)?),
                after: Some(PyOrderState::object(py, to)?),
                ignored: None,
                error: None,
                message: None,
            },
            Outcome::Ignored(why) => PyOutcome {
                applied: false,
                before: None,
                after: None,
                ignored: Some(why.name()),
                error: None,
                message: None,
            },
        })
    }
}

impl From<&OrderError> for PyOutcome {
    fn from(e: &OrderError) -> Self {
        PyOutcome {
            applied: false,
            before: None,
            after: None,
            ignored: None,
            error: Some(order_error_name(e)),
            message: Some(e.to_string()),
        }
    }
}

/// A read-only copy of one order: exact integers in the market's scale.
#[pyclass(module = "mixmaker._core", name = "OrderView", frozen, get_all)]
pub struct PyOrderView {
    client_id: String,
    exchange_id: Option<String>,
    symbol: String,
    side: Py<PySide>,
    price: i64,
    quantity: i64,
    state: Py<PyOrderState>,
    /// Where a rejected cancel returns; None unless the order is PENDING_CANCEL.
    previous: Option<Py<PyOrderState>>,
    filled: i64,
    remaining: i64,
    overfill: i64,
    /// Σ price × qty of the fills (price scale × size scale).
    cost: i128,
    avg_price: Option<i64>,
    fees: Vec<(String, i64)>,
    fill_count: usize,
    not_found: u32,
    lost_after: u32,
    late_fills: u32,
    is_live: bool,
}

#[pymethods]
impl PyOrderView {
    fn __repr__(&self) -> String {
        format!(
            "OrderView({} {} {} {}@{} {} filled={})",
            self.client_id,
            self.symbol,
            self.side.get().core().name(),
            self.quantity,
            self.price,
            self.state.get().core().name(),
            self.filled
        )
    }
}

impl PyOrderView {
    fn new(py: Python<'_>, o: &Order) -> PyResult<Self> {
        Ok(PyOrderView {
            client_id: o.client_id().to_string(),
            exchange_id: o.exchange_id().map(str::to_string),
            symbol: o.symbol().to_string(),
            side: PySide::object(py, o.side())?,
            price: o.price(),
            quantity: o.quantity(),
            state: PyOrderState::object(py, o.state())?,
            previous: o.previous().map(|p| PyOrderState::object(py, p)).transpose()?,
            filled: o.filled(),
            remaining: o.remaining(),
            overfill: o.overfill(),
            cost: o.cost(),
            avg_price: o.avg_price(),
            fees: o.fees().to_vec(),
            fill_count: o.fill_count(),
            not_found: o.not_found(),
            lost_after: o.lost_after(),
            late_fills: o.late_fills(),
            is_live: o.state().is_live(),
        })
    }
}

/// Open and in-flight quantity of one market (see `mixmaker_core::orders::Exposure`).
#[pyclass(module = "mixmaker._core", name = "Exposure", frozen, get_all)]
pub struct PyExposure {
    buy_qty: i128,
    sell_qty: i128,
    buy_notional: i128,
    sell_notional: i128,
    orders: usize,
}

#[pymethods]
impl PyExposure {
    fn __repr__(&self) -> String {
        format!(
            "Exposure(buy_qty={}, sell_qty={}, buy_notional={}, sell_notional={}, orders={})",
            self.buy_qty, self.sell_qty, self.buy_notional, self.sell_notional, self.orders
        )
    }
}

impl From<Exposure> for PyExposure {
    fn from(x: Exposure) -> Self {
        PyExposure {
            buy_qty: x.buy_qty,
            sell_qty: x.sell_qty,
            buy_notional: x.buy_notional,
            sell_notional: x.sell_notional,
            orders: x.orders,
        }
    }
}

/// One `apply_many` item, `(client_id or None, event, exchange_id, trade_id, price, qty, fee,
/// fee_asset, is_maker)`, as the id to look up, how to look it up, and the event.
fn update_item(i: usize, item: &Bound<'_, PyAny>) -> PyResult<(PyBackedStr, IdKind, Event)> {
    let py = item.py();
    let t = item
        .cast::<PyTuple>()
        .ok()
        .filter(|t| t.len() == 9)
        .ok_or_else(|| PyTypeError::new_err(format!("update {i}: expected a 9-tuple, got {}", item.get_type())))?;
    // Name the item in the error, keeping the error's class (TypeError, OrderInputError).
    let at = |e: PyErr| PyErr::from_type(e.get_type(py), format!("update {i}: {}", e.value(py)));
    let field = |k: usize| t.get_borrowed_item(k);
    let cid: Option<PyBackedStr> = field(0)?.extract().map_err(at)?;
    let eid: Option<PyBackedStr> = field(2)?.extract().map_err(at)?;
    let (id, kind) = match (cid, &eid) {
        (Some(c), _) => (c, IdKind::Client),
        // PyBackedStr is not Clone: borrow the same string a second time.
        (None, Some(_)) => (field(2)?.extract().map_err(at)?, IdKind::Exchange),
        (None, None) => return Err(order_input_error(format!("update {i}: needs a client_id or an exchange_id"))),
    };
    let event = event_arg(&field(1)?.to_owned()).map_err(at)?;
    let tid: Option<PyBackedStr> = field(3)?.extract().map_err(at)?;
    let asset: PyBackedStr = field(7)?.extract().map_err(at)?;
    let num = |k: usize| -> PyResult<i64> { Ok(field(k)?.extract::<OrderInt>().map_err(at)?.0) };
    let ev = make_event(
        event,
        eid.as_deref(),
        tid.as_deref(),
        num(4)?,
        num(5)?,
        num(6)?,
        &asset,
        field(8)?.extract().map_err(at)?,
    )
    .map_err(|m| order_input_error(format!("update {i}: {m}")))?;
    Ok((id, kind, ev))
}

/// An event argument: an `OrderEvent` or its value (`"fill"`).
fn event_arg(v: &Bound<'_, PyAny>) -> PyResult<EventKind> {
    PyOrderEvent::parse(v).ok_or_else(|| {
        let shown = v.repr().map(|r| r.to_string()).unwrap_or_default();
        order_input_error(format!("unknown order event {shown}; one of {}", PyOrderEvent::choices()))
    })
}

/// A side argument: a `Side` or its value (`"buy"`).
fn side_arg(v: &Bound<'_, PyAny>) -> PyResult<Side> {
    PySide::parse(v).ok_or_else(|| {
        let shown = v.repr().map(|r| r.to_string()).unwrap_or_default();
        order_input_error(format!("side must be one of {}, not {shown}", PySide::choices()))
    })
}

#[allow(clippy::too_many_arguments)]
fn make_event(
    kind: EventKind,
    exchange_id: Option<&str>,
    trade_id: Option<&str>,
    price: i64,
    qty: i64,
    fee: i64,
    fee_asset: &str,
    is_maker: bool,
) -> Result<Event, String> {
    Ok(match kind {
        EventKind::Submitted => Event::Submitted,
        EventKind::Accepted => match exchange_id {
            Some(id) if !id.is_empty() => Event::Accepted { exchange_id: id.to_string() },
            _ => return Err("an 'accepted' event needs exchange_id".to_string()),
        },
        EventKind::Rejected => Event::Rejected,
        EventKind::Fill => Event::Fill(Fill {
            trade_id: trade_id.unwrap_or_default().to_string(),
            price,
            qty,
            fee,
            fee_asset: fee_asset.to_string(),
            is_maker,
        }),
        EventKind::CancelRequested => Event::CancelRequested,
        EventKind::Canceled => Event::Canceled,
        EventKind::CancelRejected => Event::CancelRejected,
        EventKind::NotFound => Event::NotFound,
        EventKind::Expired => Event::Expired,
    })
}

/// The orders of one venue account.
#[pyclass(module = "mixmaker._core", name = "OrderSet")]
pub struct PyOrderSet {
    inner: OrderSet,
}

#[pymethods]
impl PyOrderSet {
    #[new]
    fn new() -> Self {
        PyOrderSet { inner: OrderSet::new() }
    }

    /// Starts tracking an order in state INITIALIZED. `side` is a `Side` or its value.
    #[pyo3(
        signature = (client_id, symbol, side, price, quantity, lost_after = LostAfter(DEFAULT_LOST_AFTER)),
        text_signature = "($self, client_id, symbol, side, price, quantity, lost_after=3)"
    )]
    fn add(
        &mut self,
        client_id: &str,
        symbol: &str,
        side: &Bound<'_, PyAny>,
        price: OrderInt,
        quantity: OrderInt,
        lost_after: LostAfter,
    ) -> PyResult<()> {
        let side = side_arg(side)?;
        let order = Order::new(client_id, symbol, side, price.0, quantity.0, lost_after.0).map_err(order_error)?;
        self.inner.insert(order).map_err(order_error)
    }

    /// Applies one event (an `OrderEvent` or its value); raises InvalidTransitionError (and the
    /// other OrderErrors) with the order unchanged.
    #[pyo3(
        signature = (client_id, event, exchange_id = None, trade_id = None, price = OrderInt(0), qty = OrderInt(0), fee = OrderInt(0), fee_asset = "", is_maker = false),
        text_signature = "($self, client_id, event, exchange_id=None, trade_id=None, price=0, qty=0, fee=0, fee_asset='', is_maker=False)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn apply(
        &mut self,
        py: Python<'_>,
        client_id: &str,
        event: &Bound<'_, PyAny>,
        exchange_id: Option<&str>,
        trade_id: Option<&str>,
        price: OrderInt,
        qty: OrderInt,
        fee: OrderInt,
        fee_asset: &str,
        is_maker: bool,
    ) -> PyResult<PyOutcome> {
        let kind = event_arg(event)?;
        let ev = make_event(kind, exchange_id, trade_id, price.0, qty.0, fee.0, fee_asset, is_maker)
            .map_err(order_input_error)?;
        let outcome = self.inner.apply(client_id, &ev).map_err(order_error)?;
        PyOutcome::new(py, outcome)
    }

    /// Applies a list of updates in order, in one call. Each item is
    /// `(client_id or None, event, exchange_id, trade_id, price, qty, fee, fee_asset, is_maker)`;
    /// with no client id the order is found by exchange id. An item's error is reported in its
    /// Outcome and does not stop the rest; a malformed item (not such a 9-tuple: TypeError; an
    /// unknown event, no id, a number out of range: OrderInputError) raises before anything is
    /// applied.
    fn apply_many(&mut self, py: Python<'_>, updates: &Bound<'_, PyAny>) -> PyResult<Vec<Py<PyOutcome>>> {
        // Everything is converted first, so a malformed item applies nothing. Ids are borrowed
        // from the Python strings, never copied.
        let mut items = Vec::with_capacity(updates.len().unwrap_or(0));
        for (i, item) in updates.try_iter()?.enumerate() {
            items.push(update_item(i, &item?)?);
        }
        // Outcomes are frozen and repeat (a few dozen distinct ones): each is made once per
        // call and shared, instead of allocating one Python object per update.
        let mut made: Vec<(Outcome, Py<PyOutcome>)> = Vec::new();
        let mut out = Vec::with_capacity(items.len());
        for (id, kind, ev) in &items {
            out.push(match self.inner.apply_by(id, *kind, ev) {
                Ok(o) => match made.iter().find(|(k, _)| *k == o) {
                    Some((_, shared)) => shared.clone_ref(py),
                    None => {
                        let shared = Py::new(py, PyOutcome::new(py, o)?)?;
                        made.push((o, shared.clone_ref(py)));
                        shared
                    }
                },
                Err(e) => Py::new(py, PyOutcome::from(&e))?,
            });
        }
        Ok(out)
    }

    fn get(&self, py: Python<'_>, client_id: &str) -> PyResult<Option<PyOrderView>> {
        self.inner.get(client_id).map(|o| PyOrderView::new(py, o)).transpose()
    }

    fn state(&self, py: Python<'_>, client_id: &str) -> PyResult<Py<PyOrderState>> {
        match self.inner.get(client_id) {
            Some(o) => PyOrderState::object(py, o.state()),
            None => Err(order_error(OrderError::UnknownOrder { id: client_id.to_string() })),
        }
    }

    fn client_id_of(&self, exchange_id: &str) -> Option<String> {
        self.inner.client_id_of(exchange_id).map(str::to_string)
    }

    fn has_trade(&self, client_id: &str, trade_id: &str) -> bool {
        self.inner.get(client_id).is_some_and(|o| o.has_trade(trade_id))
    }

    fn exposure(&self, symbol: &str) -> PyResult<PyExposure> {
        self.inner.exposure(symbol).map(PyExposure::from).map_err(order_error)
    }

    /// Client ids of the orders that may still trade (optionally of one symbol), sorted.
    #[pyo3(signature = (symbol = None))]
    fn live_ids(&self, symbol: Option<&str>) -> Vec<String> {
        let mut ids: Vec<String> = self
            .inner
            .iter()
            .filter(|o| o.state().is_live() && symbol.is_none_or(|s| o.symbol() == s))
            .map(|o| o.client_id().to_string())
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Fills that arrived after their order's cancel was requested, over every order kept.
    fn late_fills(&self) -> u64 {
        self.inner.iter().map(|o| u64::from(o.late_fills())).sum()
    }

    fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.inner.iter().map(|o| o.client_id().to_string()).collect();
        ids.sort_unstable();
        ids
    }

    /// Drops a closed order from memory; False (and nothing dropped) if it may still trade.
    fn forget(&mut self, client_id: &str) -> bool {
        self.inner.forget(client_id)
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    fn __contains__(&self, client_id: &str) -> bool {
        self.inner.get(client_id).is_some()
    }

    fn __repr__(&self) -> String {
        let live = self.inner.iter().filter(|o| o.state().is_live()).count();
        format!("OrderSet({} orders, {} live)", self.inner.len(), live)
    }
}

fn random_instance() -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut n = RandomState::new().hash_one((std::process::id(), SystemTime::now()));
    (0..4)
        .map(|_| {
            let c = ALPHABET[(n % 62) as usize] as char;
            n /= 62;
            c
        })
        .collect()
}

fn now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

/// Client order ids: `prefix + 9 base62 chars of microseconds + 4 chars of instance`.
#[pyclass(module = "mixmaker._core", name = "ClientIdGenerator")]
pub struct PyClientIdGenerator {
    inner: ClientIdGenerator,
}

#[pymethods]
impl PyClientIdGenerator {
    #[new]
    #[pyo3(
        signature = (prefix, max_len, instance = None, start_after = Micros(0)),
        text_signature = "(prefix, max_len, instance=None, start_after=0)"
    )]
    fn new(prefix: &str, max_len: MaxLen, instance: Option<String>, start_after: Micros) -> PyResult<Self> {
        let instance = instance.unwrap_or_else(random_instance);
        let inner = ClientIdGenerator::new(prefix, max_len.0, &instance, start_after.0).map_err(client_id_error)?;
        Ok(PyClientIdGenerator { inner })
    }

    /// A new id; `now_us` defaults to the wall clock.
    #[pyo3(signature = (now_us = None))]
    fn next(&mut self, now_us: Option<Micros>) -> PyResult<String> {
        self.inner.next(now_us.map_or_else(self::now_us, |t| t.0)).map_err(client_id_error)
    }

    fn nonce_of(&self, client_id: &str) -> Option<u64> {
        self.inner.nonce_of(client_id)
    }

    fn is_ours(&self, client_id: &str) -> bool {
        self.inner.is_ours(client_id)
    }

    #[getter]
    fn prefix(&self) -> &str {
        self.inner.prefix()
    }

    #[getter]
    fn instance(&self) -> &str {
        self.inner.instance()
    }

    #[getter]
    fn last(&self) -> u64 {
        self.inner.last()
    }

    #[getter]
    fn length(&self) -> usize {
        self.inner.len()
    }

    fn __repr__(&self) -> String {
        format!(
            "ClientIdGenerator(prefix={:?}, instance={:?}, last={})",
            self.inner.prefix(),
            self.inner.instance(),
            self.inner.last()
        )
    }
}
