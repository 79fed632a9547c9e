//! The CUDA driver, found at run time.
//!
//! `cudarc` opens `libcuda` lazily and panics when it is absent, so every entry point here
//! first asks whether the library can be loaded ([`driver`] caches that answer and the
//! outcome of `cuInit`); on a machine without a driver every function returns
//! [`CudaError::NoDriver`] (or 0 devices), never a panic.

use std::cell::Cell;
use std::sync::OnceLock;

use cudarc::driver::result as cu;

use crate::allocator::RawAllocator;
use crate::error::{CudaError, Result};

/// The driver's state, probed once per process.
#[derive(Debug, Clone)]
enum Driver {
    Missing,
    Failed(String),
    Ready { devices: usize },
}

fn driver() -> &'static Driver {
    static DRIVER: OnceLock<Driver> = OnceLock::new();
    DRIVER.get_or_init(|| {
        // SAFETY: only probes whether the shared library can be opened; no CUDA call yet.
        if !unsafe { cudarc::driver::sys::is_culib_present() } {
            return Driver::Missing;
        }
        if let Err(e) = cu::init() {
            return Driver::Failed(format!("{e:?}"));
        }
        match cu::device::get_count() {
            Ok(n) => Driver::Ready {
                devices: usize::try_from(n).unwrap_or(0),
            },
            Err(e) => Driver::Failed(format!("{e:?}")),
        }
    })
}

/// Ok with the device count, or why CUDA cannot be used.
fn ready() -> Result<usize> {
    match driver() {
        Driver::Missing => Err(CudaError::NoDriver),
        Driver::Failed(e) => Err(CudaError::Driver(e.clone())),
        Driver::Ready { devices: 0 } => Err(CudaError::NoDevice),
        Driver::Ready { devices } => Ok(*devices),
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
    check_device(index)?;
    let ctx =
        cudarc::driver::CudaContext::new(index).map_err(|e| CudaError::Driver(format!("{e:?}")))?;
    ctx.synchronize()
        .map_err(|e| CudaError::Driver(format!("{e:?}")))
}

/// Device memory straight from the driver (`cuMemAlloc` / `cuMemFree` in the device's primary
/// context): the raw allocator under [`crate::CachingAllocator`].
#[derive(Debug)]
pub struct DriverAllocator {
    ctx: std::sync::Arc<cudarc::driver::CudaContext>,
}

impl DriverAllocator {
    /// The allocator of device `index` (its primary context, as PyTorch uses).
    pub fn new(index: usize) -> Result<Self> {
        check_device(index)?;
        let ctx = cudarc::driver::CudaContext::new(index)
            .map_err(|e| CudaError::Driver(format!("{e:?}")))?;
        Ok(Self { ctx })
    }
}

impl RawAllocator for DriverAllocator {
    fn allocate(&self, bytes: usize) -> Result<u64> {
        self.ctx
            .bind_to_thread()
            .map_err(|e| CudaError::Driver(format!("{e:?}")))?;
        // SAFETY: the context is current on this thread; the memory is returned to the driver
        // by `release` only.
        unsafe { cu::malloc_sync(bytes) }.map_err(|e| CudaError::Driver(format!("{e:?}")))
    }

    fn release(&self, ptr: u64) -> Result<()> {
        self.ctx
            .bind_to_thread()
            .map_err(|e| CudaError::Driver(format!("{e:?}")))?;
        // SAFETY: `ptr` came from `allocate` of this allocator and is released once (the
        // caching allocator owns each block exactly once).
        unsafe { cu::free_sync(ptr) }.map_err(|e| CudaError::Driver(format!("{e:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_driver_everything_answers_instead_of_panicking() {
        if driver_present() {
            return; // a GPU machine: covered by scripts/gpu_check.sh
        }
        assert!(!is_available());
        assert_eq!(device_count(), 0);
        assert_eq!(current_device(), Err(CudaError::NoDriver));
        assert_eq!(set_device(0), Err(CudaError::NoDriver));
        assert_eq!(synchronize(0), Err(CudaError::NoDriver));
        assert_eq!(DriverAllocator::new(0).unwrap_err(), CudaError::NoDriver);
        assert!(CudaError::NoDriver
            .to_string()
            .starts_with("Found no NVIDIA driver on your system."));
    }

    fn driver_present() -> bool {
        !matches!(driver(), Driver::Missing)
    }
}
