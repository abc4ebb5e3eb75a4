//! The core's vocabularies as Python enums: `OrderState`, `OrderEvent`, `Side`, `SyncRule`.
//!
//! Each variant is named in Python's style (`Side.BUY`); `.value` is the name the core, the
//! journal and the venues use (`"buy"`), `.name` the variant's (`"BUY"`), and `ALL` lists the
//! variants in the core's order. Methods return the type's own variant objects, so
//! `view.state is OrderState.OPEN` holds. Arguments accept the enum or its value.
//!
//! A variant equals only itself (`Side.BUY == "buy"` is False: compare enums, not names);
//! `str()` is the value, for text and logs.
use pyo3::prelude::*;
use pyo3::pyclass::CompareOp;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyString, PyTuple};

use mixmaker_core::orders::{EventKind, OrderState, Side};
use mixmaker_core::Rule;

macro_rules! py_enum {
    (
        $(#[$doc:meta])*
        $py:ident as $pyname:literal for $core:ident { $($variant:ident = $core_variant:ident),+ $(,)? }
    ) => {
        $(#[$doc])*
        #[pyclass(module = "mixmaker._core", name = $pyname, frozen)]
        #[derive(Clone, Copy, PartialEq, Eq, Debug)]
        #[allow(non_camel_case_types, clippy::upper_case_acronyms)]
        pub enum $py {
            $($variant),+
        }

        impl $py {
            const NAMES: &'static [&'static str] = &[$(stringify!($variant)),+];

            pub(crate) fn core(self) -> $core {
                match self {
                    $($py::$variant => $core::$core_variant),+
                }
            }

            fn of(c: $core) -> Self {
                match c {
                    $($core::$core_variant => $py::$variant),+
                }
            }

            /// The type's own variant objects, fetched once: returning one is an incref.
            fn members(py: Python<'_>) -> PyResult<&[Py<$py>]> {
                static MEMBERS: PyOnceLock<Vec<Py<$py>>> = PyOnceLock::new();
                let v = MEMBERS.get_or_try_init(py, || {
                    let ty = py.get_type::<$py>();
                    Self::NAMES
                        .iter()
                        .map(|n| Ok(ty.getattr(*n)?.cast_into::<$py>()?.unbind()))
                        .collect::<PyResult<Vec<_>>>()
                })?;
                Ok(v.as_slice())
            }

            /// The variant object of a core value.
            pub(crate) fn object(py: Python<'_>, c: $core) -> PyResult<Py<$py>> {
                Ok(Self::members(py)?[Self::of(c) as usize].clone_ref(py))
            }

            /// The enum or its value string; `None` for anything else.
            pub(crate) fn parse(obj: &Bound<'_, PyAny>) -> Option<$core> {
                if let Ok(v) = obj.cast::<$py>() {
                    return Some(v.get().core());
                }
                obj.cast::<PyString>().ok().and_then(|s| $core::from_name(s.to_str().ok()?))
            }

            /// The accepted values, for error messages.
            pub(crate) fn choices() -> String {
                let all = [$($core::$core_variant),+];
                all.iter().map(|c| format!("{:?}", c.name())).collect::<Vec<_>>().join(", ")
            }

            /// Sets `ALL` on the type (after it is built: a class attribute cannot name its own
            /// variants while the type is being made).
            pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
                let py = m.py();
                m.add_class::<$py>()?;
                let all = PyTuple::new(py, Self::members(py)?.iter().map(|o| o.clone_ref(py)))?;
                py.get_type::<$py>().setattr("ALL", all)
            }
        }

        #[pymethods]
        impl $py {
            /// The name the core, the journal and the venues use.
            #[getter]
            fn value(&self) -> &'static str {
                self.core().name()
            }

            #[getter]
            fn name(&self) -> &'static str {
                Self::NAMES[*self as usize]
            }

            /// The variant for `value` (its value string, or the variant itself).
            #[staticmethod]
            fn from_value(py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<Py<$py>> {
                match Self::parse(value) {
                    Some(c) => Self::object(py, c),
                    None => Err(crate::errors::argument_error(format!(
                        "{} must be one of {}, got {}",
                        $pyname,
                        Self::choices(),
                        value.repr()?
                    ))),
                }
            }

            fn __repr__(&self) -> String {
                format!("{}.{}", $pyname, self.name())
            }

            fn __str__(&self) -> &'static str {
                self.value()
            }

            // Equal only to the same variant: anything else (a name string too) is not ours.
            fn __richcmp__(&self, other: &Bound<'_, PyAny>, op: CompareOp) -> PyResult<Py<PyAny>> {
                let py = other.py();
                let Ok(o) = other.cast::<$py>() else {
                    return Ok(py.NotImplemented());
                };
                let same = *o.get() == *self;
                match op {
                    CompareOp::Eq => Ok(pyo3::types::PyBool::new(py, same).to_owned().into_any().unbind()),
                    CompareOp::Ne => Ok(pyo3::types::PyBool::new(py, !same).to_owned().into_any().unbind()),
                    _ => Ok(py.NotImplemented()),
                }
            }

            // The value's hash: consistent with equality (one variant, one value).
            fn __hash__(&self, py: Python<'_>) -> PyResult<isize> {
                PyString::new(py, self.value()).hash()
            }
        }
    };
}

py_enum! {
    /// Where an order is in its life (the core's transition table).
    PyOrderState as "OrderState" for OrderState {
        INITIALIZED = Initialized,
        PENDING_CREATE = PendingCreate,
        OPEN = Open,
        PARTIALLY_FILLED = PartiallyFilled,
        PENDING_CANCEL = PendingCancel,
        CANCELED = Canceled,
        FILLED = Filled,
        FAILED = Failed,
        EXPIRED = Expired,
        LOST = Lost,
    }
}

py_enum! {
    /// What happened to an order (the events `OrderSet.apply` takes).
    PyOrderEvent as "OrderEvent" for EventKind {
        SUBMITTED = Submitted,
        ACCEPTED = Accepted,
        REJECTED = Rejected,
        FILL = Fill,
        CANCEL_REQUESTED = CancelRequested,
        CANCELED = Canceled,
        CANCEL_REJECTED = CancelRejected,
        NOT_FOUND = NotFound,
        EXPIRED = Expired,
    }
}

py_enum! {
    /// An order's side.
    PySide as "Side" for Side {
        BUY = Buy,
        SELL = Sell,
    }
}

py_enum! {
    /// The venue sequence rule a `BookSync` follows.
    PySyncRule as "SyncRule" for Rule {
        BINANCE_SPOT = BinanceSpot,
        BINANCE_FUTURES = BinanceFutures,
        BYBIT = Bybit,
        SEQUENTIAL = Sequential,
    }
}

/// Adds the enums to the module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    PyOrderState::register(m)?;
    PyOrderEvent::register(m)?;
    PySide::register(m)?;
    PySyncRule::register(m)
}
