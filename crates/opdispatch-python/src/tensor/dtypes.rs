//! `opdispatch.dtype` and `opdispatch.device`.

use opdispatch_tensor::{Device, ScalarType};
use pyo3::prelude::*;

/// `opdispatch.dtype`: one interned object per scalar type.
#[pyclass(
    name = "dtype",
    module = "opdispatch",
    frozen,
    eq,
    hash,
    from_py_object
)]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct PyDType {
    pub st: ScalarType,
}

#[pymethods]
impl PyDType {
    fn __repr__(&self) -> String {
        format!("opdispatch.{}", self.st.name())
    }
    #[getter]
    fn is_floating_point(&self) -> bool {
        self.st.is_floating_point()
    }
    #[getter]
    fn itemsize(&self) -> usize {
        self.st.itemsize()
    }
}

/// `opdispatch.device`.
#[pyclass(
    name = "device",
    module = "opdispatch",
    frozen,
    eq,
    hash,
    from_py_object
)]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct PyDevice {
    pub d: Device,
}

#[pymethods]
impl PyDevice {
    #[new]
    fn new(spec: &str) -> PyResult<Self> {
        spec.parse::<Device>()
            .map(|d| Self { d })
            .map_err(|e| crate::errors::runtime_error(e.to_string()))
    }
    #[getter]
    fn r#type(&self) -> String {
        self.d
            .to_string()
            .split(':')
            .next()
            .unwrap_or_default()
            .to_owned()
    }
    /// The device index (`None` for CPU and Meta), as `torch.device.index`.
    #[getter]
    fn index(&self) -> Option<u8> {
        self.d.index()
    }
    fn __repr__(&self) -> String {
        match self.d.index() {
            Some(i) => format!("device(type='{}', index={i})", self.r#type()),
            None => format!("device(type='{}')", self.d),
        }
    }
    fn __str__(&self) -> String {
        self.d.to_string()
    }
}
