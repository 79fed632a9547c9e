//! `_dispatch_library` / `_DispatchModule` and the `_dispatch_*` introspection functions.

use crate::errors::exc::RuntimeError as PyRuntimeError;
use opdispatch_dispatch::{
    parse_alias_analysis_kind, testing::t_t_kernel, tls_local_dispatch_key_set, CppFunction,
    DispatchKey, DispatchKeySet, Dispatcher, Library, LibraryKind, OperatorHandle, Stack,
};
use opdispatch_schema::{parse_name, parse_schema_or_name, SchemaOrName};
use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::convert::{bind_args, returns_to_py, Kwargs};
use crate::errors::{to_py, IntoPyResult};
use crate::holder::PythonKernelHolder;
use crate::keys::{extract_key, key_to_py, parse_opt_key, PyDispatchKeySet};
use crate::tensor::unwrap_tensor;

/// The registrations of one `_dispatch_library` call; dropping it deregisters them.
#[pyclass(name = "_DispatchModule", module = "opdispatch._C")]
pub struct DispatchModule {
    lib: Mutex<Library>,
}

impl DispatchModule {
    /// Runs a registration on the library, then (with every lock released) issues the
    /// warnings it produced, so warning filters and hooks may run any Python code and
    /// `-W error` turns them into exceptions.
    pub(crate) fn with_lib<R>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut Library) -> opdispatch_dispatch::Result<R>,
    ) -> PyResult<R> {
        let r = f(&mut self.lib.lock());
        crate::errors::flush_warnings(py)?;
        r.py()
    }
}

fn is_fallthrough_kernel(py: Python<'_>, func: &Bound<'_, PyAny>) -> PyResult<bool> {
    let ft = py
        .import("opdispatch.library")?
        .getattr("fallthrough_kernel")?;
    Ok(func.is(&ft))
}

/// The kernel `impl`/`fallback` register for a Python callable at `dispatch`: a real
/// fallthrough for `library.fallthrough_kernel`, otherwise a `PythonKernelHolder`.
fn python_kernel(
    py: Python<'_>,
    dispatch: &Bound<'_, PyAny>,
    func: &Bound<'_, PyAny>,
    with_keyset: bool,
    with_op: bool,
) -> PyResult<CppFunction> {
    let k = extract_key(dispatch)?;
    let f = if is_fallthrough_kernel(py, func)? {
        CppFunction::fallthrough()
    } else if func.hasattr("_opdispatch_grad_gate")? {
        // A custom op's Autograd kernel: native while nothing requires grad.
        CppFunction::boxed(crate::autograd::GradGatedKernel::new(PythonKernelHolder {
            func: func.clone().unbind(),
            with_keyset,
            with_op,
        }))
    } else {
        CppFunction::boxed(PythonKernelHolder {
            func: func.clone().unbind(),
            with_keyset,
            with_op,
        })
    };
    Ok(f.dispatch(k))
}

