//! Python `Tensor` and `UntypedStorage`, and PyObject preservation (spec 6.5, refcount-coupled).
//!
//! A Python object holds one counted handle to its impl. Outside hermetic mode, wrapping an impl
//! returns the object recorded in its `PyObjectSlot` (creating and attaching one if there is
//! none); the tensor crate's intrusive count then keeps that object alive exactly while Rust
//! holds further references (hooks below). In hermetic mode every wrap makes a fresh object and
//! the slot is neither read nor written.

use std::ffi::c_void;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::errors::exc::{
    RuntimeError as PyRuntimeError, TypeError as PyTypeError, ValueError as PyValueError,
};
use opdispatch_dispatch::HermeticPyObjectTLS;
use opdispatch_tensor::{Device, PyObjectHooks, Scalar, ScalarType, Storage, Tensor};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};
use pyo3::{PyClass, PyClassInitializer};

use crate::errors::IntoPyResult;

struct Hooks;

impl PyObjectHooks for Hooks {
    fn incref(&self, obj: *mut c_void) {
        // SAFETY: `obj` is a live Python object attached to a slot (hook contract).
        Python::attach(|_| unsafe { pyo3::ffi::Py_IncRef(obj.cast()) });
    }
    fn decref(&self, obj: *mut c_void) {
        // SAFETY: as above; this gives back the reference taken by `incref`.
        Python::attach(|_| unsafe { pyo3::ffi::Py_DecRef(obj.cast()) });
    }
}

static HOOKS: Hooks = Hooks;

/// Long tensor computations release the GIL (PyTorch releases it around every operator).
struct ReleaseGil;

impl opdispatch_tensor::ComputeHook for ReleaseGil {
    fn run_released(&self, f: &mut (dyn FnMut() + Send)) {
        // Only a thread that holds the GIL has it to release (kernels run on any thread), and
        // after interpreter exit there is nothing to release.
        // SAFETY: PyGILState_Check may be called with or without the GIL.
        if opdispatch_tensor::pyobject_hooks_disarmed()
            || unsafe { pyo3::ffi::PyGILState_Check() } == 0
        {
            return f();
        }
        // The thread holds the GIL, so attaching is only bookkeeping; `detach` releases it
        // and takes it back (also when `f` panics).
        Python::attach(|py| py.detach(f));
    }
}

static RELEASE_GIL: ReleaseGil = ReleaseGil;

/// Makes the preservation hooks no-ops (called at interpreter exit): tensors released by Rust
/// after Python has finalized must not call into it.
#[pyfunction]
pub fn _disarm_pyobject_hooks() {
    opdispatch_tensor::disarm_pyobject_hooks();
}

/// Installs the preservation hooks (once per process).
pub fn install_hooks() {
    opdispatch_tensor::install_pyobject_hooks(&HOOKS);
    opdispatch_tensor::install_compute_hook(&RELEASE_GIL);
}

