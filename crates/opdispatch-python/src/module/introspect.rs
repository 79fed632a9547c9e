//! The `_dispatch_*` functions: operator lookup, dumps, invariants, kernel queries and the
//! thread-local include/exclude sets.

use opdispatch_dispatch::{
    tls_local_dispatch_key_set, DispatchKey, DispatchKeySet, Dispatcher, OperatorHandle,
};
use opdispatch_schema::parse_name;
use pyo3::prelude::*;

use crate::errors::IntoPyResult;
use crate::keys::{extract_key, key_to_py, parse_opt_key, PyDispatchKeySet};
use crate::tensor::unwrap_tensor;

pub(super) fn find(name: &str) -> PyResult<Option<OperatorHandle>> {
    let on = parse_name(name).map_err(|e| crate::errors::runtime_error(e.to_string()))?;
    Ok(Dispatcher::singleton().find_op(&on))
}

pub(crate) fn find_or_err(name: &str) -> PyResult<OperatorHandle> {
    find(name)?
        .ok_or_else(|| crate::errors::runtime_error(format!("operator {name} does not exist")))
}

#[pyfunction]
pub(crate) fn _dispatch_dump(name: &str) -> PyResult<String> {
    Ok(find(name)?.map(|o| o.dump_state()).unwrap_or_default())
}

#[pyfunction]
pub(crate) fn _dispatch_dump_table(name: &str) -> PyResult<String> {
    Ok(find(name)?
        .map(|o| o.dump_computed_table())
        .unwrap_or_default())
}

#[pyfunction]
pub(crate) fn _dispatch_check_invariants(name: &str) -> PyResult<()> {
    match find(name)? {
        Some(o) => o.check_invariants().py(),
        None => Ok(()),
    }
}

#[pyfunction]
pub(crate) fn _dispatch_check_all_invariants() -> PyResult<()> {
    Dispatcher::singleton().check_all_invariants().py()
}

/// Whether an operator slot exists (PyTorch's meaning of this name).
#[pyfunction]
pub(crate) fn _dispatch_has_kernel(name: &str) -> PyResult<bool> {
    Ok(find(name)?.is_some())
}

#[pyfunction]
pub(crate) fn _dispatch_has_kernel_for_dispatch_key(
    name: &str,
    dispatch: &Bound<'_, PyAny>,
) -> PyResult<bool> {
    Ok(find_or_err(name)?.has_kernel_for_dispatch_key(extract_key(dispatch)?))
}

#[pyfunction]
pub(crate) fn _dispatch_kernel_for_dispatch_key_is_fallthrough(
    name: &str,
    dispatch: &Bound<'_, PyAny>,
) -> PyResult<bool> {
    Ok(find_or_err(name)?.kernel_for_dispatch_key_is_fallthrough(extract_key(dispatch)?))
}

#[pyfunction]
pub(crate) fn _dispatch_has_kernel_for_any_dispatch_key(
    name: &str,
    ks: PyDispatchKeySet,
) -> PyResult<bool> {
    Ok(find_or_err(name)?.has_kernel_for_any_dispatch_key(ks.ks))
}

#[pyfunction]
pub(crate) fn _dispatch_has_computed_kernel_for_dispatch_key(
    name: &str,
    dispatch: &Bound<'_, PyAny>,
) -> PyResult<bool> {
    let op = find_or_err(name)?;
    Dispatcher::singleton()
        .has_computed_kernel_for_dispatch_key(&op, extract_key(dispatch)?)
        .py()
}

#[pyfunction]
pub(crate) fn _dispatch_has_backend_fallback(dispatch: &Bound<'_, PyAny>) -> PyResult<bool> {
    Ok(Dispatcher::singleton().has_backend_fallback_for_dispatch_key(extract_key(dispatch)?))
}

#[pyfunction]
pub(crate) fn _dispatch_get_all_op_names() -> Vec<String> {
    Dispatcher::singleton().all_op_names()
}

#[pyfunction]
pub(crate) fn _dispatch_find_dangling_impls() -> Vec<String> {
    Dispatcher::singleton().find_dangling_impls()
}

#[pyfunction]
#[pyo3(signature = (dispatch_key=""))]
pub(crate) fn _dispatch_get_registrations_for_dispatch_key(
    dispatch_key: &str,
) -> PyResult<Vec<String>> {
    Ok(Dispatcher::singleton().registrations_for_dispatch_key(parse_opt_key(dispatch_key)?))
}