#[pymethods]
impl DispatchModule {
    #[pyo3(signature = (schema, alias=""))]
    fn def_<'py>(slf: Bound<'py, Self>, schema: &str, alias: &str) -> PyResult<Bound<'py, Self>> {
        let kind = parse_alias_analysis_kind(alias).py()?;
        slf.borrow()
            .with_lib(slf.py(), |l| l.def(schema, Some(kind)))?;
        Ok(slf)
    }
    fn def_legacy<'py>(slf: Bound<'py, Self>, schema: &str) -> PyResult<Bound<'py, Self>> {
        slf.borrow().with_lib(slf.py(), |l| l.def(schema, None))?;
        Ok(slf)
    }
    #[pyo3(signature = (name, dispatch="", debug="default_def_name_t_t"))]
    fn def_name_t_t<'py>(
        slf: Bound<'py, Self>,
        name: &str,
        dispatch: &str,
        debug: &str,
    ) -> PyResult<Bound<'py, Self>> {
        let mut f = t_t_kernel().debug(debug);
        if let Some(k) = parse_opt_key(dispatch)? {
            f = f.dispatch(k);
        }
        slf.borrow()
            .with_lib(slf.py(), |l| l.def_with(name, None, f))?;
        Ok(slf)
    }
    #[pyo3(signature = (schema, dispatch="", alias="", debug="default_def_schema_t_t"))]
    fn def_schema_t_t<'py>(
        slf: Bound<'py, Self>,
        schema: &str,
        dispatch: &str,
        alias: &str,
        debug: &str,
    ) -> PyResult<Bound<'py, Self>> {
        let kind = parse_alias_analysis_kind(alias).py()?;
        let mut f = t_t_kernel().debug(debug);
        if let Some(k) = parse_opt_key(dispatch)? {
            f = f.dispatch(k);
        }
        slf.borrow()
            .lib
            .lock()
            .def_with(schema, Some(kind), f)
            .py()?;
        Ok(slf)
    }
    #[pyo3(signature = (name, dispatch="", debug="impl_t_t"))]
    fn impl_t_t<'py>(
        slf: Bound<'py, Self>,
        name: &str,
        dispatch: &str,
        debug: &str,
    ) -> PyResult<Bound<'py, Self>> {
        let mut f = t_t_kernel().debug(debug);
        if let Some(k) = parse_opt_key(dispatch)? {
            f = f.dispatch(k);
        }
        slf.borrow().with_lib(slf.py(), |l| l.impl_(name, f))?;
        Ok(slf)
    }
    #[pyo3(signature = (dispatch=""))]
    fn fallback_fallthrough<'py>(
        slf: Bound<'py, Self>,
        dispatch: &str,
    ) -> PyResult<Bound<'py, Self>> {
        let mut f = CppFunction::fallthrough();
        if let Some(k) = parse_opt_key(dispatch)? {
            f = f.dispatch(k);
        }
        slf.borrow().with_lib(slf.py(), |l| l.fallback(f))?;
        Ok(slf)
    }
    /// Defines an operator; returns its name as written (no overload, no added namespace).
    #[pyo3(signature = (schema, alias_analysis="", tags=None))]
    fn define(
        &self,
        py: Python<'_>,
        schema: &str,
        alias_analysis: &str,
        tags: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<String> {
        let tags = crate::tags::extract_tags(tags)?;
        let kind = parse_alias_analysis_kind(alias_analysis).py()?;
        let written = match parse_schema_or_name(schema)
            .map_err(|e| PyRuntimeError::new_err(e.to_string()))?
        {
            SchemaOrName::Schema(s) => s.name.name.clone(),
            SchemaOrName::Name(n) => n.name.clone(),
        };
        self.with_lib(py, |l| l.def_with_tags(schema, Some(kind), &tags))?;
        Ok(written)
    }
    /// Registers a Python kernel (or `library.fallthrough_kernel`) for `dispatch`.
    #[pyo3(signature = (name, dispatch, func, with_keyset=false))]
    fn r#impl(
        &self,
        py: Python<'_>,
        name: &str,
        dispatch: &Bound<'_, PyAny>,
        func: &Bound<'_, PyAny>,
        with_keyset: bool,
    ) -> PyResult<()> {
        let f = python_kernel(py, dispatch, func, with_keyset, false)?;
        self.with_lib(py, |l| l.impl_(name, f))
    }
    /// Registers a global Python fallback; the callable receives the op overload first.
    #[pyo3(signature = (dispatch, func, with_keyset=false))]
    fn fallback(
        &self,
        py: Python<'_>,
        dispatch: &Bound<'_, PyAny>,
        func: &Bound<'_, PyAny>,
        with_keyset: bool,
    ) -> PyResult<()> {
        let f = python_kernel(py, dispatch, func, with_keyset, true)?;
        self.with_lib(py, |l| l.fallback(f))
    }
    /// Deregisters everything this module registered.
    fn reset(&self) {
        // Take the registrations out first so the Python objects they own are released (and
        // any Python code that runs then) after this module's lock is released.
        let handles = self.lib.lock().take_registrations();
        opdispatch_dispatch::library::drop_in_reverse(handles);
    }
}

