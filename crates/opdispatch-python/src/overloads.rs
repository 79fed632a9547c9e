//! Overloads for `ops.<ns>.<op>`: the overload names of an operator, from the dispatcher's
//! base-name index (no scan over every registered operator), and the native overload packet,
//! which resolves a call to the first overload whose schema binds the arguments.

use std::sync::OnceLock;

use opdispatch_dispatch::{Dispatcher, OperatorHandle, Stack};
use parking_lot::Mutex;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple, PyType};
use smallvec::SmallVec;

use crate::convert::{bind_args, returns_to_py, Kwargs};
use crate::errors::{to_py, IntoPyResult};
use crate::module::fast_call::FastCall;
use crate::module::PyOperatorHandle;

/// The overloads of `qualified_name` (`"ns::op"`) that have a schema (a def): their overload
/// names, `""` for the default overload, sorted (so `""` comes first). Empty when there is no
/// such operator.
#[pyfunction]
pub(crate) fn _dispatch_get_overload_names(qualified_name: &str) -> Vec<String> {
    Dispatcher::singleton().overload_names(qualified_name)
}

// ------------------------------------------------------------------ overload packets

/// `ops.<ns>.<op>` for an operator with several overloads: a call binds the arguments to each
/// overload's schema in order and calls the first that binds (binding runs no kernel, so a
/// kernel's own error is never mistaken for a mismatch). Subclassed by
/// `opdispatch._ops._MultiOverloadPacket`.
///
/// Which overload bound is remembered per *argument signature* (the exact type of every
/// argument, the keyword names, list lengths and element types), so the common call binds once.
/// The signature determines whether each schema binds: binding looks at types only, except for
/// ints too large for 64 bits and nested lists, and calls with those are never cached.
#[pyclass(
    name = "_DispatchOverloadPacket",
    module = "opdispatch._C",
    frozen,
    subclass,
    extends = PyOperatorHandle
)]
pub(crate) struct PyOverloadPacket {
    /// CPython's vectorcall entry for packets (see [`install_packet_vectorcall`]); the base's
    /// own field calls the first overload only.
    vectorcall: ffi::vectorcallfunc,
    /// The overloads in resolution order.
    overloads: Box<[OperatorHandle]>,
    /// Their typed entries, looked up at the first call that chooses them.
    fast: Box<[OnceLock<FastCall>]>,
    cache: Mutex<ChoiceCache>,
}

/// An argument signature, as words (see [`signature`]).
type Signature = SmallVec<[usize; 8]>;

/// Signatures this packet has resolved, with the overload each chose.
#[derive(Default)]
struct ChoiceCache {
    entries: SmallVec<[(Signature, usize); 4]>,
    /// The entry replaced next once the cache is full.
    next: usize,
}

/// Entries kept per packet; a call site rarely varies its argument types more than this.
const CACHE_ENTRIES: usize = 8;
/// Longer list arguments are not cached (their signature would cost as much as the binding).
const MAX_CACHED_LIST: usize = 32;

impl ChoiceCache {
    fn get(&self, sig: &Signature) -> Option<usize> {
        self.entries.iter().find(|(s, _)| s == sig).map(|e| e.1)
    }
    fn insert(&mut self, sig: Signature, choice: usize) {
        if let Some(e) = self.entries.iter_mut().find(|(s, _)| *s == sig) {
            e.1 = choice;
        } else if self.entries.len() < CACHE_ENTRIES {
            self.entries.push((sig, choice));
        } else {
            self.entries[self.next] = (sig, choice);
            self.next = (self.next + 1) % CACHE_ENTRIES;
        }
    }
}

/// Appends `obj`'s part of a signature; `None` when a call with it must not be cached.
fn push_kind(sig: &mut Signature, obj: &Bound<'_, PyAny>, in_list: bool) -> Option<()> {
    let p = obj.as_ptr();
    // SAFETY: `p` is a live object (borrowed by `obj`); the checks only read its type.
    let ty = unsafe { ffi::Py_TYPE(p) };
    sig.push(ty as usize);
    // SAFETY: as above; PyLong_AsLongLongAndOverflow runs no Python code for an int instance.
    unsafe {
        if ffi::PyLong_Check(p) != 0 {
            let mut overflow = 0;
            let v = ffi::PyLong_AsLongLongAndOverflow(p, &mut overflow);
            if overflow != 0 || (v == -1 && !ffi::PyErr_Occurred().is_null()) {
                ffi::PyErr_Clear();
                return None;
            }
            return Some(());
        }
    }
    let items = if let Ok(l) = obj.cast::<PyList>() {
        if in_list || l.len() > MAX_CACHED_LIST {
            return None;
        }
        sig.push(l.len());
        l.iter().try_for_each(|x| push_kind(sig, &x, true))
    } else if let Ok(t) = obj.cast::<PyTuple>() {
        if in_list || t.len() > MAX_CACHED_LIST {
            return None;
        }
        sig.push(t.len());
        t.iter().try_for_each(|x| push_kind(sig, &x, true))
    } else {
        Some(())
    };
    items
}

