//! The one place where Rust errors become Python exceptions (and back).
//!
//! `DispatchError` variants map to the exception PyTorch raises for the same failure
//! (TORCH_CHECK -> RuntimeError, TORCH_CHECK_NOT_IMPLEMENTED -> NotImplementedError, ...).
//! A Python exception raised inside a kernel travels through the dispatcher as
//! `DispatchError::External(PyKernelError)` and comes out as the very same exception object.

use std::sync::Arc;

use opdispatch_dispatch::DispatchError;
use opdispatch_tensor::TensorError;
use pyo3::prelude::*;

/// Exception classes raised by the dispatcher itself. Each subclasses the builtin PyTorch
/// raises for the same failure and keeps its name (so messages and `type(e).__name__` match
/// PyTorch), while callers can catch dispatcher errors apart from errors raised by kernels,
/// which pass through as they were raised.
pub(crate) mod exc {
    use pyo3::exceptions::{
        PyIndexError, PyNotImplementedError, PyRuntimeError, PyTypeError, PyValueError,
    };
    pyo3::create_exception!(
        opdispatch.exceptions,
        RuntimeError,
        PyRuntimeError,
        "A failed dispatcher check (PyTorch's TORCH_CHECK)."
    );
    pyo3::create_exception!(
        opdispatch.exceptions,
        NotImplementedError,
        PyNotImplementedError,
        "No kernel for the key a call dispatched to."
    );
    pyo3::create_exception!(
        opdispatch.exceptions,
        TypeError,
        PyTypeError,
        "A value of the wrong type."
    );
    pyo3::create_exception!(
        opdispatch.exceptions,
        ValueError,
        PyValueError,
        "A value out of range."
    );
    pyo3::create_exception!(
        opdispatch.exceptions,
        IndexError,
        PyIndexError,
        "A dimension or index out of range (PyTorch's TORCH_CHECK_INDEX)."
    );
}
use exc::{
    IndexError as PyIndexError, NotImplementedError as PyNotImplementedError,
    RuntimeError as PyRuntimeError, TypeError as PyTypeError, ValueError as PyValueError,
};

/// `RuntimeError`: a failed check (PyTorch's `TORCH_CHECK`), the default class.
pub(crate) fn runtime_error(msg: impl std::fmt::Display) -> PyErr {
    PyRuntimeError::new_err(msg.to_string())
}

/// A CUDA runtime error: `RuntimeError`, as PyTorch's lazy CUDA init and driver errors raise.
pub(crate) fn cuda_error(e: opdispatch_cuda::CudaError) -> PyErr {
    runtime_error(e)
}

/// `TypeError`: an argument of the wrong type (PyTorch's argument parser, `TORCH_CHECK_TYPE`).
pub(crate) fn type_error(msg: impl std::fmt::Display) -> PyErr {
    PyTypeError::new_err(msg.to_string())
}

/// `ValueError`: a value of the right type that cannot be used (`TORCH_CHECK_VALUE`).
pub(crate) fn value_error(msg: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(msg.to_string())
}

/// `IndexError`: a dimension or index out of range (`TORCH_CHECK_INDEX`).
pub(crate) fn index_error(msg: impl std::fmt::Display) -> PyErr {
    PyIndexError::new_err(msg.to_string())
}

/// `NotImplementedError`: no kernel or no support for this case (`TORCH_CHECK_NOT_IMPLEMENTED`).
pub(crate) fn not_implemented_error(msg: impl std::fmt::Display) -> PyErr {
    PyNotImplementedError::new_err(msg.to_string())
}

/// `KeyError`: a missing mapping key, the key itself as the exception's argument (as a dict
/// lookup raises it).
pub(crate) fn key_error(key: Py<PyAny>) -> PyErr {
    pyo3::exceptions::PyKeyError::new_err(key)
}

/// A Python exception carried through Rust code unchanged.
#[derive(Debug)]
pub(crate) struct PyKernelError(pub PyErr);

impl std::fmt::Display for PyKernelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}
impl std::error::Error for PyKernelError {}

/// Wraps a Python exception for the dispatcher.
pub(crate) fn py_to_dispatch(e: PyErr) -> DispatchError {
    DispatchError::External(Arc::new(PyKernelError(e)))
}

