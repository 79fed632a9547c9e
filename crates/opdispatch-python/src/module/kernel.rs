//! The glue that turns a Python callable into a dispatcher kernel.

use opdispatch_dispatch::CppFunction;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

use crate::holder::PythonKernelHolder;
use crate::keys::extract_key;

pub(super) fn is_fallthrough_kernel(py: Python<'_>, func: &Bound<'_, PyAny>) -> PyResult<bool> {
    // Looked up once: an import per registration was a visible part of defining a custom op.
    static FALLTHROUGH: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let ft = FALLTHROUGH.get_or_try_init(py, || -> PyResult<_> {
        Ok(py
            .import("opdispatch.library")?
            .getattr("fallthrough_kernel")?
            .unbind())
    })?;
    Ok(func.is(ft.bind(py)))
}

/// Whether `func` is flagged `_opdispatch_grad_gate` (the custom-op layer's Autograd kernels):
/// a Python function with the flag in its `__dict__`, or an instance of a class with the flag
/// in the class's own `__dict__`. Read from the dicts: a failed attribute lookup builds an
/// AttributeError on Python 3.11, a visible part of each registration.
fn is_grad_gated(py: Python<'_>, func: &Bound<'_, PyAny>) -> PyResult<bool> {
    let flag = intern!(py, "_opdispatch_grad_gate");
    if func.is_instance_of::<pyo3::types::PyFunction>() {
        let dict = func.getattr(intern!(py, "__dict__"))?;
        return match dict.cast::<pyo3::types::PyDict>() {
            Ok(d) => d.contains(flag),
            Err(_) => Ok(false),
        };
    }
    // A class's `__dict__` is a mappingproxy; `in` reads it without raising.
    func.get_type()
        .getattr(intern!(py, "__dict__"))?
        .contains(flag)
}

/// The kernel `impl`/`fallback` register for a Python callable at `dispatch`: a real
/// fallthrough for `library.fallthrough_kernel`, otherwise a `PythonKernelHolder`.
pub(super) fn python_kernel(
    py: Python<'_>,
    dispatch: &Bound<'_, PyAny>,
    func: &Bound<'_, PyAny>,
    with_keyset: bool,
    with_op: bool,
) -> PyResult<CppFunction> {
    let k = extract_key(dispatch)?;
    let f = if is_fallthrough_kernel(py, func)? {
        CppFunction::fallthrough()
    } else if let Ok(backend) = func.cast::<crate::custom_ops::PyCustomOpBackend>() {
        // A custom op's device kernel: the dispatcher calls the user function directly.
        CppFunction::boxed(crate::custom_op_kernels::CustomOpBackendKernel {
            backend: backend.clone().unbind(),
        })
    } else if is_grad_gated(py, func)? {
        // A custom op's Autograd kernel: native while nothing requires grad.
        CppFunction::boxed(crate::autograd::GradGatedKernel::new(PythonKernelHolder {
            func: func.clone().unbind(),
            with_keyset,
            with_op,
        }))
    } else {
        CppFunction::boxed(PythonKernelHolder {
            func: func.clone().unbind(),
            with_keyset,
            with_op,
        })
    };
    Ok(f.dispatch(k))
}
