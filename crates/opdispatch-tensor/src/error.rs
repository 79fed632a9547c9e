//! The crate's single error type.
//!
//! Messages follow PyTorch's wording where PyTorch has a well-known message, so
//! that the Python layer can surface them unchanged (it maps every variant to
//! `RuntimeError` except where noted on the variant).

use crate::{Device, ScalarType};

/// Every failure a tensor operation can report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TensorError {
    /// Two shapes could not be broadcast together.
    #[error("The size of tensor a ({a}) must match the size of tensor b ({b}) at non-singleton dimension {dim}")]
    BroadcastMismatch { a: usize, b: usize, dim: usize },

    /// A dimension argument was out of range (Python: `IndexError`).
    #[error("Dimension out of range (expected to be in range of [{min}, {max}], but got {got})")]
    DimOutOfRange { min: i64, max: i64, got: i64 },

    /// An integer index was out of range (Python: `IndexError`).
    #[error("{0}")]
    IndexOutOfRange(String),

    /// Shape arguments that do not describe the tensor's number of elements.
    #[error("{0}")]
    InvalidShape(String),

    /// Two dtypes that cannot be promoted, or an op that does not support a dtype.
    #[error("{0}")]
    DType(String),

    /// An op with no kernel for a dtype (PyTorch's `TORCH_CHECK_NOT_IMPLEMENTED`; Python:
    /// `NotImplementedError`).
    #[error("\"{op}\" not implemented for '{dtype}'")]
    NotImplementedForDtype { op: String, dtype: &'static str },

    /// Tensors on different devices, or a device this build cannot use.
    #[error("{0}")]
    Device(String),

    /// Data was requested from a tensor that has none (Meta tensors).
    #[error("Cannot access data of a tensor on device '{0}': it has no storage data")]
    NoData(Device),

    /// Parse failure for a device string (the whole message).
    #[error("{0}")]
    DeviceParse(String),

    /// A value could not be represented (e.g. `item()` on a multi-element tensor).
    #[error("{0}")]
    Value(String),

    /// An unsupported case PyTorch reports with `TORCH_CHECK_NOT_IMPLEMENTED` and its own
    /// message (Python: `NotImplementedError`).
    #[error("{0}")]
    NotImplemented(String),

    /// Anything else, with PyTorch's message.
    #[error("{0}")]
    Other(String),
}

/// Shorthand constructors, used by the runtime and by the aten kernels built on it.
impl TensorError {
    pub fn dtype(msg: impl Into<String>) -> Self {
        TensorError::DType(msg.into())
    }
    pub fn other(msg: impl Into<String>) -> Self {
        TensorError::Other(msg.into())
    }
    pub fn shape(msg: impl Into<String>) -> Self {
        TensorError::InvalidShape(msg.into())
    }
    pub fn unsupported(op: &str, dtype: ScalarType) -> Self {
        TensorError::NotImplementedForDtype {
            op: op.to_owned(),
            dtype: dtype.cpp_name(),
        }
    }
}

/// Crate-wide result alias.
pub type Result<T, E = TensorError> = std::result::Result<T, E>;
