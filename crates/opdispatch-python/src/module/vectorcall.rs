//! The vectorcall entry of `_DispatchOperatorHandle` (calls without building a tuple/dict).

use opdispatch_dispatch::Dispatcher;
use pyo3::prelude::*;

use crate::convert::Kwargs;
use crate::errors::IntoPyResult;
use crate::module::{call_op, PyOperatorHandle};

// The vectorcall function stored in every handle: calls build no tuple or dict and skip
// `tp_call`'s argument parsing.
crate::vectorcall::vectorcall_entry!(pub(super) op_vectorcall => op_vectorcall_body);

/// # Safety
/// Vectorcall's contract: `callable` is an instance of `_DispatchOperatorHandle` (only such
/// objects carry this function), `args` holds the positional arguments followed by one value
/// per name in `kwnames` (a tuple of str, or NULL), all borrowed for the call.
pub(super) unsafe fn op_vectorcall_body(
    py: Python<'_>,
    callable: *mut pyo3::ffi::PyObject,
    args: *const *mut pyo3::ffi::PyObject,
    nargsf: pyo3::ffi::Py_ssize_t,
    kwnames: *mut pyo3::ffi::PyObject,
) -> PyResult<*mut pyo3::ffi::PyObject> {
    let nargs = (nargsf as usize) & !pyo3::ffi::PY_VECTORCALL_ARGUMENTS_OFFSET;
    // SAFETY: see the function's contract; `Bound<PyAny>` has the layout of an object pointer
    // (as in pyo3's `PyTuple::as_slice`), and the slices only borrow the caller's array.
    unsafe {
        let slf = pyo3::Borrowed::from_ptr(py, callable).cast_unchecked::<PyOperatorHandle>();
        let mut names = None;
        let (pos, kwargs) = crate::vectorcall::split_args(py, args, nargs, kwnames, &mut names);
        // `func` is the `OpOverload` (or packet) object itself.
        if let Some(r) = crate::torch_function::maybe_handle(py, slf.as_any(), pos, &kwargs)? {
            return Ok(r.into_ptr());
        }
        if matches!(kwargs, Kwargs::None) {
            if let Some(r) = slf.get().fast_call().try_call(py, pos) {
                return r.map(Py::into_ptr);
            }
        }
        call_op(py, &slf.get().op, None, pos, kwargs).map(Py::into_ptr)
    }
}

/// Gives `_DispatchOperatorHandle` (and so every Python subclass, which inherits the offset)
/// the vectorcall slot. Run once at module init.
pub(crate) fn install_vectorcall(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    // Any handle tells where the field sits inside the object; `aten::add.Tensor` always exists.
    let probe = Bound::new(
        py,
        PyOperatorHandle::new(
            Dispatcher::singleton()
                .find_schema_or_throw("aten::add", "Tensor")
                .py()?,
        ),
    )?;
    let ty = py.get_type::<PyOperatorHandle>();
    crate::vectorcall::install_vectorcall_slot(&ty, probe.as_any(), &probe.get().vectorcall, 0);
    Ok(())
}

/// Turns on vectorcall for a Python subclass of `_DispatchOperatorHandle` that does not
/// override `__call__` (CPython before 3.12 does not pass the flag on to heap subtypes).
#[pyfunction]
pub(crate) fn _enable_vectorcall(cls: &Bound<'_, pyo3::types::PyType>) -> PyResult<bool> {
    enable_subclass_vectorcall(cls, &cls.py().get_type::<PyOperatorHandle>())
}

/// `cls`, a Python subclass of `base` (a native class with the vectorcall slot), gets the
/// vectorcall flag if it inherits `base`'s `tp_call` and offset; returns whether it has it.
pub(crate) fn enable_subclass_vectorcall(
    cls: &Bound<'_, pyo3::types::PyType>,
    base: &Bound<'_, pyo3::types::PyType>,
) -> PyResult<bool> {
    if !cls.is_subclass(base)? {
        return Err(crate::errors::type_error(format!(
            "expected a subclass of {}",
            base.name()?
        )));
    }
    // SAFETY: both type objects are alive; the slots are only read here.
    unsafe {
        let (t, b) = (cls.as_type_ptr(), base.as_type_ptr());
        // The slot values are copied from the base type, so equal addresses mean "inherited".
        let call_addr = |ty: *mut pyo3::ffi::PyTypeObject| (*ty).tp_call.map(|f| f as usize);
        if call_addr(t) != call_addr(b) || (*t).tp_vectorcall_offset != (*b).tp_vectorcall_offset {
            return Ok(false);
        }
        Ok(crate::vectorcall::inherit_vectorcall_flag(t))
    }
}
