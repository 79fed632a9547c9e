//! Python dispatch: the per-thread TorchDispatchMode stack and the Python-key fallback
//! (PyTorch's `TorchDispatchModeTLS`, `pythonFallback` and `handle_torch_function` for
//! `__torch_dispatch__`).
//!
//! Pushing the first mode puts `Python` and `PythonTLSSnapshot` in the thread's TLS include
//! set, and popping the last one takes them out, so every operator call on the thread reaches
//! the Python key while a mode is active. The fallback excludes the keys above Python (so a
//! handler's own calls do not re-run them), then offers the call to the top mode (popped for
//! the duration of its handler, so `func(...)` inside it runs below it) and then to the
//! `__torch_dispatch__` of each overloaded argument's class, in PyTorch's order, until one
//! returns something other than `NotImplemented`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use opdispatch_dispatch::{
    tls_set_dispatch_key_included, DispatchKey, DispatchKeySet, ExcludeDispatchKeyGuard,
    OperatorHandle, Stack,
};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PyTuple, PyType};

use crate::convert::args_to_py;
use crate::errors::py_to_dispatch;
use crate::holder::{arguments_start, push_py_out};
use crate::tensor::PyTensor;

thread_local! {
    /// This thread's modes, innermost last.
    static MODES: RefCell<Vec<Py<PyAny>>> = const { RefCell::new(Vec::new()) };
}

/// Modes pushed on all threads together: while it is zero, no thread needs its TLS read (in the
/// extension a thread-local costs a `__tls_get_addr` call, and every Python kernel asks).
static MODES_ANYWHERE: AtomicUsize = AtomicUsize::new(0);

/// How many modes this thread has pushed.
pub(crate) fn mode_stack_len() -> usize {
    if MODES_ANYWHERE.load(Ordering::Relaxed) == 0 {
        // This thread's own pushes happen before its reads, so its count is never missed.
        return 0;
    }
    MODES.with(|m| m.borrow().len())
}

fn set_python_keys_included(on: bool) {
    tls_set_dispatch_key_included(DispatchKey::Python, on);
    tls_set_dispatch_key_included(DispatchKey::PythonTLSSnapshot, on);
}

fn push_mode(mode: Py<PyAny>) {
    let was_empty = MODES.with(|m| {
        let mut m = m.borrow_mut();
        m.push(mode);
        m.len() == 1
    });
    MODES_ANYWHERE.fetch_add(1, Ordering::Relaxed);
    if was_empty {
        set_python_keys_included(true);
    }
}

fn pop_mode() -> Option<Py<PyAny>> {
    let (mode, now_empty) = MODES.with(|m| {
        let mut m = m.borrow_mut();
        let mode = m.pop();
        (mode, m.is_empty())
    });
    if mode.is_some() {
        MODES_ANYWHERE.fetch_sub(1, Ordering::Relaxed);
        if now_empty {
            set_python_keys_included(false);
        }
    }
    mode
}

/// `_push_on_torch_dispatch_stack(mode)`.
#[pyfunction]
pub(crate) fn _push_on_torch_dispatch_stack(mode: Py<PyAny>) {
    push_mode(mode);
}

/// `_pop_torch_dispatch_stack()`: the innermost mode, removed from the stack.
#[pyfunction]
#[pyo3(signature = (_mode_key=None))]
pub(crate) fn _pop_torch_dispatch_stack(
    _mode_key: Option<&Bound<'_, PyAny>>,
) -> PyResult<Py<PyAny>> {
    pop_mode().ok_or_else(|| crate::errors::runtime_error("trying to pop from empty mode stack"))
}

/// `_len_torch_dispatch_stack()`.
#[pyfunction]
pub(crate) fn _len_torch_dispatch_stack() -> usize {
    mode_stack_len()
}

/// `_get_dispatch_stack_at(i)`: the mode at position `i` (0 is the outermost).
#[pyfunction]
pub(crate) fn _get_dispatch_stack_at(py: Python<'_>, i: usize) -> PyResult<Py<PyAny>> {
    MODES
        .with(|m| m.borrow().get(i).map(|o| o.clone_ref(py)))
        .ok_or_else(|| crate::errors::runtime_error("Tried to get stack at idx that's too big"))
}

/// The innermost mode, popped while its handler runs and pushed back afterwards, also when the
/// handler raises (PyTorch's `StashTorchDispatchModeGuard`).
struct StashedMode(Option<Py<PyAny>>);

impl StashedMode {
    fn pop() -> Self {
        Self(pop_mode())
    }
}

impl Drop for StashedMode {
    fn drop(&mut self) {
        if let Some(m) = self.0.take() {
            push_mode(m);
        }
    }
}

