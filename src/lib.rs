//! `mixmaker._core`: the thin PyO3 face over `mixmaker_core`, plus the Cython modules.
use pyo3::prelude::*;

mod cython_modules;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    cython_modules::register(m.py(), m)?;
    Ok(())
}
