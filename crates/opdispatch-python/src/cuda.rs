//! `torch.cuda`'s device queries (`opdispatch.cuda`): the driver is found at run time, so
//! these answer on every machine (no driver: not available, 0 devices, PyTorch's "Found no
//! NVIDIA driver" RuntimeError from the functions that need one).

use pyo3::prelude::*;

use crate::errors::cuda_error;

#[pyfunction]
fn _cuda_is_available() -> bool {
    opdispatch_cuda::is_available()
}

#[pyfunction]
fn _cuda_device_count() -> usize {
    opdispatch_cuda::device_count()
}

#[pyfunction]
fn _cuda_current_device() -> PyResult<usize> {
    opdispatch_cuda::current_device().map_err(cuda_error)
}

#[pyfunction]
fn _cuda_set_device(index: usize) -> PyResult<()> {
    opdispatch_cuda::set_device(index).map_err(cuda_error)
}

#[pyfunction]
fn _cuda_synchronize(py: Python<'_>, index: usize) -> PyResult<()> {
    py.detach(|| opdispatch_cuda::synchronize(index))
        .map_err(cuda_error)
}

/// `(allocated, reserved, peak allocated, driver allocations)` of device `index`'s caching
/// allocator, in bytes.
#[pyfunction]
fn _cuda_memory_stats(index: usize) -> PyResult<(usize, usize, usize, usize)> {
    opdispatch_cuda::check_device(index).map_err(cuda_error)?;
    let s = opdispatch_cuda::memory::memory_stats(index).map_err(cuda_error)?;
    Ok((
        s.allocated,
        s.reserved,
        s.peak_allocated,
        s.driver_allocations,
    ))
}

#[pyfunction]
fn _cuda_empty_cache(py: Python<'_>, index: usize) -> PyResult<()> {
    py.detach(|| opdispatch_cuda::memory::empty_cache(index))
        .map_err(cuda_error)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_cuda_memory_stats, m)?)?;
    m.add_function(wrap_pyfunction!(_cuda_empty_cache, m)?)?;
    m.add_function(wrap_pyfunction!(_cuda_is_available, m)?)?;
    m.add_function(wrap_pyfunction!(_cuda_device_count, m)?)?;
    m.add_function(wrap_pyfunction!(_cuda_current_device, m)?)?;
    m.add_function(wrap_pyfunction!(_cuda_set_device, m)?)?;
    m.add_function(wrap_pyfunction!(_cuda_synchronize, m)?)?;
    Ok(())
}
