//! The `Tensor` and `UntypedStorage` pyclasses: construction, attributes, swapping.

use std::sync::atomic::{AtomicBool, Ordering};

use opdispatch_dispatch::HermeticPyObjectTLS;
use opdispatch_tensor::{Device, ScalarType, Storage, Tensor};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::errors::IntoPyResult;
use crate::tensor::{
    attach_object, data_to_py, parse_device, tensor_from_data, tensor_repr, wrap_storage, PyDType,
    PyDevice,
};

/// `opdispatch.Tensor`.
#[pyclass(name = "Tensor", module = "opdispatch", subclass, dict, weakref)]
pub struct PyTensor {
    pub t: Tensor,
    /// Whether this object is the one recorded in the impl's slot.
    pub(super) attached: AtomicBool,
    /// Made by a hermetic-mode crossing: a throwaway wrapper that is never recorded.
    pub(super) hermetic: bool,
}

impl Drop for PyTensor {
    fn drop(&mut self) {
        if self.attached.load(Ordering::Acquire) {
            self.t.detach_pyobject();
        }
    }
}

/// `opdispatch.UntypedStorage`.
#[pyclass(
    name = "UntypedStorage",
    module = "opdispatch",
    subclass,
    dict,
    weakref
)]
pub(crate) struct PyStorage {
    pub s: Storage,
    pub(super) attached: AtomicBool,
}

impl Drop for PyStorage {
    fn drop(&mut self) {
        if self.attached.load(Ordering::Acquire) {
            self.s.detach_pyobject();
        }
    }
}

/// A new tensor sharing `t`'s storage and geometry (PyTorch's `alias`), so a second Python
/// object (for example a subclass instance) gets its own impl.
pub(crate) fn alias_of(t: &Tensor) -> PyResult<Tensor> {
    Tensor::from_parts(
        t.storage(),
        t.sizes().to_vec(),
        t.strides().to_vec(),
        t.storage_offset(),
        t.dtype(),
    )
    .py()
}

pub(super) const HERMETIC_SUBCLASS_ERROR: &str = "While HermeticPyObject was enabled, we attempted to create a tensor subclass with __torch_dispatch__.  This violates the invariant that operations in HermeticPyObject have equivalent C++ implementations. If your operator registered from Python operator registration isn't doing anything strange, there may be an internal PyTorch bug involving not appropriately disabling TorchDispatchMode before executing Python op registration.";

/// Completes construction of a Python-created tensor object (`Tensor(...)`, subclass instances,
/// `as_subclass`): records it in its impl's slot unless hermetic mode is on, and gives the impl
/// the Python keys when the class defines `__torch_dispatch__` (PyTorch's `THPVariable_NewWithVar`).
#[pyfunction]
pub(crate) fn _tensor_init(obj: &Bound<'_, PyTensor>) -> PyResult<()> {
    let ty = obj.get_type();
    let has_td = ty.hasattr(pyo3::intern!(obj.py(), "__torch_dispatch__"))?;
    init_tensor_object(obj, has_td)
}

/// [`_tensor_init`] for a caller that already knows whether the class defines
/// `__torch_dispatch__`.
pub(crate) fn init_tensor_object(obj: &Bound<'_, PyTensor>, has_td: bool) -> PyResult<()> {
    if HermeticPyObjectTLS::get_state() {
        if has_td {
            return Err(crate::errors::runtime_error(HERMETIC_SUBCLASS_ERROR));
        }
        return Ok(());
    }
    if !obj.borrow().attached.load(Ordering::Acquire) {
        attach_object(obj);
    }
    if has_td {
        obj.borrow().t.set_python_dispatch(true);
    }
    Ok(())
}

/// Exchanges the tensors behind two Python objects, keeping each object's identity and
/// `__dict__` (PyTorch's `torch.utils.swap_tensors`).
#[pyfunction]
pub(crate) fn _swap_tensors(a: &Bound<'_, PyTensor>, b: &Bound<'_, PyTensor>) -> PyResult<()> {
    if a.is(b) {
        return Ok(());
    }
    let mut ra = a.borrow_mut();
    let mut rb = b.borrow_mut();
    let (aa, ab) = (
        ra.attached.load(Ordering::Acquire),
        rb.attached.load(Ordering::Acquire),
    );
    if aa {
        ra.t.detach_pyobject();
    }
    if ab {
        rb.t.detach_pyobject();
    }
    std::mem::swap(&mut ra.t, &mut rb.t);
    ra.attached.store(false, Ordering::Release);
    rb.attached.store(false, Ordering::Release);
    drop((ra, rb));
    for (obj, was) in [(a, aa), (b, ab)] {
        if was {
            attach_object(obj);
        }
    }
    Ok(())
}

