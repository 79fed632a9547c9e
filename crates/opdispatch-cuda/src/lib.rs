//! The CUDA device runtime: what the tensor runtime needs from a GPU, below any kernel.
//!
//! - [`driver`]: finds the CUDA driver library at run time (through `cudarc`'s dynamic
//!   loading, so neither the build nor a GPU-less machine needs CUDA), counts devices, keeps
//!   each thread's current device, synchronizes.
//! - [`allocator`]: a caching allocator in the spirit of PyTorch's `CUDACachingAllocator`:
//!   requests are rounded to size classes, freed blocks are kept for reuse, `empty_cache`
//!   returns them to the driver, and the statistics behind `memory_allocated()` /
//!   `memory_reserved()`. The caching logic is generic over the raw allocator, so it is tested
//!   on machines without a GPU.
//! - [`codegen`] and [`nvrtc`]: CUDA C source of the pointwise kernels (contiguous and
//!   strided with broadcasting) and their run-time compilation to PTX.
//! - [`error`]: [`CudaError`], with PyTorch's texts where PyTorch has one.
//!
//! Device storage, copies and kernels build on these (see docs/ARCHITECTURE.md).

pub mod allocator;
pub mod codegen;
pub mod driver;
pub mod error;
pub mod nvrtc;

pub use allocator::{CachingAllocator, MemoryStats, RawAllocator};
pub use driver::{
    current_device, device_count, is_available, set_device, synchronize, DriverAllocator,
};
pub use error::{CudaError, Result};
