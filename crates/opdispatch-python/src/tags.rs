//! `opdispatch._C.Tag`: PyTorch's `torch.Tag`, built from the dispatcher's list of tags.

use std::sync::OnceLock;

use opdispatch_dispatch::Tag;
use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

static TAG_ENUM: OnceLock<Py<PyAny>> = OnceLock::new();

/// The `Tag` enum: members by PyTorch's names with PyTorch's values, usable as ints (as
/// pybind11's enums are): `<Tag.pointwise: 16>`, `str` `Tag.pointwise`, `int` 16.
pub fn make_tag_enum(py: Python<'_>, module_name: &str) -> PyResult<Py<PyAny>> {
    let entries = PyList::empty(py);
    for t in Tag::ALL {
        entries.append((t.name(), t.value()))?;
    }
    let kwargs = PyDict::new(py);
    kwargs.set_item("module", module_name)?;
    kwargs.set_item("type", py.get_type::<pyo3::types::PyInt>())?;
    let cls = py
        .import("enum")?
        .getattr("Enum")?
        .call(("Tag", entries), Some(&kwargs))?
        .unbind();
    let _ = TAG_ENUM.set(cls.clone_ref(py));
    Ok(cls)
}

fn tag_enum(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    TAG_ENUM
        .get()
        .map(|c| c.bind(py))
        .ok_or_else(|| PyRuntimeError::new_err("Tag enum not initialised"))
}

/// The tags of `define(..., tags)`: `None`, one `Tag`, or a sequence of them. Anything else is
/// a `TypeError`, as pybind's argument check gives.
pub fn extract_tags(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<Tag>> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(Vec::new());
    };
    let py = obj.py();
    let cls = tag_enum(py)?;
    let one = |o: &Bound<'_, PyAny>| -> PyResult<Tag> {
        if !o.is_instance(cls)? {
            return Err(PyTypeError::new_err(format!(
                "define(): tags must be opdispatch.Tag members, got {}",
                o.repr()?
            )));
        }
        let v: usize = o.getattr("value")?.extract()?;
        Tag::from_value(v).ok_or_else(|| PyRuntimeError::new_err(format!("unknown tag value {v}")))
    };
    if obj.is_instance(cls)? {
        return Ok(vec![one(obj)?]);
    }
    if obj.is_instance_of::<pyo3::types::PyString>() {
        return Err(PyTypeError::new_err(format!(
            "define(): tags must be opdispatch.Tag members, got {}",
            obj.repr()?
        )));
    }
    obj.try_iter()?.map(|o| one(&o?)).collect()
}

/// `tags` as a list of `Tag` members.
pub fn tags_to_py<'py>(py: Python<'py>, tags: &[Tag]) -> PyResult<Bound<'py, PyList>> {
    let cls = tag_enum(py)?;
    let out = PyList::empty(py);
    for t in tags {
        out.append(cls.call1((t.value(),))?)?;
    }
    Ok(out)
}
