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

/// `_C._CustomOpBackend(backend_fns, device_type, disabled, init_fn, alias_error)`: the kernel
/// a custom op registers for a device type. Each call runs `backend_fns[device_type]` (or
/// `init_fn` while the device type is in `disabled`, so re-registering swaps the function
/// without touching the dispatcher), then checks that no output aliases an input or another
/// output, calling `alias_error()` (which raises torch's message) if one does. Native because
/// it runs on every call of every custom op.
#[pyclass(name = "_CustomOpBackend", module = "opdispatch._C", frozen)]
pub(crate) struct PyCustomOpBackend {
    backend_fns: Py<PyDict>,
    device_type: Py<PyAny>,
    disabled: Py<PySet>,
    init_fn: Py<PyAny>,
    alias_error: Py<PyAny>,
}

#[pymethods]
impl PyCustomOpBackend {
    #[new]
    fn py_new(
        backend_fns: Py<PyDict>,
        device_type: Py<PyAny>,
        disabled: Py<PySet>,
        init_fn: Py<PyAny>,
        alias_error: Py<PyAny>,
    ) -> Self {
        Self {
            backend_fns,
            device_type,
            disabled,
            init_fn,
            alias_error,
        }
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn __call__(
        &self,
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        let device = self.device_type.bind(py);
        let f = if self.disabled.bind(py).contains(device)? {
            self.init_fn.bind(py).clone()
        } else {
            self.backend_fns
                .bind(py)
                .get_item(device)?
                .ok_or_else(|| crate::errors::key_error(device.clone().unbind()))?
        };
        let result = f.call(args, kwargs)?;
        let aliases = if result.is_exact_instance_of::<PyTuple>() {
            any_output_is_alias(args, kwargs, &result)?
        } else {
            any_output_is_alias(args, kwargs, PyTuple::new(py, [&result])?.as_any())?
        };
        if aliases {
            self.alias_error.bind(py).call0()?;
        }
        Ok(result.unbind())
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_dispatch_schema_alias_info, m)?)?;
    m.add_function(wrap_pyfunction!(_storage_id, m)?)?;
    m.add_function(wrap_pyfunction!(
        _any_output_is_alias_to_input_or_output,
        m
    )?)?;
    m.add_class::<PyCustomOpBackend>()?;
    Ok(())
}