/// `_dispatch_library(kind, ns, dispatch, file="/dev/null", linenum=0)`.
#[pyfunction]
#[pyo3(signature = (kind, name, dispatch, file="/dev/null", linenum=0))]
pub fn _dispatch_library(
    kind: &str,
    name: &str,
    dispatch: &str,
    file: &str,
    linenum: u32,
) -> PyResult<DispatchModule> {
    let kind = LibraryKind::parse(kind).py()?;
    let key = parse_opt_key(dispatch)?;
    let lib = Library::new(kind, name, key, file, linenum).py()?;
    Ok(DispatchModule {
        lib: Mutex::new(lib),
    })
}

fn find(name: &str) -> PyResult<Option<OperatorHandle>> {
    let on = parse_name(name).map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
    Ok(Dispatcher::singleton().find_op(&on))
}

pub(crate) fn find_or_err(name: &str) -> PyResult<OperatorHandle> {
    find(name)?.ok_or_else(|| PyRuntimeError::new_err(format!("operator {name} does not exist")))
}

#[pyfunction]
pub fn _dispatch_dump(name: &str) -> PyResult<String> {
    Ok(find(name)?.map(|o| o.dump_state()).unwrap_or_default())
}

#[pyfunction]
pub fn _dispatch_dump_table(name: &str) -> PyResult<String> {
    Ok(find(name)?
        .map(|o| o.dump_computed_table())
        .unwrap_or_default())
}

#[pyfunction]
pub fn _dispatch_check_invariants(name: &str) -> PyResult<()> {
    match find(name)? {
        Some(o) => o.check_invariants().py(),
        None => Ok(()),
    }
}

#[pyfunction]
pub fn _dispatch_check_all_invariants() -> PyResult<()> {
    Dispatcher::singleton().check_all_invariants().py()
}

/// Whether an operator slot exists (PyTorch's meaning of this name).
#[pyfunction]
pub fn _dispatch_has_kernel(name: &str) -> PyResult<bool> {
    Ok(find(name)?.is_some())
}

#[pyfunction]
pub fn _dispatch_has_kernel_for_dispatch_key(
    name: &str,
    dispatch: &Bound<'_, PyAny>,
) -> PyResult<bool> {
    Ok(find_or_err(name)?.has_kernel_for_dispatch_key(extract_key(dispatch)?))
}

#[pyfunction]
pub fn _dispatch_kernel_for_dispatch_key_is_fallthrough(
    name: &str,
    dispatch: &Bound<'_, PyAny>,
) -> PyResult<bool> {
    Ok(find_or_err(name)?.kernel_for_dispatch_key_is_fallthrough(extract_key(dispatch)?))
}

#[pyfunction]
pub fn _dispatch_has_kernel_for_any_dispatch_key(
    name: &str,
    ks: PyDispatchKeySet,
) -> PyResult<bool> {
    Ok(find_or_err(name)?.has_kernel_for_any_dispatch_key(ks.ks))
}

#[pyfunction]
pub fn _dispatch_has_computed_kernel_for_dispatch_key(
    name: &str,
    dispatch: &Bound<'_, PyAny>,
) -> PyResult<bool> {
    let op = find_or_err(name)?;
    Dispatcher::singleton()
        .has_computed_kernel_for_dispatch_key(&op, extract_key(dispatch)?)
        .py()
}

#[pyfunction]
pub fn _dispatch_has_backend_fallback(dispatch: &Bound<'_, PyAny>) -> PyResult<bool> {
    Ok(Dispatcher::singleton().has_backend_fallback_for_dispatch_key(extract_key(dispatch)?))
}

#[pyfunction]
pub fn _dispatch_get_all_op_names() -> Vec<String> {
    Dispatcher::singleton().all_op_names()
}

#[pyfunction]
pub fn _dispatch_find_dangling_impls() -> Vec<String> {
    Dispatcher::singleton().find_dangling_impls()
}

#[pyfunction]
#[pyo3(signature = (dispatch_key=""))]
pub fn _dispatch_get_registrations_for_dispatch_key(dispatch_key: &str) -> PyResult<Vec<String>> {
    Ok(Dispatcher::singleton().registrations_for_dispatch_key(parse_opt_key(dispatch_key)?))
}