/// `opdispatch.Tensor`.
#[pyclass(name = "Tensor", module = "opdispatch", subclass, dict, weakref)]
pub struct PyTensor {
    pub t: Tensor,
    /// Whether this object is the one recorded in the impl's slot.
    attached: AtomicBool,
    /// Made by a hermetic-mode crossing: a throwaway wrapper that is never recorded.
    hermetic: bool,
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
pub struct PyStorage {
    pub s: Storage,
    attached: AtomicBool,
}

impl Drop for PyStorage {
    fn drop(&mut self) {
        if self.attached.load(Ordering::Acquire) {
            self.s.detach_pyobject();
        }
    }
}

/// A handle whose impl carries a PyObject slot (`Tensor`, `Storage`).
trait Preserved: Clone + Sized {
    fn slot(&self) -> &opdispatch_tensor::PyObjectSlot;
    /// See `Tensor::into_pyobject_ref`.
    fn into_pyobject_ref(self) -> Result<NonNull<c_void>, Self>;
    /// # Safety
    /// `p` must be a live Python object that owns a handle to this impl.
    unsafe fn attach(&self, p: NonNull<c_void>) -> Result<(), opdispatch_tensor::AttachError>;
}

impl Preserved for Tensor {
    fn slot(&self) -> &opdispatch_tensor::PyObjectSlot {
        self.pyobj_slot()
    }
    fn into_pyobject_ref(self) -> Result<NonNull<c_void>, Self> {
        Tensor::into_pyobject_ref(self)
    }
    unsafe fn attach(&self, p: NonNull<c_void>) -> Result<(), opdispatch_tensor::AttachError> {
        // SAFETY: forwarded contract.
        unsafe { self.attach_pyobject(p) }
    }
}

impl Preserved for Storage {
    fn slot(&self) -> &opdispatch_tensor::PyObjectSlot {
        self.pyobj_slot()
    }
    fn into_pyobject_ref(self) -> Result<NonNull<c_void>, Self> {
        Storage::into_pyobject_ref(self)
    }
    unsafe fn attach(&self, p: NonNull<c_void>) -> Result<(), opdispatch_tensor::AttachError> {
        // SAFETY: forwarded contract.
        unsafe { self.attach_pyobject(p) }
    }
}

/// A pyclass owning one preserved handle plus whether it is the object in the slot.
trait Wrapper: PyClass + Into<PyClassInitializer<Self>> {
    type H: Preserved;
    /// A new wrapper; `hermetic` is the current hermetic-mode state (the caller has read it).
    fn fresh(h: Self::H, hermetic: bool) -> Self;
    /// This class's object layout, for [`new_object`].
    fn layout() -> &'static FastLayout;
    fn handle(&self) -> &Self::H;
    fn attached(&self) -> &AtomicBool;
}

impl Wrapper for PyTensor {
    type H = Tensor;
    fn layout() -> &'static FastLayout {
        static L: FastLayout = FastLayout::new();
        &L
    }
    fn fresh(t: Tensor, hermetic: bool) -> Self {
        Self {
            t,
            attached: AtomicBool::new(false),
            hermetic,
        }
    }
    fn handle(&self) -> &Tensor {
        &self.t
    }
    fn attached(&self) -> &AtomicBool {
        &self.attached
    }
}

impl Wrapper for PyStorage {
    type H = Storage;
    fn layout() -> &'static FastLayout {
        static L: FastLayout = FastLayout::new();
        &L
    }
    fn fresh(s: Storage, _hermetic: bool) -> Self {
        Self {
            s,
            attached: AtomicBool::new(false),
        }
    }
    fn handle(&self) -> &Storage {
        &self.s
    }
    fn attached(&self) -> &AtomicBool {
        &self.attached
    }
}

/// Records `obj` in its impl's slot (outside hermetic mode). Returns the object already
/// recorded there if another one won (a race, or an earlier object).
fn attach_object<W: Wrapper>(obj: &Bound<'_, W>) -> Option<NonNull<c_void>> {
    let this = obj.borrow();
    let p = NonNull::new(obj.as_ptr().cast::<c_void>()).expect("live object is non-null");
    // SAFETY: `obj` is a live Python object owning a handle to this impl.
    match unsafe { this.handle().attach(p) } {
        Ok(()) => {
            this.attached().store(true, Ordering::Release);
            None
        }
        Err(opdispatch_tensor::AttachError::AlreadyAttached(other)) => Some(other),
        Err(opdispatch_tensor::AttachError::NoHooks) => None,
    }
}

/// Where a wrapper's value sits in its object, once an object built by pyo3 showed that
/// `tp_alloc` plus writing the value gives the same object (`None`: it did not; use pyo3).
struct FastLayout(std::sync::OnceLock<Option<usize>>);

impl FastLayout {
    const fn new() -> Self {
        Self(std::sync::OnceLock::new())
    }
}

