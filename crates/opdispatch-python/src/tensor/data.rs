//! Tensors from nested Python number lists (`opdispatch.tensor`) and back (`tolist`).

use opdispatch_tensor::{Scalar, ScalarType, Tensor};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};

use crate::errors::IntoPyResult;
use crate::tensor::{parse_device, parse_dtype, scalar_from_py, scalar_to_py};

pub(super) fn flatten_data(
    o: &Bound<'_, PyAny>,
    shape: &mut Vec<usize>,
    depth: usize,
    out: &mut Vec<Scalar>,
) -> PyResult<()> {
    if let Ok(l) = o.cast::<PyList>() {
        record_dim(shape, depth, l.len())?;
        for x in l.iter() {
            flatten_data(&x, shape, depth + 1, out)?;
        }
        return Ok(());
    }
    if let Ok(t) = o.cast::<PyTuple>() {
        record_dim(shape, depth, t.len())?;
        for x in t.iter() {
            flatten_data(&x, shape, depth + 1, out)?;
        }
        return Ok(());
    }
    if depth != shape.len() {
        return Err(crate::errors::value_error(
            "expected sequence of equal-length lists",
        ));
    }
    // As PyTorch's constructor: strings and bytes are a wrong type, other objects have no dtype.
    let v = scalar_from_py(o).map_err(|_| match o.get_type().name() {
        Ok(name)
            if o.is_instance_of::<pyo3::types::PyString>()
                || o.is_instance_of::<pyo3::types::PyBytes>() =>
        {
            crate::errors::type_error(format!("new(): invalid data type '{name}'"))
        }
        Ok(name) => crate::errors::runtime_error(format!("Could not infer dtype of {name}")),
        Err(e) => e,
    })?;
    out.push(v);
    Ok(())
}

pub(super) fn record_dim(shape: &mut Vec<usize>, depth: usize, n: usize) -> PyResult<()> {
    if depth == shape.len() {
        shape.push(n);
        Ok(())
    } else if shape.get(depth) == Some(&n) {
        Ok(())
    } else {
        Err(crate::errors::value_error(format!(
            "expected sequence of length {} at dim {depth} (got {n})",
            shape.get(depth).copied().unwrap_or(0)
        )))
    }
}

/// Builds a tensor from (nested lists of) Python numbers.
#[pyfunction]
#[pyo3(signature = (data, *, dtype=None, device=None, requires_grad=false))]
pub(crate) fn tensor(
    py: Python<'_>,
    data: &Bound<'_, PyAny>,
    dtype: Option<&Bound<'_, PyAny>>,
    device: Option<&Bound<'_, PyAny>>,
    requires_grad: bool,
) -> PyResult<Py<PyAny>> {
    // As torch.tensor: the data is converted outside dispatch, then the fresh tensor enters
    // the dispatcher through `lift_fresh`, the one call a dispatch mode sees.
    let t = tensor_from_data(data, dtype, device)?;
    crate::factories::lift_fresh(py, t, requires_grad)
}

/// The tensor `data` (nested lists of numbers) describes, built without dispatch (on CPU; a
/// Meta tensor keeps only the geometry).
pub(crate) fn tensor_from_data(
    data: &Bound<'_, PyAny>,
    dtype: Option<&Bound<'_, PyAny>>,
    device: Option<&Bound<'_, PyAny>>,
) -> PyResult<Tensor> {
    let mut shape = Vec::new();
    let mut vals = Vec::new();
    flatten_data(data, &mut shape, 0, &mut vals)?;
    let inferred = vals.iter().fold(None::<ScalarType>, |acc, v| {
        let k = match v {
            Scalar::Bool(_) => ScalarType::Bool,
            Scalar::Int(_) => ScalarType::Int64,
            Scalar::Float(_) => ScalarType::Float32,
            Scalar::Complex(..) => ScalarType::ComplexFloat,
        };
        Some(acc.map_or(k, |a| opdispatch_tensor::promote_types(a, k).unwrap_or(a)))
    });
    let dt = parse_dtype("tensor", dtype)?
        .or(inferred)
        .unwrap_or(ScalarType::Float32);
    let dev = parse_device(device)?;
    let base = if vals.iter().all(|v| matches!(v, Scalar::Bool(_))) && !vals.is_empty() {
        Tensor::from_vec(
            vals.iter()
                .map(|v| matches!(v, Scalar::Bool(true)))
                .collect::<Vec<bool>>(),
            &shape,
        )
    } else if vals
        .iter()
        .all(|v| matches!(v, Scalar::Int(_) | Scalar::Bool(_)))
        && !dt.is_floating_point()
    {
        Tensor::from_vec(
            vals.iter()
                .map(|v| match v {
                    Scalar::Int(i) => *i,
                    Scalar::Bool(b) => i64::from(*b),
                    _ => 0,
                })
                .collect::<Vec<i64>>(),
            &shape,
        )
    } else {
        let mut out = Vec::with_capacity(vals.len());
        for v in &vals {
            out.push(match v {
                Scalar::Bool(b) => f64::from(u8::from(*b)),
                Scalar::Int(i) => *i as f64,
                Scalar::Float(f) => *f,
                Scalar::Complex(..) => {
                    return Err(crate::errors::type_error(
                        "complex data is not supported by opdispatch.tensor yet",
                    ))
                }
            });
        }
        Tensor::from_vec(out, &shape)
    }
    .py()?;
    let spec = opdispatch_tensor::ops::meta::to(&base, Some(dt), Some(dev)).py()?;
    if spec.device.is_meta() {
        spec.empty().py()
    } else {
        opdispatch_tensor::ops::to(&base, Some(dt), Some(dev)).py()
    }
}

pub(super) fn data_to_py(py: Python<'_>, t: &Tensor) -> PyResult<Py<PyAny>> {
    let vals = t.to_scalars().py()?;
    fn rec(py: Python<'_>, vals: &[Scalar], shape: &[usize]) -> PyResult<Py<PyAny>> {
        match shape.split_first() {
            None => scalar_to_py(py, vals[0]),
            Some((&n, rest)) => {
                let step: usize = rest.iter().product();
                let items: PyResult<Vec<Py<PyAny>>> = (0..n)
                    .map(|i| rec(py, &vals[i * step..(i + 1) * step], rest))
                    .collect();
                Ok(PyList::new(py, items?)?.into_any().unbind())
            }
        }
    }
    rec(py, &vals, t.sizes())
}