#[pyfunction]
pub fn _dispatch_keys(t: &Bound<'_, PyAny>) -> PyResult<PyDispatchKeySet> {
    Ok(PyDispatchKeySet::new_set(unwrap_tensor(t)?.key_set()))
}

#[pyfunction]
pub fn _dispatch_tls_local_include_set() -> PyDispatchKeySet {
    PyDispatchKeySet::new_set(tls_local_dispatch_key_set().included)
}

#[pyfunction]
pub fn _dispatch_tls_local_exclude_set() -> PyDispatchKeySet {
    PyDispatchKeySet::new_set(tls_local_dispatch_key_set().excluded)
}

#[pyfunction]
pub fn _dispatch_tls_set_dispatch_key_included(
    k: &Bound<'_, PyAny>,
    desired: bool,
) -> PyResult<()> {
    opdispatch_dispatch::tls_set_dispatch_key_included(extract_key(k)?, desired);
    Ok(())
}

#[pyfunction]
pub fn _dispatch_tls_set_dispatch_key_excluded(
    k: &Bound<'_, PyAny>,
    desired: bool,
) -> PyResult<()> {
    opdispatch_dispatch::tls_set_dispatch_key_excluded(extract_key(k)?, desired);
    Ok(())
}

#[pyfunction]
pub fn _dispatch_tls_is_dispatch_key_included(k: &Bound<'_, PyAny>) -> PyResult<bool> {
    Ok(opdispatch_dispatch::tls_is_dispatch_key_included(
        extract_key(k)?,
    ))
}

#[pyfunction]
pub fn _dispatch_tls_is_dispatch_key_excluded(k: &Bound<'_, PyAny>) -> PyResult<bool> {
    Ok(opdispatch_dispatch::tls_is_dispatch_key_excluded(
        extract_key(k)?,
    ))
}

#[pyfunction]
pub fn _dispatch_key_name(k: &Bound<'_, PyAny>) -> PyResult<String> {
    Ok(extract_key(k)?.name().to_owned())
}

#[pyfunction]
pub fn _dispatch_key_parse(py: Python<'_>, k: &str) -> PyResult<Py<PyAny>> {
    let key = DispatchKey::parse(k).map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
    key_to_py(py, key)
}

#[pyfunction]
pub fn _parse_dispatch_key(py: Python<'_>, k: &str) -> PyResult<Option<Py<PyAny>>> {
    match DispatchKey::parse(k) {
        Ok(key) => key_to_py(py, key).map(Some),
        Err(_) => Ok(None),
    }
}

#[pyfunction]
pub fn _dispatch_is_alias_key(k: &Bound<'_, PyAny>) -> PyResult<bool> {
    Ok(extract_key(k)?.is_alias())
}

#[pyfunction]
pub fn _dispatch_keyset_full() -> PyDispatchKeySet {
    PyDispatchKeySet::new_set(DispatchKeySet::FULL)
}

#[pyfunction]
pub fn _dispatch_keyset_full_after(k: &Bound<'_, PyAny>) -> PyResult<PyDispatchKeySet> {
    Ok(PyDispatchKeySet::new_set(DispatchKeySet::full_after(
        extract_key(k)?,
    )))
}

#[pyfunction]
pub fn _dispatch_keyset_to_string(ks: PyDispatchKeySet) -> String {
    ks.ks.to_string()
}

#[pyfunction]
pub fn _dispatch_num_backends() -> usize {
    opdispatch_keys::NUM_BACKENDS
}

#[pyfunction]
pub fn _dispatch_is_included_in_alias(
    k: &Bound<'_, PyAny>,
    alias: &Bound<'_, PyAny>,
) -> PyResult<bool> {
    Ok(opdispatch_keys::is_included_in_alias(
        extract_key(k)?,
        extract_key(alias)?,
    ))
}

