//! One error type for everything the dispatcher can refuse or fail at.
//!
//! Each variant says which exception class PyTorch raises for it (TORCH_CHECK -> RuntimeError,
//! TORCH_CHECK_NOT_IMPLEMENTED -> NotImplementedError, ...); the Python crate maps variants to
//! exceptions in one place. `External` carries an error raised inside a kernel (for example a
//! Python exception) through the dispatcher untouched.

use std::sync::Arc;

/// Errors raised by registration, lookup and calls.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DispatchError {
    /// A failed check (PyTorch `TORCH_CHECK`, surfaced as `RuntimeError`).
    #[error("{0}")]
    Runtime(String),
    /// No kernel for the computed key (`TORCH_CHECK_NOT_IMPLEMENTED`, `NotImplementedError`).
    #[error("{0}")]
    NotImplemented(String),
    /// Wrong argument types (`TORCH_CHECK_TYPE`, `TypeError`).
    #[error("{0}")]
    Type(String),
    /// Bad argument values (`TORCH_CHECK_VALUE`, `ValueError`).
    #[error("{0}")]
    Value(String),
    /// A schema string that does not parse (`RuntimeError` in PyTorch).
    #[error("{0}")]
    Schema(#[from] opdispatch_schema::SchemaParseError),
    /// An internal invariant broke (`TORCH_INTERNAL_ASSERT`, `RuntimeError`).
    #[error("{0}")]
    Internal(String),
    /// An error raised by a kernel, passed through unchanged.
    #[error("{0}")]
    External(Arc<dyn std::error::Error + Send + Sync>),
}

impl DispatchError {
    /// Appends `ctx` as PyTorch's `ERROR_CONTEXT` does ("<msg>  <ctx>").
    #[must_use]
    pub fn with_context(self, ctx: &str) -> Self {
        match self {
            Self::Runtime(m) => Self::Runtime(format!("{m}  {ctx}")),
            Self::NotImplemented(m) => Self::NotImplemented(format!("{m}  {ctx}")),
            Self::Type(m) => Self::Type(format!("{m}  {ctx}")),
            Self::Value(m) => Self::Value(format!("{m}  {ctx}")),
            Self::Internal(m) => Self::Internal(format!("{m}  {ctx}")),
            Self::Schema(e) => Self::Runtime(format!("{e}  {ctx}")),
            e @ Self::External(_) => e,
        }
    }
}

impl From<opdispatch_keys::ParseDispatchKeyError> for DispatchError {
    fn from(e: opdispatch_keys::ParseDispatchKeyError) -> Self {
        Self::Runtime(e.to_string())
    }
}

/// Result alias used throughout the dispatcher.
pub type Result<T, E = DispatchError> = std::result::Result<T, E>;

/// `TORCH_CHECK`-style early return with a formatted RuntimeError.
#[macro_export]
macro_rules! check {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err($crate::DispatchError::Runtime(format!($($fmt)+)));
        }
    };
}
