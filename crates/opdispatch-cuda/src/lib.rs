//! The CUDA device runtime: what the tensor runtime needs from a GPU, below the tensor level.
//!
//! Every CUDA library is opened at run time through `cudarc`'s dynamic loading (no link-time
//! dependency, so the build needs no toolkit and a machine without a GPU imports the package
//! and gets a clear error on first use).
//!
//! - [`driver`]: finds the driver, counts devices, keeps each device's primary context and
//!   each thread's current device, synchronizes.
//! - [`allocator`]: a caching allocator in the spirit of PyTorch's `CUDACachingAllocator`
//!   (size classes, reuse, `empty_cache`, the statistics behind `memory_allocated()`), generic
//!   over the raw allocator so it is tested without a GPU.
//! - [`memory`]: each device's cache, the owned [`DeviceBuffer`] storage holds, and the
//!   host<->device and device<->device copies (default-stream ordering).
//! - [`codegen`] and [`nvrtc`]: CUDA C source of the kernels and their run-time compilation.
//! - [`launch`]: loading compiled kernels per device and launching them.
//! - [`blas`]: matrix products through cuBLAS.
//! - [`error`]: [`CudaError`], with PyTorch's texts where PyTorch has one.

pub mod allocator;
pub mod blas;
pub mod codegen;
pub mod driver;
pub mod error;
pub mod launch;
pub mod memory;
pub mod nvrtc;

pub use allocator::{CachingAllocator, MemoryStats, RawAllocator};
pub use driver::{
    check_device, current_device, device_count, is_available, set_device, synchronize,
    DriverAllocator,
};
pub use error::{CudaError, Result};
pub use memory::DeviceBuffer;
