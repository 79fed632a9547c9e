//! Test-only hooks (`_C._testing_*`): kernels that panic, so the tests can see that a Rust
//! panic reaching any Python boundary comes out as a Python exception and never aborts the
//! interpreter. Nothing in the package calls them.

use opdispatch_dispatch::{CppFunction, DispatchKeySet, OperatorHandle, Stack, TensorRef};
use pyo3::prelude::*;

use crate::errors::exc::ValueError as PyValueError;
use crate::keys::parse_opt_key;
use crate::module::DispatchModule;

/// The message every testing kernel panics with (the tests look for it).
const MESSAGE: &str = "opdispatch testing kernel panicked on purpose";

fn panicking_native(_t: TensorRef) -> TensorRef {
    panic!("{MESSAGE} (native)")
}

fn panicking_boxed(
    _op: &OperatorHandle,
    _ks: DispatchKeySet,
    _s: &mut Stack,
) -> opdispatch_dispatch::Result<()> {
    panic!("{MESSAGE} (boxed)")
}

fn with_key(mut f: CppFunction, dispatch: &str) -> PyResult<CppFunction> {
    if let Some(k) = parse_opt_key(dispatch)? {
        f = f.dispatch(k);
    }
    Ok(f.debug("testing panic kernel"))
}

/// `_testing_impl_panicking_kernel(lib, name, dispatch, kind)`: registers on `lib` (a
/// `_dispatch_library` object) a kernel for `name` that panics when called: `kind="native"` a
/// typed Rust kernel with signature `(Tensor) -> Tensor`, `kind="boxed"` a boxed one (any
/// schema). It is removed with the library's other registrations.
#[pyfunction]
pub(crate) fn _testing_impl_panicking_kernel(
    py: Python<'_>,
    lib: &Bound<'_, DispatchModule>,
    name: &str,
    dispatch: &str,
    kind: &str,
) -> PyResult<()> {
    let f = match kind {
        "native" => CppFunction::typed(panicking_native as fn(TensorRef) -> TensorRef),
        "boxed" => CppFunction::boxed(panicking_boxed),
        _ => {
            return Err(PyValueError::new_err(format!(
                "unknown kernel kind {kind:?}"
            )))
        }
    };
    let f = with_key(f, dispatch)?;
    lib.borrow().with_lib(py, |l| l.impl_(name, f))
}

/// `_testing_fallback_panicking_kernel(lib, dispatch)`: a boxed fallback for `dispatch` that
/// panics.
#[pyfunction]
pub(crate) fn _testing_fallback_panicking_kernel(
    py: Python<'_>,
    lib: &Bound<'_, DispatchModule>,
    dispatch: &str,
) -> PyResult<()> {
    let f = with_key(CppFunction::boxed(panicking_boxed), dispatch)?;
    lib.borrow().with_lib(py, |l| l.fallback(f))
}

/// `_testing_panic()`: panics in a binding, outside any kernel (pyo3 raises its
/// `PanicException` for it).
#[pyfunction]
pub(crate) fn _testing_panic() {
    panic!("{MESSAGE} (binding)")
}

/// Adds the hooks to `_C`.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_testing_impl_panicking_kernel, m)?)?;
    m.add_function(wrap_pyfunction!(_testing_fallback_panicking_kernel, m)?)?;
    m.add_function(wrap_pyfunction!(_testing_panic, m)?)?;
    Ok(())
}