/// Converts a dispatcher error into the matching Python exception.
pub(crate) fn to_py(e: DispatchError) -> PyErr {
    match e {
        DispatchError::Runtime(m) | DispatchError::Internal(m) => runtime_error(m),
        DispatchError::NotImplemented(m) => not_implemented_error(m),
        DispatchError::Type(m) => type_error(m),
        DispatchError::Value(m) => value_error(m),
        DispatchError::Schema(s) => runtime_error(s),
        DispatchError::External(inner) => match inner.downcast_ref::<PyKernelError>() {
            Some(k) => Python::attach(|py| k.0.clone_ref(py)),
            None => match inner.downcast_ref::<opdispatch_tensor::AtenError>() {
                Some(t) => tensor_to_py(&t.0),
                None => runtime_error(inner),
            },
        },
    }
}

/// Converts a tensor-runtime error into the exception PyTorch raises for it: dimension and
/// index checks are `TORCH_CHECK_INDEX` (IndexError), a kernel missing for a dtype is
/// `TORCH_CHECK_NOT_IMPLEMENTED` (NotImplementedError), everything else `TORCH_CHECK`.
pub(crate) fn tensor_to_py(e: &TensorError) -> PyErr {
    let msg = e.to_string();
    match e {
        TensorError::DimOutOfRange { .. } | TensorError::IndexOutOfRange(_) => index_error(msg),
        TensorError::NotImplementedForDtype { .. } | TensorError::NotImplemented(_) => {
            not_implemented_error(msg)
        }
        _ => runtime_error(msg),
    }
}

/// Runs a call into the dispatcher and turns a panic in any kernel it reaches (native, boxed,
/// or a Rust call made by a Python kernel) into `RuntimeError`, as PyTorch turns a C++
/// exception thrown by a kernel into one. Without this, pyo3 would raise its
/// `PanicException`, which derives from `BaseException` and escapes `except Exception`.
/// Unwinding runs the dispatcher's guards (TLS key sets, read sections), so the process stays
/// usable. Panics elsewhere in the bindings (not in a kernel) still arrive as pyo3's
/// `PanicException`: a bug of ours, surfaced, never an abort.
pub(crate) fn catch_kernel_panic<T>(f: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|p| Err(panic_to_py(&*p)))
}

/// The `RuntimeError` for a caught kernel panic, carrying its message.
pub(crate) fn panic_to_py(payload: &(dyn std::any::Any + Send)) -> PyErr {
    let msg = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned());
    PyRuntimeError::new_err(format!("a kernel panicked: {msg}"))
}

/// `?`-friendly conversion for dispatcher results.
pub(crate) trait IntoPyResult<T> {
    fn py(self) -> PyResult<T>;
}

impl<T> IntoPyResult<T> for Result<T, DispatchError> {
    fn py(self) -> PyResult<T> {
        self.map_err(to_py)
    }
}

impl<T> IntoPyResult<T> for Result<T, TensorError> {
    fn py(self) -> PyResult<T> {
        self.map_err(|e| tensor_to_py(&e))
    }
}

thread_local! {
    /// Dispatcher warnings raised on this thread and not yet issued to Python.
    static PENDING_WARNINGS: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Records a dispatcher warning; it is issued by [`flush_warnings`] once the caller holds no
/// lock (PyTorch's `PyWarningHandler` does the same buffering).
pub(crate) fn queue_warning(msg: &str) {
    PENDING_WARNINGS.with(|w| w.borrow_mut().push(msg.to_owned()));
}

/// Issues the queued warnings as `UserWarning`s; an error (for example under `-W error`)
/// propagates, and warnings after it are discarded, as Python does.
pub(crate) fn flush_warnings(py: Python<'_>) -> PyResult<()> {
    let pending = PENDING_WARNINGS.with(|w| std::mem::take(&mut *w.borrow_mut()));
    for msg in pending {
        let text = std::ffi::CString::new(msg.replace('\0', " ")).unwrap_or_default();
        PyErr::warn(
            py,
            &py.get_type::<pyo3::exceptions::PyUserWarning>(),
            &text,
            1,
        )?;
    }
    Ok(())
}
