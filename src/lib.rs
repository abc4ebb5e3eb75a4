//! `mixmaker._core`: the thin PyO3 face over `mixmaker_core`, plus the Cython modules that
//! build.rs compiles into this same extension.
use pyo3::prelude::*;

mod args;
mod convert;
mod cython_modules;
mod errors;
mod py_book;
mod py_enums;
mod py_orders;
mod py_sync;
mod py_tape;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(m)?;
    py_enums::register(m)?;
    m.add_class::<py_book::PyOrderBook>()?;
    m.add_class::<py_sync::PyBookState>()?;
    m.add_class::<py_sync::PySyncStats>()?;
    m.add_class::<py_sync::PyBookSync>()?;
    m.add_class::<py_sync::PyBookTicker>()?;
    m.add_function(wrap_pyfunction!(py_sync::parse_book_ticker, m)?)?;
    m.add_function(wrap_pyfunction!(py_sync::parse_decimal, m)?)?;
    m.add_function(wrap_pyfunction!(py_sync::format_fixed_many, m)?)?;
    m.add_class::<py_tape::PyTape>()?;
    m.add_class::<py_tape::PyTapePlayer>()?;
    m.add_class::<py_orders::PyOrderSet>()?;
    m.add_class::<py_orders::PyOrderView>()?;
    m.add_class::<py_orders::PyOutcome>()?;
    m.add_class::<py_orders::PyExposure>()?;
    m.add_class::<py_orders::PyClientIdGenerator>()?;
    cython_modules::register(m.py(), m)?;
    Ok(())
}