/// A new `W` object. pyo3 builds objects through the base type's `tp_new` (`object_new`), which
/// on CPython 3.11 and 3.12 creates the instance `__dict__` eagerly, and every hermetic crossing
/// makes one of these objects. Like PyTorch's `THPVariable_NewWithVar`, this allocates with
/// `tp_alloc` instead and leaves the `__dict__` to be created on first use. That is only done
/// after checking, on the first object pyo3 built, that everything in the object besides the
/// value and the `__dict__` slot is zero as `tp_alloc` leaves it (pyo3's own initial state).
fn new_object<'py, W: Wrapper>(
    py: Python<'py>,
    value: W,
    layout: &FastLayout,
) -> PyResult<Bound<'py, W>> {
    if let Some(Some(offset)) = layout.0.get() {
        let tp = py.get_type::<W>();
        // SAFETY: `tp_alloc` returns a zeroed object of the type's basic size (or NULL with an
        // exception set); the probe below showed that such an object with the value written at
        // `offset` is exactly what pyo3 builds, minus the lazily created `__dict__`.
        unsafe {
            let t = tp.as_type_ptr();
            let alloc = (*t).tp_alloc.unwrap_or(pyo3::ffi::PyType_GenericAlloc);
            let obj = alloc(t, 0);
            if obj.is_null() {
                return Err(PyErr::fetch(py));
            }
            std::ptr::write(obj.cast::<u8>().add(*offset).cast::<W>(), value);
            return Ok(Bound::from_owned_ptr(py, obj).cast_into_unchecked());
        }
    }
    let obj = Bound::new(py, value)?;
    layout.0.get_or_init(|| probe_layout(&obj));
    Ok(obj)
}

/// A new, unrecorded object of `cls` (`PyTensor` or a Python subclass of it) holding `t`,
/// without running `cls.__new__`/`__init__` (for `_make_wrapper_subclass` and `as_subclass`).
/// Allocated like [`new_object`] once the layout is known (a subclass keeps the base's value
/// offset and gets zeroed extra slots from `tp_alloc`), else through `Tensor.__new__(cls)`.
pub(crate) fn new_tensor_of_type<'py>(
    cls: &Bound<'py, pyo3::types::PyType>,
    t: Tensor,
) -> PyResult<Bound<'py, PyTensor>> {
    let py = cls.py();
    let value = PyTensor::fresh(t, false);
    if let Some(Some(offset)) = PyTensor::layout().0.get() {
        // SAFETY: `cls` is PyTensor or a subtype (checked by the caller), so its objects start
        // with PyTensor's layout; `tp_alloc` returns a zeroed object of the subtype's size (or
        // NULL with an exception set) and the value is written where pyo3 keeps it.
        unsafe {
            let tp = cls.as_type_ptr();
            let alloc = (*tp).tp_alloc.unwrap_or(pyo3::ffi::PyType_GenericAlloc);
            let obj = alloc(tp, 0);
            if obj.is_null() {
                return Err(PyErr::fetch(py));
            }
            std::ptr::write(obj.cast::<u8>().add(*offset).cast::<PyTensor>(), value);
            return Ok(Bound::from_owned_ptr(py, obj).cast_into_unchecked());
        }
    }
    let obj = py
        .get_type::<PyTensor>()
        .getattr(pyo3::intern!(py, "__new__"))?
        .call1((cls,))?
        .cast_into::<PyTensor>()?;
    obj.borrow_mut().t = value.t.clone();
    Ok(obj)
}

/// The value's offset in `obj` if every other byte of the object after its header is zero,
/// apart from the `__dict__` slot (which CPython may have filled).
fn probe_layout<W: Wrapper>(obj: &Bound<'_, W>) -> Option<usize> {
    let base = obj.as_ptr().cast::<u8>();
    let value = std::ptr::from_ref::<W>(&obj.borrow()).cast::<u8>();
    let offset = value as usize - base as usize;
    // SAFETY: reading the bytes of a live object within its type's basic size.
    unsafe {
        let t = obj.as_any().get_type().as_type_ptr();
        let size = usize::try_from((*t).tp_basicsize).ok()?;
        let dict = usize::try_from((*t).tp_dictoffset).ok()?;
        let header = std::mem::size_of::<pyo3::ffi::PyObject>();
        let word = std::mem::size_of::<usize>();
        let value_end = offset + std::mem::size_of::<W>();
        let clean = (header..size)
            .filter(|&i| !(offset..value_end).contains(&i) && !(dict..dict + word).contains(&i))
            .all(|i| *base.add(i) == 0);
        (clean && offset >= header && value_end <= size).then_some(offset)
    }
}