/// The `OpOverload` object handlers receive as `func`, per operator (the handle is kept, so its
/// address is never reused while cached). Cleared when a library's teardown removes packets
/// from `opdispatch.ops`, after which the namespace builds new objects.
type OverloadCache = std::sync::Mutex<HashMap<usize, (OperatorHandle, Py<PyAny>)>>;
static OVERLOADS: PyOnceLock<OverloadCache> = PyOnceLock::new();

fn overload_object<'py>(py: Python<'py>, op: &OperatorHandle) -> PyResult<Bound<'py, PyAny>> {
    let cache = OVERLOADS.get_or_init(py, Default::default);
    let key = op.as_ptr() as usize;
    if let Some((_, f)) = cache.lock().expect("not poisoned").get(&key) {
        return Ok(f.bind(py).clone());
    }
    // Built without the lock (it runs Python code). Two threads may both get here; the first
    // insert wins so every caller sees one object, and the loser's is dropped after the lock
    // is released (its release may run Python code that reaches this cache again).
    let f = crate::module::op_overload_object(py, op)?;
    let mut guard = cache.lock().expect("not poisoned");
    let kept = guard
        .entry(key)
        .or_insert_with(|| (op.clone(), f.clone_ref(py)));
    let out = kept.1.bind(py).clone();
    drop(guard);
    drop(f);
    Ok(out)
}

/// `_clear_overload_cache()`: forgets the cached `OpOverload` objects.
#[pyfunction]
pub(crate) fn _clear_overload_cache(py: Python<'_>) {
    if let Some(c) = OVERLOADS.get(py) {
        // Dropped after the lock is released: an OpOverload's release runs Python code.
        let old = std::mem::take(&mut *c.lock().expect("not poisoned"));
        drop(old);
    }
}

/// `register_torch_dispatch` rules: `{"ns::op[.overload]": {class: rule}}`, filled by
/// `opdispatch.library`.
static RULES: PyOnceLock<Py<PyDict>> = PyOnceLock::new();

pub(crate) fn torch_dispatch_rules(py: Python<'_>) -> &Bound<'_, PyDict> {
    RULES.get_or_init(py, || PyDict::new(py).unbind()).bind(py)
}

fn find_rule<'py>(
    py: Python<'py>,
    op: &OperatorHandle,
    cls: &Bound<'py, PyType>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let rules = torch_dispatch_rules(py);
    if rules.is_empty() {
        return Ok(None);
    }
    // Keyed like torch's registry, by `OpOverload.__qualname__`: "ns::op" or "ns::op.overload".
    let n = op.operator_name();
    let key = if n.overload_name.is_empty() {
        n.name.clone()
    } else {
        format!("{}.{}", n.name, n.overload_name)
    };
    let Some(per_op) = rules.get_item(key)? else {
        return Ok(None);
    };
    per_op.cast::<PyDict>()?.get_item(cls)
}

/// Keys above Python, which a handler's calls skip (ZeroTensor, Conjugate and Negative stay:
/// PyTorch's `after_Python_keyset` exclusion).
const ABOVE_PYTHON: DispatchKeySet = DispatchKeySet::FULL
    .difference(DispatchKeySet::full_after(DispatchKey::Python))
    .remove(DispatchKey::Python)
    .remove(DispatchKey::ZeroTensor)
    .remove(DispatchKey::Conjugate)
    .remove(DispatchKey::Negative);

fn has_python_key<'py>(obj: &Bound<'py, PyAny>) -> Option<Bound<'py, PyTensor>> {
    let t = obj.cast::<PyTensor>().ok()?;
    t.borrow().t.is_python_dispatch().then(|| t.clone())
}

/// `append_overloaded_arg`: one entry per class, a subclass before its base classes.
fn append_overloaded<'py>(
    list: &mut Vec<Bound<'py, PyAny>>,
    obj: Bound<'py, PyAny>,
) -> PyResult<()> {
    let ty = obj.get_type();
    if list.iter().any(|o| o.get_type().is(&ty)) {
        return Ok(());
    }
    let mut at = list.len();
    for (i, o) in list.iter().enumerate() {
        if ty.is_subclass(&o.get_type())? {
            at = i;
            break;
        }
    }
    list.insert(at, obj);
    Ok(())
}

