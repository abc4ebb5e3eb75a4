//! The Cython modules compiled into this extension by build.rs: each one is initialised
//! (single-phase) when `mixmaker._core` loads and registered as `mixmaker._<stem>`.
use pyo3::prelude::*;
use pyo3::types::PyModule;

include!(concat!(env!("OUT_DIR"), "/cython_modules.rs"));

pub(crate) fn register(py: Python<'_>, parent: &Bound<'_, PyModule>) -> PyResult<()> {
    let modules = py.import("sys")?.getattr("modules")?;
    // The `mixmaker` package is mid-import here; it is already in sys.modules.
    let package = modules.get_item("mixmaker").ok();
    for (qualified, attr, init) in CYTHON_MODULES {
        // SAFETY: `init` is a Cython-generated single-phase PyInit function; it returns a new
        // reference to the module or NULL with an exception set.
        let module = unsafe { Bound::from_owned_ptr_or_err(py, init())? };
        // Single-phase moduledefs carry only the last name component.
        module.setattr("__name__", *qualified)?;
        modules.set_item(*qualified, &module)?;
        if let Some(pkg) = &package {
            pkg.setattr(*attr, &module)?;
        }
        parent.add(*attr, module)?;
    }
    Ok(())
}
