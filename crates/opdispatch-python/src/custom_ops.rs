//! Native helpers of the custom-op layer (`opdispatch._library`):
//! - `_C._dispatch_schema_alias_info`: the alias annotations of an operator's schema (for
//!   `is_mutable`, `mutates_args` checks and opcheck's mutation/aliasing checks); the plain
//!   `arguments()`/`returns()` of an operator handle print types without annotations.
//! - `_C._storage_id`: the identity of a tensor's storage, which custom ops' "an output must
//!   not alias an input" check compares (PyTorch's `Storage::is_alias_of`). Storage objects
//!   cannot serve: inside a Python kernel (hermetic mode) each access makes a new wrapper.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PySet, PyTuple};

use opdispatch_schema::AliasInfo;

use crate::module::PyOperatorHandle;
use crate::tensor::PyTensor;

/// `(name, type, alias sets before, is_write, kwarg_only)` of one argument or return; the
/// alias sets are `None` when the argument has no annotation (sets of contained types, as in
/// `Tensor(a)[]`, are not reported: custom ops only annotate the outer type).
type ArgInfo = (String, String, Option<Vec<String>>, bool, bool);

fn info(name: &str, ty: String, alias: Option<&AliasInfo>, kwarg_only: bool) -> ArgInfo {
    (
        name.to_owned(),
        ty,
        alias.map(|a| a.before_sets.clone()),
        alias.is_some_and(|a| a.is_write),
        kwarg_only,
    )
}

/// The arguments and returns of `op`'s schema with their alias annotations.
#[pyfunction]
pub(crate) fn _dispatch_schema_alias_info(
    op: PyRef<'_, PyOperatorHandle>,
) -> PyResult<(Vec<ArgInfo>, Vec<ArgInfo>)> {
    let schema = op
        .op
        .schema()
        .ok_or_else(|| crate::errors::runtime_error("operator has no schema"))?;
    let args = schema
        .arguments
        .iter()
        .map(|a| {
            info(
                &a.name,
                a.ty.to_string(),
                a.alias_info.as_deref(),
                a.kwarg_only,
            )
        })
        .collect();
    let rets = schema
        .returns
        .iter()
        .map(|r| info(&r.name, r.ty.to_string(), r.alias_info.as_deref(), false))
        .collect();
    Ok((args, rets))
}

/// `(name, kwarg_only, has_default, default)` of one argument.
type ArgDefault = (String, bool, bool, Py<PyAny>);

/// `(name, kwarg_only, has_default, default)` of each argument of `op`'s schema, the default
/// as a Python value (`None` where there is none): what torch's `fill_defaults` reads from
/// `Argument.default_value` when custom ops hand `setup_context` their inputs.
#[pyfunction]
pub(crate) fn _dispatch_schema_defaults(
    py: Python<'_>,
    op: PyRef<'_, PyOperatorHandle>,
) -> PyResult<Vec<ArgDefault>> {
    let schema = op
        .op
        .schema()
        .ok_or_else(|| crate::errors::runtime_error("operator has no schema"))?;
    schema
        .arguments
        .iter()
        .map(|a| {
            let value = match &a.default {
                Some(d) => crate::convert::to_py(
                    py,
                    crate::convert::default_to_ivalue(d, &a.ty),
                    Some(&a.ty),
                )?,
                None => py.None(),
            };
            Ok((a.name.clone(), a.kwarg_only, a.default.is_some(), value))
        })
        .collect()
}

/// An identifier of `t`'s storage, equal for tensors that share one (views, aliases) while
/// they are alive.
#[pyfunction]
pub(crate) fn _storage_id(t: PyRef<'_, PyTensor>) -> usize {
    t.t.storage_ref().unsafe_impl_ptr() as usize
}

/// Storage ids of the tensors in `values`, looking one level into lists and tuples.
fn storage_ids(values: &Bound<'_, PyAny>, into: &mut Vec<usize>) -> PyResult<()> {
    for v in values.try_iter()? {
        let v = v?;
        if let Ok(t) = v.cast::<PyTensor>() {
            into.push(t.borrow().t.storage_ref().unsafe_impl_ptr() as usize);
        } else if v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>() {
            for item in v.try_iter()? {
                if let Ok(t) = item?.cast::<PyTensor>() {
                    into.push(t.borrow().t.storage_ref().unsafe_impl_ptr() as usize);
                }
            }
        }
    }
    Ok(())
}