/// Returns the Python object for `h`: the preserved one, or a new one (recorded in the slot
/// unless hermetic mode is on, in which case the slot is neither read nor written).
fn wrap<W: Wrapper>(py: Python<'_>, mut h: W::H) -> PyResult<Py<PyAny>> {
    let hermetic = HermeticPyObjectTLS::get_state();
    if !hermetic {
        // The common return path: our handle is the last one besides the object's, so the
        // Python reference Rust held becomes the caller's (no decref-then-incref).
        h = match h.into_pyobject_ref() {
            // SAFETY: a live object and a reference we now own.
            Ok(p) => return Ok(unsafe { Bound::from_owned_ptr(py, p.as_ptr().cast()).unbind() }),
            Err(h) => h,
        };
        if let Some(p) = h.slot().get() {
            // SAFETY: an attached object is alive while we hold a handle besides its own
            // (our `h`), because the tensor crate then keeps a Python reference to it.
            return Ok(unsafe { Bound::from_borrowed_ptr(py, p.as_ptr().cast()).unbind() });
        }
    }
    let obj = new_object(py, W::fresh(h, hermetic), W::layout())?;
    if !hermetic {
        if let Some(other) = attach_object(&obj) {
            // Another thread won the race: use its object (alive for the same reason).
            // SAFETY: see above.
            return Ok(unsafe { Bound::from_borrowed_ptr(py, other.as_ptr().cast()).unbind() });
        }
    }
    Ok(obj.into_any().unbind())
}

/// The Python object for tensor `t` (see [`wrap`]).
pub fn wrap_tensor(py: Python<'_>, t: Tensor) -> PyResult<Py<PyAny>> {
    wrap::<PyTensor>(py, t)
}

/// The Python object for storage `s` (see [`wrap`]).
pub fn wrap_storage(py: Python<'_>, s: Storage) -> PyResult<Py<PyAny>> {
    wrap::<PyStorage>(py, s)
}

/// The value of a tensor object without registering a pyo3 borrow (a borrow is two atomic
/// operations, and every tensor argument of every call is unwrapped), once the object layout
/// is known (see [`new_object`]; subclasses keep the base's value offset).
///
/// Sound because the GIL is held and the caller only reads and clones, running no Python code,
/// so no mutable borrow can begin meanwhile; the one mutable borrower (`_swap_tensors`) runs no
/// Python code while it holds its borrows, so none can be active here either.
#[cfg(not(Py_GIL_DISABLED))]
fn peek_tensor<'a>(t: &'a Bound<'_, PyTensor>) -> Option<&'a PyTensor> {
    let offset = (*PyTensor::layout().0.get()?)?;
    // SAFETY: see above; `t` is a live instance of PyTensor (or a subclass) whose value sits at
    // `offset`, checked on the first object pyo3 built.
    Some(unsafe { &*t.as_ptr().cast::<u8>().add(offset).cast::<PyTensor>() })
}

#[cfg(Py_GIL_DISABLED)]
fn peek_tensor<'a>(_t: &'a Bound<'_, PyTensor>) -> Option<&'a PyTensor> {
    None
}

/// Extracts the tensor handle from a Python Tensor (or subclass) object. An object created
/// from Python that was never recorded in its slot (a subclass `__init__` that skipped
/// `super().__init__()`) is recorded now, before it reaches the dispatcher.
pub fn unwrap_tensor(obj: &Bound<'_, PyAny>) -> PyResult<Tensor> {
    let Ok(t) = obj.cast::<PyTensor>() else {
        return Err(PyTypeError::new_err(format!(
            "expected a Tensor, got {}",
            obj.get_type().name()?
        )));
    };
    {
        let borrowed;
        let this = match peek_tensor(t) {
            Some(this) => this,
            None => {
                borrowed = t.borrow();
                &*borrowed
            }
        };
        if this.attached.load(Ordering::Acquire)
            || this.hermetic
            || HermeticPyObjectTLS::get_state()
        {
            return Ok(this.t.clone());
        }
    }
    _tensor_init(t)?;
    Ok(t.borrow().t.clone())
}

