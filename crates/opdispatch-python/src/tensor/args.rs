//! Parsing Python arguments (dtype, device, sizes, scalars) into runtime values.

use opdispatch_tensor::{Device, Scalar, ScalarType};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::tensor::{PyDType, PyDevice};

/// A `dtype=` argument of the Python function `func` (named in the error, as torch's argument
/// parser does).
pub(crate) fn parse_dtype(
    func: &str,
    obj: Option<&Bound<'_, PyAny>>,
) -> PyResult<Option<ScalarType>> {
    match obj {
        None => Ok(None),
        Some(o) if o.is_none() => Ok(None),
        Some(o) => match o.extract::<PyDType>() {
            Ok(d) => Ok(Some(d.st)),
            Err(_) => Err(crate::errors::type_error(format!(
                "{func}(): argument 'dtype' must be opdispatch.dtype, not {}",
                o.get_type().name()?
            ))),
        },
    }
}

pub(crate) fn parse_device(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Device> {
    match obj {
        None => Ok(Device::Cpu),
        Some(o) if o.is_none() => Ok(Device::Cpu),
        Some(o) => {
            if let Ok(d) = o.extract::<PyDevice>() {
                return Ok(d.d);
            }
            let s: String = o.extract()?;
            s.parse::<Device>()
                .map_err(|e| crate::errors::runtime_error(e.to_string()))
        }
    }
}

pub(crate) fn parse_size(size: &Bound<'_, PyTuple>) -> PyResult<Vec<usize>> {
    // Accept f(2, 3) and f((2, 3)) / f([2, 3]).
    if size.len() == 1 {
        if let Ok(v) = size.get_item(0)?.extract::<Vec<i64>>() {
            return to_sizes(&v);
        }
    }
    to_sizes(&size.extract::<Vec<i64>>()?)
}

pub(super) fn to_sizes(v: &[i64]) -> PyResult<Vec<usize>> {
    v.iter()
        .map(|&x| {
            usize::try_from(x).map_err(|_| {
                crate::errors::runtime_error(format!(
                    "Trying to create tensor with negative dimension {x}: {v:?}"
                ))
            })
        })
        .collect()
}

pub(crate) fn scalar_from_py(o: &Bound<'_, PyAny>) -> PyResult<Scalar> {
    if let Ok(b) = o.cast::<pyo3::types::PyBool>() {
        return Ok(Scalar::Bool(b.is_true()));
    }
    if let Ok(i) = o.extract::<i64>() {
        return Ok(Scalar::Int(i));
    }
    if let Ok(f) = o.extract::<f64>() {
        return Ok(Scalar::Float(f));
    }
    if let Ok(c) = o.cast::<pyo3::types::PyComplex>() {
        return Ok(Scalar::Complex(c.real(), c.imag()));
    }
    Err(crate::errors::type_error(format!(
        "expected a number, got {}",
        o.get_type().name()?
    )))
}

pub(crate) fn scalar_to_py(py: Python<'_>, s: Scalar) -> PyResult<Py<PyAny>> {
    Ok(match s {
        Scalar::Bool(b) => pyo3::types::PyBool::new(py, b)
            .to_owned()
            .into_any()
            .unbind(),
        Scalar::Int(i) => i.into_pyobject(py)?.into_any().unbind(),
        Scalar::Float(f) => f.into_pyobject(py)?.into_any().unbind(),
        Scalar::Complex(r, i) => pyo3::types::PyComplex::from_doubles(py, r, i)
            .into_any()
            .unbind(),
    })
}
