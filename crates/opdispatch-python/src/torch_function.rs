//! The `__torch_function__` protocol: the per-thread TorchFunctionMode stack, the
//! enabled/disabled state (`DisableTorchFunctionSubclass`, `DisableTorchFunction`) and the
//! check every Python entry (tensor methods and operators, module functions, `torch.ops`
//! packets and overloads) makes before it binds its arguments (PyTorch's
//! `check_has_torch_function` and `handle_torch_function_no_python_arg_parser`).
//!
//! The check is meant to cost nothing on plain calls: an exact `Tensor`, a number, `None` or a
//! string is never overloaded, other objects are asked for `__torch_function__` through the
//! type's attribute cache, and the thread-local state is read only when an overloaded argument
//! was found or some thread has pushed a mode. The handling itself (the mode first, popped for
//! its handler; then each overloaded argument's class; torch's `TypeError` when all decline) is
//! `opdispatch.overrides._handle_torch_function`, which Python code hands to
//! `_set_torch_function_handler` at import.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PyString, PyTuple, PyType};
use smallvec::SmallVec;

use crate::convert::Kwargs;
use crate::tensor::PyTensor;

// CPython's lookup of a name along a type's MRO through the type attribute cache: no
// exception on a miss, which `getattr` would raise and clear for every non-overloaded object.
// Exported by every CPython this crate supports; the free-threaded build has only the
// owning variant, so there the check keeps to `Tensor` subclasses (see `type_attr`).
#[cfg(not(Py_GIL_DISABLED))]
unsafe extern "C" {
    fn _PyType_Lookup(ty: *mut ffi::PyTypeObject, name: *mut ffi::PyObject) -> *mut ffi::PyObject;
}

/// Whether `__torch_function__` overrides run on this thread (PyTorch's
/// `TorchFunctionDisabledState`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Enabled,
    /// Under `DisableTorchFunctionSubclass`: modes still run, subclasses do not.
    SubclassesDisabled,
    /// Under `DisableTorchFunction`: neither runs.
    AllDisabled,
}

thread_local! {
    static STATE: Cell<State> = const { Cell::new(State::Enabled) };
    /// This thread's TorchFunctionModes, innermost last.
    static MODES: RefCell<Vec<Py<PyAny>>> = const { RefCell::new(Vec::new()) };
}

