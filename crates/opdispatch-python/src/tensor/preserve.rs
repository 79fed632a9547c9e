//! PyObject preservation (spec 6.5, refcount-coupled): the tensor crate's hooks, and the
//! wrap/unwrap between a handle and its one Python object.

use std::ffi::c_void;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};

use opdispatch_dispatch::HermeticPyObjectTLS;
use opdispatch_tensor::{PyObjectHooks, Storage, Tensor};
use pyo3::prelude::*;
use pyo3::{PyClass, PyClassInitializer};

use crate::tensor::{_tensor_init, new_object, FastLayout, PyStorage, PyTensor};

pub(super) struct Hooks;

impl PyObjectHooks for Hooks {
    fn incref(&self, obj: *mut c_void) {
        // SAFETY: `obj` is a live Python object attached to a slot (hook contract).
        Python::attach(|_| unsafe { pyo3::ffi::Py_IncRef(obj.cast()) });
    }
    fn decref(&self, obj: *mut c_void) {
        // SAFETY: as above; this gives back the reference taken by `incref`.
        Python::attach(|_| unsafe { pyo3::ffi::Py_DecRef(obj.cast()) });
    }
    fn only_native_reference(&self, obj: *mut c_void) -> bool {
        // SAFETY: as above; the count is read with the GIL held.
        Python::attach(|_| unsafe { pyo3::ffi::Py_REFCNT(obj.cast()) } == 1)
    }
}

pub(super) static HOOKS: Hooks = Hooks;

/// Long tensor computations release the GIL (PyTorch releases it around every operator).
pub(super) struct ReleaseGil;

impl opdispatch_tensor::ComputeHook for ReleaseGil {
    fn run_released(&self, f: &mut (dyn FnMut() + Send)) {
        // Only a thread that holds the GIL has it to release (kernels run on any thread), and
        // after interpreter exit there is nothing to release.
        if opdispatch_tensor::pyobject_hooks_disarmed() {
            return f();
        }
        // SAFETY: PyGILState_Check only reads this thread's state and may be called with or
        // without the GIL (the interpreter is alive: the hooks are not disarmed).
        if unsafe { pyo3::ffi::PyGILState_Check() } == 0 {
            return f();
        }
        // The thread holds the GIL, so attaching is only bookkeeping; `detach` releases it
        // and takes it back (also when `f` panics).
        Python::attach(|py| py.detach(f));
    }
}

pub(super) static RELEASE_GIL: ReleaseGil = ReleaseGil;

/// Makes the preservation hooks no-ops (called at interpreter exit): tensors released by Rust
/// after Python has finalized must not call into it.
#[pyfunction]
pub(crate) fn _disarm_pyobject_hooks() {
    opdispatch_tensor::disarm_pyobject_hooks();
}

/// Installs the preservation hooks (once per process).
pub(crate) fn install_hooks() {
    opdispatch_tensor::install_pyobject_hooks(&HOOKS);
    opdispatch_tensor::install_compute_hook(&RELEASE_GIL);
}

/// A handle whose impl carries a PyObject slot (`Tensor`, `Storage`).
pub(super) trait Preserved: Clone + Sized {
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
pub(super) trait Wrapper: PyClass + Into<PyClassInitializer<Self>> {
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
pub(super) fn attach_object<W: Wrapper>(obj: &Bound<'_, W>) -> Option<NonNull<c_void>> {
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

/// Returns the Python object for `h`: the preserved one, or a new one (recorded in the slot
/// unless hermetic mode is on, in which case the slot is neither read nor written).
pub(super) fn wrap<W: Wrapper>(py: Python<'_>, mut h: W::H) -> PyResult<Py<PyAny>> {
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
pub(crate) fn wrap_tensor(py: Python<'_>, t: Tensor) -> PyResult<Py<PyAny>> {
    wrap::<PyTensor>(py, t)
}

/// The Python object for storage `s` (see [`wrap`]).
pub(crate) fn wrap_storage(py: Python<'_>, s: Storage) -> PyResult<Py<PyAny>> {
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
pub(super) fn peek_tensor<'a>(t: &'a Bound<'_, PyTensor>) -> Option<&'a PyTensor> {
    let offset = (*PyTensor::layout().0.get()?)?;
    // SAFETY: see above; `t` is a live instance of PyTensor (or a subclass) whose value sits at
    // `offset`, checked on the first object pyo3 built.
    Some(unsafe { &*t.as_ptr().cast::<u8>().add(offset).cast::<PyTensor>() })
}

#[cfg(Py_GIL_DISABLED)]
pub(super) fn peek_tensor<'a>(_t: &'a Bound<'_, PyTensor>) -> Option<&'a PyTensor> {
    None
}

/// Extracts the tensor handle from a Python Tensor (or subclass) object. An object created
/// from Python that was never recorded in its slot (a subclass `__init__` that skipped
/// `super().__init__()`) is recorded now, before it reaches the dispatcher.
pub(crate) fn unwrap_tensor(obj: &Bound<'_, PyAny>) -> PyResult<Tensor> {
    let Ok(t) = obj.cast::<PyTensor>() else {
        return Err(crate::errors::type_error(format!(
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
