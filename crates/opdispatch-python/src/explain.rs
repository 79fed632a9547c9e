//! `_C._dispatch_explain` and `_C._dispatch_table_rows`: the dispatcher's explanations
//! (`opdispatch_dispatch::explain`) as plain dicts, which `opdispatch._explain` wraps.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use opdispatch_dispatch::explain::{describe_rule, fix_hint};
use opdispatch_dispatch::{DispatchKeySet, Dispatcher, OperatorHandle, SlotExplanation, Stack};

use crate::convert::{bind_args, Kwargs};
use crate::module::PyOperatorHandle;

/// Key names, highest priority first (the order a call tries them).
fn key_names(ks: DispatchKeySet) -> Vec<&'static str> {
    let mut v: Vec<&'static str> = ks
        .iter()
        .map(opdispatch_dispatch::DispatchKey::name)
        .collect();
    v.reverse();
    v
}

fn handle_of(op: &Bound<'_, PyAny>) -> PyResult<OperatorHandle> {
    if let Ok(h) = op.cast::<PyOperatorHandle>() {
        return Ok(h.get().op.clone());
    }
    let name: String = op.extract().map_err(|_| {
        crate::errors::type_error(format!(
            "expected an operator (OpOverload, packet or 'ns::op.overload' name), got {}",
            op.get_type()
                .name()
                .map(|s| s.to_string())
                .unwrap_or_default()
        ))
    })?;
    crate::module::find_or_err(&name)
}

fn slot_dict<'py>(
    py: Python<'py>,
    operator: &str,
    s: &SlotExplanation,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("key", s.key.name())?;
    d.set_item("kind", s.kind)?;
    d.set_item("rule", s.rule.as_str())?;
    d.set_item("alias", s.alias.map(opdispatch_dispatch::DispatchKey::name))?;
    d.set_item("registered", &s.debug)?;
    d.set_item("current", s.current)?;
    d.set_item("redispatch_mask", s.redispatch_mask.map(key_names))?;
    d.set_item("description", describe_rule(s))?;
    d.set_item("fix", (s.kind == "missing").then(|| fix_hint(operator, s)))?;
    Ok(d)
}

/// What a call of `op` with these arguments would run on this thread, and why (nothing runs).
#[pyfunction]
#[pyo3(signature = (op, args, kwargs=None))]
pub(crate) fn _dispatch_explain<'py>(
    py: Python<'py>,
    op: &Bound<'py, PyAny>,
    args: &Bound<'py, PyTuple>,
    kwargs: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyDict>> {
    let handle = handle_of(op)?;
    let mut stack = Stack::new();
    handle.with_schema(|schema| -> PyResult<()> {
        let schema = schema.ok_or_else(|| {
            crate::errors::runtime_error(format!(
                "Tried to access the schema for {} which doesn't have a schema registered yet",
                handle.operator_name()
            ))
        })?;
        let pos: Vec<Bound<'py, PyAny>> = args.iter().collect();
        let kw = match kwargs {
            Some(d) if !d.is_empty() => Kwargs::Dict(d),
            _ => Kwargs::None,
        };
        bind_args(schema, &pos, kw, &mut stack)
    })?;
    let e = Dispatcher::singleton()
        .explain(&handle, &stack)
        .ok_or_else(|| {
            crate::errors::runtime_error(format!(
                "operator {} is no longer registered",
                handle.operator_name()
            ))
        })?;
    let d = PyDict::new(py);
    d.set_item("operator", &e.operator)?;
    d.set_item("schema", &e.schema)?;
    let a = PyList::empty(py);
    for arg in &e.arguments {
        let ad = PyDict::new(py);
        ad.set_item("name", &arg.name)?;
        ad.set_item("dispatch_relevant", arg.dispatch_relevant)?;
        ad.set_item("key_set", arg.key_set.map(key_names))?;
        a.append(ad)?;
    }
    d.set_item("arguments", a)?;
    let w = &e.walk;
    d.set_item("argument_keys", key_names(w.argument_keys))?;
    d.set_item("tls_included", key_names(w.tls_included))?;
    d.set_item("tls_excluded", key_names(w.tls_excluded))?;
    d.set_item(
        "fallthrough_keys",
        e.fallthrough_keys
            .iter()
            .map(|k| k.name())
            .collect::<Vec<_>>(),
    )?;
    d.set_item("dispatch_keys", key_names(w.dispatch_keys))?;
    let slots = |v: &[SlotExplanation]| -> PyResult<Bound<'py, PyList>> {
        let l = PyList::empty(py);
        for s in v {
            l.append(slot_dict(py, &e.operator, s)?)?;
        }
        Ok(l)
    };
    d.set_item("passed", slots(&w.passed)?)?;
    d.set_item("chosen", slot_dict(py, &e.operator, &w.chosen)?)?;
    d.set_item("chosen_keys", key_names(w.chosen_keys))?;
    d.set_item("below", slots(&w.below)?)?;
    d.set_item("text", e.to_string())?;
    Ok(d)
}

/// The computed dispatch table of `op` as rows (valid slots, dispatch-table order).
#[pyfunction]
pub(crate) fn _dispatch_table_rows<'py>(
    py: Python<'py>,
    op: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyList>> {
    let handle = handle_of(op)?;
    let name = handle.operator_name().to_string();
    let l = PyList::empty(py);
    for s in Dispatcher::singleton().explain_table(&handle) {
        l.append(slot_dict(py, &name, &s)?)?;
    }
    Ok(l)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_dispatch_explain, m)?)?;
    m.add_function(wrap_pyfunction!(_dispatch_table_rows, m)?)?;
    Ok(())
}
