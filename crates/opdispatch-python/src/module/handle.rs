//! `_DispatchOperatorHandle`: calling an operator from Python (boxed call and redispatch).

use std::sync::OnceLock;

use opdispatch_dispatch::{DispatchKeySet, Dispatcher, OperatorHandle, Stack};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::convert::{bind_args, returns_to_py, Kwargs};
use crate::errors::{to_py, IntoPyResult};
use crate::keys::PyDispatchKeySet;
use crate::module::fast_call::FastCall;
use crate::module::op_vectorcall;

/// An operator handle (PyTorch's `_DispatchOperatorHandle`).
#[pyclass(
    name = "_DispatchOperatorHandle",
    module = "opdispatch._C",
    frozen,
    subclass
)]
pub(crate) struct PyOperatorHandle {
    /// CPython's vectorcall entry for this object (the type's `tp_vectorcall_offset` points
    /// here; see [`install_vectorcall`]).
    pub(super) vectorcall: pyo3::ffi::vectorcallfunc,
    pub op: OperatorHandle,
    /// For the plain `aten` shapes (`(Tensor) -> Tensor`, `(Tensor, Tensor) -> Tensor`,
    /// `(Tensor, Tensor, *, Scalar alpha=1) -> Tensor`): a typed handle, so a call with only
    /// tensors skips boxing (looked up at the first call).
    fast: OnceLock<FastCall>,
}

impl PyOperatorHandle {
    /// The call without the `__torch_function__` check (`_dispatch_call_boxed`, as torch's).
    pub(crate) fn call_unchecked(
        &self,
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        call_op(
            py,
            &self.op,
            None,
            args.as_slice(),
            Kwargs::from_dict(kwargs),
        )
    }

    pub(crate) fn new(op: OperatorHandle) -> Self {
        Self {
            vectorcall: op_vectorcall,
            op,
            fast: OnceLock::new(),
        }
    }

    pub(super) fn fast_call(&self) -> &FastCall {
        self.fast.get_or_init(|| FastCall::for_op(&self.op))
    }
}