#[pyfunction]
pub(crate) fn _dispatch_keys(t: &Bound<'_, PyAny>) -> PyResult<PyDispatchKeySet> {
    Ok(PyDispatchKeySet::new_set(unwrap_tensor(t)?.key_set()))
}

#[pyfunction]
pub(crate) fn _dispatch_tls_local_include_set() -> PyDispatchKeySet {
    PyDispatchKeySet::new_set(tls_local_dispatch_key_set().included)
}

#[pyfunction]
pub(crate) fn _dispatch_tls_local_exclude_set() -> PyDispatchKeySet {
    PyDispatchKeySet::new_set(tls_local_dispatch_key_set().excluded)
}

#[pyfunction]
pub(crate) fn _dispatch_tls_set_dispatch_key_included(
    k: &Bound<'_, PyAny>,
    desired: bool,
) -> PyResult<()> {
    opdispatch_dispatch::tls_set_dispatch_key_included(extract_key(k)?, desired);
    Ok(())
}

#[pyfunction]
pub(crate) fn _dispatch_tls_set_dispatch_key_excluded(
    k: &Bound<'_, PyAny>,
    desired: bool,
) -> PyResult<()> {
    opdispatch_dispatch::tls_set_dispatch_key_excluded(extract_key(k)?, desired);
    Ok(())
}

#[pyfunction]
pub(crate) fn _dispatch_tls_is_dispatch_key_included(k: &Bound<'_, PyAny>) -> PyResult<bool> {
    Ok(opdispatch_dispatch::tls_is_dispatch_key_included(
        extract_key(k)?,
    ))
}

#[pyfunction]
pub(crate) fn _dispatch_tls_is_dispatch_key_excluded(k: &Bound<'_, PyAny>) -> PyResult<bool> {
    Ok(opdispatch_dispatch::tls_is_dispatch_key_excluded(
        extract_key(k)?,
    ))
}

#[pyfunction]
pub(crate) fn _dispatch_key_name(k: &Bound<'_, PyAny>) -> PyResult<String> {
    Ok(extract_key(k)?.name().to_owned())
}

#[pyfunction]
pub(crate) fn _dispatch_key_parse(py: Python<'_>, k: &str) -> PyResult<Py<PyAny>> {
    let key = DispatchKey::parse(k).map_err(|e| crate::errors::runtime_error(e.to_string()))?;
    key_to_py(py, key)
}

#[pyfunction]
pub(crate) fn _parse_dispatch_key(py: Python<'_>, k: &str) -> PyResult<Option<Py<PyAny>>> {
    match DispatchKey::parse(k) {
        Ok(key) => key_to_py(py, key).map(Some),
        Err(_) => Ok(None),
    }
}

#[pyfunction]
pub(crate) fn _dispatch_is_alias_key(k: &Bound<'_, PyAny>) -> PyResult<bool> {
    Ok(extract_key(k)?.is_alias())
}

#[pyfunction]
pub(crate) fn _dispatch_keyset_full() -> PyDispatchKeySet {
    PyDispatchKeySet::new_set(DispatchKeySet::FULL)
}

#[pyfunction]
pub(crate) fn _dispatch_keyset_full_after(k: &Bound<'_, PyAny>) -> PyResult<PyDispatchKeySet> {
    Ok(PyDispatchKeySet::new_set(DispatchKeySet::full_after(
        extract_key(k)?,
    )))
}

#[pyfunction]
pub(crate) fn _dispatch_keyset_to_string(ks: PyDispatchKeySet) -> String {
    ks.ks.to_string()
}

#[pyfunction]
pub(crate) fn _dispatch_num_backends() -> usize {
    opdispatch_keys::NUM_BACKENDS
}

#[pyfunction]
pub(crate) fn _dispatch_is_included_in_alias(
    k: &Bound<'_, PyAny>,
    alias: &Bound<'_, PyAny>,
) -> PyResult<bool> {
    Ok(opdispatch_keys::is_included_in_alias(
        extract_key(k)?,
        extract_key(alias)?,
    ))
}

#[pyfunction]
pub(crate) fn _dispatch_get_backend_keyset_from_autograd(
    k: &Bound<'_, PyAny>,
) -> PyResult<PyDispatchKeySet> {
    Ok(PyDispatchKeySet::new_set(
        opdispatch_keys::get_backend_key_set_from_autograd(extract_key(k)?),
    ))
}