/// Modes pushed on all threads together: while zero, a call with plain arguments reads no TLS.
static MODES_ANYWHERE: AtomicUsize = AtomicUsize::new(0);
/// `_C.Tensor`'s type object and `_disabled_torch_function_impl` (both live for the process).
static TENSOR_TYPE: AtomicPtr<ffi::PyTypeObject> = AtomicPtr::new(std::ptr::null_mut());
static DISABLED_IMPL: AtomicPtr<ffi::PyObject> = AtomicPtr::new(std::ptr::null_mut());
/// `opdispatch.overrides._handle_torch_function` (native entries) and `_handle_python_level`
/// (the operators torch writes in Python).
static HANDLER: PyOnceLock<(Py<PyAny>, Py<PyAny>)> = PyOnceLock::new();
/// The default `Tensor.__torch_function__` (the classmethod object in `Tensor.__dict__`) and
/// `opdispatch.overrides._convert`: while a subclass inherits that default, the native entries
/// run it here (see [`default_torch_function`]).
static DEFAULT_IMPL: PyOnceLock<(Py<PyAny>, Py<PyAny>)> = PyOnceLock::new();
/// What `_torch_function_args` returns when the call is not overridden.
static NOT_HANDLED: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// The interned attribute name (the type cache compares names by identity).
fn attr_name(py: Python<'_>) -> &Bound<'_, PyString> {
    pyo3::intern!(py, "__torch_function__")
}

/// The class attribute `__torch_function__` of `obj`'s type, borrowed (None if absent).
fn type_attr(obj: &Bound<'_, PyAny>) -> Option<*mut ffi::PyObject> {
    let py = obj.py();
    // SAFETY: `obj` is alive; the lookup only reads the type (and its cache) under the GIL,
    // and returns a borrowed reference the type keeps alive.
    #[cfg(not(Py_GIL_DISABLED))]
    unsafe {
        let r = _PyType_Lookup(ffi::Py_TYPE(obj.as_ptr()), attr_name(py).as_ptr());
        (!r.is_null()).then_some(r)
    }
    #[cfg(Py_GIL_DISABLED)]
    {
        if !obj.is_instance_of::<PyTensor>() {
            return None;
        }
        let r = obj.get_type().getattr(attr_name(py)).ok()?;
        let p = r.as_ptr();
        // The type holds the attribute, so the pointer stays valid after `r` is dropped.
        Some(p)
    }
}

/// Whether `obj` alone takes part in `__torch_function__` (PyTorch's `check_has_torch_function`
/// without the mode and state: a non-exact `Tensor` or other object whose class defines
/// `__torch_function__` other than `_disabled_torch_function_impl`).
#[inline]
fn is_overloaded(obj: &Bound<'_, PyAny>) -> bool {
    !is_plain(obj) && type_attr(obj).is_some_and(|a| a != DISABLED_IMPL.load(Ordering::Relaxed))
}

/// An exact `Tensor`, number, `None`, bool or string: never overloaded (a few loads, no call).
#[inline(always)]
fn is_plain(obj: &Bound<'_, PyAny>) -> bool {
    let p = obj.as_ptr();
    // SAFETY: `p` is a live object; the checks read its type only.
    unsafe {
        let t = ffi::Py_TYPE(p);
        std::ptr::eq(t, TENSOR_TYPE.load(Ordering::Relaxed))
            || ffi::PyLong_CheckExact(p) != 0
            || ffi::PyFloat_CheckExact(p) != 0
            || p == ffi::Py_None()
            || ffi::PyUnicode_CheckExact(p) != 0
            || ffi::PyBool_Check(p) != 0
    }
}

/// The common call: no mode anywhere and only plain arguments, so nothing to collect.
#[inline(always)]
fn nothing_to_handle(pos: &[Bound<'_, PyAny>], kwargs: &Kwargs<'_, '_>) -> bool {
    MODES_ANYWHERE.load(Ordering::Relaxed) == 0
        && pos.iter().all(is_plain)
        && match kwargs {
            Kwargs::None => true,
            Kwargs::Names { values, .. } => values.iter().all(is_plain),
            Kwargs::Dict(_) => false,
        }
}

type Overloaded<'py> = SmallVec<[Bound<'py, PyAny>; 2]>;

/// Adds `obj` to `out` in PyTorch's order (`append_overloaded_arg`): one argument per type, a
/// subclass before its superclasses, otherwise left to right.
fn append<'py>(out: &mut Overloaded<'py>, obj: &Bound<'py, PyAny>) {
    let ty = obj.get_type();
    if out.iter().any(|o| o.get_type().is(&ty)) {
        return;
    }
    let at = out
        .iter()
        .position(|o| ty.is_subclass(&o.get_type()).unwrap_or(false))
        .unwrap_or(out.len());
    out.insert(at, obj.clone());
}

/// Collects the overloaded objects among `values` and, one level down, the items of lists and
/// tuples among them (`cat([a, b])`).
fn collect<'py>(values: &[Bound<'py, PyAny>], out: &mut Overloaded<'py>) {
    for v in values {
        if let Ok(l) = v.cast::<PyList>() {
            for item in l.iter() {
                if is_overloaded(&item) {
                    append(out, &item);
                }
            }
        } else if let Ok(t) = v.cast::<PyTuple>() {
            for item in t.iter() {
                if is_overloaded(&item) {
                    append(out, &item);
                }
            }
        } else if is_overloaded(v) {
            append(out, v);
        }
    }
}

