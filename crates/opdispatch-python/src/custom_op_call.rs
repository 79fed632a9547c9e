//! `_C._CustomOpCall`: the base class of `CustomOpDef`. Calling a custom op calls its
//! `OpOverload`; this base stores that target natively and forwards the vectorcall as is, so
//! `opdef(x)` costs one native hop more than `opdef._opoverload(x)` (the attribute lookup
//! and method binding of a Python-level forward were a tenth of the whole call).

use std::sync::OnceLock;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple, PyType};
use pyo3::{PyTraverseError, PyVisit};

#[pyclass(name = "_CustomOpCall", module = "opdispatch._C", frozen, subclass)]
pub(crate) struct PyCustomOpCall {
    /// CPython's vectorcall entry (the type's `tp_vectorcall_offset` points here).
    vectorcall: ffi::vectorcallfunc,
    /// What a call runs: set once, when the op has been defined.
    target: OnceLock<Py<PyAny>>,
}

fn not_defined() -> PyErr {
    crate::errors::runtime_error("this custom op is not defined yet (it has no OpOverload to call)")
}

#[pymethods]
impl PyCustomOpCall {
    /// Takes (and ignores) the subclass's constructor arguments: `__init__` reads them.
    #[new]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn py_new(_args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>) -> Self {
        Self {
            vectorcall: custom_op_vectorcall,
            target: OnceLock::new(),
        }
    }

    /// Sets what calls run (once).
    fn _set_call_target(&self, target: Py<PyAny>) -> PyResult<()> {
        self.target
            .set(target)
            .map_err(|_| crate::errors::runtime_error("the call target is already set"))
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn __call__(
        &self,
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        let target = self.target.get().ok_or_else(not_defined)?;
        target.bind(py).call(args, kwargs).map(Bound::unbind)
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        if let Some(t) = self.target.get() {
            visit.call(t)?;
        }
        Ok(())
    }
}

crate::vectorcall::vectorcall_entry!(custom_op_vectorcall => custom_op_vectorcall_body);

/// # Safety
/// Vectorcall's contract, `callable` a `_CustomOpCall` (only those carry this function).
unsafe fn custom_op_vectorcall_body(
    py: Python<'_>,
    callable: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargsf: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> PyResult<*mut ffi::PyObject> {
    // SAFETY: see the contract. The arguments go on unchanged, with the caller's flags: the
    // target may use the slot before `args` exactly when our caller allowed it.
    unsafe {
        let slf = pyo3::Borrowed::from_ptr(py, callable).cast_unchecked::<PyCustomOpCall>();
        let target = slf.get().target.get().ok_or_else(not_defined)?;
        let r = ffi::PyObject_Vectorcall(target.as_ptr(), args, nargsf as usize, kwnames);
        Bound::from_owned_ptr_or_err(py, r).map(Bound::into_ptr)
    }
}

/// Turns on vectorcall for a Python subclass of `_CustomOpCall` that does not override
/// `__call__` (CPython before 3.12 does not pass the flag on to heap subtypes); returns
/// whether the subclass has it.
#[pyfunction]
fn _enable_custom_op_vectorcall(cls: &Bound<'_, PyType>) -> PyResult<bool> {
    crate::module::enable_subclass_vectorcall(cls, &cls.py().get_type::<PyCustomOpCall>())
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<PyCustomOpCall>()?;
    m.add_function(wrap_pyfunction!(_enable_custom_op_vectorcall, m)?)?;
    let probe = Bound::new(py, PyCustomOpCall::py_new(&PyTuple::empty(py), None))?;
    crate::vectorcall::install_vectorcall_slot(
        &py.get_type::<PyCustomOpCall>(),
        probe.as_any(),
        &probe.get().vectorcall,
        0,
    );
    Ok(())
}
