//! Allocating wrapper objects with `tp_alloc` once a probe showed the layout is pyo3's.

use opdispatch_tensor::Tensor;
use pyo3::prelude::*;

use crate::tensor::{PyTensor, Wrapper};

/// Where a wrapper's value sits in its object, once an object built by pyo3 showed that
/// `tp_alloc` plus writing the value gives the same object (`None`: it did not; use pyo3).
pub(super) struct FastLayout(pub(super) std::sync::OnceLock<Option<usize>>);

impl FastLayout {
    pub(super) const fn new() -> Self {
        Self(std::sync::OnceLock::new())
    }
}

/// A new `W` object. pyo3 builds objects through the base type's `tp_new` (`object_new`), which
/// on CPython 3.11 and 3.12 creates the instance `__dict__` eagerly, and every hermetic crossing
/// makes one of these objects. Like PyTorch's `THPVariable_NewWithVar`, this allocates with
/// `tp_alloc` instead and leaves the `__dict__` to be created on first use. That is only done
/// after checking, on the first object pyo3 built, that everything in the object besides the
/// value and the `__dict__` slot is zero as `tp_alloc` leaves it (pyo3's own initial state).
pub(super) fn new_object<'py, W: Wrapper>(
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
pub(super) fn probe_layout<W: Wrapper>(obj: &Bound<'_, W>) -> Option<usize> {
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