/// What the handler must consider for a call: `None` when the call just runs.
fn overloaded_for<'py>(
    pos: &[Bound<'py, PyAny>],
    kwargs: &Kwargs<'_, 'py>,
) -> Option<Overloaded<'py>> {
    // The state is read once, before collecting: under `DisableTorchFunctionSubclass` (the
    // default handler's own call of `func`) subclasses do not count, so only a mode can handle.
    match STATE.with(Cell::get) {
        State::AllDisabled => return None,
        State::SubclassesDisabled => return mode_active().then(Overloaded::new),
        State::Enabled => {}
    }
    let mut found = Overloaded::new();
    collect(pos, &mut found);
    match kwargs {
        Kwargs::None => {}
        Kwargs::Names { values, .. } => collect(values, &mut found),
        Kwargs::Dict(d) => {
            let values: SmallVec<[Bound<'py, PyAny>; 4]> = d.values().iter().collect();
            collect(&values, &mut found);
        }
    }
    if found.is_empty() && !mode_active() {
        return None;
    }
    Some(found)
}

fn mode_active() -> bool {
    MODES_ANYWHERE.load(Ordering::Relaxed) != 0
        && STATE.with(Cell::get) != State::AllDisabled
        && MODES.with(|m| !m.borrow().is_empty())
}

