//! The vectorcall entry of `_DispatchOperatorHandle` (calls without building a tuple/dict).

use opdispatch_dispatch::Dispatcher;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use super::*;
use crate::convert::Kwargs;
use crate::errors::IntoPyResult;

/// Calls through vectorcall: positional arguments and keyword values arrive in one array, so a
/// call builds no tuple or dict and skips `tp_call`'s argument parsing.
pub(super) struct OpVectorcall;

impl
    pyo3::impl_::trampoline::MethodDef<
        pyo3::impl_::trampoline::fastcall_cfunction_with_keywords::Func,
    > for OpVectorcall
{
    const METH: pyo3::impl_::trampoline::fastcall_cfunction_with_keywords::Func =
        op_vectorcall_body;
}

/// The vectorcall function stored in every handle. pyo3's fastcall trampoline (which counts the
/// attachment and turns panics and errors into Python exceptions) has vectorcall's signature
/// except that `nargsf` is signed; the flag bit it may carry is masked off in the body.
pub(super) unsafe extern "C" fn op_vectorcall(
    callable: *mut pyo3::ffi::PyObject,
    args: *const *mut pyo3::ffi::PyObject,
    nargsf: usize,
    kwnames: *mut pyo3::ffi::PyObject,
) -> *mut pyo3::ffi::PyObject {
    // SAFETY: CPython calls this with the GIL held and the vectorcall contract's arguments.
    unsafe {
        pyo3::impl_::trampoline::fastcall_cfunction_with_keywords::<OpVectorcall>(
            callable,
            args,
            nargsf as pyo3::ffi::Py_ssize_t,
            kwnames,
        )
    }
}

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
        let nkw = if kwnames.is_null() {
            0
        } else {
            pyo3::ffi::PyTuple_GET_SIZE(kwnames) as usize
        };
        let all: &[Bound<'_, PyAny>] = if nargs + nkw == 0 {
            &[]
        } else {
            std::slice::from_raw_parts(args.cast(), nargs + nkw)
        };
        let (pos, values) = all.split_at(nargs);
        let names;
        let kwargs = if kwnames.is_null() {
            Kwargs::None
        } else {
            names = pyo3::Borrowed::from_ptr(py, kwnames)
                .cast_unchecked::<PyTuple>()
                .to_owned();
            Kwargs::Names {
                names: &names,
                values,
            }
        };
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
    let offset = std::ptr::from_ref(&probe.get().vectorcall) as usize - probe.as_ptr() as usize;
    let ty = py.get_type::<PyOperatorHandle>();
    // SAFETY: the type object is alive (held by `ty`) and not yet shared with other threads'
    // calls in a way that races (module init holds the GIL); every instance has the field.
    unsafe {
        let t = ty.as_type_ptr();
        (*t).tp_vectorcall_offset = offset as pyo3::ffi::Py_ssize_t;
        (*t).tp_flags |= pyo3::ffi::Py_TPFLAGS_HAVE_VECTORCALL;
    }
    Ok(())
}

/// Turns on vectorcall for a Python subclass of `_DispatchOperatorHandle` that does not
/// override `__call__` (CPython before 3.12 does not pass the flag on to heap subtypes).
#[pyfunction]
pub(crate) fn _enable_vectorcall(cls: &Bound<'_, pyo3::types::PyType>) -> PyResult<bool> {
    let py = cls.py();
    let base = py.get_type::<PyOperatorHandle>();
    if !cls.is_subclass(&base)? {
        return Err(crate::errors::type_error(
            "expected a subclass of _DispatchOperatorHandle",
        ));
    }
    // SAFETY: both type objects are alive; reading slots and setting a flag under the GIL.
    unsafe {
        let (t, b) = (cls.as_type_ptr(), base.as_type_ptr());
        // The slot values are copied from the base type, so equal addresses mean "inherited".
        let call_addr = |ty: *mut pyo3::ffi::PyTypeObject| (*ty).tp_call.map(|f| f as usize);
        if call_addr(t) != call_addr(b) || (*t).tp_vectorcall_offset != (*b).tp_vectorcall_offset {
            return Ok(false);
        }
        (*t).tp_flags |= pyo3::ffi::Py_TPFLAGS_HAVE_VECTORCALL;
    }
    Ok(true)
}