#[pyfunction]
pub fn _dispatch_get_backend_keyset_from_autograd(
    k: &Bound<'_, PyAny>,
) -> PyResult<PyDispatchKeySet> {
    Ok(PyDispatchKeySet::new_set(
        opdispatch_keys::get_backend_key_set_from_autograd(extract_key(k)?),
    ))
}

/// An operator handle (PyTorch's `_DispatchOperatorHandle`).
#[pyclass(
    name = "_DispatchOperatorHandle",
    module = "opdispatch._C",
    frozen,
    subclass
)]
pub struct PyOperatorHandle {
    /// CPython's vectorcall entry for this object (the type's `tp_vectorcall_offset` points
    /// here; see [`install_vectorcall`]).
    vectorcall: pyo3::ffi::vectorcallfunc,
    pub op: OperatorHandle,
}

impl PyOperatorHandle {
    pub fn new(op: OperatorHandle) -> Self {
        Self {
            vectorcall: op_vectorcall,
            op,
        }
    }
}

/// Calls through vectorcall: positional arguments and keyword values arrive in one array, so a
/// call builds no tuple or dict and skips `tp_call`'s argument parsing.
struct OpVectorcall;

impl
    pyo3::impl_::trampoline::MethodDef<
        pyo3::impl_::trampoline::fastcall_cfunction_with_keywords::Func,
    > for OpVectorcall
{
    const METH: pyo3::impl_::trampoline::fastcall_cfunction_with_keywords::Func =
        op_vectorcall_body;
}

/// The vectorcall function stored in every handle. pyo3's fastcall trampoline (which counts the
/// attachment and turns panics and errors into Python exceptions) has vectorcall's signature
/// except that `nargsf` is signed; the flag bit it may carry is masked off in the body.
unsafe extern "C" fn op_vectorcall(
    callable: *mut pyo3::ffi::PyObject,
    args: *const *mut pyo3::ffi::PyObject,
    nargsf: usize,
    kwnames: *mut pyo3::ffi::PyObject,
) -> *mut pyo3::ffi::PyObject {
    // SAFETY: CPython calls this with the GIL held and the vectorcall contract's arguments.
    unsafe {
        pyo3::impl_::trampoline::fastcall_cfunction_with_keywords::<OpVectorcall>(
            callable,
            args,
            nargsf as pyo3::ffi::Py_ssize_t,
            kwnames,
        )
    }
}

/// # Safety
/// Vectorcall's contract: `callable` is an instance of `_DispatchOperatorHandle` (only such
/// objects carry this function), `args` holds the positional arguments followed by one value
/// per name in `kwnames` (a tuple of str, or NULL), all borrowed for the call.
unsafe fn op_vectorcall_body(
    py: Python<'_>,
    callable: *mut pyo3::ffi::PyObject,
    args: *const *mut pyo3::ffi::PyObject,
    nargsf: pyo3::ffi::Py_ssize_t,
    kwnames: *mut pyo3::ffi::PyObject,
) -> PyResult<*mut pyo3::ffi::PyObject> {
    let nargs = (nargsf as usize) & !pyo3::ffi::PY_VECTORCALL_ARGUMENTS_OFFSET;
    // SAFETY: see the function's contract; `Bound<PyAny>` has the layout of an object pointer
    // (as in pyo3's `PyTuple::as_slice`), and the slices only borrow the caller's array.
    unsafe {
        let slf = pyo3::Borrowed::from_ptr(py, callable).cast_unchecked::<PyOperatorHandle>();
        let nkw = if kwnames.is_null() {
            0
        } else {
            pyo3::ffi::PyTuple_GET_SIZE(kwnames) as usize
        };
        let all: &[Bound<'_, PyAny>] = if nargs + nkw == 0 {
            &[]
        } else {
            std::slice::from_raw_parts(args.cast(), nargs + nkw)
        };
        let (pos, values) = all.split_at(nargs);
        let names;
        let kwargs = if kwnames.is_null() {
            Kwargs::None
        } else {
            names = pyo3::Borrowed::from_ptr(py, kwnames)
                .cast_unchecked::<PyTuple>()
                .to_owned();
            Kwargs::Names {
                names: &names,
                values,
            }
        };
        call_op(py, &slf.get().op, None, pos, kwargs).map(Py::into_ptr)
    }
}