/// Runs the handler for `func(*pos, **kwargs)` if an argument or a mode overrides it; `None`
/// means the call goes on as usual.
#[inline]
pub(crate) fn maybe_handle(
    py: Python<'_>,
    func: &Bound<'_, PyAny>,
    pos: &[Bound<'_, PyAny>],
    kwargs: &Kwargs<'_, '_>,
) -> PyResult<Option<Py<PyAny>>> {
    if nothing_to_handle(pos, kwargs) {
        return Ok(None);
    }
    maybe_handle_slow(py, func, pos, kwargs)
}

#[inline(never)]
fn maybe_handle_slow(
    py: Python<'_>,
    func: &Bound<'_, PyAny>,
    pos: &[Bound<'_, PyAny>],
    kwargs: &Kwargs<'_, '_>,
) -> PyResult<Option<Py<PyAny>>> {
    let Some(overloaded) = overloaded_for(pos, kwargs) else {
        return Ok(None);
    };
    let args = PyTuple::new(py, pos)?;
    let kw = match kwargs {
        Kwargs::None => PyDict::new(py),
        Kwargs::Dict(d) => d.copy()?,
        Kwargs::Names { names, values } => {
            let d = PyDict::new(py);
            for (k, v) in names.iter().zip(values.iter()) {
                d.set_item(k, v)?;
            }
            d
        }
    };
    call_handler(py, func, &overloaded, &args, &kw).map(Some)
}

fn call_handler(
    py: Python<'_>,
    func: &Bound<'_, PyAny>,
    overloaded: &[Bound<'_, PyAny>],
    args: &Bound<'_, PyTuple>,
    kwargs: &Bound<'_, PyDict>,
) -> PyResult<Py<PyAny>> {
    if let Some(done) = default_torch_function(py, func, overloaded, args, kwargs)? {
        return Ok(done);
    }
    let overloaded = PyTuple::new(py, overloaded)?;
    handlers(py)?
        .0
        .bind(py)
        .call1((func, overloaded, args, kwargs))
        .map(Bound::unbind)
}

/// The default `Tensor.__torch_function__`, natively, when it is the only handler that would
/// run: no mode is active and every overloaded argument's class inherits the default, the
/// first one's class being a subclass of all of them. Does what the Python classmethod does
/// (`func` under `DisableTorchFunctionSubclass`, results turned into that class) without its
/// frames; `None` leaves the call to the Python handler.
fn default_torch_function(
    py: Python<'_>,
    func: &Bound<'_, PyAny>,
    overloaded: &[Bound<'_, PyAny>],
    args: &Bound<'_, PyTuple>,
    kwargs: &Bound<'_, PyDict>,
) -> PyResult<Option<Py<PyAny>>> {
    let (Some((default, convert)), Some(first)) = (DEFAULT_IMPL.get(py), overloaded.first()) else {
        return Ok(None);
    };
    if mode_active()
        || !overloaded
            .iter()
            .all(|o| type_attr(o) == Some(default.as_ptr()))
    {
        return Ok(None);
    }
    let cls = first.get_type();
    for o in &overloaded[1..] {
        if !cls.is_subclass(&o.get_type())? {
            return Ok(None);
        }
    }
    let saved = Cell::new(None);
    enter(State::SubclassesDisabled, &saved);
    let ret = (|| {
        let kw = (!kwargs.is_empty()).then_some(kwargs);
        let ret = func.call(args, kw)?;
        convert_result(&ret, &cls, convert.bind(py))
    })();
    exit(&saved);
    ret.map(Some)
}

/// `_convert(ret, cls)` for the common results (a tensor, an exact tuple or list of them)
/// natively; anything else (named tuples) through the Python function.
fn convert_result<'py>(
    ret: &Bound<'py, PyAny>,
    cls: &Bound<'py, PyType>,
    convert: &Bound<'py, PyAny>,
) -> PyResult<Py<PyAny>> {
    let one = |r: &Bound<'py, PyAny>| -> PyResult<Bound<'py, PyAny>> {
        match r.cast::<PyTensor>() {
            Ok(t) if !r.is_instance(cls)? => {
                Ok(crate::wrapper::_as_subclass(t, cls.as_any())?.into_any())
            }
            _ => Ok(r.clone()),
        }
    };
    if ret.is_instance_of::<PyTensor>() {
        return one(ret).map(Bound::unbind);
    }
    // SAFETY: `ret` is alive; the checks read its type only.
    let (exact_tuple, exact_list) = unsafe {
        (
            ffi::PyTuple_CheckExact(ret.as_ptr()) != 0,
            ffi::PyList_CheckExact(ret.as_ptr()) != 0,
        )
    };
    if exact_tuple || exact_list {
        let items: SmallVec<[Bound<'py, PyAny>; 4]> =
            ret.try_iter()?.map(|r| one(&r?)).collect::<PyResult<_>>()?;
        return Ok(if exact_tuple {
            PyTuple::new(ret.py(), items)?.into_any().unbind()
        } else {
            PyList::new(ret.py(), items)?.into_any().unbind()
        });
    }
    if ret.is_instance_of::<PyTuple>() || ret.is_instance_of::<PyList>() {
        return convert.call1((ret, cls)).map(Bound::unbind);
    }
    Ok(ret.clone().unbind())
}

fn handlers(py: Python<'_>) -> PyResult<&(Py<PyAny>, Py<PyAny>)> {
    HANDLER.get(py).ok_or_else(|| {
        crate::errors::runtime_error("opdispatch.overrides has not installed its handler")
    })
}

/// For a Tensor method whose every signature takes only `self` (`t.exp()`, `t.detach()`):
/// torch's binding then offers the call with `self` as the one overloaded argument, a plain
/// tensor included, so a mode sees `types == (Tensor,)`.
#[inline]
pub(crate) fn maybe_handle_self(
    py: Python<'_>,
    func: &Bound<'_, PyAny>,
    this: &Bound<'_, PyAny>,
) -> PyResult<Option<Py<PyAny>>> {
    if MODES_ANYWHERE.load(Ordering::Relaxed) == 0 && is_plain(this) {
        return Ok(None);
    }
    let wanted = match STATE.with(Cell::get) {
        State::AllDisabled => false,
        State::SubclassesDisabled => mode_active(),
        State::Enabled => mode_active() || is_overloaded(this),
    };
    if !wanted {
        return Ok(None);
    }
    let args = PyTuple::new(py, [this])?;
    call_handler(
        py,
        func,
        std::slice::from_ref(this),
        &args,
        &PyDict::new(py),
    )
    .map(Some)
}

/// How torch's binding of a tensor operator handles overrides.
#[derive(Clone, Copy)]
pub(crate) enum Binding {
    /// A C++ binding: subclass arguments only.
    Native,
    /// A Python function in torch (`__rsub__`, `__pow__`): its `handle_torch_function`, plain
    /// tensors counted among the overloaded arguments.
    Python,
    /// A C++ binding taking only `self` (`-t` is `Tensor.neg`): see [`maybe_handle_self`].
    SelfOnly,
}

/// For the native tensor operators: `Tensor.<method>(*args)` through the handler when an
/// argument or a mode overrides it (torch's operators report the method they call, `x + y`
/// as `Tensor.add`).
pub(crate) fn maybe_handle_method(
    py: Python<'_>,
    method: &str,
    args: &[&Bound<'_, PyAny>],
    binding: Binding,
) -> PyResult<Option<Py<PyAny>>> {
    // The operators' hot path: plain operands leave before anything is built.
    if MODES_ANYWHERE.load(Ordering::Relaxed) == 0 && args.iter().all(|a| is_plain(a)) {
        return Ok(None);
    }
    if let (Binding::SelfOnly, [this]) = (binding, args) {
        let func = py.get_type::<PyTensor>().getattr(method)?;
        return maybe_handle_self(py, &func, this);
    }
    let owned: SmallVec<[Bound<'_, PyAny>; 2]> = args.iter().map(|a| (*a).clone()).collect();
    let Some(overloaded) = overloaded_for(&owned, &Kwargs::None) else {
        return Ok(None);
    };
    let func = py.get_type::<PyTensor>().getattr(method)?;
    let args = PyTuple::new(py, &owned)?;
    match binding {
        Binding::Native | Binding::SelfOnly => {
            call_handler(py, &func, &overloaded, &args, &PyDict::new(py))
        }
        Binding::Python => handlers(py)?
            .1
            .bind(py)
            .call1((func, args))
            .map(Bound::unbind),
    }
    .map(Some)
}

/// `_torch_function_args(func, args, kwargs)`: for Python-defined methods, the handler's result
/// if an argument or a mode overrides `func(*args, **kwargs)`, else `_TORCH_FUNCTION_NOT_HANDLED`.
#[pyfunction]
pub(crate) fn _torch_function_args(
    py: Python<'_>,
    func: &Bound<'_, PyAny>,
    args: &Bound<'_, PyTuple>,
    kwargs: Option<&Bound<'_, PyDict>>,
) -> PyResult<Py<PyAny>> {
    let kwargs = match kwargs {
        Some(d) if !d.is_empty() => Kwargs::Dict(d),
        _ => Kwargs::None,
    };
    match maybe_handle(py, func, args.as_slice(), &kwargs)? {
        Some(r) => Ok(r),
        None => Ok(NOT_HANDLED
            .get(py)
            .map_or_else(|| py.None(), |o| o.clone_ref(py))),
    }
}

// ---- Python surface ----

/// `_has_torch_function(args)`: whether an object in `args` (a sequence) or an active mode
/// overrides a call with them.
#[pyfunction]
pub(crate) fn _has_torch_function(args: &Bound<'_, PyAny>) -> PyResult<bool> {
    let items: Vec<Bound<'_, PyAny>> = args.try_iter()?.collect::<PyResult<_>>()?;
    Ok(overloaded_for_flat(&items))
}

/// Like `overloaded_for`, but without looking inside lists (torch's `_has_torch_function*`
/// take the relevant arguments themselves).
fn overloaded_for_flat(items: &[Bound<'_, PyAny>]) -> bool {
    match STATE.with(Cell::get) {
        State::AllDisabled => false,
        State::SubclassesDisabled => mode_active(),
        State::Enabled => mode_active() || items.iter().any(is_overloaded),
    }
}

/// `_has_torch_function_unary(obj)`.
#[pyfunction]
pub(crate) fn _has_torch_function_unary(obj: &Bound<'_, PyAny>) -> bool {
    overloaded_for_flat(std::slice::from_ref(obj))
}

/// `_has_torch_function_variadic(*args)`.
#[pyfunction]
#[pyo3(signature = (*args))]
pub(crate) fn _has_torch_function_variadic(args: &Bound<'_, PyTuple>) -> bool {
    overloaded_for_flat(args.as_slice())
}

/// `_get_overloaded_args(relevant_args)`: the overloaded objects among them, in the order
/// their handlers are tried (one per type, subclasses first).
#[pyfunction]
pub(crate) fn _get_overloaded_args<'py>(
    relevant_args: &Bound<'py, PyAny>,
) -> PyResult<Vec<Bound<'py, PyAny>>> {
    let items: Vec<Bound<'py, PyAny>> = relevant_args.try_iter()?.collect::<PyResult<_>>()?;
    let mut out = Overloaded::new();
    for i in items.iter().filter(|i| is_overloaded(i)) {
        append(&mut out, i);
    }
    Ok(out.into_vec())
}

/// `_is_torch_function_enabled()`: false under `DisableTorchFunctionSubclass` and
/// `DisableTorchFunction`.
#[pyfunction]
pub(crate) fn _is_torch_function_enabled() -> bool {
    STATE.with(Cell::get) == State::Enabled
}

/// `_is_torch_function_all_disabled()`.
#[pyfunction]
pub(crate) fn _is_torch_function_all_disabled() -> bool {
    STATE.with(Cell::get) == State::AllDisabled
}

/// `_is_torch_function_mode_enabled()`: a mode is pushed and `DisableTorchFunction` is not on.
#[pyfunction]
pub(crate) fn _is_torch_function_mode_enabled() -> bool {
    mode_active()
}

/// `_push_on_torch_function_stack(mode)`.
#[pyfunction]
pub(crate) fn _push_on_torch_function_stack(mode: Py<PyAny>) {
    MODES.with(|m| m.borrow_mut().push(mode));
    MODES_ANYWHERE.fetch_add(1, Ordering::Relaxed);
}

/// `_pop_torch_function_stack()`: the innermost mode, removed.
#[pyfunction]
pub(crate) fn _pop_torch_function_stack() -> PyResult<Py<PyAny>> {
    let mode = MODES.with(|m| m.borrow_mut().pop());
    match mode {
        Some(m) => {
            MODES_ANYWHERE.fetch_sub(1, Ordering::Relaxed);
            Ok(m)
        }
        None => Err(crate::errors::runtime_error(
            "trying to pop from empty mode stack",
        )),
    }
}

/// `_len_torch_function_stack()`.
#[pyfunction]
pub(crate) fn _len_torch_function_stack() -> usize {
    if MODES_ANYWHERE.load(Ordering::Relaxed) == 0 {
        return 0;
    }
    MODES.with(|m| m.borrow().len())
}

/// `_get_function_stack_at(i)`: the mode at position `i` (0 is the outermost).
#[pyfunction]
pub(crate) fn _get_function_stack_at(py: Python<'_>, i: usize) -> PyResult<Py<PyAny>> {
    MODES
        .with(|m| m.borrow().get(i).map(|o| o.clone_ref(py)))
        .ok_or_else(|| crate::errors::runtime_error("Tried to get stack at idx that's too big"))
}

/// `_set_torch_function_handler(native, python_level, default, convert)`: installed by
/// `opdispatch.overrides` at import (the first installation stays: a re-imported module's
/// functions do the same). `default` is the classmethod set as `Tensor.__torch_function__`,
/// `convert` the `_convert` it uses.
#[pyfunction]
pub(crate) fn _set_torch_function_handler(
    py: Python<'_>,
    native: Py<PyAny>,
    python_level: Py<PyAny>,
    default: Py<PyAny>,
    convert: Py<PyAny>,
) {
    let _ = HANDLER.set(py, (native, python_level));
    let _ = DEFAULT_IMPL.set(py, (default, convert));
}

/// A context manager that sets the thread's state for its block and restores the previous
/// state on exit (also when the block raises).
fn enter(target: State, saved: &Cell<Option<State>>) {
    let prev = STATE.with(|s| s.replace(target));
    saved.set(Some(prev));
}

fn exit(saved: &Cell<Option<State>>) {
    if let Some(prev) = saved.take() {
        STATE.with(|s| s.set(prev));
    }
}

/// `DisableTorchFunctionSubclass()`: inside it, subclasses' `__torch_function__` do not run
/// (modes still do). `Tensor.__torch_function__` calls `func` under it.
#[pyclass(
    name = "DisableTorchFunctionSubclass",
    module = "opdispatch._C",
    unsendable
)]
pub(crate) struct DisableTorchFunctionSubclass {
    saved: Cell<Option<State>>,
}

#[pymethods]
impl DisableTorchFunctionSubclass {
    #[new]
    fn py_new() -> Self {
        Self {
            saved: Cell::new(None),
        }
    }
    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        // torch never lowers AllDisabled to SubclassesDisabled here.
        let target = if STATE.with(Cell::get) == State::AllDisabled {
            State::AllDisabled
        } else {
            State::SubclassesDisabled
        };
        enter(target, &slf.saved);
        slf
    }
    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, _exc: &Bound<'_, PyTuple>) -> bool {
        exit(&self.saved);
        false
    }
}

/// `DisableTorchFunction()`: inside it, neither modes nor subclasses' `__torch_function__` run.
#[pyclass(name = "DisableTorchFunction", module = "opdispatch._C", unsendable)]
pub(crate) struct DisableTorchFunction {
    saved: Cell<Option<State>>,
}

#[pymethods]
impl DisableTorchFunction {
    #[new]
    fn py_new() -> Self {
        Self {
            saved: Cell::new(None),
        }
    }
    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        enter(State::AllDisabled, &slf.saved);
        slf
    }
    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, _exc: &Bound<'_, PyTuple>) -> bool {
        exit(&self.saved);
        false
    }
}

