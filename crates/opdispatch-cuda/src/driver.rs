//! The CUDA driver, found at run time.
//!
//! `cudarc` opens `libcuda` lazily and panics when it is absent (or lacks a symbol its
//! bindings name), so the first use probes it under `catch_unwind` ([`driver`] caches that
//! answer and the outcome of `cuInit`); on a machine without a driver every function returns
//! [`CudaError::NoDriver`] (or 0 devices), never a panic.
//!
//! Each device is used through its primary context (as PyTorch's runtime does), retained once
//! per process and made current on a thread the first time that thread touches the device.

use std::cell::Cell;
use std::sync::OnceLock;

use cudarc::driver::{result as cu, sys};

use crate::allocator::RawAllocator;
use crate::error::{CudaError, Result};

/// The driver's state, probed once per process.
#[derive(Debug)]
enum Driver {
    Missing,
    Failed(String),
    Ready { contexts: Vec<Context> },
}

/// A retained primary context (a driver handle, valid for the process).
#[derive(Debug, Clone, Copy)]
struct Context(sys::CUcontext);

// SAFETY: a CUDA context handle may be made current on any thread; the driver synchronizes
// its use.
unsafe impl Send for Context {}
// SAFETY: as above: the handle is an opaque token shared read-only.
unsafe impl Sync for Context {}

/// A driver error with the driver's name for it.
pub(crate) fn driver_error(e: cu::DriverError) -> CudaError {
    CudaError::Driver(format!("{e:?}"))
}

/// Runs a probe that may panic inside `cudarc` (a missing library or symbol), as an error.
pub(crate) fn probe<T>(f: impl FnOnce() -> T + std::panic::UnwindSafe) -> Option<T> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let r = std::panic::catch_unwind(f);
    std::panic::set_hook(hook);
    r.ok()
}

fn driver() -> &'static Driver {
    static DRIVER: OnceLock<Driver> = OnceLock::new();
    DRIVER.get_or_init(|| {
        // SAFETY: only probes whether the shared library can be opened with every symbol the
        // bindings load; no CUDA call yet.
        match probe(|| unsafe { sys::is_culib_present() }) {
            Some(true) => {}
            _ => return Driver::Missing,
        }
        match cu::init() {
            Ok(()) => {}
            // A driver without a device: PyTorch's "No CUDA GPUs are available".
            Err(e) if e.0 == sys::CUresult::CUDA_ERROR_NO_DEVICE => {
                return Driver::Ready {
                    contexts: Vec::new(),
                }
            }
            Err(e) => return Driver::Failed(format!("{e:?}")),
        }
        let n = match cu::device::get_count() {
            Ok(n) => usize::try_from(n).unwrap_or(0),
            Err(e) => return Driver::Failed(format!("{e:?}")),
        };
        let mut contexts = Vec::with_capacity(n);
        for i in 0..n {
            let ctx = cu::device::get(i as i32).and_then(|dev| {
                // SAFETY: `dev` came from `cuDeviceGet`; the retained context is never released
                // (it lives as long as the process, as PyTorch's primary contexts do).
                unsafe { cu::primary_ctx::retain(dev) }
            });
            match ctx {
                Ok(c) => contexts.push(Context(c)),
                Err(e) => return Driver::Failed(format!("{e:?}")),
            }
        }
        Driver::Ready { contexts }
    })
}

/// Ok with the device count, or why CUDA cannot be used.
fn ready() -> Result<usize> {
    match driver() {
        Driver::Missing => Err(CudaError::NoDriver),
        Driver::Failed(e) => Err(CudaError::Driver(e.clone())),
        Driver::Ready { contexts } if contexts.is_empty() => Err(CudaError::NoDevice),
        Driver::Ready { contexts } => Ok(contexts.len()),
    }
}

/// `torch.cuda.is_available()`: a driver and at least one device.
pub fn is_available() -> bool {
    ready().is_ok()
}

/// `torch.cuda.device_count()`: 0 without a driver.
pub fn device_count() -> usize {
    ready().unwrap_or(0)
}

/// Checks that `index` names a device of this machine.
pub fn check_device(index: usize) -> Result<()> {
    let count = ready()?;
    if index >= count {
        return Err(CudaError::InvalidDevice { index, count });
    }
    Ok(())
}

thread_local! {
    static CURRENT: Cell<usize> = const { Cell::new(0) };
    /// The device whose context is current on this thread (`usize::MAX`: none yet).
    static BOUND: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// Makes device `index`'s primary context current on this thread (once per thread and
/// device switch): every driver call that allocates, copies or launches goes through here.
pub fn bind(index: usize) -> Result<()> {
    if BOUND.with(Cell::get) == index {
        return Ok(());
    }
    check_device(index)?;
    let Driver::Ready { contexts } = driver() else {
        return Err(CudaError::NoDriver);
    };
    // SAFETY: the context was retained at the probe and is never released.
    unsafe { cu::ctx::set_current(contexts[index].0) }.map_err(driver_error)?;
    BOUND.with(|b| b.set(index));
    Ok(())
}

/// `torch.cuda.current_device()`: this thread's device (0 until [`set_device`]).
pub fn current_device() -> Result<usize> {
    ready()?;
    Ok(CURRENT.with(Cell::get))
}

/// `torch.cuda.set_device(index)` for this thread.
pub fn set_device(index: usize) -> Result<()> {
    check_device(index)?;
    CURRENT.with(|c| c.set(index));
    Ok(())
}

/// `torch.cuda.synchronize(device)`: waits for all work queued on `device`.
pub fn synchronize(index: usize) -> Result<()> {
    bind(index)?;
    cu::ctx::synchronize().map_err(driver_error)
}

/// Device memory straight from the driver (`cuMemAlloc` / `cuMemFree` in the device's primary
/// context): the raw allocator under [`crate::CachingAllocator`].
#[derive(Debug)]
pub struct DriverAllocator {
    index: usize,
}

impl DriverAllocator {
    /// The allocator of device `index` (its primary context, as PyTorch uses).
    pub fn new(index: usize) -> Result<Self> {
        check_device(index)?;
        Ok(Self { index })
    }
}

impl RawAllocator for DriverAllocator {
    fn allocate(&self, bytes: usize) -> Result<u64> {
        bind(self.index)?;
        // SAFETY: the context is current on this thread; the memory is returned to the driver
        // by `release` only.
        unsafe { cu::malloc_sync(bytes) }.map_err(driver_error)
    }

    fn release(&self, ptr: u64) -> Result<()> {
        bind(self.index)?;
        // SAFETY: `ptr` came from `allocate` of this allocator and is released once (the
        // caching allocator owns each block exactly once).
        unsafe { cu::free_sync(ptr) }.map_err(driver_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_driver_everything_answers_instead_of_panicking() {
        if driver_present() {
            return; // a GPU machine or the emulator: covered by the CUDA pytest cases
        }
        assert!(!is_available());
        assert_eq!(device_count(), 0);
        assert_eq!(current_device(), Err(CudaError::NoDriver));
        assert_eq!(set_device(0), Err(CudaError::NoDriver));
        assert_eq!(synchronize(0), Err(CudaError::NoDriver));
        assert_eq!(bind(0), Err(CudaError::NoDriver));
        assert_eq!(DriverAllocator::new(0).unwrap_err(), CudaError::NoDriver);
        assert!(CudaError::NoDriver
            .to_string()
            .starts_with("Found no NVIDIA driver on your system."));
    }

    fn driver_present() -> bool {
        !matches!(driver(), Driver::Missing)
    }
}