// ------------------------------------------------------------------------ dtype / device

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
pub struct PyDType {
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
pub struct PyDevice {
    pub d: Device,
}

#[pymethods]
impl PyDevice {
    #[new]
    fn new(spec: &str) -> PyResult<Self> {
        spec.parse::<Device>()
            .map(|d| Self { d })
            .map_err(|e| PyRuntimeError::new_err(e.to_string()))
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
    fn __repr__(&self) -> String {
        format!("device(type='{}')", self.d)
    }
    fn __str__(&self) -> String {
        self.d.to_string()
    }
}

pub(crate) fn parse_dtype(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<ScalarType>> {
    match obj {
        None => Ok(None),
        Some(o) if o.is_none() => Ok(None),
        Some(o) => match o.extract::<PyDType>() {
            Ok(d) => Ok(Some(d.st)),
            Err(_) => Err(PyTypeError::new_err(format!(
                "dtype must be an opdispatch.dtype, got {}",
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
                .map_err(|e| PyRuntimeError::new_err(e.to_string()))
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

fn to_sizes(v: &[i64]) -> PyResult<Vec<usize>> {
    v.iter()
        .map(|&x| {
            usize::try_from(x).map_err(|_| {
                PyRuntimeError::new_err(format!(
                    "Trying to create tensor with negative dimension {x}: {v:?}"
                ))
            })
        })
        .collect()
}

pub fn scalar_from_py(o: &Bound<'_, PyAny>) -> PyResult<Scalar> {
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
    Err(PyTypeError::new_err(format!(
        "expected a number, got {}",
        o.get_type().name()?
    )))
}

pub fn scalar_to_py(py: Python<'_>, s: Scalar) -> PyResult<Py<PyAny>> {
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

fn flatten_data(
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
        return Err(PyValueError::new_err(
            "expected sequence of equal-length lists",
        ));
    }
    out.push(scalar_from_py(o)?);
    Ok(())
}

fn record_dim(shape: &mut Vec<usize>, depth: usize, n: usize) -> PyResult<()> {
    if depth == shape.len() {
        shape.push(n);
        Ok(())
    } else if shape.get(depth) == Some(&n) {
        Ok(())
    } else {
        Err(PyValueError::new_err(format!(
            "expected sequence of length {} at dim {depth} (got {n})",
            shape.get(depth).copied().unwrap_or(0)
        )))
    }
}

/// Builds a tensor from (nested lists of) Python numbers.
#[pyfunction]
#[pyo3(signature = (data, *, dtype=None, device=None))]
pub fn tensor(
    py: Python<'_>,
    data: &Bound<'_, PyAny>,
    dtype: Option<&Bound<'_, PyAny>>,
    device: Option<&Bound<'_, PyAny>>,
) -> PyResult<Py<PyAny>> {
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
    let dt = parse_dtype(dtype)?
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
                    return Err(PyTypeError::new_err(
                        "complex data is not supported by opdispatch.tensor yet",
                    ))
                }
            });
        }
        Tensor::from_vec(out, &shape)
    }
    .py()?;
    let t = opdispatch_tensor::ops::to(&base, Some(dt), Some(dev)).py()?;
    wrap_tensor(py, t)
}

fn data_to_py(py: Python<'_>, t: &Tensor) -> PyResult<Py<PyAny>> {
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

const HERMETIC_SUBCLASS_ERROR: &str = "While HermeticPyObject was enabled, we attempted to create a tensor subclass with __torch_dispatch__.  This violates the invariant that operations in HermeticPyObject have equivalent C++ implementations. If your operator registered from Python operator registration isn't doing anything strange, there may be an internal PyTorch bug involving not appropriately disabling TorchDispatchMode before executing Python op registration.";

/// Completes construction of a Python-created tensor object (`Tensor(...)`, subclass instances,
/// `as_subclass`): records it in its impl's slot unless hermetic mode is on, and gives the impl
/// the Python keys when the class defines `__torch_dispatch__` (PyTorch's `THPVariable_NewWithVar`).
#[pyfunction]
pub fn _tensor_init(obj: &Bound<'_, PyTensor>) -> PyResult<()> {
    let ty = obj.get_type();
    let has_td = ty.hasattr(pyo3::intern!(obj.py(), "__torch_dispatch__"))?;
    init_tensor_object(obj, has_td)
}

/// [`_tensor_init`] for a caller that already knows whether the class defines
/// `__torch_dispatch__`.
pub(crate) fn init_tensor_object(obj: &Bound<'_, PyTensor>, has_td: bool) -> PyResult<()> {
    if HermeticPyObjectTLS::get_state() {
        if has_td {
            return Err(PyRuntimeError::new_err(HERMETIC_SUBCLASS_ERROR));
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
pub fn _swap_tensors(a: &Bound<'_, PyTensor>, b: &Bound<'_, PyTensor>) -> PyResult<()> {
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
pub fn _storage_init(obj: &Bound<'_, PyStorage>) -> PyResult<()> {
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
        py: Python<'_>,
        data: Option<&Bound<'_, PyAny>>,
        _args: &Bound<'_, PyTuple>,
        _kwargs: Option<&Bound<'_, pyo3::types::PyDict>>,
    ) -> PyResult<Self> {
        let t = match data {
            None => Tensor::empty(&[0], ScalarType::Float32, Device::Cpu).py()?,
            Some(d) => match d.cast::<PyTensor>() {
                Ok(src) => alias_of(&src.borrow().t)?,
                Err(_) => unwrap_tensor(tensor(py, d, None, None)?.bind(py))?,
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
            return Err(PyRuntimeError::new_err(format!(
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
            .ok_or_else(|| PyTypeError::new_err("len() of a 0-d tensor"))
    }
    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        if slf.borrow().t.is_python_dispatch() {
            return crate::wrapper::python_tensor_repr(slf);
        }
        let this = slf.borrow();
        let dev = this.t.device();
        if this.t.is_meta() {
            return Ok(format!(
                "tensor(..., device='meta', size={}{})",
                tuple_str(this.t.sizes()),
                dtype_suffix(this.t.dtype(), true)
            ));
        }
        let body = format_data(&this.t.to_scalars().py()?, this.t.sizes(), this.t.dtype());
        let mut s = format!("tensor({body}");
        if dev != Device::Cpu {
            s.push_str(&format!(", device='{dev}'"));
        }
        s.push_str(&dtype_suffix(this.t.dtype(), false));
        s.push(')');
        Ok(s)
    }
}

fn tuple_str(s: &[usize]) -> String {
    format!(
        "({})",
        s.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
            + if s.len() == 1 { "," } else { "" }
    )
}

fn dtype_suffix(st: ScalarType, always: bool) -> String {
    let default = matches!(
        st,
        ScalarType::Float32 | ScalarType::Int64 | ScalarType::Bool
    );
    if always && st != ScalarType::Float32 || !default {
        format!(", dtype=opdispatch.{}", st.name())
    } else {
        String::new()
    }
}

fn format_scalar(v: Scalar, st: ScalarType, all_int_valued: bool) -> String {
    match v {
        Scalar::Bool(b) => if b { "True" } else { "False" }.to_owned(),
        Scalar::Int(i) => i.to_string(),
        Scalar::Float(f) if st.is_floating_point() => {
            if all_int_valued && f.is_finite() {
                format!("{f:.0}.")
            } else {
                format!("{f:.4}")
            }
        }
        Scalar::Float(f) => f.to_string(),
        Scalar::Complex(r, i) => format!("{r:.4}{i:+.4}j"),
    }
}

/// PyTorch-style body: elements formatted alike, right-aligned to a common width, rows
/// broken and indented under the opening bracket.
fn format_data(values: &[Scalar], shape: &[usize], st: ScalarType) -> String {
    let all_int = values
        .iter()
        .all(|v| matches!(v, Scalar::Float(f) if f.fract() == 0.0));
    let cells: Vec<String> = values
        .iter()
        .map(|v| format_scalar(*v, st, all_int))
        .collect();
    let width = cells.iter().map(String::len).max().unwrap_or(0);
    fn rec(cells: &[String], shape: &[usize], width: usize, depth: usize) -> String {
        match shape.split_first() {
            None => format!("{:>width$}", cells[0]),
            Some((&n, rest)) => {
                let step: usize = rest.iter().product();
                let sep = if rest.is_empty() {
                    ", ".to_owned()
                } else {
                    format!(",{}{}", "\n".repeat(rest.len()), " ".repeat(depth + 8))
                };
                let parts: Vec<String> = (0..n)
                    .map(|i| rec(&cells[i * step..(i + 1) * step], rest, width, depth + 1))
                    .collect();
                format!("[{}]", parts.join(&sep))
            }
        }
    }
    if shape.is_empty() {
        return cells.first().cloned().unwrap_or_default();
    }
    rec(&cells, shape, width, 0)
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