/// The arguments (positional, then keyword) whose tensors carry the Python key, list
/// elements included, in PyTorch's order.
fn overloaded_args<'py>(
    args: &Bound<'py, PyTuple>,
    kwargs: &Bound<'py, PyDict>,
) -> PyResult<Vec<Bound<'py, PyAny>>> {
    let mut out = Vec::new();
    let mut visit = |v: Bound<'py, PyAny>| -> PyResult<()> {
        if let Some(t) = has_python_key(&v) {
            return append_overloaded(&mut out, t.into_any());
        }
        if let Ok(l) = v.cast::<PyList>() {
            for x in l.iter() {
                if let Some(t) = has_python_key(&x) {
                    append_overloaded(&mut out, t.into_any())?;
                }
            }
        }
        Ok(())
    };
    for a in args.iter() {
        visit(a)?;
    }
    for (_, v) in kwargs.iter() {
        visit(v)?;
    }
    Ok(out)
}

pub(crate) fn disabled_torch_dispatch_impl(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    static F: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    Ok(F.get_or_try_init(py, || {
        py.import("opdispatch._C")
            .and_then(|m| m.getattr("_disabled_torch_dispatch_impl"))
            .map(Bound::unbind)
    })?
    .bind(py)
    .clone())
}

/// `handle_torch_function_no_python_arg_parser` for `__torch_dispatch__`.
fn handle_torch_dispatch<'py>(
    py: Python<'py>,
    op: &OperatorHandle,
    func: &Bound<'py, PyAny>,
    args: &Bound<'py, PyTuple>,
    kwargs: &Bound<'py, PyDict>,
) -> PyResult<Bound<'py, PyAny>> {
    let overloaded = overloaded_args(args, kwargs)?;
    let types = PyTuple::new(
        py,
        overloaded.iter().map(pyo3::types::PyAnyMethods::get_type),
    )?;
    let not_impl = py.NotImplemented();
    let mut mode_obj = None;
    let mut ret: Option<Bound<'py, PyAny>> = None;
    if mode_stack_len() > 0 {
        let stash = StashedMode::pop();
        let mode = stash
            .0
            .as_ref()
            .expect("stack is non-empty")
            .bind(py)
            .clone();
        let r = match find_rule(py, op, &mode.get_type())? {
            Some(rule) => rule.call1((&mode, func, &types, args, kwargs)),
            None => call_mode_handler(&mode, func, &types, args, kwargs),
        };
        drop(stash);
        ret = Some(r?);
        mode_obj = Some(mode);
    }
    if ret.as_ref().is_none_or(|r| r.is(&not_impl)) {
        let disabled = disabled_torch_dispatch_impl(py)?;
        for arg in &overloaded {
            let cls = arg.get_type();
            let r = match find_rule(py, op, &cls)? {
                Some(rule) => rule.call1((&cls, func, &types, args, kwargs))?,
                None => {
                    let Ok(td) = arg.getattr(intern!(py, "__torch_dispatch__")) else {
                        continue;
                    };
                    if td.is(&disabled)
                        || td
                            .getattr(intern!(py, "__func__"))
                            .is_ok_and(|f| f.is(&disabled))
                    {
                        continue;
                    }
                    td.call1((func, &types, args, kwargs))?
                }
            };
            if !r.is(&not_impl) {
                ret = Some(r);
                break;
            }
        }
    }
    match ret {
        Some(r) if !r.is(&not_impl) => Ok(r),
        _ => Err(all_declined(func, mode_obj.as_ref(), &overloaded)),
    }
}

/// `mode.__torch_dispatch__(func, types, args, kwargs)`. A plain function defined on the class
/// (the usual case) is called with the mode as first argument, without building a bound method;
/// anything else (an instance attribute, a staticmethod or classmethod, another descriptor) goes
/// through normal attribute lookup and PyTorch's check that it is bound to the mode.
fn call_mode_handler<'py>(
    mode: &Bound<'py, PyAny>,
    func: &Bound<'py, PyAny>,
    types: &Bound<'py, PyTuple>,
    args: &Bound<'py, PyTuple>,
    kwargs: &Bound<'py, PyDict>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = mode.py();
    let name = intern!(py, "__torch_dispatch__");
    if let Some(f) = plain_method(mode, name) {
        let argv = [
            mode.as_ptr(),
            func.as_ptr(),
            types.as_ptr(),
            args.as_ptr(),
            kwargs.as_ptr(),
        ];
        // SAFETY: `f` and the five arguments are live references held for the duration of the
        // call; the result is a new reference or NULL with an exception set.
        return unsafe {
            let r = pyo3::ffi::PyObject_Vectorcall(
                f.as_ptr(),
                argv.as_ptr(),
                argv.len(),
                std::ptr::null_mut(),
            );
            Bound::from_owned_ptr_or_err(py, r)
        };
    }
    let td = mode.getattr(name)?;
    let bound_to_mode = td
        .getattr(intern!(py, "__self__"))
        .is_ok_and(|s| s.is(mode));
    if !bound_to_mode {
        return Err(crate::errors::runtime_error(
            "Defining your mode's `__torch_dispatch__` as a classmethod is not supported, please make it a plain method",
        ));
    }
    td.call1((func, types, args, kwargs))
}

