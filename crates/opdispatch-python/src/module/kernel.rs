//! The glue that turns a Python callable into a dispatcher kernel.

use opdispatch_dispatch::CppFunction;
use pyo3::prelude::*;

use crate::holder::PythonKernelHolder;
use crate::keys::extract_key;

pub(super) fn is_fallthrough_kernel(py: Python<'_>, func: &Bound<'_, PyAny>) -> PyResult<bool> {
    let ft = py
        .import("opdispatch.library")?
        .getattr("fallthrough_kernel")?;
    Ok(func.is(&ft))
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
    } else if func.hasattr("_opdispatch_grad_gate")? {
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
