//! A caching device allocator, in the spirit of PyTorch's `CUDACachingAllocator`: asking the
//! driver for memory synchronizes the device and costs tens of microseconds, so freed blocks
//! are kept and handed out again.
//!
//! Requests are rounded to size classes (512-byte steps up to 1 MiB, 2 MiB steps above, as
//! PyTorch's small and large pools round), a free block of the same class is reused, and when
//! the driver reports no memory the cache is returned to it and the request retried once.
//! The logic is generic over [`RawAllocator`], so it is tested with a host-memory stand-in.

use std::collections::BTreeMap;

use parking_lot::Mutex;

use crate::error::{CudaError, Result};

/// Memory from the device's driver.
pub trait RawAllocator: Send + Sync {
    /// A fresh block of exactly `bytes` bytes: its device address.
    fn allocate(&self, bytes: usize) -> Result<u64>;
    /// Returns a block [`RawAllocator::allocate`] gave.
    fn release(&self, ptr: u64) -> Result<()>;
}

/// One block handed out: its address and its (rounded) size. Give it back with
/// [`CachingAllocator::free`].
#[derive(Debug, PartialEq, Eq)]
pub struct Block {
    pub ptr: u64,
    pub size: usize,
}

/// `torch.cuda.memory_stats()`'s main figures, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryStats {
    /// In blocks handed out (`memory_allocated()`).
    pub allocated: usize,
    /// Handed out plus cached (`memory_reserved()`).
    pub reserved: usize,
    /// The largest `allocated` seen (`max_memory_allocated()`).
    pub peak_allocated: usize,
    /// Requests the driver served (cache misses).
    pub driver_allocations: usize,
}

const SMALL_LIMIT: usize = 1 << 20;
const SMALL_STEP: usize = 512;
const LARGE_STEP: usize = 2 << 20;

/// The size class of a request of `bytes` (at least one step).
pub fn round_size(bytes: usize) -> usize {
    let step = if bytes <= SMALL_LIMIT {
        SMALL_STEP
    } else {
        LARGE_STEP
    };
    bytes.max(1).div_ceil(step) * step
}

#[derive(Default)]
struct State {
    /// Cached free blocks by size class.
    free: BTreeMap<usize, Vec<u64>>,
    stats: MemoryStats,
}

/// The caching allocator of one device.
pub struct CachingAllocator<R: RawAllocator> {
    raw: R,
    state: Mutex<State>,
}

impl<R: RawAllocator> std::fmt::Debug for CachingAllocator<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachingAllocator")
            .field("stats", &self.stats())
            .finish()
    }
}

impl<R: RawAllocator> CachingAllocator<R> {
    pub fn new(raw: R) -> Self {
        Self {
            raw,
            state: Mutex::new(State::default()),
        }
    }

    /// A block of at least `bytes` bytes: a cached one of the same class, else the driver's.
    pub fn allocate(&self, bytes: usize) -> Result<Block> {
        let size = round_size(bytes);
        {
            let mut st = self.state.lock();
            if let Some(ptr) = st.free.get_mut(&size).and_then(Vec::pop) {
                st.stats.allocated += size;
                st.stats.peak_allocated = st.stats.peak_allocated.max(st.stats.allocated);
                return Ok(Block { ptr, size });
            }
        }
        // The driver call runs without the lock (it may synchronize the device).
        let ptr = match self.raw.allocate(size) {
            Ok(p) => p,
            Err(_) => {
                // As PyTorch: give the cache back and try once more.
                self.empty_cache()?;
                self.raw
                    .allocate(size)
                    .map_err(|_| CudaError::OutOfMemory {
                        bytes: size,
                        reserved: self.stats().reserved,
                    })?
            }
        };
        let mut st = self.state.lock();
        st.stats.allocated += size;
        st.stats.reserved += size;
        st.stats.driver_allocations += 1;
        st.stats.peak_allocated = st.stats.peak_allocated.max(st.stats.allocated);
        Ok(Block { ptr, size })
    }

