//! `_C._AtenMethod`: the tensor methods and module functions that call an `aten` packet
//! (`t.add(u)`, `t.sum()`, `opdispatch.tanh(t)`), as one native callable each.
//!
//! A Python `def method(self, *args, **kwargs): return packet(self, *args, **kwargs)` costs a
//! frame and an argument repack per call, more than the dispatch itself. This object forwards
//! its vectorcall arguments unchanged to the packet (or to one overload, for the cases torch
//! binds to a single overload), and its type is a method descriptor, so `t.add(u)` calls it
//! with `t` as the first argument without making a bound method.

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};

use crate::tensor::PyTensor;

// CPython's bound-method constructor (public C API; pyo3-ffi does not declare it).
unsafe extern "C" {
    fn PyMethod_New(func: *mut ffi::PyObject, slf: *mut ffi::PyObject) -> *mut ffi::PyObject;
}

#[pyclass(name = "_AtenMethod", module = "opdispatch._C", frozen)]
pub(crate) struct PyAtenMethod {
    /// CPython's vectorcall entry (see [`install_method_vectorcall`]).
    vectorcall: ffi::vectorcallfunc,
    /// The packet every call goes to, except as below.
    target: Py<PyAny>,
    /// torch binds `add`/`sub`/`mul`/`div` with tensor-or-number operands to their `.Tensor`
    /// overload only (a number becomes a wrapped-number tensor), so modes see `aten.add.Tensor`.
    tensor_overload: Option<Py<PyAny>>,
    /// `t.view(2, 3)`: sizes given as separate ints become one list.
    vararg_sizes: bool,
    /// A Tensor method whose every signature takes only `self` (torch then offers
    /// `__torch_function__` with `self` as the overloaded argument even when plain).
    self_only: bool,
    name: String,
}

#[pymethods]
impl PyAtenMethod {
    #[new]
    #[pyo3(signature = (name, target, tensor_overload=None, vararg_sizes=false, self_only=false))]
    fn py_new(
        name: String,
        target: Py<PyAny>,
        tensor_overload: Option<Py<PyAny>>,
        vararg_sizes: bool,
        self_only: bool,
    ) -> Self {
        Self {
            vectorcall: method_vectorcall,
            target,
            tensor_overload,
            vararg_sizes,
            self_only,
            name,
        }
    }

    /// The slow entry (calls through `tp_call`, e.g. `PyObject_Call` with a tuple): the same
    /// forwarding.
    #[pyo3(signature = (*args, **kwargs))]
    fn __call__(
        slf: &Bound<'_, Self>,
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, pyo3::types::PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        let kw = crate::convert::Kwargs::from_dict(kwargs);
        if let Some(r) =
            crate::torch_function::maybe_handle(py, slf.as_any(), args.as_slice(), &kw)?
        {
            return Ok(r);
        }
        let this = slf.get();
        let target = this.choose(args.as_slice(), || {
            kwargs.is_some_and(|k| k.contains("out").unwrap_or(false))
        });
        if let Some(list) = this.sizes_list(py, args.as_slice())? {
            let a = PyTuple::new(py, [args.get_item(0)?, list.into_any()])?;
            return target.call(py, a, kwargs);
        }
        target.call(py, args, kwargs)
    }

    /// Instance access binds the tensor (`t.add` is a bound method); class access is the
    /// method itself. Calls `t.add(u)` skip this (the type is a method descriptor).
    fn __get__(
        slf: Bound<'_, Self>,
        obj: Option<Bound<'_, PyAny>>,
        _owner: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        bind_method(slf.into_any(), obj)
    }

    #[getter]
    fn __name__(&self) -> &str {
        &self.name
    }

    fn __repr__(&self) -> String {
        format!("<opdispatch method {}>", self.name)
    }
}

/// A method descriptor's `__get__`: class access gives the descriptor itself, instance access
/// a bound method of it.
fn bind_method(desc: Bound<'_, PyAny>, obj: Option<Bound<'_, PyAny>>) -> PyResult<Py<PyAny>> {
    let py = desc.py();
    match obj {
        None => Ok(desc.unbind()),
        // SAFETY: both pointers are live objects; PyMethod_New returns a new reference or
        // NULL with an exception set.
        Some(o) => unsafe {
            let m = PyMethod_New(desc.as_ptr(), o.as_ptr());
            Bound::from_owned_ptr_or_err(py, m).map(Bound::unbind)
        },
    }
}

/// Python's `isinstance(a, (Tensor, int, float, bool, complex))`.
fn is_number_or_tensor(a: &Bound<'_, PyAny>) -> bool {
    // SAFETY: `a` is a live object; the checks only read its type.
    let number = unsafe {
        let p = a.as_ptr();
        ffi::PyLong_Check(p) != 0 || ffi::PyFloat_Check(p) != 0 || ffi::PyComplex_Check(p) != 0
    };
    number || a.is_instance_of::<PyTensor>()
}

