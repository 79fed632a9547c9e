//! Device memory: each device's caching allocator, the owned [`DeviceBuffer`] tensor storage
//! keeps, and the copies between host and device.
//!
//! Ordering: every kernel and device-to-device copy goes to the device's default (legacy NULL)
//! stream, and the host-to-device / device-to-host copies are the driver's synchronous ones,
//! which wait for the work queued on that stream before them, so a copy back to the host sees
//! every earlier kernel's result (PyTorch's default-stream semantics). A freed block goes back
//! to the cache and is only handed to later work on the same stream, which runs after the work
//! that last used it.

use std::sync::OnceLock;

use cudarc::driver::{result as cu, sys};

use crate::allocator::{Block, CachingAllocator, MemoryStats};
use crate::driver::{self, bind, driver_error, DriverAllocator};
use crate::error::{CudaError, Result};

/// The most devices one process addresses (device indices are `u8` in the tensor runtime).
const MAX_DEVICES: usize = 64;

type DeviceCache = CachingAllocator<DriverAllocator>;

/// Device `index`'s caching allocator, created on first use.
fn cache(index: usize) -> Result<&'static DeviceCache> {
    static CACHES: [OnceLock<DeviceCache>; MAX_DEVICES] = [const { OnceLock::new() }; MAX_DEVICES];
    if index >= MAX_DEVICES {
        return Err(CudaError::InvalidDevice {
            index,
            count: driver::device_count(),
        });
    }
    if let Some(c) = CACHES[index].get() {
        return Ok(c);
    }
    let raw = DriverAllocator::new(index)?;
    Ok(CACHES[index].get_or_init(|| CachingAllocator::new(raw)))
}

/// `nbytes` of device memory on device `index`, returned to its cache when dropped.
#[derive(Debug)]
pub struct DeviceBuffer {
    block: Option<Block>,
    device: usize,
    nbytes: usize,
}

impl DeviceBuffer {
    /// Uninitialised device memory (as `torch.empty`).
    pub fn uninit(device: usize, nbytes: usize) -> Result<Self> {
        let block = cache(device)?.allocate(nbytes)?;
        Ok(Self {
            block: Some(block),
            device,
            nbytes,
        })
    }

    /// Zero-filled device memory.
    pub fn zeroed(device: usize, nbytes: usize) -> Result<Self> {
        let b = Self::uninit(device, nbytes)?;
        if nbytes > 0 {
            bind(device)?;
            // SAFETY: the block holds at least `nbytes` bytes; the memset is ordered on the
            // default stream before any later use.
            unsafe { sys::cuMemsetD8Async(b.ptr(), 0, nbytes, cu::stream::null()) }
                .result()
                .map_err(driver_error)?;
        }
        Ok(b)
    }

    /// The device address of the first byte.
    pub fn ptr(&self) -> u64 {
        self.block.as_ref().map_or(0, |b| b.ptr)
    }
    pub fn nbytes(&self) -> usize {
        self.nbytes
    }
    pub fn device(&self) -> usize {
        self.device
    }
}

impl Drop for DeviceBuffer {
    fn drop(&mut self) {
        if let (Some(b), Ok(c)) = (self.block.take(), cache(self.device)) {
            c.free(b);
        }
    }
}

/// Copies `src` (host) to device address `dst` on `device`, after the work queued before it.
///
/// # Safety
/// `dst` must address at least `src.len()` bytes of device memory on `device`.
pub unsafe fn copy_to_device(device: usize, dst: u64, src: &[u8]) -> Result<()> {
    if src.is_empty() {
        return Ok(());
    }
    bind(device)?;
    // SAFETY: the caller vouches for `dst`; `src` is a live host slice for the whole
    // (synchronous) copy.
    unsafe { cu::memcpy_htod_sync(dst, src) }.map_err(driver_error)
}

/// Copies device memory at `src` on `device` into `dst` (host), once the work queued before
/// it (the kernels that produced it) has finished.
///
/// # Safety
/// `src` must address at least `dst.len()` bytes of device memory on `device`.
pub unsafe fn copy_to_host(device: usize, dst: &mut [u8], src: u64) -> Result<()> {
    if dst.is_empty() {
        return Ok(());
    }
    bind(device)?;
    // SAFETY: as above; the synchronous copy waits for the default stream.
    unsafe { cu::memcpy_dtoh_sync(dst, src) }.map_err(driver_error)
}

/// Queues a copy of `nbytes` from `src` to `dst` on `device`'s default stream.
///
/// # Safety
/// Both addresses must address at least `nbytes` bytes of device memory on `device`.
pub unsafe fn copy_on_device(device: usize, dst: u64, src: u64, nbytes: usize) -> Result<()> {
    if nbytes == 0 {
        return Ok(());
    }
    bind(device)?;
    // SAFETY: the caller vouches for both ranges.
    unsafe { cu::memcpy_dtod_async(dst, src, nbytes, cu::stream::null()) }.map_err(driver_error)
}

/// `torch.cuda.memory_stats()`'s main figures for `device`.
pub fn memory_stats(device: usize) -> Result<MemoryStats> {
    Ok(cache(device)?.stats())
}

/// `torch.cuda.empty_cache()` for `device`.
pub fn empty_cache(device: usize) -> Result<()> {
    cache(device)?.empty_cache()
}