    /// Returns a block to the cache (not to the driver).
    pub fn free(&self, block: Block) {
        let mut st = self.state.lock();
        st.stats.allocated -= block.size;
        st.free.entry(block.size).or_default().push(block.ptr);
    }

    /// `torch.cuda.empty_cache()`: every cached block goes back to the driver.
    pub fn empty_cache(&self) -> Result<()> {
        let free = std::mem::take(&mut self.state.lock().free);
        let mut first_err = None;
        for (size, ptrs) in free {
            for ptr in ptrs {
                match self.raw.release(ptr) {
                    Ok(()) => self.state.lock().stats.reserved -= size,
                    Err(e) => {
                        first_err.get_or_insert(e);
                    }
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    pub fn stats(&self) -> MemoryStats {
        self.state.lock().stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

    /// Host stand-in for the driver: hands out increasing addresses, can be told to run out.
    #[derive(Default)]
    struct Fake {
        next: AtomicU64,
        live: Mutex<Vec<u64>>,
        limit: AtomicUsize,
    }

    impl RawAllocator for Fake {
        fn allocate(&self, bytes: usize) -> Result<u64> {
            let mut live = self.live.lock();
            let limit = self.limit.load(Ordering::Relaxed);
            if limit != 0 && live.len() >= limit {
                return Err(CudaError::Driver("CUDA_ERROR_OUT_OF_MEMORY".into()));
            }
            let p = self.next.fetch_add(bytes as u64, Ordering::Relaxed) + 0x1000;
            live.push(p);
            Ok(p)
        }
        fn release(&self, ptr: u64) -> Result<()> {
            let mut live = self.live.lock();
            let i = live.iter().position(|&p| p == ptr).expect("double free");
            live.swap_remove(i);
            Ok(())
        }
    }

    #[test]
    fn sizes_round_to_pytorchs_classes() {
        assert_eq!(round_size(0), 512);
        assert_eq!(round_size(1), 512);
        assert_eq!(round_size(513), 1024);
        assert_eq!(round_size(1 << 20), 1 << 20);
        assert_eq!(round_size((1 << 20) + 1), 2 << 20);
        assert_eq!(round_size(5 << 20), 6 << 20);
    }

    #[test]
    fn freed_blocks_are_reused_and_empty_cache_returns_them() {
        let a = CachingAllocator::new(Fake::default());
        let b1 = a.allocate(1000).unwrap();
        let p1 = b1.ptr;
        a.free(b1);
        let b2 = a.allocate(700).unwrap(); // same 1024-byte class
        assert_eq!(b2.ptr, p1);
        let s = a.stats();
        assert_eq!(
            (s.allocated, s.reserved, s.driver_allocations),
            (1024, 1024, 1)
        );
        let b3 = a.allocate(4000).unwrap(); // another class: a driver call
        assert_ne!(b3.ptr, p1);
        a.free(b2);
        a.free(b3);
        assert_eq!(a.stats().allocated, 0);
        assert_eq!(a.stats().reserved, 1024 + 4096);
        assert_eq!(a.stats().peak_allocated, 1024 + 4096);
        a.empty_cache().unwrap();
        assert_eq!(a.stats().reserved, 0);
        assert!(a.raw.live.lock().is_empty());
    }

    #[test]
    fn running_out_frees_the_cache_and_retries_then_reports_oom() {
        let fake = Fake::default();
        fake.limit.store(1, Ordering::Relaxed);
        let a = CachingAllocator::new(fake);
        let b = a.allocate(512).unwrap();
        a.free(b); // cached, still held from the driver
        let big = a.allocate(4096).unwrap(); // needs the cache back first
        assert_eq!(a.stats().reserved, 4096);
        let e = a.allocate(1 << 21).unwrap_err();
        assert!(matches!(e, CudaError::OutOfMemory { bytes, .. } if bytes == 2 << 20));
        a.free(big);
    }
}
