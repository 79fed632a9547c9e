//! Tensor subclasses from Python: `Tensor._make_wrapper_subclass` (a tensor with the given
//! metadata whose data lives in the subclass, usually in inner tensors) and `as_subclass`
//! (a subclass object over an alias of a tensor). Neither calls the class's `__new__` or
//! `__init__` (they are called from there), as in PyTorch.

use opdispatch_dispatch::{DispatchKey, DispatchKeySet, ExcludeDispatchKeyGuard};
use opdispatch_tensor::{contiguous_strides, Storage, Tensor};
use pyo3::prelude::*;
use pyo3::types::PyType;

use crate::errors::IntoPyResult as _;
use crate::tensor::{
    _tensor_init, alias_of, init_tensor_object, new_tensor_of_type, parse_device, parse_dtype,
    PyTensor,
};

/// An object of type `cls` (a Tensor subclass) over `t`, recorded in `t`'s slot, with the
/// Python keys if `cls` defines `__torch_dispatch__`.
fn new_subclass_object<'py>(
    cls: &Bound<'py, PyType>,
    t: Tensor,
    has_td: Option<bool>,
) -> PyResult<Bound<'py, PyTensor>> {
    if !cls.is_subclass_of::<PyTensor>()? {
        return Err(crate::errors::runtime_error(
            "Creating a Tensor subclass from a class that does not inherit from Tensor is not possible. Make sure your class inherits from Tensor.",
        ));
    }
    let obj = new_tensor_of_type(cls, t)?;
    match has_td {
        Some(td) => init_tensor_object(&obj, td)?,
        None => _tensor_init(&obj)?,
    }
    Ok(obj)
}

fn usizes(o: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<usize>> {
    o.try_iter()?
        .map(|x| {
            let v: i64 = x?.extract()?;
            usize::try_from(v).map_err(|_| {
                crate::errors::value_error(format!("{what} must be non-negative, got {v}"))
            })
        })
        .collect()
}

/// `Tensor._make_wrapper_subclass(cls, size, strides=None, storage_offset=None, ...)`.
#[allow(clippy::too_many_arguments)]
#[pyfunction]
#[pyo3(signature = (cls, size, strides=None, storage_offset=None, memory_format=None, dtype=None,
    layout=None, device=None, pin_memory=false, requires_grad=false,
    dispatch_sizes_strides_policy=None, dispatch_device=false, dispatch_layout=false,
    _extra_dispatch_keys=None, storage_size=None))]