/// Completes construction of a Python-created storage object (see [`_tensor_init`]).
#[pyfunction]
pub(crate) fn _storage_init(obj: &Bound<'_, PyStorage>) -> PyResult<()> {
    if HermeticPyObjectTLS::get_state() {
        return Ok(());
    }
    if !obj.borrow().attached.load(Ordering::Acquire) {
        attach_object(obj);
    }
    Ok(())
}

#[pymethods]
impl PyTensor {
    /// `Tensor(data=None)`: an alias of a tensor (sharing its storage), a tensor from nested
    /// number lists, or an empty float32 tensor. Subclasses construct through this too.
    #[new]
    #[pyo3(signature = (data=None, *_args, **_kwargs))]
    fn py_new(
        data: Option<&Bound<'_, PyAny>>,
        _args: &Bound<'_, PyTuple>,
        _kwargs: Option<&Bound<'_, pyo3::types::PyDict>>,
    ) -> PyResult<Self> {
        let t = match data {
            None => Tensor::empty(&[0], ScalarType::Float32, Device::Cpu).py()?,
            Some(d) => match d.cast::<PyTensor>() {
                Ok(src) => alias_of(&src.borrow().t)?,
                Err(_) => tensor_from_data(d, None, None)?,
            },
        };
        Ok(Self {
            t,
            attached: AtomicBool::new(false),
            hermetic: false,
        })
    }

    #[getter]
    fn shape<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.t.sizes())
    }
    fn size<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        self.shape(py)
    }
    #[getter]
    fn dtype(&self) -> PyDType {
        PyDType { st: self.t.dtype() }
    }
    #[getter]
    fn device(&self) -> PyDevice {
        PyDevice { d: self.t.device() }
    }
    #[getter]
    fn is_meta(&self) -> bool {
        self.t.is_meta()
    }
    fn dim(&self) -> usize {
        self.t.dim()
    }
    fn numel(&self) -> usize {
        self.t.numel()
    }
    fn stride<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.t.strides())
    }
    fn is_contiguous(&self) -> bool {
        self.t.is_contiguous()
    }
    fn data_ptr(&self) -> usize {
        self.t.data_ptr()
    }
    fn tolist(slf: &Bound<'_, Self>) -> PyResult<Py<PyAny>> {
        let this = slf.borrow();
        if this.t.is_python_dispatch() {
            return Err(crate::errors::runtime_error(format!(
                ".tolist() is not supported for tensor subclasses, got {}",
                slf.get_type().name()?
            )));
        }
        data_to_py(slf.py(), &this.t)
    }
    /// The storage; the same Python object every time while the tensor lives.
    fn untyped_storage(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        wrap_storage(py, self.t.storage())
    }
    fn __len__(&self) -> PyResult<usize> {
        self.t
            .sizes()
            .first()
            .copied()
            .ok_or_else(|| crate::errors::type_error("len() of a 0-d tensor"))
    }
    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        tensor_repr(slf)
    }
}

#[pymethods]
impl PyStorage {
    /// `UntypedStorage(nbytes, device=None)`: a new zeroed storage.
    #[new]
    #[pyo3(signature = (nbytes=0, *, device=None))]
    fn py_new(nbytes: usize, device: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let s = Storage::new(nbytes, parse_device(device)?, true).py()?;
        Ok(Self {
            s,
            attached: AtomicBool::new(false),
        })
    }

    fn nbytes(&self) -> usize {
        self.s.nbytes()
    }
    fn data_ptr(&self) -> usize {
        self.s.data_ptr()
    }
    #[getter]
    fn device(&self) -> PyDevice {
        PyDevice { d: self.s.device() }
    }
    fn __repr__(&self) -> String {
        format!(
            "opdispatch.UntypedStorage(nbytes={}, device='{}')",
            self.s.nbytes(),
            self.s.device()
        )
    }
}