/// Gives `_DispatchOperatorHandle` (and so every Python subclass, which inherits the offset)
/// the vectorcall slot. Run once at module init.
pub fn install_vectorcall(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    // Any handle tells where the field sits inside the object; `aten::add.Tensor` always exists.
    let probe = Bound::new(
        py,
        PyOperatorHandle::new(
            Dispatcher::singleton()
                .find_schema_or_throw("aten::add", "Tensor")
                .py()?,
        ),
    )?;
    let offset = std::ptr::from_ref(&probe.get().vectorcall) as usize - probe.as_ptr() as usize;
    let ty = py.get_type::<PyOperatorHandle>();
    // SAFETY: the type object is alive (held by `ty`) and not yet shared with other threads'
    // calls in a way that races (module init holds the GIL); every instance has the field.
    unsafe {
        let t = ty.as_type_ptr();
        (*t).tp_vectorcall_offset = offset as pyo3::ffi::Py_ssize_t;
        (*t).tp_flags |= pyo3::ffi::Py_TPFLAGS_HAVE_VECTORCALL;
    }
    Ok(())
}

/// Turns on vectorcall for a Python subclass of `_DispatchOperatorHandle` that does not
/// override `__call__` (CPython before 3.12 does not pass the flag on to heap subtypes).
#[pyfunction]
pub fn _enable_vectorcall(cls: &Bound<'_, pyo3::types::PyType>) -> PyResult<bool> {
    let py = cls.py();
    let base = py.get_type::<PyOperatorHandle>();
    if !cls.is_subclass(&base)? {
        return Err(crate::errors::exc::TypeError::new_err(
            "expected a subclass of _DispatchOperatorHandle",
        ));
    }
    // SAFETY: both type objects are alive; reading slots and setting a flag under the GIL.
    unsafe {
        let (t, b) = (cls.as_type_ptr(), base.as_type_ptr());
        // The slot values are copied from the base type, so equal addresses mean "inherited".
        let call_addr = |ty: *mut pyo3::ffi::PyTypeObject| (*ty).tp_call.map(|f| f as usize);
        if call_addr(t) != call_addr(b) || (*t).tp_vectorcall_offset != (*b).tp_vectorcall_offset {
            return Ok(false);
        }
        (*t).tp_flags |= pyo3::ffi::Py_TPFLAGS_HAVE_VECTORCALL;
    }
    Ok(true)
}

