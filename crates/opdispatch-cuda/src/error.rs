//! Errors of the CUDA runtime.

/// What went wrong talking to CUDA.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CudaError {
    /// The driver library (`libcuda.so`) is not on this machine (PyTorch's text).
    #[error("Found no NVIDIA driver on your system. Please check that you have an NVIDIA GPU and installed a driver from http://www.nvidia.com/Download/index.aspx")]
    NoDriver,
    /// The driver loaded but reports no device (PyTorch's text).
    #[error("No CUDA GPUs are available")]
    NoDevice,
    /// A device index outside `0..count`.
    #[error("CUDA error: invalid device ordinal (device {index}, {count} device(s) present)")]
    InvalidDevice { index: usize, count: usize },
    /// The device allocator could not satisfy a request.
    #[error("CUDA out of memory. Tried to allocate {bytes} bytes ({reserved} bytes reserved by opdispatch)")]
    OutOfMemory { bytes: usize, reserved: usize },
    /// Any other driver error, with the driver's name for it.
    #[error("CUDA error: {0}")]
    Driver(String),
}

/// Crate-wide result alias.
pub type Result<T, E = CudaError> = std::result::Result<T, E>;