/// Whether a tensor of `outputs` shares its storage with an input tensor or another output.
fn any_output_is_alias(
    args: &Bound<'_, PyTuple>,
    kwargs: Option<&Bound<'_, PyDict>>,
    outputs: &Bound<'_, PyAny>,
) -> PyResult<bool> {
    let mut outs = Vec::new();
    storage_ids(outputs, &mut outs)?;
    if outs.is_empty() {
        return Ok(false);
    }
    let mut ins = Vec::new();
    storage_ids(args.as_any(), &mut ins)?;
    if let Some(kw) = kwargs {
        storage_ids(kw.values().as_any(), &mut ins)?;
    }
    Ok(outs
        .iter()
        .enumerate()
        .any(|(i, o)| ins.contains(o) || outs[..i].contains(o)))
}

/// `torch._C._any_output_is_alias_to_input_or_output(args, kwargs, outputs)`: whether a
/// tensor of `outputs` shares its storage with an input tensor or another output.
#[pyfunction]
pub(crate) fn _any_output_is_alias_to_input_or_output(
    args: &Bound<'_, PyTuple>,
    kwargs: Option<&Bound<'_, PyDict>>,
    outputs: &Bound<'_, PyTuple>,
) -> PyResult<bool> {
    any_output_is_alias(args, kwargs, outputs.as_any())
}

/// `_C._CustomOpBackend(backend_fns, device_type, disabled, init_fn, alias_error,
/// check_aliasing=True)`: the kernel
/// a custom op registers for a device type. Each call runs `backend_fns[device_type]` (or
/// `init_fn` while the device type is in `disabled`, so re-registering swaps the function
/// without touching the dispatcher), then checks that no output aliases an input or another
/// output (not for view ops), calling `alias_error()` (which raises torch's message) if one
/// does. Registered, it becomes a `CustomOpBackendKernel` (`custom_op_kernels.rs`): the
/// dispatcher calls the user function itself.
#[pyclass(name = "_CustomOpBackend", module = "opdispatch._C", frozen)]
pub(crate) struct PyCustomOpBackend {
    backend_fns: Py<PyDict>,
    device_type: Py<PyAny>,
    disabled: Py<PySet>,
    init_fn: Py<PyAny>,
    alias_error: Py<PyAny>,
    /// False for view ops (an output aliasing an input is what their schema says).
    pub(crate) check_aliasing: bool,
}

#[pymethods]
impl PyCustomOpBackend {
    #[new]
    #[pyo3(signature = (backend_fns, device_type, disabled, init_fn, alias_error, check_aliasing=true))]
    fn py_new(
        backend_fns: Py<PyDict>,
        device_type: Py<PyAny>,
        disabled: Py<PySet>,
        init_fn: Py<PyAny>,
        alias_error: Py<PyAny>,
        check_aliasing: bool,
    ) -> Self {
        Self {
            backend_fns,
            device_type,
            disabled,
            init_fn,
            alias_error,
            check_aliasing,
        }
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn __call__(
        &self,
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        let result = self.current_fn(py)?.call(args, kwargs)?;
        let aliases = if !self.check_aliasing {
            false
        } else if result.is_exact_instance_of::<PyTuple>() {
            any_output_is_alias(args, kwargs, &result)?
        } else {
            any_output_is_alias(args, kwargs, PyTuple::new(py, [&result])?.as_any())?
        };
        if aliases {
            self.raise_alias_error(py)?;
        }
        Ok(result.unbind())
    }
}

impl PyCustomOpBackend {
    /// The function a call runs now: the original while the device type is disabled,
    /// otherwise the one last registered for it.
    pub(crate) fn current_fn<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let device = self.device_type.bind(py);
        if self.disabled.bind(py).contains(device)? {
            return Ok(self.init_fn.bind(py).clone());
        }
        self.backend_fns
            .bind(py)
            .get_item(device)?
            .ok_or_else(|| crate::errors::key_error(device.clone().unbind()))
    }

    /// Raises torch's "must not alias" error (the Python factory builds its message).
    pub(crate) fn raise_alias_error(&self, py: Python<'_>) -> PyResult<()> {
        self.alias_error.bind(py).call0()?;
        Err(crate::errors::runtime_error(
            "a custom op's output aliases an input or another output",
        ))
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_dispatch_schema_alias_info, m)?)?;
    m.add_function(wrap_pyfunction!(_storage_id, m)?)?;
    m.add_function(wrap_pyfunction!(_dispatch_schema_defaults, m)?)?;
    m.add_function(wrap_pyfunction!(
        _any_output_is_alias_to_input_or_output,
        m
    )?)?;
    m.add_class::<PyCustomOpBackend>()?;
    Ok(())
}