/// The function `name` resolves to on `obj`'s class when it is a plain function (found in the
/// MRO's dicts, as attribute lookup finds it) and the instance does not override it.
fn plain_method<'py>(
    obj: &Bound<'py, PyAny>,
    name: &Bound<'py, pyo3::types::PyString>,
) -> Option<Bound<'py, PyAny>> {
    let raw = class_attr(&obj.get_type(), name)?;
    // SAFETY: a type check on a live object.
    if unsafe { pyo3::ffi::PyFunction_Check(raw.as_ptr()) } == 0 {
        return None;
    }
    (!instance_dict_has(obj, name)).then_some(raw)
}

/// The raw (unbound) attribute `name` of class `ty` as attribute lookup finds it in the MRO's
/// dicts (a function, classmethod or staticmethod object, ...), without binding it.
#[cfg(not(Py_GIL_DISABLED))]
pub(crate) fn class_attr<'py>(
    ty: &Bound<'py, PyType>,
    name: &Bound<'py, pyo3::types::PyString>,
) -> Option<Bound<'py, PyAny>> {
    let py = ty.py();
    // SAFETY: reads of a live type's MRO tuple and its members' dicts under the GIL; the found
    // value is borrowed from a dict and immediately turned into an owned reference.
    unsafe {
        let tp = ty.as_type_ptr();
        let mro = (*tp).tp_mro;
        if mro.is_null() {
            return None;
        }
        let mut found = std::ptr::null_mut();
        for i in 0..pyo3::ffi::PyTuple_GET_SIZE(mro) {
            let t = pyo3::ffi::PyTuple_GET_ITEM(mro, i).cast::<pyo3::ffi::PyTypeObject>();
            let d = (*t).tp_dict;
            if d.is_null() {
                continue;
            }
            let v = pyo3::ffi::PyDict_GetItemWithError(d, name.as_ptr());
            if !v.is_null() {
                found = v;
                break;
            }
            if !pyo3::ffi::PyErr_Occurred().is_null() {
                pyo3::ffi::PyErr_Clear();
                return None;
            }
        }
        if found.is_null() {
            return None;
        }
        Some(Bound::from_borrowed_ptr(py, found))
    }
}

/// [`class_attr`] without the GIL's exclusion: another thread may assign `__bases__` (which
/// replaces `tp_mro`) or delete the attribute (freeing a value borrowed from the dict) while
/// this runs, so the MRO tuple is held and each lookup returns a strong reference
/// (`PyDict_GetItemRef`).
#[cfg(Py_GIL_DISABLED)]
pub(crate) fn class_attr<'py>(
    ty: &Bound<'py, PyType>,
    name: &Bound<'py, pyo3::types::PyString>,
) -> Option<Bound<'py, PyAny>> {
    let py = ty.py();
    let mro = ty
        .getattr(intern!(py, "__mro__"))
        .ok()?
        .cast_into::<pyo3::types::PyTuple>()
        .ok()?;
    for t in mro.iter() {
        let t = t.cast_into::<PyType>().ok()?;
        // SAFETY: `PyType_GetDict` returns a new reference to a live type's dict (or NULL).
        let Some(d) = (unsafe {
            Bound::from_owned_ptr_or_opt(py, pyo3::ffi::PyType_GetDict(t.as_type_ptr()))
        }) else {
            continue;
        };
        match d.cast_into::<PyDict>().ok()?.get_item(name) {
            Ok(Some(v)) => return Some(v),
            Ok(None) => {}
            Err(_) => return None,
        }
    }
    None
}

/// Whether the instance's own `__dict__` has the attribute (then it wins over the class's).
fn instance_dict_has(obj: &Bound<'_, PyAny>, name: &Bound<'_, pyo3::types::PyString>) -> bool {
    obj.getattr(intern!(obj.py(), "__dict__"))
        .ok()
        .and_then(|d| d.cast_into::<PyDict>().ok())
        .is_some_and(|d| d.contains(name).unwrap_or(false))
}