/// The argument signature of a call, or `None` when it must not be cached.
fn signature(pos: &[Bound<'_, PyAny>], kwargs: Kwargs<'_, '_>) -> Option<Signature> {
    let mut sig = Signature::new();
    sig.push(pos.len());
    for a in pos {
        push_kind(&mut sig, a, false)?;
    }
    let keyword = |sig: &mut Signature, name: &Bound<'_, PyAny>, v: &Bound<'_, PyAny>| {
        // Names are strs, whose hashes are cached; a name's hash stands for the name.
        sig.push(name.hash().ok()? as usize);
        push_kind(sig, v, false)
    };
    match kwargs {
        Kwargs::None => {}
        Kwargs::Dict(d) => {
            sig.push(d.len());
            for (k, v) in d.iter() {
                keyword(&mut sig, &k, &v)?;
            }
        }
        Kwargs::Names { names, values } => {
            sig.push(values.len());
            for (k, v) in names.as_slice().iter().zip(values) {
                keyword(&mut sig, k, v)?;
            }
        }
    }
    Some(sig)
}

/// What trying one overload came to.
enum Attempt {
    /// The arguments bound and the overload was called (with this result).
    Called(PyResult<Py<PyAny>>),
    /// The arguments do not bind to its schema.
    Mismatch(PyErr),
}

/// Binds the arguments to `op`'s schema and, if they bind, calls it.
fn try_overload(
    py: Python<'_>,
    op: &OperatorHandle,
    pos: &[Bound<'_, PyAny>],
    kwargs: Kwargs<'_, '_>,
    on_bound: impl FnOnce(),
) -> PyResult<Attempt> {
    op.with_schema(|schema| {
        let schema =
            schema.ok_or_else(|| crate::errors::runtime_error("operator has no schema"))?;
        let mut stack = Stack::new();
        if let Err(e) = bind_args(schema, pos, kwargs, &mut stack) {
            return Ok(Attempt::Mismatch(e));
        }
        on_bound();
        let r = crate::errors::catch_kernel_panic(|| op.call_boxed(&mut stack).map_err(to_py))
            .and_then(|()| returns_to_py(py, schema, &mut stack));
        Ok(Attempt::Called(r))
    })
}

impl PyOverloadPacket {
    fn call(
        &self,
        py: Python<'_>,
        pos: &[Bound<'_, PyAny>],
        kwargs: Kwargs<'_, '_>,
    ) -> PyResult<Py<PyAny>> {
        let sig = signature(pos, kwargs);
        let cached = sig.as_ref().and_then(|s| self.cache.lock().get(s));
        if let Some(i) = cached {
            if matches!(kwargs, Kwargs::None) {
                let fast = self.fast[i].get_or_init(|| FastCall::for_op(&self.overloads[i]));
                if let Some(r) = fast.try_call(py, pos) {
                    return r;
                }
            }
            if let Attempt::Called(r) = try_overload(py, &self.overloads[i], pos, kwargs, || ())? {
                return r;
            }
        }
        let mut errors = Vec::new();
        for (i, op) in self.overloads.iter().enumerate() {
            // Remembered before the kernel runs: it may call this packet again.
            let remember = || {
                if let Some(s) = sig.clone() {
                    self.cache.lock().insert(s, i);
                }
            };
            match try_overload(py, op, pos, kwargs, remember)? {
                Attempt::Called(r) => return r,
                Attempt::Mismatch(e) => errors.push(e),
            }
        }
        let details: Vec<String> = errors
            .iter()
            .map(std::string::ToString::to_string)
            .collect();
        Err(crate::errors::type_error(format!(
            "Overloaded torch operator invoked from Python failed to match any schema:\n{}",
            details.join("\n\n")
        )))
    }

    fn new_init(overloads: Vec<OperatorHandle>) -> PyResult<PyClassInitializer<Self>> {
        let first = overloads
            .first()
            .cloned()
            .ok_or_else(|| crate::errors::runtime_error("an overload packet needs an overload"))?;
        Ok(
            PyClassInitializer::from(PyOperatorHandle::new(first)).add_subclass(Self {
                vectorcall: packet_vectorcall,
                fast: overloads.iter().map(|_| OnceLock::new()).collect(),
                overloads: overloads.into_boxed_slice(),
                cache: Mutex::new(ChoiceCache::default()),
            }),
        )
    }
}

#[pymethods]
impl PyOverloadPacket {
    /// `_DispatchOverloadPacket(qualified_name, overload_names)`: the overloads of `ns::op`
    /// named (in resolution order; `"default"` is the overload named `""`), each of which must
    /// have a schema.
    #[new]
    #[pyo3(signature = (qualified_name, overload_names, *_args, **_kwargs))]
    fn py_new(
        qualified_name: &str,
        overload_names: Vec<String>,
        _args: &Bound<'_, PyTuple>,
        _kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let d = Dispatcher::singleton();
        let handles = overload_names
            .iter()
            .map(|o| {
                d.find_schema_or_throw(qualified_name, if o == "default" { "" } else { o })
                    .py()
            })
            .collect::<PyResult<Vec<_>>>()?;
        Self::new_init(handles)
    }

    /// Calls the first overload whose schema binds the arguments.
    #[pyo3(signature = (*args, **kwargs))]
    fn __call__(
        slf: &Bound<'_, Self>,
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        let kw = Kwargs::from_dict(kwargs);
        if let Some(r) =
            crate::torch_function::maybe_handle(py, slf.as_any(), args.as_slice(), &kw)?
        {
            return Ok(r);
        }
        slf.get().call(py, args.as_slice(), kw)
    }
}

// The vectorcall function of every packet (as the handles' `op_vectorcall`).
crate::vectorcall::vectorcall_entry!(packet_vectorcall => packet_vectorcall_body);

/// # Safety
/// Vectorcall's contract: `callable` is an instance of `_DispatchOverloadPacket` (only such
/// objects' types point at this function), `args` holds the positional arguments followed by
/// one value per name in `kwnames` (a tuple of str, or NULL), all borrowed for the call.
unsafe fn packet_vectorcall_body(
    py: Python<'_>,
    callable: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargsf: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> PyResult<*mut ffi::PyObject> {
    let nargs = (nargsf as usize) & !ffi::PY_VECTORCALL_ARGUMENTS_OFFSET;
    // SAFETY: see the function's contract; `Bound<PyAny>` has the layout of an object pointer
    // (as in pyo3's `PyTuple::as_slice`), and the slices only borrow the caller's array.
    unsafe {
        let slf = pyo3::Borrowed::from_ptr(py, callable).cast_unchecked::<PyOverloadPacket>();
        let mut names = None;
        let (pos, kwargs) = crate::vectorcall::split_args(py, args, nargs, kwnames, &mut names);
        // `func` is the packet object (torch's `OpOverloadPacket`).
        if let Some(r) = crate::torch_function::maybe_handle(py, slf.as_any(), pos, &kwargs)? {
            return Ok(r.into_ptr());
        }
        slf.get().call(py, pos, kwargs).map(Py::into_ptr)
    }
}

/// Points `_DispatchOverloadPacket`'s vectorcall slot at the packets' own field. Run once at
/// module init, after `module::install_vectorcall`.
pub(crate) fn install_packet_vectorcall(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let d = Dispatcher::singleton();
    let probe = Bound::new(
        py,
        PyOverloadPacket::new_init(vec![d.find_schema_or_throw("aten::add", "Tensor").py()?])?,
    )?;
    let ty = py.get_type::<PyOverloadPacket>();
    crate::vectorcall::install_vectorcall_slot(&ty, probe.as_any(), &probe.get().vectorcall, 0);
    Ok(())
}

/// Gives a Python subclass of `_DispatchOverloadPacket` that does not override `__call__` the
/// packets' vectorcall entry (CPython before 3.12 does not pass the flag on to heap subtypes,
/// and a subclass that also derives from another handle class inherits that class's offset).
#[pyfunction]
pub(crate) fn _enable_packet_vectorcall(cls: &Bound<'_, PyType>) -> PyResult<bool> {
    let py = cls.py();
    let base = py.get_type::<PyOverloadPacket>();
    if !cls.is_subclass(&base)? {
        return Err(crate::errors::type_error(
            "expected a subclass of _DispatchOverloadPacket",
        ));
    }
    // SAFETY: both type objects are alive; reading slots and setting two of them under the GIL
    // (the offset is the base's, which every instance of a subclass has).
    unsafe {
        let (t, b) = (cls.as_type_ptr(), base.as_type_ptr());
        let call_addr = |ty: *mut ffi::PyTypeObject| (*ty).tp_call.map(|f| f as usize);
        if call_addr(t) != call_addr(b) {
            return Ok(false);
        }
        #[cfg(not(Py_GIL_DISABLED))]
        {
            (*t).tp_vectorcall_offset = (*b).tp_vectorcall_offset;
        }
        // Free-threaded builds inherit the offset (and the flag) and must not write them.
        #[cfg(Py_GIL_DISABLED)]
        if (*t).tp_vectorcall_offset != (*b).tp_vectorcall_offset {
            return Ok(false);
        }
        Ok(crate::vectorcall::inherit_vectorcall_flag(t))
    }
}