impl PyAtenMethod {
    /// The `__torch_function__` check, with this method as `func`.
    #[inline]
    fn torch_function(
        &self,
        py: Python<'_>,
        func: &Bound<'_, PyAny>,
        pos: &[Bound<'_, PyAny>],
        kw: &crate::convert::Kwargs<'_, '_>,
    ) -> PyResult<Option<Py<PyAny>>> {
        match pos {
            [this] if self.self_only && matches!(kw, crate::convert::Kwargs::None) => {
                crate::torch_function::maybe_handle_self(py, func, this)
            }
            _ => crate::torch_function::maybe_handle(py, func, pos, kw),
        }
    }

    /// The `.Tensor` overload for tensor/number operands, else the packet (which also takes
    /// `out=` to the `.out` overload).
    fn choose(&self, args: &[Bound<'_, PyAny>], has_out: impl FnOnce() -> bool) -> &Py<PyAny> {
        match &self.tensor_overload {
            Some(o) if args.iter().take(2).all(is_number_or_tensor) && !has_out() => o,
            _ => &self.target,
        }
    }

    /// `[*args[1:]]` when this method takes sizes as separate ints and was given them so.
    fn sizes_list<'py>(
        &self,
        py: Python<'py>,
        args: &[Bound<'py, PyAny>],
    ) -> PyResult<Option<Bound<'py, PyList>>> {
        if !self.vararg_sizes || args.len() < 2 {
            return Ok(None);
        }
        // SAFETY: live objects; the check reads the type only.
        let all_ints = args[1..]
            .iter()
            .all(|a| unsafe { ffi::PyLong_Check(a.as_ptr()) != 0 });
        if !all_ints {
            return Ok(None);
        }
        PyList::new(py, &args[1..]).map(Some)
    }
}

// The vectorcall function of every `_AtenMethod`.
crate::vectorcall::vectorcall_entry!(method_vectorcall => method_vectorcall_body);

/// # Safety
/// Vectorcall's contract: `callable` is an `_AtenMethod` (only its type points here), `args`
/// holds the positional arguments followed by one value per name in `kwnames`, all borrowed.
unsafe fn method_vectorcall_body(
    py: Python<'_>,
    callable: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargsf: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> PyResult<*mut ffi::PyObject> {
    let nargs = (nargsf as usize) & !ffi::PY_VECTORCALL_ARGUMENTS_OFFSET;
    // SAFETY: see the contract; `Bound<PyAny>` has an object pointer's layout (as in pyo3's
    // `PyTuple::as_slice`) and the slice only borrows the caller's array for the call.
    unsafe {
        let slf = pyo3::Borrowed::from_ptr(py, callable).cast_unchecked::<PyAtenMethod>();
        let m = slf.get();
        let mut names = None;
        let (pos, kw) = crate::vectorcall::split_args(py, args, nargs, kwnames, &mut names);
        // `func` is this method itself (`Tensor.sum`, `opdispatch.add`), as torch's bindings.
        if let Some(r) = m.torch_function(py, slf.as_any(), pos, &kw)? {
            return Ok(r.into_ptr());
        }
        let target = m.choose(pos, || {
            !kwnames.is_null()
                && pyo3::Borrowed::from_ptr(py, kwnames)
                    .cast_unchecked::<pyo3::types::PyTuple>()
                    .iter()
                    .any(|k| k.eq("out").unwrap_or(false))
        });
        if let Some(list) = m.sizes_list(py, pos)? {
            let nkw = if kwnames.is_null() {
                0
            } else {
                ffi::PyTuple_GET_SIZE(kwnames) as usize
            };
            let mut v: Vec<*mut ffi::PyObject> = Vec::with_capacity(2 + nkw);
            v.push(pos[0].as_ptr());
            v.push(list.as_ptr());
            v.extend((0..nkw).map(|i| *args.add(nargs + i)));
            let r = ffi::PyObject_Vectorcall(target.as_ptr(), v.as_ptr(), 2, kwnames);
            return Bound::from_owned_ptr_or_err(py, r).map(Bound::into_ptr);
        }
        // The arguments go on exactly as they came (the offset flag included: the caller's
        // array still has its free slot in front).
        let r = ffi::PyObject_Vectorcall(target.as_ptr(), args, nargsf as usize, kwnames);
        Bound::from_owned_ptr_or_err(py, r).map(Bound::into_ptr)
    }
}

/// Points `_AtenMethod`'s vectorcall slot at its instances' field and makes the type a method
/// descriptor. Run once at module init.
pub(crate) fn install_method_vectorcall(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let probe = Bound::new(
        py,
        PyAtenMethod::py_new("probe".into(), py.None(), None, false, false),
    )?;
    let ty = py.get_type::<PyAtenMethod>();
    // A method descriptor needs `tp_descr_get` (`__get__`).
    // SAFETY: the type object is alive (held by `ty`); reading one slot under the GIL.
    if unsafe { (*ty.as_type_ptr()).tp_descr_get.is_none() } {
        return Err(crate::errors::runtime_error("_AtenMethod lacks __get__"));
    }
    crate::vectorcall::install_vectorcall_slot(
        &ty,
        probe.as_any(),
        &probe.get().vectorcall,
        ffi::Py_TPFLAGS_METHOD_DESCRIPTOR,
    );
    Ok(())
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyAtenMethod>()?;
    install_method_vectorcall(m)
}