/// Adds the protocol's functions and guards to `_C`; after `python_dispatch::register` (it
/// defines `_disabled_torch_function_impl`).
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let disabled = m.getattr("_disabled_torch_function_impl")?;
    // The module keeps the function alive for the process; one extra reference makes sure.
    DISABLED_IMPL.store(disabled.into_ptr(), Ordering::Relaxed);
    // pyo3 keeps a pyclass's type object alive for the process.
    let tensor: Bound<'_, PyType> = py.get_type::<PyTensor>();
    TENSOR_TYPE.store(tensor.as_type_ptr(), Ordering::Relaxed);
    m.add_class::<DisableTorchFunctionSubclass>()?;
    m.add_class::<DisableTorchFunction>()?;
    m.add_function(wrap_pyfunction!(_has_torch_function, m)?)?;
    m.add_function(wrap_pyfunction!(_has_torch_function_unary, m)?)?;
    m.add_function(wrap_pyfunction!(_has_torch_function_variadic, m)?)?;
    m.add_function(wrap_pyfunction!(_get_overloaded_args, m)?)?;
    m.add_function(wrap_pyfunction!(_is_torch_function_enabled, m)?)?;
    m.add_function(wrap_pyfunction!(_is_torch_function_all_disabled, m)?)?;
    m.add_function(wrap_pyfunction!(_is_torch_function_mode_enabled, m)?)?;
    m.add_function(wrap_pyfunction!(_push_on_torch_function_stack, m)?)?;
    m.add_function(wrap_pyfunction!(_pop_torch_function_stack, m)?)?;
    m.add_function(wrap_pyfunction!(_len_torch_function_stack, m)?)?;
    m.add_function(wrap_pyfunction!(_get_function_stack_at, m)?)?;
    m.add_function(wrap_pyfunction!(_set_torch_function_handler, m)?)?;
    m.add_function(wrap_pyfunction!(_torch_function_args, m)?)?;
    let sentinel = py.import("builtins")?.getattr("object")?.call0()?;
    m.add("_TORCH_FUNCTION_NOT_HANDLED", &sentinel)?;
    let _ = NOT_HANDLED.set(py, sentinel.unbind());
    Ok(())
}
