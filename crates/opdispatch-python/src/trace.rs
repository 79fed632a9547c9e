//! `_C._dispatch_trace_begin` / `_dispatch_trace_end`: the dispatcher's per-thread call
//! recorder (`opdispatch_dispatch::trace`) as plain tuples, which `opdispatch._trace` wraps.

use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};

use opdispatch_dispatch::trace;

/// Starts recording every dispatcher entry on this thread; returns the recorder's id.
#[pyfunction]
pub(crate) fn _dispatch_trace_begin() -> u64 {
    trace::begin()
}

/// Stops recorder `id` and returns `(events, duration_ns)`, each event a tuple `(operator,
/// key, kernel_kind, redispatch, depth, start_ns, duration_ns, failed)` in entry order.
#[pyfunction]
pub(crate) fn _dispatch_trace_end(py: Python<'_>, id: u64) -> PyResult<Bound<'_, PyTuple>> {
    let t = trace::end(id).ok_or_else(|| {
        crate::errors::runtime_error(format!(
            "no active dispatch trace {id} on this thread (a trace ends on the thread that started it, once)"
        ))
    })?;
    let events = PyList::empty(py);
    for e in &t.events {
        let row = (
            e.op.operator_name().to_string(),
            e.key.name(),
            e.kernel_kind,
            e.redispatch,
            e.depth,
            e.start_ns,
            e.duration_ns,
            e.failed,
        );
        events.append(row.into_pyobject(py)?)?;
    }
    (events, t.duration_ns).into_pyobject(py)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_dispatch_trace_begin, m)?)?;
    m.add_function(wrap_pyfunction!(_dispatch_trace_end, m)?)?;
    Ok(())
}
