//! Typed Python exceptions. Each also derives from the matching builtin (ValueError,
//! RuntimeError) so generic handlers keep working; built with `type()` because
//! `create_exception!` allows one base only.
//!
//! `ArgumentError` is the root of every "bad input" error: a scale, count or id out of range
//! (`ArgumentError` itself), a bad amount (`DecimalFormatError`), a bad order or event
//! (`OrderInputError`), bad client-id settings (`ClientIdError`).
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};

use mixmaker_core::orders::{ClientIdError, OrderError};
use mixmaker_core::{FixedError, MessageError};

use crate::py_enums::{PyOrderEvent, PyOrderState};

static MIXMAKER_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static ARGUMENT_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
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
    let any = |t: &Py<PyType>| t.bind(py).clone().into_any();
    let argument = make(
        py,
        "ArgumentError",
        vec![any(&base), builtins.getattr("ValueError")?],
        "An argument outside what the call accepts (a scale past 18, a negative count or id, a number too large for its type, an unknown name); the root of every bad-input error.",
    )?;
    let specs = [
        (&DECIMAL_FORMAT_ERROR, "DecimalFormatError", vec![any(&argument)], "A price or size that is junk, negative where a size is expected, finer than the book's scale, or out of range."),
        (&MESSAGE_FORMAT_ERROR, "MessageFormatError", vec![any(&base), builtins.getattr("ValueError")?], "Raw exchange bytes that are not a message of the expected shape."),
        (&BOOK_LOCKED_ERROR, "BookLockedError", vec![any(&base), builtins.getattr("RuntimeError")?], "A write to a book that a BookSync owns: only the sync may change it."),
    ];
    for (cell, name, bases, doc) in specs {
        let ty = make(py, name, bases, doc)?;
        m.add(name, ty.bind(py))?;
        let _ = cell.set(py, ty);
    }
    let order_base = make(py, "OrderError", vec![any(&base)], "Base of the order state machine's errors.")?;
    let order_specs = [
        (&INVALID_TRANSITION_ERROR, "InvalidTransitionError", builtins.getattr("ValueError")?, "An event that cannot happen in the order's state (attributes: client_id, state, event). The order is unchanged."),
        (&EXCHANGE_ID_CONFLICT_ERROR, "ExchangeIdConflictError", builtins.getattr("ValueError")?, "The venue acked an order under a second, different exchange id, or under one another order already has."),
        (&UNKNOWN_ORDER_ERROR, "UnknownOrderError", builtins.getattr("KeyError")?, "No order with this client or exchange id."),
        (&ORDER_INPUT_ERROR, "OrderInputError", any(&argument), "A bad order or event: empty id, non-positive price or quantity, a number out of range, an unknown side or event, a fill without a trade id, a duplicate client id, an overflow."),
        (&CLIENT_ID_ERROR, "ClientIdError", any(&argument), "A client id prefix, instance tag, length or nonce the venues would refuse, or ids longer than the venue allows."),
    ];
    for (cell, name, second, doc) in order_specs {
        let ty = make(py, name, vec![any(&order_base), second], doc)?;
        m.add(name, ty.bind(py))?;
        let _ = cell.set(py, ty);
    }
    m.add("OrderError", order_base.bind(py))?;
    let _ = ORDER_ERROR.set(py, order_base);
    m.add("ArgumentError", argument.bind(py))?;
    let _ = ARGUMENT_ERROR.set(py, argument);
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

/// A scale, count, id or name outside what the call accepts.
pub(crate) fn argument_error(msg: String) -> PyErr {
    raise(&ARGUMENT_ERROR, msg)
}

/// A scaled price or size that does not fit its integer type.
pub(crate) fn amount_error(msg: String) -> PyErr {
    raise(&DECIMAL_FORMAT_ERROR, msg)
}

/// An order's number or name out of range (price, quantity, fee, lost_after, side, event).
pub(crate) fn order_input_error(msg: String) -> PyErr {
    raise(&ORDER_INPUT_ERROR, msg)
}

/// A client-id setting out of range (length, nonce).
pub(crate) fn client_id_arg_error(msg: String) -> PyErr {
    raise(&CLIENT_ID_ERROR, msg)
}

pub(crate) fn message_error(e: MessageError) -> PyErr {
    match e {
        MessageError::Scale(_) => argument_error(e.to_string()),
        _ => raise(&MESSAGE_FORMAT_ERROR, e.to_string()),
    }
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
                if let Ok(state) = PyOrderState::object(py, state) {
                    let _ = v.setattr("state", state);
                }
                if let Ok(event) = PyOrderEvent::object(py, event) {
                    let _ = v.setattr("event", event);
                }
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
        | OrderError::Overflow { .. }
        | OrderError::ExposureOverflow { .. } => raise(&ORDER_INPUT_ERROR, msg),
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
