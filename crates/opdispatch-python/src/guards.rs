//! Context managers over the thread-local dispatch state: the RAII guard is created on
//! `__enter__` and dropped on `__exit__` (PyTorch's `py_context_manager` pattern).

use opdispatch_dispatch::{
    EnableHermeticPyObject, ExcludeDispatchKeyGuard, ForceDispatchKeyGuard, HermeticPyObjectTLS,
    IncludeDispatchKeyGuard,
};
use opdispatch_keys::{DispatchKeySet, AUTOGRAD_DISPATCH_KEYSET};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::keys::{extract_key, PyDispatchKeySet};

fn to_set(obj: &Bound<'_, PyAny>) -> PyResult<DispatchKeySet> {
    if let Ok(s) = obj.extract::<PyDispatchKeySet>() {
        return Ok(s.ks);
    }
    Ok(DispatchKeySet::from_key(extract_key(obj)?))
}

macro_rules! guard_class {
    ($rust:ident, $pyname:literal, $guard:ty, |$args:ident| $make:expr, ($($arg:ident),*)) => {
        #[pyclass(name = $pyname, module = "opdispatch._C", unsendable)]
        pub(crate) struct $rust {
            args: ($(guard_class!(@ty $arg),)*),
            guard: Vec<$guard>,
        }

        #[pymethods]
        impl $rust {
            #[new]
            fn new($($arg: &Bound<'_, PyAny>),*) -> PyResult<Self> {
                Ok(Self { args: ($(to_set($arg)?,)*), guard: Vec::new() })
            }
            fn __enter__(mut slf: PyRefMut<'_, Self>) -> PyRefMut<'_, Self> {
                let $args = slf.args;
                let g = $make;
                slf.guard.push(g);
                slf
            }
            #[pyo3(signature = (*_exc))]
            fn __exit__(&mut self, _exc: &Bound<'_, pyo3::types::PyTuple>) -> bool {
                self.guard.pop();
                false
            }
        }
    };
    (@ty $a:ident) => { DispatchKeySet };
}

guard_class!(
    IncludeGuard,
    "_IncludeDispatchKeyGuard",
    IncludeDispatchKeyGuard,
    |a| IncludeDispatchKeyGuard::new(a.0),
    (ks)
);
guard_class!(
    ExcludeGuard,
    "_ExcludeDispatchKeyGuard",
    ExcludeDispatchKeyGuard,
    |a| ExcludeDispatchKeyGuard::new(a.0),
    (ks)
);
guard_class!(
    ForceGuard,
    "_ForceDispatchKeyGuard",
    ForceDispatchKeyGuard,
    |a| ForceDispatchKeyGuard::new(a.0, a.1),
    (included, excluded)
);

/// `_PreserveDispatchKeyGuard()`: restores both sets on exit.
#[pyclass(
    name = "_PreserveDispatchKeyGuard",
    module = "opdispatch._C",
    unsendable
)]
pub(crate) struct PreserveGuard {
    guard: Vec<ForceDispatchKeyGuard>,
}

#[pymethods]
impl PreserveGuard {
    #[new]
    fn new() -> Self {
        Self { guard: Vec::new() }
    }
    fn __enter__(mut slf: PyRefMut<'_, Self>) -> PyRefMut<'_, Self> {
        slf.guard.push(ForceDispatchKeyGuard::preserve());
        slf
    }
    #[pyo3(signature = (*_exc))]
    fn __exit__(&mut self, _exc: &Bound<'_, pyo3::types::PyTuple>) -> bool {
        self.guard.pop();
        false
    }
}

/// `_EnableHermeticPyObject()`: hermetic mode for the `with` block (nests; restores on exit,
/// also when the block raises).
#[pyclass(name = "_EnableHermeticPyObject", module = "opdispatch._C", unsendable)]
pub(crate) struct HermeticGuard {
    guard: Vec<EnableHermeticPyObject>,
}

#[pymethods]
impl HermeticGuard {
    #[new]
    fn new() -> Self {
        Self { guard: Vec::new() }
    }
    fn __enter__(mut slf: PyRefMut<'_, Self>) -> PyRefMut<'_, Self> {
        slf.guard.push(EnableHermeticPyObject::new());
        slf
    }
    #[pyo3(signature = (*_exc))]
    fn __exit__(&mut self, _exc: &Bound<'_, pyo3::types::PyTuple>) -> bool {
        self.guard.pop();
        false
    }
}

/// Whether hermetic mode is on for this thread.
#[pyfunction]
pub(crate) fn _is_hermetic_pyobject_enabled() -> bool {
    HermeticPyObjectTLS::get_state()
}

/// `with _AutoDispatchBelowAutograd():` excludes the autograd keys (PyTorch's
/// `AutoDispatchBelowAutograd`), so operators run their kernels below autograd.
#[pyclass(
    name = "_AutoDispatchBelowAutograd",
    module = "opdispatch._C",
    unsendable
)]
pub(crate) struct AutoDispatchBelowAutograd {
    guard: Vec<ExcludeDispatchKeyGuard>,
}

#[pymethods]
impl AutoDispatchBelowAutograd {
    #[new]
    fn new() -> Self {
        Self { guard: Vec::new() }
    }
    fn __enter__(mut slf: PyRefMut<'_, Self>) -> PyRefMut<'_, Self> {
        slf.guard
            .push(ExcludeDispatchKeyGuard::new(AUTOGRAD_DISPATCH_KEYSET));
        slf
    }
    #[pyo3(signature = (*_exc))]
    fn __exit__(&mut self, _exc: &Bound<'_, PyTuple>) -> bool {
        self.guard.pop();
        false
    }
}