#[pymethods]
impl PyOperatorHandle {
    /// `_DispatchOperatorHandle(name, overload)`: the operator `name.overload` (must have a
    /// schema). Subclassed by `opdispatch._ops.OpOverload`, whose calls then run here directly.
    #[new]
    #[pyo3(signature = (name, overload="", *_args, **_kwargs))]
    fn py_new(
        name: &str,
        overload: &str,
        _args: &Bound<'_, PyTuple>,
        _kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        Ok(Self::new(
            Dispatcher::singleton()
                .find_schema_or_throw(name, overload)
                .py()?,
        ))
    }
    /// The schema, printed canonically.
    fn schema(&self) -> PyResult<String> {
        self.op
            .schema()
            .map(|s| s.to_string())
            .ok_or_else(|| PyRuntimeError::new_err("operator has no schema"))
    }
    fn debug(&self) -> String {
        self.op.debug().unwrap_or_default()
    }
    /// The tags the operator's def gave it (`OpOverload.tags`).
    #[getter]
    fn tags<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyList>> {
        crate::tags::tags_to_py(py, &self.op.tags())
    }
    /// Operator name without the overload ("ns::op").
    fn name(&self) -> String {
        self.op.operator_name().name.clone()
    }
    fn overload_name(&self) -> String {
        self.op.operator_name().overload_name.clone()
    }
    /// Return names (possibly empty) and types, in order.
    fn returns(&self) -> Vec<(String, String)> {
        self.op
            .schema()
            .map(|s| {
                s.returns
                    .iter()
                    .map(|r| (r.name.clone(), r.ty.to_string()))
                    .collect()
            })
            .unwrap_or_default()
    }
    /// Schema argument names, types, kwarg-only flags and whether they have defaults.
    fn arguments(&self) -> Vec<(String, String, bool, bool)> {
        self.op
            .schema()
            .map(|s| {
                s.arguments
                    .iter()
                    .map(|a| {
                        (
                            a.name.clone(),
                            a.ty.to_string(),
                            a.kwarg_only,
                            a.default.is_some(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
    fn num_returns(&self) -> usize {
        self.op.schema().map_or(0, |s| s.returns.len())
    }
    /// Why the arguments do not bind to this overload's schema, or `None` if they do. Runs no
    /// kernel (overload resolution must not execute anything before choosing).
    #[pyo3(signature = (*args, **kwargs))]
    fn _bind_error(
        &self,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Option<String>> {
        let schema = self
            .op
            .schema()
            .ok_or_else(|| PyRuntimeError::new_err("operator has no schema"))?;
        Ok(bind_args(
            &schema,
            args.as_slice(),
            Kwargs::from_dict(kwargs),
            &mut Stack::new(),
        )
        .err()
        .map(|e| e.to_string()))
    }
    /// `__call__`: binds the arguments, dispatches, converts the returns.
    #[pyo3(signature = (*args, **kwargs))]
    fn __call__(
        &self,
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        call_op(
            py,
            &self.op,
            None,
            args.as_slice(),
            Kwargs::from_dict(kwargs),
        )
    }
    /// `redispatch_boxed(keyset, *args, **kwargs)`: runs the kernel for `keyset` as given.
    #[pyo3(signature = (keyset, *args, **kwargs))]
    fn redispatch_boxed(
        &self,
        py: Python<'_>,
        keyset: PyDispatchKeySet,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        call_op(
            py,
            &self.op,
            Some(keyset.ks),
            args.as_slice(),
            Kwargs::from_dict(kwargs),
        )
    }
}

fn call_op(
    py: Python<'_>,
    op: &OperatorHandle,
    keyset: Option<DispatchKeySet>,
    args: &[Bound<'_, PyAny>],
    kwargs: Kwargs<'_, '_>,
) -> PyResult<Py<PyAny>> {
    op.with_schema(|schema| {
        let schema = schema.ok_or_else(|| {
            PyRuntimeError::new_err(format!(
                "Tried to access the schema for {} which doesn't have a schema registered yet",
                op.operator_name()
            ))
        })?;
        let mut stack = Stack::new();
        bind_args(schema, args, kwargs, &mut stack)?;
        crate::errors::catch_kernel_panic(|| {
            match keyset {
                None => op.call_boxed(&mut stack),
                Some(ks) => op.redispatch_boxed(ks, &mut stack),
            }
            .map_err(to_py)
        })?;
        returns_to_py(py, schema, &mut stack)
    })
}

#[pyfunction]
pub fn _dispatch_find_schema_or_throw(name: &str, overload: &str) -> PyResult<PyOperatorHandle> {
    Ok(PyOperatorHandle::new(
        Dispatcher::singleton()
            .find_schema_or_throw(name, overload)
            .py()?,
    ))
}

#[pyfunction]
#[pyo3(signature = (handle, *args, **kwargs))]
pub fn _dispatch_call_boxed(
    py: Python<'_>,
    handle: &PyOperatorHandle,
    args: &Bound<'_, PyTuple>,
    kwargs: Option<&Bound<'_, PyDict>>,
) -> PyResult<Py<PyAny>> {
    handle.__call__(py, args, kwargs)
}

/// The `ops.<ns>.<op>.<overload>` object for an operator (what fallbacks receive).
pub fn op_overload_object(py: Python<'_>, op: &OperatorHandle) -> PyResult<Py<PyAny>> {
    let n = op.operator_name();
    let f = py.import("opdispatch._ops")?.getattr("_overload_for")?;
    Ok(f.call1((n.name.clone(), n.overload_name.clone()))?.unbind())
}
