//! `torch.get_num_threads` / `torch.set_num_threads`: the intra-op thread count of the kernels
//! (opdispatch_tensor::parallel), with torch's argument checks and messages.

use crate::errors::{runtime_error, value_error};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyInt};

/// Threads the kernels use (default: the machine's cores).
#[pyfunction]
fn get_num_threads() -> usize {
    opdispatch_tensor::get_num_threads()
}

/// Sets the threads the kernels use; a positive `int` (as torch, which unpacks a C `int`).
#[pyfunction]
fn set_num_threads(n: &Bound<'_, PyAny>) -> PyResult<()> {
    if !n.is_instance_of::<PyInt>() || n.is_instance_of::<PyBool>() {
        let ty = n.get_type().name()?;
        return Err(runtime_error(format!(
            "set_num_threads expects an int, but got {ty}"
        )));
    }
    let v = n
        .extract::<i64>()
        .ok()
        .and_then(|v| i32::try_from(v).ok())
        .ok_or_else(|| value_error("Overflow when unpacking long"))?;
    if v <= 0 {
        return Err(runtime_error("set_num_threads expects a positive integer"));
    }
    opdispatch_tensor::set_num_threads(v as usize);
    Ok(())
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(get_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(set_num_threads, m)?)?;
    Ok(())
}
