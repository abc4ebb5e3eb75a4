//! Typed Python exceptions. Each also derives from the matching builtin (ValueError,
//! RuntimeError) so generic handlers keep working; built with `type()` because
//! `create_exception!` allows one base only.
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};

use mixmaker_core::orders::{ClientIdError, OrderError};
use mixmaker_core::{FixedError, MessageError};

static MIXMAKER_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static DECIMAL_FORMAT_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static MESSAGE_FORMAT_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static BOOK_LOCKED_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static ORDER_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static INVALID_TRANSITION_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static EXCHANGE_ID_CONFLICT_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static UNKNOWN_ORDER_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static ORDER_INPUT_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static CLIENT_ID_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();

fn make(py: Python<'_>, name: &str, bases: Vec<Bound<'_, PyAny>>, doc: &str) -> PyResult<Py<PyType>> {
    let ns = PyDict::new(py);
    ns.set_item("__module__", "mixmaker._core")?;
    ns.set_item("__doc__", doc)?;
    let ty = py.import("builtins")?.getattr("type")?.call1((name, PyTuple::new(py, bases)?, ns))?;
    Ok(ty.cast_into::<PyType>()?.unbind())
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let builtins = py.import("builtins")?;
    let base = make(py, "MixmakerError", vec![builtins.getattr("Exception")?], "Base of mixmaker's errors.")?;
    let specs = [
        (&DECIMAL_FORMAT_ERROR, "DecimalFormatError", "ValueError", "A price or size that is junk, negative where a size is expected, finer than the book's scale, or out of range."),
        (&MESSAGE_FORMAT_ERROR, "MessageFormatError", "ValueError", "Raw exchange bytes that are not a message of the expected shape."),
        (&BOOK_LOCKED_ERROR, "BookLockedError", "RuntimeError", "A write to a book that a BookSync owns: only the sync may change it."),
    ];
    for (cell, name, builtin, doc) in specs {
        let ty = make(py, name, vec![base.bind(py).clone().into_any(), builtins.getattr(builtin)?], doc)?;
        m.add(name, ty.bind(py))?;
        let _ = cell.set(py, ty);
    }
    let order_base =
        make(py, "OrderError", vec![base.bind(py).clone().into_any()], "Base of the order state machine's errors.")?;
    let order_specs = [
        (&INVALID_TRANSITION_ERROR, "InvalidTransitionError", "ValueError", "An event that cannot happen in the order's state (attributes: client_id, state, event). The order is unchanged."),
        (&EXCHANGE_ID_CONFLICT_ERROR, "ExchangeIdConflictError", "ValueError", "The venue acked an order under a second, different exchange id, or under one another order already has."),
        (&UNKNOWN_ORDER_ERROR, "UnknownOrderError", "KeyError", "No order with this client or exchange id."),
        (&ORDER_INPUT_ERROR, "OrderInputError", "ValueError", "A bad order or event: empty id, non-positive price or quantity, a fill without a trade id, a duplicate client id, an overflow."),
        (&CLIENT_ID_ERROR, "ClientIdError", "ValueError", "A client id prefix or instance tag the venues would refuse, or ids longer than the venue allows."),
    ];
    for (cell, name, builtin, doc) in order_specs {
        let ty = make(py, name, vec![order_base.bind(py).clone().into_any(), builtins.getattr(builtin)?], doc)?;
        m.add(name, ty.bind(py))?;
        let _ = cell.set(py, ty);
    }
    m.add("OrderError", order_base.bind(py))?;
    let _ = ORDER_ERROR.set(py, order_base);
    m.add("MixmakerError", base.bind(py))?;
    let _ = MIXMAKER_ERROR.set(py, base);
    Ok(())
}

fn raise(cell: &PyOnceLock<Py<PyType>>, msg: String) -> PyErr {
    Python::attach(|py| match cell.get(py) {
        Some(ty) => PyErr::from_type(ty.bind(py).clone(), msg),
        None => pyo3::exceptions::PyValueError::new_err(msg),
    })
}

pub(crate) fn decimal_error(what: &str, text: &str, decimals: u32, e: FixedError) -> PyErr {
    let detail = match e {
        FixedError::TooPrecise { .. } => format!("has a non-zero digit past {decimals} decimals"),
        FixedError::Negative => "is negative".to_string(),
        other => other.to_string(),
    };
    raise(&DECIMAL_FORMAT_ERROR, format!("{what} {text:?}: {detail}"))
}

pub(crate) fn message_error(e: MessageError) -> PyErr {
    raise(&MESSAGE_FORMAT_ERROR, e.to_string())
}

pub(crate) fn locked_error() -> PyErr {
    raise(
        &BOOK_LOCKED_ERROR,
        "this book belongs to a BookSync: feed the sync (on_message/on_snapshot) instead of writing to the book"
            .to_string(),
    )
}

pub(crate) fn order_error(e: OrderError) -> PyErr {
    let msg = e.to_string();
    match e {
        OrderError::InvalidTransition { client_id, state, event } => {
            let err = raise(&INVALID_TRANSITION_ERROR, msg);
            Python::attach(|py| {
                let v = err.value(py);
                let _ = v.setattr("client_id", client_id);
                let _ = v.setattr("state", state.name());
                let _ = v.setattr("event", event.name());
            });
            err
        }
        OrderError::ExchangeIdConflict { .. } | OrderError::ExchangeIdTaken { .. } => {
            raise(&EXCHANGE_ID_CONFLICT_ERROR, msg)
        }
        OrderError::UnknownOrder { .. } => raise(&UNKNOWN_ORDER_ERROR, msg),
        OrderError::BadEvent { .. }
        | OrderError::BadOrder { .. }
        | OrderError::DuplicateClientId { .. }
        | OrderError::Overflow { .. } => raise(&ORDER_INPUT_ERROR, msg),
    }
}

/// The name of the Python exception class an order error becomes (for batch results).
pub(crate) fn order_error_name(e: &OrderError) -> &'static str {
    match e {
        OrderError::InvalidTransition { .. } => "InvalidTransitionError",
        OrderError::ExchangeIdConflict { .. } | OrderError::ExchangeIdTaken { .. } => "ExchangeIdConflictError",
        OrderError::UnknownOrder { .. } => "UnknownOrderError",
        _ => "OrderInputError",
    }
}

pub(crate) fn client_id_error(e: ClientIdError) -> PyErr {
    raise(&CLIENT_ID_ERROR, e.to_string())
}