pub(crate) fn _make_wrapper_subclass<'py>(
    cls: &Bound<'py, PyAny>,
    size: &Bound<'py, PyAny>,
    strides: Option<&Bound<'py, PyAny>>,
    storage_offset: Option<usize>,
    memory_format: Option<&Bound<'py, PyAny>>,
    dtype: Option<&Bound<'py, PyAny>>,
    layout: Option<&Bound<'py, PyAny>>,
    device: Option<&Bound<'py, PyAny>>,
    pin_memory: bool,
    requires_grad: bool,
    dispatch_sizes_strides_policy: Option<&Bound<'py, PyAny>>,
    dispatch_device: bool,
    dispatch_layout: bool,
    _extra_dispatch_keys: Option<&Bound<'py, PyAny>>,
    storage_size: Option<usize>,
) -> PyResult<Bound<'py, PyTensor>> {
    // Accepted for PyTorch's signature; they change nothing for strided CPU/Meta tensors.
    let _ = (
        memory_format,
        layout,
        pin_memory,
        dispatch_sizes_strides_policy,
    );
    let _ = (dispatch_device, dispatch_layout);
    let cls = cls.cast::<PyType>().map_err(|_| {
        crate::errors::type_error(format!(
            "cls must be a type (got {})",
            cls.get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        ))
    })?;
    let py = cls.py();
    let disabled = crate::python_dispatch::disabled_torch_dispatch_impl(py)?;
    let td = crate::python_dispatch::class_attr(cls, pyo3::intern!(py, "__torch_dispatch__"));
    if td.as_ref().is_none_or(|f| f.is(&disabled)) {
        return Err(crate::errors::type_error(format!(
            "{} must define __torch_dispatch__",
            cls.name()?
        )));
    }
    let sizes = usizes(size, "size")?;
    let strides = match strides {
        Some(s) if !s.is_none() => usizes(s, "stride")?,
        _ => contiguous_strides(&sizes),
    };
    let offset = storage_offset.unwrap_or(0);
    let dt = parse_dtype("_make_wrapper_subclass", dtype)?
        .unwrap_or(opdispatch_tensor::ScalarType::Float32);
    let dev = parse_device(device)?;
    // The wrapper's own storage is never read by the subclass's ops (they run on its inner
    // tensors); it is sized for the geometry so that nothing below can read out of bounds.
    let span = if sizes.contains(&0) {
        0
    } else {
        offset
            + 1
            + sizes
                .iter()
                .zip(&strides)
                .map(|(n, s)| (n - 1) * s)
                .sum::<usize>()
    };
    let nbytes = storage_size.unwrap_or(0).max(span * dt.itemsize());
    let storage = Storage::new(nbytes, dev, false).py()?;
    let t = Tensor::from_parts(storage, sizes, strides, offset, dt).py()?;
    let obj = new_subclass_object(cls, t, Some(true))?;
    if requires_grad {
        // Through Tensor's own `requires_grad` setter (autograd); a tree without autograd has
        // none, and an instance attribute would only pretend.
        if !py.get_type::<PyTensor>().hasattr("requires_grad")? {
            return Err(crate::errors::not_implemented_error(
                "_make_wrapper_subclass(requires_grad=True) needs autograd (Tensor.requires_grad)",
            ));
        }
        obj.setattr("requires_grad", true)?;
    }
    Ok(obj)
}

/// `t.as_subclass(cls)`: a `cls` object sharing `t`'s storage and geometry.
#[pyfunction]
pub(crate) fn _as_subclass<'py>(
    t: &Bound<'py, PyTensor>,
    cls: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyTensor>> {
    let cls = cls.cast::<PyType>().map_err(|_| {
        crate::errors::type_error(format!(
            "cls must be a type (got {})",
            cls.get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        ))
    })?;
    let inner = t.borrow().t.clone();
    let alias = if inner.key_set().has(DispatchKey::Python) {
        // A wrapper subclass has no data of its own to alias: its metadata is copied.
        alias_of(&inner)?
    } else {
        // torch's `self.alias()`: a view through the dispatcher, so the result stays attached
        // to the autograd graph (`AliasBackward0`), below any dispatch mode (modes do not see it).
        let _g = ExcludeDispatchKeyGuard::new(DispatchKeySet::from_keys(&[
            DispatchKey::Python,
            DispatchKey::PythonTLSSnapshot,
        ]));
        crate::errors::catch_kernel_panic(|| Ok(alias_op()?.call(inner)))?
            .map_err(crate::errors::to_py)?
    };
    new_subclass_object(cls, alias, None)
}

crate::arith::typed_op!(
    alias_op,
    fn(Tensor) -> opdispatch_dispatch::Result<Tensor>,
    "aten::alias",
    ""
);

/// The text `repr` gives a tensor whose class handles its own ops (the Python key): its
/// metadata, without reading data or dispatching (so a handler that prints its arguments
/// cannot recurse).
pub(crate) fn python_tensor_repr(obj: &Bound<'_, PyTensor>) -> PyResult<String> {
    let name = obj.get_type().name()?.to_string();
    let this = obj.borrow();
    let sizes: Vec<String> = this.t.sizes().iter().map(ToString::to_string).collect();
    let size = match sizes.len() {
        1 => format!("({},)", sizes[0]),
        _ => format!("({})", sizes.join(", ")),
    };
    Ok(format!(
        "{name}(..., size={size}, dtype=opdispatch.{}, device='{}')",
        this.t.dtype().name(),
        this.t.device()
    ))
}

/// Adds this module's functions to `_C`.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_make_wrapper_subclass, m)?)?;
    m.add_function(wrap_pyfunction!(_as_subclass, m)?)?;
    Ok(())
}