#[pymethods]
impl PyOperatorHandle {
    /// `_DispatchOperatorHandle(name, overload)`: the operator `name.overload` (must have a
    /// schema). Subclassed by `opdispatch._ops.OpOverload`, whose calls then run here directly.
    #[new]
    #[pyo3(signature = (name, overload="", *_args, **_kwargs))]
    fn py_new(
        name: &str,
        overload: &str,
        _args: &Bound<'_, PyTuple>,
        _kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        Ok(Self::new(
            Dispatcher::singleton()
                .find_schema_or_throw(name, overload)
                .py()?,
        ))
    }
    /// The schema, printed canonically.
    fn schema(&self) -> PyResult<String> {
        self.op
            .schema()
            .map(|s| s.to_string())
            .ok_or_else(|| crate::errors::runtime_error("operator has no schema"))
    }
    fn debug(&self) -> String {
        self.op.debug().unwrap_or_default()
    }
    /// The tags the operator's def gave it (`OpOverload.tags`).
    #[getter]
    fn tags<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyList>> {
        crate::tags::tags_to_py(py, &self.op.tags())
    }
    /// Operator name without the overload ("ns::op").
    fn name(&self) -> String {
        self.op.operator_name().name.clone()
    }
    fn overload_name(&self) -> String {
        self.op.operator_name().overload_name.clone()
    }
    /// Return names (possibly empty) and types, in order.
    fn returns(&self) -> Vec<(String, String)> {
        self.op
            .schema()
            .map(|s| {
                s.returns
                    .iter()
                    .map(|r| (r.name.clone(), r.ty.to_string()))
                    .collect()
            })
            .unwrap_or_default()
    }
    /// Schema argument names, types, kwarg-only flags and whether they have defaults.
    fn arguments(&self) -> Vec<(String, String, bool, bool)> {
        self.op
            .schema()
            .map(|s| {
                s.arguments
                    .iter()
                    .map(|a| {
                        (
                            a.name.clone(),
                            a.ty.to_string(),
                            a.kwarg_only,
                            a.default.is_some(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
    fn num_returns(&self) -> usize {
        self.op.schema().map_or(0, |s| s.returns.len())
    }
    /// Why the arguments do not bind to this overload's schema, or `None` if they do. Runs no
    /// kernel (overload resolution must not execute anything before choosing).
    #[pyo3(signature = (*args, **kwargs))]
    fn _bind_error(
        &self,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Option<String>> {
        let schema = self
            .op
            .schema()
            .ok_or_else(|| crate::errors::runtime_error("operator has no schema"))?;
        Ok(bind_args(
            &schema,
            args.as_slice(),
            Kwargs::from_dict(kwargs),
            &mut Stack::new(),
        )
        .err()
        .map(|e| e.to_string()))
    }
    /// `__call__`: binds the arguments, dispatches, converts the returns.
    #[pyo3(signature = (*args, **kwargs))]
    fn __call__(
        slf: &Bound<'_, Self>,
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        let kw = Kwargs::from_dict(kwargs);
        if let Some(r) =
            crate::torch_function::maybe_handle(py, slf.as_any(), args.as_slice(), &kw)?
        {
            return Ok(r);
        }
        slf.get().call_unchecked(py, args, kwargs)
    }
    /// `redispatch_boxed(keyset, *args, **kwargs)`: runs the kernel for `keyset` as given.
    #[pyo3(signature = (keyset, *args, **kwargs))]
    fn redispatch_boxed(
        &self,
        py: Python<'_>,
        keyset: PyDispatchKeySet,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        call_op(
            py,
            &self.op,
            Some(keyset.ks),
            args.as_slice(),
            Kwargs::from_dict(kwargs),
        )
    }
}

pub(super) fn call_op(
    py: Python<'_>,
    op: &OperatorHandle,
    keyset: Option<DispatchKeySet>,
    args: &[Bound<'_, PyAny>],
    kwargs: Kwargs<'_, '_>,
) -> PyResult<Py<PyAny>> {
    op.with_schema(|schema| {
        let schema = schema.ok_or_else(|| {
            crate::errors::runtime_error(format!(
                "Tried to access the schema for {} which doesn't have a schema registered yet",
                op.operator_name()
            ))
        })?;
        let mut stack = Stack::new();
        bind_args(schema, args, kwargs, &mut stack)?;
        crate::errors::catch_kernel_panic(|| {
            match keyset {
                None => op.call_boxed(&mut stack),
                Some(ks) => op.redispatch_boxed(ks, &mut stack),
            }
            .map_err(to_py)
        })?;
        returns_to_py(py, schema, &mut stack)
    })
}

#[pyfunction]
pub(crate) fn _dispatch_find_schema_or_throw(
    name: &str,
    overload: &str,
) -> PyResult<PyOperatorHandle> {
    Ok(PyOperatorHandle::new(
        Dispatcher::singleton()
            .find_schema_or_throw(name, overload)
            .py()?,
    ))
}

#[pyfunction]
#[pyo3(signature = (handle, *args, **kwargs))]
pub(crate) fn _dispatch_call_boxed(
    py: Python<'_>,
    handle: &PyOperatorHandle,
    args: &Bound<'_, PyTuple>,
    kwargs: Option<&Bound<'_, PyDict>>,
) -> PyResult<Py<PyAny>> {
    handle.call_unchecked(py, args, kwargs)
}

/// The `ops.<ns>.<op>.<overload>` object for an operator (what fallbacks receive).
pub(crate) fn op_overload_object(py: Python<'_>, op: &OperatorHandle) -> PyResult<Py<PyAny>> {
    let n = op.operator_name();
    let f = py.import("opdispatch._ops")?.getattr("_overload_for")?;
    Ok(f.call1((n.name.clone(), n.overload_name.clone()))?.unbind())
}