fn all_declined(
    func: &Bound<'_, PyAny>,
    mode: Option<&Bound<'_, PyAny>>,
    overloaded: &[Bound<'_, PyAny>],
) -> PyErr {
    let attr = |name: &str| {
        func.getattr(name)
            .and_then(|v| v.str().map(|s| s.to_string()))
            .unwrap_or_default()
    };
    let mut msg = format!(
        "Multiple dispatch failed for '{}.{}'; all __torch_dispatch__ handlers returned NotImplemented:\n\n",
        attr("__module__"),
        attr("__name__")
    );
    if let Some(m) = mode {
        let r = m.repr().map(|s| s.to_string()).unwrap_or_default();
        msg.push_str(&format!("  - mode object {r}\n"));
    }
    for a in overloaded {
        let r = a
            .get_type()
            .repr()
            .map(|s| s.to_string())
            .unwrap_or_default();
        msg.push_str(&format!("  - tensor subclass {r}\n"));
    }
    msg.push_str("\nFor more information, try re-running with TORCH_LOGS=not_implemented");
    crate::errors::type_error(msg)
}

/// The Python-key backend fallback (PyTorch's `pythonFallback` with the interpreter's
/// `dispatch`): converts the arguments (preserved objects), offers the call to the mode stack
/// and the overloaded arguments, and pushes the handler's result.
pub(crate) fn python_key_fallback(
    op: &OperatorHandle,
    _ks: DispatchKeySet,
    stack: &mut Stack,
) -> opdispatch_dispatch::Result<()> {
    let _exclude = ExcludeDispatchKeyGuard::new(ABOVE_PYTHON);
    op.with_schema(|schema| {
        let start = arguments_start(op, schema, stack)?;
        let schema = schema.expect("checked by arguments_start");
        if mode_stack_len() == 0
            && !stack[start..]
                .iter()
                .any(|v| v.key_set().has(DispatchKey::Python))
        {
            return Err(opdispatch_dispatch::DispatchError::Internal(
                "Hit Python dispatch key but no arguments had PyInterpreter (no tensor args?)"
                    .into(),
            ));
        }
        Python::attach(|py| -> PyResult<()> {
            let (pos, kwargs) = args_to_py(py, schema, stack, start)?;
            let args = PyTuple::new(py, pos)?;
            let kwargs = kwargs.unwrap_or_else(|| PyDict::new(py));
            let func = overload_object(py, op)?;
            let out = handle_torch_dispatch(py, op, &func, &args, &kwargs)?;
            push_py_out(op, schema, stack, &out)
        })
        .map_err(py_to_dispatch)
    })
}

/// `_disabled_torch_function_impl`: as a class's `__torch_function__` it opts out of the
/// protocol, so the function just runs (opdispatch has no `__torch_function__` layer, so this is
/// also what every call does).
#[pyfunction]
#[pyo3(signature = (func, _types, args=None, kwargs=None))]
pub(crate) fn _disabled_torch_function_impl<'py>(
    func: &Bound<'py, PyAny>,
    _types: &Bound<'py, PyAny>,
    args: Option<&Bound<'py, PyAny>>,
    kwargs: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = func.py();
    let args = match args {
        Some(a) => a.try_iter()?.collect::<PyResult<Vec<_>>>()?,
        None => Vec::new(),
    };
    func.call(PyTuple::new(py, args)?, kwargs)
}

/// `_disabled_torch_dispatch_impl`: runs `func` with the Python key excluded (as a class's
/// `__torch_dispatch__`, the fallback skips it).
#[pyfunction]
#[pyo3(signature = (func, _types, args=None, kwargs=None))]
pub(crate) fn _disabled_torch_dispatch_impl<'py>(
    func: &Bound<'py, PyAny>,
    _types: &Bound<'py, PyAny>,
    args: Option<&Bound<'py, PyAny>>,
    kwargs: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    let _g = ExcludeDispatchKeyGuard::new(DispatchKeySet::from_keys(&[
        DispatchKey::Python,
        DispatchKey::PythonTLSSnapshot,
    ]));
    _disabled_torch_function_impl(func, _types, args, kwargs)
}

/// Adds the mode-stack functions and the rule registry to `_C`.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_push_on_torch_dispatch_stack, m)?)?;
    m.add_function(wrap_pyfunction!(_pop_torch_dispatch_stack, m)?)?;
    m.add_function(wrap_pyfunction!(_len_torch_dispatch_stack, m)?)?;
    m.add_function(wrap_pyfunction!(_get_dispatch_stack_at, m)?)?;
    m.add_function(wrap_pyfunction!(_disabled_torch_function_impl, m)?)?;
    m.add_function(wrap_pyfunction!(_clear_overload_cache, m)?)?;
    m.add_function(wrap_pyfunction!(_disabled_torch_dispatch_impl, m)?)?;
    m.add("_torch_dispatch_rules", torch_dispatch_rules(m.py()))?;
    Ok(())
}
