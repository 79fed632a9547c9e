//! `DispatchKey` (a Python `enum.Enum` built from the Rust key table, so the names and values
//! come from one declaration) and `DispatchKeySet`.

use std::sync::OnceLock;

use opdispatch_keys::{python_enum_entries, DispatchKey, DispatchKeySet};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};

static KEY_ENUM: OnceLock<Py<PyAny>> = OnceLock::new();

/// Builds `DispatchKey` as an `enum.Enum` with PyTorch 2.15's exposed names and values, so
/// `str(DispatchKey.CPU) == 'DispatchKey.CPU'` and `repr` is `<DispatchKey.CPU: 49>`.
pub(crate) fn make_key_enum(py: Python<'_>, module_name: &str) -> PyResult<Py<PyAny>> {
    let entries = PyList::empty(py);
    // Canonical names first: an Enum member's `.name` is the first name given for its value,
    // and `EndOf*Backends` share values with real keys (e.g. EndOfDenseBackends == Meta).
    let all = python_enum_entries();
    let (aliases, canonical): (Vec<_>, Vec<_>) =
        all.iter().partition(|(n, _)| n.starts_with("EndOf"));
    for (name, key) in canonical.into_iter().chain(aliases) {
        entries.append((name.to_string(), key.as_u16()))?;
    }
    let enum_mod = py.import("enum")?;
    let kwargs = pyo3::types::PyDict::new(py);
    kwargs.set_item("module", module_name)?;
    let cls = enum_mod
        .getattr("Enum")?
        .call(("DispatchKey", entries), Some(&kwargs))?;
    let cls = cls.unbind();
    let _ = KEY_ENUM.set(cls.clone_ref(py));
    Ok(cls)
}

/// The Python enum member for a key (keys hidden from Python come back as their name).
pub(crate) fn key_to_py(py: Python<'_>, k: DispatchKey) -> PyResult<Py<PyAny>> {
    let cls = KEY_ENUM
        .get()
        .ok_or_else(|| crate::errors::runtime_error("DispatchKey enum not initialised"))?;
    match cls.bind(py).call1((k.as_u16(),)) {
        Ok(m) => Ok(m.unbind()),
        Err(_) => Ok(k.name().into_pyobject(py)?.into_any().unbind()),
    }
}

/// Accepts a `DispatchKey` member or a key name (as pybind's caster does).
pub(crate) fn extract_key(obj: &Bound<'_, PyAny>) -> PyResult<DispatchKey> {
    if let Ok(s) = obj.extract::<String>() {
        return DispatchKey::parse(&s).map_err(|e| crate::errors::runtime_error(e.to_string()));
    }
    if let Ok(v) = obj.getattr("value").and_then(|v| v.extract::<u16>()) {
        if let Some(k) = DispatchKey::from_u16(v) {
            return Ok(k);
        }
    }
    Err(crate::errors::type_error(format!(
        "expected a DispatchKey or a key name, got {}",
        obj.get_type().name()?
    )))
}

/// Parses an optional key given as a string ("" means none).
pub(crate) fn parse_opt_key(s: &str) -> PyResult<Option<DispatchKey>> {
    if s.is_empty() {
        return Ok(None);
    }
    DispatchKey::parse(s)
        .map(Some)
        .map_err(|e| crate::errors::runtime_error(e.to_string()))
}

/// PyTorch's `DispatchKeySet`.
#[pyclass(
    name = "DispatchKeySet",
    module = "opdispatch._C",
    frozen,
    eq,
    hash,
    from_py_object
)]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PyDispatchKeySet {
    pub ks: DispatchKeySet,
}

impl PyDispatchKeySet {
    pub fn new_set(ks: DispatchKeySet) -> Self {
        Self { ks }
    }
}

#[pymethods]
impl PyDispatchKeySet {
    #[new]
    #[pyo3(signature = (key=None))]
    fn py_new(key: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        match key {
            None => Ok(Self::new_set(DispatchKeySet::EMPTY)),
            Some(k) => Ok(Self::new_set(DispatchKeySet::from_key(extract_key(k)?))),
        }
    }
    fn __or__(&self, o: &Self) -> Self {
        Self::new_set(self.ks | o.ks)
    }
    fn __and__(&self, o: &Self) -> Self {
        Self::new_set(self.ks & o.ks)
    }
    fn __sub__(&self, o: &Self) -> Self {
        Self::new_set(self.ks - o.ks)
    }
    fn __xor__(&self, o: &Self) -> Self {
        Self::new_set(self.ks ^ o.ks)
    }
    fn __repr__(&self) -> String {
        self.ks.to_string()
    }
    fn raw_repr(&self) -> u64 {
        self.ks.raw_repr()
    }
    #[staticmethod]
    fn from_raw_repr(x: u64) -> Self {
        Self::new_set(DispatchKeySet::from_raw_repr(x))
    }
    #[allow(non_snake_case)]
    fn highestPriorityTypeId(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        key_to_py(py, self.ks.highest_priority_type_id())
    }
    fn has(&self, k: &Bound<'_, PyAny>) -> PyResult<bool> {
        Ok(self.ks.has(extract_key(k)?))
    }
    fn add(&self, k: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(Self::new_set(self.ks.add(extract_key(k)?)))
    }
    fn remove(&self, k: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(Self::new_set(self.ks.remove(extract_key(k)?)))
    }
    fn empty(&self) -> bool {
        self.ks.is_empty()
    }
    fn __iter__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let items: PyResult<Vec<Py<PyAny>>> = self.ks.iter().map(|k| key_to_py(py, k)).collect();
        Ok(PyList::new(py, items?)?
            .into_any()
            .call_method0("__iter__")?
            .unbind())
    }
    fn __reduce__(&self, py: Python<'_>) -> PyResult<(Py<PyAny>, (u64,))> {
        let f = py.get_type::<Self>().getattr("from_raw_repr")?.unbind();
        Ok((f, (self.ks.raw_repr(),)))
    }
    fn __getstate__(&self) -> (u64,) {
        (self.ks.raw_repr(),)
    }
    fn __setstate__(&self, state: &Bound<'_, PyAny>) -> PyResult<()> {
        let t = state.cast::<PyTuple>().map_err(|_| {
            crate::errors::runtime_error("__setstate__ expected tuple with one element")
        })?;
        if t.len() != 1 {
            return Err(crate::errors::runtime_error(
                "__setstate__ expected tuple with one element",
            ));
        }
        // Frozen: pickling goes through __reduce__; setstate only validates.
        Ok(())
    }
}
